"""The loop model: a serializable description of a callback-driven training loop.

The model knows nothing of any framework: phases, events, steps and callbacks are
data, and ``Loop.framework`` names the trainer they were read from. Framework adapters
(``loopdoc.adapters``) build it from a live trainer; renderers (``loopdoc.rendering``)
read only this model, so rendering a saved ``loop.json`` needs neither torch nor fastai.
This module imports nothing else of loopdoc at module level (see ``_notebook``).

JSON form: ``Loop.to_dict()`` / ``Loop.from_dict()`` round-trip exactly, and the
dict form is described by ``loopdoc/model/loop.schema.json`` (JSON Schema 2020-12);
``loopdoc.model.documents`` reads and checks saved files.
``SCHEMA_VERSION`` is ``MAJOR.MINOR``: a reader refuses a newer major version.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

SCHEMA_VERSION = "1.1"

LEVELS = ("info", "warning", "error")
"""``Finding.level`` values, least severe first."""


@dataclass(frozen=True)
class SourceLocation:
    """Where a class or function is defined.

    Attributes:
        file: path as shown to readers, POSIX separators; relative to the
            working directory or to the ``sys.path`` entry it was imported
            from when it lies under one, else absolute.
        line: 1-based line of the definition, or ``None`` when unknown.
    """

    file: str
    line: int | None = None


@dataclass(frozen=True)
class Callback:
    """One callback attached to the loop.

    Attributes:
        id: unique within the loop and safe in an URL fragment: the class name,
            suffixed ``-2``, ``-3`` … for further instances of one class.
        name: class name, e.g. ``"Recorder"``.
        qualname: ``module.QualifiedName`` of the class.
        doc: the class docstring, cleaned (``inspect.cleandoc``), or ``None``.
        source: where the class is defined, or ``None`` (built-in or dynamic).
        order: the framework's sort key (fastai's ``Callback.order``), or ``None``.
        flags: the framework's switches by name, in a fixed order
            (fastai: ``run``, ``run_train``, ``run_valid``).
        receives_all: ``True`` when the callback overrides dispatch itself
            (fastai: a subclass defining ``__call__``) and so receives every event.
        kind: what sort of object it is, in the framework's terms: ``"callback"``; Lightning
            also has ``"module"`` (the ``LightningModule``) and ``"datamodule"``.
        origin: how it came into the loop when the trainer was not built with it, in words
            (``"added by fit_one_cycle"``, ``"configure_callbacks()"``, ``"Lightning default"``), or ``None``.
    """

    id: str
    name: str
    qualname: str
    doc: str | None
    source: SourceLocation | None
    order: float | int | None
    flags: dict[str, bool] = field(default_factory=dict)
    receives_all: bool = False
    kind: str = "callback"
    origin: str | None = None


@dataclass(frozen=True)
class Handler:
    """A callback's response to one event: the function that runs.

    Attributes:
        callback: ``Callback.id`` of the callback that responds.
        function: ``__qualname__`` of the function that runs, e.g.
            ``"Recorder.after_batch"`` or ``"<lambda>"``.
        via: how dispatch reaches it: ``"method"`` (defined on the class or a
            base), ``"instance"`` (an attribute of the instance, e.g. fastai's
            ``Callback(before_batch=f)``) or ``"dispatch"`` (the callback's own
            dispatch method, e.g. an overridden ``__call__``).
        defined_by: ``module.QualifiedName`` of the class that defines it, or
            ``None`` for an instance attribute.
        doc: the function's own docstring, cleaned, or ``None``.
        source: where the function is defined, or ``None``.
    """

    callback: str
    function: str
    via: str
    defined_by: str | None
    doc: str | None
    source: SourceLocation | None


@dataclass(frozen=True)
class Cancel:
    """How an ``after_cancel_*`` event is reached and where control goes after it.

    Attributes:
        exception: name of the exception that triggers the event,
            e.g. ``"CancelBatchException"``.
        next: name of the event that runs after it, e.g. ``"after_batch"``.
        description: one sentence on what is skipped and what follows.
    """

    exception: str
    next: str
    description: str


@dataclass(frozen=True)
class Event:
    """One event fired at one place in the loop, with the callbacks that respond.

    Attributes:
        name: the event's name, e.g. ``"before_batch"``.
        description: when it fires and what the trainer holds at that point.
        handlers: the responding callbacks in the order the trainer runs them.
        filter: the callback flag that decides membership at this place
            (fastai: ``"run_train"`` in the training batch loop, ``"run_valid"``
            in the validation batch loop), or ``None`` when no flag filters it.
        cancel: for a cancel event, what triggers it; else ``None``.
        kind: always ``"event"``.
    """

    name: str
    description: str
    handlers: tuple[Handler, ...] = ()
    filter: str | None = None
    cancel: Cancel | None = None
    kind: str = "event"


@dataclass(frozen=True)
class Step:
    """Work the trainer does itself between events (no callback runs).

    Attributes:
        name: short label, e.g. ``"forward"``.
        code: the statement as the trainer writes it, e.g. ``"self.pred = self.model(*self.xb)"``.
        description: what it does, in words.
        condition: when it runs, or ``None`` when always.
        kind: always ``"step"``.
    """

    name: str
    code: str
    description: str
    condition: str | None = None
    kind: str = "step"


@dataclass(frozen=True)
class Phase:
    """A stretch of the loop bracketed by events, possibly repeated.

    Attributes:
        name: the phase's name; for fastai the ``_with_events`` type
            (``fit``, ``epoch``, ``train``, ``validate``, ``batch``,
            ``backward``, ``step``) or ``create`` for ``Learner.__init__``.
        description: what the phase does.
        children: events, steps and nested phases in execution order.
        loop: how it repeats (e.g. ``"for each batch of dls.train"``), or ``None``.
        condition: when it runs at all, or ``None`` when always.
        context: a context it runs under (e.g. ``"torch.no_grad()"``), or ``None``.
        stage: which part of training it belongs to, for colour and grouping: ``"train"``,
            ``"validate"``, ``"test"`` or ``"predict"`` (its nested phases inherit it), or ``None``.
        kind: always ``"phase"``.
    """

    name: str
    description: str
    children: tuple[Node, ...] = ()
    loop: str | None = None
    condition: str | None = None
    context: str | None = None
    stage: str | None = None
    kind: str = "phase"


Node = Phase | Event | Step


@dataclass(frozen=True)
class Finding:
    """Something ``loopdoc check`` found: a handler that never runs, a setup that surprises.

    Attributes:
        code: the rule's code, e.g. ``"LD101"``.
        level: ``"error"``, ``"warning"`` or ``"info"`` (``LEVELS``).
        message: one sentence, true of a real run (``"LegacyNames.begin_fit is never called: …"``).
        source: where it is, in the user's code (the method or class; else the callbacks' construction), or ``None``.
        column: 1-based column in ``source``'s line, or ``None``.
        callback: ``Callback.id`` of the callback it is about, or ``None``.
        name: the attribute it is about (a method name such as ``"begin_fit"``), or ``None``.
    """

    code: str
    level: str
    message: str
    source: SourceLocation | None = None
    column: int | None = None
    callback: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class FlowSetter:
    """One place that sets a control flag.

    Attributes:
        callback: ``Callback.id`` of the callback that sets it.
        event: the event at which it does.
        value: the value it sets, as written (``"True"``), or ``None`` when computed.
        condition: when it does, in words (``"every 50 steps (logging_steps=50)"``), or ``None`` for always.
    """

    callback: str
    event: str
    value: str | None = None
    condition: str | None = None


@dataclass(frozen=True)
class Flow:
    """A control flag as data flow: who sets it where, and which part of the loop reads it.

    Hugging Face's ``TrainerControl`` flags (``should_log``, ``should_evaluate``, …), Lightning's
    ``trainer.should_stop``.

    Attributes:
        flag: the flag, e.g. ``"control.should_evaluate"``.
        description: what it makes the loop do when set.
        set_by: the places that set it, in loop order.
        read_by: the places that read it, in words, in loop order (``"after on_step_end: evaluate()"``).
    """

    flag: str
    description: str
    set_by: tuple[FlowSetter, ...] = ()
    read_by: tuple[str, ...] = ()


@dataclass(frozen=True)
class Framework:
    """The trainer the loop was read from.

    Attributes:
        name: e.g. ``"fastai"``.
        version: its version string, e.g. ``"2.8.12"``.
    """

    name: str
    version: str


@dataclass(frozen=True)
class LearnerSummary:
    """What was documented: the trainer object and where it came from.

    Attributes:
        loaded_from: the spec it was loaded from, e.g. ``"examples/synth.py:learn"``.
        model: ``module.QualifiedName`` of the model class.
        loss_func: name of the loss function or its class, or ``None``.
        opt_func: name of the optimizer function, or ``None``.
        metrics: metric names, in the trainer's order.
    """

    loaded_from: str
    model: str
    loss_func: str | None
    opt_func: str | None
    metrics: tuple[str, ...] = ()


@dataclass(frozen=True)
class Loop:
    """The whole model of one training loop.

    Attributes:
        framework: the trainer it was read from.
        versions: versions of the packages that shape the loop, by name.
        learner: what was documented.
        call: the call whose loop this is, e.g. ``"fit"``.
        filtered_events: events that the flags named by ``Event.filter`` can
            suppress; all other events reach every running callback.
        callbacks: every callback, in the trainer's run order.
        phases: the top-level phases in execution order.
        notes: warnings about this loop a reader should see, in plain words.
        findings: what ``loopdoc check``'s rules found, in source order (``Finding``).
        flows: control flags as data flow (``Flow``), in loop order.
        schema_version: ``SCHEMA_VERSION`` of the writer.
    """

    framework: Framework
    versions: dict[str, str]
    learner: LearnerSummary
    call: str
    filtered_events: tuple[str, ...]
    callbacks: tuple[Callback, ...]
    phases: tuple[Phase, ...]
    notes: tuple[str, ...] = ()
    findings: tuple[Finding, ...] = ()
    flows: tuple[Flow, ...] = ()
    schema_version: str = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready dict form (tuples become lists, ``schema_version`` first); see ``from_dict``."""
        data = json_shape(asdict(self))
        return {"schema_version": data.pop("schema_version"), **data}

    def to_json(self) -> str:
        """Return the model as JSON text: 2-space indent, UTF-8 kept, trailing newline."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Loop:
        """Build a ``Loop`` from its dict form.

        The dict must already be valid against ``loop.schema.json``
        (``load_json`` checks that first); a dict that is not
        raises ``KeyError`` or ``TypeError``. Fields that schema 1.0 did not have take their defaults.
        """
        return cls(
            schema_version=data["schema_version"],
            framework=Framework(**data["framework"]),
            versions=dict(data["versions"]),
            learner=LearnerSummary(**{**data["learner"], "metrics": tuple(data["learner"]["metrics"])}),
            call=data["call"],
            filtered_events=tuple(data["filtered_events"]),
            callbacks=tuple(_callback(c) for c in data["callbacks"]),
            phases=tuple(_phase(p) for p in data["phases"]),
            notes=tuple(data["notes"]),
            findings=tuple(_finding(f) for f in data.get("findings", ())),
            flows=tuple(_flow(f) for f in data.get("flows", ())),
        )

    def __repr__(self) -> str:
        """One line, for ``repr()`` and a notebook's ``text/plain``: ``<Loop fastai 2.8.12 fit of examples/synth.py:learn:
        3 callbacks, 24 events>`` (events: distinct event names). Computed here, without the renderer."""
        return f"<Loop {self.headline()}>"

    def headline(self) -> str:
        """What the loop is, in one line: ``"fastai 2.8.12 fit of examples/synth.py:learn: 3 callbacks, 24 events"``.

        Returns:
            Framework and version, the call, ``loaded_from``, the number of callbacks and of distinct
            event names (an event that fires in several phases counts once), as the model holds them
            (not escaped; a renderer escapes it).
        """
        events = len({event.name for _, event in self.iter_events()})
        n = len(self.callbacks)
        return (f"{self.framework.name} {self.framework.version} {self.call} of {self.learner.loaded_from}: "
                f"{n} callback{'' if n == 1 else 's'}, {events} event{'' if events == 1 else 's'}")

    def _repr_html_(self) -> str:
        """Jupyter's HTML view: a collapsed ``<details>`` whose summary is the headline, the HTML fragment inside;
        see ``loopdoc.rendering.notebook``."""
        return _notebook("html", self)

    def _repr_markdown_(self) -> str:
        """Jupyter's Markdown view: the Markdown format; see ``loopdoc.rendering.notebook``."""
        return _notebook("md", self)

    def top_keys(self) -> list[str]:
        """Unique keys of the top-level phases: the name, then ``name2``, ``name3`` … for repeats.

        ``fine_tune`` runs two fits: ``["create", "fit", "fit2"]``. Page anchors and trace
        paths use these keys, so the first ``fit`` keeps the plain name.
        """
        seen: dict[str, int] = {}
        keys = []
        for phase in self.phases:
            seen[phase.name] = seen.get(phase.name, 0) + 1
            keys.append(phase.name if seen[phase.name] == 1 else f"{phase.name}{seen[phase.name]}")
        return keys

    def iter_events(self, keyed: bool = False) -> list[tuple[tuple[str, ...], Event]]:
        """Return every event with the path of phase names above it, in order.

        Args:
            keyed: name the top-level phase by its ``top_keys`` key (``fit2``), so that
                paths are unique when a phase repeats.

        Returns:
            ``[(("fit", "epoch", "train", "batch"), Event), ...]``.
        """
        out: list[tuple[tuple[str, ...], Event]] = []

        def walk(phase: Phase, path: tuple[str, ...]) -> None:
            here = path + (phase.name,)
            for child in phase.children:
                if isinstance(child, Phase):
                    walk(child, here)
                elif isinstance(child, Event):
                    out.append((here, child))

        for key, p in zip(self.top_keys(), self.phases, strict=True):
            start = len(out)
            walk(p, ())
            if keyed:
                out[start:] = [((key, *path[1:]), ev) for path, ev in out[start:]]
        return out


