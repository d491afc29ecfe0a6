"""The Lightning test oracle: run a capped call for real and record which hook functions execute, in order.

Independent of loopdoc's Lightning adapter (it imports nothing of ``loopdoc``): ported from the
run-verified prototype of ``/work/scratch/lightning/oracle.py``. ``tests/lightning/lightning_compare.py``
compares what it records with the adapter's static model.

    with recording(trainer) as rec:
        trainer.fit(model, train_dl, val_dl)
    rec["tree"]      # nested phase occurrences, each with its items in order (hooks and child phases)
    rec["flat"]      # every hook dispatch in order: path, hook, what ran
    rec["profiler"]  # the profiler channel: every action name Lightning passed to Profiler.start, in order

How it observes, without using loopdoc's static logic (works for ``pytorch_lightning`` and
``lightning.pytorch``; the package is read from ``type(trainer)``):

* Hooks. ``sys.setprofile`` sees every Python call. A call made *directly* from one of Lightning's
  dispatch helpers in ``trainer/call.py`` (``_call_callback_hooks``, ``_call_lightning_module_hook``,
  ``_call_lightning_datamodule_hook``, ``_call_strategy_hook``, ``_call_callbacks_state_dict``,
  ``_call_callbacks_on_save_checkpoint``, ``_call_callbacks_on_load_checkpoint``,
  ``_call_callbacks_load_state_dict``) whose code is the code of the helper's local ``fn`` (or of the
  callback's method) is the function that runs for that hook. Four hooks do not go through a helper
  and are caught as routes: for ``training_step``/``validation_step``/``test_step``/``predict_step``
  the strategy method that ``_call_strategy_hook`` runs leads to the module: the next call of the
  code of ``getattr(module, hook)`` (whatever its name: decorators such as ``@torch.no_grad()``
  keep working) is that hook; likewise ``backward`` is the next call of ``module.backward``'s code
  while the precision plugin's ``backward`` runs (also for ``manual_backward``); and the precision
  plugin's ``on_save_checkpoint`` is its call from ``_CheckpointConnector.dump_checkpoint``. The strategy's own
  pass-through methods (``training_step``, ``batch_to_device``, ``backward`` …) are routes, not
  hooks, and are not recorded.
* Own code. A function that ran is the object's *own* code when the function object dispatched is
  not one of the functions defined by the Lightning base classes (``Callback``; every class in
  ``LightningModule.__mro__`` / ``LightningDataModule.__mro__``; ``Strategy``; ``Precision``'s MRO).
  A base function that ran is reported with ``own: False`` and ``works: True`` when it itself made
  any call (Python or C): that is Lightning's default behaviour (``optimizer.step(closure)``,
  ``loss.backward()``, ``model.eval()`` …), as opposed to a no-op base (``pass``/``return batch``).
* Phases. Calls and returns of Lightning's loop methods open and close phase occurrences:
  ``Trainer._run`` (top level, named by ``trainer.state.fn``: fit/validate/test/predict),
  ``Trainer._run_sanity_check`` (sanity_check), ``_FitLoop.run`` (train), ``_FitLoop.on_advance_start``
  … ``on_advance_end`` (epoch), ``_TrainingEpochLoop.advance`` … ``on_advance_end`` (batch: one
  training batch and the validation that may follow it), ``_EvaluationLoop.run``
  (validation/testing), ``_EvaluationLoop._evaluation_step`` (batch), ``_PredictionLoop.run``
  (prediction), ``_PredictionLoop._predict_step`` (batch), ``_AutomaticOptimization._optimizer_step``
  (step), ``Closure.closure`` (closure), ``Trainer.save_checkpoint`` (checkpoint), and with manual
  optimisation ``LightningModule.manual_backward`` (manual_backward) and ``LightningOptimizer.step``
  (manual_step). A phase opened while a hook function is running records ``within`` = that hook
  and the object running it. Empty occurrences (no hook fired inside) are dropped.
* Context. Each occurrence records what identifies it (``batch_idx``, ``is_last``, ``n_batches``,
  ``epoch``, ``global_step``, ``should_stop``, ``val_run_index``, ``sanity``, ``dataloader_idx``),
  read from the trainer when the occurrence closes (batch) or opens (others).
* Profiler channel. The trainer's profiler is wrapped (forwarding to the original) to record every
  ``start(action)``; ``profiler_mismatches(rec)`` checks it against the hook dispatches.

Items of an occurrence: ``{"hook": name, "ran": [{"kind", "name", "class", "function", "own", "works"}]}``
(consecutive dispatches of one hook merge into one item, also across a child phase that opened
*within* that hook, e.g. ``on_validation_end`` → ModelCheckpoint saves → the module's
``on_validation_end``) and ``{"phase": name, "within": {...} | None, "occurrence": <occurrence>}``.
Naming: callbacks by class name, ``Name-2`` … for further instances in ``trainer.callbacks`` order;
the module and datamodule by class name.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import os
import sys
from collections.abc import Iterator
from typing import Any

STEP_HOOKS = ("training_step", "validation_step", "test_step", "predict_step")
IGNORED_FILES = (os.sep + "contextlib.py", os.sep + "logging" + os.sep)


def package_of(obj: Any) -> str:
    """``"pytorch_lightning"`` or ``"lightning.pytorch"``: the package whose Trainer/Module ``obj`` is."""
    mod = type(obj).__module__
    for pkg in ("lightning.pytorch", "pytorch_lightning"):
        if mod == pkg or mod.startswith(pkg + "."):
            return pkg
    raise TypeError(f"{type(obj).__qualname__} is not from pytorch_lightning or lightning.pytorch")


def _packages(pkg: str) -> list[str]:
    """``pkg`` and the other Lightning package if it is already imported (same code, separate classes; an
    object of the other package can only exist if it was imported, so nothing is imported here)."""
    other = "pytorch_lightning" if pkg == "lightning.pytorch" else "lightning.pytorch"
    return [pkg, other] if other in sys.modules else [pkg]


def _inner(fn: Any, name: str) -> Any:
    """The function a decorator wrapped: follows ``__wrapped__`` and closure cells to a function called ``name``."""
    seen = 0
    while seen < 10:
        seen += 1
        code = getattr(fn, "__code__", None)
        if code is not None and code.co_name == name:
            return fn
        if hasattr(fn, "__wrapped__"):
            fn = fn.__wrapped__
            continue
        for cell in getattr(fn, "__closure__", None) or ():
            c = cell.cell_contents
            if callable(c) and getattr(getattr(c, "__code__", None), "co_name", None) == name:
                return c
        break
    raise LookupError(f"cannot find the function {name!r} inside {fn!r}")


def _code_of(fn: Any) -> Any:
    """The code object that calling ``fn`` runs first, or None (a C function or unknown callable)."""
    for _ in range(5):
        if hasattr(fn, "__code__"):
            return fn.__code__
        if hasattr(fn, "__func__"):
            fn = fn.__func__
        elif hasattr(fn, "func"):  # functools.partial
            fn = fn.func
        elif callable(fn) and hasattr(type(fn).__call__, "__code__"):
            return type(fn).__call__.__code__
        else:
            return None
    return None


def _func_of(fn: Any) -> Any:
    """The function object that calling ``fn`` enters first (bound method -> __func__, partial -> func)."""
    for _ in range(5):
        if hasattr(fn, "__func__"):  # first: a bound method forwards __code__ to its function
            fn = fn.__func__
        elif hasattr(fn, "__code__"):
            return fn
        elif hasattr(fn, "func"):
            fn = fn.func
        elif callable(fn) and hasattr(type(fn).__call__, "__code__"):
            return type(fn).__call__
        else:
            return None
    return None


def _funcs_of_classes(classes: Any) -> set[int]:
    """ids of the function objects defined in ``classes`` (kept alive by the classes)."""
    out = set()
    for cls in classes:
        if cls is object:
            continue
        for v in vars(cls).values():
            f = v.__func__ if isinstance(v, (staticmethod, classmethod)) else v
            if isinstance(f, property):
                f = f.fget
            if hasattr(f, "__code__"):
                out.add(id(f))
    return out


def _codes_of_classes(classes: Any) -> set:
    out = set()
    for cls in classes:
        if cls is object:
            continue
        for v in vars(cls).values():
            f = v.__func__ if isinstance(v, (staticmethod, classmethod)) else v
            if isinstance(f, property):
                f = f.fget
            code = getattr(f, "__code__", None)
            if code is not None:
                out.add(code)
    return out


class _Lightning:
    """The code objects of one Lightning package that the recorder needs."""

    def __init__(self, pkg: str) -> None:
        P = importlib.import_module(pkg)
        call = importlib.import_module(pkg + ".trainer.call")
        fit_loop = importlib.import_module(pkg + ".loops.fit_loop")
        epoch_loop = importlib.import_module(pkg + ".loops.training_epoch_loop")
        eval_loop = importlib.import_module(pkg + ".loops.evaluation_loop")
        pred_loop = importlib.import_module(pkg + ".loops.prediction_loop")
        auto = importlib.import_module(pkg + ".loops.optimization.automatic")
        optim = importlib.import_module(pkg + ".core.optimizer")
        ckpt = importlib.import_module(pkg + ".trainer.connectors.checkpoint_connector")
        profilers = importlib.import_module(pkg + ".profilers")
        self.pkg = pkg
        self.P = P
        self.Profiler = profilers.Profiler
        # dispatch helper code -> how to read the hook name and the object from its frame
        self.dispatch = {
            call._call_callback_hooks.__code__: ("callback", None),
            call._call_callbacks_state_dict.__code__: ("callback", "state_dict"),
            call._call_callbacks_on_save_checkpoint.__code__: ("callback", "on_save_checkpoint"),
            call._call_callbacks_on_load_checkpoint.__code__: ("callback", "on_load_checkpoint"),
            call._call_callbacks_load_state_dict.__code__: ("callback", "load_state_dict"),
            call._call_lightning_module_hook.__code__: ("module", None),
            call._call_lightning_datamodule_hook.__code__: ("datamodule", None),
            call._call_strategy_hook.__code__: ("strategy", None),
        }
        T = P.Trainer
        FL, EL, VL, PL = fit_loop._FitLoop, epoch_loop._TrainingEpochLoop, eval_loop._EvaluationLoop, pred_loop._PredictionLoop
        self.c = {
            "run": T._run.__code__,
            "sanity": T._run_sanity_check.__code__,
            "save_checkpoint": T.save_checkpoint.__code__,
            "fit_run": FL.run.__code__,
            "epoch_start": FL.on_advance_start.__code__,
            "epoch_end": FL.on_advance_end.__code__,
            "batch_advance": EL.advance.__code__,
            "batch_end": EL.on_advance_end.__code__,
            "eval_run": _inner(VL.run, "run").__code__,
            "eval_step": VL._evaluation_step.__code__,
            "pred_run": _inner(PL.run, "run").__code__,
            "pred_step": PL._predict_step.__code__,
            "opt_step": auto._AutomaticOptimization._optimizer_step.__code__,
            "closure": _inner(auto.Closure.closure, "closure").__code__,
            "zero_grad": next(k for k in auto._AutomaticOptimization._make_zero_grad_fn.__code__.co_consts
                              if getattr(k, "co_name", None) == "zero_grad_fn"),
            "lr": EL._update_learning_rates.__code__,
            "manual_backward": P.LightningModule.manual_backward.__code__,
            "lopt_step": optim.LightningOptimizer.step.__code__,
            "dump": ckpt._CheckpointConnector.dump_checkpoint.__code__,
        }
        self.phase_codes = set(self.c.values()) - {self.c["dump"]}
        # own code = the dispatched function object is not one defined by a Lightning base class
        # (function identity, not code identity: decorators such as @torch.no_grad() share one code object).
        # Both packages' base classes count: a pytorch_lightning Callback in a lightning.pytorch Trainer still
        # only inherits no-ops.
        self.base = {k: set() for k in ("callback", "module", "datamodule", "strategy", "precision")}
        for other in _packages(pkg):
            Q = importlib.import_module(other)
            self.base["callback"] |= _funcs_of_classes(Q.Callback.__mro__)
            self.base["module"] |= _funcs_of_classes(Q.LightningModule.__mro__)
            self.base["datamodule"] |= _funcs_of_classes(Q.LightningDataModule.__mro__)
            self.base["strategy"] |= _funcs_of_classes(importlib.import_module(other + ".strategies").Strategy.__mro__)
            self.base["precision"] |= _funcs_of_classes(
                importlib.import_module(other + ".plugins.precision").Precision.__mro__)
        self.Checkpoint = P.callbacks.Checkpoint


def callback_names(callbacks: list) -> dict[int, str]:
    """``id(cb) -> name``: class name, ``Name-2`` … for further instances, in list order."""
    per: dict[str, int] = {}
    out = {}
    for cb in callbacks:
        cls = type(cb).__name__
        per[cls] = per.get(cls, 0) + 1
        out[id(cb)] = cls if per[cls] == 1 else f"{cls}-{per[cls]}"
    return out


class _Occurrence(dict):
    pass


@contextlib.contextmanager
def recording(trainer: Any) -> Iterator[dict]:
    """Record every hook call of ``trainer`` while the block runs (see the module docstring)."""
    L = _Lightning(package_of(trainer))
    c = L.c
    root = _Occurrence(phase="<root>", path=[], ctx={}, items=[], within=None)
    stack: list[_Occurrence] = [root]
    frames: list[Any] = []          # frame that opened each stack entry above root (None: no frame)
    tops: dict[str, int] = {}
    dispatch_stack: list[tuple[Any, dict, dict, int]] = []  # (callee frame, item, ran entry, phase depth at the call)
    base_frames: dict[Any, dict] = {}  # frame of a running base function -> its ran entry
    routes: list[tuple[Any, Any, str]] = []  # (route frame, code of the module function it leads to, hook)
    flat: list[dict] = []
    counters = {"val_run": 0}
    out: dict[str, Any] = {"tree": root, "flat": flat, "profiler": [], "package": L.pkg}

    def module() -> Any:
        return trainer.lightning_module

    def ctx_now() -> dict:
        return {"epoch": trainer.current_epoch, "global_step": trainer.global_step,
                "should_stop": bool(trainer.should_stop), "sanity": bool(trainer.sanity_checking)}

    def open_phase(name: str, frame: Any, ctx: dict | None = None) -> _Occurrence:
        parent = stack[-1]
        within = None
        if dispatch_stack and dispatch_stack[-1][3] == len(stack):  # a hook running in this very occurrence
            f, item, ran, _ = dispatch_stack[-1]
            within = {"hook": item["hook"], "name": ran["name"], "function": ran["function"]}
        if len(stack) == 1:
            tops[name] = tops.get(name, 0) + 1
            label = f"{name}#{tops[name]}"
        else:
            label = name
        occ = _Occurrence(phase=name, path=parent["path"] + [label], ctx=dict(ctx or {}), items=[], within=within)
        parent["items"].append({"phase": name, "within": within, "occurrence": occ})
        stack.append(occ)
        frames.append(frame)
        return occ

    def close_phase(name: str) -> None:
        while len(stack) > 1:
            occ = stack.pop()
            frames.pop()
            if not _has_hooks(occ):
                parent = stack[-1]
                parent["items"] = [it for it in parent["items"] if it.get("occurrence") is not occ]
            if occ["phase"] == name:
                return

    def top_phase() -> str:
        return stack[-1]["phase"]

    def add_ran(hook: str, ran: dict) -> dict:
        occ = stack[-1]
        items = occ["items"]
        # merge into the previous item of the same hook, also across child phases opened within that hook
        j = len(items) - 1
        while j >= 0 and "phase" in items[j] and (items[j]["within"] or {}).get("hook") == hook:
            j -= 1
        if j >= 0 and items[j].get("hook") == hook:
            item = items[j]  # continues that dispatch site; the within-phases stay after it
        else:
            item = {"hook": hook, "ran": []}
            items.append(item)
        item["ran"].append(ran)
        flat.append({"path": list(occ["path"]), "hook": hook, **ran})
        return item

    def entry(kind: str, obj: Any, code: Any, func: Any) -> dict:
        dm = trainer.datamodule
        names = callback_names([*trainer.callbacks, module(), *([dm] if dm is not None else [])])
        name = names.get(id(obj), type(obj).__name__ + "?")
        own = func is None or id(func) not in L.base[kind]
        shown = getattr(inspect.unwrap(func), "__qualname__", code.co_qualname) if func is not None else code.co_qualname
        return {"kind": kind, "name": name, "class": type(obj).__qualname__, "function": shown,
                "own": own, "works": False}

    def on_call(frame: Any) -> None:
        code = frame.f_code
        caller = frame.f_back
        # a base function that is running makes a call: it does work
        if caller in base_frames:
            base_frames[caller]["works"] = True
        if code in L.phase_codes:
            phase_call(frame, code)
        if caller is None:
            return
        ccode = caller.f_code
        spec = L.dispatch.get(ccode)
        if spec is not None:
            kind, fixed = spec
            loc = caller.f_locals
            if kind == "strategy":
                hook = loc.get("hook_name")
                if hook in STEP_HOOKS:
                    # a route to the module: the module's function for it is recorded when it is called
                    m = module()
                    func = _func_of(getattr(m, hook, None)) if m is not None else None
                    if func is not None:
                        routes.append((frame, func, hook))
                    return
                if hook in ("backward", "batch_to_device"):
                    return  # routes, not hooks (backward is caught at the precision plugin)
                obj = trainer.strategy
            elif kind == "callback":
                hook = fixed or loc.get("hook_name")
                obj = loc.get("callback")
            elif kind == "module":
                hook = loc.get("hook_name")
                obj = loc.get("pl_module")
            else:
                hook = loc.get("hook_name")
                obj = trainer.datamodule
            if obj is None or hook is None:
                return
            func = _func_of(loc["fn"] if "fn" in loc and fixed is None else getattr(obj, hook, None))
            target = getattr(func, "__code__", None)
            if target is not None and code is not target:
                return
            if target is None and code.co_filename.endswith(IGNORED_FILES):
                return
            register(hook, kind, obj, frame, func)
            return
        # hooks that do not go through a helper
        if routes and code is routes[-1][1].__code__:
            _, func, hook = routes.pop()
            register(hook, "module", module(), frame, func)
            return
        name = code.co_name
        if name == "backward" and frame.f_locals.get("self") is trainer.precision_plugin:
            # Precision.backward calls model.backward(tensor, ...): expect that function next
            m = module()
            func = _func_of(getattr(m, "backward", None)) if m is not None else None
            if func is not None:
                routes.append((frame, func, "backward"))
        elif name == "on_save_checkpoint" and ccode is c["dump"] and frame.f_locals.get("self") is trainer.precision_plugin:
            func = _func_of(trainer.precision_plugin.on_save_checkpoint)
            if func is not None and id(func) not in L.base["precision"]:  # a custom plugin's own code: recorded
                register("on_save_checkpoint", "precision", trainer.precision_plugin, frame, func)

    def register(hook: str, kind: str, obj: Any, frame: Any, func: Any) -> None:
        ran = entry(kind, obj, frame.f_code, func)
        item = add_ran(hook, ran)
        dispatch_stack.append((frame, item, ran, len(stack)))
        if not ran["own"]:
            base_frames[frame] = ran

    def on_return(frame: Any) -> None:
        while routes and routes[-1][0] is frame:  # the route ended without calling the module
            routes.pop()
        if dispatch_stack and dispatch_stack[-1][0] is frame:
            dispatch_stack.pop()
            base_frames.pop(frame, None)
        code = frame.f_code
        if code in L.phase_codes:
            phase_return(frame, code)

    def phase_call(frame: Any, code: Any) -> None:
        loc = frame.f_locals
        if code is c["run"]:
            open_phase(trainer.state.fn.value, frame, {})
            counters["val_run"] = 0
        elif code is c["sanity"]:
            open_phase("sanity_check", frame, {"sanity": True})
        elif code is c["fit_run"]:
            open_phase("train", frame)
        elif code is c["epoch_start"]:
            close_to_parent_of("epoch")
            open_phase("epoch", frame, {"epoch": trainer.current_epoch})
        elif code is c["epoch_end"]:
            close_above("epoch")
        elif code is c["batch_advance"]:
            close_above("epoch")
            open_phase("batch", frame)
        elif code is c["eval_run"]:
            testing = bool(trainer.testing)
            ctx = {"sanity": bool(trainer.sanity_checking)}
            if not testing and trainer.state.fn.value == "fit" and not trainer.sanity_checking:
                ctx["val_run_index"] = counters["val_run"]
                counters["val_run"] += 1
            open_phase("testing" if testing else "validation", frame, ctx)
        elif code is c["eval_step"] or code is c["pred_step"]:
            open_phase("batch", frame, {"batch_idx": loc.get("batch_idx"), "dataloader_idx": loc.get("dataloader_idx")})
        elif code is c["pred_run"]:
            open_phase("prediction", frame)
        elif code is c["opt_step"]:
            open_phase("step", frame, {"batch_idx": loc.get("batch_idx")})
        elif code is c["closure"]:
            open_phase("closure", frame)
        elif code is c["zero_grad"]:
            open_phase("zero_grad", frame)
        elif code is c["lr"]:
            open_phase("lr_schedulers", frame)
        elif code is c["save_checkpoint"]:
            open_phase("checkpoint", frame)
        elif code is c["manual_backward"]:
            m = module()
            if m is not None and not m.automatic_optimization:
                open_phase("manual_backward", frame)
        elif code is c["lopt_step"]:
            m = module()
            if m is not None and not m.automatic_optimization:
                open_phase("manual_step", frame)

    def phase_return(frame: Any, code: Any) -> None:
        if code is c["batch_advance"]:
            if top_phase() == "batch":
                ep = trainer.fit_loop.epoch_loop
                stack[-1]["ctx"].update({"batch_idx": frame.f_locals.get("batch_idx"),
                                         "is_last": bool(ep.batch_progress.is_last_batch),
                                         "n_batches": trainer.num_training_batches,
                                         "total_batch_idx": trainer.fit_loop.total_batch_idx, **ctx_now()})
            return
        if code is c["batch_end"]:
            if top_phase() == "batch":
                stack[-1]["ctx"].update({"global_step": trainer.global_step})
                close_phase("batch")
            return
        if code is c["epoch_start"]:
            return
        if code is c["epoch_end"]:
            if any(o["phase"] == "epoch" for o in stack[1:]):
                close_phase("epoch")
            return
        names = {c["run"]: None, c["sanity"]: "sanity_check", c["fit_run"]: "train", c["epoch_end"]: "epoch",
                 c["eval_run"]: None, c["eval_step"]: "batch", c["pred_run"]: "prediction", c["pred_step"]: "batch",
                 c["opt_step"]: "step", c["closure"]: "closure", c["zero_grad"]: "zero_grad", c["lr"]: "lr_schedulers",
                 c["save_checkpoint"]: "checkpoint",
                 c["manual_backward"]: "manual_backward", c["lopt_step"]: "manual_step"}
        name = names.get(code, "")
        if code is c["run"] or code is c["eval_run"]:
            # close what this frame opened
            if frame in frames:
                i = frames.index(frame)
                close_phase(stack[i + 1]["phase"])
            return
        if name and frame in frames:
            close_phase(name)

    def close_above(name: str) -> None:
        while len(stack) > 1 and stack[-1]["phase"] != name:
            close_phase(stack[-1]["phase"])

    def close_to_parent_of(name: str) -> None:
        if any(o["phase"] == name for o in stack[1:]):
            close_above(name)
            close_phase(name)

    def profiler(frame: Any, event: str, arg: Any) -> None:
        if event == "call":
            on_call(frame)
        elif event == "return":
            on_return(frame)
        elif event == "c_call":
            if frame in base_frames:
                base_frames[frame]["works"] = True

    # the profiler channel
    original_profiler = trainer.profiler
    tee = _tee_profiler(L.Profiler, original_profiler, out["profiler"])
    trainer.profiler = tee
    old = sys.getprofile()
    sys.setprofile(profiler)
    try:
        yield out
    finally:
        sys.setprofile(old)
        trainer.profiler = original_profiler
        close_above("<root>")
        while len(stack) > 1:
            close_phase(stack[-1]["phase"])


def _tee_profiler(base: type, original: Any, log: list) -> Any:
    class TeeProfiler(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            super().__init__()

        def start(self, action_name: str) -> None:
            log.append(action_name)
            original.start(action_name)

        def stop(self, action_name: str) -> None:
            original.stop(action_name)

        def setup(self, *a: Any, **k: Any) -> None:
            original.setup(*a, **k)

        def describe(self) -> None:
            original.describe()

        def teardown(self, stage: Any) -> None:
            original.teardown(stage)

        def summary(self) -> str:
            return original.summary()

        def __del__(self) -> None:  # the original owns its files
            pass

    return TeeProfiler()


def _has_hooks(occ: dict) -> bool:
    return any("hook" in it or _has_hooks(it["occurrence"]) for it in occ["items"])


def profiler_mismatches(rec: dict, trainer: Any) -> list[str]:
    """Check the profiler channel against the setprofile channel: the ``[Callback]``/``[LightningModule]``/
    ``[LightningDataModule]`` actions, in order, must be exactly the helper dispatches seen (own or base code)."""
    prof = []
    for a in rec["profiler"]:
        if a.startswith("[Callback]"):
            prof.append(("callback", a.rpartition(".")[2]))
        elif a.startswith("[LightningModule]"):
            prof.append(("module", a.rpartition(".")[2]))
        elif a.startswith("[LightningDataModule]"):
            prof.append(("datamodule", a.rpartition(".")[2]))
    seen = [(f["kind"], f["hook"]) for f in rec["flat"]
            if f["kind"] in ("callback", "module", "datamodule")
            and not (f["kind"] == "callback" and f["hook"] in ("state_dict", "load_state_dict"))
            and not (f["kind"] == "module" and f["hook"] in STEP_HOOKS + ("backward",))]
    if prof == seen:
        return []
    for i, (a, b) in enumerate(zip(prof, seen, strict=False)):
        if a != b:
            return [f"first difference at {i}: profiler {a} vs observed {b}"]
    return [f"lengths differ: profiler {len(prof)} vs observed {len(seen)}"]


def handlers(item: dict) -> list[tuple[str, str, str]]:
    """What an item's own code was: ``[(kind, name, function)]`` in call order."""
    return [(r["kind"], r["name"], r["function"]) for r in item["ran"] if r["own"]]


