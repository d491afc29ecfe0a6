"""Lightning's loop in words: when each hook fires, who receives it, what Lightning's defaults do, removed hooks.

Facts from PyTorch Lightning 2.6.6 (``pytorch_lightning`` and ``lightning.pytorch`` are the
same code): the dispatch helpers of ``trainer/call.py``, the loops of ``loops/fit_loop.py``,
``loops/training_epoch_loop.py``, ``loops/evaluation_loop.py``, ``loops/prediction_loop.py``,
``loops/optimization/automatic.py`` and ``manual.py``, ``trainer/trainer.py`` (``_run``,
``_run_stage``, ``_run_sanity_check``), ``trainer/connectors/checkpoint_connector.py``
(``dump_checkpoint``), ``core/hooks.py`` and ``core/module.py`` (the base hooks); each was
checked against real runs (``tests/lightning/test_lightning_truth.py``). Imports nothing of Lightning:
rendering a saved model reads ``WORDING`` without it.
"""

from __future__ import annotations

from ..words import Wording

WORDING = Wording(
    framework="lightning",
    trainer="Trainer",
    callback="callback",
    event="hook",
    run_order="callbacks in `trainer.callbacks` order, then the LightningModule (the order of each hook is Lightning's, per call site)",
    own_code="Lightning's own code",
    never_ran="not reached in this run: training stopped early (`trainer.should_stop`, `max_steps`, `on_train_batch_start` "
              "returned -1), a checkpoint was not saved, or the hook's own condition did not hold",
    file_kind="saved trainer",
)
"""The words templates and the neutral analysis use for Lightning (``loopdoc.adapters.words.Wording``)."""

_ARGS_CB = "Callbacks are called as `hook(trainer, pl_module, ...)`, the LightningModule as `hook(...)`."

