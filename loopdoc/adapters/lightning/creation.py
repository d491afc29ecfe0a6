"""Which callbacks a Trainer was built with (``callbacks=``), observed while the user's code runs, not guessed.

``Trainer.__init__`` appends Lightning's defaults to the user's ``callbacks=`` list
(``_CallbackConnector.on_trainer_init``, ``trainer/connectors/callback_connector.py``, 2.6:
a ModelCheckpoint unless ``enable_checkpointing=False``, a Timer for ``max_time``, a progress
bar — RichProgressBar when ``rich`` is installed —, a model summary, and entry-point callbacks),
and nothing in a finished Trainer says which were which. While the user's module runs,
``watch_trainers`` wraps ``Trainer.__init__`` of each Lightning package to note the ``callbacks``
argument; the wrapper calls the original unchanged and is removed afterwards. If a package is not
imported yet, an import hook wraps it the moment it is, so loopdoc imports no Lightning module
before the user's code does.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from ..introspect import AfterImport
from .lib import TRAINER_MODULES


@dataclass(frozen=True)
class Observed:
    """What ``Trainer.__init__`` was given.

    Attributes:
        callbacks: ``id()`` of every callback passed as ``callbacks=`` (a single Callback counts as a list of one).
    """

    callbacks: frozenset[int]


@contextlib.contextmanager
def watch_trainers() -> Iterator[dict[int, Observed]]:
    """While the body runs, record ``{id(trainer): Observed}`` for every Lightning Trainer built.

    Yields:
        The dict, filled as Trainers are built; valid after the body for Trainers still alive.
    """
    seen: dict[int, Observed] = {}
    restore: list[tuple[type, Any]] = []
    hooks: list[AfterImport] = []

    def patch(module: ModuleType) -> None:
        cls = getattr(module, "Trainer", None)
        if cls is None or any(c is cls for c, _ in restore):
            return
        original = cls.__init__

        @functools.wraps(original)
        def init(self: Any, *args: Any, **kwargs: Any) -> None:
            given = kwargs.get("callbacks")
            items = [] if given is None else (list(given) if isinstance(given, (list, tuple)) else [given])
            seen[id(self)] = Observed(frozenset(id(cb) for cb in items))
            original(self, *args, **kwargs)

        cls.__init__ = init
        restore.append((cls, original))

    for name in TRAINER_MODULES:
        if name in sys.modules:
            patch(sys.modules[name])
        else:
            hook = AfterImport(name, patch)
            hooks.append(hook)
            sys.meta_path.insert(0, hook)
    try:
        yield seen
    finally:
        for hook in hooks:
            if hook in sys.meta_path:
                sys.meta_path.remove(hook)
        for cls, original in restore:
            cls.__init__ = original

