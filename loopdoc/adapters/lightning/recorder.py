"""The recorder behind ``loopdoc trace`` for Lightning: run a call for real, capped, and record each hook with wall time.

How it observes (Lightning 2.6.6), for the duration of the call only:

- every dispatch helper of ``trainer/call.py`` (``_call_callback_hooks``, ``_call_lightning_module_hook``,
  ``_call_lightning_datamodule_hook``, ``_call_strategy_hook``, ``_call_callbacks_state_dict``,
  ``_call_callbacks_on_save_checkpoint``) is replaced in that module by a wrapper that notes the hook at
  the place it fires, then calls the original (the loops call them as ``call._call_…``); the Trainer's
  place in the loop is read from the stack: the frames of Lightning's loop methods (``LOOP_PHASES``);
- a callback's time is what Lightning's own profiler measures: the Trainer's profiler is wrapped (every
  ``start``/``stop`` is forwarded to it), and the callback being called is the ``callback`` of the helper's
  frame; a LightningModule's or DataModule's time is the helper call's; ``training_step`` & co are timed
  through ``_call_strategy_hook``, ``backward`` through the strategy's ``backward`` (which
  ``manual_backward`` calls too), callbacks' ``state_dict`` by the replacement of
  ``_call_callbacks_state_dict`` (the same loop as Lightning's);
- times are exclusive: a hook running inside another (``training_step`` inside ``optimizer_step``, a
  checkpoint's hooks inside ``ModelCheckpoint.on_validation_end``) is counted at its own place only.

Everything is put back afterwards; ``outputs.redirect_outputs`` keeps every file under a temporary folder
and ``outputs.capped`` limits batches and epochs. Times are wall time and vary between runs.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import CodeType
from typing import Any

from ...errors import LoadError, UsageError, raised_while_running
from ...model.loop import Loop
from ...model.trace import EventTrace, HandlerTiming, Trace
from ..introspect import callback_ids, handler_for
from .calls import Call, parse_call
from .lib import Lightning, package_of
from .outputs import capped, redirect_outputs

STEP_HOOKS = ("training_step", "validation_step", "test_step", "predict_step")


def _inner(fn: Any, name: str) -> Any:
    """The function a decorator wrapped (``_EvaluationLoop.run`` is ``@_no_grad_context``-decorated): ``__wrapped__``
    and closure cells are followed to a function whose code is named ``name``."""
    for _ in range(10):
        code = getattr(fn, "__code__", None)
        if code is not None and code.co_name == name:
            return fn
        if hasattr(fn, "__wrapped__"):
            fn = fn.__wrapped__
            continue
        cells = [c.cell_contents for c in getattr(fn, "__closure__", None) or ()]
        found = next((c for c in cells if getattr(getattr(c, "__code__", None), "co_name", None) == name), None)
        if found is None:
            break
        fn = found
    raise LookupError(f"no function {name!r} inside {fn!r}")


def loop_phases(lib: Lightning) -> dict[CodeType, str]:
    """``{code object: phase name}`` of the Lightning loop methods that make up the model's phases (``extract``'s docstring).

    ``_EvaluationLoop.run`` is named ``"validation"`` here; ``recorder`` names it ``"testing"`` for ``trainer.test_loop``.
    ``manual_backward`` and ``LightningOptimizer.step`` count only in manual optimisation.

    Args:
        lib: the package's ``Lightning``.

    Returns:
        The table.
    """
    pkg = lib.pkg
    fit = importlib.import_module(f"{pkg}.loops.fit_loop")._FitLoop
    epoch = importlib.import_module(f"{pkg}.loops.training_epoch_loop")._TrainingEpochLoop
    evaluation = importlib.import_module(f"{pkg}.loops.evaluation_loop")._EvaluationLoop
    prediction = importlib.import_module(f"{pkg}.loops.prediction_loop")._PredictionLoop
    auto = importlib.import_module(f"{pkg}.loops.optimization.automatic")
    optimizer = importlib.import_module(f"{pkg}.core.optimizer").LightningOptimizer
    zero_grad = next(k for k in auto._AutomaticOptimization._make_zero_grad_fn.__code__.co_consts
                     if getattr(k, "co_name", None) == "zero_grad_fn")
    T = lib.Trainer
    return {
        T._run.__code__: "<top>",
        T._run_sanity_check.__code__: "sanity_check",
        fit.run.__code__: "train",
        fit.on_advance_start.__code__: "epoch", fit.advance.__code__: "epoch", fit.on_advance_end.__code__: "epoch",
        epoch.advance.__code__: "batch", epoch.on_advance_end.__code__: "batch",
        _inner(evaluation.run, "run").__code__: "validation",
        evaluation._evaluation_step.__code__: "batch",
        _inner(prediction.run, "run").__code__: "prediction",
        prediction._predict_step.__code__: "batch",
        auto._AutomaticOptimization._optimizer_step.__code__: "step",
        _inner(auto.Closure.closure, "closure").__code__: "closure",
        zero_grad: "zero_grad",
        epoch._update_learning_rates.__code__: "lr_schedulers",
        T.save_checkpoint.__code__: "checkpoint",
        lib.LightningModule.manual_backward.__code__: "manual_backward",
        optimizer.step.__code__: "manual_step",
    }


@dataclass
class _Event:
    fired: int = 0
    handlers: dict[int, list[Any]] = field(default_factory=dict)  # id(obj) -> [callback id, function, calls, total, max]


class _Recorder:
    """The state of one recording; ``run`` installs it, ``trace`` builds the ``Trace``."""

    def __init__(self, trainer: Any, lib: Lightning) -> None:
        self.t, self.lib = trainer, lib
        self.phases = loop_phases(lib)
        self.events: dict[tuple[tuple[str, ...], str], _Event] = {}
        self.last: tuple[tuple[str, ...], str] | None = None
        self.open_at: dict[tuple[str, ...], str] = {}
        self.timing: list[list[float]] = []  # [start, time in nested handlers]
        self.batch_s = 0.0
        self.callback_batch_s = 0.0
        self._ids: tuple[tuple[int, ...], dict[int, str]] = ((), {})
        self.alive: list[Any] = []  # keep every object met alive, so that id() is not reused

    # -- where we are -------------------------------------------------------
    def path(self) -> tuple[str, ...]:
        """The model's phase path of the current call stack (outermost first)."""
        names: list[str] = []
        frame = sys._getframe(2)
        manual = not getattr(self.t.lightning_module, "automatic_optimization", True)
        while frame is not None:
            name = self.phases.get(frame.f_code)
            if name is not None:
                if name == "<top>":
                    names.append(self.t.state.fn.value)
                elif name in ("manual_backward", "manual_step"):
                    if manual:
                        names.append(name)
                elif name == "validation" and frame.f_locals.get("self") is self.t.test_loop:
                    names.append("testing")
                else:
                    names.append(name)
            frame = frame.f_back
        names.reverse()
        out: list[str] = []
        for n in names:  # on_advance_start → advance → on_advance_end of one epoch are one phase
            if not (out and out[-1] == n and n in ("epoch", "batch")):
                out.append(n)
        return tuple(out)

    def fire(self, path: tuple[str, ...], hook: str) -> _Event:
        """Note that ``hook`` fires at ``path``; consecutive dispatches of one hook (callbacks, then the module) are one firing."""
        key = (path, hook)
        event = self.events.setdefault(key, _Event())
        last = self.last
        same = last == key or (last is not None and len(last[0]) > len(path) and last[0][: len(path)] == path
                                and self.open_at.get(path) == hook)
        if not same:
            event.fired += 1
        self.last = key
        self.open_at[path] = hook
        return event

    def ids(self) -> dict[int, str]:
        """``Callback.id`` per object, as the static model names them (callbacks in order, then module and DataModule)."""
        dm = self.t.datamodule
        objs = [*self.t.callbacks, self.t.lightning_module, *([dm] if dm is not None else [])]
        key = tuple(id(o) for o in objs)
        if key != self._ids[0]:
            self._ids = (key, callback_ids(objs))
            self.alive.extend(objs)
        return self._ids[1]

    # -- timing ---------------------------------------------------------------
    def begin(self) -> None:
        self.timing.append([time.perf_counter(), 0.0])

    def end(self, event: _Event | None, path: tuple[str, ...], obj: Any, hook: str) -> None:
        start, nested = self.timing.pop()
        total = time.perf_counter() - start
        if self.timing:
            self.timing[-1][1] += total
        if event is None or obj is None:
            return
        found = self.lib.own(obj, hook)
        if found is None:
            return
        own = total - nested
        h = event.handlers.get(id(obj))
        if h is None:
            attr, via, cls = found
            function = handler_for("", attr, via, None).function
            h = event.handlers[id(obj)] = [self.ids().get(id(obj), type(obj).__name__), function, 0, 0.0, 0.0]
        h[2], h[3], h[4] = h[2] + 1, h[3] + own, max(h[4], own)
        if self.lib.kind(obj) == "callback" and "batch" in path:
            self.callback_batch_s += own

    def trace(self, loop: Loop, call: str, batches: int) -> Trace:
        events = tuple(
            EventTrace(path=path, event=hook, fired=e.fired,
                       handlers=tuple(HandlerTiming(cid, fn, n, total, total / n, mx) for cid, fn, n, total, mx in e.handlers.values()))
            for (path, hook), e in self.events.items()
        )
        return Trace(loop, call.strip(), batches, events, self.batch_s, self.callback_batch_s)