# When each hook fires and what holds then; the receivers, in call order (trainer/call.py and the call sites in loops/).
HOOKS: dict[str, str] = {
    "configure_callbacks": "First hook of every entry point (`Trainer._run` → `_CallbackConnector._attach_model_callbacks`). "
    "The callbacks it returns replace `trainer.callbacks` of the same type (or a parent type), are appended, and checkpoint "
    "callbacks move to the end. It is called again at every `fit`/`validate`/`test`/`predict`, so its callbacks are new objects each time.",
    "prepare_data": "Download or write data, once per node (local rank 0; once in total with `prepare_data_per_node=False`); "
    "called only on the objects that override it, the DataModule first (`_DataConnector.prepare_data`). Do not set state here.",
    "setup": "`setup(stage)` with stage `fit`, `validate`, `test` or `predict`, on every process: the DataModule, then each "
    "callback, then the LightningModule (`call._call_setup_hook`). Build datasets and layers here.",
    "configure_sharded_model": "Deprecated name of `configure_model`; called only when overridden.",
    "configure_model": "Create layers under the strategy's init context; called only when the LightningModule overrides it "
    "(`call._call_configure_model`).",
    "configure_optimizers": "Return the optimizer(s) and LR scheduler(s). Called once per `fit`, in `strategy.setup` after "
    "`setup` and the move to the device; not by validate/test/predict.",
    "on_fit_start": "Start of `fit`, after the strategy setup: optimizers exist, the sanity check has not run. Callbacks, then the LightningModule.",
    "on_fit_end": "End of `fit`, after Lightning's internal teardown (`Trainer._teardown`). Callbacks, then the LightningModule.",
    "teardown": "`teardown(stage)` at the very end of the call: the DataModule, then each callback, then the LightningModule "
    "(`call._call_teardown_hook`); then the loggers are finalized and the profiler writes its report.",
    "on_sanity_check_start": "Before the sanity validation run. Callbacks only: the LightningModule has no such hook.",
    "on_sanity_check_end": "After the sanity validation run. Callbacks only; the progress counters are then reset.",
    "train_dataloader": "Asked for the training loaders once, at the start of training (`_FitLoop.setup_data`), because no "
    "loaders were passed to the call: the DataModule's if one was given, else the LightningModule's.",
    "val_dataloader": "Asked for the validation loaders once per `fit` (then kept), because none were passed to the call: "
    "the DataModule's if one was given, else the LightningModule's.",
    "test_dataloader": "Asked for the test loaders at the start of the test loop, because none were passed to the call.",
    "predict_dataloader": "Asked for the predict loaders at the start of the predict loop, because none were passed to the call.",
    "on_train_start": "Start of training, before the first epoch. Callbacks, then the LightningModule (then the strategy).",
    "on_train_end": "End of training, after the last epoch. Callbacks, then the LightningModule (then the strategy).",
    "on_train_epoch_start": "Start of each training epoch; `trainer.current_epoch` is its index (from 0). Callbacks, then the LightningModule.",
    "on_train_epoch_end": "End of each training epoch (`_FitLoop.on_advance_end`): callbacks that are not EarlyStopping or "
    "Checkpoint, then the LightningModule, then the EarlyStopping and Checkpoint callbacks, so that they see what the "
    "module logged here.",
    "on_before_batch_transfer": "`on_before_batch_transfer(batch, dataloader_idx)`: may change the batch before it moves to the device. "
    "Called on the DataModule if it overrides this hook, else on the LightningModule (`_DataHookSelector`).",
    "transfer_batch_to_device": "`transfer_batch_to_device(batch, device, dataloader_idx)`: moves the batch to the device "
    "(through `strategy.batch_to_device`). Called on the DataModule if it overrides this hook, else on the LightningModule.",
    "on_after_batch_transfer": "`on_after_batch_transfer(batch, dataloader_idx)`: may change the batch once it is on the device. "
    "Called on the DataModule if it overrides this hook, else on the LightningModule.",
    "on_train_batch_start": "`on_train_batch_start(batch, batch_idx)`, before the optimisation of the batch. Callbacks, then the "
    "LightningModule (then the strategy); if the LightningModule's returns -1, the rest of the epoch is skipped.",
    "on_train_batch_end": "`on_train_batch_end(outputs, batch, batch_idx)` after the optimisation of the batch; `outputs` holds "
    "the detached loss (`{'loss': ...}`). Callbacks, then the LightningModule.",
    "training_step": "Your `training_step(batch, batch_idx)`, called through `strategy.training_step`: return the loss "
    "(a tensor or a dict with `'loss'`); with accumulation Lightning divides it by `accumulate_grad_batches`. "
    "Returning None skips backward for this batch.",
    "optimizer_step": "`optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)`: must call "
    "`optimizer.step(closure=optimizer_closure)`; the optimizer runs the closure (training_step, zero_grad, backward) inside it.",
    "on_before_zero_grad": "`on_before_zero_grad(optimizer)`, before the gradients are zeroed. Callbacks, then the LightningModule.",
    "optimizer_zero_grad": "`optimizer_zero_grad(epoch, batch_idx, optimizer)`: zeroes the gradients, before backward.",
    "on_before_backward": "`on_before_backward(loss)`, before the backward pass (the precision plugin's `pre_backward`). "
    "Callbacks, then the LightningModule.",
    "backward": "`backward(loss)`: the backward pass (called by the precision plugin, not through the hook helpers).",
    "on_after_backward": "`on_after_backward()`: the gradients are in `.grad` (the precision plugin's `post_backward`). "
    "Callbacks, then the LightningModule.",
    "on_before_optimizer_step": "`on_before_optimizer_step(optimizer)`, inside `optimizer.step` after the closure: the gradients "
    "are final (unscaled with AMP), before clipping and the update. Callbacks, then the LightningModule.",
    "configure_gradient_clipping": "`configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)`, "
    "called at every optimizer step in automatic optimisation, after `on_before_optimizer_step`.",
    "lr_scheduler_step": "`lr_scheduler_step(scheduler, metric)`: steps one LR scheduler (automatic optimisation only).",
    "on_validation_model_zero_grad": "Before a validation run inside `fit`, only when the batch that triggers it stepped "
    "the optimizer (not while accumulating gradients): releases the gradients.",
    "on_validation_model_eval": "Start of the validation loop: puts the model in eval mode (after noting each submodule's mode).",
    "on_validation_model_train": "End of the validation loop; called only because the LightningModule overrides it "
    "(otherwise Lightning restores each submodule's mode itself).",
    "on_test_model_eval": "Start of the test loop: puts the model in eval mode.",
    "on_test_model_train": "End of the test loop; called only because the LightningModule overrides it.",
    "on_predict_model_eval": "Start of the predict loop: puts the model in eval mode.",
    "on_validation_start": "Start of a validation run. Callbacks, then the LightningModule (then the strategy).",
    "on_validation_end": "End of a validation run, after the epoch-end hooks. Callbacks, then the LightningModule (then the strategy).",
    "on_validation_epoch_start": "Start of the validation run's single epoch. Callbacks, then the LightningModule.",
    "on_validation_epoch_end": "After every validation batch: log epoch-level metrics here. Callbacks, then the LightningModule.",
    "on_validation_batch_start": "`on_validation_batch_start(batch, batch_idx, dataloader_idx=0)`. Callbacks, then the LightningModule.",
    "validation_step": "Your `validation_step(batch, batch_idx)`, through `strategy.validation_step`.",
    "on_validation_batch_end": "`on_validation_batch_end(outputs, batch, batch_idx, dataloader_idx=0)`. Callbacks, then the LightningModule.",
    "on_test_start": "Start of the test run. Callbacks, then the LightningModule (then the strategy).",
    "on_test_end": "End of the test run. Callbacks, then the LightningModule (then the strategy).",
    "on_test_epoch_start": "Start of the test run's single epoch. Callbacks, then the LightningModule.",
    "on_test_epoch_end": "After every test batch. Callbacks, then the LightningModule.",
    "on_test_batch_start": "`on_test_batch_start(batch, batch_idx, dataloader_idx=0)`. Callbacks, then the LightningModule.",
    "test_step": "Your `test_step(batch, batch_idx)`, through `strategy.test_step`.",
    "on_test_batch_end": "`on_test_batch_end(outputs, batch, batch_idx, dataloader_idx=0)`. Callbacks, then the LightningModule.",
    "on_predict_start": "Start of the predict run. Callbacks, then the LightningModule (then the strategy).",
    "on_predict_end": "End of the predict run. Callbacks, then the LightningModule (then the strategy).",
    "on_predict_epoch_start": "Start of the predict run's single epoch. Callbacks, then the LightningModule.",
    "on_predict_epoch_end": "After every predict batch; the predictions are collected (`return_predictions`). Callbacks, then the LightningModule.",
    "on_predict_batch_start": "`on_predict_batch_start(batch, batch_idx, dataloader_idx=0)`. Callbacks, then the LightningModule.",
    "predict_step": "`predict_step(batch, batch_idx)`, through `strategy.predict_step`; Lightning's default calls the module's forward.",
    "on_predict_batch_end": "`on_predict_batch_end(outputs, batch, batch_idx, dataloader_idx=0)`. Callbacks, then the LightningModule.",
    "state_dict": "While a checkpoint is written (`_CheckpointConnector.dump_checkpoint`): each callback's `state_dict()`, "
    "stored under its `state_key` when not empty (called directly, not through `_call_callback_hooks`), then the DataModule's.",
    "on_save_checkpoint": "`on_save_checkpoint(checkpoint)` while a checkpoint is written: every callback (called directly, "
    "not through `_call_callback_hooks`), then the LightningModule, may add to the checkpoint dict; then the file is written.",
}
"""One description per hook name: when it fires and who receives it, in call order."""

