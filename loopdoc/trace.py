"""``loopdoc trace``: run a call for real and record what the loop did, with per-callback wall time.

The trace is the observed side of the loop model: every event fired, where (its phase
path), how often, which callbacks' methods actually ran there and how long each took
(total, mean, max, in seconds), the cancellations that happened, and how much of the
batch time went to callbacks. It carries the static ``Loop`` of the same call, so the
same templates draw the same tree, annotated; ``differences`` lists where the run
departed from the static model.

How it measures (fastai 2.8): on the learner instance only, for the duration of the
call, ``_call_one`` is replaced by the same loop as fastai's
(``for cb in self.cbs.sorted('order'): cb(event_name)``) timing each ``cb(event_name)``
with ``time.perf_counter``; each callback's event methods get an instance-level wrapper
that notes they ran; ``all_batches`` stops after ``batches`` batches per loop and
``one_batch`` is timed. All of it is removed afterwards. Timings are wall time and vary
between runs; everything else is deterministic for a deterministic learner.
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import asdict, dataclass, field, replace
from importlib import resources
from types import MethodType
from typing import Any

from .model import Loop, json_shape

TRACE_SCHEMA_VERSION = "1.0"
PHASES = ("fit", "epoch", "train", "validate", "batch", "backward", "step")


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
        batch_s: wall time of all batches (``one_batch``), in seconds.
        callback_batch_s: the part of ``batch_s`` spent in callbacks.
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


def trace_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of ``Trace.to_dict()``, from ``loopdoc/trace.schema.json``."""
    return json.loads(resources.files("loopdoc").joinpath("trace.schema.json").read_text(encoding="utf-8"))


@dataclass
class _Stats:
    fired: int = 0
    handlers: dict[int, list[Any]] = field(default_factory=dict)  # id(cb) -> [function, calls, total, max]
    cancels: dict[tuple[str, int], int] = field(default_factory=dict)  # (exception, id(cb)) -> count


def run_trace(learn: Any, loop: Loop, call: str, namespace: dict[str, Any], batches: int = 3) -> Trace:
    """Run ``call`` on ``learn`` for real, at most ``batches`` batches per loop, and record it.

    Args:
        learn: the ``Learner``; it is trained by the call (that is what was asked for).
        loop: its static model for the same call, taken before the run (``loopdoc.loop(learn, call=call)``).
        call: e.g. ``"fit(1)"`` (see ``loopdoc.extractors.fastai_call.CALLS``).
        namespace: names the call's arguments may use.
        batches: the cap per batch loop, at least 1.

    Returns:
        The ``Trace``; ``differences`` compares it with ``loop``.

    Raises:
        UsageError: a bad call or ``batches`` < 1.
        LoadError: the call raised (the message names the exception); the
            learner's instrumentation is removed first.
    """
    from fastai.callback.core import Callback, event
    from fastai.callback.core import _events as events

    from .errors import LoadError, UsageError
    from .extractors.fastai import _callback_ids
    from .extractors.fastai_call import import_for, parse_call

    if batches < 1:
        raise UsageError(f"--batches {batches}: must be at least 1")
    name, args, kwargs = parse_call(call, namespace)
    import_for(learn, name, call)
    stats: dict[tuple[tuple[str, ...], str], _Stats] = {}
    seen: dict[int, Any] = {}  # every callback met, in order of first appearance (run order)
    stack: list[str] = []
    tops: dict[str, int] = {}
    wrapped: dict[int, dict[str, Any]] = {}
    ran: list[str | None] = [None]
    batch_time = [0.0]
    callback_batch_time = [0.0]
    base_classes = set(Callback.__mro__)

    def instrument(cb: Any) -> None:
        if id(cb) in wrapped:
            return
        own = {ev: vars(cb)[ev] for ev in events if ev in vars(cb)}
        for ev in events:
            fn = own.get(ev)
            if fn is None:
                fn = next((vars(k)[ev] for k in type(cb).__mro__ if k not in base_classes and ev in vars(k)), None)
                fn = fn.__get__(cb) if hasattr(fn, "__get__") else fn
            if callable(fn):
                object.__setattr__(cb, ev, _noting(fn, ran))
        wrapped[id(cb)] = own
        seen[id(cb)] = cb

    def call_one(self: Any, event_name: str) -> None:
        if not hasattr(event, event_name):
            raise Exception(f"missing {event_name}")  # as fastai's Learner._call_one
        kind = event_name.split("_")[-1]
        if event_name.startswith("before_") and kind in PHASES:
            if not stack:  # a top-level phase, keyed as Loop.top_keys does: fit, fit2, …
                tops[kind] = tops.get(kind, 0) + 1
                stack.append(kind if tops[kind] == 1 else f"{kind}{tops[kind]}")
            else:
                stack.append(kind)
        elif kind in PHASES:
            while len(stack) > 1 and stack[-1] != kind:
                stack.pop()
        path = tuple(stack) if event_name != "after_create" else ("create",)
        rec = stats.setdefault((path, event_name), _Stats())
        rec.fired += 1
        try:
            for cb in self.cbs.sorted("order"):
                instrument(cb)
                dispatch = type(cb).__call__
                ran[0] = None
                t0 = time.perf_counter()
                try:
                    cb(event_name)
                except BaseException as e:
                    key = (type(e).__name__, id(cb))
                    rec.cancels[key] = rec.cancels.get(key, 0) + 1
                    raise
                finally:
                    dt = time.perf_counter() - t0
                    function = dispatch.__qualname__ if dispatch is not Callback.__call__ else ran[0]
                    if function is not None:
                        h = rec.handlers.setdefault(id(cb), [function, 0, 0.0, 0.0])
                        h[1], h[2], h[3] = h[1] + 1, h[2] + dt, max(h[3], dt)
                        if "batch" in path:
                            callback_batch_time[0] += dt
        finally:
            if event_name.startswith("after_") and not event_name.startswith("after_cancel_") and kind in PHASES and stack:
                stack.pop()

    def all_batches(self: Any) -> None:
        self.n_iter = len(self.dl)
        for o in itertools.islice(enumerate(self.dl), batches):
            self.one_batch(*o)

    one_batch = type(learn).one_batch

    def timed_one_batch(self: Any, i: int, b: Any) -> None:
        t0 = time.perf_counter()
        try:
            one_batch(self, i, b)
        finally:
            batch_time[0] += time.perf_counter() - t0

    from .extractors.fastai import run_order  # fastai's order, also when an `order` that raises would stop fastai's sort

    for cb in run_order(list(learn.cbs)):  # the learner's own come first, as in the static model
        instrument(cb)
    patches = {"_call_one": call_one, "all_batches": all_batches, "one_batch": timed_one_batch}
    for attr, fn in patches.items():
        learn.__dict__[attr] = MethodType(fn, learn)
    after_loop = None
    try:
        getattr(learn, name)(*args, **kwargs)
    except Exception as e:
        if stack or not stats:
            raise LoadError(f"--call {call!r}: raised {type(e).__name__} while running: {e}") from e
        # The loop ran to its end; fastai's code after it failed, typically on fewer batches
        # than it expects (get_preds reordering by dataset index) because of the cap.
        after_loop = f"{type(e).__name__}: {' '.join(str(e).split())}"
    finally:
        for attr in patches:
            learn.__dict__.pop(attr, None)
        for key, own in wrapped.items():
            cb = seen[key]
            for ev in events:
                cb.__dict__.pop(ev, None)
            cb.__dict__.update(own)
    names = _callback_ids(list(seen.values()))
    traced = tuple(
        EventTrace(
            path=path, event=ev, fired=s.fired,
            handlers=tuple(HandlerTiming(names[k], f, n, tot, tot / n, mx) for k, (f, n, tot, mx) in s.handlers.items()),
            cancellations=tuple(Cancellation(exc, names.get(who), n) for (exc, who), n in s.cancels.items()),
        )
        for (path, ev), s in stats.items()
    )
    result = Trace(loop, call.strip(), batches, traced, batch_time[0], callback_batch_time[0], after_loop=after_loop)
    return replace(result, differences=tuple(differences(result)))


