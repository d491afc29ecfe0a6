"""Loading a ``Learner`` saved by ``learn.export()`` (a pickle), only when the user trusts the file.

fastai 2.8.12's ``load_learner(fname, cpu=True, pickle_module=pickle)`` calls
``torch.load(..., weights_only=False)`` and warns that pickle is insecure; the warning is
silenced, since ``trust`` says the user has decided. When a class the learner was exported
with cannot be imported, fastai 2.8.12 hides the ``ImportError`` (and fails with
``UnboundLocalError``); loopdoc then unpickles once more with the same ``torch.load`` call to
report it.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from ...errors import LoadError, UsageError
from ...usercode import as_script, one_line, run_user_code

SUFFIXES = (".pkl", ".pickle")


def load_pickle(text: str, where: str, *, trust: bool) -> Any:
    """Unpickle the ``Learner`` in ``text`` with ``fastai.learner.load_learner(path, cpu=True)``.

    While unpickling, the file's folder is first on ``sys.path`` (so classes from a sibling
    ``learner.py`` can be found) and prints go to stderr, as for a ``.py``.

    Args:
        text: the file, ``PATH.pkl`` or ``PATH.pickle`` (checked to exist by the caller).
        where: the file as shown in messages.
        trust: the user passed ``--trust-pickle``.

    Returns:
        What the pickle holds (the caller checks that it is a ``Learner``).

    Raises:
        UsageError: ``trust`` is false (the message says why and how).
        LoadError: not a pickle, or unpickling failed (e.g. a custom class that cannot be imported).
    """
    path = Path(text)
    if not trust:
        raise UsageError(f"{where}: a pickled Learner (learn.export()); unpickling runs any code the file contains, so "
                         "loopdoc loads it only with --trust-pickle: pass it only for a file you trust, or document "
                         "the learner.py that builds the learner instead")

    def unpickle() -> Any:
        from fastai.learner import load_learner

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*load_learner.*insecure pickle", category=UserWarning)
            try:
                return load_learner(path, cpu=True)
            except UnboundLocalError:
                # fastai 2.8.12's load_learner catches an ImportError, re-raises only those naming
                # fastcore.transform/dispatch, then fails on its unset `res`. Unpickle again with
                # the same torch.load call to raise the ImportError it hid.
                import pickle

                import torch

                torch.load(path, map_location="cpu", pickle_module=pickle, weights_only=False)
                raise

    with as_script(str(path.resolve().parent), str(path)):
        try:
            return run_user_code(unpickle, where, None, "while unpickling")
        except LoadError as e:
            cause = e.__cause__
            if not isinstance(cause, (ImportError, AttributeError)):
                raise
            lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
            raise LoadError(f"{where}: cannot unpickle: {type(cause).__name__}: {one_line(lines[-1] if lines else '')}; "
                            "the classes and functions the learner was exported with must be importable "
                            "(the pickle's folder is first on sys.path)") from cause
