"""A learner whose callbacks use stale and mistyped event names: fastai never calls those methods.

Old tutorials still say `begin_fit` (fastai 2 renamed `begin_*` to `before_*`) or fastai 1's
`on_epoch_end`; a typo (`after_epochs`) or an event no loop fires (`after_zero_grad`) fails
the same way: silently. `loopdoc check` reports each of them:

    loopdoc check examples/stale_names.py
"""

from fastai.callback.core import Callback
from fastai.test_utils import synth_learner


class LegacyNames(Callback):
    """Written for older fastai: none of these methods is ever called."""

    def begin_fit(self):
        "fastai 2's early name for `before_fit`."
        self.started = True

    def begin_batch(self):
        "fastai 2's early name for `before_batch`."

    def on_epoch_end(self, **kwargs):
        "fastai 1's name for `after_epoch`."


class Typos(Callback):
    """Near misses of real events: never called either."""

    def after_epochs(self):
        "One letter too many: the event is `after_epoch`."

    def before_bacth(self):
        "Two letters swapped: the event is `before_batch`."


class CustomEvent(Callback):
    """One real event, one that only a changed training loop would fire, and a helper that is not an event."""

    def before_fit(self):
        "A real event: runs once per fit."
        self.logged = 0

    def after_zero_grad(self):
        "fastai has no such event: only a loop changed to fire it would call this."

    def after_batch(self):
        "A real event: runs after every batch, and calls the helper below."
        self.after_logging()

    def after_logging(self):
        "Named like an event, but called by `after_batch` itself: not reported."
        self.logged += 1


learn = synth_learner(n_trn=16, n_val=8, cbs=[LegacyNames(), Typos(), CustomEvent()])
