"""The test oracle for Hugging Face's ``Trainer``: record a real (tiny, capped) run, independently of loopdoc.

It imports nothing of loopdoc and knows nothing of which callback "should" respond.  One
``sys.setprofile`` hook is active while the block runs and records, from the live call
stack only:

* every event: a call of a ``CallbackHandler.on_*`` method (the dispatcher the Trainer
  calls) - its fire site (the Trainer function and line that called it), the TrainerState
  values then (global_step, epoch, max_steps), the control flags the handler received,
  the flags after the handler's own resets (at ``call_event`` entry) and at the end;
* inside ``CallbackHandler.call_event``: every Python function called *directly* by
  ``call_event`` (``getattr(callback, event)(...)`` - the loop variable ``callback`` of
  that frame names the callback) except ``TrainerCallback``'s own no-op bodies, i.e. the
  callback code that actually ran, in run order, with the control flags it received and
  returned, whether it returned a different TrainerControl object, and an exception if one
  escaped;
* markers: entry/exit of the Trainer's own implementations (by code object of
  ``transformers.Trainer``) of ``__init__``, ``train``, ``_run_epoch``,
  ``_maybe_log_save_evaluate``, ``evaluate``, ``predict``, ``_finalize_training`` and
  single marks for ``training_step``, ``prediction_step``, ``_save_checkpoint``,
  ``_load_best_model``.

Everything lands in one flat ``timeline`` list in execution order.  Callbacks are named by
class name, ``Name-2`` ... for further instances, in order of first appearance in
``trainer.callback_handler.callbacks`` (the rule loopdoc's ``Callback.id`` follows).

    with recording() as rec:
        trainer = Trainer(...)
        trainer.train()
    rec["timeline"]  # list of dicts (see _event / _mark)
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import sys
from collections.abc import Iterator
from typing import Any

FLAGS = ("should_training_stop", "should_epoch_stop", "should_save", "should_evaluate", "should_log")

# Trainer functions whose entry and exit are recorded (phase markers) and those recorded once (marks).
SPANS = ("__init__", "train", "_run_epoch", "_maybe_log_save_evaluate", "evaluate", "predict", "_finalize_training")
MARKS = ("training_step", "prediction_step", "_save_checkpoint", "_load_best_model")


def _target(loc: dict[str, Any]) -> tuple[Any, Any]:
    """What ``call_event``'s loop calls now, ``getattr(callback, event)``, and the code object that runs for it."""
    try:
        fn = getattr(loc.get("callback"), loc.get("event"))
    except Exception:
        return None, None
    inner = getattr(fn, "__func__", fn)
    while isinstance(inner, functools.partial):
        inner = inner.func
    code = getattr(inner, "__code__", None)
    if code is None:
        call = next((vars(k)["__call__"] for k in type(inner).__mro__ if "__call__" in vars(k)), None)
        code = getattr(call, "__code__", None)
    return fn, code


def _flags(control: Any) -> dict[str, bool] | None:
    if control is None:
        return None
    return {f: getattr(control, f, None) for f in FLAGS}