def json_shape(obj: Any) -> Any:
    """``obj`` with every tuple turned into a list, recursively: the shape ``json.loads`` gives back.

    Used by every ``to_dict`` (``Loop``, ``Trace``, ``LoopDiff``), so that a document equals
    its own JSON round trip.
    """
    if isinstance(obj, dict):
        return {k: json_shape(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_shape(v) for v in obj]
    return obj


def _source(d: dict[str, Any] | None) -> SourceLocation | None:
    return None if d is None else SourceLocation(**d)


def _callback(d: dict[str, Any]) -> Callback:
    return Callback(**{**d, "source": _source(d["source"]), "flags": dict(d["flags"])})


def _finding(d: dict[str, Any]) -> Finding:
    return Finding(**{**d, "source": _source(d.get("source"))})


def _flow(d: dict[str, Any]) -> Flow:
    return Flow(**{**d, "set_by": tuple(FlowSetter(**s) for s in d["set_by"]), "read_by": tuple(d["read_by"])})


def _phase(d: dict[str, Any]) -> Phase:
    """A top-level node, which the schema requires to be a phase."""
    node = _node(d)
    if not isinstance(node, Phase):
        raise ValueError(f"a top-level node is {a_kind(node)}, not a phase")
    return node


def a_kind(node: Node) -> str:
    """``"an event"``/``"a step"``/``"a phase"``: a node's kind with its article, for messages."""
    return ("an " if node.kind[0] in "aeiou" else "a ") + node.kind


def _node(d: dict[str, Any]) -> Node:
    kind = d["kind"]
    if kind == "phase":
        return Phase(**{**d, "children": tuple(_node(c) for c in d["children"])})
    if kind == "event":
        handlers = tuple(Handler(**{**h, "source": _source(h["source"])}) for h in d["handlers"])
        cancel = None if d["cancel"] is None else Cancel(**d["cancel"])
        return Event(**{**d, "handlers": handlers, "cancel": cancel})
    if kind == "step":
        return Step(**d)
    raise ValueError(f"unknown node kind {kind!r}")


def _notebook(kind: str, loop: Loop) -> str:
    """The model layer's one back-edge: the notebook views call the renderer. Every ``_repr_*_`` method of
    ``Loop`` (a notebook's views) goes through this one function (``tests/fastai/test_notebook.py`` checks).

    Imported lazily, when Jupyter asks for a view, so that the model imports nothing else of
    loopdoc (nor jinja2) at module level.
    """
    from ..rendering.notebook import notebook_view  # lazy on purpose: the model layer's only back-edge

    return notebook_view(kind, loop)