@contextlib.contextmanager
def recording(trainer: Any, lib: Lightning) -> Iterator[_Recorder]:
    """Install the recorder on ``trainer`` (module ``trainer.call``'s helpers, the profiler, the strategy's ``backward``,
    the loops' batch methods) for the body; remove it afterwards.

    Args:
        trainer: the Trainer.
        lib: its package's ``Lightning``.

    Yields:
        The ``_Recorder``.
    """
    rec = _Recorder(trainer, lib)
    call = lib.call
    originals = {name: getattr(call, name) for name in ("_call_callback_hooks", "_call_lightning_module_hook",
                                                         "_call_lightning_datamodule_hook", "_call_strategy_hook",
                                                         "_call_callbacks_state_dict", "_call_callbacks_on_save_checkpoint")}
    helper_codes = {originals["_call_callback_hooks"].__code__, originals["_call_callbacks_on_save_checkpoint"].__code__}

    def callback_hooks(trainer_: Any, hook_name: str, *args: Any, **kwargs: Any) -> Any:
        rec.fire(rec.path(), hook_name)
        return originals["_call_callback_hooks"](trainer_, hook_name, *args, **kwargs)

    def on_save_checkpoint(trainer_: Any, checkpoint: Any) -> Any:
        rec.fire(rec.path(), "on_save_checkpoint")
        return originals["_call_callbacks_on_save_checkpoint"](trainer_, checkpoint)

    def module_hook(trainer_: Any, hook_name: str, *args: Any, pl_module: Any = None, **kwargs: Any) -> Any:
        path = rec.path()
        event = rec.fire(path, hook_name)
        obj = pl_module or trainer_.lightning_module
        rec.begin()
        try:
            return originals["_call_lightning_module_hook"](trainer_, hook_name, *args, pl_module=pl_module, **kwargs)
        finally:
            rec.end(event, path, obj, hook_name)

    def datamodule_hook(trainer_: Any, hook_name: str, *args: Any, **kwargs: Any) -> Any:
        path = rec.path()
        event = rec.fire(path, hook_name)
        rec.begin()
        try:
            return originals["_call_lightning_datamodule_hook"](trainer_, hook_name, *args, **kwargs)
        finally:
            rec.end(event, path, trainer_.datamodule, hook_name)

    def strategy_hook(trainer_: Any, hook_name: str, *args: Any, **kwargs: Any) -> Any:
        if hook_name not in STEP_HOOKS:  # the strategy's own hooks are Lightning's; backward is timed below
            return originals["_call_strategy_hook"](trainer_, hook_name, *args, **kwargs)
        path = rec.path()
        event = rec.fire(path, hook_name)
        rec.begin()
        try:
            return originals["_call_strategy_hook"](trainer_, hook_name, *args, **kwargs)
        finally:
            rec.end(event, path, trainer_.lightning_module, hook_name)

    def state_dict(trainer_: Any) -> dict[str, dict]:
        """``call._call_callbacks_state_dict`` (2.6): every callback's ``state_dict()`` by ``state_key``, when not empty."""
        path = rec.path()
        event = rec.fire(path, "state_dict")
        out = {}
        for cb in trainer_.callbacks:
            rec.begin()
            try:
                state = cb.state_dict()
            finally:
                rec.end(event, path, cb, "state_dict")
            if state:
                out[cb.state_key] = state
        return out

    strategy = trainer.strategy
    backward = strategy.backward

    def timed_backward(*args: Any, **kwargs: Any) -> Any:
        path = rec.path()
        event = rec.fire(path, "backward")
        rec.begin()
        try:
            return backward(*args, **kwargs)
        finally:
            rec.end(event, path, trainer.lightning_module, "backward")

    base_profiler = importlib.import_module(f"{lib.pkg}.profilers").Profiler
    original_profiler = trainer.profiler
    stack: list[tuple[str, Any, tuple[str, ...]]] = []

    class Tee(base_profiler):  # type: ignore[misc, valid-type]
        """Forwards everything to the Trainer's profiler; times the callback calls of the hook helpers."""

        def start(self, action_name: str) -> None:
            original_profiler.start(action_name)
            if action_name.startswith("[Callback]"):
                frame = sys._getframe(1)
                for _ in range(8):
                    if frame is None or frame.f_code in helper_codes:
                        break
                    frame = frame.f_back
                cb = frame.f_locals.get("callback") if frame is not None else None
                hook = frame.f_locals.get("hook_name", "on_save_checkpoint") if frame is not None else None
                stack.append((action_name, cb, (rec.path(), hook)))
                rec.begin()

        def stop(self, action_name: str) -> None:
            if action_name.startswith("[Callback]") and stack and stack[-1][0] == action_name:
                _, cb, (path, hook) = stack.pop()
                rec.end(rec.events.get((path, hook)), path, cb, hook)
            original_profiler.stop(action_name)

        def setup(self, *args: Any, **kwargs: Any) -> None:
            original_profiler.setup(*args, **kwargs)

        def describe(self) -> None:
            original_profiler.describe()

        def teardown(self, stage: Any) -> None:
            original_profiler.teardown(stage)

        def summary(self) -> str:
            return original_profiler.summary()

        def __del__(self) -> None:  # the original owns its files
            pass

    patched: list[tuple[Any, str]] = []

    def time_batches(obj: Any, name: str) -> None:
        """Add the time of each call of ``obj.<name>`` (one batch) to ``rec.batch_s``; an instance attribute, removed after."""
        method = getattr(obj, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                rec.batch_s += time.perf_counter() - t0

        obj.__dict__[name] = timed
        patched.append((obj, name))

    time_batches(trainer.fit_loop.epoch_loop, "advance")  # one training batch (not the validation after it)
    for evaluation in (trainer.fit_loop.epoch_loop.val_loop, trainer.validate_loop, trainer.test_loop):
        time_batches(evaluation, "_evaluation_step")
    time_batches(trainer.predict_loop, "_predict_step")
    replacements = {"_call_callback_hooks": callback_hooks, "_call_lightning_module_hook": module_hook,
                    "_call_lightning_datamodule_hook": datamodule_hook, "_call_strategy_hook": strategy_hook,
                    "_call_callbacks_state_dict": state_dict, "_call_callbacks_on_save_checkpoint": on_save_checkpoint}
    try:
        for name, fn in replacements.items():
            setattr(call, name, fn)
        strategy.backward = timed_backward
        trainer.profiler = Tee()
        yield rec
    finally:
        for name, fn in originals.items():
            setattr(call, name, fn)
        strategy.__dict__.pop("backward", None)
        trainer.profiler = original_profiler
        for obj, name in patched:
            obj.__dict__.pop(name, None)


def run_trace(trainer: Any, loop: Loop, call: str, namespace: dict[str, Any], batches: int = 3) -> Trace:
    """Run ``call`` on ``trainer`` for real, capped, with every file under a temporary folder, and record it.

    Args:
        trainer: the Trainer; its LightningModule is trained by the call (what was asked for).
        loop: the static model of the same call, taken before the run.
        call: e.g. ``"fit(model, train_dl, val_dl)"`` (``calls.parse_call``).
        namespace: names the call may use.
        batches: at most this many batches per loop, and epochs (``outputs.capped``); at least 1.

    Returns:
        The ``Trace`` (its ``differences`` empty: ``loopdoc.analysis.compare`` fills them in).

    Raises:
        CallError: a bad call (``calls.parse_call``).
        UsageError: ``batches`` < 1, a logger that cannot be redirected, a ``val_check_interval`` too large.
        RunError: the call raised (``loopdoc.errors.raised_while_running``: the message names the exception);
            everything is put back first.
    """
    if batches < 1:
        raise UsageError(f"--batches {batches}: must be at least 1")
    lib = Lightning.of(package_of(trainer) or "pytorch_lightning")
    resolved: Call = parse_call(call, trainer, namespace)
    method = getattr(trainer, resolved.method)
    with tempfile.TemporaryDirectory(prefix="loopdoc-trace-") as root:
        with redirect_outputs(trainer, lib, root), capped(trainer, resolved, batches), recording(trainer, lib) as rec:
            try:
                method(**resolved.kwargs)
            except (UsageError, LoadError):
                raise
            except BaseException as e:
                if isinstance(e, KeyboardInterrupt):
                    raise
                raise raised_while_running(call, e) from e
    return rec.trace(loop, call, batches)
