"""Every kind of note the Lightning adapter prints (``Loop.notes``), each proved by a real capped run.

Per kind: a tiny setup (random tensors, ``nn.Linear(4, 1)``, CPU, ``logger=False``, no progress bar, a few batches,
``default_root_dir`` under ``tmp_path``) is modelled through ``loopdoc.loop`` (the public path: the adapter plus
``loopdoc check``'s findings); the exact note is asserted; then the call runs for real under
``observe_lightning.recording`` (the oracle that shares no code with the adapter) or with counters in the setup's
own classes, and what the note claims is checked against what ran. Where the note says what the loops show,
``lightning_compare.compare`` proves the model equals the run. The converse: a default call has none of the
conditional notes. The working directory is an empty folder that must stay empty.
"""

from __future__ import annotations

import importlib
import os
import types

import lightning_compare as cmp
import lightning_setups as setups
import observe_lightning as oracle
import pytest
import torch
from helpers import walk_phases

import loopdoc
from loopdoc.adapters.lightning.extract import plan
from loopdoc.errors import UsageError
from loopdoc.model.loop import Phase

pytestmark = [pytest.mark.lightning, pytest.mark.usefixtures("user_folder")]

OPTIMIZERS = "`configure_optimizers()` was called once to read the optimizer and LR schedulers; `fit` calls it again."
NOT_SHOWN = ("Not shown: `on_exception` (callbacks, then the DataModule, when the call raises); the hooks that load a "
             "checkpoint (`ckpt_path`); reloading dataloaders (`reload_dataloaders_every_n_epochs`).")
NO_VALIDATION = "validation is not enabled (no val loader, no validation_step, or limit_val_batches=0)"


@pytest.fixture(scope="module")
def L() -> types.SimpleNamespace:
    """``pytorch_lightning`` (as ``L.P``) and this module's test classes (imported only when a test runs)."""
    P = importlib.import_module("pytorch_lightning")
    return types.SimpleNamespace(P=P, **setups.classes(P), **_classes(P))


