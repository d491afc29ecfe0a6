"""Read a built ``transformers.Trainer`` (5.x) into a ``loopdoc.model.Loop`` without running it.

Facts encoded here, each from transformers 5.24's source:

- the events: the ``on_*`` methods of ``transformers.TrainerCallback`` (``trainer_callback.py``),
  read from the installed class at run time, in its definition order;
- dispatch: ``CallbackHandler.call_event`` calls ``getattr(callback, event)(args, state, control, …)``
  for every callback of ``trainer.callback_handler.callbacks`` in list order; a callback responds
  when that lookup (instance ``__dict__`` first, then the class MRO) ends somewhere other than
  ``TrainerCallback``'s own empty method;
- the phase tree and the place of every event: ``Trainer.__init__`` (``on_init_end``), ``train`` →
  ``_inner_training_loop`` (``on_train_begin``, ``eval_on_start``, the epoch loop with ``on_epoch_begin``),
  ``_run_epoch`` (update steps of ``gradient_accumulation_steps`` micro-batches: ``on_step_begin`` at the
  first, ``on_substep_end`` after each but the last, then ``on_pre_optimizer_step``, ``on_optimizer_step``,
  ``on_step_end`` and ``_maybe_log_save_evaluate``; ``on_epoch_end`` and a second
  ``_maybe_log_save_evaluate``), ``_maybe_log_save_evaluate`` (log → ``Trainer.log`` → ``on_log``; evaluate →
  ``evaluate()``; save → ``_save_checkpoint`` then ``on_save``, in that order), ``evaluate`` →
  ``evaluation_loop`` (``on_prediction_step`` per batch, then ``on_log``, ``on_evaluate``), ``predict``
  (``on_prediction_step`` per batch, ``on_predict``, no ``on_log``), ``_finalize_training`` (``on_log`` with the
  train metrics, ``_load_best_model``, ``on_train_end``);
- when each conditional part runs: ``DefaultFlowCallback``'s rules for the actual ``TrainingArguments``
  (``plan.schedule``), and the other callbacks' own flag writes (``flows.scan``).

Nothing is trained, no dataloader is built, no attribute of the trainer is set. ``build`` also
returns ``Rules``: for the tests, the same conditions and loop counts as predicates over the loop
position (they are not part of the model). Importing this module imports no transformers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ...errors import CallError, UsageError
from ...model.loop import Callback, Event, Framework, Handler, LearnerSummary, Loop, Node, Phase, Step
from ..introspect import callback_ids, class_source, clean_doc, describe, get, handler_for, qualified, safe_repr
from . import plan as plans
from .calls import Call
from .flows import FLAGS, RESETS, STOP_FLAGS, Write, build_flows, default_flow_rules, scan
from .plan import Numbers, Schedule, arg, listing
from .wording import EVENT_DESCRIPTIONS, UNKNOWN_EVENT

Path = tuple[str, ...]

# The loop order of the events, to sort data flow and notes (on_push_begin fires inside a save).
EVENT_ORDER = {name: i for i, name in enumerate((
    "on_init_end", "on_train_begin", "on_epoch_begin", "on_step_begin", "on_substep_end", "on_pre_optimizer_step",
    "on_optimizer_step", "on_step_end", "on_log", "on_prediction_step", "on_evaluate", "on_push_begin", "on_save",
    "on_epoch_end", "on_train_end", "on_predict"))}

# Events at which a flag write reaches the block after on_step_end, the block after on_epoch_end, or both (writes
# inside a block reach its later parts and the next block); stop flags raised here break a window before its update.
STEP_EVENTS = ("on_step_begin", "on_substep_end", "on_pre_optimizer_step", "on_optimizer_step", "on_step_end")
BLOCK_EVENTS = ("on_log", "on_evaluate", "on_save", "on_prediction_step", "on_push_begin")
EARLY_STOP_EVENTS = ("on_train_begin", "on_epoch_begin", "on_step_begin", "on_substep_end")

# Trainer methods whose override changes what the loop runs (a note says the model shows Trainer's own code).
LOOP_METHODS = ("train", "_inner_training_loop", "_run_epoch", "get_batch_samples", "training_step", "compute_loss",
                "_maybe_log_save_evaluate", "_evaluate", "evaluate", "evaluation_loop", "prediction_step", "predict",
                "log", "_save_checkpoint", "_finalize_training", "_load_best_model")

PROGRESS = ("ProgressCallback", "PrinterCallback", "NotebookProgressCallback")


@dataclass
class Rules:
    """What a real run of the modelled call must show, per phase path: for the tests, not part of the model.

    A phase path is the tuple of phase names from the top (``("train", "epoch", "step", "log_save_evaluate", "log")``).
    Predicates and counts take the loop position ``env``: ``global_step`` and ``epoch`` (``TrainerState`` when
    the phase starts), ``epoch_index``, ``step_index`` (within the epoch), ``micro_index``, ``dataset_index``,
    ``batch_index``.

    Attributes:
        when: for each phase with a ``condition``: a predicate, or ``None`` when it depends on run-time data.
        count: for each phase with a ``loop``: how many times it runs in its parent.
        exact: per loop phase: ``False`` when ``count`` is only an upper bound (a stop flag may end it early).
        span: the ``Trainer`` method whose call brackets each occurrence of the phase.
        marks: ``(phase path, step name)`` → the ``Trainer`` method that step is (``"training_step"``).
        open_tail: step phases whose occurrence may end after its micro-batches (a stop flag raised mid-window).
    """

    when: dict[Path, Callable[[dict[str, Any]], bool] | None] = field(default_factory=dict)
    count: dict[Path, Callable[[dict[str, Any]], int]] = field(default_factory=dict)
    exact: dict[Path, bool] = field(default_factory=dict)
    span: dict[Path, str] = field(default_factory=dict)
    marks: dict[tuple[Path, str], str] = field(default_factory=dict)
    open_tail: set[Path] = field(default_factory=set)


@dataclass(frozen=True)
class Built:
    """``build``'s result: the model and the test-facing ``Rules``."""

    loop: Loop
    rules: Rules


