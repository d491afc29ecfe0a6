"""A LightningDataModule, callbacks from `configure_callbacks()`, gradient accumulation and an LR scheduler.

    loopdoc render examples/lightning_datamodule.py -o loop.html
    loopdoc render examples/lightning_datamodule.py --call "validate(model, datamodule=dm)" -o validate.html

What to look for in the loop:

- the DataModule's hooks (`prepare_data`, `setup`, the `*_dataloader` hooks, `teardown`), and the batch
  transfer hooks going to the DataModule where it defines them and to the LightningModule where only it does;
- `configure_callbacks()` returns an EarlyStopping and a `BatchCounter`, marked as coming from there; its
  EarlyStopping replaces none here, the Trainer has none;
- `accumulate_grad_batches=2`: every other batch runs the closure directly (no optimizer step), the
  zero-grad hooks run on the first batch of each window, and the epoch's last batch always steps;
- `StepLR` steps once per epoch, on the epoch's last batch.
"""

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import EarlyStopping
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class RandomData(pl.LightningDataModule):
    """Random regression data, made in `setup` (nothing is downloaded)."""

    def __init__(self, n: int = 48, batch_size: int = 8):
        super().__init__()
        self.n, self.batch_size = n, batch_size

    def prepare_data(self):
        "Nothing to download: the data is random."

    def setup(self, stage):
        "Make the tensors for this stage."
        g = torch.Generator().manual_seed(0)
        self.train = TensorDataset(torch.randn(self.n, 4, generator=g), torch.randn(self.n, 1, generator=g))
        self.valid = TensorDataset(torch.randn(16, 4, generator=g), torch.randn(16, 1, generator=g))

    def train_dataloader(self):
        return DataLoader(self.train, batch_size=self.batch_size)

    def val_dataloader(self):
        return DataLoader(self.valid, batch_size=self.batch_size)

    def on_before_batch_transfer(self, batch, dataloader_idx):
        "Make sure both tensors are float32 before they move."
        return [t.float() for t in batch]


class BatchCounter(pl.Callback):
    """Count the training batches of each epoch."""

    def on_train_epoch_start(self, trainer, pl_module):
        self.count = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.count += 1


class Regressor(pl.LightningModule):
    """A linear regression that brings its own callbacks."""

    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(4, 1)

    def forward(self, x):
        return self.layer(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.mse_loss(self(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", nn.functional.mse_loss(self(x), y))

    def on_after_batch_transfer(self, batch, dataloader_idx):
        "The DataModule does not define this one, so the LightningModule's runs."
        return batch

    def optimizer_zero_grad(self, epoch, batch_idx, optimizer):
        "Set the gradients to None rather than zero."
        optimizer.zero_grad(set_to_none=True)

    def configure_callbacks(self):
        "Callbacks this model always wants, whatever the Trainer was given."
        return [EarlyStopping(monitor="val_loss", patience=3), BatchCounter()]

    def configure_optimizers(self):
        "SGD, with the learning rate halved every epoch."
        optimizer = torch.optim.SGD(self.parameters(), lr=0.1)
        return {"optimizer": optimizer, "lr_scheduler": torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)}


model = Regressor()
dm = RandomData()
trainer = pl.Trainer(max_epochs=4, accelerator="cpu", devices=1, accumulate_grad_batches=2, log_every_n_steps=1,
                     enable_progress_bar=False)

if __name__ == "__main__":
    trainer.fit(model, datamodule=dm)
