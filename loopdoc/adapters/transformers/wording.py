"""The Hugging Face ``Trainer``'s loop in words: when each event fires, the names people mistake for events,
EarlyStoppingCallback's requirements, and the labels the templates use.

Facts from transformers 5.24's ``trainer.py`` (``Trainer.__init__``, ``_inner_training_loop``,
``_run_epoch``, ``_maybe_log_save_evaluate``, ``evaluate``, ``evaluation_loop``, ``predict``,
``log``, ``_finalize_training``) and ``trainer_callback.py`` (``TrainerCallback``,
``CallbackHandler``, ``DefaultFlowCallback``, ``EarlyStoppingCallback``); each was checked against
a real run (``tests/transformers/test_transformers.py``, oracle ``tests/transformers/hf_observe.py``).
Imports nothing of transformers: rendering a saved model reads ``WORDING`` without it.

``NOT_EVENTS`` and ``EARLY_STOPPING`` hold the facts the ``loopdoc check`` rules for this
framework will need (the lint engine is built separately): the method names users write that
``TrainerCallback`` does not have (the Trainer never calls them, and says nothing), and the exact
failures of ``EarlyStoppingCallback`` when its requirements are not met.
"""

from __future__ import annotations

import difflib

from ..words import Wording

# The events of transformers 5.24's TrainerCallback, in definition order: for reference (and for the check rules' tests).
# loopdoc reads the installed class (extract.events), so a newer transformers with other events is followed.
EVENTS_5_24 = ("on_init_end", "on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end", "on_step_begin",
               "on_pre_optimizer_step", "on_optimizer_step", "on_substep_end", "on_step_end", "on_evaluate", "on_predict",
               "on_save", "on_log", "on_prediction_step", "on_push_begin")

# When each event fires and what the Trainer holds then. The event list itself is read from the
# installed `TrainerCallback` (extract.events); an event missing here gets UNKNOWN_EVENT.
EVENT_DESCRIPTIONS = {
    "on_init_end": "Once, at the end of `Trainer.__init__`, after the callback list, `TrainerState` and `TrainerControl` "
    "exist. Only the callbacks in the list at that moment receive it: one added later with `trainer.add_callback` never does.",
    "on_train_begin": "Once per `train()`, after the train dataloader, a fresh `TrainerState` (global_step 0), the "
    "optimizer and the scheduler exist. `CallbackHandler` sets `control.should_training_stop = False` first. "
    "`EarlyStoppingCallback` checks its requirements here (asserts).",
    "on_epoch_begin": "At the start of each epoch, before its first batch is loaded. `CallbackHandler` sets "
    "`control.should_epoch_stop = False` first.",
    "on_step_begin": "At the first micro-batch of each update step (`step % gradient_accumulation_steps == 0`), before "
    "its forward pass. `CallbackHandler` sets `should_log`, `should_evaluate` and `should_save` to False first.",
    "on_substep_end": "After the forward and backward pass of a micro-batch that does not end its accumulation window: "
    "no optimizer step follows it. Never with `gradient_accumulation_steps=1`.",
    "on_pre_optimizer_step": "After the last micro-batch of the update step and gradient clipping, just before "
    "`optimizer.step()`; the accumulated gradients are in the parameters' `.grad`.",
    "on_optimizer_step": "Just after `optimizer.step()`, before `lr_scheduler.step()` and `model.zero_grad()`.",
    "on_step_end": "After the optimizer step, the scheduler step and `zero_grad`; `state.global_step` has been "
    "incremented and `state.epoch` updated. `DefaultFlowCallback` decides here whether to log, evaluate, save or stop.",
    "on_log": "From `Trainer.log(logs)`, after `logs` (plus `epoch`) was appended to `state.log_history`; `logs` holds "
    "the values. `CallbackHandler` sets `control.should_log = False` first.",
    "on_evaluate": "At the end of `evaluate()`, after its metrics were logged (`on_log`); `metrics` holds the `eval_*` "
    "values. `CallbackHandler` sets `control.should_evaluate = False` first.",
    "on_prediction_step": "After each batch of the evaluation or prediction loop (`prediction_step`, under "
    "`torch.no_grad()`), before the next batch is loaded.",
    "on_predict": "At the end of `predict()`; `metrics` holds the `test_*` values. `predict()` fires no `on_log`.",
    "on_save": "Right after `_save_checkpoint` wrote `output_dir/checkpoint-<global_step>`. `CallbackHandler` sets "
    "`control.should_save = False` first.",
    "on_epoch_end": "At the end of each epoch, also when a stop flag cut it short. `DefaultFlowCallback` decides "
    "epoch-strategy logging, evaluation and saving here.",
    "on_train_end": "Once at the end of `train()`, after the final `on_log` (train metrics) and after the best "
    "checkpoint was loaded (`load_best_model_at_end=True`).",
    "on_push_begin": "Before a push to the Hub: at the start of `Trainer.push_to_hub`, and inside `_save_checkpoint` "
    "(before `on_save`) when `push_to_hub=True` and `hub_strategy` is not `'end'`. Its returned control is discarded.",
}