def _classes(P):
    """The classes of these tests, for package ``P``: modules and callbacks that count what Lightning calls on them."""

    class Net(P.LightningModule):
        """Training only (no validation_step); counts the hooks the notes are about."""

        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(4, 1)
            self.calls: list[str] = []

        def forward(self, x):
            return self.layer(x)

        def training_step(self, batch, batch_idx):
            x, y = batch
            self.calls.append("training_step")
            return torch.nn.functional.mse_loss(self(x), y)

        def configure_optimizers(self):
            self.calls.append("configure_optimizers")
            return torch.optim.SGD(self.parameters(), lr=0.1)

    class ValNet(Net):
        """Net with validation, test and predict steps (counted)."""

        def validation_step(self, batch, batch_idx):
            self.calls.append("validation_step")

        def test_step(self, batch, batch_idx):
            self.calls.append("test_step")

        def predict_step(self, batch, batch_idx):
            self.calls.append("predict_step")
            return self(batch[0])

    class NoStep(P.LightningModule):
        """No training_step: Lightning's configuration validator rejects it in fit."""

        def configure_optimizers(self):
            return None

    class NoOptimizer(P.LightningModule):
        """No configure_optimizers: Lightning's configuration validator rejects it in fit."""

        def training_step(self, batch, batch_idx):
            return None

    class Accumulating(Net):
        """Keeps, per batch, what training_step returned and the loss Lightning passes to backward, and the first gradient."""

        def __init__(self) -> None:
            super().__init__()
            self.returned: list[torch.Tensor] = []
            self.backward_losses: list[torch.Tensor] = []
            self.first_grad: torch.Tensor | None = None

        def training_step(self, batch, batch_idx):
            loss = super().training_step(batch, batch_idx)
            self.returned.append(loss.detach().clone())
            return loss

        def on_before_backward(self, loss):
            self.backward_losses.append(loss.detach().clone())

        def on_after_backward(self):
            if self.first_grad is None:
                self.first_grad = self.layer.weight.grad.detach().clone()

    class Configured(ValNet):
        """configure_callbacks: replaces the Trainer's EarlyStopping (same type) and adds a Counter; keeps what it returned."""

        def __init__(self) -> None:
            super().__init__()
            self.returned_callbacks: list[list] = []

        def configure_callbacks(self):
            cbs = [P.callbacks.EarlyStopping(monitor="v", patience=1000), setups.classes(P)["Counter"]()]
            self.returned_callbacks.append(cbs)
            return cbs

        def validation_step(self, batch, batch_idx):
            self.log("v", torch.nn.functional.mse_loss(self(batch[0]), batch[1]))

    class EveryBatch(P.callbacks.Checkpoint):
        """A custom Checkpoint (not a ModelCheckpoint): saves after every training batch and at the end of validate."""

        def __init__(self, dirpath: str) -> None:
            self.dirpath = dirpath

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            trainer.save_checkpoint(os.path.join(self.dirpath, f"batch{batch_idx}.ckpt"))

        def on_validation_end(self, trainer, pl_module):
            if trainer.state.fn == "validate":
                trainer.save_checkpoint(os.path.join(self.dirpath, "validate.ckpt"))

    class Exceptions(P.Callback):
        """Appends ``(its name, the exception)`` to a shared list at on_exception."""

        def __init__(self, name: str, log: list) -> None:
            self.name, self.seen = name, log

        def on_exception(self, trainer, pl_module, exception):
            self.seen.append((self.name, exception))

    class Raising(Net):
        """Its first training_step raises."""

        def training_step(self, batch, batch_idx):
            raise RuntimeError("boom")

    class ExceptionDM(P.LightningDataModule):
        """A DataModule that appends ``("datamodule", the exception)`` to a shared list at on_exception."""

        def __init__(self, log: list) -> None:
            super().__init__()
            self.seen = log

        def train_dataloader(self):
            return setups.data(8)

        def on_exception(self, exception):
            self.seen.append(("datamodule", exception))

    class Reloading(Net):
        """Defines train_dataloader, counted."""

        def train_dataloader(self):
            self.calls.append("train_dataloader")
            return setups.data(8)

        def on_load_checkpoint(self, checkpoint):
            self.calls.append("on_load_checkpoint")

    class MyStrategy(P.strategies.SingleDeviceStrategy):
        """A user's strategy: Lightning calls its own hooks."""

        ran: list[str] = []

        def on_train_batch_start(self, batch, batch_idx):
            MyStrategy.ran.append("on_train_batch_start")
            return super().on_train_batch_start(batch, batch_idx)

        def batch_to_device(self, batch, device=None, dataloader_idx=0):
            MyStrategy.ran.append("batch_to_device")
            return super().batch_to_device(batch, device, dataloader_idx)

    class MyPrecision(P.plugins.precision.Precision):
        """A user's precision plugin: Lightning calls its own hooks."""

        ran: list[str] = []

        def pre_backward(self, tensor, module):
            MyPrecision.ran.append("pre_backward")
            return super().pre_backward(tensor, module)

    return {k: v for k, v in locals().items() if isinstance(v, type)}


def trainer(L, tmp_path, **settings):
    """A small CPU Trainer writing only under ``tmp_path`` (no logger, checkpointing, progress bar or summary unless asked)."""
    base = dict(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                enable_model_summary=False, default_root_dir=str(tmp_path / "root"), max_epochs=1,
                limit_train_batches=2, limit_val_batches=2, callbacks=[L.P.Callback()])  # a callback: the oracle sees every callback hook
    return L.P.Trainer(**{**base, **settings})


def modelled(trainer, call: str, **names):
    """The model of ``trainer.<call>`` through loopdoc's public entry point."""
    return loopdoc.loop(trainer, loaded_from="notes.py:trainer", call=call, namespace=names)


def run(trainer, call: str, **names) -> dict:
    """Run ``trainer.<call>`` for real under the oracle; the record, and the problems where the static model differs."""
    loop, meta = plan(trainer, loaded_from="notes.py:trainer", call=call, namespace=names)
    with oracle.recording(trainer) as rec:
        eval("trainer." + call, {**names, "trainer": trainer})  # noqa: S307 - the test's own call
    rec["problems"] = cmp.compare(loop, meta, rec)
    rec["hooks"] = [(e["path"], e["hook"]) for e in rec["flat"]]
    return rec


