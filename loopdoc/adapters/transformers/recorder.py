"""The recorder behind ``loopdoc trace`` for a ``Trainer``: run a call for real, capped, and record what the loop did.

The run is capped and kept off the user's disk:

- ``train()``: ``args.max_steps`` is lowered to ``batches`` update steps when the run would be longer;
- every evaluation and prediction loop sees at most ``batches`` batches (the eval datasets and the
  call's dataset are cut to their first ``batches * per_device_eval_batch_size`` examples:
  ``Dataset.select`` for a ``datasets.Dataset``, ``torch.utils.data.Subset`` otherwise);
- ``args.output_dir`` points into a temporary folder for the run (checkpoints, TensorBoard logs
  under ``output_dir/runs``), which is deleted afterwards.

Everything is restored afterwards (the trainer is trained by the run: its model, optimizer and
``state`` are what training left). A trainer with ``push_to_hub=True`` is refused (the run would
use the network). The trace's loop is the static model of the capped run (``extract.build`` after
the caps), with a note saying what was capped.

How it measures (transformers 5.24): on the instances only, for the duration of the call, each
``CallbackHandler.on_<event>`` is wrapped to count the event at its place in the phase tree, and
each callback's event methods get an instance-level wrapper timing them with ``time.perf_counter``
(``CallbackHandler.call_event`` is the library's own). The place of an event follows from the
Trainer methods it happens inside (``_maybe_log_save_evaluate``, ``evaluate``, ``predict``; wrapped
on the instance) and from whether the last ``on_step_end`` or ``on_epoch_end`` came before the block.
``batch_s`` is the wall time of the loops over batches (``_run_epoch`` and ``evaluation_loop``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ...errors import UsageError, raised_while_running
from ...model.loop import Loop
from ...model.trace import EventTrace, HandlerTiming, Trace
from ..introspect import get, underlying
from . import plan as plans
from .calls import Call, parse_call
from .extract import build, default_call, events


@dataclass
class _Stats:
    fired: int = 0
    handlers: dict[int, list[Any]] = field(default_factory=dict)  # id(cb) -> [function, calls, total, max]


def run_trace(trainer: Any, call: str | None, namespace: dict[str, Any], batches: int = 3, *, loaded_from: str = "<trainer>",
              at_init: Any = None) -> Trace:
    """Run ``call`` on ``trainer`` for real, capped, and record every event with the callbacks' wall time.

    Args:
        trainer: the ``Trainer``; it is trained (or evaluated) by the call.
        call: ``"train()"``, ``"evaluate()"``, ``"predict(ds)"`` (``calls.parse_call``); ``None``: ``extract.default_call``.
        namespace: names the call's arguments may use.
        batches: the cap (see the module doc), at least 1.
        loaded_from: the spec, for the model.
        at_init: ``id()`` of the callbacks that received ``on_init_end``, or ``None``.

    Returns:
        The ``Trace`` (its ``differences`` empty: the neutral ``loopdoc.analysis.compare`` fills them in).

    Raises:
        CallError: a bad call (``calls.parse_call``), or one the trainer cannot make.
        UsageError: ``batches`` < 1, or ``push_to_hub=True``.
        RunError: the call raised (``loopdoc.errors.raised_while_running``: the message names the exception); the
            instrumentation and the caps are undone first.
    """
    if batches < 1:
        raise UsageError(f"--batches {batches}: must be at least 1")
    parsed = parse_call(call, namespace, trainer) if call is not None else default_call(trainer)
    args = trainer.args
    if args.push_to_hub:
        raise UsageError(f"--call {parsed.text!r}: push_to_hub=True: a traced run would push to the Hugging Face Hub; "
                         "loopdoc traces only runs that stay on this machine")
    with tempfile.TemporaryDirectory(prefix="loopdoc-trace-") as tmp, _capped(trainer, parsed, batches, tmp) as (capped, said):
        loop = build(trainer, loaded_from=loaded_from, call=capped, at_init=at_init).loop
        if said:
            loop = dataclasses.replace(loop, notes=(f"Traced run: {'; '.join(said)}.", *loop.notes))
        return _record(trainer, capped, loop, batches)


@contextlib.contextmanager
def _capped(trainer: Any, call: Call, batches: int, tmp: str) -> Iterator[tuple[Call, list[str]]]:
    """The trainer with the caps of the module doc applied; yields the call to make (its dataset cut) and what was capped."""
    args = trainer.args
    saved = {"output_dir": args.output_dir, "max_steps": args.max_steps}
    eval_saved = trainer.eval_dataset
    said: list[str] = []
    limit = batches * args.eval_batch_size
    try:
        args.output_dir = os.path.join(tmp, "output_dir")
        said.append(f"output_dir {saved['output_dir']!r} redirected to a temporary folder, deleted afterwards")
        if call.method == "train":
            n = plans.numbers(trainer)
            if n is not None and n.max_steps > batches:
                args.max_steps = batches
                said.append(f"max_steps={batches} (--batches) instead of {n.max_steps}")
        cut = False
        if trainer.eval_dataset is not None:
            trainer.eval_dataset, cut = _cut(trainer.eval_dataset, limit)
        kwargs = dict(call.kwargs)
        for key in ("eval_dataset", "test_dataset"):
            if kwargs.get(key) is not None and not isinstance(kwargs[key], str):
                kwargs[key], more = _cut(kwargs[key], limit)
                cut = cut or more
        if cut:
            said.append(f"evaluation and prediction datasets cut to their first {limit} examples ({batches} batches)")
        yield Call(call.method, kwargs, call.text), said
    finally:
        trainer.eval_dataset = eval_saved
        args.output_dir, args.max_steps = saved["output_dir"], saved["max_steps"]


def _cut(dataset: Any, limit: int) -> tuple[Any, bool]:
    """``dataset`` cut to its first ``limit`` examples (each of a dict), and whether anything was cut."""
    if isinstance(dataset, dict):
        out, cut = {}, False
        for name, ds in dataset.items():
            out[name], more = _cut(ds, limit)
            cut = cut or more
        return out, cut
    n = plans.length(dataset)
    if n is None or n <= limit or not hasattr(dataset, "__getitem__"):
        return dataset, False
    select = get(dataset, "select")
    if callable(select) and type(dataset).__module__.startswith("datasets"):
        return select(range(limit)), True
    from torch.utils.data import Subset

    return Subset(dataset, range(limit)), True


def _record(trainer: Any, call: Call, loop: Loop, batches: int) -> Trace:
    """Make ``call`` on ``trainer`` with the instrumentation of the module doc; the ``Trace``."""
    from transformers.trainer_callback import TrainerCallback

    handler = trainer.callback_handler
    names = {id(cb): cb_id for cb, cb_id in zip(handler.callbacks, [c.id for c in loop.callbacks], strict=False)}
    all_events = events()
    stats: dict[tuple[tuple[str, ...], str], _Stats] = {}
    context: list[tuple[str, Any]] = []  # ("block", "step"/"epoch"), ("evaluate", None), ("predict", None)
    last = ["step"]
    current: list[_Stats | None] = [None]
    loops = [0, 0.0, 0.0]  # depth of batch loops, their wall time, the callbacks' time inside them
    wrapped: dict[int, tuple[Any, dict[str, Any]]] = {}
    order: list[int] = []

    def path_of(event: str) -> tuple[str, ...]:
        blocks = [c[1] for c in context if c[0] == "block"]
        block = (("train", "epoch", "step", "log_save_evaluate") if blocks[-1] == "step"
                 else ("train", "epoch", "log_save_evaluate")) if blocks else None
        depth = sum(1 for c in context if c[0] == "evaluate")
        eval_base = block if block is not None else (("train",) if call.method == "train" else ())
        eval_path = (*eval_base, "evaluate", *(("dataset",) if depth >= 2 else ()))
        if any(c[0] == "predict" for c in context):
            return ("predict", "batch") if event == "on_prediction_step" else ("predict",)
        if event == "on_prediction_step":
            return (*eval_path, "batch")
        if event == "on_evaluate" or (event == "on_log" and depth):
            return eval_path
        if event == "on_log":
            return (*block, "log") if block is not None else ("train",)
        if event == "on_save":
            return (*(block or ("train", "epoch", "step", "log_save_evaluate")), "save")
        if event == "on_push_begin":
            return (*(block or ("train", "epoch", "step", "log_save_evaluate")), "save", "push")
        if event in ("on_epoch_begin", "on_epoch_end"):
            return ("train", "epoch")
        if event == "on_substep_end":
            return ("train", "epoch", "step", "micro_batch", "substep")
        if event in ("on_step_begin", "on_pre_optimizer_step", "on_optimizer_step", "on_step_end"):
            return ("train", "epoch", "step")
        if event == "on_init_end":
            return ("create",)
        return (call.method,)

    def instrument(cb: Any) -> None:
        if id(cb) in wrapped:
            return
        inst = get(cb, "__dict__")
        if not isinstance(inst, dict):
            return
        own = {ev: inst[ev] for ev in all_events if ev in inst}
        for ev in all_events:
            attr = inst.get(ev)
            if attr is None:
                owner = next((k for k in type(cb).__mro__ if ev in vars(k)), None)
                if owner is None or owner is TrainerCallback:
                    continue
                attr = getattr(cb, ev, None)
            if callable(attr):
                inst[ev] = _timed(attr, id(cb), current, loops)
        wrapped[id(cb)] = (cb, own)
        order.append(id(cb))

    def dispatching(event: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def on_event(*args: Any, **kwargs: Any) -> Any:
            for cb in handler.callbacks:
                instrument(cb)
            if event == "on_step_end":
                last[0] = "step"
            elif event == "on_epoch_end":
                last[0] = "epoch"
            rec = stats.setdefault((path_of(event), event), _Stats())
            rec.fired += 1
            outer = current[0]
            current[0] = rec
            try:
                return original(*args, **kwargs)
            finally:
                current[0] = outer

        return on_event

    def within(kind: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            context.append((kind, last[0] if kind == "block" else None))
            try:
                return original(*args, **kwargs)
            finally:
                context.pop()

        return run

    def timing_loop(original: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            loops[0] += 1
            try:
                return original(*args, **kwargs)
            finally:
                loops[0] -= 1
                if not loops[0]:
                    loops[1] += time.perf_counter() - start

        return run

    handler_patches = {ev: dispatching(ev, getattr(handler, ev)) for ev in all_events if callable(getattr(handler, ev, None))}
    trainer_patches = {
        "_maybe_log_save_evaluate": within("block", trainer._maybe_log_save_evaluate),
        "evaluate": within("evaluate", trainer.evaluate),
        "predict": within("predict", trainer.predict),
        "_run_epoch": timing_loop(trainer._run_epoch),
        "evaluation_loop": timing_loop(trainer.evaluation_loop),
    }
    handler_own = {k: handler.__dict__[k] for k in handler_patches if k in handler.__dict__}
    trainer_own = {k: trainer.__dict__[k] for k in trainer_patches if k in trainer.__dict__}
    for cb in handler.callbacks:
        instrument(cb)
    handler.__dict__.update(handler_patches)
    trainer.__dict__.update(trainer_patches)
    try:
        getattr(trainer, call.method)(**call.kwargs)
    except Exception as e:
        raise raised_while_running(call.text, e) from e
    finally:
        for key in handler_patches:
            handler.__dict__.pop(key, None)
        handler.__dict__.update(handler_own)
        for key in trainer_patches:
            trainer.__dict__.pop(key, None)
        trainer.__dict__.update(trainer_own)
        for cb, own in wrapped.values():
            for ev in all_events:
                cb.__dict__.pop(ev, None)
            cb.__dict__.update(own)
    late = [k for k in order if k not in names]  # callbacks added during the run (a callback's add_callback)
    for k in late:
        names[k] = f"{type(wrapped[k][0]).__name__}-late"
    traced = tuple(
        EventTrace(path=path, event=ev, fired=s.fired,
                   handlers=tuple(HandlerTiming(names[k], f, n, tot, tot / n, mx) for k, (f, n, tot, mx) in s.handlers.items()))
        for (path, ev), s in stats.items()
    )
    return Trace(loop, call.text, batches, traced, loops[1], loops[2])


def _timed(fn: Any, key: int, current: list[_Stats | None], loops: list[Any]) -> Any:
    """``fn`` wrapped to add its wall time to the event being dispatched (``current[0]``), under the callback ``key``."""
    name = getattr(underlying(fn), "__qualname__", None) or type(fn).__qualname__

    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            dt = time.perf_counter() - start
            rec = current[0]
            if rec is not None:
                h = rec.handlers.setdefault(key, [name, 0, 0.0, 0.0])
                h[1], h[2], h[3] = h[1] + 1, h[2] + dt, max(h[3], dt)
            if loops[0]:
                loops[2] += dt

    return timed
