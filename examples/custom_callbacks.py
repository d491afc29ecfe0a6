"""A learner with hand-written callbacks: orders with ties, run flags, inheritance,
an event handler passed as a function, a dispatch override, and cancellations.

    loopdoc render examples/custom_callbacks.py -o loop.html
"""

from fastai.callback.core import Callback, CancelBatchException, CancelStepException
from fastai.test_utils import synth_learner


class LogBatch(Callback):
    """Count batches in both loops.

    Keeps `n_batches` per phase, so a review can check no batch was lost.
    """

    order = 5

    def before_fit(self):
        "Reset the counters."
        self.counts = {"train": 0, "valid": 0}

    def after_batch(self):
        "Count this batch under `train` or `valid`."
        self.counts["train" if self.training else "valid"] += 1


class LogTrainBatch(LogBatch):
    """Like `LogBatch`, but the training loop only (`run_valid=False`)."""

    run_valid = False

    def after_pred(self):
        "Check the prediction has the batch's shape."
        assert self.pred.shape[0] == self.xb[0].shape[0]


class ValidOnly(Callback):
    """Runs in the validation batch loop only (`run_train=False`); ties `LogBatch` on order 5."""

    order = 5
    run_train = False

    def after_loss(self):
        "Keep the worst validation loss seen."
        self.worst = max(getattr(self, "worst", 0.0), float(self.loss))

    def after_validate(self):
        "Still called: `after_validate` is not filtered by `run_train`/`run_valid`."


class SkipFirstStep(Callback):
    """Skip the optimizer step on the very first batch (raises `CancelStepException`)."""

    order = 1

    def before_step(self):
        "Raise `CancelStepException` on the first training iteration."
        if self.train_iter == 0:
            raise CancelStepException()

    def after_cancel_step(self):
        "Runs because `before_step` cancelled; this event is not filtered by `run_train`."


class DropOddBatches(Callback):
    """Cancel every odd training batch (raises `CancelBatchException` in `before_batch`)."""

    order = 2
    run_valid = False

    def before_batch(self):
        "Cancel odd-numbered batches: their forward pass never happens."
        if self.iter % 2 == 1:
            raise CancelBatchException()

    def after_cancel_batch(self):
        "Note the cancelled batch."
        self.dropped = getattr(self, "dropped", 0) + 1


class Muted(Callback):
    """Switched off (`run=False`): fastai skips it for the whole next fit."""

    run = False

    def after_batch(self):
        "Never runs while `run` is False."


def scale_inputs(self):
    """Scale the inputs by 1.0 (an event handler passed as `Callback(before_batch=f)`)."""
    self.learn.xb = tuple(x * 1.0 for x in self.xb)


class Tracer(Callback):
    """Overrides `__call__`, so it receives every event, whatever it defines."""

    order = 90

    def __call__(self, event_name):
        "Record every event name, then dispatch as fastai does."
        self.seen = getattr(self, "seen", [])
        self.seen.append(event_name)
        return super().__call__(event_name)


learn = synth_learner(
    n_trn=16,
    n_val=8,
    cbs=[LogBatch(), LogTrainBatch(), ValidOnly(), SkipFirstStep(), DropOddBatches(), Muted(),
         Callback(before_batch=scale_inputs), Tracer()],
)