def ran(rec: dict, hook: str) -> list[list[str]]:
    """The paths at which ``hook`` fired in the run (its consecutive dispatches, callbacks then the module, are one firing)."""
    out, previous = [], None
    for path, h in rec["hooks"]:
        if h == hook and (path, h) != previous:
            out.append(path)
        previous = (path, h)
    return out


def events(loop) -> list[str]:
    """The names of every event of ``loop``, in order."""
    return [ev.name for _, ev in loop.iter_events()]


def phases(loop) -> list[Phase]:
    """Every phase of ``loop``, depth first."""
    return [phase for _, phase in walk_phases(loop)]


# ---------------------------------------------------------------- the converse


def test_a_default_call_has_only_the_notes_of_every_call(L, tmp_path):
    """Validation with a sanity check, a ModelCheckpoint, max_steps=-1, no accumulation, Lightning's strategy: no conditional note."""
    t = trainer(L, tmp_path, enable_checkpointing=True)
    model, train, val = L.ValNet(), setups.data(), setups.data()
    loop = modelled(t, "fit(model, train, val)", model=model, train=train, val=val)
    assert loop.notes == (OPTIMIZERS, NOT_SHOWN)
    assert not any("divides the loss" in ev.description for _, ev in loop.iter_events())
    rec = run(t, "fit(model, train, val)", model=model, train=train, val=val)
    assert rec["problems"] == []
    assert len(ran(rec, "on_sanity_check_start")) == 1 and t.global_step == 2
    for call in ("validate(model, val)", "test(model, val)", "predict(model, val)"):
        assert modelled(t, call, model=model, val=val).notes == (NOT_SHOWN,)


# ---------------------------------------------------------------- no sanity check


@pytest.mark.parametrize("case", ["num_sanity_val_steps=0", "no val loader", "no validation_step", "limit_val_batches=0"])
def test_no_sanity_check(case, L, tmp_path):
    """No `on_sanity_check_*` and no validation before training; validation at the epoch's end only when it is enabled."""
    settings = {"num_sanity_val_steps=0": dict(num_sanity_val_steps=0), "limit_val_batches=0": dict(limit_val_batches=0)}
    t = trainer(L, tmp_path, **settings.get(case, {}))
    model = L.Net() if case == "no validation_step" else L.ValNet()
    names = dict(model=model, train=setups.data()) | ({} if case == "no val loader" else {"val": setups.data()})
    call = "fit(model, train)" if case == "no val loader" else "fit(model, train, val)"
    loop = modelled(t, call, **names)
    why = "num_sanity_val_steps=0" if case == "num_sanity_val_steps=0" else NO_VALIDATION
    assert f"No sanity check: {why}." in loop.notes
    rec = run(t, call, **names)
    assert rec["problems"] == []
    assert ran(rec, "on_sanity_check_start") == ran(rec, "on_sanity_check_end") == []
    assert "fit#1/sanity_check" not in cmp.counts(rec)
    if "validation_step" in model.calls:
        assert model.calls.index("training_step") < model.calls.index("validation_step")
    if case == "num_sanity_val_steps=0":
        assert all("train" in path for path in ran(rec, "validation_step")) and model.calls.count("validation_step") == 2
    else:
        assert ran(rec, "on_validation_start") == [] and "validation_step" not in model.calls


# ---------------------------------------------------------------- training


def test_no_training(L, tmp_path):
    """limit_train_batches=0: fit runs setup, the sanity check and teardown, and no training hook at all."""
    t = trainer(L, tmp_path, limit_train_batches=0)
    model, train, val = L.ValNet(), setups.data(), setups.data()
    loop = modelled(t, "fit(model, train, val)", model=model, train=train, val=val)
    assert "No training: limit_train_batches=0." in loop.notes
    assert not any(n.startswith("max_steps=") for n in loop.notes)
    rec = run(t, "fit(model, train, val)", model=model, train=train, val=val)
    assert rec["problems"] == []
    assert "training_step" not in model.calls and t.global_step == 0
    for hook in ("on_train_start", "on_train_epoch_start", "on_train_batch_start", "on_train_end"):
        assert ran(rec, hook) == [], hook
    assert len(ran(rec, "on_sanity_check_start")) == 1 and len(ran(rec, "on_fit_end")) == 1


