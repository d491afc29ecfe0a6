"""What loading a file that builds a ``Trainer`` observes, and the one write it keeps from happening.

Two facts of ``Trainer.__init__`` (transformers 5.24, ``trainer.py``, sections 8–10):

- it fires ``on_init_end`` as its last event, to the callbacks in ``callback_handler.callbacks``
  at that moment; one added afterwards (``trainer.add_callback(...)``, or by a ``Trainer``
  subclass's ``__init__`` after ``super().__init__``) never receives it, and nothing in a built
  trainer says which came later;
- it runs ``os.makedirs(args.output_dir, exist_ok=True)`` whenever ``args.should_save`` (true on a
  single process, even with ``save_strategy="no"``).

While the user's module runs, ``watch_creation`` wraps ``Trainer.__init__`` to note the callbacks
present when it returns and where the user's code called it, ``Trainer.add_callback`` to note where
each later callback was added (for ``loopdoc check``'s file:line), and, for the duration of that ``__init__`` only, replaces ``os.makedirs``
by a function that skips exactly that one call (the path equal to ``args.output_dir``) and passes
every other call through; both are restored afterwards. If ``transformers.trainer`` is not
imported yet, an import hook wraps it the moment it is, so loopdoc imports no transformers module
before the user's code.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import threading
from collections.abc import Iterator
from types import ModuleType
from typing import Any

from ..introspect import AfterImport

MODULE = "transformers.trainer"

Position = tuple[Any, "int | None"]
"""``(SourceLocation, 1-based column or None)``, as ``introspect.caller_position`` returns it."""


class Observed(tuple):  # type: ignore[type-arg]
    """What ``watch_creation`` saw of one trainer: the ``id()`` of each callback ``on_init_end`` reached, in order
    (the tuple itself), plus ``created_at`` (where the user's code called ``Trainer(...)``, or ``None``) and
    ``added_at`` (``{id(callback): position}`` of each ``trainer.add_callback(...)`` the user's code made)."""

    created_at: Position | None
    added_at: dict[int, Position]

    def __new__(cls, ids: tuple[int, ...] = (), created_at: Position | None = None) -> Observed:
        self = super().__new__(cls, ids)
        self.created_at, self.added_at = created_at, {}
        return self


@contextlib.contextmanager
def watch_creation() -> Iterator[dict[int, Observed]]:
    """While the body runs, record ``{id(trainer): Observed((id(callback), ...))}`` at the end of each ``Trainer.__init__``.

    Every ``Trainer.__init__`` that runs meanwhile skips its ``os.makedirs(args.output_dir)``
    (nothing else it does is changed), so loading a file writes nothing.

    Yields:
        The dict, filled as trainers are built; each ``Observed`` is ``callback_handler.callbacks`` in order,
        as ``on_init_end`` reached them. Valid after the body for trainers still alive.
    """
    from ..introspect import caller_position

    created: dict[int, Observed] = {}
    restore: list[tuple[type, str, Any]] = []

    def patch(module: ModuleType) -> None:
        cls = module.Trainer
        original, original_add = cls.__init__, cls.add_callback

        @functools.wraps(original)
        def init(self: Any, *args: Any, **kwargs: Any) -> None:
            where = caller_position()
            with _no_output_dir(self):
                original(self, *args, **kwargs)
            handler = getattr(self, "callback_handler", None)
            created[id(self)] = Observed(tuple(id(cb) for cb in getattr(handler, "callbacks", ())), where)

        @functools.wraps(original_add)
        def add_callback(self: Any, callback: Any) -> Any:
            handler = getattr(self, "callback_handler", None)
            before = len(getattr(handler, "callbacks", ()))
            result = original_add(self, callback)
            seen, where = created.get(id(self)), caller_position()
            after = getattr(handler, "callbacks", ())
            if seen is not None and where is not None and len(after) > before:
                seen.added_at.setdefault(id(after[-1]), where)
            return result

        cls.__init__ = init
        cls.add_callback = add_callback
        restore.extend([(cls, "__init__", original), (cls, "add_callback", original_add)])

    hook = None
    if MODULE in sys.modules:
        patch(sys.modules[MODULE])
    else:
        hook = AfterImport(MODULE, patch)
        sys.meta_path.insert(0, hook)
    try:
        yield created
    finally:
        if hook is not None and hook in sys.meta_path:
            sys.meta_path.remove(hook)
        for cls, name, original in restore:
            setattr(cls, name, original)


_LOCK = threading.Lock()


@contextlib.contextmanager
def _no_output_dir(trainer: Any) -> Iterator[None]:
    """During one ``Trainer.__init__``: ``os.makedirs`` skips the trainer's ``args.output_dir`` and nothing else.

    ``Trainer.__init__`` sets ``self.args`` first (section 1), so the path is read at the call.
    Nested trainers (a ``__init__`` that builds another) each keep their own patch.
    """
    original = os.makedirs

    def makedirs(name: Any, *args: Any, **kwargs: Any) -> None:
        target = getattr(getattr(trainer, "args", None), "output_dir", None)
        if target is not None and _same_path(name, target):
            return None
        return original(name, *args, **kwargs)

    with _LOCK:
        os.makedirs = makedirs
    try:
        yield
    finally:
        with _LOCK:
            os.makedirs = original


def _same_path(a: Any, b: Any) -> bool:
    try:
        return os.path.abspath(os.fspath(a)) == os.path.abspath(os.fspath(b))
    except TypeError:
        return False

