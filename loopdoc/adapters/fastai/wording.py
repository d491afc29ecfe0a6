"""fastai's loop in words: when each event fires, what each cancellation skips, and the labels the templates use.

Facts from fastai 2.8.12's ``fastai/learner.py`` (``Learner._with_events``, ``fit``,
``_do_epoch``, ``one_batch``, ``_do_one_batch``, ``_do_grad_opt``) and
``fastai/callback/core.py``; each was checked against a real run (``tests/fastai/test_ground_truth.py``).
Imports nothing of fastai: rendering a saved model reads ``WORDING`` without it.
"""

from __future__ import annotations

from ..words import Wording

# When each event fires and what the Learner holds then, in our words.
EVENT_DESCRIPTIONS = {
    "after_create": "Once, at the end of `Learner.__init__`. The learner has `dls`, `model`, `loss_func`, "
    "`opt_func` and its callbacks, but no optimizer yet (`learn.opt` is None). A callback added later never receives it.",
    "before_fit": "Once per call to `fit`, after the optimizer is created and `lr`/`wd` are set; "
    "`learn.n_epoch` holds the number of epochs.",
    "after_cancel_fit": "Only when a `CancelFitException` was raised anywhere in the fit.",
    "after_fit": "Once at the end of `fit`, whether or not it was cancelled. fastai resets every callback's `run` "
    "to True here; then `learn.dl`, `xb`, `yb`, `pred` and `loss` are cleared.",
    "before_epoch": "At the start of each epoch; `learn.epoch` is the epoch index (from 0).",
    "after_cancel_epoch": "Only when a `CancelEpochException` was raised during this epoch.",
    "after_epoch": "At the end of each epoch, after validation, whether or not the epoch was cancelled.",
    "before_train": "At the start of the training part of the epoch; `learn.dl` is `dls.train`. "
    "`TrainEvalCallback` sets `learn.training = True` and puts the model in train mode here.",
    "after_cancel_train": "Only when a `CancelTrainException` was raised during the training part.",
    "after_train": "At the end of the training part, whether or not it was cancelled.",
    "before_validate": "At the start of the validation part; `learn.dl` is `dls.valid`. "
    "`TrainEvalCallback` sets `learn.training = False` and puts the model in eval mode here.",
    "after_cancel_validate": "Only when a `CancelValidException` was raised during the validation part.",
    "after_validate": "At the end of the validation part, whether or not it was cancelled.",
    "before_batch": "At the start of each batch; `learn.iter` is the batch index, `learn.xb` and `learn.yb` "
    "hold the inputs and targets (tuples) and may be replaced here.",
    "after_pred": "After the forward pass; `learn.pred` holds the model's output and may be replaced here.",
    "after_loss": "After the loss is computed (only if the batch has targets); `learn.loss_grad` is the loss "
    "to differentiate, `learn.loss` a detached copy.",
    "before_backward": "Before `loss_grad.backward()`; only when training and the batch has targets.",
    "after_cancel_backward": "Only when a `CancelBackwardException` was raised in `before_backward` or the backward pass.",
    "after_backward": "After the backward pass (or its cancellation); gradients are in the parameters' `.grad`.",
    "before_step": "Before `opt.step()`; gradients may still be changed (clipping, accumulation).",
    "after_cancel_step": "Only when a `CancelStepException` was raised in `before_step` or the optimizer step.",
    "after_step": "After the optimizer step (or its cancellation); then fastai calls `opt.zero_grad()`.",
    "after_cancel_batch": "Only when a `CancelBatchException` was raised during this batch.",
    "after_batch": "At the end of each batch, whether or not it was cancelled; `learn.loss` is this batch's loss.",
}

# Per `_with_events` type: the exception it catches and what follows its after_* event.
CANCELS = {
    "fit": ("CancelFitException", "The rest of the fit is skipped; `after_fit` runs, then the cleanup."),
    "epoch": ("CancelEpochException", "The rest of this epoch is skipped; `after_epoch` runs, then the next epoch."),
    "train": ("CancelTrainException", "The remaining training batches are skipped; `after_train` runs, then validation."),
    "validate": ("CancelValidException", "The remaining validation batches are skipped; `after_validate` runs, then `after_epoch`."),
    "batch": ("CancelBatchException", "The rest of this batch (including `opt.zero_grad()`) is skipped; `after_batch` runs, then the next batch."),
    "backward": ("CancelBackwardException", "The backward pass is skipped; `after_backward` runs, then the optimizer step phase."),
    "step": ("CancelStepException", "The optimizer step is skipped; `after_step` runs, then `opt.zero_grad()`."),
}

WORDING = Wording(
    framework="fastai",
    trainer="Learner",
    dispatch="__call__",
    cancel="Cancel…Exception",
    order_key="order",
    order_ties="ties in the order they were added",
    tie_decider="the cbs list order",
    flags=("run", "run_train", "run_valid"),
    switch="run",
    filters=(("run_train", "train"), ("run_valid", "validate")),
    own_code="fastai's own code",
    never_ran="switched off with run=False, or stopped by a cancel",
    file_kind="pickled learner",
)