@pytest.mark.parametrize("missing", ["training_step", "configure_optimizers"])
def test_fit_without_training_step_or_optimizers_is_refused_as_lightning_refuses_it(missing, L, tmp_path):
    """Not a model without training: Lightning's configuration validator raises before any setup hook."""
    t = trainer(L, tmp_path, max_epochs=1)
    model, train = (L.NoStep() if missing == "training_step" else L.NoOptimizer()), setups.data()
    with pytest.raises(UsageError, match=f"defines no {missing} \\(Trainer.fit raises MisconfigurationException"):
        modelled(t, "fit(model, train)", model=model, train=train)
    log: list = []
    t = trainer(L, tmp_path, callbacks=[L.Exceptions("cb", log)])
    with pytest.raises(L.P.utilities.exceptions.MisconfigurationException, match=f"No `{missing}\\(\\)` method defined"):
        t.fit(model, train)
    assert [name for name, _ in log] == ["cb"]  # the call failed (on_exception), before any training


def test_max_steps_stops_inside_the_epoch(L, tmp_path):
    """max_steps=3 of an 8-batch epoch: 3 batches, global_step 3, no second epoch; the loops equal the run until then."""
    t = trainer(L, tmp_path, max_steps=3, max_epochs=2, limit_train_batches=8, limit_val_batches=1)
    model, train, val = L.ValNet(), setups.data(32), setups.data()
    loop = modelled(t, "fit(model, train, val)", model=model, train=train, val=val)
    assert "max_steps=3: training may stop inside an epoch; the loops show what runs until then." in loop.notes
    rec = run(t, "fit(model, train, val)", model=model, train=train, val=val)
    assert rec["problems"] == []
    counts = cmp.counts(rec)
    assert t.global_step == 3 and t.num_training_batches == 8
    assert counts["fit#1/train/epoch"] == 1 and counts["fit#1/train/epoch/batch"] == 3 < t.num_training_batches
    assert model.calls.count("training_step") == 3


def test_accumulation_divides_the_loss(L, tmp_path):
    """accumulate_grad_batches=2: backward gets training_step's loss / 2, and the gradient is that of loss / 2."""
    t = trainer(L, tmp_path, accumulate_grad_batches=2, limit_train_batches=4)
    model, train = L.Accumulating(), setups.data()
    loop = modelled(t, "fit(model, train)", model=model, train=train)
    text = "Lightning divides the loss by accumulate_grad_batches=2."
    steps = [(path, ev) for path, ev in loop.iter_events() if ev.name == "training_step"]
    assert [path[-1] for path, _ in steps] == ["closure", "closure"]  # accumulating, and inside optimizer_step
    assert all(ev.description.endswith(text) for _, ev in steps)
    x, y = next(iter(train))
    reference = L.Accumulating()
    reference.load_state_dict(model.state_dict())
    whole = torch.autograd.grad(torch.nn.functional.mse_loss(reference(x), y), reference.layer.weight)[0]
    rec = run(t, "fit(model, train)", model=model, train=train)
    assert rec["problems"] == []
    assert len(model.returned) == len(model.backward_losses) == 4
    for returned, passed in zip(model.returned, model.backward_losses, strict=True):
        assert torch.allclose(passed, returned / 2)
    assert torch.allclose(model.first_grad, whole / 2)  # batch 0 only accumulates: nothing was stepped before it
    plain = trainer(L, tmp_path)
    assert not any("divides the loss" in ev.description for _, ev in modelled(plain, "fit(model, train)", model=L.Net(),
                                                                                  train=train).iter_events())


# ---------------------------------------------------------------- batch counts: a limit that is a fraction is no count

