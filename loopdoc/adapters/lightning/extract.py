"""Read a Lightning 2.6 ``Trainer`` call into a ``loopdoc.model.Loop`` without running it.

The phase tree is the one Lightning's loops run (``pytorch_lightning`` 2.6.6; ``lightning.pytorch``
is the same code):

- ``Trainer._run`` (the top phase, named by the call: ``fit``/``validate``/``test``/``predict``):
  ``configure_callbacks``, ``prepare_data``, ``setup``, ``configure_model``, ``configure_optimizers``,
  ``on_fit_start``; ``Trainer._run_stage``; ``Trainer._teardown``, ``on_fit_end``, ``teardown``;
- ``Trainer._run_sanity_check`` (``sanity_check``); ``_EvaluationLoop.run`` (``validation``, ``testing``)
  and ``_evaluation_step`` (its ``batch``); ``_PredictionLoop.run`` (``prediction``) and ``_predict_step``;
- ``_FitLoop.run`` (``train``), ``on_advance_start`` … ``on_advance_end`` (``epoch``);
  ``_TrainingEpochLoop.advance`` + ``on_advance_end`` (``batch``: one batch, then the validation due after it);
- ``_AutomaticOptimization._optimizer_step`` (``step``), ``Closure.closure`` (``closure``), its
  ``zero_grad_fn`` (``zero_grad``); ``_TrainingEpochLoop._update_learning_rates`` (``lr_schedulers``);
  ``Trainer.save_checkpoint`` (``checkpoint``, inside a ModelCheckpoint hook);
  ``LightningModule.manual_backward`` and ``LightningOptimizer.step`` in manual optimisation
  (``manual_backward``, ``manual_step``, inside your ``training_step``).

Who responds at a hook: ``trainer/call.py``'s helpers call every callback of ``trainer.callbacks``
(in order), the LightningModule, the DataModule; each call site picks which and in what order (see
``wording.HOOKS``). A handler is an object whose own code runs (``lib.Lightning.own``); Lightning's
base implementations that do work appear as steps after the hook (``wording.DEFAULTS``). The callback
list is the one the call will use: ``trainer.callbacks`` merged with ``configure_callbacks()`` by
Lightning's own ``_CallbackConnector._attach_model_callbacks`` run on a stand-in Trainer (the real one
is not written). Conditions (sanity check, accumulation, validation interval, checkpoint placement,
LR schedulers) are stated from the built Trainer's settings; each one also has a Python expression over
a phase occurrence (``Meta.when``) that ``tests/lightning/test_lightning_truth.py`` evaluates against real runs.

User code that runs here: ``configure_callbacks()`` (once) and ``configure_optimizers()`` (once, to read
the LR schedulers; guarded: if it raises, their places are "possible"). Nothing is trained, written or
changed (``tests/lightning/test_lightning.py::test_loading_changes_nothing``).
"""

from __future__ import annotations

import contextlib
import io
import math
import types
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ...model.loop import Callback, Event, Flow, FlowSetter, Framework, Handler, LearnerSummary, Loop, Node, Phase, Step
from ..introspect import callback_ids, class_source, clean_doc, handler_for, qualified, safe_repr
from .calls import Call, default_call, parse_call
from .lib import Lightning, package_of
from .wording import DEFAULTS, describe_hook


@dataclass(frozen=True)
class Meta:
    """What the model states in words about one node, as data a test can check against a run.

    Attributes:
        when: a Python expression over a phase occurrence's context (``batch_idx``, ``is_last``, ``epoch``,
            ``global_step``, ``total_batch_idx``, ``should_stop``, ``val_run_index``) saying when the node occurs
            in its parent; ``"?"`` when that depends on the run (a metric improving); ``None``: always.
        within: ``(hook, callback id)`` whose handler the phase runs inside, or ``None``.
        user: the phase is started by the user's own code (manual optimisation), any number of times.
        default: for a step standing for Lightning's default of a hook, the base function's ``__qualname__``.
    """

    when: str | None = None
    within: tuple[str, str] | None = None
    user: bool = False
    default: str | None = None


@dataclass(frozen=True)
class Cond:
    """A condition in words (``text``, the model's) and as an expression (``when``, ``Meta.when``), made together."""

    text: str | None
    when: str | None


ALWAYS = Cond(None, None)


def both(*conds: Cond) -> Cond:
    """The conjunction of conditions: texts joined with ``"; "``, expressions with ``and`` (``"?"`` wins)."""
    texts = [c.text for c in conds if c.text]
    whens = [c.when for c in conds if c.when is not None]
    if "?" in whens:
        when: str | None = "?"
    elif not whens:
        when = None
    else:
        when = " and ".join(f"({w})" for w in whens) if len(whens) > 1 else whens[0]
    return Cond("; ".join(texts) or None, when)


def extract(trainer: Any, *, loaded_from: str, call: str | None = None, namespace: dict[str, Any] | None = None,
            observation: Any = None) -> Loop:
    """The ``Loop`` of a Trainer call, without running it (see the module docstring).

    Args:
        trainer: a ``pytorch_lightning.Trainer`` or ``lightning.pytorch.Trainer``.
        loaded_from: where it came from, for ``LearnerSummary.loaded_from``.
        call: ``"fit(model, datamodule=dm)"`` & co (``calls.parse_call``); ``None``: ``calls.default_call``.
        namespace: names the call may use (the user's module globals).
        observation: ``creation.Observed`` for this Trainer (the ``callbacks=`` it was built with), or ``None``.

    Returns:
        The model.

    Raises:
        CallError: a bad call, or one Lightning would refuse (no data, no step).
        LearnerNotFound: no call given and the module's objects are ambiguous.
    """
    return plan(trainer, loaded_from=loaded_from, call=call, namespace=namespace, observation=observation)[0]


def plan(trainer: Any, *, loaded_from: str, call: str | None = None, namespace: dict[str, Any] | None = None,
         observation: Any = None) -> tuple[Loop, dict[int, Meta]]:
    """``extract``'s model and, per node (by ``id``), its ``Meta``: the conditions as expressions, for the truth tests.

    Args:
        trainer, loaded_from, call, namespace, observation: as for ``extract``.

    Returns:
        ``(loop, {id(node): Meta})``; the ids are those of the nodes inside ``loop``.

    Raises:
        As ``extract``.
    """
    lib = Lightning.of(package_of(trainer) or "pytorch_lightning")
    where = loaded_from.rpartition(":")[0] or loaded_from
    resolved = parse_call(call, trainer, namespace or {}) if call else default_call(trainer, namespace or {}, where)
    builder = _Builder(lib, trainer, resolved, observation)
    top = builder.top()
    loop = Loop(
        framework=Framework("lightning", lib.version),
        versions=_versions(lib),
        learner=builder.summary(loaded_from),
        call=resolved.text,
        filtered_events=(),
        callbacks=tuple(builder.model_callbacks()),
        phases=(top,),
        notes=tuple(builder.notes),
        flows=tuple(builder.flows()),
    )
    objects = [*builder.callbacks, builder.model, *([builder.dm] if builder.dm is not None else [])]
    _LAST[:] = [(loop, {builder.ids[id(obj)]: obj for obj in objects})]
    return loop, builder.meta


