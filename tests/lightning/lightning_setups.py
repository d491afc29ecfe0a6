"""Small, CPU-only Lightning setups for the truth tests, written once for either package.

Ported from the run-verified prototype's ``/work/scratch/lightning/setups.py``.

``build(name, P, tmp)`` returns ``(trainer, model, call, kwargs)``: run ``getattr(trainer, call)(model, **kwargs)``.
``P`` is the imported package (``pytorch_lightning`` or ``lightning.pytorch``); every path the run may
write to is under ``tmp``.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch.utils.data import DataLoader, TensorDataset


def data(n: int = 16, bs: int = 4) -> DataLoader:
    g = torch.Generator().manual_seed(0)
    return DataLoader(TensorDataset(torch.randn(n, 4, generator=g), torch.randn(n, 1, generator=g)), batch_size=bs)


def classes(P: Any) -> dict[str, type]:
    """The test classes for package ``P`` (cached on the package module)."""
    cache = getattr(P, "_loopdoc_test_classes", None)
    if cache is not None:
        return cache

    class Plain(P.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(4, 1)

        def forward(self, x):
            if isinstance(x, (list, tuple)):  # the default predict_step passes the whole batch
                x = x[0]
            return self.layer(x)

        def training_step(self, batch, batch_idx):
            x, y = batch
            return torch.nn.functional.mse_loss(self(x), y)

        def validation_step(self, batch, batch_idx):
            x, y = batch
            self.log("v", torch.nn.functional.mse_loss(self(x), y))

        def test_step(self, batch, batch_idx):
            x, y = batch
            self.log("t", torch.nn.functional.mse_loss(self(x), y))

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01)

    class Hooked(Plain):
        """Overrides a spread of module hooks, some calling super()."""

        def on_fit_start(self):
            pass

        def on_train_epoch_end(self):
            pass

        def on_before_backward(self, loss):
            pass

        def optimizer_step(self, epoch, batch_idx, optimizer, optimizer_closure=None):
            super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)

        def on_after_batch_transfer(self, batch, dataloader_idx):
            return batch

        def on_validation_model_train(self):
            super().on_validation_model_train()

        def on_save_checkpoint(self, checkpoint):
            checkpoint["extra"] = 1

        def on_validation_epoch_end(self):
            pass

        def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None):
            self.clip_gradients(optimizer, gradient_clip_val=gradient_clip_val, gradient_clip_algorithm=gradient_clip_algorithm)

        def on_test_epoch_start(self):
            pass

        @torch.no_grad()
        def test_step(self, batch, batch_idx):  # a decorated step: the code entered first is torch's wrapper
            return super().test_step(batch, batch_idx)

        def predict_step(self, batch, batch_idx):
            return self(batch[0])

        def on_predict_batch_end(self, outputs, batch, batch_idx, dataloader_idx=0):
            pass

    class WithCallbacks(Hooked):
        """configure_callbacks: replaces the trainer's EarlyStopping (same type) and adds a callback."""

        def configure_callbacks(self):
            return [P.callbacks.EarlyStopping(monitor="v", patience=1000), Counter()]

    class Manual(Plain):
        def __init__(self) -> None:
            super().__init__()
            self.automatic_optimization = False

        def training_step(self, batch, batch_idx):
            opt = self.optimizers()
            x, y = batch
            loss = torch.nn.functional.mse_loss(self(x), y)
            opt.zero_grad()
            self.manual_backward(loss)
            opt.step()
            return loss

        def on_after_backward(self):
            pass

    class Scheduled(Plain):
        def configure_optimizers(self):
            opt = torch.optim.SGD(self.parameters(), lr=0.01)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": torch.optim.lr_scheduler.StepLR(opt, 1),
                                                       "interval": "epoch"}}

    class StepScheduled(Plain):
        def configure_optimizers(self):
            opt = torch.optim.SGD(self.parameters(), lr=0.01)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": torch.optim.lr_scheduler.StepLR(opt, 1),
                                                       "interval": "step", "frequency": 2}}

        def lr_scheduler_step(self, scheduler, metric):
            scheduler.step()

    class TrainerScheduled(Plain):
        """configure_optimizers reads self.trainer: the static model cannot call it before fit."""

        def configure_optimizers(self):
            opt = torch.optim.SGD(self.parameters(), lr=0.01)
            return [opt], [torch.optim.lr_scheduler.StepLR(opt, self.trainer.max_epochs)]

    class Counter(P.Callback):
        def __init__(self) -> None:
            self.n = 0

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            self.n += 1

        def on_train_epoch_end(self, trainer, pl_module):
            pass

        def setup(self, trainer, pl_module, stage):
            pass

    class Loud(P.Callback):
        """Many hooks, plus removed 1.x names that Lightning 2.x never calls."""

        def on_fit_start(self, trainer, pl_module):
            pass

        def on_sanity_check_start(self, trainer, pl_module):
            pass

        def on_train_epoch_start(self, trainer, pl_module):
            pass

        def on_before_zero_grad(self, trainer, pl_module, optimizer):
            pass

        def on_after_backward(self, trainer, pl_module):
            pass

        def on_before_optimizer_step(self, trainer, pl_module, optimizer):
            pass

        def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
            pass

        def on_validation_end(self, trainer, pl_module):
            pass

        def on_save_checkpoint(self, trainer, pl_module, checkpoint):
            pass

        def state_dict(self):
            return {"loud": 1}

        def on_test_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
            pass

        def on_predict_start(self, trainer, pl_module):
            pass

        def teardown(self, trainer, pl_module, stage):
            pass

        # removed in 2.0: silently never called
        def on_epoch_start(self, trainer, pl_module):
            raise AssertionError("removed hook called")

        def on_batch_end(self, trainer, pl_module):
            raise AssertionError("removed hook called")

        def on_init_start(self, trainer):
            raise AssertionError("removed hook called")

        def on_pretrain_routine_start(self, trainer, pl_module):
            raise AssertionError("removed hook called")

    class LoudChild(Loud):
        def on_train_epoch_start(self, trainer, pl_module):
            super().on_train_epoch_start(trainer, pl_module)

        @property
        def state_key(self):
            return self._generate_state_key(child=True)

    class DM(P.LightningDataModule):
        def __init__(self, n: int = 12) -> None:
            super().__init__()
            self.n = n

        def prepare_data(self):
            pass

        def setup(self, stage):
            self.ds = data(self.n).dataset

        def train_dataloader(self):
            return DataLoader(self.ds, batch_size=4)

        def val_dataloader(self):
            return DataLoader(self.ds, batch_size=4)

        def test_dataloader(self):
            return DataLoader(self.ds, batch_size=4)

        def predict_dataloader(self):
            return DataLoader(self.ds, batch_size=4)

        def on_before_batch_transfer(self, batch, dataloader_idx):
            return batch

        def transfer_batch_to_device(self, batch, device, dataloader_idx):
            return [t.to(device) for t in batch]

        def teardown(self, stage):
            pass

        def state_dict(self):
            return {"n": self.n}

    cache = {k: v for k, v in locals().items() if isinstance(v, type)}
    P._loopdoc_test_classes = cache
    return cache