SANITY = [  # (trainer settings, val batches, the sanity check's batch loop, its batches per val run, fit's val batches)
    (dict(limit_val_batches=0.25), 4, "the first batch of each val dataloader (min(num_sanity_val_steps=2, its 1 batch "
                                      "after limit_val_batches=0.25))", 1, 1),
    (dict(limit_val_batches=1.0), 4, "the first 2 batches of each val dataloader (min(num_sanity_val_steps=2, its 4 "
                                     "batches))", 2, 4),
    (dict(limit_val_batches=3, num_sanity_val_steps=-1), 4, "the first 3 batches of each val dataloader "
                                                            "(min(num_sanity_val_steps=-1, its 3 batches after "
                                                            "limit_val_batches=3))", 3, 3),
    (dict(limit_val_batches=0.5), None, "the first 2 batches of each val dataloader (num_sanity_val_steps=2), fewer if "
                                        "int(its length × 0.5) is fewer (limit_val_batches=0.5)", 2, 2),
]


@pytest.mark.parametrize(("settings", "val_batches", "text", "sanity", "validation"), SANITY,
                         ids=["fraction", "all", "int-and-all-sanity-steps", "fraction-of-a-datamodule"])
def test_the_sanity_check_says_how_many_batches_lightning_runs(settings, val_batches, text, sanity, validation, L,
                                                               tmp_path):
    """``min(num_sanity_val_steps, the val batches after limit_val_batches)`` (``_EvaluationLoop.max_batches``), not
    the limit itself: with ``limit_val_batches=0.25`` of 4 batches the real sanity check runs 1 batch, not
    "min(2, 0.25)". A counting callback proves each count; without the loaders the limit is said as a fraction."""

    class Counting(L.P.Callback):
        def __init__(self) -> None:
            self.batches = {True: 0, False: 0}  # sanity checking or not

        def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
            self.batches[trainer.sanity_checking] += 1

    class Data(L.P.LightningDataModule):
        def train_dataloader(self):
            return setups.data(16)

        def val_dataloader(self):
            return setups.data(16)

    counting = Counting()
    t = trainer(L, tmp_path, callbacks=[counting], limit_train_batches=2, **settings)
    model = L.ValNet()
    if val_batches is None:
        names, call = dict(model=model, data=Data()), "fit(model, datamodule=data)"
    else:
        names, call = dict(model=model, train=setups.data(), val=setups.data(4 * val_batches)), "fit(model, train, val)"
    loop = modelled(t, call, **names)
    every = phases(loop)
    [start] = [i for i, p in enumerate(every) if p.name == "sanity_check"]
    batch = next(p for p in every[start:] if p.name == "batch")  # depth first: the sanity check's own batch loop
    assert batch.loop == text
    if val_batches is None:  # the loaders are the DataModule's: their lengths are not known before the run
        loops = [p.loop for p in every if p.name == "batch"]
        assert loops[1:] == ["for each batch of the train dataloader, up to limit_train_batches=2",
                             "for each batch of each val dataloader, the first int(its length × 0.5) of them "
                             "(limit_val_batches=0.5)"]
    eval(f"t.{call}", {**names, "t": t})  # noqa: S307 - the test's own call
    assert counting.batches == {True: sanity, False: validation}


# ---------------------------------------------------------------- validate, test, predict


@pytest.mark.parametrize("method", ["validate", "test", "predict"])
def test_no_evaluation_loop(method, L, tmp_path):
    """limit_<stage>_batches=0: the call runs setup and teardown only, no step, no loop hook."""
    stage, limit = {"validate": ("validation", "limit_val_batches"), "test": ("test", "limit_test_batches"),
                    "predict": ("predict", "limit_predict_batches")}[method]
    t = trainer(L, tmp_path, **{limit: 0})
    model, data = L.ValNet(), setups.data()
    call = f"{method}(model, data)"
    loop = modelled(t, call, model=model, data=data)
    assert f"No {stage} loop: limit=0." in loop.notes
    rec = run(t, call, model=model, data=data)
    assert rec["problems"] == []
    step = {"validate": "validation_step", "test": "test_step", "predict": "predict_step"}[method]
    assert step not in model.calls and ran(rec, step) == []
    prefix = "validation" if method == "validate" else method
    assert ran(rec, f"on_{prefix}_start") == ran(rec, f"on_{prefix}_epoch_start") == []
    assert len(ran(rec, "setup")) == len(ran(rec, "teardown")) == 1


