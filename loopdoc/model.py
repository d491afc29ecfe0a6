"""The loop model: a serializable description of a callback-driven training loop.

The model knows nothing of any framework: phases, events, steps and callbacks are
data, and ``Loop.framework`` names the trainer they were read from. Extractors
(``loopdoc.extractors``) build it from a live trainer; renderers
(``loopdoc.render``) read only this model, so rendering a saved ``loop.json``
needs neither torch nor fastai.

JSON form: ``Loop.to_dict()`` / ``Loop.from_dict()`` round-trip exactly, and the
dict form is described by ``loopdoc/loop.schema.json`` (JSON Schema 2020-12).
``SCHEMA_VERSION`` is ``MAJOR.MINOR``: a reader refuses a newer major version.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SCHEMA_VERSION = "1.0"


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
    """

    id: str
    name: str
    qualname: str
    doc: str | None
    source: SourceLocation | None
    order: float | int | None
    flags: dict[str, bool] = field(default_factory=dict)
    receives_all: bool = False


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
        kind: always ``"phase"``.
    """

    name: str
    description: str
    children: tuple[Node, ...] = ()
    loop: str | None = None
    condition: str | None = None
    context: str | None = None
    kind: str = "phase"


Node = Phase | Event | Step


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
        raises ``KeyError`` or ``TypeError``.
        """
        return cls(
            schema_version=data["schema_version"],
            framework=Framework(**data["framework"]),
            versions=dict(data["versions"]),
            learner=LearnerSummary(**{**data["learner"], "metrics": tuple(data["learner"]["metrics"])}),
            call=data["call"],
            filtered_events=tuple(data["filtered_events"]),
            callbacks=tuple(_callback(c) for c in data["callbacks"]),
            phases=tuple(_node(p) for p in data["phases"]),
            notes=tuple(data["notes"]),
        )

    def _repr_html_(self) -> str:
        """Jupyter's HTML view: ``loopdoc.fragment.render_fragment`` (a fragment, not a page), titled, verbose.

        Anchors get a prefix made from the model's content, so that two different loops
        shown in one notebook do not share ids. Imports the renderer (jinja2) only when called.

        Returns:
            The HTML fragment.
        """
        import hashlib

        from .fragment import render_fragment

        prefix = "loopdoc-" + hashlib.sha256(self.to_json().encode("utf-8")).hexdigest()[:8] + "-"
        return render_fragment(self, verbose=True, heading_level=2, title=f"Training loop of {self.learner.loaded_from}",
                               id_prefix=prefix)

    def _repr_markdown_(self) -> str:
        """Jupyter's Markdown view: ``loopdoc.render.render(self, "md")``, imported only when called.

        Returns:
            The Markdown document.
        """
        from .render import render

        return render(self, "md")

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


def schema() -> dict[str, Any]:
    """Return the JSON Schema (2020-12) of ``Loop.to_dict()``, read from ``loopdoc/loop.schema.json``."""
    here = Path(__file__).with_name("loop.schema.json")  # a plain file in any normal install: no importlib.resources (~6 ms)
    if here.is_file():
        return json.loads(here.read_text(encoding="utf-8"))
    from importlib import resources

    return json.loads(resources.files("loopdoc").joinpath("loop.schema.json").read_text(encoding="utf-8"))