@contextlib.contextmanager
def recording() -> Iterator[dict[str, Any]]:
    """Record everything any Trainer does while the block runs; see the module docstring."""
    from transformers import Trainer
    from transformers.trainer_callback import CallbackHandler, TrainerCallback

    dispatch_code = CallbackHandler.call_event.__code__
    handler_codes = {}
    for name, fn in vars(CallbackHandler).items():
        if name.startswith("on_") and callable(fn):
            handler_codes[fn.__code__] = name
    noop_codes = {fn.__code__ for name, fn in vars(TrainerCallback).items() if name.startswith("on_") and callable(fn)}
    # inspect.unwrap: loopdoc's loader wraps Trainer.__init__ (functools.wraps) while the user's file runs
    span_codes = {inspect.unwrap(getattr(Trainer, n)).__code__: n for n in SPANS}
    mark_codes = {inspect.unwrap(getattr(Trainer, n)).__code__: n for n in MARKS}
    ignored_c = {getattr}

    out: dict[str, Any] = {"timeline": [], "callback_lists": []}
    timeline: list[dict] = out["timeline"]
    ids: dict[int, str] = {}
    alive: list[Any] = []
    per_class: dict[str, int] = {}
    stack: list[str] = []  # open spans
    frames: dict[int, Any] = {}  # id(frame) -> what to do on its return
    epoch_index = [-1]
    micro_in_epoch = [0]
    open_events: list[dict] = []

    def name_of(cb: Any) -> str:
        if id(cb) not in ids:
            cls = type(cb).__name__
            per_class[cls] = per_class.get(cls, 0) + 1
            ids[id(cb)] = cls if per_class[cls] == 1 else f"{cls}-{per_class[cls]}"
            alive.append(cb)
        return ids[id(cb)]

    def state_ctx(state: Any) -> dict[str, Any]:
        if state is None:
            return {}
        return {"global_step": state.global_step, "epoch": state.epoch, "max_steps": state.max_steps}

    def ctx(extra: dict[str, Any]) -> dict[str, Any]:
        return {
            **extra,
            "stack": list(stack),
            "in_train": "train" in stack,
            "in_evaluate": "evaluate" in stack,
            "in_predict": "predict" in stack,
            "epoch_index": epoch_index[0] if "_run_epoch" in stack else None,
            "micro_batches_in_epoch": micro_in_epoch[0] if "_run_epoch" in stack else None,
        }

    def profiler(frame: Any, what: str, arg: Any) -> None:
        if what == "call":
            code = frame.f_code
            if code in span_codes:
                name = span_codes[code]
                if name == "_run_epoch":
                    epoch_index[0] += 1
                    micro_in_epoch[0] = 0
                trainer = frame.f_locals.get("self")
                st = getattr(trainer, "state", None) if name != "__init__" else None
                timeline.append({"kind": "enter", "name": name, "ctx": ctx(state_ctx(st))})
                stack.append(name)
                frames[id(frame)] = ("span", name)
            elif code in mark_codes:
                name = mark_codes[code]
                if name == "training_step":
                    micro_in_epoch[0] += 1
                trainer = frame.f_locals.get("self")
                timeline.append({"kind": "mark", "name": name, "ctx": ctx(state_ctx(getattr(trainer, "state", None)))})
            elif code in handler_codes:
                loc = frame.f_locals
                site = frame.f_back
                rec = {
                    "kind": "event",
                    "event": handler_codes[code],
                    "fire_site": f"{site.f_code.co_qualname}:{site.f_lineno}" if site else None,
                    "ctx": ctx(state_ctx(loc.get("state"))),
                    "flags_in": _flags(loc.get("control")),
                    "flags_dispatch": None,
                    "flags_out": None,
                    "callbacks": [],
                    "ran": [],
                    "raised": None,
                }
                handler = loc.get("self")
                if handler is not None:
                    rec["callbacks"] = [name_of(cb) for cb in handler.callbacks]
                timeline.append(rec)
                open_events.append(rec)
                frames[id(frame)] = ("handler", rec)
            elif code is dispatch_code:
                if open_events:
                    open_events[-1]["flags_dispatch"] = _flags(frame.f_locals.get("control"))
            elif (frame.f_back is not None and frame.f_back.f_code is dispatch_code and code not in noop_codes
                  and code is _target(frame.f_back.f_locals)[1]):  # not a gc callback or other code run meanwhile
                loc = frame.f_back.f_locals
                cb = loc.get("callback")
                control = loc.get("control")
                entry = {"callback": name_of(cb), "function": code.co_qualname,
                         "flags_in": _flags(control), "flags_out": None, "replaced": False, "raised": None}
                if open_events:
                    open_events[-1]["ran"].append(entry)
                frames[id(frame)] = ("callback", entry, control)
        elif what == "c_call":
            if frame.f_code is dispatch_code and arg not in ignored_c and open_events and arg is _target(frame.f_locals)[0]:
                cb = frame.f_locals.get("callback")
                open_events[-1]["ran"].append({"callback": name_of(cb), "function": getattr(arg, "__qualname__", repr(arg)),
                                               "flags_in": None, "flags_out": None, "replaced": False, "raised": None})
        elif what == "return":
            todo = frames.pop(id(frame), None)
            if todo is None:
                return
            if todo[0] == "span":
                # a frame left by an exception also reports "return" (with arg None)
                while stack and stack[-1] != todo[1]:
                    stack.pop()
                if stack:
                    stack.pop()
                trainer = frame.f_locals.get("self")
                timeline.append({"kind": "exit", "name": todo[1],
                                 "ctx": ctx(state_ctx(getattr(trainer, "state", None)))})
            elif todo[0] == "handler":
                rec = todo[1]
                rec["flags_out"] = _flags(arg) if arg is not None else None
                if arg is None:  # CallbackHandler.on_* returns control; None means an exception left it
                    rec["raised"] = "exception"
                    if rec["ran"]:
                        rec["ran"][-1]["raised"] = "exception"
                if open_events and open_events[-1] is rec:
                    open_events.pop()
            elif todo[0] == "callback":
                entry, control = todo[1], todo[2]
                entry["flags_out"] = _flags(arg if arg is not None else control)
                entry["replaced"] = arg is not None and arg is not control
                entry["returned"] = None if arg is None else ("control" if arg is control else type(arg).__name__)

    old = sys.getprofile()
    sys.setprofile(profiler)
    try:
        yield out
    except BaseException as e:
        out["error"] = f"{type(e).__name__}: {e}"
        raise
    finally:
        sys.setprofile(old)


def events(rec: dict[str, Any]) -> list[dict]:
    """Only the event records of a recording's timeline."""
    return [t for t in rec["timeline"] if t["kind"] == "event"]


def brief(rec: dict[str, Any]) -> list[str]:
    """A compact text view of the timeline (for reading, not comparing)."""
    lines = []
    depth = 0
    for t in rec["timeline"]:
        if t["kind"] == "exit":
            depth -= 1
            continue
        pad = "  " * depth
        c = t["ctx"]
        if t["kind"] == "enter":
            lines.append(f"{pad}[{t['name']}] gs={c.get('global_step')}")
            depth += 1
        elif t["kind"] == "mark":
            lines.append(f"{pad}<{t['name']}>")
        else:
            ran = ", ".join(f"{r['callback']}:{r['function'].split('.')[-1]}" for r in t["ran"])
            lines.append(f"{pad}{t['event']} gs={c.get('global_step')} ({t['fire_site']}) -> {ran}")
    return lines
