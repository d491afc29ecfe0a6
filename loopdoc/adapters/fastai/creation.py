"""Which callbacks a learner had when fastai fired ``after_create``: observed, not guessed.

``Learner.__init__`` fires ``after_create`` as its last statement (fastai 2.8,
``fastai/learner.py``), so a callback added afterwards (``learn.add_cb(...)``, or by a
``Learner`` subclass's ``__init__`` after ``super().__init__``) never receives it. Nothing
in a finished learner says which callbacks came later, so while the user's module runs,
``watch_creation`` wraps ``Learner.__init__`` to note the callbacks present when it
returns. It also notes where the user's code built the learner and attached each callback
(``Learner.add_cb`` is wrapped too: ``Learner(cbs=...)``, ``learn.add_cb``, ``learn.to_fp16()``
all go through it), so that ``loopdoc check`` can point at that line. The wrappers call the
originals unchanged and are removed afterwards; if ``fastai.learner`` is not imported yet, an
import hook wraps it the moment it is, so loopdoc still imports no fastai module before the user's code.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from ...model.loop import SourceLocation
from ..introspect import AfterImport, caller_position

Position = tuple[SourceLocation, "int | None"]
"""A place in the user's code: its location and 1-based column (``None`` when unknown)."""


@dataclass
class Creation:
    """What was seen of one learner while the user's code built it.

    Attributes:
        at_create: ``id()`` of the callbacks the learner had when ``Learner.__init__`` fired ``after_create``.
        created_at: where the user's code called the learner's construction (the innermost frame of the
            user's own code: ``synth_learner(...)`` or ``Learner(...)``), or ``None``.
        added_at: ``{id(cb): position}``: where the user's code was when each callback was attached through
            ``Learner.add_cb`` (first time only); callbacks appended to ``learn.cbs`` directly are missing.
    """

    at_create: frozenset[int] = frozenset()
    created_at: Position | None = None
    added_at: dict[int, Position] = field(default_factory=dict)

    def __iter__(self) -> Iterator[int]:
        """The ``at_create`` ids, so that a ``Creation`` still serves where a set of ids is expected."""
        return iter(self.at_create)


def at_create_ids(observation: Any) -> Any:
    """The ``id()`` set of the callbacks that received ``after_create``: ``observation.at_create`` for a ``Creation``,
    else ``observation`` itself (an iterable of ids, or ``None``)."""
    return observation.at_create if isinstance(observation, Creation) else observation


@contextlib.contextmanager
def watch_creation() -> Iterator[dict[int, Creation]]:
    """While the body runs, record a ``Creation`` per learner built (``{id(learner): Creation}``).

    Yields:
        The dict, filled as learners are built; valid after the body for learners still alive.
    """
    created: dict[int, Creation] = {}
    restore: list[tuple[type, str, Any]] = []

    def patch(module: ModuleType) -> None:
        cls = module.Learner
        original, original_add = cls.__init__, cls.add_cb

        @functools.wraps(original)
        def init(self: Any, *args: Any, **kwargs: Any) -> None:
            seen = created.setdefault(id(self), Creation())
            seen.created_at = seen.created_at or caller_position()
            original(self, *args, **kwargs)
            seen.at_create = frozenset(id(cb) for cb in self.cbs)

        @functools.wraps(original_add)
        def add_cb(self: Any, cb: Any) -> Any:
            before = len(self.cbs)
            result = original_add(self, cb)
            if len(self.cbs) > before:
                seen = created.setdefault(id(self), Creation())
                where = caller_position()
                if where is not None:
                    seen.added_at.setdefault(id(self.cbs[-1]), where)
            return result

        cls.__init__ = init
        cls.add_cb = add_cb
        restore.extend([(cls, "__init__", original), (cls, "add_cb", original_add)])

    hook = None
    if "fastai.learner" in sys.modules:
        patch(sys.modules["fastai.learner"])
    else:
        hook = AfterImport("fastai.learner", patch)
        sys.meta_path.insert(0, hook)
    try:
        yield created
    finally:
        if hook is not None and hook in sys.meta_path:
            sys.meta_path.remove(hook)
        for cls, name, original in reversed(restore):
            setattr(cls, name, original)


_ALWAYS = contextlib.ExitStack()  # holds the process-wide watch (never closed: closing would unwrap Learner.__init__)
_SEEN: dict[int, Creation] | None = None


def watch_always() -> None:
    """Watch every ``Learner.__init__`` from now until the process ends (``import loopdoc.fastai``, in a notebook).

    A learner built afterwards is observed (``observed``); one built before is not.
    """
    global _SEEN
    if _SEEN is None:
        _SEEN = _ALWAYS.enter_context(watch_creation())


def observed(learn: Any) -> Creation | None:
    """What ``watch_always`` saw of ``learn`` being built (a ``Creation``), or ``None`` (built before it watched)."""
    return None if _SEEN is None else _SEEN.get(id(learn))