def load_json(path: str) -> Any:
    """Read a saved model or trace, checking it against its JSON Schema first.

    Args:
        path: a ``.json`` file written by ``loopdoc render -o loop.json`` (a ``Loop``)
            or ``loopdoc trace -o trace.json`` (a ``loopdoc.trace.Trace``, which has
            ``"kind": "trace"``); a UTF-8 byte order mark is allowed.

    Returns:
        The ``Loop`` or ``Trace``.

    Raises:
        LoadError: the file is missing, unreadable or not JSON.
        ModelError: a ``schema_version`` with a newer major version than
            ``SCHEMA_VERSION``, or a document that breaks the schema (the
            message names the field path, e.g. ``phases/0/children/3/name``).
    """
    from .errors import LoadError, ModelError

    try:
        with open(path, encoding="utf-8-sig") as f:
            data = json.load(f, parse_constant=_no_constant, parse_float=_finite_float)
    except FileNotFoundError as e:
        raise LoadError(f"{path}: no such file") from e
    except IsADirectoryError as e:
        raise LoadError(f"{path}: is a folder, not a .json file") from e
    except OSError as e:
        raise LoadError(f"{path}: cannot read: {e.strerror or e}") from e
    except json.JSONDecodeError as e:
        raise LoadError(f"{path}:{e.lineno}: not JSON: {e.msg}") from e
    except _NotFinite as e:
        raise LoadError(f"{path}: not JSON: {e}") from e
    except UnicodeDecodeError as e:
        raise LoadError(f"{path}: not JSON: not UTF-8 text (byte {e.start})") from e
    except RecursionError as e:
        raise LoadError(f"{path}: not JSON this reader accepts: nested too deeply") from e
    is_trace = isinstance(data, dict) and data.get("kind") == "trace"
    if is_trace:
        from .trace import TRACE_SCHEMA_VERSION as ours_text
        from .trace import Trace, trace_schema

        what, build, document_schema = "loopdoc trace", Trace.from_dict, trace_schema()
    else:
        what, build, document_schema, ours_text = "loopdoc loop model", Loop.from_dict, schema(), SCHEMA_VERSION
    version = data.get("schema_version") if isinstance(data, dict) else None
    if isinstance(version, str) and version.split(".")[0].isdigit():
        major, ours = int(version.split(".")[0]), int(ours_text.split(".")[0])
        if major > ours:
            raise ModelError(f"{path}: schema_version {version} is newer than this loopdoc reads "
                             f"({ours_text}); upgrade loopdoc")
    import jsonschema  # the validator: a well-kept library, not our own (about 60 ms to import)

    try:
        error = jsonschema.exceptions.best_match(_validator(document_schema).iter_errors(data))
    except RecursionError as e:
        raise ModelError(f"{path}: not a {what}: nested too deeply") from e
    if error is not None:
        where, message = _located(error)
        message = " ".join(message.split())
        if len(message) > 200:
            message = message[:199] + "…"
        raise ModelError(f"{path}: not a {what}: at {where}: {message}")
    broken = _broken_reference(data["loop"] if is_trace else data, ["loop"] if is_trace else [])
    if broken is not None:
        raise ModelError(f"{path}: not a {what}: at {broken[0]}: {broken[1]}")
    try:
        return build(data)
    except (KeyError, TypeError, ValueError) as e:  # the schema should have caught it
        raise ModelError(f"{path}: not a {what}: {type(e).__name__}: {e}") from e


class _NotFinite(ValueError):
    """``NaN``, ``Infinity`` or a number too large for a float: Python's ``json`` accepts them, JSON does not."""


def _no_constant(name: str) -> Any:
    raise _NotFinite(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise _NotFinite(f"{text[:40]} is too large for a number")
    return value


def _located(error: Any) -> tuple[str, str]:
    """``(field path, message)`` of a schema error, looking inside a failed ``anyOf`` over node kinds.

    ``children`` items are ``anyOf`` phase/event/step; the error jsonschema reports for a
    broken event is then "{…the whole event…} is not valid under any of the given schemas".
    This reports the error inside the branch whose ``kind`` matches the item instead, or,
    for an unknown ``kind``, which kinds are allowed.
    """
    from jsonschema.exceptions import best_match

    while error.validator in ("anyOf", "oneOf") and error.context:
        branches: dict[Any, list[Any]] = {}
        for sub in error.context:
            branches.setdefault(sub.schema_path[0] if sub.schema_path else None, []).append(sub)
        kind_errors = [e for errors in branches.values() for e in errors if e.validator == "const" and list(e.relative_path) == ["kind"]]
        matching = [errors for errors in branches.values() if not any(e in kind_errors for e in errors)]
        if len(matching) == 1:
            error = best_match(matching[0])
            continue
        if kind_errors and not matching and isinstance(error.instance, dict):
            kinds = ", ".join(repr(e.validator_value) for e in kind_errors)
            where = "/".join(str(p) for p in [*error.absolute_path, "kind"])
            return where, f"{error.instance.get('kind')!r} is not one of {kinds}"
        break
    where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
    if error.validator in ("anyOf", "oneOf"):
        return where, f"not valid under any of the given schemas ({type(error.instance).__name__})"
    return where, error.message


def _broken_reference(loop: dict[str, Any], prefix: list[str]) -> tuple[str, str] | None:
    """What the schema cannot say: callback ids are unique and every handler names one. ``(path, problem)`` or ``None``."""
    ids: set[str] = set()
    for i, cb in enumerate(loop["callbacks"]):
        if cb["id"] in ids:
            return "/".join([*prefix, "callbacks", str(i), "id"]), f"{cb['id']!r} is the id of an earlier callback"
        ids.add(cb["id"])
    stack = [([*prefix, "phases", str(i)], phase) for i, phase in enumerate(loop["phases"])]
    while stack:
        here, node = stack.pop(0)
        if node["kind"] == "phase":
            stack[:0] = [([*here, "children", str(i)], child) for i, child in enumerate(node["children"])]
        elif node["kind"] == "event":
            for i, handler in enumerate(node["handlers"]):
                if handler["callback"] not in ids:
                    return ("/".join([*here, "handlers", str(i), "callback"]),
                            f"{handler['callback']!r} is not the id of a callback in callbacks")
    return None


def _validator(document_schema: dict[str, Any]) -> Any:
    """A 2020-12 validator for ``document_schema`` that resolves ``$ref`` to the loop schema offline."""
    import jsonschema
    from referencing import Registry, Resource

    loop = schema()
    registry = Registry().with_resource(loop["$id"], Resource.from_contents(loop))
    return jsonschema.Draft202012Validator(document_schema, registry=registry)