def _noting(fn: Any, ran: list[str | None]) -> Any:
    """``fn`` wrapped to note, in ``ran[0]``, the qualified name of the function that ran."""
    from .extractors.fastai import _underlying

    name = getattr(_underlying(fn), "__qualname__", type(fn).__qualname__)

    def noted(*args: Any, **kwargs: Any) -> Any:
        ran[0] = name
        return fn(*args, **kwargs)

    return noted


def static_events(loop: Loop) -> dict[tuple[tuple[str, ...], str], list[str]]:
    """The static model's handlers per (path, event), top-level phases keyed by ``Loop.top_keys``."""
    return {(path, ev.name): [h.callback for h in ev.handlers] for path, ev in loop.iter_events(keyed=True)}


def differences(trace: Trace) -> list[str]:
    """Where the run departed from the static model, one sentence each, in loop order.

    Reports: events the model has that never fired (cancel events are expected not to,
    unless something cancelled); callbacks the model lists at an event that never ran
    there (switched off with ``run=False``, or stopped by a cancel); callbacks that ran
    where the model does not list them; callbacks that ran only once at an event that
    fired more often.
    """
    static = static_events(trace.loop)
    observed = trace.event_map()
    out = []
    for key, expected in static.items():
        path, ev = key
        if path[0] == "create":  # fired when the learner was built, before the trace
            continue
        where = f"{'/'.join(path)}:{ev}"
        seen = observed.get(key)
        if seen is None:
            if not ev.startswith("after_cancel_"):
                out.append(f"{where} never fired")
            continue
        ran = {h.callback: h for h in seen.handlers}
        for cb in expected:
            if cb not in ran:
                out.append(f"{where}: {cb} never ran (switched off with run=False, or stopped by a cancel)")
            elif ran[cb].calls == 1 and seen.fired > 1:
                out.append(f"{where}: {cb} ran only once of {seen.fired} times")
        for cb in ran:
            if cb not in expected:
                out.append(f"{where}: {cb} ran but the static model does not list it")
    for key in observed:
        if key not in static:
            out.append(f"{'/'.join(key[0])}:{key[1]} fired but is not in the static model")
    return out
