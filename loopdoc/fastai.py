"""``import loopdoc.fastai``: every fastai ``Learner`` gets a corrected ``show_training_loop``.

fastai's own ``Learner.show_training_loop`` prints a hand-kept list
(``fastai.learner._loop``) that omits ``after_create``, ``after_backward``,
``after_cancel_backward`` and ``after_cancel_step`` and claims the validation
batch loop runs the same callbacks as training. This module replaces it with
loopdoc's model of the real loop. Importing it imports ``fastai.learner`` and, from then on, notes
which callbacks each new ``Learner`` had when fastai fired ``after_create`` (learners built before
the import list every callback there).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from . import _name_in_caller, loop
from .adapters.fastai import ADAPTER
from .adapters.fastai.creation import watch_always
from .rendering.documents import render

if TYPE_CHECKING:
    from fastai.learner import Learner

    from . import ExtraCallbacks


def show_training_loop(self: Learner, verbose: bool = False, cbs: ExtraCallbacks | None = None) -> None:
    """Print the training loop of ``self.fit``: every event, in every phase, with the callbacks that run.

    The title names the learner as the calling code does (``learner.show_training_loop()`` →
    "Training loop of learner"), else ``learn``.

    Args:
        self: the ``Learner``.
        verbose: add each callback method's docstring and source, and the steps.
        cbs: a ``Callback`` instance or class, or a list of them, to include as
            ``fit(cbs=...)`` would. The learner is never modified: they are listed,
            not attached, so nothing needs removing afterwards.

    Raises:
        TypeError: an item of ``cbs`` is not a ``Callback`` or ``Callback`` class.
    """
    name = _name_in_caller(self, sys._getframe(1)) or "learn"
    print(render(loop(self, loaded_from=name, cbs=cbs), "txt", verbose=verbose), end="")


ADAPTER.patch_trainer("show_training_loop", show_training_loop)
# From now on every Learner built is watched, so that a callback added after `Learner(...)` (learn.add_cb)
# is not listed at after_create, here and in loopdoc.loop(learn): as when loopdoc loads a learner file.
watch_always()