DEFAULTS: dict[str, tuple[str, str]] = {
    "backward": ("loss.backward()", "the backward pass"),
    "optimizer_step": ("optimizer.step(closure=optimizer_closure)", "the optimizer runs the closure, then updates the parameters"),
    "optimizer_zero_grad": ("optimizer.zero_grad()", "zero the gradients"),
    "transfer_batch_to_device": ("move_data_to_device(batch, device)", "move every tensor of the batch to the device"),
    "lr_scheduler_step": ("scheduler.step()", "step the scheduler (`scheduler.step(metric)` for ReduceLROnPlateau)"),
    "configure_gradient_clipping": ("self.clip_gradients(optimizer, gradient_clip_val, gradient_clip_algorithm)",
                                    "clip the gradients as the Trainer says (nothing when `gradient_clip_val` is None)"),
    "on_validation_model_eval": ("self.trainer.model.eval()", "put the model in eval mode"),
    "on_test_model_eval": ("self.trainer.model.eval()", "put the model in eval mode"),
    "on_predict_model_eval": ("self.trainer.model.eval()", "put the model in eval mode"),
    "on_validation_model_train": ("self.trainer.model.train()", "put the model back in train mode"),
    "on_test_model_train": ("self.trainer.model.train()", "put the model back in train mode"),
    "on_validation_model_zero_grad": ("self.zero_grad()", "release the gradients before validation"),
    "predict_step": ("self(batch)", "the module's forward on the whole batch"),
}
"""What Lightning's base implementation of a LightningModule/DataModule hook does when the user's class does not define it:
``(code as Lightning writes it, what it does)`` (``core/module.py``, ``core/hooks.py``, 2.6). The base hooks not listed
are no-ops (``pass`` or ``return batch``)."""