def defaults(item: dict) -> list[str]:
    """The Lightning base functions that did work at an item (default behaviour), in call order."""
    return [r["function"] for r in item["ran"] if not r["own"] and r["works"]]


def dump(occ: dict, indent: int = 0, show_all: bool = False) -> str:
    """A readable text form of a recorded tree (for debugging and FACTS.md)."""
    lines = []
    pad = "  " * indent
    for it in occ["items"]:
        if "hook" in it:
            hs = ", ".join(f"{k}:{n}:{f}" for k, n, f in handlers(it))
            ds = ", ".join(defaults(it))
            extra = f"  [default: {ds}]" if ds else ""
            if show_all:
                hs = ", ".join(f"{r['kind']}:{r['name']}:{r['function']}{'' if r['own'] else '(base)'}" for r in it["ran"])
            lines.append(f"{pad}{it['hook']}: {hs}{extra}")
        else:
            sub = it["occurrence"]
            w = f" within {it['within']['hook']}@{it['within']['name']}" if it["within"] else ""
            lines.append(f"{pad}<{sub['path'][-1]}>{w} ctx={sub['ctx']}")
            lines.append(dump(sub, indent + 1, show_all))
    return "\n".join(x for x in lines if x)


@contextlib.contextmanager
def redirect_outputs(trainer: Any, root: str) -> Iterator[dict]:
    """Send everything a run of ``trainer`` may write under ``root``, without changing the loop, and restore after.

    Patched (and restored): ``trainer._default_root_dir`` (fallback for loggers, checkpoints, profiler, the
    default logger's ``lightning_logs/``), every logger's root/save dir (``_root_dir``, ``_save_dir``, and
    ``_experiment``/``_version`` reset so the experiment is created under ``root``), every ModelCheckpoint's
    ``dirpath`` (an explicit dirpath goes to ``root/checkpoints-<i>``; None stays None and is resolved by
    ``ModelCheckpoint.setup`` under the redirected logger dir or root, then restored), the profiler's ``dirpath``. Yields what
    was patched. Callbacks returned by ``configure_callbacks()`` are created during the run: their dirpath is
    not redirected (pass them explicit temp paths, or check ``root`` after).
    """
    saved: list[tuple[Any, str, Any]] = []

    def patch(obj: Any, attr: str, value: Any) -> None:
        saved.append((obj, attr, getattr(obj, attr)))
        setattr(obj, attr, value)

    patch(trainer, "_default_root_dir", root)
    for i, lg in enumerate(trainer.loggers):
        for attr in ("_root_dir", "_save_dir"):
            if hasattr(lg, attr) and getattr(lg, attr) is not None:
                patch(lg, attr, os.path.join(root, f"logger-{i}"))
        for attr in ("_experiment", "_version", "_log_dir"):
            if attr in vars(lg):
                patch(lg, attr, None)
    P = importlib.import_module(package_of(trainer))
    for i, cb in enumerate(trainer.callbacks):
        if isinstance(cb, P.callbacks.ModelCheckpoint):
            # None stays None (ModelCheckpoint.setup resolves it from the redirected logger/root) but is restored
            # after the run, since setup writes the resolved path into cb.dirpath
            patch(cb, "dirpath", None if cb.dirpath is None else os.path.join(root, f"checkpoints-{i}"))
    prof = trainer.profiler
    if hasattr(prof, "dirpath"):  # None: Profiler.setup fills in trainer.log_dir (redirected above); restored after
        patch(prof, "dirpath", None if prof.dirpath is None else os.path.join(root, "profiler"))
    try:
        yield {"patched": [(type(o).__name__, a) for o, a, _ in saved]}
    finally:
        for obj, attr, value in reversed(saved):
            setattr(obj, attr, value)