def events() -> list[str]:
    """The events: the ``on_*`` methods ``transformers.TrainerCallback`` defines, in definition order (read at run time)."""
    from transformers.trainer_callback import TrainerCallback

    return [name for name, value in vars(TrainerCallback).items() if name.startswith("on_") and callable(value)]


def default_call(trainer: Any) -> Call:
    """``train()`` when the trainer has a ``train_dataset``, else ``evaluate()`` when it has an ``eval_dataset``.

    Raises:
        UsageError: it has neither (``train()`` and ``evaluate()`` would raise ``ValueError``).
    """
    if getattr(trainer, "train_dataset", None) is not None:
        return Call("train", {}, "train()")
    if getattr(trainer, "eval_dataset", None) is not None:
        return Call("evaluate", {}, "evaluate()")
    raise UsageError(f"{type(trainer).__name__} has no train_dataset and no eval_dataset: train() and evaluate() raise "
                     "ValueError; document 'predict(dataset)' with --call")


def build(trainer: Any, *, loaded_from: str, call: Call | None = None, at_init: Any = None) -> Built:
    """The ``Loop`` (and ``Rules``) of ``call`` on ``trainer``, without running it or changing it.

    Args:
        trainer: a built ``transformers.Trainer`` (or subclass).
        loaded_from: where it was loaded from, for ``LearnerSummary.loaded_from``.
        call: the call (``calls.parse_call``); ``None``: ``default_call``.
        at_init: ``id()`` of the callbacks that received ``on_init_end`` (``creation.watch_creation``), or ``None``:
            guessed as every callback up to the first progress/printer callback (``Trainer.__init__`` adds that last).

    Returns:
        ``Built``: phases ``create`` (``Trainer.__init__``) and ``train``, ``evaluate`` or ``predict``.

    Raises:
        ImportError: transformers is not installed.
        CallError: the call needs a dataset the trainer lacks (``train()`` without ``train_dataset``, ``evaluate()``
            without an eval dataset), or ``train()`` on a dataset without length and without ``max_steps``.
    """
    call = call or default_call(trainer)
    b = _Builder(trainer, at_init, call)
    phases: list[Phase] = [b.create_phase()]
    if call.method == "train":
        phases.append(b.train_phase())
    elif call.method == "evaluate":
        phases.append(b.evaluate_call(call))
    else:
        phases.append(b.predict_phase(call))
    b.finish_notes(phases)
    loop = Loop(
        framework=Framework("transformers", b.versions["transformers"]),
        versions=b.versions,
        learner=b.summary(loaded_from),
        call=call.text,
        filtered_events=(),
        callbacks=tuple(b.callback(cb) for cb in b.cbs),
        phases=tuple(phases),
        notes=tuple(b.notes),
        flows=b.flows(),
    )
    return Built(loop, b.rules)


