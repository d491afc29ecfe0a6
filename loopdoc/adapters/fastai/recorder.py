"""The recorder behind ``loopdoc trace`` for fastai: run a call for real and record what the loop did, with wall time.

How it measures (fastai 2.8): on the learner instance only, for the duration of the
call, ``_call_one`` is replaced by the same loop as fastai's
(``for cb in self.cbs.sorted('order'): cb(event_name)``) timing each ``cb(event_name)``
with ``time.perf_counter``; each callback's event methods get an instance-level wrapper
that notes they ran; ``all_batches`` stops after ``batches`` batches per loop and
``one_batch`` is timed. All of it is removed afterwards. Timings are wall time and vary
between runs; everything else is deterministic for a deterministic learner.

The first batch of every batch loop is a warm-up (the first batch pays for lazy set-up:
allocations, kernel selection, a data loader's workers starting) and is left out of
``Trace.batch_s`` and ``Trace.callback_batch_s``, which therefore time the batches after it;
each handler's own timings (``HandlerTiming``) count every call.

Nothing is saved: for the run, ``learn.path`` is a temporary folder (removed afterwards),
``learn.model_dir`` a relative one inside it, and the files fastai's own callbacks name are
moved into it (``SaveModelCallback`` and ``CSVLogger``'s ``fname``, the TensorBoard
callbacks' ``log_dir``, ``GatherPredsCallback``'s ``save_preds``/``save_targs``); ``lr_find``
keeps its temporary model under ``learn.path`` too. Every attribute is restored afterwards.
Beneath that, ``loopdoc.sandbox`` refuses any other write below the working directory, the
learner's folder and its original ``learn.path`` (the run then fails with one line naming the file).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import MethodType
from typing import Any

from ...errors import UsageError, raised_while_running
from ...model.loop import Loop
from ...model.trace import Cancellation, EventTrace, HandlerTiming, Trace
from ...sandbox import no_writes_under
from ..introspect import callback_ids, underlying
from .calls import import_for, parse_call
from .extract import run_order
from .wording import CANCELS

CANCEL_EXCEPTIONS = frozenset(exception for exception, _ in CANCELS.values())

PHASES = ("fit", "epoch", "train", "validate", "batch", "backward", "step")

# fastai's callbacks that write files, by (module, class), and the attributes naming what they write
# (fastai 2.8.12: callback/tracker.py, progress.py, tensorboard.py, core.py). Subclasses count too.
FILE_ATTRIBUTES = {
    ("fastai.callback.tracker", "SaveModelCallback"): ("fname",),
    ("fastai.callback.progress", "CSVLogger"): ("fname",),
    ("fastai.callback.tensorboard", "TensorBoardBaseCallback"): ("log_dir",),
    ("fastai.callback.core", "GatherPredsCallback"): ("save_preds", "save_targs"),
}


@dataclass
class _Stats:
    fired: int = 0
    handlers: dict[int, list[Any]] = field(default_factory=dict)  # id(cb) -> [function, calls, total, max]
    cancels: dict[tuple[str, int], int] = field(default_factory=dict)  # (exception, id(cb)) -> count


def run_trace(learn: Any, loop: Loop, call: str, namespace: dict[str, Any], batches: int = 3) -> Trace:
    """Run ``call`` on ``learn`` for real, at most ``batches`` batches per loop, and record it, saving nothing.

    Args:
        learn: the ``Learner``; it is trained by the call (that is what was asked for).
        loop: its static model for the same call, taken before the run (``loopdoc.loop(learn, call=call)``).
        call: e.g. ``"fit(1)"`` (see ``loopdoc.adapters.fastai.calls.CALLS``).
        namespace: names the call's arguments may use.
        batches: the cap per batch loop, at least 1.

    Returns:
        The ``Trace`` (its ``differences`` empty: the neutral ``loopdoc.analysis.compare`` fills them in).

    Raises:
        CallError: a bad call (``calls.parse_call``).
        UsageError: ``batches`` < 1.
        RunError: the call raised (``loopdoc.errors.raised_while_running``: the message names the exception;
            a write the run was refused names the file), unless its loop had run to its end first (see
            ``Trace.after_loop``); the learner's instrumentation is removed and its ``path``, ``model_dir``
            and callbacks' file attributes are restored first.
    """
    if batches < 1:
        raise UsageError(f"--batches {batches}: must be at least 1")
    name, args, kwargs = parse_call(call, namespace, learn)
    import_for(learn, name, call)
    with _saving_nothing(learn, namespace) as redirect:
        return _run(learn, loop, call, name, args, kwargs, batches, redirect)


def _run(learn: Any, loop: Loop, call: str, name: str, args: list[Any], kwargs: dict[str, Any], batches: int,
         redirect: Any) -> Trace:
    """``run_trace`` inside ``_saving_nothing``: ``redirect(cb)`` moves a callback's files into the temporary folder."""
    from fastai.callback.core import Callback, event
    from fastai.callback.core import _events as events

    stats: dict[tuple[tuple[str, ...], str], _Stats] = {}
    seen: dict[int, Any] = {}  # every callback met, in order of first appearance (run order)
    stack: list[str] = []
    abandoned: list[str] = []  # phases left without their after_ event other than by a cancel (an exception went through)
    tops: dict[str, int] = {}
    wrapped: dict[int, dict[str, Any]] = {}
    ran: list[str | None] = [None]
    batch_time = [0.0]
    callback_batch_time = [0.0]
    warming = [False]  # in the first batch of a batch loop: not timed
    failures: list[BaseException] = []  # exceptions other than fastai's Cancel…Exceptions raised by callbacks
    base_classes = set(Callback.__mro__)

    def instrument(cb: Any) -> None:
        if id(cb) in wrapped:
            return
        redirect(cb)
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
                left = stack.pop()
                if not event_name.startswith("after_cancel_"):  # a cancel ends the phases inside it; anything else raised
                    abandoned.append(left)
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
                    if type(e).__name__ not in CANCEL_EXCEPTIONS:
                        failures.append(e)  # a callback failed: the run failed, wherever fastai reports it
                    raise
                finally:
                    dt = time.perf_counter() - t0
                    function = dispatch.__qualname__ if dispatch is not Callback.__call__ else ran[0]
                    if function is not None:
                        h = rec.handlers.setdefault(id(cb), [function, 0, 0.0, 0.0])
                        h[1], h[2], h[3] = h[1] + 1, h[2] + dt, max(h[3], dt)
                        if "batch" in path and not warming[0]:
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
        warming[0] = i == 0
        t0 = time.perf_counter()
        try:
            one_batch(self, i, b)
        finally:
            if not warming[0]:
                batch_time[0] += time.perf_counter() - t0
            warming[0] = False

    for cb in run_order(list(learn.cbs)):  # the learner's own come first, as in the static model
        instrument(cb)
    patches = {"_call_one": call_one, "all_batches": all_batches, "one_batch": timed_one_batch}
    for attr, fn in patches.items():
        learn.__dict__[attr] = MethodType(fn, learn)
    after_loop = None
    try:
        getattr(learn, name)(*args, **kwargs)
    except Exception as e:
        if failures:  # the first callback that failed, not what fastai's clean-up raised after it
            raise raised_while_running(call, failures[0]) from e
        if stack or abandoned or not stats:
            # It raised inside the loop (or before it): a phase never reached its after_ event, though
            # a context manager's exit (validate, get_preds) may have fired after_epoch and after_fit.
            raise raised_while_running(call, e) from e
        # The loop ran to its end (every phase that began fired its after_ event); fastai's code
        # after it failed, typically on fewer batches than it expects (get_preds reordering by
        # dataset index) because of the cap.
        after_loop = f"{type(e).__name__}: {' '.join(str(e).split())}"
    finally:
        for attr in patches:
            learn.__dict__.pop(attr, None)
        for key, own in wrapped.items():
            cb = seen[key]
            for ev in events:
                cb.__dict__.pop(ev, None)
            cb.__dict__.update(own)
    names = callback_ids(list(seen.values()))
    traced = tuple(
        EventTrace(
            path=path, event=ev, fired=s.fired,
            handlers=tuple(HandlerTiming(names[k], f, n, tot, tot / n, mx) for k, (f, n, tot, mx) in s.handlers.items()),
            cancellations=tuple(Cancellation(exc, names.get(who), n) for (exc, who), n in s.cancels.items()),
        )
        for (path, ev), s in stats.items()
    )
    return Trace(loop, call.strip(), batches, traced, batch_time[0], callback_batch_time[0], after_loop=after_loop)


