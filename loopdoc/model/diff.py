"""The diff model: what differs between two loop models, as ``loopdoc.analysis.diff.diff_loops`` finds it.

Pure data, like ``loopdoc.model.loop``: read by the diff templates and written as JSON
(``LoopDiff.to_dict()``, ``schema_version`` ``DIFF_SCHEMA_VERSION``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any, Literal

from .loop import json_shape

DIFF_SCHEMA_VERSION = "1.0"

EventStatus = Literal["same", "changed", "gained", "lost", "added", "removed"]


@dataclass(frozen=True)
class Change:
    """One value that differs between the two loops.

    Attributes:
        field: what it is, e.g. ``"order"``, ``"run_valid"``, ``"doc"``,
            ``"loss_func"``, ``"versions.torch"``, ``"note"``.
        old: the value in the old loop (``None`` when it has none).
        new: the value in the new loop (``None`` when it has none).
    """

    field: str
    old: Any
    new: Any


@dataclass(frozen=True)
class CallbackDiff:
    """A callback that was added, removed or changed.

    Attributes:
        id: ``Callback.id``.
        status: ``"added"``, ``"removed"`` or ``"changed"``.
        qualname: its class, as on the new side (the old side when removed).
        order: its ``order``, as on the new side (the old side when removed).
        flags: its flags, as on the new side (the old side when removed).
        changes: for ``"changed"``, what differs, in a fixed field order
            (``order``, flags, ``receives_all``, ``class``, ``doc``, ``source``).
        events: the names of the events it responds to on its side, in loop
            order, once each.
    """

    id: str
    status: str
    qualname: str
    order: float | int | None
    flags: dict[str, bool]
    changes: tuple[Change, ...] = ()
    events: tuple[str, ...] = ()


@dataclass(frozen=True)
class HandlerDiff:
    """One callback's response to one event, compared.

    Attributes:
        callback: ``Callback.id``.
        function: the function that runs (the old side's when removed).
        status: ``"same"``, ``"added"``, ``"removed"``, ``"moved"`` (its place in
            the run order changed) or ``"changed"`` (the same place, but see ``changes``).
        old_index: 1-based place among the event's callbacks in the old loop, or ``None``.
        new_index: 1-based place in the new loop, or ``None``.
        after: for ``"added"`` and ``"moved"``, the callback it now follows, or
            ``None`` when it now runs first.
        reason: for ``"added"``, ``"removed"`` and ``"moved"``, why, in a few words
            (e.g. ``"run_valid True → False"``, ``"order 5 → 60"``, ``"new callback"``,
            ``"callback removed"``, ``"now handles after_pred"``, ``"the event is new"``).
        changes: differences of the function itself (``function``, ``via``,
            ``defined_by``, ``doc``, ``source``); a moved handler may have some too.
    """

    callback: str
    function: str
    status: str
    old_index: int | None
    new_index: int | None
    after: str | None = None
    reason: str | None = None
    changes: tuple[Change, ...] = ()


@dataclass(frozen=True)
class EventDiff:
    """One event at one place in the loop, compared.

    Attributes:
        path: the phase path above it, e.g. ``"fit/epoch/train/batch"`` (see the module doc).
        name: the event's name, with ``[i]`` when its phase fires it more than once.
        status: ``"same"``; ``"changed"``; ``"gained"`` (no callbacks before, some
            now); ``"lost"`` (some before, none now); ``"added"`` or ``"removed"``
            (the event exists on one side only).
        filter: the flag that filters callbacks here (new side, else old), or ``None``.
        old: the callback ids in old run order (empty when the event is added).
        new: the callback ids in new run order (empty when the event is removed).
        handlers: every callback of either side, new run order with removed ones
            at their old place.
        kind: always ``"event"``.
    """

    path: str
    name: str
    status: EventStatus
    filter: str | None
    old: tuple[str, ...]
    new: tuple[str, ...]
    handlers: tuple[HandlerDiff, ...]
    kind: str = "event"

    @property
    def added(self) -> list[HandlerDiff]:
        """The handlers with status ``"added"``."""
        return [h for h in self.handlers if h.status == "added"]

    @property
    def removed(self) -> list[HandlerDiff]:
        """The handlers with status ``"removed"``."""
        return [h for h in self.handlers if h.status == "removed"]

    @property
    def moved(self) -> list[HandlerDiff]:
        """The handlers with status ``"moved"``."""
        return [h for h in self.handlers if h.status == "moved"]

    @property
    def changed(self) -> list[HandlerDiff]:
        """The handlers whose function changed (status ``"changed"``, or ``"moved"`` with changes)."""
        return [h for h in self.handlers if h.changes]


@dataclass(frozen=True)
class PhaseDiff:
    """A phase, compared: the merged tree of both loops.

    Attributes:
        name: the phase's name, with ``[i]`` when siblings share it.
        path: its own path, e.g. ``"fit/epoch"``.
        status: ``"same"``, ``"changed"`` (something below it differs),
            ``"added"`` or ``"removed"``.
        children: its events and phases (steps are not compared), new order
            with removed ones at their old place.
        kind: always ``"phase"``.
    """

    name: str
    path: str
    status: str
    children: tuple[PhaseDiff | EventDiff, ...]
    kind: str = "phase"

    def events(self) -> list[EventDiff]:
        """Return every event in this phase and the phases below it, in loop order."""
        out: list[EventDiff] = []
        for child in self.children:
            out.extend([child] if isinstance(child, EventDiff) else child.events())
        return out

    def callbacks(self) -> list[str]:
        """Return the callbacks at any of its events, in the order they first appear (new side, then old)."""
        ids = [h.callback for e in self.events() for h in e.handlers]
        return list(dict.fromkeys(ids))


@dataclass(frozen=True)
class Side:
    """What one side of the comparison is.

    Attributes:
        loaded_from: the model's ``LearnerSummary.loaded_from``, e.g.
            ``"git:HEAD~1:learner.py:learn"``.
        framework: name and version, e.g. ``"fastai 2.8.12"``.
        call: the loop's call, e.g. ``"fit"``.
    """

    loaded_from: str
    framework: str
    call: str


@dataclass(frozen=True)
class LoopDiff:
    """Every difference between two loops that matters at run time (and, unless ignored, for review).

    Attributes:
        old: the old side.
        new: the new side.
        ignored: the ``IGNORABLE`` categories left out, sorted.
        learner: learner-level changes: ``call``, ``model``, ``loss_func``,
            ``opt_func``, ``metrics``, ``framework``, ``versions.NAME``, and one
            ``note`` per note added (``old`` ``None``) or removed (``new`` ``None``).
        callbacks: callbacks added, removed or changed: new run order, removed
            ones at their old place.
        phases: the merged phase tree, every event of both loops with its status.
        schema_version: ``DIFF_SCHEMA_VERSION`` (``MAJOR.MINOR``) of this form.
    """

    old: Side
    new: Side
    ignored: tuple[str, ...]
    learner: tuple[Change, ...]
    callbacks: tuple[CallbackDiff, ...]
    phases: tuple[PhaseDiff, ...]
    schema_version: str = DIFF_SCHEMA_VERSION

    @property
    def same(self) -> bool:
        """``True`` when nothing differs (after ``ignored``)."""
        return not self.learner and not self.callbacks and not self.events()

    def events(self) -> list[EventDiff]:
        """Return the events whose status is not ``"same"``, in merged loop order."""
        return [e for e in self.all_events() if e.status != "same"]

    def whole_phases(self) -> list[PhaseDiff]:
        """Return the phases that exist on one side only (status ``"added"`` or ``"removed"``), outermost only, in loop order."""
        out: list[PhaseDiff] = []

        def walk(node: PhaseDiff) -> None:
            if node.status in ("added", "removed"):
                out.append(node)
            else:
                for child in node.children:
                    if isinstance(child, PhaseDiff):
                        walk(child)

        for p in self.phases:
            walk(p)
        return out

    def events_by_phase(self) -> list[tuple[str, list[EventDiff]]]:
        """Return the changed events grouped by phase path, leaving out those inside ``whole_phases()``.

        Returns:
            ``[(path, [EventDiff, ...]), ...]``: paths in the order they first appear, events in loop order.
        """
        inside = {id(e) for p in self.whole_phases() for e in p.events()}
        groups: dict[str, list[EventDiff]] = {}
        for e in self.events():
            if id(e) not in inside:
                groups.setdefault(e.path, []).append(e)
        return list(groups.items())

    def doc_changes(self) -> list[tuple[str, Change]]:
        """Return every docstring change once: ``(who, change)``, who a callback id or a function's qualname.

        A function's docstring shows at each event it handles; it is listed once.
        """
        out: list[tuple[str, Change]] = []
        seen: set[tuple[str, Any, Any]] = set()
        items = [(cb.id, ch) for cb in self.callbacks for ch in cb.changes]
        items += [(h.function, ch) for e in self.events() for h in e.handlers for ch in h.changes]
        for who, ch in items:
            if ch.field == "doc" and (who, ch.old, ch.new) not in seen:
                seen.add((who, ch.old, ch.new))
                out.append((who, ch))
        return out

    def all_events(self) -> list[EventDiff]:
        """Return every event of the merged tree, in loop order."""
        out: list[EventDiff] = []

        def walk(node: PhaseDiff | EventDiff) -> None:
            if isinstance(node, EventDiff):
                out.append(node)
            else:
                for child in node.children:
                    walk(child)

        for p in self.phases:
            walk(p)
        return out

    def summary(self) -> dict[str, int]:
        """Return counts: ``learner`` changes, ``callbacks`` added/removed/changed, ``events`` changed, and per handler status.

        Returns:
            ``{"learner": n, "callbacks": n, "events": n, "added": n, "removed": n, "moved": n, "changed": n}``,
            the last four counting handlers over all events.
        """
        events = self.events()
        handlers = [h for e in events for h in e.handlers]
        return {
            "learner": len(self.learner),
            "callbacks": len(self.callbacks),
            "events": len(events),
            "added": sum(h.status == "added" for h in handlers),
            "removed": sum(h.status == "removed" for h in handlers),
            "moved": sum(h.status == "moved" for h in handlers),
            "changed": sum(bool(h.changes) for h in handlers),
        }

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready dict form.

        Returns:
            ``schema_version`` first, then ``same`` and ``summary``, then the fields
            (tuples as lists); events keep their ``kind`` so the tree can be walked.
        """
        data = json_shape(asdict(self))
        version = data.pop("schema_version")
        return {"schema_version": version, "same": self.same, "summary": self.summary(), **data}

    def to_json(self) -> str:
        """Return ``to_dict()`` as JSON text: 2-space indent, UTF-8 kept, trailing newline."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"
