"""Hugging Face ``Trainer`` runs the tests compare with loopdoc's model: a tiny model, in-memory data, a temp output_dir.

Each scenario builds a ``Trainer`` (``build(out_dir) -> Trainer``) and names the call to model and run.
The user callbacks below cover: inherited and instance-attribute handlers, methods that are not
events, a callback added after construction, flag writes through a helper, a returned fresh
``TrainerControl``, a stop inside an accumulation window, and requests for evaluation.
Nothing downloads (``HF_HUB_OFFLINE``), nothing is written outside ``out_dir``.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
from transformers import (  # noqa: E402
    DefaultFlowCallback,
    EarlyStoppingCallback,
    Trainer,
    TrainerCallback,
    TrainerControl,
    TrainingArguments,
)


class TinyModel(torch.nn.Module):
    """``forward(x, labels=None) -> {"loss", "logits"}``: all a Trainer needs."""

    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(2, 1)

    def forward(self, x, labels=None):
        logits = self.lin(x).squeeze(-1)
        if labels is None:
            return {"logits": logits}
        return {"loss": torch.nn.functional.mse_loss(logits, labels), "logits": logits}


class DictDataset(torch.utils.data.Dataset):
    """``n`` examples ``{"x": [i % 5 / 5, 1], "labels": i % 3}``."""

    def __init__(self, n: int, labels: bool = True):
        self.n, self.labels = n, labels

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        item = {"x": torch.tensor([float(i % 5) / 5, 1.0])}
        if self.labels:
            item["labels"] = torch.tensor(float(i % 3))
        return item


class Stream(torch.utils.data.IterableDataset):
    """``n`` examples like ``DictDataset``'s, as an iterable without a length."""

    def __init__(self, n: int):
        self.n = n

    def __iter__(self):
        return (DictDataset(self.n)[i] for i in range(self.n))


class NotACallback:
    """Duck-typed, not a TrainerCallback: it has some event methods and lacks the others."""

    def on_init_end(self, args, state, control, **kwargs): pass
    def on_log(self, args, state, control, **kwargs): pass


def make_args(out_dir: str, **kw) -> TrainingArguments:
    base = dict(output_dir=out_dir, report_to="none", use_cpu=True, max_steps=4, per_device_train_batch_size=2,
                per_device_eval_batch_size=2, dataloader_num_workers=0, disable_tqdm=True)
    base.update(kw)
    return TrainingArguments(**base)


def make_trainer(out_dir: str, callbacks=None, n_train: int = 8, n_eval: int | None = None, **kw) -> Trainer:
    return Trainer(model=TinyModel(), args=make_args(out_dir, **kw), train_dataset=DictDataset(n_train),
                   eval_dataset=DictDataset(n_eval) if n_eval else None, callbacks=callbacks)


# ---- user callbacks -----------------------------------------------------------------------------

class Base(TrainerCallback):
    """A user base class: Recorder inherits on_epoch_begin from here."""

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.epochs = getattr(self, "epochs", 0) + 1


class Recorder(Base):
    """Overrides most events; also defines methods that are not events (they raise if ever called)."""

    def on_init_end(self, args, state, control, **kwargs): pass
    def on_train_begin(self, args, state, control, **kwargs): pass
    def on_step_begin(self, args, state, control, **kwargs): pass
    def on_substep_end(self, args, state, control, **kwargs): pass
    def on_pre_optimizer_step(self, args, state, control, **kwargs): pass
    def on_optimizer_step(self, args, state, control, **kwargs): pass
    def on_step_end(self, args, state, control, **kwargs): return control
    def on_log(self, args, state, control, logs=None, **kwargs): pass
    def on_evaluate(self, args, state, control, metrics=None, **kwargs): pass
    def on_prediction_step(self, args, state, control, **kwargs): pass
    def on_predict(self, args, state, control, metrics=None, **kwargs): pass
    def on_save(self, args, state, control, **kwargs): pass
    def on_epoch_end(self, args, state, control, **kwargs): pass
    def on_train_end(self, args, state, control, **kwargs): pass

    # not events: never called
    def on_batch_end(self, *a, **k): raise AssertionError("on_batch_end called")
    def on_epoch_start(self, *a, **k): raise AssertionError("on_epoch_start called")
    def on_backward(self, *a, **k): raise AssertionError("on_backward called")
    def on_evaluate_end(self, *a, **k): raise AssertionError("on_evaluate_end called")
    def on_step(self, *a, **k): raise AssertionError("on_step called")
    def on_train_start(self, *a, **k): raise AssertionError("on_train_start called")


