"""The test oracle: run a learner for real and record which callback functions execute at each event.

    python tests/observe.py LEARNER_SPEC OUT.json [CALL]   # CALL default: fit(1) against the default model

writes ``{"model": [...], "observed": [...], "delegated": [...]}`` to OUT.json (fastai
prints its progress table to stdout): ``model`` lists, per (phase path, event), the
handlers loopdoc's static model predicts for CALL (default ``fit(1)``); ``observed``
lists every event fastai fired while loading (``after_create``) and running CALL, with
the functions that ran, in order, and the exception that stopped the event's remaining
callbacks, if any. In a test, ``observe(learn, action)`` does the same in-process.

How it observes, without trusting loopdoc's own logic: ``Learner._call_one`` is wrapped
to track the phase path from the ``before_X``/``after_X`` events, and a ``sys.setprofile``
hook records every Python function called directly from ``Callback.__call__`` (the event
method ``getcallable`` returned) or directly from ``Learner._call_one`` when it is not
``Callback.__call__`` (an overriding ``__call__``). fastai's ``noop``, its ``GetAttr``
lookup and ``Callback.__setattr__`` are not recorded. A call whose arguments do not
include the callback (fastai resolved the name through ``GetAttr`` delegation to the
learner or model) goes to ``delegated``.

Paths name each top-level phase with its occurrence, ``fit#1``, ``fit#2`` (``fine_tune``
runs two fits); callbacks are named like loopdoc names them: class name, then
``Name-2`` … for further instances, in order of first appearance.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from typing import Any

PHASES = ("fit", "epoch", "train", "validate", "batch", "backward", "step")


@contextlib.contextmanager
def recording() -> Iterator[dict[str, list]]:
    """Record every event fired by any ``Learner`` while the block runs (see the module docstring)."""
    import fastcore.basics
    from fastai.callback.core import Callback
    from fastai.learner import Learner

    ignored = {fastcore.basics.noop.__code__, fastcore.basics.GetAttr.__getattr__.__code__,
               fastcore.basics.GetAttr._component_attr_filter.__code__, fastcore.basics.getcallable.__code__,
               Callback.__setattr__.__code__}
    dispatch_code = Callback.__call__.__code__
    original = Learner._call_one
    call_one_code = original.__code__
    stack: list[str] = []
    tops: dict[str, int] = {}
    ids: dict[int, str] = {}
    alive: list[Any] = []  # keep every named callback alive, so that id() is never reused for another
    per_class: dict[str, int] = {}
    out: dict[str, list] = {"observed": [], "delegated": []}

    def name_of(cb: Any) -> str:
        if id(cb) not in ids:
            cls = type(cb).__name__
            per_class[cls] = per_class.get(cls, 0) + 1
            ids[id(cb)] = cls if per_class[cls] == 1 else f"{cls}-{per_class[cls]}"
            alive.append(cb)
        return ids[id(cb)]

    def profiler(frame: Any, what: str, arg: Any) -> None:
        if what != "call" or frame.f_code in ignored or frame.f_back is None:
            return
        caller = frame.f_back
        if caller.f_code is dispatch_code:
            cb = caller.f_locals["self"]
            code = frame.f_code
            args = [frame.f_locals[n] for n in code.co_varnames[: code.co_argcount] if n in frame.f_locals]
            entry = {"callback": name_of(cb), "function": code.co_qualname}
            (out["observed"][-1]["ran"] if any(a is cb for a in args) else out["delegated"]).append(entry)
        elif caller.f_code is call_one_code and frame.f_code is not dispatch_code and frame.f_code.co_name == "__call__":
            cb = frame.f_locals["self"]
            out["observed"][-1]["ran"].append({"callback": name_of(cb), "function": frame.f_code.co_qualname})

    def recording_call_one(self: Any, event_name: str) -> None:
        kind = event_name.split("_")[-1]
        if event_name.startswith("before_") and kind in PHASES:
            if not stack:
                tops[kind] = tops.get(kind, 0) + 1
                kind_top = f"{kind}#{tops[kind]}"
                stack.append(kind_top)
            else:
                stack.append(kind)
        elif kind in PHASES:  # after_X / after_cancel_X: unwind to X (a higher-level cancel skips lower after_*)
            while len(stack) > 1 and stack[-1] != kind:
                stack.pop()
        if event_name == "after_create":
            tops["create"] = tops.get("create", 0) + 1
            path = [f"create#{tops['create']}"]
        else:
            path = list(stack)
        for cb in self.cbs.sorted("order"):
            name_of(cb)
        out["observed"].append({"path": path, "event": event_name, "ran": [], "raised": None})
        sys.setprofile(profiler)
        try:
            original(self, event_name)
        except BaseException as e:  # a Cancel*Exception stops the callbacks still waiting for this event
            out["observed"][-1]["raised"] = type(e).__name__
            raise
        finally:
            sys.setprofile(None)
            if event_name.startswith("after_") and not event_name.startswith("after_cancel_") and kind in PHASES and stack:
                stack.pop()

    Learner._call_one = recording_call_one
    try:
        yield out
    finally:
        Learner._call_one = original


def model_events(loop: Any) -> list[dict]:
    """The static model's handlers per (path, event), with top-level phases numbered like ``recording``."""
    seen: dict[str, int] = {}
    out = []
    for phase in loop.phases:
        seen[phase.name] = seen.get(phase.name, 0) + 1
        top = f"{phase.name}#{seen[phase.name]}"
        sub = type(loop)(**{**loop.__dict__, "phases": (phase,)})
        for path, ev in sub.iter_events():
            out.append({"path": [top, *path[1:]], "event": ev.name,
                        "handlers": [{"callback": h.callback, "function": h.function} for h in ev.handlers]})
    return out


