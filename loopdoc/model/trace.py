"""The trace model: what a real, capped run of one call did, per event and place, with wall time.

Pure data, like ``loopdoc.model.loop``: written by a framework adapter's recorder
(``loopdoc trace``), read by the templates and by ``loopdoc.analysis.compare``.
JSON form: ``Trace.to_dict()`` / ``Trace.from_dict()``, described by
``loopdoc/model/trace.schema.json``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from .loop import Loop, json_shape

TRACE_SCHEMA_VERSION = "1.0"


@dataclass(frozen=True)
class HandlerTiming:
    """One callback's work at one event in one place.

    Attributes:
        callback: ``Callback.id`` as in the static model (class name, then ``Name-2`` …).
        function: ``__qualname__`` of what ran (``Class.__call__`` for a dispatch override).
        calls: how many times it ran.
        total_s, mean_s, max_s: wall time of ``cb(event)`` in seconds.
    """

    callback: str
    function: str
    calls: int
    total_s: float
    mean_s: float
    max_s: float


@dataclass(frozen=True)
class Cancellation:
    """A ``Cancel*Exception`` that happened.

    Attributes:
        exception: its class name.
        callback: ``Callback.id`` of the callback that raised it, or ``None`` when the
            trainer's own code raised it.
        count: how many times.
    """

    exception: str
    callback: str | None
    count: int


@dataclass(frozen=True)
class EventTrace:
    """What happened at one event in one place.

    Attributes:
        path: phase names from the top, the top one keyed as ``Loop.top_keys`` does (``"fit"``, ``"fit2"``).
        event: the event name.
        fired: how many times the trainer fired it there.
        handlers: callbacks whose methods ran, in run order of first appearance.
        cancellations: exceptions raised by this event's callbacks.
    """

    path: tuple[str, ...]
    event: str
    fired: int
    handlers: tuple[HandlerTiming, ...] = ()
    cancellations: tuple[Cancellation, ...] = ()


@dataclass(frozen=True)
class Trace:
    """A traced run of one call.

    Attributes:
        loop: the static model of the same call (the tree to annotate).
        call: the call that ran, e.g. ``"fit(1)"``.
        batches: at most this many batches ran per batch loop.
        events: every (path, event) that fired, in order of first firing.
        batch_s: wall time of the batches (``one_batch``) after the first of each batch loop, in
            seconds: the first is a warm-up (lazy set-up makes it slow) and is not timed here;
            0 when no loop ran a second batch.
        callback_batch_s: the part of ``batch_s`` spent in callbacks (the warm-up batches left out too).
        differences: where the run departed from ``loop``, in words (empty if it did not).
        after_loop: an exception fastai's own code raised after the loop had finished
            (``"IndexError: …"``), typically because ``batches`` capped the loop and
            ``get_preds`` reorders by dataset index; ``None`` when the call returned.
        kind: always ``"trace"``.
        schema_version: ``TRACE_SCHEMA_VERSION`` of the writer.
    """

    loop: Loop
    call: str
    batches: int
    events: tuple[EventTrace, ...]
    batch_s: float
    callback_batch_s: float
    differences: tuple[str, ...] = ()
    after_loop: str | None = None
    kind: str = "trace"
    schema_version: str = TRACE_SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict form (``loop`` as ``Loop.to_dict``); see ``from_dict``."""
        data = json_shape({**asdict(self), "loop": self.loop.to_dict()})
        return {"schema_version": data.pop("schema_version"), "kind": data.pop("kind"), **data}

    def to_json(self) -> str:
        """JSON text, 2-space indent, trailing newline."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Trace:
        """Build a ``Trace`` from a dict already valid against ``trace.schema.json``."""
        events = tuple(
            EventTrace(
                path=tuple(e["path"]), event=e["event"], fired=e["fired"],
                handlers=tuple(HandlerTiming(**h) for h in e["handlers"]),
                cancellations=tuple(Cancellation(**c) for c in e["cancellations"]),
            )
            for e in data["events"]
        )
        return cls(loop=Loop.from_dict(data["loop"]), call=data["call"], batches=data["batches"], events=events,
                   batch_s=data["batch_s"], callback_batch_s=data["callback_batch_s"],
                   differences=tuple(data["differences"]), after_loop=data["after_loop"],
                   schema_version=data["schema_version"])

    def event_map(self) -> dict[tuple[tuple[str, ...], str], EventTrace]:
        """``{(path, event): EventTrace}`` for annotating the static tree."""
        return {(e.path, e.event): e for e in self.events}

    def callback_totals(self) -> list[dict[str, Any]]:
        """Per callback over the whole run, most expensive first: ``callback``, ``calls``, ``total_s``, ``max_s``, ``events``."""
        totals: dict[str, dict[str, Any]] = {}
        for e in self.events:
            for h in e.handlers:
                t = totals.setdefault(h.callback, {"callback": h.callback, "calls": 0, "total_s": 0.0, "max_s": 0.0, "events": []})
                t["calls"] += h.calls
                t["total_s"] += h.total_s
                t["max_s"] = max(t["max_s"], h.max_s)
                if e.event not in t["events"]:
                    t["events"].append(e.event)
        return sorted(totals.values(), key=lambda t: (-t["total_s"], t["callback"]))