REMOVED_HOOKS: dict[str, tuple[str, str, str]] = {
    # name: (object it was a hook of, version that removed it, what to use instead)
    "on_init_start": ("Callback", "1.8.0", "nothing: there is no hook during Trainer.__init__ (#14867)"),
    "on_init_end": ("Callback", "1.8.0", "nothing: there is no hook during Trainer.__init__ (#14867)"),
    "on_configure_sharded_model": ("Callback", "1.8.0", "setup (#14834)"),
    "on_before_accelerator_backend_setup": ("Callback", "1.8.0", "setup (#14834)"),
    "on_batch_start": ("Callback", "1.8.0", "on_train_batch_start (#14834)"),
    "on_batch_end": ("Callback", "1.8.0", "on_train_batch_end (#14834)"),
    "on_epoch_start": ("Callback and LightningModule", "1.8.0",
                       "on_train_epoch_start / on_validation_epoch_start / on_test_epoch_start (#14834)"),
    "on_epoch_end": ("Callback and LightningModule", "1.8.0",
                     "on_train_epoch_end / on_validation_epoch_end / on_test_epoch_end (#14834)"),
    "on_pretrain_routine_start": ("Callback and LightningModule", "1.8.0", "on_fit_start (#14834)"),
    "on_pretrain_routine_end": ("Callback and LightningModule", "1.8.0", "on_fit_start (#14834)"),
    "on_keyboard_interrupt": ("Callback", "1.7.0", "on_exception (#13438)"),
    "on_hpc_save": ("LightningModule", "1.8.0", "on_save_checkpoint (#14315)"),
    "on_hpc_load": ("LightningModule", "1.8.0", "on_load_checkpoint (#14315)"),
    "on_post_move_to_device": ("LightningModule", "1.7.0", "nothing: Lightning ties weights itself (#13548)"),
    "get_progress_bar_dict": ("LightningModule", "1.7.0", "ProgressBar.get_metrics (#12839)"),
    "on_train_dataloader": ("LightningModule and LightningDataModule", "1.7.0", "train_dataloader (#13033)"),
    "on_val_dataloader": ("LightningModule and LightningDataModule", "1.7.0", "val_dataloader (#13033)"),
    "on_test_dataloader": ("LightningModule and LightningDataModule", "1.7.0", "test_dataloader (#13033)"),
    "on_predict_dataloader": ("LightningModule and LightningDataModule", "1.7.0", "predict_dataloader (#13033)"),
    "training_epoch_end": ("LightningModule", "2.0.0", "on_train_epoch_end, keeping outputs yourself (#16520); fit raises NotImplementedError"),
    "validation_epoch_end": ("LightningModule", "2.0.0", "on_validation_epoch_end (#16520); fit and validate raise NotImplementedError"),
    "test_epoch_end": ("LightningModule", "2.0.0", "on_test_epoch_end (#16520); test raises NotImplementedError"),
    "training_step_end": ("LightningModule", "2.0.0", "training_step (#16791); silently never called"),
    "validation_step_end": ("LightningModule", "2.0.0", "validation_step (#16791); silently never called"),
    "test_step_end": ("LightningModule", "2.0.0", "test_step (#16791); silently never called"),
    "tbptt_split_batch": ("LightningModule", "2.0.0", "manual optimisation with your own splitting (#16172)"),
}
"""Hook names Lightning 1.x called that 2.x never calls: ``{name: (object, version that removed it, replacement)}``.

From Lightning's ``src/lightning/pytorch/CHANGELOG.md`` (sections 1.7.0, 1.8.0, 2.0.0; PR numbers in the replacement;
the LightningModule's ``on_epoch_*``/``on_pretrain_routine_*`` went in the same commit as the callbacks', #14834, which
removed them from ``core/hooks.py``) and 2.6.6's source, each checked in a run
(``/work/scratch/lightning/FACTS.md`` (g)): on a Callback or LightningModule such a method is silently never called,
except ``training_epoch_end`` / ``validation_epoch_end`` / ``test_epoch_end``, which
``trainer/configuration_validator.py`` rejects with ``NotImplementedError`` (fit; fit and validate; test only).
Also removed in 2.0.0 without a name change (signatures, a ``TypeError`` only when called): the ``outputs`` argument of
``on_train_epoch_end`` (1.x, #7339) and ``on_predict_epoch_end`` (#16655), ``optimizer_idx`` arguments (e.g.
``on_before_optimizer_step(optimizer)``, ``optimizer_step``, ``optimizer_zero_grad``, ``training_step``), the
``on_tpu``/``using_lbfgs`` arguments of ``optimizer_step``, ``dataloader_idx`` of ``on_train_batch_start/end``
(#12769); ``LightningDataModule.on_save_checkpoint``/``on_load_checkpoint`` (1.8.0, #14909: use ``state_dict`` /
``load_state_dict``; the names live on for callbacks and the LightningModule). Kept for ``loopdoc check``'s Lightning rules."""

