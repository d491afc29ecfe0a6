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
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ..model.loop import Finding, SourceLocation

if TYPE_CHECKING:
    from ..model.loop import Loop
    from ..model.trace import Trace
    from .words import Wording


@dataclass(frozen=True)
class Member:
    """One attribute that a callback's own classes (or the object itself) define: what the lint rules look at.

    Attributes:
        name: the attribute's name, e.g. ``"begin_fit"``.
        owner: who defines it, as messages name it: the defining class's ``__qualname__`` (``"LegacyNames"``),
            or the object's class name for an instance attribute.
        defined_by: ``module.QualifiedName`` of the defining class, or ``None`` for an instance attribute.
        callable: whether its value is callable (a function, method, ``functools.partial``, callable object);
            ``False`` for properties and plain values.
        source: where it is defined: the ``def`` or assignment in the class body; for an instance attribute
            holding a function, that function's ``def``; ``None`` when unknown.
        column: 1-based column (in characters) of that statement in ``source``'s line, or ``None``.
        referenced: whether the code of the object's own classes (or its instance functions) names it, e.g.
            ``self.before_logging()``: such a helper may run although the framework never calls it.
        value: for a plain value (``bool``, number, string, ``None``), its ``repr``; else ``None``.
    """

    name: str
    owner: str
    defined_by: str | None
    callable: bool
    source: SourceLocation | None = None
    column: int | None = None
    referenced: bool = False
    value: str | None = None


@dataclass(frozen=True)
class CallbackFacts:
    """What the lint rules may know of one object in the trainer's callback list, beyond the loop model.

    Attributes:
        callback: its ``Callback.id`` in the model.
        is_callback: whether it is an instance of the framework's callback base class
            (fastai: ``fastai.callback.core.Callback``).
        user: whether a class of its MRO is the user's own (defined outside the framework and outside
            installed packages, or in a module without a file, such as a notebook's ``__main__``).
        classes: ``module.QualifiedName`` of every class of its MRO, most derived first, without ``object``.
        source: where its most derived user class is defined (the ``class`` statement), or ``None``.
        column: 1-based column of that statement, or ``None``.
        added_at: where the user's code attached it (a trainer's construction with it, ``learn.add_cb(...)``,
            ``learn.to_fp16()``), as observed while the code ran; ``None`` when not observed.
        added_column: 1-based column of that call, or ``None``.
        members: the attributes its user classes and the object itself define, by name (``Member``); a
            framework base class's attributes are not listed unless a user class defines them again.
        extra: framework-specific facts for the adapter's own rules (fastai: ``"name"``, the learner attribute
            ``Learner.add_cb`` sets, or ``None``; ``"transform"``, whether it is a fastai ``Transform``;
            ``"at_create"``, whether it received ``after_create``; ``"handles"``, the events it has a method for).
    """

    callback: str
    is_callback: bool
    user: bool
    classes: tuple[str, ...] = ()
    source: SourceLocation | None = None
    column: int | None = None
    added_at: SourceLocation | None = None
    added_column: int | None = None
    members: tuple[Member, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Renamed:
    """An old name of an event (``LintFacts.renamed``).

    Attributes:
        event: the event's name now, e.g. ``"before_fit"``.
        why: where the old name comes from, as a clause: ``"fastai 2 renamed begin_* to before_*"``.
    """

    event: str
    why: str


@dataclass(frozen=True)
class LintFacts:
    """The facts ``loopdoc check``'s rules need beyond the loop model, supplied by the adapter (``Linting.facts``).

    Attributes:
        framework: the framework's name (``"fastai"``).
        version: its version, as messages cite it (``"2.8"``).
        events: every event name the framework's own loop can fire, read at run time
            (fastai: ``fastai.callback.core._events``).
        renamed: old or other-version names of events, by name (fastai: ``begin_fit`` → ``before_fit``;
            fastai 1's ``on_train_begin`` → ``before_fit``).
        prefixes: name prefixes that make an attribute look like an event handler (``before_``, ``after_``, …).
        callbacks: one ``CallbackFacts`` per object of ``Loop.callbacks``, in the same order.
        groups: the callback ids attached to the trainer at the same time, one tuple per loop the call runs
            (fastai: per ``fit``), in the trainer's list order; an object attached twice appears twice.
        created_at: where the user's code built the trainer, or ``None`` when not observed.
        created_column: 1-based column of that call, or ``None``.
        extra: framework-specific facts for the adapter's own rules (fastai: ``"inner_loop"``, the events
            ``run_train``/``run_valid`` filter; ``"base"``, the qualified name of fastai's ``Callback``).
    """

    framework: str
    version: str
    events: tuple[str, ...]
    renamed: Mapping[str, Renamed] = field(default_factory=dict)
    prefixes: tuple[str, ...] = ()
    callbacks: tuple[CallbackFacts, ...] = ()
    groups: tuple[tuple[str, ...], ...] = ()
    created_at: SourceLocation | None = None
    created_column: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def callback(self, cb_id: str) -> CallbackFacts | None:
        """The ``CallbackFacts`` of the callback ``cb_id`` (a ``Callback.id``), or ``None``."""
        return next((c for c in self.callbacks if c.callback == cb_id), None)


@dataclass(frozen=True)
class Rule:
    """One lint rule: a code, a level, and a function from the loop and its facts to findings.

    A rule is called like its function, ``rule(loop, facts)``. The engine (``loopdoc.analysis.lint``) sets
    each finding's ``code`` and ``level`` to the rule's, so a check function may leave them as anything.

    Attributes:
        code: its code, e.g. ``"LD101"``: letters then digits, stable across releases (README lists them).
        level: ``"error"``, ``"warning"`` or ``"info"`` (``LEVELS``).
        summary: what it finds, one line, for documentation and ``loopdoc check --help``.
        check: ``(Loop, LintFacts) -> Iterable[Finding]``; must not raise on any user object.
    """

    code: str
    level: str
    summary: str
    check: Callable[[Loop, LintFacts], Iterable[Finding]]

    def __call__(self, loop: Loop, facts: LintFacts) -> Iterable[Finding]:
        """The rule's findings for ``loop`` (``check(loop, facts)``)."""
        return self.check(loop, facts)


@runtime_checkable
class Linting(Protocol):
    """The optional members an adapter adds for ``loopdoc check`` (``Adapter`` does not require them).

    An adapter without them still works: ``loopdoc check`` then runs only the neutral rules that need no
    facts from a live trainer. ``loopdoc.analysis.lint.adapter_rules`` and ``adapter_facts`` read them with
    ``getattr``, so a plain class attribute ``rules = ()`` is enough.

    Attributes:
        rules: the framework's own rules (fastai: ``loopdoc.adapters.fastai.rules.RULES``).
    """

    rules: tuple[Rule, ...]

    def facts(self, trainer: Any, loop: Loop, namespace: dict[str, Any], observation: Any = None) -> LintFacts:
        """The ``LintFacts`` of ``loop`` (just built from ``trainer`` by this adapter's ``loop``).

        Args:
            trainer: the live trainer.
            loop: its model, from ``Adapter.loop``.
            namespace: the learner module's globals (for a ``--call``'s arguments).
            observation: what ``Adapter.watch`` saw while the trainer was built, or ``None``.

        Returns:
            The facts; never raises on a user's broken object.
        """
        ...


@runtime_checkable
class Adapter(Protocol):
    """A framework adapter. Every method may import the framework; attribute access must not.

    Optional: the ``Linting`` members (``rules``, ``facts``) for ``loopdoc check``.

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