def _noting(fn: Any, ran: list[str | None]) -> Any:
    """``fn`` wrapped to note, in ``ran[0]``, the qualified name of the function that ran."""
    name = getattr(underlying(fn), "__qualname__", type(fn).__qualname__)

    def noted(*args: Any, **kwargs: Any) -> Any:
        ran[0] = name
        return fn(*args, **kwargs)

    return noted


@contextlib.contextmanager
def _saving_nothing(learn: Any, namespace: dict[str, Any]) -> Iterator[Any]:
    """The run's files in a temporary folder, and no write allowed into the user's folders; everything restored after.

    Yields:
        ``redirect(cb)``: point a callback's file attributes (``FILE_ATTRIBUTES``) into the folder.
    """
    folder = Path(tempfile.mkdtemp(prefix="loopdoc-trace-"))
    saved: list[tuple[Any, str, bool, Any]] = []  # (object, attribute, it had its own, the old value)

    def put(obj: Any, attr: str, value: Any) -> None:
        own = attr in vars(obj)
        saved.append((obj, attr, own, vars(obj).get(attr)))
        obj.__dict__[attr] = value  # past Callback.__setattr__, which warns about shadowing the learner

    def redirect(cb: Any) -> None:
        for attr in _file_attributes(cb):
            value = getattr(cb, attr, None)
            if attr == "log_dir":
                put(cb, attr, str(folder / "tensorboard"))
            elif attr in ("save_preds", "save_targs"):
                if value is not None:
                    (folder / attr).mkdir(exist_ok=True)
                    put(cb, attr, folder / attr)
            elif value is not None:  # a file name: just the name, under the learner's (temporary) path
                put(cb, attr, Path(value).name if isinstance(value, str) else Path(Path(value).name))

    protected = [os.getcwd()]
    with contextlib.suppress(TypeError, ValueError, OSError):
        protected.append(os.path.abspath(learn.path))
    if isinstance(namespace.get("__file__"), str):
        protected.append(os.path.dirname(os.path.abspath(namespace["__file__"])))
    put(learn, "path", folder)
    model_dir = getattr(learn, "model_dir", "models")
    if not isinstance(model_dir, (str, os.PathLike)) or os.path.isabs(model_dir) or ".." in Path(model_dir).parts:
        put(learn, "model_dir", "models")
    try:
        with no_writes_under(protected, [folder]):
            yield redirect
    finally:
        for obj, attr, own, old in reversed(saved):
            if own:
                obj.__dict__[attr] = old
            else:
                obj.__dict__.pop(attr, None)
        shutil.rmtree(folder, ignore_errors=True)


def _file_attributes(cb: Any) -> tuple[str, ...]:
    """The file attributes of ``cb`` by its classes (``FILE_ATTRIBUTES``), without importing a fastai module."""
    found: list[str] = []
    for klass in type(cb).__mro__:
        for attr in FILE_ATTRIBUTES.get((getattr(klass, "__module__", ""), klass.__name__), ()):
            if attr not in found:
                found.append(attr)
    return tuple(found)