# ---------------------------------------------------------------- what the adapter calls itself


def test_configure_optimizers_is_read_once_then_fit_calls_it_again(L, tmp_path):
    """loopdoc calls it once (and reads the optimizer from it); fit calls it once more and uses what it returns."""
    t = trainer(L, tmp_path)
    model, train = L.Net(), setups.data()
    loop = modelled(t, "fit(model, train)", model=model, train=train)
    assert OPTIMIZERS in loop.notes and loop.learner.opt_func == "SGD"
    assert model.calls == ["configure_optimizers"]
    t.fit(model, train)
    assert model.calls.count("configure_optimizers") == 2 and model.calls[1] == "configure_optimizers"
    assert [type(o).__name__ for o in t.optimizers] == ["SGD"]


def test_configure_optimizers_that_raises_before_fit(L, tmp_path):
    """It reads self.trainer: loopdoc's call raises, fit's works and steps the scheduler the model shows as possible."""
    t = trainer(L, tmp_path, max_epochs=2)
    model, train = L.TrainerScheduled(), setups.data()
    loop = modelled(t, "fit(model, train)", model=model, train=train)
    note = ("`configure_optimizers()` raised RuntimeError when loopdoc called it to read the LR schedulers (it runs again at "
            "fit time): where `lr_scheduler_step` runs is shown as possible only.")
    assert note in loop.notes and OPTIMIZERS not in loop.notes
    with pytest.raises(RuntimeError):
        model.configure_optimizers()
    schedulers = [p for p in phases(loop) if p.name == "lr_schedulers"]
    assert [p.condition for p in schedulers] == ["if configure_optimizers returns LR schedulers (not known here)"]
    rec = run(t, "fit(model, train)", model=model, train=train)
    assert rec["problems"] == []
    assert [type(c.scheduler).__name__ for c in t.lr_scheduler_configs] == ["StepLR"]
    assert len(ran(rec, "configure_optimizers")) == 1 and len(ran(rec, "lr_scheduler_step")) == 2  # once per epoch


def test_configure_callbacks_is_read_once_and_each_call_calls_it_again(L, tmp_path):
    """loopdoc calls it once; fit and validate each call it again, and run its new objects in the places the model lists."""
    t = trainer(L, tmp_path, callbacks=[L.P.callbacks.EarlyStopping(monitor="v")])
    model, train, val = L.Configured(), setups.data(), setups.data()
    loop = modelled(t, "fit(model, train, val)", model=model, train=train, val=val)
    assert ("`configure_callbacks()` was called once to read the callbacks it returns (they replace `EarlyStopping`); each "
            "Trainer call (fit, validate, …) calls it again, so its callbacks are new objects there, of the same classes, "
            "in the same places.") in loop.notes
    assert len(model.returned_callbacks) == 1
    listed = [(c.name, c.origin) for c in loop.callbacks if c.kind == "callback"]
    assert listed == [("EarlyStopping", "configure_callbacks()"), ("Counter", "configure_callbacks()")]
    read = model.returned_callbacks[0]
    t.fit(model, train, val)
    assert len(model.returned_callbacks) == 2
    assert [type(c).__name__ for c in t.callbacks] == [name for name, _ in listed]
    assert not {id(c) for c in read} & {id(c) for c in t.callbacks}
    assert [id(c) for c in t.callbacks] == [id(c) for c in model.returned_callbacks[1]]  # fit's own call's objects
    t.validate(model, val)
    assert len(model.returned_callbacks) == 3


