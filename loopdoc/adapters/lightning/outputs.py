"""Send everything a Lightning run writes under one folder, and cap the run, without changing its loop.

What ``fit`` writes (Lightning 2.6.6, run-verified in ``/work/scratch/lightning/FACTS.md`` (j)):
the loggers' files (``CSVLogger``/``TensorBoardLogger``: ``<save_dir>/<name>/version_N/``;
``logger=True`` makes one in ``default_root_dir``), ModelCheckpoint's ``.ckpt`` files (``dirpath``,
else the first logger's ``version_N/checkpoints``, else ``default_root_dir/checkpoints``; resolved
in ``ModelCheckpoint.setup``, which writes the path into ``dirpath``), and a profiler report
(``dirpath`` or ``trainer.log_dir``). ``redirect_outputs`` points all of them at a folder and puts
every attribute back afterwards; ``capped`` limits the batches and epochs. Callbacks that
``configure_callbacks()`` creates during the call are redirected as they are attached.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from typing import Any

from ...errors import UsageError
from .calls import Call
from .lib import Lightning


class _Patches:
    """Attribute changes to undo, last first."""

    def __init__(self) -> None:
        self.saved: list[tuple[Any, str, bool, Any]] = []

    def set(self, obj: Any, attr: str, value: Any) -> None:
        """Set ``obj.attr`` to ``value``, remembering whether it was an instance attribute and its value."""
        own = attr in getattr(obj, "__dict__", {})
        self.saved.append((obj, attr, own, getattr(obj, attr, None)))
        setattr(obj, attr, value)

    def undo(self) -> None:
        """Put every attribute back (an instance attribute that did not exist before is deleted)."""
        for obj, attr, own, value in reversed(self.saved):
            if own:
                setattr(obj, attr, value)
            else:
                with contextlib.suppress(AttributeError):
                    delattr(obj, attr)
                if getattr(obj, attr, None) is not value:  # a plain attribute set in __init__ after all
                    setattr(obj, attr, value)
        self.saved.clear()


@contextlib.contextmanager
def redirect_outputs(trainer: Any, lib: Lightning, root: str) -> Iterator[None]:
    """While the body runs, everything the Trainer writes goes under ``root``; all is restored afterwards.

    Patched: ``trainer._default_root_dir``; each logger's ``_root_dir``/``_save_dir`` (and ``_experiment``,
    ``_version``, ``_log_dir`` reset so the experiment is made under ``root``); each ModelCheckpoint's ``dirpath``
    (an explicit one → ``root/checkpoints-<i>``; ``None`` stays ``None`` so ``ModelCheckpoint.setup`` resolves it
    under the redirected logger or root, and is put back); the profiler's ``dirpath``; ``trainer.callbacks``
    (``configure_callbacks()`` replaces it during the call) and the ModelCheckpoints it adds.

    Args:
        trainer: the Trainer.
        lib: its package's ``Lightning``.
        root: an existing, empty folder.

    Raises:
        UsageError: a logger loopdoc cannot redirect (anything but CSVLogger and TensorBoardLogger), which would
            write (or send) elsewhere.
    """
    patches = _Patches()
    loggers = lib.P.loggers
    known = tuple(getattr(loggers, n) for n in ("CSVLogger", "TensorBoardLogger") if hasattr(loggers, n))
    for lg in trainer.loggers:
        if not isinstance(lg, known):
            raise UsageError(f"trace: the Trainer's logger {type(lg).__name__} would write outside a temporary folder; "
                             "trace with logger=False, a CSVLogger or a TensorBoardLogger")
    callbacks = trainer.callbacks
    try:
        patches.set(trainer, "_default_root_dir", root)
        for i, lg in enumerate(trainer.loggers):
            for attr in ("_root_dir", "_save_dir"):
                if getattr(lg, attr, None) is not None:
                    patches.set(lg, attr, os.path.join(root, f"logger-{i}"))
            for attr in ("_experiment", "_version", "_log_dir"):
                if attr in vars(lg):
                    patches.set(lg, attr, None)

        def checkpoints(cbs: list[Any], tag: str) -> None:
            for i, cb in enumerate(cbs):
                if isinstance(cb, lib.ModelCheckpoint) and not any(o is cb and a == "dirpath" for o, a, _, _ in patches.saved):
                    patches.set(cb, "dirpath", None if cb.dirpath is None else os.path.join(root, f"checkpoints-{tag}{i}"))

        checkpoints(list(callbacks), "")
        profiler = trainer.profiler
        if hasattr(profiler, "dirpath"):
            patches.set(profiler, "dirpath", None if profiler.dirpath is None else os.path.join(root, "profiler"))
        connector = trainer._callback_connector
        attach = connector._attach_model_callbacks

        def attach_and_redirect() -> None:
            attach()
            checkpoints(list(trainer.callbacks), "model-")

        patches.set(connector, "_attach_model_callbacks", attach_and_redirect)
        yield
    finally:
        patches.undo()
        trainer.callbacks = callbacks


@contextlib.contextmanager
def capped(trainer: Any, call: Call, batches: int) -> Iterator[None]:
    """While the body runs, at most ``batches`` batches per loop and ``batches`` epochs; restored afterwards.

    Sets ``limit_train_batches``/``limit_val_batches``/``limit_test_batches``/``limit_predict_batches`` (an int keeps
    the smaller of the two; a fraction of a loader with a length becomes its batch count, capped) and
    ``fit_loop.max_epochs`` (``None`` or -1 count as unlimited).

    Args:
        trainer: the Trainer.
        call: the call that will run.
        batches: the cap, at least 1.

    Raises:
        UsageError: an int ``val_check_interval`` larger than the capped number of training batches (Lightning
            would raise ``ValueError``).
    """
    patches = _Patches()
    try:
        loaders = {"limit_train_batches": call.train, "limit_val_batches": call.val if call.method == "fit" else call.loaders,
                   "limit_test_batches": call.loaders, "limit_predict_batches": call.loaders}
        for attr, dl in loaders.items():
            limit = getattr(trainer, attr)
            if limit == 0:
                continue
            if isinstance(limit, int):
                new = min(limit, batches)
            elif limit >= 1.0:
                new = batches
            else:
                try:
                    new = min(batches, max(1, int(len(dl) * limit))) if dl is not None else batches
                except TypeError:
                    new = batches
            patches.set(trainer, attr, new)
        vci = trainer.val_check_interval
        if (call.method == "fit" and isinstance(vci, int) and not isinstance(vci, bool) and trainer.check_val_every_n_epoch is not None
                and vci > trainer.limit_train_batches):
            raise UsageError(f"trace: val_check_interval={vci} needs at least {vci} training batches per epoch; "
                             f"pass --batches {vci} or more")
        epochs = trainer.fit_loop.max_epochs
        if epochs is None or epochs < 0 or epochs == math.inf:
            epochs = batches
        patches.set(trainer.fit_loop, "max_epochs", min(epochs, batches))
        yield
    finally:
        patches.undo()
