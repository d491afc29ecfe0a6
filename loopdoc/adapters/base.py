"""The adapter protocol: what the rest of loopdoc asks of a framework, and the wording it may supply.

A framework adapter is one package (``loopdoc.adapters.fastai``; later Lightning and Hugging
Face) exposing an object that satisfies ``Adapter``. loopdoc finds adapters through the
entry-point group ``loopdoc.frameworks`` (``loopdoc.adapters.registry``), so a third-party
package can add one. Everything that knows a framework lives in its adapter: recognising its
trainer object, observing what the user's code builds, extraction, the dry run of ``--call``,
the recorder used by ``trace``, its wording, and its lint rules.

An adapter package must import without its framework: its module level imports only loopdoc
and the standard library, so that rendering a saved model (which reads the adapter's
``Wording``) and choosing an adapter for an object never import torch or the framework.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from ..model.loop import Loop
    from ..model.trace import Trace


@dataclass(frozen=True)
class Wording:
    """How a framework's loop is talked about, for templates and for neutral analysis (diff, trace comparison).

    Plain text only (each output format escapes it). A framework without a concept leaves it ``None``
    and the sentence about it is left out.

    Attributes:
        framework: the framework's name, as ``Loop.framework.name``.
        trainer: what its trainer object is called, e.g. ``"Learner"``.
        callback: what its callback objects are called, e.g. ``"callback"``.
        event: what a point of the loop is called, e.g. ``"event"`` (Lightning: ``"hook"``).
        dispatch: the method a callback overrides to receive every event (fastai: ``"__call__"``), or ``None``.
        cancel: the exceptions that take a loop's cancel branches (fastai: ``"Cancel…Exception"``), or ``None``.
        order_key: the callback attribute the run order sorts by (fastai: ``"order"``), or ``None``.
        order_ties: how ties in ``order_key`` are broken, e.g. ``"ties in the order they were added"``.
        tie_decider: what breaks such a tie, as a subject (fastai: ``"the cbs list order"``).
        run_order: the run order in words when there is no ``order_key``.
        flags: the callback flags the framework reads, in the order to show them.
        switch: the flag that switches a callback off at every event (fastai: ``"run"``), or ``None``.
        filters: ``(flag, phase)``: a flag that filters callbacks at the events of that phase's batch loop.
        own_code: the framework's own code, as the subject of a sentence (``"fastai's own code"``).
        never_ran: why a callback listed at an event may not run there in a real run.
        file_kind: what a file with one of the adapter's ``suffixes`` holds (fastai: ``"pickled learner"``).
    """

    framework: str
    trainer: str = "trainer"
    callback: str = "callback"
    event: str = "event"
    dispatch: str | None = None
    cancel: str | None = None
    order_key: str | None = None
    order_ties: str = ""
    tie_decider: str = "the order they were added"
    run_order: str = "in the order the framework calls them"
    flags: tuple[str, ...] = ()
    switch: str | None = None
    filters: tuple[tuple[str, str], ...] = ()
    own_code: str = "the framework's own code"
    never_ran: str = "stopped early, or switched off at run time"
    file_kind: str = "saved trainer"


@runtime_checkable
class Adapter(Protocol):
    """A framework adapter. Every method may import the framework; attribute access must not.

    Attributes:
        name: the framework's name, as in ``Loop.framework.name`` (``"fastai"``).
        wording: its ``Wording``.
        calls: the methods ``--call`` may name (those that run a loop and write nothing).
        trace_call: the call ``loopdoc trace`` runs when none is given (fastai: ``"fit(1)"``), or ``None``
            when the adapter decides from the loaded objects (``loop`` and ``trace`` then get ``call=None``).
        modules: the framework's top-level module names (``("fastai",)``): messages about a file that
            imported one of them name only that framework's trainer.
        suffixes: file suffixes the adapter loads itself (fastai: ``.pkl`` for ``learn.export()``); ``()`` for none.
        warning_modules: a regular expression of module names whose import-time warnings loopdoc hides.
    """

    name: str
    wording: Wording
    calls: tuple[str, ...]
    trace_call: str | None
    modules: tuple[str, ...]
    suffixes: tuple[str, ...]
    warning_modules: str

    def is_trainer(self, obj: Any) -> bool:
        """Whether ``obj`` is this framework's trainer object; never imports the framework (if the user's code did
        not, ``obj`` cannot be one)."""
        ...

    def watch(self) -> contextlib.AbstractContextManager[dict[int, Any]]:
        """A context manager entered while the user's code runs; yields ``{id(trainer): observation}``, filled as
        trainers are built (e.g. which callbacks fastai's ``after_create`` reached). Must not import the framework."""
        ...

    def loop(self, trainer: Any, *, loaded_from: str, call: str | None, namespace: dict[str, Any],
             observation: Any = None, extra_callbacks: Any = None) -> Loop:
        """The ``Loop`` of ``call`` (``None``: the framework's default call) on ``trainer``, without running it."""
        ...

    def trace(self, trainer: Any, static: Loop, call: str, namespace: dict[str, Any], batches: int) -> Trace:
        """Run ``call`` for real, at most ``batches`` batches per loop, writing nothing outside a temporary folder."""
        ...

    def load_file(self, path: str, where: str, *, trust: bool) -> Any:
        """Load a trainer from a file with one of ``suffixes`` (and return it)."""
        ...

    def patch_trainer(self, name: str, method: Any) -> None:
        """Set ``method`` as a method of the framework's trainer class (a notebook helper); imports the framework."""
        ...


@contextlib.contextmanager
def watch_nothing() -> Iterator[dict[int, Any]]:
    """``Adapter.watch`` for a framework with nothing to observe while the user's code runs.

    Yields:
        An empty dict.
    """
    yield {}