def test_a_custom_checkpoint(L, tmp_path):
    """A Checkpoint that is not a ModelCheckpoint saves when its own code decides; the model shows no checkpoint phase of it."""
    saves = tmp_path / "saves"
    t = trainer(L, tmp_path, callbacks=[L.EveryBatch(str(saves))], enable_checkpointing=True, limit_val_batches=1)
    model, train, val = L.ValNet(), setups.data(), setups.data()
    note = "`EveryBatch` is a custom Checkpoint: when it saves is not modelled."
    loop = modelled(t, "fit(model, train, val)", model=model, train=train, val=val)
    assert note in loop.notes
    assert isinstance(t.callbacks[0], L.P.callbacks.Checkpoint) and not isinstance(t.callbacks[0], L.P.callbacks.ModelCheckpoint)
    assert not any(p.name == "checkpoint" for p in phases(loop))
    rec = run(t, "fit(model, train, val)", model=model, train=train, val=val)
    assert sorted(os.listdir(saves)) == ["batch0.ckpt", "batch1.ckpt"]
    assert cmp.counts(rec)["fit#1/train/epoch/batch/checkpoint"] == 2  # a real save the model cannot place
    assert any("checkpoint" in p for p in rec["problems"])
    for call in ("validate(model, val)", "test(model, val)"):
        assert note in modelled(t, call, model=model, val=val).notes, call
    t.validate(model, val)
    assert "validate.ckpt" in os.listdir(saves)


def test_a_users_strategy_and_precision_plugin(L, tmp_path):
    """Their own methods run at Lightning's hooks; the model lists no handler of theirs."""
    strategy, precision = L.MyStrategy(device=torch.device("cpu")), L.MyPrecision()
    t = trainer(L, tmp_path, strategy=strategy, plugins=[precision])
    model, train = L.Net(), setups.data()
    loop = modelled(t, "fit(model, train)", model=model, train=train)
    for what, obj in (("strategy", strategy), ("precision plugin", precision)):
        assert f"The {what} is `{type(obj).__qualname__}`, not Lightning's: its own hooks are not listed." in loop.notes
    L.MyStrategy.ran.clear()
    L.MyPrecision.ran.clear()
    t.fit(model, train)
    assert t.strategy is strategy and t.precision_plugin is precision
    assert L.MyStrategy.ran.count("on_train_batch_start") == L.MyStrategy.ran.count("batch_to_device") == 2
    assert L.MyPrecision.ran == ["pre_backward", "pre_backward"]
    functions = {h.function for _, ev in loop.iter_events() for h in ev.handlers}
    assert not any(f.startswith(("MyStrategy", "MyPrecision")) for f in functions)
    assert {c.name for c in loop.callbacks} == {"Callback", "Net"}


# ---------------------------------------------------------------- not shown


def test_on_exception_reaches_the_callbacks_then_the_datamodule(L, tmp_path):
    """A raising training_step: Lightning calls on_exception on each callback in order, then the DataModule; the model has no such event."""
    log: list = []
    t = trainer(L, tmp_path, callbacks=[L.Exceptions("first", log), L.Exceptions("second", log)])
    model, dm = L.Raising(), L.ExceptionDM(log)
    loop = modelled(t, "fit(model, datamodule=dm)", model=model, dm=dm)
    assert NOT_SHOWN in loop.notes and "on_exception" not in events(loop)
    with pytest.raises(RuntimeError, match="boom"):
        t.fit(model, datamodule=dm)
    assert [name for name, _ in log] == ["first", "second", "datamodule"]
    assert all(str(e) == "boom" for _, e in log)


def test_loading_a_checkpoint_and_reloading_dataloaders_are_not_shown(L, tmp_path):
    """ckpt_path: refused, and a real resume runs on_load_checkpoint; reload_dataloaders_every_n_epochs=1: the model shows
    train_dataloader once, the run calls it every epoch."""
    t = trainer(L, tmp_path, max_epochs=2, reload_dataloaders_every_n_epochs=1)
    model = L.Reloading()
    loop = modelled(t, "fit(model)", model=model)
    assert NOT_SHOWN in loop.notes
    assert events(loop).count("train_dataloader") == 1 and "on_load_checkpoint" not in events(loop)
    t.fit(model)
    assert model.calls.count("train_dataloader") == 2
    path = str(tmp_path / "resume.ckpt")
    t.save_checkpoint(path)
    again = trainer(L, tmp_path, max_epochs=3)
    with pytest.raises(UsageError, match="ckpt_path is not modelled"):
        modelled(again, "fit(model, ckpt_path=path)", model=model, path=path)
    model.calls.clear()
    again.fit(model, ckpt_path=path)
    assert model.calls.count("on_load_checkpoint") == 1