SETUPS = ("defaults", "custom", "datamodule_accumulate", "no_sanity", "sanity2", "manual", "validate", "test",
          "predict", "val_interval", "every_2_epochs", "clip_and_scheduler", "step_scheduler", "scheduler_unknown",
          "early_stop", "dm_no_sanity", "dm_every_2_epochs")


def build(name: str, P: Any, tmp: str) -> tuple[Any, Any, str, dict]:
    C = classes(P)
    cb = P.callbacks
    common = dict(default_root_dir=tmp, accelerator="cpu", devices=1, max_epochs=1, limit_train_batches=2,
                  limit_val_batches=2, enable_model_summary=True)
    dl = data()
    if name == "defaults":
        return P.Trainer(**common), C["Plain"](), "fit", dict(train_dataloaders=dl, val_dataloaders=data())
    if name == "custom":
        callbacks = [C["Loud"](), C["Counter"](), cb.EarlyStopping(monitor="v", patience=1000),
                     cb.LambdaCallback(on_train_batch_start=lambda trainer, pl_module, batch, batch_idx: None),
                     cb.ModelCheckpoint(dirpath=os.path.join(tmp, "ckpt"), monitor="v", save_top_k=-1, save_last=True),
                     C["LoudChild"](), cb.TQDMProgressBar()]
        t = P.Trainer(**{**common, "max_epochs": 2}, callbacks=callbacks, logger=P.loggers.CSVLogger(tmp))
        return t, C["Hooked"](), "fit", dict(train_dataloaders=dl, val_dataloaders=data())
    if name == "datamodule_accumulate":
        t = P.Trainer(**{**common, "limit_train_batches": 3, "limit_val_batches": 1}, accumulate_grad_batches=2,
                      callbacks=[cb.EarlyStopping(monitor="v", patience=5), C["Loud"]()], logger=False,
                      enable_progress_bar=False)
        return t, C["WithCallbacks"](), "fit", dict(datamodule=C["DM"]())
    if name in ("no_sanity", "sanity2"):
        t = P.Trainer(**common, num_sanity_val_steps=0 if name == "no_sanity" else 2, logger=False,
                      callbacks=[C["Loud"]()])
        return t, C["Hooked"](), "fit", dict(train_dataloaders=dl, val_dataloaders=data())
    if name == "manual":
        t = P.Trainer(**common, logger=False, callbacks=[C["Loud"](), C["Counter"]()])
        return t, C["Manual"](), "fit", dict(train_dataloaders=dl, val_dataloaders=data())
    if name == "validate":
        t = P.Trainer(**common, logger=False, callbacks=[C["Loud"](), cb.ModelCheckpoint(dirpath=os.path.join(tmp, "c"))])
        return t, C["Hooked"](), "validate", dict(dataloaders=dl)
    if name == "test":
        t = P.Trainer(**{**common, "limit_test_batches": 2}, logger=False, callbacks=[C["Loud"]()])
        return t, C["Hooked"](), "test", dict(datamodule=C["DM"]())
    if name == "predict":
        t = P.Trainer(**{**common, "limit_predict_batches": 2}, logger=False, callbacks=[C["Loud"]()])
        return t, C["Hooked"](), "predict", dict(dataloaders=dl)
    if name == "val_interval":
        t = P.Trainer(**{**common, "max_epochs": 2, "limit_train_batches": 4, "limit_val_batches": 1},
                      val_check_interval=0.5, logger=False, callbacks=[C["Loud"]()])
        return t, C["Hooked"](), "fit", dict(train_dataloaders=dl, val_dataloaders=data())
    if name == "every_2_epochs":
        t = P.Trainer(**{**common, "max_epochs": 2, "limit_val_batches": 1}, check_val_every_n_epoch=2,
                      num_sanity_val_steps=0, logger=False, callbacks=[C["Loud"]()])
        return t, C["Hooked"](), "fit", dict(train_dataloaders=dl, val_dataloaders=data())
    if name == "clip_and_scheduler":
        t = P.Trainer(**{**common, "max_epochs": 2}, gradient_clip_val=0.5, gradient_clip_algorithm="value",
                      logger=False, callbacks=[C["Loud"]()], enable_checkpointing=False)
        return t, C["Scheduled"](), "fit", dict(train_dataloaders=dl, val_dataloaders=data())
    if name == "step_scheduler":
        t = P.Trainer(**{**common, "limit_train_batches": 3}, accumulate_grad_batches=1, logger=False,
                      enable_checkpointing=False, enable_progress_bar=False)
        return t, C["StepScheduled"](), "fit", dict(train_dataloaders=dl, val_dataloaders=data())
    if name == "scheduler_unknown":
        t = P.Trainer(**common, logger=False, enable_progress_bar=False, num_sanity_val_steps=0)
        return t, C["TrainerScheduled"](), "fit", dict(train_dataloaders=dl, val_dataloaders=data())
    if name == "early_stop":
        # stops at the first check (v < 1e9), mid-epoch: validation after batch 2 of 4, max_epochs=3 never reached
        t = P.Trainer(**{**common, "max_epochs": 3, "limit_train_batches": 4, "limit_val_batches": 1},
                      val_check_interval=0.5, logger=False, num_sanity_val_steps=0,
                      callbacks=[cb.EarlyStopping(monitor="v", stopping_threshold=1e9), C["Loud"]()])
        return t, C["Hooked"](), "fit", dict(train_dataloaders=dl, val_dataloaders=data())
    if name in ("dm_no_sanity", "dm_every_2_epochs"):
        # where val_dataloader() fires without a sanity check: before on_train_start (validation due in epoch 0)
        # or in the first validation run (check_val_every_n_epoch=2)
        cve = 2 if name == "dm_every_2_epochs" else 1
        t = P.Trainer(**{**common, "max_epochs": 2, "limit_val_batches": 1}, check_val_every_n_epoch=cve,
                      num_sanity_val_steps=0, logger=False, enable_progress_bar=False)
        return t, C["Plain"](), "fit", dict(datamodule=C["DM"]())
    raise KeyError(name)
