"""A Hugging Face Trainer with callbacks of its own: gradient accumulation, evaluation, checkpoints, early stopping.

    loopdoc render examples/hf_callbacks.py -o loop.html
    loopdoc show examples/hf_callbacks.py --call "evaluate()"

10 training points in batches of 2 make 5 batches per epoch; with gradient_accumulation_steps=2
that is 3 update steps per epoch (2 + 2 + 1 micro-batches), 6 in 2 epochs. The Trainer evaluates
and saves every 2 steps and at the last, and EarlyStoppingCallback stops when eval_loss stops
improving. Loading this file builds the Trainer only: nothing is trained, downloaded or written
(output_dir "hf_callbacks_output" is not created). `python examples/hf_callbacks.py --train` trains it.
"""

import math
import sys

import torch
from transformers import EarlyStoppingCallback, Trainer, TrainerCallback, TrainingArguments


class TinyRegressor(torch.nn.Module):
    """y = w·x + b; `forward` returns the MSE loss when `labels` are given, as the Trainer expects."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(2, 1)

    def forward(self, x, labels=None):
        logits = self.linear(x).squeeze(-1)
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = torch.nn.functional.mse_loss(logits, labels)
        return out


class Points(torch.utils.data.Dataset):
    """`n` points on the line y = 2·x₀ − x₁, as dicts of tensors (the Trainer's default collator stacks them)."""

    def __init__(self, n, offset=0.0):
        self.x = torch.linspace(offset, offset + 1, 2 * n).reshape(n, 2)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"x": self.x[i], "labels": 2 * self.x[i, 0] - self.x[i, 1]}


class MicroBatchCounter(TrainerCallback):
    """Counts micro-batches per update step, to check the accumulation windows (2, 2, then 1 per epoch)."""

    def on_step_begin(self, args, state, control, **kwargs):
        """A new update step starts: its first micro-batch comes next."""
        self.window = 1

    def on_substep_end(self, args, state, control, **kwargs):
        """A micro-batch ended without an optimizer step: the window goes on."""
        self.window += 1

    def on_step_end(self, args, state, control, **kwargs):
        """The optimizer stepped: remember how many micro-batches it summed."""
        self.windows = getattr(self, "windows", []) + [self.window]

    def on_batch_end(self, args, state, control, **kwargs):
        """Meant for every batch, but `on_batch_end` is not a TrainerCallback event: the Trainer never calls it."""
        raise AssertionError("never called")


class StopOnNan(TrainerCallback):
    """Stops training as soon as a logged training loss is not a number."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        """Set `control.should_training_stop` when the loss is NaN or infinite."""
        if logs and "loss" in logs and not math.isfinite(logs["loss"]):
            control.should_training_stop = True


class EvalReport(TrainerCallback):
    """Collects each evaluation's metrics and the checkpoints saved after it."""

    def on_prediction_step(self, args, state, control, **kwargs):
        """One more evaluation batch."""
        self.batches = getattr(self, "batches", 0) + 1

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        """Keep `eval_loss` by global step (fires after the metrics were logged)."""
        self.losses = {**getattr(self, "losses", {}), state.global_step: metrics["eval_loss"]}

    def on_save(self, args, state, control, **kwargs):
        """A checkpoint was written for this step."""
        self.saved = getattr(self, "saved", []) + [state.global_step]


args = TrainingArguments(
    output_dir="hf_callbacks_output",
    num_train_epochs=2,
    per_device_train_batch_size=2,
    per_device_eval_batch_size=2,
    gradient_accumulation_steps=2,
    eval_strategy="steps",
    eval_steps=2,
    save_strategy="steps",
    save_steps=2,
    logging_steps=1,
    load_best_model_at_end=True,
    metric_for_best_model="eval_loss",
    report_to="none",
)

trainer = Trainer(
    model=TinyRegressor(),
    args=args,
    train_dataset=Points(10),
    eval_dataset=Points(4, offset=1.0),
    callbacks=[MicroBatchCounter, StopOnNan(), EvalReport(), EarlyStoppingCallback(early_stopping_patience=2)],
)

if __name__ == "__main__" and "--train" in sys.argv:
    trainer.train()