UNKNOWN_EVENT = ("An event of the installed `TrainerCallback` that this version of loopdoc does not place in the loop "
                 "(it may fire anywhere, or not at all).")

# Method names written on TrainerCallback subclasses that are not events (the Trainer never looks them up, so
# they are silently never called), with the event meant: names from other frameworks (Keras, Lightning,
# fastai) and guesses (transformers issues #10839, #12920, #33671, #7702). `nearest_event` covers the rest.
NOT_EVENTS = {
    "on_batch_begin": "on_step_begin",
    "on_batch_end": "on_step_end",
    "on_train_batch_begin": "on_step_begin",
    "on_train_batch_end": "on_step_end",
    "on_step": "on_step_end",
    "on_step_start": "on_step_begin",
    "on_epoch_start": "on_epoch_begin",
    "on_train_start": "on_train_begin",
    "on_fit_start": "on_train_begin",
    "on_fit_end": "on_train_end",
    "on_init": "on_init_end",
    "on_init_begin": "on_init_end",
    "on_backward": "on_pre_optimizer_step",
    "on_after_backward": "on_pre_optimizer_step",
    "on_before_optimizer_step": "on_pre_optimizer_step",
    "on_optimizer_step_end": "on_optimizer_step",
    "on_evaluate_begin": "on_step_end",
    "on_evaluate_end": "on_evaluate",
    "on_evaluation_end": "on_evaluate",
    "on_validation_end": "on_evaluate",
    "on_validation_epoch_end": "on_evaluate",
    "on_predict_end": "on_predict",
    "on_prediction_end": "on_predict",
    "on_save_checkpoint": "on_save",
    "on_checkpoint": "on_save",
    "on_log_end": "on_log",
}

# EarlyStoppingCallback (trainer_callback.py, 5.24): nothing is checked at Trainer(...); on_train_begin warns, then
# asserts (in this order), so train() raises AssertionError before the first epoch; under `python -O` the asserts
# are gone. on_evaluate reads metrics["eval_" + metric] and only warns when it is missing.
EARLY_STOPPING = {
    "warning": "Using EarlyStoppingCallback without load_best_model_at_end=True. Once training is finished, the best "
    "model will not be loaded automatically.",
    "no_metric": "EarlyStoppingCallback requires metric_for_best_model to be defined",
    "no_eval": "EarlyStoppingCallback requires IntervalStrategy of steps or epoch",
    "missing_metric": "early stopping required metric_for_best_model, but did not find {metric} so early stopping is disabled",
}


def nearest_event(name: str, events: tuple[str, ...] | list[str]) -> str | None:
    """The event a method name not among ``events`` was probably meant as.

    Args:
        name: an ``on_*`` method name of a callback class, e.g. ``"on_batch_end"``.
        events: the real events (``TrainerCallback``'s ``on_*`` methods, read from the installed class).

    Returns:
        ``NOT_EVENTS[name]`` when it is a real event, else the closest event name by ``difflib`` (cutoff 0.6), else ``None``.
    """
    known = NOT_EVENTS.get(name)
    if known in events:
        return known
    close = difflib.get_close_matches(name, list(events), n=1, cutoff=0.6)
    return close[0] if close else None


WORDING = Wording(
    framework="transformers",
    trainer="Trainer",
    callback="callback",
    event="event",
    dispatch=None,
    cancel=None,
    order_key=None,
    run_order="in the order of `trainer.callback_handler.callbacks`: DefaultFlowCallback, the report_to integrations, "
    "the callbacks= list, the progress callback, then any added later",
    flags=(),
    switch=None,
    filters=(),
    own_code="the Trainer's own code",
    never_ran="an earlier callback raised at that event, which stops the rest",
    file_kind="saved trainer",
)
