"""Run a learner for real and record which callback functions execute at each event.

    python tests/ground_truth.py LEARNER_SPEC OUT.json [N_EPOCHS]

Writes one JSON document to OUT.json (fastai prints its progress table to stdout): ``{"model": [...], "observed": [...], "delegated": [...]}``
where ``model`` lists, per (phase path, event), the handlers the static loop model
predicts, and ``observed`` lists every event fastai fired during loading
(``after_create``) and ``fit(N_EPOCHS)``, with the functions that ran, in order,
and the exception that stopped the event's remaining callbacks, if any.

How it observes, without trusting loopdoc's own logic: ``Learner._call_one`` is
wrapped to track the phase path from the ``before_X``/``after_X`` events, and a
``sys.setprofile`` hook records every Python function called directly from
``Callback.__call__`` (the event method ``getcallable`` returned) or directly from
``Learner._call_one`` when it is not ``Callback.__call__`` (an overriding
``__call__``). fastai's ``noop`` and its ``GetAttr`` lookup are not recorded. A call
whose arguments do not include the callback (fastai resolved the name through
``GetAttr`` delegation to the learner or model) goes to ``delegated``.

It runs in its own process so that what one example imports (e.g.
``fastai.callback.progress``) cannot change another's callbacks.
"""

from __future__ import annotations

import json
import sys

PHASES = ("fit", "epoch", "train", "validate", "batch", "backward", "step")


def main(spec: str, out: str, n_epochs: int) -> None:
    import fastcore.basics
    from fastai.callback.core import Callback
    from fastai.learner import Learner

    import loopdoc
    from loopdoc.load import load

    ignored = {fastcore.basics.noop.__code__, fastcore.basics.GetAttr.__getattr__.__code__,
               fastcore.basics.GetAttr._component_attr_filter.__code__, fastcore.basics.getcallable.__code__,
               Callback.__setattr__.__code__}
    dispatch_code = Callback.__call__.__code__
    original = Learner._call_one
    call_one_code = original.__code__
    stack: list[str] = []
    observed: list[dict] = []
    delegated: list[dict] = []
    ids: dict[int, str] = {}

    def profiler(frame, what, arg):
        if what != "call" or frame.f_code in ignored:
            return
        caller = frame.f_back
        if caller is None:
            return
        if caller.f_code is dispatch_code:
            cb = caller.f_locals["self"]
            args = [frame.f_locals[n] for n in frame.f_code.co_varnames[: frame.f_code.co_argcount] if n in frame.f_locals]
            entry = {"callback": ids.get(id(cb), type(cb).__name__), "function": frame.f_code.co_qualname}
            (observed[-1]["ran"] if any(a is cb for a in args) else delegated).append(entry)
        elif caller.f_code is call_one_code and frame.f_code is not dispatch_code and frame.f_code.co_name == "__call__":
            cb = frame.f_locals["self"]
            observed[-1]["ran"].append({"callback": ids.get(id(cb), type(cb).__name__), "function": frame.f_code.co_qualname})

    def recording_call_one(self, event_name):
        kind = event_name.split("_")[-1]
        if event_name == "after_create":
            path = ["create"]
        else:
            if event_name.startswith("before_") and kind in PHASES:
                stack.append(kind)
            if kind in PHASES:  # after_X / after_cancel_X: unwind to X (a higher-level cancel skips lower after_*)
                while stack and stack[-1] != kind:
                    stack.pop()
            path = list(stack)
        # ids of callbacks in run order, as the model names them (one per class, then Name-2 …)
        ids.clear()
        seen: dict[str, int] = {}
        for cb in self.cbs.sorted("order"):
            name = type(cb).__name__
            seen[name] = seen.get(name, 0) + 1
            ids[id(cb)] = name if seen[name] == 1 else f"{name}-{seen[name]}"
        observed.append({"path": path, "event": event_name, "ran": [], "raised": None})
        sys.setprofile(profiler)
        try:
            original(self, event_name)
        except BaseException as e:  # a Cancel*Exception stops the callbacks still waiting for this event
            observed[-1]["raised"] = type(e).__name__
            raise
        finally:
            sys.setprofile(None)
            if event_name.startswith("after_") and not event_name.startswith("after_cancel_") and kind in PHASES and stack:
                stack.pop()

    Learner._call_one = recording_call_one
    loaded = load(spec)
    loop = loopdoc.loop(loaded.learner, loaded_from=loaded.loaded_from)
    model = [
        {"path": list(path), "event": ev.name, "handlers": [{"callback": h.callback, "function": h.function} for h in ev.handlers]}
        for path, ev in loop.iter_events()
    ]
    loaded.learner.fit(n_epochs)
    Learner._call_one = original
    with open(out, "w", encoding="utf-8") as f:
        json.dump({"model": model, "observed": observed, "delegated": delegated}, f)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 1)