class Second(TrainerCallback):
    def on_init_end(self, args, state, control, **kwargs): pass
    def on_log(self, args, state, control, **kwargs): pass


def _evaluate_attr(args, state, control, **kwargs):
    """Set as an instance attribute: `second.on_evaluate = _evaluate_attr`."""


class Late(TrainerCallback):
    """Added with trainer.add_callback after construction: never receives on_init_end."""

    def on_init_end(self, args, state, control, **kwargs): raise AssertionError("late callback got on_init_end")
    def on_step_end(self, args, state, control, **kwargs): pass


class StopAfter(TrainerCallback):
    def __init__(self, n): self.n = n

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= self.n:
            control.should_training_stop = True
        return control


class FreshControl(TrainerCallback):
    """Returns a new TrainerControl from on_step_end: replaces trainer.control, losing DefaultFlowCallback's flags."""

    def on_step_end(self, args, state, control, **kwargs):
        return TrainerControl()


class EpochStopInWindow(TrainerCallback):
    """Ends the first epoch at its first non-final micro-batch (mid accumulation window)."""

    def __init__(self): self.done = False

    def on_substep_end(self, args, state, control, **kwargs):
        if not self.done:
            self.done = True
            control.should_epoch_stop = True


class AskEval(TrainerCallback):
    """Requests an evaluation through a helper method (the AST scan follows self._ask)."""

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == 1:
            self._ask(control)

    def _ask(self, control):
        control.should_evaluate = True