def mismatches(model: list[dict], observed: list[dict]) -> list[str]:
    """Every fired event whose callbacks differ from the model's at the same path; [] when all agree.

    Where a ``Cancel*Exception`` stopped an event early, what ran must be the start of the model's list.
    """
    expected = {(tuple(m["path"]), m["event"]): [(h["callback"], h["function"]) for h in m["handlers"]] for m in model}
    problems = set()
    for fired in observed:
        key = (tuple(fired["path"]), fired["event"])
        ran = [(r["callback"], r["function"]) for r in fired["ran"]]
        if key not in expected:
            problems.add(f"{'/'.join(key[0])}:{key[1]} fired but is not in the model")
            continue
        want = expected[key][: len(ran)] if fired["raised"] else expected[key]
        if ran != want:
            problems.add(f"{'/'.join(key[0])}:{key[1]}: model {expected[key]} but ran {ran} (raised {fired['raised']})")
    return sorted(problems)


def run_call(learn: Any, call: str, namespace: dict[str, Any]) -> Callable[[], Any]:
    """A zero-argument function that makes ``call`` on ``learn`` for real."""
    from loopdoc.adapters.fastai.calls import parse_call

    name, args, kwargs = parse_call(call, namespace)
    if not hasattr(type(learn), name):
        import fastai.callback.schedule  # noqa: F401  (patches fit_one_cycle & co onto Learner)
    return lambda: getattr(learn, name)(*args, **kwargs)


def main(spec: str, out: str, call: str | None) -> None:
    """Load ``spec``, model ``call`` (``None``: loopdoc's default model, run as ``fit(1)``), run it, write OUT."""
    import loopdoc
    from loopdoc.load import load

    with recording() as seen:
        loaded = load(spec)
        loop = loopdoc.loop(loaded.learner, loaded_from=loaded.loaded_from, call=call, namespace=loaded.namespace,
                            at_create=loaded.observation)
        run_call(loaded.learner, call or "fit(1)", loaded.namespace)()
    with open(out, "w", encoding="utf-8") as f:
        json.dump({"model": model_events(loop), **seen}, f)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None)
