"""Write a learner file with N callback classes, for the benchmarks and the tests.

    python benchmarks/many_callbacks.py 300 > /tmp/many.py

Each class has a docstring, an ``order`` in 0..6 (many ties) and two event methods with
docstrings, so the model has N callbacks, about 2N handlers per fit, and a source line
for every class and method. The learner is fastai's ``synth_learner`` (no downloads).
"""

from __future__ import annotations

import sys

EVENTS = ("before_batch", "after_pred", "after_loss", "after_batch", "before_epoch", "after_epoch", "before_fit", "after_fit")


def learner_source(n: int) -> str:
    """The text of a learner file with ``n`` callback classes ``CB0`` … attached in that order.

    Args:
        n: the number of callbacks.

    Returns:
        Python source defining ``learn``.
    """
    lines = [f'"""A learner with {n} callbacks (written by benchmarks/many_callbacks.py)."""', "",
             "from fastai.callback.core import Callback", "from fastai.test_utils import synth_learner", ""]
    for i in range(n):
        first, second = EVENTS[i % len(EVENTS)], EVENTS[(i + 3) % len(EVENTS)]
        lines += ["", f"class CB{i}(Callback):", f'    """Callback number {i}: does *little*, in `{first}` and `{second}`."""', "",
                  f"    order = {i % 7}", "", f"    def {first}(self):", f'        """Handle `{first}` ({i})."""', "",
                  f"    def {second}(self):", "        pass", ""]
    lines += ["", f"learn = synth_learner(n_trn=16, n_val=8, cbs=[{', '.join(f'CB{i}()' for i in range(n))}])", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(learner_source(int(sys.argv[1]) if len(sys.argv) > 1 else 300))