_LAST: list[tuple[Loop, dict[str, Any]]] = []  # the last model built only: a worker answers one request at a time


def extracted(loop: Loop) -> dict[str, Any] | None:
    """The live objects behind ``loop``'s callback ids (callbacks, LightningModule, DataModule) when ``loop`` is the
    model ``plan`` built last (the same object), else ``None`` (``facts.lint_facts``)."""
    return _LAST[0][1] if _LAST and _LAST[0][0] is loop else None


def _versions(lib: Lightning) -> dict[str, str]:
    import torch

    return {lib.pkg: lib.version, "torch": str(torch.__version__)}


LIGHTNING_CODE = ("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "lightning.fabric")
"""The packages whose classes are Lightning's own (a strategy or precision plugin of another module is the user's)."""

# Receivers of a hook, in call order: "callbacks" (every callback), "callbacks-other" / "callbacks-monitoring" (not / only
# EarlyStopping and Checkpoint: `monitoring_callbacks=False/True`), "module", "datamodule", "datahook" (the DataModule if it
# overrides the hook, else the LightningModule: `_DataHookSelector`).
CB_MODULE = ("callbacks", "module")
SETUP = ("datamodule", "callbacks", "module")


class _Builder:
    """Builds the phase tree of one call; knows the callbacks the call will use and how Lightning dispatches."""

    def __init__(self, lib: Lightning, trainer: Any, call: Call, observation: Any) -> None:
        self.lib, self.t, self.call = lib, trainer, call
        self.model, self.dm = call.model, call.datamodule
        self.meta: dict[int, Meta] = {}
        self.notes: list[str] = []
        self.origins: dict[int, str] = {}
        self.callbacks = self._callbacks(observation)
        self.ids = callback_ids([*self.callbacks, self.model, *([self.dm] if self.dm is not None else [])])
        self.auto = bool(getattr(self.model, "automatic_optimization", True))
        self.N = int(trainer.accumulate_grad_batches)
        self.optimizer_name: str | None = None  # set by lr_configs (configure_optimizers)

    # ------------------------------------------------------------------ callbacks
    def _callbacks(self, observation: Any) -> list[Any]:
        """``trainer.callbacks`` merged with ``configure_callbacks()`` as ``Trainer._run`` will merge them.

        Runs Lightning's own ``_CallbackConnector._attach_model_callbacks`` (``callback_connector.py``, 2.6) on a
        stand-in holding a copy of the list: it reads ``trainer.callbacks``, ``lightning_module``, ``profiler``
        and ``loggers`` and writes only the stand-in's ``callbacks``. The module's ``_current_fx_name``, which the
        hook helper sets and restores, is restored again.
        """
        lib, model = self.lib, self.model
        own = list(self.t.callbacks)
        given = None if observation is None else observation.callbacks
        for cb in own:
            if given is not None and id(cb) not in given:
                self.origins[id(cb)] = "Lightning default"
        if lib.own(model, "configure_callbacks") is None:
            return own
        stand_in = types.SimpleNamespace(callbacks=list(own), lightning_module=model, profiler=lib.profilers.PassThroughProfiler(),
                                         loggers=list(self.t.loggers))
        connector = lib.callback_connector._CallbackConnector(stand_in)
        previous = getattr(model, "_current_fx_name", None)
        try:
            with _quiet():
                connector._attach_model_callbacks()
        finally:
            model._current_fx_name = previous
        merged = list(stand_in.callbacks)
        kept = {id(cb) for cb in own}
        for cb in merged:
            if id(cb) not in kept:
                self.origins[id(cb)] = "configure_callbacks()"
        replaced = [type(cb).__name__ for cb in own if id(cb) not in {id(c) for c in merged}]
        self.notes.append(
            "`configure_callbacks()` was called once to read the callbacks it returns"
            + (f" (they replace {', '.join(f'`{n}`' for n in replaced)})" if replaced else "")
            + "; each Trainer call (fit, validate, …) calls it again, so its callbacks are new objects there, of the same "
            "classes, in the same places."
        )
        return merged

    def model_callbacks(self) -> list[Callback]:
        """The model's ``Callback`` entries: the callbacks in ``trainer.callbacks`` order, then the LightningModule and DataModule."""
        out = []
        for obj in [*self.callbacks, self.model, *([self.dm] if self.dm is not None else [])]:
            cls = type(obj)
            kind = self.lib.kind(obj)
            origin = self.origins.get(id(obj))
            if kind == "callback" and origin == "Lightning default" and package_of(obj) != self.lib.pkg:
                origin = None
            out.append(Callback(id=self.ids[id(obj)], name=cls.__name__, qualname=qualified(cls), doc=clean_doc(vars(cls).get("__doc__")),
                                source=class_source(cls), order=None, flags={}, kind=kind, origin=origin))
        return out

    # ------------------------------------------------------------------ nodes
    def _node(self, node: Any, cond: Cond = ALWAYS, **meta: Any) -> Any:
        if cond.when is not None or meta:
            self.meta[id(node)] = Meta(when=cond.when, **meta)
        return node

    def phase(self, name: str, description: str, children: Iterable[Node | None | list[Node]], *, loop: str | None = None,
              cond: Cond = ALWAYS, context: str | None = None, stage: str | None = None, **meta: Any) -> Phase:
        flat: list[Node] = []
        for child in children:
            flat.extend(c for c in (child if isinstance(child, list) else [child]) if c is not None)
        return self._node(Phase(name, description, tuple(flat), loop=loop, condition=cond.text, context=context, stage=stage),
                          cond, **meta)

    def step(self, name: str, code: str, description: str, cond: Cond = ALWAYS, **meta: Any) -> Step:
        return self._node(Step(name, code, description, condition=cond.text), cond, **meta)

    def receivers(self, hook: str, recipe: tuple[str, ...]) -> list[tuple[str, Any]]:
        """The objects Lightning calls for ``hook`` with this recipe, in call order: ``[(kind, obj)]``."""
        lib = self.lib
        monitoring = (lib.EarlyStopping, lib.Checkpoint)
        out: list[tuple[str, Any]] = []
        for r in recipe:
            if r.startswith("callbacks"):
                for cb in self.callbacks:
                    is_mon = isinstance(cb, monitoring)
                    if (r == "callbacks-monitoring" and not is_mon) or (r == "callbacks-other" and is_mon):
                        continue
                    out.append(("callback", cb))
            elif r == "module":
                out.append(("module", self.model))
            elif r == "datamodule":
                if self.dm is not None:
                    out.append(("datamodule", self.dm))
            elif r == "datahook":
                use_dm = self.dm is not None and lib.overridden(hook, self.dm)
                out.append(("datamodule", self.dm) if use_dm else ("module", self.model))
            else:
                raise ValueError(f"unknown receiver {r!r}")
        return out

    def handlers(self, hook: str, recipe: tuple[str, ...]) -> tuple[list[Handler], list[Any]]:
        """The handlers of ``hook`` (own code, in call order) and the module/DataModule receivers without own code."""
        hs: list[Handler] = []
        bare: list[Any] = []
        for kind, obj in self.receivers(hook, recipe):
            found = self.lib.own(obj, hook)
            if found is not None:
                attr, via, cls = found
                hs.append(handler_for(self.ids[id(obj)], attr, via, qualified(cls) if cls is not None else None))
            elif kind in ("module", "datamodule"):
                bare.append(obj)
        return hs, bare

    def hook(self, name: str, recipe: tuple[str, ...], extra: str | None = None, cond: Cond = ALWAYS,
             description: str | None = None) -> list[Node]:
        """The event ``name`` with its handlers, then a step for Lightning's default where it runs (``wording.DEFAULTS``)."""
        hs, bare = self.handlers(name, recipe)
        text = description or describe_hook(name)
        if extra:
            text = f"{text} {extra}"
        if cond.text:
            text = f"{text} Only {cond.text}."
        out: list[Node] = [self._node(Event(name, text, tuple(hs)), cond)]
        for obj in bare:
            step = self.default_step(obj, name, cond)
            if step is not None:
                out.append(step)
        return out

    def default_step(self, obj: Any, hook: str, cond: Cond = ALWAYS) -> Step | None:
        """A step for Lightning's base implementation of ``hook`` on ``obj`` when it does work, else ``None``."""
        base = self.lib.base_function(obj, hook)
        if base is None:
            return None
        qualname = getattr(base, "__qualname__", hook)
        if hook in DEFAULTS:
            code, does = DEFAULTS[hook]
        else:
            return None
        if hook == "configure_gradient_clipping":
            clip = self.t.gradient_clip_val
            does = ("clips the gradients: " + self._clip_text()) if clip else "calls `clip_gradients`, which clips nothing: gradient_clip_val is None"
        owner = f"`{type(obj).__name__}` does not define `{hook}`"
        return self.step(hook, code, f"Lightning's default `{qualname}` ({owner}): {does}.", cond, default=qualname)

    def _clip_text(self) -> str:
        alg = self.t.gradient_clip_algorithm
        return f"gradient_clip_val={self.t.gradient_clip_val}, gradient_clip_algorithm={getattr(alg, 'value', alg) or 'norm'}"

    # ------------------------------------------------------------------ data sources
    def source(self, given: Any) -> tuple[str, Any] | None:
        """Who receives a ``*_dataloader`` hook: ``None`` when loaders were passed, else the DataModule or the module."""
        if given is not None:
            return None
        return ("datamodule", self.dm) if self.dm is not None else ("module", self.model)

    def defined(self, hook: str, given: Any) -> bool:
        """Whether a data source exists for ``hook`` (``_DataConnector``: passed loaders, or an overridden hook)."""
        if given is not None:
            return True
        return self.lib.overridden(hook, self.dm if self.dm is not None else self.model)

    def loader_hook(self, hook: str, given: Any, cond: Cond = ALWAYS) -> list[Node] | None:
        src = self.source(given)
        if src is None:
            return None
        return self.hook(hook, (src[0],), cond=cond)

    def n_batches(self, loaders: Any, limit: Any, stage: str) -> int | float | None:
        """Batches per epoch when the loaders were passed and have a length (``_parse_num_batches``); ``None`` when unknown."""
        if loaders is None:
            return None
        try:
            length = len(loaders)
        except TypeError:
            return math.inf
        except Exception:
            return None
        try:
            return self.lib.data_connector._parse_num_batches(getattr(self.lib.states.RunningStage, stage), length, limit)
        except Exception:
            return None

    def validation_enabled(self) -> bool:
        """``Trainer.enable_validation`` as ``fit`` will compute it: a val source, an own ``validation_step``, ``limit_val_batches > 0``."""
        return (self.defined("val_dataloader", self.call.val) and self.lib.overridden("validation_step", self.model)
                and self.t.limit_val_batches > 0)

    # ------------------------------------------------------------------ common parts
    def transfer_hooks(self) -> list[Node]:
        """The three batch-transfer hooks (``LightningModule._apply_batch_transfer_handler``), each to the DataModule or the module."""
        return [
            *self.hook("on_before_batch_transfer", ("datahook",)),
            *self.hook("transfer_batch_to_device", ("datahook",)),
            *self.hook("on_after_batch_transfer", ("datahook",)),
        ]

    def setup_part(self, stage: str) -> list[Node]:
        lib = self.lib
        out: list[Node] = [*self.hook("configure_callbacks", ("module",))]
        prepare = [("datamodule",)] if self.dm is not None and lib.overridden("prepare_data", self.dm) else []
        if lib.overridden("prepare_data", self.model):
            prepare.append(("module",))
        if prepare:
            out += self.hook("prepare_data", tuple(r for rs in prepare for r in rs))
        out += self.hook("setup", SETUP, f"Here `stage={stage!r}`.")
        if lib.overridden("configure_sharded_model", self.model):
            out += self.hook("configure_sharded_model", ("module",))
        if lib.overridden("configure_model", self.model):
            out += self.hook("configure_model", ("module",))
        return out

    def teardown_part(self) -> list[Node]:
        return [self.step("teardown", "self._teardown()", "`Trainer._teardown`: Lightning's internal teardown (strategy, "
                          "active loop, logger connector); no hook.")]

    def teardown_hook(self, stage: str) -> list[Node]:
        return self.hook("teardown", SETUP, f"Here `stage={stage!r}`.")

    def mode_restore(self, prefix: str) -> list[Node]:
        hook = f"on_{prefix}_model_train"
        if prefix != "predict" and self.lib.overridden(hook, self.model):
            return self.hook(hook, ("module",))
        why = "`on_predict_model_train` does not exist" if prefix == "predict" else f"`{hook}` is called only when overridden"
        return [self.step("restore modes", "self._module_mode.restore(trainer.lightning_module)",
                          f"Each submodule goes back to the train/eval mode it had before the loop ({why}).")]

    # ------------------------------------------------------------------ evaluation loops
    def eval_loop(self, *, stage: str, sanity: bool, within_fit: bool, loader: list[Node] | None,
                  cond: Cond = ALWAYS) -> Phase:
        """``_EvaluationLoop.run`` for ``stage`` ``"validation"`` or ``"test"``."""
        t = self.t
        pre = "validation" if stage == "validation" else "test"
        limit_name = "limit_val_batches" if pre == "validation" else "limit_test_batches"
        limit = getattr(t, limit_name)
        given = self.call.evaluation_loaders
        n = self.n_batches(given, limit, "VALIDATING" if pre == "validation" else "TESTING")
        if sanity:
            loop = sanity_batches(t.num_sanity_val_steps, n, limit_name, limit)
        elif n is not None and n != math.inf:
            loop = f"for each of the {n} batches of each {'val' if pre == 'validation' else 'test'} dataloader ({limit_name}={limit})"
        else:
            loop = f"for each batch of each {'val' if pre == 'validation' else 'test'} dataloader{batch_cap(limit_name, limit)}"
        own_loop = t.validate_loop if pre == "validation" else t.test_loop
        grad = "torch.no_grad()" if within_fit else ("torch.inference_mode()" if own_loop.inference_mode else "torch.no_grad()")
        batch = self.phase("batch", f"One {pre} batch (`_EvaluationLoop._evaluation_step`).", [
            self.transfer_hooks(),
            self.hook(f"on_{pre}_batch_start", CB_MODULE),
            self.hook(f"{pre}_step", ("module",)),
            self.hook(f"on_{pre}_batch_end", CB_MODULE),
        ], loop=loop, stage="validate" if pre == "validation" else "test")
        children: list[Any] = [
            loader,
            self.hook(f"on_{pre}_model_eval", ("module",)),
            self.hook(f"on_{pre}_start", CB_MODULE),
            self.hook(f"on_{pre}_epoch_start", CB_MODULE),
            batch,
            self.hook(f"on_{pre}_epoch_end", CB_MODULE),
            self.hook(f"on_{pre}_end", CB_MODULE),
        ]
        if within_fit and not sanity:
            children += self.checkpoints("on_validation_end")
        children.append(self.mode_restore(pre))
        if sanity:
            desc = "The validation loop during the sanity check: ModelCheckpoint and EarlyStopping skip it; nothing is saved."
        elif within_fit:
            desc = "A validation run inside `fit` (`_EvaluationLoop.run`)."
        elif pre == "validation":
            desc = "The validation loop of `Trainer.validate` (`_EvaluationLoop.run`); ModelCheckpoint saves nothing outside fit."
        else:
            desc = "The test loop (`_EvaluationLoop.run`)."
        return self.phase("validation" if pre == "validation" else "testing", desc, children, cond=cond, context=grad,
                          stage="validate" if pre == "validation" else "test")

    # ------------------------------------------------------------------ checkpoints
    def _save_on_train_epoch_end(self, cb: Any, validation: bool) -> bool:
        """``ModelCheckpoint._should_save_on_train_epoch_end`` (``callbacks/model_checkpoint.py``, 2.6), from the settings."""
        if getattr(cb, "_save_on_train_epoch_end", None) is not None:
            return bool(cb._save_on_train_epoch_end)
        if getattr(self.t, "_val_check_time_interval", None) is not None:
            return False
        if self.t.check_val_every_n_epoch != 1:
            return False
        if not validation:
            return True
        return self.t.val_check_interval == 1.0

    def checkpoints(self, place: str) -> list[Node]:
        """The checkpoint phases that ModelCheckpoint callbacks run inside their hook ``place`` during ``fit``."""
        lib, t = self.lib, self.t
        out: list[Node] = []
        if self.call.method != "fit" or t.fast_dev_run:
            return out
        validation = self.validation_enabled()
        for cb in self.callbacks:
            if not isinstance(cb, lib.ModelCheckpoint):  # a custom Checkpoint: `common_notes` says it is not modelled
                continue
            n_steps = getattr(cb, "_every_n_train_steps", 0) or 0
            n_epochs = getattr(cb, "_every_n_epochs", 0) or 0
            timed = getattr(cb, "_train_time_interval", None) is not None
            if cb.save_top_k == 0:
                if cb.save_last and place == "on_train_end":
                    out.append(self.checkpoint_phase(cb, place, Cond("save_top_k=0 with save_last: only `last.ckpt`, at the end of training", None)))
                continue
            if place == "on_train_batch_end":
                if n_steps >= 1:
                    when = f"global_step % {n_steps} == 0" if cb.monitor is None else "?"
                    text = f"every {n_steps} optimizer steps (every_n_train_steps={n_steps})"
                    if cb.monitor is not None:
                        text += f", when monitor={cb.monitor!r} is logged and among the best save_top_k={cb.save_top_k}"
                    out.append(self.checkpoint_phase(cb, place, Cond(text, when)))
                elif timed:
                    out.append(self.checkpoint_phase(cb, place, Cond(f"every train_time_interval={cb._train_time_interval}", "?")))
                continue
            if n_epochs < 1 or place not in ("on_train_epoch_end", "on_validation_end"):
                continue
            if (place == "on_train_epoch_end") != self._save_on_train_epoch_end(cb, validation):
                continue
            when = None if n_epochs == 1 else f"(epoch + 1) % {n_epochs} == 0"
            if cb.monitor is not None and cb.save_top_k != -1:
                when = "?"
            text = "every epoch" if n_epochs == 1 else f"every {_ordinal(n_epochs)}epoch (every_n_epochs={n_epochs})"
            if cb.monitor is not None:
                best = "" if cb.save_top_k == -1 else f" only when it is among the best save_top_k={cb.save_top_k}"
                text += f"; with monitor={cb.monitor!r}{best}"
            if place == "on_validation_end":
                text += ", at the end of each validation run in fit (not the sanity check), unless this global step was saved already"
            if cb.save_last:
                text += "; then again as `last.ckpt` (save_last)"
            out.append(self.checkpoint_phase(cb, place, Cond(text, when)))
        return out

    def checkpoint_phase(self, cb: Any, place: str, cond: Cond) -> Phase:
        """``Trainer.save_checkpoint`` → ``_CheckpointConnector.dump_checkpoint`` (2.6): the hooks in its order."""
        name = self.ids[id(cb)]
        weights_only = bool(getattr(cb, "save_weights_only", False))
        children: list[Any] = [self.step("model state", "checkpoint = {'state_dict': ..., 'loops': ...}",
                                         "`dump_checkpoint` collects the model's and the loops' state.")]
        recipe = (() if weights_only else ("callbacks",)) + (("datamodule",) if self.dm is not None else ())
        if recipe:
            extra = []
            if not weights_only:
                extra.append("The optimizers', LR schedulers' and precision plugin's state are collected right after the callbacks'.")
            if self.dm is not None:
                extra.append("The DataModule's `state_dict()` comes after those and the hyper-parameters.")
            if weights_only:
                extra.append("save_weights_only: the callbacks' state is not saved.")
            children.append(self.hook("state_dict", recipe, " ".join(extra)))
        if weights_only:
            children.append(self.hook("on_save_checkpoint", ("module",), "save_weights_only: the callbacks' are not called."))
        else:
            children.append(self.hook("on_save_checkpoint", CB_MODULE))
        children.append(self.step("write", "self.strategy.save_checkpoint(checkpoint, filepath)",
                                  "Write the `.ckpt` file (under `dirpath`, else the logger's `version_N/checkpoints`, else "
                                  "`default_root_dir/checkpoints`)."))
        text = f"`{name}` saves a checkpoint inside its `{place}`"
        if place == "on_validation_end":
            text += ", so before the LightningModule's `on_validation_end`"
        return self.phase("checkpoint", text + " (`Trainer.save_checkpoint`).", children, cond=cond, context=f"{name}.{place}",
                          within=(place, name))

    # ------------------------------------------------------------------ fit: optimisation
    def stepping(self) -> Cond:
        """When a training batch steps the optimizer (``_TrainingEpochLoop._should_accumulate``)."""
        if self.N == 1:
            return ALWAYS
        return Cond(f"on every {_ordinal(self.N)}batch (accumulate_grad_batches={self.N}) and on the epoch's last batch",
                    f"(batch_idx + 1) % {self.N} == 0 or is_last")

    def closure(self, *, direct: bool) -> Phase:
        N = self.N
        zero = ALWAYS if N == 1 else Cond(f"on the first batch of each window of {N} (batch_idx % {N} == 0)", f"batch_idx % {N} == 0")
        zero_grad = self.phase("zero_grad", "`zero_grad_fn` of `_AutomaticOptimization._make_zero_grad_fn`: zero the "
                               "gradients before backward.", [
            self.hook("on_before_zero_grad", CB_MODULE),
            self.hook("optimizer_zero_grad", ("module",)),
        ], cond=zero)
        text = "The closure (`Closure.closure`, under torch.enable_grad()): training_step, zero_grad, backward."
        if direct:
            text += " Run directly: this batch accumulates gradients; the optimizer does not step."
            cond = Cond(f"when the batch only accumulates gradients (the optimizer steps {self.stepping().text})",
                        f"not ({self.stepping().when})")
        else:
            text += " Called by the optimizer inside `optimizer.step(closure)`, so inside `optimizer_step`."
            cond = ALWAYS
        loss_note = f"Lightning divides the loss by accumulate_grad_batches={N}." if N > 1 else None
        model = self.ids[id(self.model)]
        return self.phase("closure", text, [
            self.hook("training_step", ("module",), loss_note),
            zero_grad,
            self.hook("on_before_backward", CB_MODULE),
            self.hook("backward", ("module",)),
            self.hook("on_after_backward", CB_MODULE),
        ], cond=cond, context=None if direct else f"{model}.optimizer_step",
            **({} if direct else {"within": ("optimizer_step", model)}))

    def step_phase(self) -> Phase:
        clip = self.t.gradient_clip_val
        clip_text = "clips the gradients: " + self._clip_text() if clip else "nothing is clipped (gradient_clip_val is None)"
        return self.phase("step", "The optimizer step (`_AutomaticOptimization._optimizer_step`): `optimizer_step` "
                          "receives the closure; the closure, `on_before_optimizer_step` and `configure_gradient_clipping` "
                          "all run inside `optimizer.step`.", [
            self.hook("optimizer_step", ("module",)),
            self.closure(direct=False),
            self.hook("on_before_optimizer_step", CB_MODULE),
            self.hook("configure_gradient_clipping", ("module",), f"Here {clip_text}."),
            self.step("update", "torch.optim.Optimizer.step", "The optimizer updates the parameters (after the closure returned)."),
        ], cond=self.stepping())

    def manual_part(self) -> list[Node]:
        model = self.ids[id(self.model)]
        return [
            *self.hook("training_step", ("module",), "Manual optimisation: your `training_step` zeroes the gradients, calls "
                       "`self.manual_backward(loss)` and `opt.step()` itself; Lightning calls no optimizer_step, "
                       "optimizer_zero_grad, on_before_zero_grad or configure_gradient_clipping, and steps no LR scheduler."),
            self.phase("manual_backward", "`self.manual_backward(loss)` inside your `training_step` → `strategy.backward`.", [
                self.hook("on_before_backward", CB_MODULE),
                self.hook("backward", ("module",)),
                self.hook("on_after_backward", CB_MODULE),
            ], loop="each time training_step calls self.manual_backward(...)", cond=Cond(None, "?"),
                context=f"{model}.training_step", within=("training_step", model), user=True),
            self.phase("manual_step", "`opt.step()` on a LightningOptimizer inside your `training_step` → the precision plugin's "
                       "`optimizer_step`.", [
                self.hook("on_before_optimizer_step", CB_MODULE),
                self.step("update", "torch.optim.Optimizer.step", "The parameters are updated; there is no clipping hook."),
            ], loop="each time training_step calls opt.step()", cond=Cond(None, "?"),
                context=f"{model}.training_step", within=("training_step", model), user=True),
        ]

    def lr_configs(self) -> list[Any] | None:
        """The LR scheduler configs of ``configure_optimizers()`` as Lightning parses them; ``[]`` for none, ``None`` when unknown."""
        if not self.auto:
            return []
        if self.lib.own(self.model, "configure_optimizers") is None:
            return []
        optim = self.lib.optimizer
        try:
            with _quiet(), _restoring(self.model):
                conf = self.model.configure_optimizers()
                optimizers, schedulers, monitor = optim._configure_optimizers(conf)
                configs = optim._configure_schedulers_automatic_opt(schedulers, monitor)
        except Exception as e:  # e.g. it reads self.trainer, attached only at fit time
            self.notes.append(f"`configure_optimizers()` raised {type(e).__name__} when loopdoc called it to read the LR "
                              "schedulers (it runs again at fit time): where `lr_scheduler_step` runs is shown as possible only.")
            return None
        self.optimizer_name = ", ".join(type(o).__qualname__ for o in optimizers) or None
        self.notes.append("`configure_optimizers()` was called once to read the optimizer and LR schedulers; `fit` calls it again.")
        return configs

    def lr_phase(self, configs: list[Any] | None, where: str, extra: Cond = ALWAYS) -> Phase | None:
        """``lr_scheduler_step`` calls of ``_TrainingEpochLoop._update_learning_rates`` at one place.

        ``where``: ``"batch"`` (after the optimisation: non-plateau ``interval="step"`` schedulers on stepping batches,
        ``interval="epoch"`` ones on the epoch's last batch), ``"after-val"`` (plateau, ``interval="step"``) or
        ``"epoch"`` (plateau, ``interval="epoch"``, after ``on_train_epoch_end``).
        """
        if not self.auto:
            return None
        if configs is None:
            if where != "batch":
                return None
            conds = [Cond("if configure_optimizers returns LR schedulers (not known here)", "?")]
        else:
            conds = []
            step = self.stepping()
            for cfg in configs:
                plateau, interval, freq = bool(cfg.reduce_on_plateau), cfg.interval, int(cfg.frequency)
                every = f"(batch_idx + 1) % {freq} == 0" if freq != 1 else None
                sched = type(cfg.scheduler).__name__
                if where == "batch" and not plateau and interval == "step":
                    text = f"{sched} (interval='step', frequency={freq}): after each optimizer step"
                    text += f", every {freq} batches" if freq != 1 else ""
                    conds.append(both(Cond(text, None), Cond(None, step.when), Cond(None, every)))
                elif where == "batch" and not plateau and interval == "epoch":
                    e_every = f"(epoch + 1) % {freq} == 0" if freq != 1 else None
                    text = f"{sched} (interval='epoch', frequency={freq}): on the epoch's last batch, before on_train_batch_end"
                    conds.append(both(Cond(text, "is_last"), Cond(None, e_every)))
                elif where == "after-val" and plateau and interval == "step":
                    conds.append(Cond(f"{sched} (ReduceLROnPlateau, interval='step'): after the validation check, with "
                                      f"the monitored metric {cfg.monitor!r} when it is logged", "?"))
                elif where == "epoch" and plateau and interval == "epoch":
                    e_every = f"(epoch + 1) % {freq} == 0" if freq != 1 else None
                    conds.append(Cond(f"{sched} (ReduceLROnPlateau, monitor={cfg.monitor!r}, frequency={freq}): after "
                                      "on_train_epoch_end", e_every or ("?" if cfg.strict is False else None)))
        if not conds:
            return None
        whens = [c.when for c in conds]
        if "?" in whens:
            when = "?"
        elif any(w is None for w in whens):
            when = None
        else:
            when = " or ".join(f"({w})" for w in whens)
        cond = both(extra, Cond("; ".join(c.text for c in conds if c.text), when))
        return self.phase("lr_schedulers", "`_TrainingEpochLoop._update_learning_rates`: step the LR schedulers that are due.",
                          [self.hook("lr_scheduler_step", ("module",))], loop="for each LR scheduler due here", cond=cond)

    # ------------------------------------------------------------------ fit: validation inside the epoch
    def val_when(self, n_batches: Any) -> Cond:
        """When validation runs after a training batch (``_TrainingEpochLoop._should_check_val_fx``, 2.6)."""
        t = self.t
        cve, vci = t.check_val_every_n_epoch, t.val_check_interval
        epoch_ok = None if cve in (None, 1) else f"(epoch + 1) % {cve} == 0"
        epoch_txt = "every epoch" if cve in (None, 1) else f"every {_ordinal(cve)}epoch (check_val_every_n_epoch={cve})"
        if getattr(t, "_val_check_time_interval", None) is not None:
            return Cond(f"every {t._val_check_time_interval} s of training (val_check_interval)", "?")
        if isinstance(vci, int):
            var = "total_batch_idx" if cve is None else "batch_idx"
            batch_ok = f"({var} + 1) % {vci} == 0"
            txt = f"after every {vci} training batches (val_check_interval={vci}" + (", counted across epochs)" if cve is None else ")")
        elif n_batches == math.inf:
            batch_ok, txt = "is_last", "after the last batch (a loader without length, val_check_interval=1.0)"
        elif n_batches is not None:
            k = max(1, int(n_batches * vci))
            batch_ok = f"(batch_idx + 1) % {k} == 0"
            txt = ("after the epoch's last batch" if k == n_batches else f"after every {k} training batches") + \
                  f" (val_check_interval={vci} of {n_batches} batches)"
        else:
            batch_ok = f"(batch_idx + 1) % max(1, int(n_batches * {vci})) == 0"
            txt = (f"after every max(1, int(n * {vci})) training batches, n being the batches per epoch (val_check_interval={vci})"
                   if vci != 1.0 else "after the epoch's last batch (val_check_interval=1.0)")
        return Cond(f"{epoch_txt}, {txt}, and as soon as trainer.should_stop is set (once min_epochs/min_steps are met)",
                    both(Cond(None, epoch_ok), Cond(None, f"should_stop or {batch_ok}")).when)

    # ------------------------------------------------------------------ the calls
    def top(self) -> Phase:
        if self.call.method == "fit":
            return self.fit()
        if self.call.method == "predict":
            return self.predict()
        return self.evaluate()

    def fit(self) -> Phase:
        lib, t, call = self.lib, self.t, self.call
        validation = self.validation_enabled()
        if not self.defined("train_dataloader", call.train):
            from ...errors import CallError

            raise CallError(f"{call.label}: no training data: pass train_dataloaders or a datamodule, or define "
                             "train_dataloader() (Trainer.fit would raise)")
        for required in ("training_step", "configure_optimizers"):  # `__verify_train_val_loop_configuration` (2.6)
            if not lib.overridden(required, self.model):
                from ...errors import CallError

                raise CallError(f"{call.label}: {type(self.model).__name__} defines no {required} (Trainer.fit raises "
                                "MisconfigurationException before any setup hook)")
        trains = t.limit_train_batches != 0
        n_train = self.n_batches(call.train, t.limit_train_batches, "TRAINING") if trains else 0
        nsvs = t.num_sanity_val_steps
        sanity = validation and nsvs > 0
        configs = self.lr_configs()
        max_e = t.fit_loop.max_epochs
        if max_e is None:  # `_parse_loop_limits` (loops/utilities.py, 2.6), at the start of fit
            max_e = 1000 if t.max_steps == -1 and not any(isinstance(cb, lib.Timer) for cb in self.callbacks) else -1
        cve = t.check_val_every_n_epoch
        children: list[Any] = [self.setup_part("fit")]
        children.append(self.hook("configure_optimizers", ("module",)))
        children.append(self.hook("on_fit_start", CB_MODULE))
        children.append(self.step("zero_grad", "self.lightning_module.zero_grad()", "`Trainer._run_stage`, before any loop."))
        val_first = self.loader_hook("val_dataloader", call.val) if validation else None
        if sanity:
            children.append(self.phase("sanity_check", "`Trainer._run_sanity_check`: a few validation batches before training, "
                                       "to fail early (under `isolate_rng`).", [
                self.hook("on_sanity_check_start", ("callbacks",)),
                self.eval_loop(stage="validation", sanity=True, within_fit=True, loader=val_first),
                self.hook("on_sanity_check_end", ("callbacks",)),
            ], cond=Cond(f"num_sanity_val_steps={nsvs} > 0 and validation is enabled", None), stage="validate"))
        else:
            why = "num_sanity_val_steps=0" if validation else "validation is not enabled (no val loader, no validation_step, or limit_val_batches=0)"
            self.notes.append(f"No sanity check: {why}.")
        val_in_train = val_in_first_run = None
        if validation and not sanity:
            if cve in (None, 1):
                val_in_train = val_first
            else:
                val_in_first_run = self.loader_hook("val_dataloader", call.val, Cond("in the first validation run of the fit "
                                                                                     "(the loaders are kept)", "val_run_index == 0"))
        if trains:
            if self.auto:
                opt = [self.closure(direct=True)] if self.N > 1 else []
                opt += [self.step_phase(), self.lr_phase(configs, "batch")]
            else:
                opt = self.manual_part()
            vcond = self.val_when(n_train)
            batch_children: list[Any] = [
                self.transfer_hooks(),
                self.hook("on_train_batch_start", CB_MODULE),
                opt,
                self.hook("on_train_batch_end", CB_MODULE),
                self.checkpoints("on_train_batch_end"),
            ]
            if validation:
                zero = both(Cond("before the validation run", vcond.when), Cond(None, self.stepping().when))
                if self.auto and self.N > 1:
                    zero = Cond("before a validation run, when the batch stepped", zero.when)
                else:
                    zero = Cond(None, zero.when)
                batch_children.append(self.hook("on_validation_model_zero_grad", ("module",), cond=zero))
                batch_children.append(self.eval_loop(stage="validation", sanity=False, within_fit=True, loader=val_in_first_run,
                                                     cond=vcond))
                batch_children.append(self.lr_phase(configs, "after-val", Cond(None, "?")))
            if n_train is None:
                bloop = f"for each batch of the train dataloader{batch_cap('limit_train_batches', t.limit_train_batches)}"
            elif n_train == math.inf:
                bloop = "for each batch of the train dataloader (it has no length)"
            else:
                bloop = f"for each of the {n_train} training batches (limit_train_batches={t.limit_train_batches})"
            batch = self.phase("batch", "One iteration of `_TrainingEpochLoop`: one training batch (`advance`), then the "
                               "validation run if one is due (`on_advance_end`).", batch_children, loop=bloop, stage="train")
            stops = ([f"max_steps={t.max_steps} optimizer steps"] if t.max_steps != -1 else []) + \
                ["trainer.should_stop (EarlyStopping, Timer, your code), once min_epochs/min_steps are met"]
            epoch = self.phase("epoch", "One training epoch (`_FitLoop.on_advance_start` … `on_advance_end`).", [
                self.hook("on_train_epoch_start", CB_MODULE),
                batch,
                self.hook("on_train_epoch_end", ("callbacks-other", "module", "callbacks-monitoring")),
                self.checkpoints("on_train_epoch_end"),
                self.lr_phase(configs, "epoch"),
            ], loop=(f"for each epoch up to max_epochs={max_e}" if max_e != -1 else "for each epoch, without an epoch limit (max_epochs=-1)")
                + "; stops earlier at " + " or ".join(stops), stage="train")
            children.append(self.phase("train", "`_FitLoop.run`: the training epochs.", [
                self.loader_hook("train_dataloader", call.train),
                val_in_train,
                self.hook("on_train_start", CB_MODULE),
                epoch,
                self.hook("on_train_end", CB_MODULE),
                self.checkpoints("on_train_end"),
            ], cond=Cond("limit_train_batches != 0 and training_step is defined", None), stage="train"))
            if t.max_steps != -1:
                self.notes.append(f"max_steps={t.max_steps}: training may stop inside an epoch; the loops show what runs until then.")
        else:
            self.notes.append("No training: limit_train_batches=0.")
        children.append(self.teardown_part())
        children.append(self.hook("on_fit_end", CB_MODULE))
        children.append(self.teardown_hook("fit"))
        self.common_notes()
        return self.phase("fit", f"`Trainer.fit`: {call.text} ({lib.pkg} {lib.version}).", children)

    def evaluate(self) -> Phase:
        t, call = self.t, self.call
        stage = "validation" if call.method == "validate" else "test"
        loader = "val_dataloader" if stage == "validation" else "test_dataloader"
        limit = t.limit_val_batches if stage == "validation" else t.limit_test_batches
        step = "validation_step" if stage == "validation" else "test_step"
        if not self.defined(loader, call.loaders):
            from ...errors import CallError

            raise CallError(f"{call.label}: no {stage} data: pass dataloaders or a datamodule, or define {loader}() "
                             f"(Trainer.{call.method} would raise)")
        if not self.lib.overridden(step, self.model):
            from ...errors import CallError

            raise CallError(f"{call.label}: {type(self.model).__name__} defines no {step} (Trainer.{call.method} would raise)")
        children: list[Any] = [self.setup_part(call.method)]
        children.append(self.step("zero_grad", "self.lightning_module.zero_grad()", "`Trainer._run_stage`, before the loop."))
        if limit != 0:
            children.append(self.eval_loop(stage=stage, sanity=False, within_fit=False, loader=self.loader_hook(loader, call.loaders)))
        else:
            self.notes.append(f"No {stage} loop: limit={limit}.")
        children.append(self.teardown_part())
        children.append(self.teardown_hook(call.method))
        self.common_notes()
        return self.phase(call.method, f"`Trainer.{call.method}`: {call.text} ({self.lib.pkg} {self.lib.version}).", children)

    def predict(self) -> Phase:
        t, call = self.t, self.call
        if not self.defined("predict_dataloader", call.loaders):
            from ...errors import CallError

            raise CallError(f"{call.label}: no predict data: pass dataloaders or a datamodule, or define predict_dataloader() "
                             "(Trainer.predict would raise)")
        children: list[Any] = [self.setup_part("predict")]
        children.append(self.step("zero_grad", "self.lightning_module.zero_grad()", "`Trainer._run_stage`, before the loop."))
        if t.limit_predict_batches != 0:
            n = self.n_batches(call.loaders, t.limit_predict_batches, "PREDICTING")
            loop = (f"for each of the {n} batches of each predict dataloader (limit_predict_batches={t.limit_predict_batches})"
                    if n is not None and n != math.inf else
                    f"for each batch of each predict dataloader{batch_cap('limit_predict_batches', t.limit_predict_batches)}")
            batch = self.phase("batch", "One predict batch (`_PredictionLoop._predict_step`).", [
                self.transfer_hooks(),
                self.hook("on_predict_batch_start", CB_MODULE),
                self.hook("predict_step", ("module",)),
                self.hook("on_predict_batch_end", CB_MODULE),
            ], loop=loop, stage="predict")
            children.append(self.phase("prediction", "The predict loop (`_PredictionLoop.run`).", [
                self.loader_hook("predict_dataloader", call.loaders),
                self.hook("on_predict_model_eval", ("module",)),
                self.hook("on_predict_start", CB_MODULE),
                self.hook("on_predict_epoch_start", CB_MODULE),
                batch,
                self.hook("on_predict_epoch_end", CB_MODULE),
                self.hook("on_predict_end", CB_MODULE),
                self.mode_restore("predict"),
            ], context="torch.inference_mode()" if t.predict_loop.inference_mode else "torch.no_grad()", stage="predict"))
        else:
            self.notes.append(f"No predict loop: limit={t.limit_predict_batches}.")
        children.append(self.teardown_part())
        children.append(self.teardown_hook("predict"))
        self.common_notes()
        return self.phase("predict", f"`Trainer.predict`: {call.text} ({self.lib.pkg} {self.lib.version}).", children)

    def common_notes(self) -> None:
        """Notes true of every call: what is not modelled, custom Checkpoints, a custom strategy or precision plugin."""
        t, lib = self.t, self.lib
        for cb in self.callbacks:
            if isinstance(cb, lib.Checkpoint) and not isinstance(cb, lib.ModelCheckpoint):
                self.notes.append(f"`{self.ids[id(cb)]}` is a custom Checkpoint: when it saves is not modelled.")
        for what, obj in (("strategy", t.strategy), ("precision plugin", t.precision_plugin)):
            module = type(obj).__module__ or ""  # the class itself: a user's subclass of Lightning's runs its own code
            if not any(module == pkg or module.startswith(pkg + ".") for pkg in LIGHTNING_CODE):
                self.notes.append(f"The {what} is `{type(obj).__qualname__}`, not Lightning's: its own hooks are not listed.")
        self.notes.append("Not shown: `on_exception` (callbacks, then the DataModule, when the call raises); the hooks that "
                          "load a checkpoint (`ckpt_path`); reloading dataloaders (`reload_dataloaders_every_n_epochs`).")

    # ------------------------------------------------------------------ summary and flows
    def summary(self, loaded_from: str) -> LearnerSummary:
        return LearnerSummary(loaded_from=loaded_from, model=qualified(type(self.model)), loss_func=None,
                              opt_func=self.optimizer_name, metrics=())

    def flows(self) -> list[Flow]:
        """``trainer.should_stop``: set by EarlyStopping (and Timer) at their hook, read by the epoch and fit loops."""
        if self.call.method != "fit":
            return []
        lib = self.lib
        setters = []
        for cb in self.callbacks:
            name = self.ids[id(cb)]
            if isinstance(cb, lib.EarlyStopping):
                on_epoch_end = cb._check_on_train_epoch_end
                if on_epoch_end is None:
                    on_epoch_end = self.t.val_check_interval == 1.0 and self.t.check_val_every_n_epoch == 1
                delta = abs(float(cb.min_delta))  # EarlyStopping stores it negated for mode="min"
                rule = [f"monitor={cb.monitor!r} did not improve by more than min_delta={delta:g} for patience={cb.patience} checks"]
                if cb.stopping_threshold is not None:
                    rule.append(f"reached stopping_threshold={cb.stopping_threshold}")
                if cb.divergence_threshold is not None:
                    rule.append(f"passed divergence_threshold={cb.divergence_threshold}")
                if cb.check_finite:
                    rule.append("is not finite")
                setters.append(FlowSetter(name, "on_train_epoch_end" if on_epoch_end else "on_validation_end", "True",
                                          "when " + " or ".join(rule) + " (not during the sanity check)"))
            elif isinstance(cb, lib.Timer):
                setters.append(FlowSetter(name, "on_train_batch_end", "True", f"when the time limit is reached ({safe_repr(cb._duration)} s)"))
        if not setters:
            return []
        return [Flow("trainer.should_stop", "Stop training: the epoch ends after the current batch, then fit ends "
                     "(once min_epochs/min_steps are met).", tuple(setters), (
                         "after each training batch: a validation run is due when should_stop is set "
                         "(`_TrainingEpochLoop._should_check_val_fx`)",
                         "after each training batch: the epoch's batch loop ends (`_TrainingEpochLoop.done`)",
                         "before each epoch: fit ends (`_FitLoop.done`)"))]


def batch_cap(name: str, limit: int | float) -> str:
    """What a ``limit_*_batches`` does to a loader whose length is not known before the run, as words to append.

    Lightning's ``_parse_num_batches`` (``trainer/connectors/data_connector.py``, 2.6): an int is a number of
    batches (``min(length, limit)``), a float a fraction of the loader (``int(length * limit)``; ``1.0``: all of it).

    Args:
        name: the setting, e.g. ``"limit_val_batches"``.
        limit: its value on the Trainer.

    Returns:
        E.g. ``", up to limit_val_batches=5"``, ``" (limit_val_batches=1.0: all of them)"``, or
        ``", the first int(its length × 0.25) of them (limit_val_batches=0.25)"``.
    """
    if isinstance(limit, int):
        return f", up to {name}={limit}"
    if limit == 1.0:
        return f" ({name}={limit}: all of them)"
    return f", the first int(its length × {limit}) of them ({name}={limit})"


def sanity_batches(steps: int | float, n: int | float | None, name: str, limit: int | float) -> str:
    """The batch loop of the sanity check, in words: ``min(num_sanity_val_steps, the loader's batches after the limit)``.

    ``_EvaluationLoop.max_batches`` (``loops/evaluation_loop.py``, 2.6) takes, while sanity checking,
    ``min(trainer.num_sanity_val_steps, batches)`` per loader, ``batches`` being ``_parse_num_batches`` of its
    length and ``limit_val_batches`` (``batch_cap``); ``num_sanity_val_steps=-1`` is ``inf``.

    Args:
        steps: ``trainer.num_sanity_val_steps`` (``inf`` for -1).
        n: the val loader's batches after the limit (``_Builder.n_batches``): ``None`` when the loader is not
            known before the run, ``inf`` when it has no length.
        name: ``"limit_val_batches"``.
        limit: its value.

    Returns:
        E.g. ``"the first 2 batches of each val dataloader (min(num_sanity_val_steps=2, its 4 batches))"``.
    """
    shown = f"num_sanity_val_steps={-1 if steps == math.inf else steps}"
    if n == math.inf and isinstance(limit, int):
        n = limit  # an iterable without a length: _parse_num_batches keeps the int
    if n == math.inf:
        if steps == math.inf:
            return f"every batch of each val dataloader ({shown}; it has no length)"
        return f"the first {_batches(steps)} of each val dataloader ({shown}; it has no length)"
    if n is not None:
        after = "" if isinstance(limit, float) and limit == 1.0 else f" after {name}={limit}"
        k = min(steps, n)
        return f"the first {_batches(k)} of each val dataloader (min({shown}, its {n} batch{'' if n == 1 else 'es'}{after}))"
    if isinstance(limit, int):
        if steps == math.inf:
            return f"the first {_batches(limit)} of each val dataloader ({shown}, {name}={limit}), fewer if it is shorter"
        return (f"the first {_batches(min(steps, limit))} of each val dataloader (min({shown}, {name}={limit})), "
                "fewer if it is shorter")
    fewer = "it is shorter" if limit == 1.0 else f"int(its length × {limit}) is fewer ({name}={limit})"
    if steps == math.inf:
        return f"every batch of each val dataloader{batch_cap(name, limit)} ({shown})"
    return f"the first {_batches(steps)} of each val dataloader ({shown}), fewer if {fewer}"


def _batches(k: int | float) -> str:
    """``"batch"`` for 1, else ``"K batches"``."""
    return "batch" if k == 1 else f"{int(k)} batches"


def _ordinal(n: int) -> str:
    """``"2nd "``, ``"3rd "``, ``"4th "`` …, ``""`` for 1 (``"every 2nd batch"``, ``"every batch"``)."""
    if n == 1:
        return ""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix} "


@contextlib.contextmanager
def _quiet() -> Any:
    """Silence what the user's ``configure_*`` prints while loopdoc reads it."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        yield


@contextlib.contextmanager
def _restoring(model: Any) -> Any:
    """Put back the module's ``requires_grad`` and train/eval flags after ``configure_optimizers`` (which may freeze layers)."""
    params = [(p, p.requires_grad) for p in model.parameters()]
    modes = [(m, m.training) for m in model.modules()]
    try:
        yield
    finally:
        for p, flag in params:
            p.requires_grad_(flag)
        for m, flag in modes:
            m.training = flag
