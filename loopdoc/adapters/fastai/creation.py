"""Which callbacks a learner had when fastai fired ``after_create``: observed, not guessed.

``Learner.__init__`` fires ``after_create`` as its last statement (fastai 2.8,
``fastai/learner.py``), so a callback added afterwards (``learn.add_cb(...)``, or by a
``Learner`` subclass's ``__init__`` after ``super().__init__``) never receives it. Nothing
in a finished learner says which callbacks came later, so while the user's module runs,
``watch_creation`` wraps ``Learner.__init__`` to note the callbacks present when it
returns. The wrapper calls the original unchanged and is removed afterwards; if
``fastai.learner`` is not imported yet, an import hook wraps it the moment it is, so
loopdoc still imports no fastai module before the user's code.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.abc
import importlib.util
import sys
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any


@contextlib.contextmanager
def watch_creation() -> Iterator[dict[int, frozenset[int]]]:
    """While the body runs, record ``{id(learner): frozenset(id(cb) ...)}`` at the end of each ``Learner.__init__``.

    Yields:
        The dict, filled as learners are built; valid after the body for learners still alive.
    """
    created: dict[int, frozenset[int]] = {}
    restore: list[tuple[type, Any]] = []

    def patch(module: ModuleType) -> None:
        cls = module.Learner
        original = cls.__init__

        @functools.wraps(original)
        def init(self: Any, *args: Any, **kwargs: Any) -> None:
            original(self, *args, **kwargs)
            created[id(self)] = frozenset(id(cb) for cb in self.cbs)

        cls.__init__ = init
        restore.append((cls, original))

    hook = None
    if "fastai.learner" in sys.modules:
        patch(sys.modules["fastai.learner"])
    else:
        hook = _AfterImport("fastai.learner", patch)
        sys.meta_path.insert(0, hook)
    try:
        yield created
    finally:
        if hook is not None and hook in sys.meta_path:
            sys.meta_path.remove(hook)
        for cls, original in restore:
            cls.__init__ = original


_ALWAYS = contextlib.ExitStack()  # holds the process-wide watch (never closed: closing would unwrap Learner.__init__)
_SEEN: dict[int, frozenset[int]] | None = None


def watch_always() -> None:
    """Watch every ``Learner.__init__`` from now until the process ends (``import loopdoc.fastai``, in a notebook).

    A learner built afterwards is observed (``observed``); one built before is not.
    """
    global _SEEN
    if _SEEN is None:
        _SEEN = _ALWAYS.enter_context(watch_creation())


def observed(learn: Any) -> frozenset[int] | None:
    """What ``watch_always`` saw of ``learn`` being built (``id()`` of the callbacks ``after_create`` reached), or ``None``."""
    return None if _SEEN is None else _SEEN.get(id(learn))


class _AfterImport(importlib.abc.MetaPathFinder):
    """Calls ``then(module)`` right after the module ``name`` has been executed by its normal loader."""

    def __init__(self, name: str, then: Callable[[ModuleType], None]):
        self.name, self.then = name, then

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)  # once, and not for the lookup below
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        exec_module, then = spec.loader.exec_module, self.then

        def exec_then(module: ModuleType) -> None:
            exec_module(module)
            then(module)

        spec.loader.exec_module = exec_then  # type: ignore[method-assign]
        return spec
