"""Lightning with hand-written callbacks, EarlyStopping, ModelCheckpoint and LightningModule hooks.

    loopdoc render examples/lightning_callbacks.py -o loop.html
    loopdoc trace examples/lightning_callbacks.py --batches 2 --diff-static

Written for `lightning.pytorch` (the `lightning` package); `pytorch_lightning` works the same.
What to look for in the loop:

- `EarlyStopping` is listed first in `callbacks=`, yet at `on_train_epoch_end` it runs after the
  LightningModule: Lightning calls the monitoring callbacks (EarlyStopping, checkpoints) last there;
- `ModelCheckpoint` moves to the end of the callback list and saves inside its own
  `on_train_epoch_end`, so `state_dict` and `on_save_checkpoint` run there;
- `GradNormLogger` inherits its hooks from `GradientWatcher` ("inherited from");
- the `LambdaCallback` hook is an instance attribute, not a method;
- `LegacyHooks.on_epoch_end` is a Lightning 1.x hook name: 2.x never calls it, so it is nowhere.
"""

import lightning.pytorch as L
import torch
from lightning.pytorch.callbacks import EarlyStopping, LambdaCallback, ModelCheckpoint
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class GradientWatcher(L.Callback):
    """Watch the gradients of every step.

    Keeps the largest gradient norm seen, so a review can spot exploding gradients.
    """

    def on_fit_start(self, trainer, pl_module):
        "Reset the maximum."
        self.max_norm = 0.0

    def on_after_backward(self, trainer, pl_module):
        "Remember the largest gradient norm."
        norms = [p.grad.norm() for p in pl_module.parameters() if p.grad is not None]
        if norms:
            self.max_norm = max(self.max_norm, float(torch.stack(norms).norm()))


class GradNormLogger(GradientWatcher):
    """Like `GradientWatcher`, and logs the norm before each optimizer step."""

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        "Log the maximum so far."
        pl_module.log("max_grad_norm", self.max_norm)


class EpochTimer(L.Callback):
    """Time each training epoch."""

    def on_train_epoch_start(self, trainer, pl_module):
        "Start the clock."
        import time

        self.start = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module):
        "Stop the clock."
        import time

        self.seconds = time.perf_counter() - self.start

    def state_dict(self):
        "The last epoch's time goes into checkpoints."
        return {"seconds": getattr(self, "seconds", None)}


class LegacyHooks(L.Callback):
    """Written for Lightning 1.x: `on_epoch_end` was removed in 1.8 and is never called."""

    def on_epoch_end(self, trainer, pl_module):
        "Never called by Lightning 2.x."
        raise AssertionError("unreachable")

    def on_validation_epoch_end(self, trainer, pl_module):
        "The 2.x hook: called after each validation epoch."


class Regressor(L.LightningModule):
    """A small regression network with hooks of its own."""

    def __init__(self, lr: float = 0.05):
        super().__init__()
        self.lr = lr
        self.net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        "Mean squared error on one batch."
        x, y = batch
        loss = nn.functional.mse_loss(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        "Log the validation loss, which EarlyStopping and ModelCheckpoint monitor."
        x, y = batch
        self.log("val_loss", nn.functional.mse_loss(self(x), y))

    def on_train_epoch_end(self):
        "Log the learning rate at the end of each epoch."
        self.log("lr", self.optimizers().param_groups[0]["lr"])

    def on_before_optimizer_step(self, optimizer):
        "Runs after the callbacks' on_before_optimizer_step."

    def on_save_checkpoint(self, checkpoint):
        "Store the learning rate in every checkpoint."
        checkpoint["lr"] = self.lr

    def configure_optimizers(self):
        "Adam, no scheduler."
        return torch.optim.Adam(self.parameters(), lr=self.lr)


def loader(n: int, seed: int) -> DataLoader:
    g = torch.Generator().manual_seed(seed)
    return DataLoader(TensorDataset(torch.randn(n, 4, generator=g), torch.randn(n, 1, generator=g)), batch_size=8)


model = Regressor()
train_dl = loader(64, 0)
val_dl = loader(32, 1)
trainer = L.Trainer(
    max_epochs=5,
    accelerator="cpu",
    devices=1,
    log_every_n_steps=1,
    gradient_clip_val=1.0,
    callbacks=[
        EarlyStopping(monitor="val_loss", patience=2),
        ModelCheckpoint(monitor="val_loss", save_top_k=2, save_last=True),
        GradNormLogger(),
        EpochTimer(),
        LambdaCallback(on_train_batch_start=lambda trainer, pl_module, batch, batch_idx: None),
        LegacyHooks(),
    ],
)

if __name__ == "__main__":
    trainer.fit(model, train_dl, val_dl)