class _Builder:
    """Builds the phases of one call; knows the callbacks, the numbers, the flag writes."""

    def __init__(self, trainer: Any, at_init: Any, call: Call) -> None:
        import accelerate
        import torch
        import transformers
        from transformers.trainer_callback import DefaultFlowCallback, EarlyStoppingCallback, TrainerCallback

        self.trainer, self.args, self.call = trainer, trainer.args, call
        self.versions = {"transformers": transformers.__version__, "torch": torch.__version__.split("+")[0],
                         "accelerate": accelerate.__version__}
        self.base = TrainerCallback
        self.events = events()
        self.cbs = list(trainer.callback_handler.callbacks)
        self.ids = callback_ids(self.cbs)
        self.observed = at_init is not None
        self.at_init = set(at_init) if at_init is not None else _guess_at_init(self.cbs)
        self.rules = Rules()
        self.notes: list[str] = []
        self.n = plans.numbers(trainer)
        # DefaultFlowCallback's documented rules hold where its own methods run (not a subclass's override).
        dfs = [cb for cb in self.cbs if isinstance(cb, DefaultFlowCallback)]
        self.df = dfs[0] if dfs else None
        self.df_id = self.ids[id(self.df)] if self.df is not None else None
        self.df_step = self.df is not None and self._function(self.df, "on_step_end") is DefaultFlowCallback.on_step_end
        self.df_epoch = self.df is not None and self._function(self.df, "on_epoch_end") is DefaultFlowCallback.on_epoch_end
        self.df_class = DefaultFlowCallback
        self.early = [(self.ids[id(cb)], cb) for cb in self.cbs if isinstance(cb, EarlyStoppingCallback)
                      and self._function(cb, "on_evaluate") is EarlyStoppingCallback.on_evaluate]
        self.es_class = EarlyStoppingCallback
        self.writes = self._scan_writes(DefaultFlowCallback, EarlyStoppingCallback)
        self.schedule: Schedule | None = plans.schedule(self.args, self.n, default_flow=self.df_step) if self.n else None
        stop_writers = [w for w in self.writes if any(w.may_set(f) for f in STOP_FLAGS)]
        self.unstop = any(w.may_clear("should_training_stop") and (w.event in ("on_step_end", *BLOCK_EVENTS, "on_epoch_end"))
                          for w in self.writes)
        self.stop_dynamic = bool(stop_writers or self.early or self.unstop or (self.df is not None and not self.df_step))
        self.open_tail = any(w.event in EARLY_STOP_EVENTS for w in stop_writers) and self.args.gradient_accumulation_steps > 1
        self.placed: set[str] = set()

    # -- callbacks and handlers ------------------------------------------------------------
    def _function(self, cb: Any, event: str) -> Any:
        """What ``getattr(cb, event)`` runs: the instance attribute, or the class attribute's function."""
        inst = get(cb, "__dict__") or {}
        if event in inst:
            return inst[event]
        owner = next((k for k in type(cb).__mro__ if event in vars(k)), None)
        if owner is None:
            return None
        attr = vars(owner)[event]
        return attr.__func__ if isinstance(attr, (staticmethod, classmethod)) else attr

    def handler(self, cb: Any, event: str) -> Handler | None:
        """The ``Handler`` that runs for ``cb`` at ``event`` (``CallbackHandler.call_event``), or ``None``."""
        cb_id = self.ids[id(cb)]
        inst = get(cb, "__dict__") or {}
        if event in inst:
            attr = inst[event]
            return handler_for(cb_id, attr, "instance", None) if callable(attr) else None
        owner = next((k for k in type(cb).__mro__ if event in vars(k)), None)
        if owner is None or owner is self.base:
            return None
        attr = vars(owner)[event]
        if isinstance(attr, (staticmethod, classmethod)):
            attr = attr.__func__
        return handler_for(cb_id, attr, "method", qualified(owner)) if callable(attr) else None

    def event(self, name: str, description: str | None = None) -> Event:
        """The event ``name`` at one place, its handlers in ``callback_handler.callbacks`` order."""
        self.placed.add(name)
        handlers = []
        for cb in self.cbs:
            if name == "on_init_end" and id(cb) not in self.at_init:
                continue
            h = self.handler(cb, name)
            if h is not None:
                handlers.append(h)
        text = EVENT_DESCRIPTIONS.get(name, UNKNOWN_EVENT)
        return Event(name, f"{description} {text}" if description else text, tuple(handlers))

    def _scan_writes(self, df: type, es: type) -> list[Write]:
        out: list[Write] = []
        for cb in self.cbs:
            for event in self.events:
                h = self.handler(cb, event)
                if h is None:
                    continue
                attr = self._function(cb, event)
                if h.defined_by in (qualified(df), qualified(es)):
                    continue  # DefaultFlowCallback and EarlyStoppingCallback: their documented behaviour (flows.py)
                out.extend(scan(cb, self.ids[id(cb)], event, attr, h.via))
        return out

    def callback(self, cb: Any) -> Callback:
        """The model's ``Callback`` for ``cb``."""
        cls = type(cb)
        return Callback(id=self.ids[id(cb)], name=cls.__name__, qualname=qualified(cls), doc=clean_doc(vars(cls).get("__doc__")),
                        source=class_source(cls), order=None, flags={}, receives_all=False, origin=self._origin(cb))

    def _origin(self, cb: Any) -> str | None:
        cls = type(cb)
        if id(cb) not in self.at_init:
            return "added after Trainer(...) (trainer.add_callback)"
        init_list = [c for c in self.cbs if id(c) in self.at_init]
        if cb is self.df and init_list and init_list[0] is cb and cls is self.df_class:
            return "Trainer default"
        if cls.__module__.startswith("transformers.integrations"):
            return f"report_to={_report_to(self.args)}"
        if cls.__name__ == "JITCheckpointCallback" and getattr(self.args, "enable_jit_checkpoint", False):
            return "enable_jit_checkpoint=True"
        if init_list and init_list[-1] is cb and cls.__name__ in PROGRESS and cls.__module__.startswith("transformers"):
            return f"Trainer default (disable_tqdm={self.args.disable_tqdm})"
        return None

    def summary(self, loaded_from: str) -> LearnerSummary:
        """The ``LearnerSummary``: model class, loss, optimizer and ``compute_metrics``."""
        t, a = self.trainer, self.args
        if get(t, "compute_loss_func") is not None:
            loss = describe(t.compute_loss_func)
        elif get(t, "label_smoother") is not None:
            loss = f"LabelSmoother(epsilon={arg(a.label_smoothing_factor)})"
        elif type(t).compute_loss is not self._trainer_class().compute_loss:
            loss = f"{type(t).__qualname__}.compute_loss"
        else:
            loss = "model(**inputs)['loss']"
        if get(t, "optimizer") is not None:
            opt = type(t.optimizer).__qualname__
        elif get(t, "optimizer_cls_and_kwargs") is not None:
            opt = describe(t.optimizer_cls_and_kwargs[0])
        else:
            opt = f"{arg(a.optim).strip(chr(39))} (learning_rate={arg(a.learning_rate)}, lr_scheduler_type={arg(a.lr_scheduler_type)})"
        metrics = (describe(t.compute_metrics),) if get(t, "compute_metrics") is not None else ()
        return LearnerSummary(loaded_from, qualified(type(t.model)), loss, opt, tuple(m for m in metrics if m))

    def _trainer_class(self) -> type:
        import transformers

        return transformers.Trainer

    # -- conditions ------------------------------------------------------------------------
    def _writers(self, flag: str, where: tuple[str, ...], setting: bool) -> list[Write]:
        """Writes at events ``where`` that may set (``setting``) or clear ``flag``."""
        return [w for w in self.writes if w.event in where and (w.may_set(flag) if setting else w.may_clear(flag))]

    @staticmethod
    def _named(writes: list[Write]) -> str:
        seen: list[str] = []
        for w in writes:
            text = f"{w.callback} at {w.event}"
            if text not in seen:
                seen.append(text)
        return ", ".join(seen)

    def part(self, flag: str, block: str, rule: str | None, fires: frozenset[int] | None) -> tuple[str | None, Any]:
        """The condition of one part (log/evaluate/save) of a block, and its predicate (``None``: run-time data).

        Args:
            flag: ``"should_log"``, ``"should_evaluate"`` or ``"should_save"``.
            block: ``"step"`` (after ``on_step_end``) or ``"epoch"`` (after ``on_epoch_end``).
            rule: DefaultFlowCallback's rule for it there, or ``None`` when it sets nothing.
            fires: where the rule fires in this run (``global_step`` values, or 0-based epochs), or ``None`` when unknown.

        Returns:
            ``(condition, when)``; condition ``None`` means the part never runs (leave it out).
        """
        where = (*(STEP_EVENTS if block == "step" else ("on_epoch_end",)), *BLOCK_EVENTS)
        if block == "epoch" and self.open_tail:  # an update step cut before its block leaves its flags to the epoch's
            where = (*where, "on_step_begin", "on_substep_end")
        raisers = self._writers(flag, where, True)
        clearers = self._writers(flag, ("on_step_end" if block == "step" else "on_epoch_end", *BLOCK_EVENTS), False)
        overridden = self.df is not None and not (self.df_step if block == "step" else self.df_epoch)
        if rule is None and not raisers and not overridden:
            return None, None
        parts = []
        exact = not raisers and not clearers and not overridden and not self.unstop and fires is not None
        if block == "epoch" and self.stop_dynamic and flag != "should_save":
            exact = False  # the epoch's log needs a step since the last log, its evaluation a state.epoch: both depend on the stop
        if block == "epoch" and flag == "should_log" and (self._writers(flag, STEP_EVENTS + BLOCK_EVENTS, True)
                                                          or self._writers(flag, ("on_step_end", *BLOCK_EVENTS), False)):
            exact = False  # it logs only if no step-level log came since: callbacks decide those
        if rule is not None:
            text = rule
            if fires is not None and self.n is not None:
                noun, total = ("global_step", self.n.max_steps) if block == "step" else ("epoch", len(self.schedule.steps))
                text += f"; {'in this run' if exact and not self.stop_dynamic else 'by that rule'}: {listing(fires, noun, total)}"
            parts.append(text)
        if overridden:
            parts.append(f"as {self.df_id}.{'on_step_end' if block == 'step' else 'on_epoch_end'} decides (it overrides "
                         "DefaultFlowCallback's)")
        if raisers:
            parts.append(f"when a callback sets it ({self._named(raisers)})")
        if clearers:
            parts.append(f"unless a callback clears it ({self._named(clearers)})")
        condition = f"control.{flag}: " + "; or ".join(p for p in parts if not p.startswith("unless")) + \
            "".join(f"; {p}" for p in parts if p.startswith("unless"))
        if not exact:
            return condition, None
        key = "global_step" if block == "step" else "epoch_index"
        return condition, (lambda env, fires=fires, key=key: env.get(key) in fires)

    # -- phases ----------------------------------------------------------------------------
    def create_phase(self) -> Phase:
        a = self.args
        path = ("create",)
        self.rules.span[path] = "__init__"
        steps = [
            Step("callbacks", "self.callback_handler = CallbackHandler(DEFAULT_CALLBACKS + report_to callbacks + callbacks, ...); "
                 "self.add_callback(PrinterCallback if args.disable_tqdm else DEFAULT_PROGRESS_CALLBACK)",
                 "Instantiate the callbacks (classes with no arguments) and list them: DefaultFlowCallback, the report_to "
                 f"integrations (report_to={_report_to(a)}), `callbacks=`, then "
                 f"{'PrinterCallback' if a.disable_tqdm else 'the progress bar callback'} (disable_tqdm={a.disable_tqdm})."),
            Step("output_dir", "if self.args.should_save: os.makedirs(self.args.output_dir, exist_ok=True)",
                 f"Create output_dir={a.output_dir!r} (loopdoc skips this one call while loading the file)."),
        ]
        return Phase("create", "`Trainer.__init__`: store the model, arguments and datasets, set the seed "
                     f"(seed={a.seed}), build the callback list, then fire `on_init_end` once.",
                     (*steps, self.event("on_init_end")))

    def train_phase(self) -> Phase:
        a, n = self.args, self.n
        if getattr(self.trainer, "train_dataset", None) is None:
            raise CallError(f"--call {self.call.text!r}: the Trainer has no train_dataset (Trainer.train raises "
                             "ValueError: Trainer: training requires a train_dataset.)")
        if n is None:
            raise CallError(f"--call {self.call.text!r}: the train dataset has no length and max_steps={a.max_steps}: "
                             "Trainer.train raises ValueError (args.max_steps must be set to a positive value)")
        s = self.schedule
        assert s is not None
        path = ("train",)
        self.rules.span[path] = "train"
        prepare = Step("prepare", "train_dataloader = self.get_train_dataloader(); self._init_training_state(...); "
                       "model, train_dataloader = self._prepare_for_training(...)",
                       f"Build the train dataloader ({_count(n.batches, 'batch', 'batches')} of {n.batch_size}"
                       f"{'' if n.sized else ', no length: max_steps decides'}), a fresh TrainerState (global_step 0), the "
                       f"optimizer and the scheduler ({self.summary('').opt_func}).")
        children: list[Node] = [prepare, self.event("on_train_begin")]
        if a.eval_on_start:
            children.append(self.evaluate_phase(path, None, "Before the first epoch (eval_on_start=True), without "
                                                            "`_determine_best_metric`."))
        children.append(self.epoch_phase(path))
        children.append(Step("train metrics", "self.log(metrics)", "`_finalize_training`: log train_runtime, train_loss "
                                                                  "and the other train metrics."))
        children.append(self.event("on_log", "With the train metrics (`train_loss`, `train_runtime`, …), from "
                                             "`_finalize_training`."))
        if a.load_best_model_at_end:
            step = Step("load best model", "self._load_best_model()",
                        f"Load the best checkpoint by metric_for_best_model={a.metric_for_best_model!r}.",
                        condition="when a best checkpoint was saved (state.best_model_checkpoint is set)")
            children.append(step)
            self.rules.marks[(path, step.name)] = "_load_best_model"
        children.append(self.event("on_train_end"))
        return Phase("train", "`Trainer.train()` → `_inner_training_loop`: the whole training run, then "
                     "`_finalize_training`.", tuple(children), stage="train")

    def epoch_phase(self, parent: Path) -> Phase:
        a, n, s = self.args, self.n, self.schedule
        assert n is not None and s is not None
        path = (*parent, "epoch")
        epochs = len(s.steps)
        if a.max_steps > 0 and n.sized:
            how = f"max_steps={a.max_steps} / {n.steps_per_epoch} update steps per epoch, rounded up"
        elif n.sized:
            how = f"num_train_epochs={arg(a.num_train_epochs)}"
        else:
            how = "the train dataset has no length: one pass until max_steps"
        loop = f"for epoch in range({epochs}) ({how})"
        if self.early or self.unstop or (self.df is not None and not self.df_step) or \
                any(w.may_set("should_training_stop") for w in self.writes):
            loop += "; " + self._stop_text()
        bound = epochs if n.sized else n.max_steps  # no length: an epoch per batch, at most
        self.rules.count[path] = lambda env, bound=bound: bound
        self.rules.exact[path] = not self.stop_dynamic and n.sized
        children = (self.event("on_epoch_begin"), self.step_phase(path), self.event("on_epoch_end"), self.block_phase(path, "epoch"))
        return Phase("epoch", "One pass over the train dataloader.", children, loop=loop)

    def _stop_text(self, flags: tuple[str, ...] = ("should_training_stop",)) -> str:
        """``"ends early once control.should_training_stop is set (EarlyStoppingCallback at on_evaluate)"``."""
        who = [f"{cb_id} at on_evaluate" for cb_id, _ in self.early] if "should_training_stop" in flags else []
        who += [f"{w.callback} at {w.event}" for w in self.writes if any(w.may_set(f) for f in flags)]
        if self.df is not None and not self.df_step:
            who.append(f"{self.df_id} at on_step_end")
        unique = list(dict.fromkeys(who))
        text = f"ends early once {' or '.join(f'control.{f}' for f in flags)} is set" + (f" ({', '.join(unique)})" if unique else "")
        if self.unstop:
            text += "; a callback may clear should_training_stop or replace the control object, so max_steps may not stop training"
        return text

    def step_phase(self, parent: Path) -> Phase:
        a, n, s = self.args, self.n, self.schedule
        assert n is not None and s is not None
        path = (*parent, "step")
        ga = n.ga
        per = (f"{_count(n.steps_per_epoch, 'update step')} per epoch ({_count(n.batches, 'batch', 'batches')} / "
               f"gradient_accumulation_steps={ga}, rounded up)")
        if self.df is None:
            per += f"; max_steps={n.max_steps} is not enforced inside an epoch (no DefaultFlowCallback)"
        elif self.df_step and not self.unstop:
            per += f", until global_step reaches max_steps={n.max_steps}"
        if any(w.may_set("should_epoch_stop") for w in self.writes):
            per += "; " + self._stop_text(STOP_FLAGS)
        steps = s.steps if not self.unstop else (n.steps_per_epoch,) * n.epochs
        self.rules.count[path] = lambda env, steps=steps: steps[env["epoch_index"]]
        self.rules.exact[path] = not self.stop_dynamic and n.sized
        if self.open_tail:
            self.rules.open_tail.add(path)
        children: list[Node] = [self.event("on_step_begin"), self.micro_phase(path)]
        if a.max_grad_norm and a.max_grad_norm > 0:
            children.append(Step("clip gradients", "grad_norm = self._clip_grad_norm(model)",
                                 f"Clip the gradient norm to max_grad_norm={arg(a.max_grad_norm)}."))
        children += [
            self.event("on_pre_optimizer_step"),
            Step("optimizer step", "self.optimizer.step()", "Apply the accumulated gradients."),
            self.event("on_optimizer_step"),
            Step("scheduler, zero_grad, count", "self.lr_scheduler.step(); model.zero_grad(); self.state.global_step += 1; "
                 "self.state.epoch = epoch + (step + 1) / steps_in_epoch", "Advance the learning rate schedule, reset the "
                 "gradients, count the update step."),
            self.event("on_step_end"),
            self.block_phase(path, "step"),
        ]
        return Phase("step", f"One optimizer update of {_count(ga, 'micro-batch', 'micro-batches')} (global_step += 1).",
                     tuple(children), loop=f"for each update step: {per}")

    def micro_phase(self, parent: Path) -> Phase:
        n = self.n
        assert n is not None
        path = (*parent, "micro_batch")
        ga, r = n.ga, n.last_window
        self.rules.count[path] = lambda env, n=n: n.window(env["step_index"])
        self.rules.exact[path] = not self.open_tail
        step = Step("training_step", "tr_loss_step = self.training_step(model, inputs, num_items_in_batch)",
                    "Forward pass, loss and backward pass of one batch; gradients accumulate.")
        self.rules.marks[(path, step.name)] = "training_step"
        children: list[Node] = [step]
        if ga > 1:
            sub = (*path, "substep")
            condition = f"each non-final micro-batch of {ga} (gradient_accumulation_steps={ga})"
            if r != ga:
                condition += f"; the last update step of each epoch has {r} (its {_count(n.batches, 'batch', 'batches')} % {ga})"
            self.rules.when[sub] = lambda env, n=n: env["micro_index"] < n.window(env["step_index"]) - 1
            children.append(Phase("substep", "After a micro-batch that does not end its update step: no optimizer step "
                                  "follows.", (self.event("on_substep_end"),), condition=condition))
        loop = f"for each micro-batch of the update step: {ga} (gradient_accumulation_steps={ga})"
        if r != ga:
            loop += f"; the last update step of each epoch takes the remaining {r} of {_count(n.batches, 'batch', 'batches')}"
        if self.open_tail:
            loop += "; a stop flag set at on_step_begin or on_substep_end ends it, and the update step, early"
        return Phase("micro_batch", "One batch of the train dataloader: forward and backward.", tuple(children), loop=loop)

    def block_phase(self, parent: Path, block: str) -> Node:
        """``_maybe_log_save_evaluate`` after ``on_step_end`` (``block="step"``) or ``on_epoch_end`` (``"epoch"``)."""
        a, n, s = self.args, self.n, self.schedule
        assert n is not None and s is not None
        path = (*parent, "log_save_evaluate")
        at = "on_step_end" if block == "step" else "on_epoch_end"
        rules = default_flow_rules(a, n) if (self.df_step if block == "step" else self.df_epoch) else {}
        children: list[Node] = []
        condition, when = self.part("should_log", block, rules.get(("should_log", at)),
                                    s.step_log if block == "step" else s.epoch_log)
        if condition is not None:
            self.rules.when[(*path, "log")] = when
            children.append(Phase("log", "Log the training loss averaged since the last log, `grad_norm`, `learning_rate`.", (
                Step("logs", "logs = {'loss': ..., 'grad_norm': ..., 'learning_rate': ...}; self.log(logs, start_time)",
                     "Only when global_step has passed the last logged step."),
                self.event("on_log", "With the training loss since the last log, `grad_norm`, `learning_rate`, `epoch`."),
            ), condition=condition))
        condition, when = self.part("should_evaluate", block, rules.get(("should_evaluate", at)),
                                    s.step_eval if block == "step" else s.epoch_eval)
        evaluating = condition is not None
        if evaluating:
            self.rules.when[(*path, "evaluate")] = when
            phase = self.evaluate_phase(path, None, "From `_maybe_log_save_evaluate` (`self._evaluate`).", condition=condition)
            children.append(phase)
            if a.metric_for_best_model is not None:
                children.append(Step("best metric", "is_new_best_metric = self._determine_best_metric(metrics, trial)",
                                     f"Update state.best_metric from {a.metric_for_best_model!r} (after on_evaluate, so "
                                     "EarlyStoppingCallback compares with the previous best); KeyError if the metric is missing.",
                                     condition="after each evaluation here"))
        best = arg(a.save_strategy).strip("'") == "best"
        save_rule = rules.get(("should_save", at))
        if best and evaluating:
            save_rule = (f"after an evaluation here that improved metric_for_best_model={a.metric_for_best_model!r} "
                         "(save_strategy='best': the Trainer sets control.should_save itself)")
        condition, when = self.part("should_save", block, save_rule, (s.step_save if block == "step" else s.epoch_save)
                                    if not best else None)
        if condition is not None:
            save_path = (*path, "save")
            self.rules.when[save_path] = when
            save = Step("save checkpoint", "self._save_checkpoint(model, trial)",
                        f"Write {a.output_dir}/checkpoint-<global_step>/ (model, optimizer, scheduler, RNG and trainer "
                        f"state); keep at most save_total_limit={a.save_total_limit} of them.")
            self.rules.marks[(save_path, save.name)] = "_save_checkpoint"
            kids: list[Node] = [save]
            if a.push_to_hub:
                push = (*save_path, "push")
                self.rules.when[push] = None
                kids.append(Phase("push", "`_push_from_checkpoint`: upload the checkpoint.", (self.event("on_push_begin"),),
                                  condition=f"push_to_hub=True and hub_strategy={arg(a.hub_strategy)} is not 'end', when no "
                                            "push is in progress"))
            kids.append(self.event("on_save"))
            children.append(Phase("save", "Save a checkpoint.", tuple(kids), condition=condition))
        where = "after `on_step_end`" if block == "step" else "after `on_epoch_end`"
        if not children:
            step = Step("log, save, evaluate", "self._maybe_log_save_evaluate(...)",
                        f"`_maybe_log_save_evaluate` {where}: nothing to do here with these arguments (no control flag can be set).")
            self.rules.marks[(parent, step.name)] = "_maybe_log_save_evaluate"
            return step
        self.rules.span[path] = "_maybe_log_save_evaluate"
        return Phase("log_save_evaluate", f"`_maybe_log_save_evaluate` {where}: log, then evaluate, then save, each only "
                     "if its control flag is set.", tuple(children))

    def _eval_sets(self, dataset: Any) -> list[tuple[str | None, int | None]]:
        a = self.args
        ds = self.trainer.eval_dataset if dataset is None else dataset
        if isinstance(ds, dict):
            return [(str(k), plans.batches(plans.length(v), a.eval_batch_size, a.dataloader_drop_last)) for k, v in ds.items()]
        return [(None, plans.batches(plans.length(ds), a.eval_batch_size, a.dataloader_drop_last))]

    def _batch_loop(self, path: Path, counts: list[int | None], what: str, names: list[str] | None = None) -> Phase:
        a = self.args
        batch = (*path, "batch")
        known = [c for c in counts if c is not None]
        if len(counts) == 1:
            self.rules.count[batch] = lambda env, c=counts[0]: c if c is not None else -1
            loop = f"for each batch of the {what} ({_count(counts[0], 'batch', 'batches')})" if counts[0] is not None else \
                f"for each batch of the {what} (no length)"
        else:
            self.rules.count[batch] = lambda env, cs=tuple(counts): cs[env["dataset_index"]] if cs[env["dataset_index"]] is not None else -1
            loop = f"for each batch of this dataset: {', '.join(f'{k}: {c}' for k, c in zip(names or [], counts, strict=False))}"
        self.rules.exact[batch] = len(known) == len(counts)
        step = Step("prediction_step", "losses, logits, labels = self.prediction_step(model, inputs, prediction_loss_only, "
                    "ignore_keys=ignore_keys)", "Forward pass (loss when the batch has labels).")
        self.rules.marks[(batch, step.name)] = "prediction_step"
        return Phase("batch", f"One batch (per_device_eval_batch_size={a.per_device_eval_batch_size}).",
                     (step, self.event("on_prediction_step")), loop=loop, context="torch.no_grad()")

    def evaluate_phase(self, parent: Path, dataset: Any, origin: str, condition: str | None = None) -> Phase:
        """``Trainer.evaluate``'s loop: per dataset of a dict (it calls itself), the batches, ``on_log``, ``on_evaluate``."""
        path = (*parent, "evaluate")
        self.rules.span[path] = "evaluate"
        sets = self._eval_sets(dataset)
        metrics = Step("metrics", "output.metrics.update(speed_metrics(...)); self.log(output.metrics)",
                       "Compute the eval metrics" + (f" (compute_metrics={describe(self.trainer.compute_metrics)})"
                                                     if get(self.trainer, "compute_metrics") is not None else " (eval_loss)")
                       + " and log them.")
        dataloader = Step("dataloader", "eval_dataloader = self.get_eval_dataloader(eval_dataset)", "Build the eval dataloader.")
        if len(sets) == 1 and sets[0][0] is None:
            children: tuple[Node, ...] = (dataloader, self._batch_loop(path, [sets[0][1]], "eval dataloader"), metrics,
                                          self.event("on_log", "With the eval metrics (`eval_loss`, …), from `evaluate`."),
                                          self.event("on_evaluate"))
        else:
            sub = (*path, "dataset")
            self.rules.span[sub] = "evaluate"
            k = len(sets)
            self.rules.count[sub] = lambda env, k=k: k
            self.rules.exact[sub] = True
            names = [k or "" for k, _ in sets]
            inner = (dataloader, self._batch_loop(sub, [c for _, c in sets], "eval dataloader", names), metrics,
                     self.event("on_log", "With this dataset's metrics (`eval_<name>_loss`, …), from `evaluate`."),
                     self.event("on_evaluate"))
            children = (Phase("dataset", "`evaluate` calls itself for each dataset of the eval_dataset dict; metric names get "
                              "the prefix `eval_<name>_`.", inner, loop=f"for each eval dataset: {', '.join(names)}"),)
        return Phase("evaluate", f"`Trainer.evaluate()`: the prediction loop over the eval dataset, then its metrics are "
                     f"logged and `on_evaluate` fires. {origin}", children, condition=condition, stage="validate")

    def evaluate_call(self, call: Call) -> Phase:
        dataset = call.kwargs.get("eval_dataset")
        if dataset is None and getattr(self.trainer, "eval_dataset", None) is None:
            raise CallError(f"--call {call.text!r}: the Trainer has no eval_dataset (Trainer.get_eval_dataloader raises "
                             "ValueError: Trainer: evaluation requires an eval_dataset.); pass one: 'evaluate(eval_dataset=ds)'")
        if isinstance(dataset, str):
            dataset = {dataset: self.trainer.eval_dataset[dataset]} if isinstance(self.trainer.eval_dataset, dict) else None
        phase = self.evaluate_phase((), dataset, f"Called as `{call.text}`.")
        return phase

    def predict_phase(self, call: Call) -> Phase:
        a = self.args
        path = ("predict",)
        self.rules.span[path] = "predict"
        ds = call.kwargs["test_dataset"]
        count = plans.batches(plans.length(ds), a.eval_batch_size, a.dataloader_drop_last)
        children = (
            Step("dataloader", "test_dataloader = self.get_test_dataloader(test_dataset)", "Build the test dataloader."),
            self._batch_loop(path, [count], "test dataloader"),
            Step("metrics", "output.metrics.update(speed_metrics(...))", "Compute the test metrics (not logged: no on_log)."),
            self.event("on_predict"),
        )
        return Phase("predict", f"`Trainer.predict()` (`{call.text}`): the prediction loop over the test dataset, then "
                     "`on_predict`. No `on_log`.", children, stage="predict")

    # -- flows and notes -------------------------------------------------------------------
    def flows(self) -> tuple[Any, ...]:
        rules = {}
        if self.df_step or self.df_epoch:
            rules = {k: v for k, v in default_flow_rules(self.args, self.n).items()
                     if (k[1] == "on_step_end" and self.df_step) or (k[1] == "on_epoch_end" and self.df_epoch)}
        return build_flows(self.args, rules, self.df_id, self.early, self.writes, EVENT_ORDER,
                           arg(self.args.save_strategy).strip("'") == "best")

    def finish_notes(self, phases: list[Phase]) -> None:
        """Notes about this loop, each true of a real run of the call."""
        notes = self.notes
        trainer_cls = self._trainer_class()
        overridden = [m for m in LOOP_METHODS if getattr(type(self.trainer), m, None) is not getattr(trainer_cls, m, None)
                      or m in (get(self.trainer, "__dict__") or {})]
        if overridden:
            notes.append(f"`{type(self.trainer).__qualname__}` overrides {', '.join(f'`Trainer.{m}`' for m in overridden)}: this "
                         "model shows transformers.Trainer's own code there; what the override runs instead is not read.")
        if self.df is None:
            notes.append("No DefaultFlowCallback in the callback list: nothing sets should_log, should_evaluate or should_save, "
                         "and nothing stops training at max_steps inside an epoch; every epoch runs all its update steps.")
        elif not (self.df_step and self.df_epoch):
            notes.append(f"`{self.df_id}` overrides DefaultFlowCallback's on_step_end or on_epoch_end: when it logs, evaluates, "
                         "saves and stops is its own code's decision, not stated here.")
        for w in self.writes:
            if w.kind == "replace":
                shown = w.code.removeprefix("return ").strip()
                if w.flag == "*":
                    notes.append(f"`{w.function}` returns `{shown}` at {w.event}: CallbackHandler replaces the Trainer's control "
                                 "with any value that is not None, so the flags set before it at that event are lost; a value "
                                 "that is not a TrainerControl makes the next read of a control flag fail with AttributeError.")
                elif w.flag == FLAGS[0]:
                    notes.append(f"`{w.function}` returns a new TrainerControl at {w.event} (`{shown}`): it replaces the "
                                 f"Trainer's control, so the flags the callbacks before {w.callback} set at {w.event} are lost"
                                 + (" (DefaultFlowCallback's should_training_stop among them: max_steps may not stop training)"
                                    if w.event == "on_step_end" else "") + ".")
            elif w.kind == "unknown":
                notes.append(f"loopdoc cannot read the source of `{w.function}` ({w.callback} at {w.event}): it may set any control "
                             "flag, so the parts that depend on them are shown as run-time decisions.")
            elif w.event in ("on_train_begin", "on_epoch_begin", "on_init_end") and w.flag in ("should_log", "should_evaluate",
                                                                                               "should_save"):
                notes.append(f"{w.phrase()} ({w.callback} at {w.event}) has no effect on logging, evaluation or saving: "
                             f"CallbackHandler sets control.{w.flag} to False before it dispatches on_step_begin, before any "
                             "block reads it.")
        if self.open_tail:
            who = ", ".join(dict.fromkeys(f"{w.callback} at {w.event}" for w in self.writes
                                          if w.event in EARLY_STOP_EVENTS and any(w.may_set(f) for f in STOP_FLAGS)))
            notes.append(f"A stop flag set at on_step_begin or on_substep_end ({who}) ends the update step after the current "
                         "micro-batch, without on_pre_optimizer_step, on_optimizer_step, on_step_end or its block; "
                         "on_epoch_end follows.")
        if self.call.method == "train":
            self._train_notes()
        missing = [e for e in self.events if e not in EVENT_DESCRIPTIONS]
        if missing:
            notes.append(f"TrainerCallback defines events this version of loopdoc does not place: {', '.join(missing)}.")
        if not self.observed and any(id(cb) not in self.at_init for cb in self.cbs):
            notes.append("loopdoc did not see this Trainer being built: it takes the callbacks after the progress callback "
                         "to have been added later (they get no on_init_end).")

    def _train_notes(self) -> None:
        a, n, s, notes = self.args, self.n, self.schedule, self.notes
        assert n is not None and s is not None
        # EarlyStoppingCallback's failing setups and the missing load_best_model_at_end are check findings (LD501, LD502).
        if a.metric_for_best_model is not None and arg(a.eval_strategy).strip("'") != "no":
            for cb_id, _ in self.early or [(self.ids[id(c)], c) for c in self.cbs if isinstance(c, self.es_class)]:
                notes.append(f"`{cb_id}` stops training when {a.metric_for_best_model!r} stops improving, so how many "
                             "steps and epochs run depends on the metric values: the loop counts are upper bounds.")
        # Handlers of events train() never fires here are check findings (LD105).
        # A callback asking for an evaluation without an eval_dataset is a check finding (LD503).
        saves = sorted(s.step_save) if arg(a.save_strategy).strip("'") == "steps" else []
        if self.rules.marks and any(v == "_save_checkpoint" for v in self.rules.marks.values()):
            if saves and self.df_step and not self.writes and not self.stop_dynamic:
                where = listing(frozenset(saves), "global_step", n.max_steps)
                notes.append(f"train() writes checkpoints to output_dir={a.output_dir!r}: checkpoint-<global_step> at {where}.")
            else:
                notes.append(f"train() writes checkpoints to output_dir={a.output_dir!r} (checkpoint-<global_step>).")
        if not n.sized:
            notes.append(f"The train dataset has no length: the Trainer trains until max_steps={n.max_steps}. This model shows "
                         "one epoch; a dataset that runs out first ends that epoch and the Trainer starts another (it stops "
                         "only at max_steps, or when an epoch yields no batch at all).")


def _guess_at_init(cbs: list[Any]) -> set[int]:
    """Callbacks present when ``on_init_end`` fired, guessed: ``Trainer.__init__`` adds the progress/printer callback
    last, so the ones after the first such callback came later (``add_callback``)."""
    for i, cb in enumerate(cbs):
        if type(cb).__name__ in PROGRESS:
            return {id(c) for c in cbs[: i + 1]}
    return {id(c) for c in cbs}


def _report_to(args: Any) -> str:
    value = getattr(args, "report_to", None)
    if isinstance(value, (list, tuple)):
        return "'none'" if not value else safe_repr(list(value))
    return safe_repr(value)


def _count(n: int | None, noun: str, plural: str | None = None) -> str:
    """``"3 batches"``, ``"1 batch"``; ``"an unknown number of batches"`` for ``None``."""
    plural = plural or noun + "s"
    if n is None:
        return f"an unknown number of {plural}"
    return f"{n} {noun if n == 1 else plural}"


__all__ = ["FLAGS", "RESETS", "Built", "Numbers", "Rules", "build", "default_call", "events"]