MODULE_ONLY_HOOKS = frozenset({
    "configure_callbacks", "prepare_data", "configure_model", "configure_sharded_model", "configure_optimizers",
    "train_dataloader", "val_dataloader", "test_dataloader", "predict_dataloader", "on_before_batch_transfer",
    "transfer_batch_to_device", "on_after_batch_transfer", "training_step", "validation_step", "test_step",
    "predict_step", "backward", "optimizer_step", "optimizer_zero_grad", "configure_gradient_clipping",
    "lr_scheduler_step", "on_validation_model_eval", "on_validation_model_train", "on_test_model_eval",
    "on_test_model_train", "on_predict_model_eval", "on_validation_model_zero_grad",
})
"""Hooks Lightning 2.6 dispatches to the LightningModule (or DataModule) only: a Callback defining one is never called
(no ``_call_callback_hooks`` call site names them; FACTS (g)). For ``loopdoc check``."""

CALLBACK_ONLY_HOOKS = frozenset({"on_sanity_check_start", "on_sanity_check_end", "on_exception", "state_dict", "load_state_dict"})
"""Hooks dispatched to callbacks but not to the LightningModule (``on_exception`` also reaches the DataModule;
``state_dict``/``load_state_dict`` are callback state in checkpoints). For ``loopdoc check``."""


def describe_hook(name: str) -> str:
    """The description of the hook ``name``.

    Args:
        name: a hook name, e.g. ``"on_train_batch_start"``.

    Returns:
        ``HOOKS[name]``; for a name not listed, a sentence saying Lightning calls it here.
    """
    return HOOKS.get(name, f"Lightning calls `{name}` here.")