class SaveOnLog(TrainerCallback):
    """Asks for a checkpoint whenever something is logged (a write inside the block reaches its save part)."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            control.should_save = True


# ---- scenarios: name -> (build(out_dir) -> Trainer, call text) ------------------------------------

def _t(out, **kw):
    return make_trainer(out, **kw)


def defaults(out):
    return _t(out, max_steps=4, disable_tqdm=False)  # eval_strategy="no"; save_strategy "steps": checkpoint-4 at the end


def users(out, ga=2, n_train=8, **kw):
    second = Second()
    second.on_evaluate = _evaluate_attr
    tr = _t(out, callbacks=[Recorder, second], n_train=n_train, n_eval=3, gradient_accumulation_steps=ga,
            eval_strategy="steps", eval_steps=2, save_strategy="steps", save_steps=2, logging_steps=1, **kw)
    tr.add_callback(Late())
    return tr


class CountingTrainer(Trainer):
    """A Trainer subclass overriding a loop method (calling the Trainer's own): loopdoc notes it."""

    def training_step(self, model, inputs, num_items_in_batch=None):
        self.micro_batches = getattr(self, "micro_batches", 0) + 1
        return super().training_step(model, inputs, num_items_in_batch)


def subclass(out):
    return CountingTrainer(model=TinyModel(), args=make_args(out, gradient_accumulation_steps=2, save_strategy="no"),
                           train_dataset=DictDataset(8), callbacks=[Recorder])


def iterable(out):
    return Trainer(model=TinyModel(), args=make_args(out, max_steps=3, logging_steps=1, save_strategy="no"),
                   train_dataset=Stream(20))


def no_default_flow(out):
    tr = _t(out, n_train=8, max_steps=2, logging_steps=1, save_strategy="steps", save_steps=1)
    tr.remove_callback(DefaultFlowCallback)
    return tr


def _es(**kw):
    return EarlyStoppingCallback(early_stopping_patience=1, early_stopping_threshold=10.0, **kw)


SCENARIOS = {
    "defaults": (defaults, "train()"),
    "users_ga2": (lambda out: users(out, ga=2, n_train=8, max_steps=4), "train()"),
    "users_ga3_partial_2epochs": (lambda out: users(out, ga=3, n_train=10, max_steps=-1, num_train_epochs=2), "train()"),
    "users_ga3_maxsteps_mid_epoch": (lambda out: users(out, ga=3, n_train=10, max_steps=3), "train()"),
    "early_stopping_steps": (lambda out: _t(out, callbacks=[_es()], n_eval=2, max_steps=6, eval_strategy="steps", eval_steps=1,
                                            save_strategy="steps", save_steps=1, load_best_model_at_end=True,
                                            metric_for_best_model="eval_loss"), "train()"),
    "early_stopping_epoch": (lambda out: _t(out, callbacks=[_es()], n_eval=2, max_steps=-1, num_train_epochs=3,
                                            eval_strategy="epoch", save_strategy="epoch", load_best_model_at_end=True,
                                            metric_for_best_model="eval_loss"), "train()"),
    "evaluate_alone": (lambda out: _t(out, callbacks=[Recorder], n_eval=5, save_strategy="no"), "evaluate()"),
    "evaluate_dict": (lambda out: _t(out, callbacks=[Recorder], n_eval=5, save_strategy="no"),
                      "evaluate(eval_dataset={'a': DictDataset(3), 'b': DictDataset(5)})"),
    "predict": (lambda out: _t(out, callbacks=[Recorder], save_strategy="no"), "predict(DictDataset(5))"),
    "predict_no_labels": (lambda out: _t(out, save_strategy="no"), "predict(DictDataset(3, labels=False))"),
    "printer": (lambda out: _t(out, callbacks=[Recorder], n_eval=3, eval_strategy="steps", eval_steps=2, logging_steps=2,
                               save_strategy="no"), "train()"),
    "epoch_strategy": (lambda out: _t(out, callbacks=[Recorder], n_eval=3, max_steps=-1, num_train_epochs=2,
                                      eval_strategy="epoch", save_strategy="epoch", logging_strategy="epoch"), "train()"),
    "epoch_eval_delay": (lambda out: _t(out, n_eval=3, max_steps=-1, num_train_epochs=2, eval_strategy="epoch", eval_delay=1.5,
                                        save_strategy="no"), "train()"),
    "misc_first_step_eval_on_start_best": (lambda out: _t(out, n_eval=3, max_steps=5, logging_first_step=True, logging_steps=3,
                                                          eval_on_start=True, eval_strategy="steps", eval_steps=2, eval_delay=3,
                                                          save_strategy="best", metric_for_best_model="eval_loss"), "train()"),
    "fractional_steps": (lambda out: _t(out, n_eval=2, max_steps=10, logging_steps=0.25, eval_strategy="steps", eval_steps=0.5,
                                        save_strategy="no"), "train()"),
    "stop_after_2": (lambda out: _t(out, callbacks=[StopAfter(2)], max_steps=6, logging_steps=1, save_strategy="no"), "train()"),
    "fresh_control": (lambda out: _t(out, callbacks=[FreshControl], n_train=16, max_steps=4, logging_steps=2,
                                     save_strategy="steps", save_steps=2), "train()"),
    "epoch_stop_mid_window": (lambda out: _t(out, callbacks=[EpochStopInWindow], gradient_accumulation_steps=2, max_steps=-1,
                                             num_train_epochs=2, logging_steps=1, save_strategy="no"), "train()"),
    "ask_eval_with_strategy_no": (lambda out: _t(out, callbacks=[AskEval], n_eval=2, max_steps=3, save_strategy="no"), "train()"),
    "save_on_log": (lambda out: _t(out, callbacks=[SaveOnLog], max_steps=3, logging_steps=2, save_strategy="no"), "train()"),
    "no_default_flow": (no_default_flow, "train()"),
    "iterable_dataset": (iterable, "train()"),
    "trainer_subclass": (subclass, "train()"),
    "epoch_log_after_first_step": (lambda out: _t(out, n_train=2, max_steps=-1, num_train_epochs=2, logging_first_step=True,
                                                  logging_strategy="epoch", save_strategy="no"), "train()"),
}
