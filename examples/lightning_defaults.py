"""The plain Lightning loop: a tiny LightningModule, random tensors, a Trainer with its default callbacks.

    loopdoc render examples/lightning_defaults.py -o loop.html
    loopdoc trace examples/lightning_defaults.py --batches 2

The Trainer keeps its defaults: a ModelCheckpoint, a progress bar (RichProgressBar when
`rich` is installed, else TQDMProgressBar) and a model summary. Nothing is trained or
written until `trainer.fit(model, train_dl, val_dl)` runs.
"""

import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class Regressor(pl.LightningModule):
    """A linear regression on four random features."""

    def __init__(self, lr: float = 0.05):
        super().__init__()
        self.lr = lr
        self.layer = nn.Linear(4, 1)

    def forward(self, x):
        return self.layer(x)

    def training_step(self, batch, batch_idx):
        "Mean squared error on one batch."
        x, y = batch
        loss = nn.functional.mse_loss(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        "Log the validation loss."
        x, y = batch
        self.log("val_loss", nn.functional.mse_loss(self(x), y))

    def configure_optimizers(self):
        "Plain SGD."
        return torch.optim.SGD(self.parameters(), lr=self.lr)


def loader(n: int, seed: int) -> DataLoader:
    g = torch.Generator().manual_seed(seed)
    return DataLoader(TensorDataset(torch.randn(n, 4, generator=g), torch.randn(n, 1, generator=g)), batch_size=8)


model = Regressor()
train_dl = loader(64, 0)
val_dl = loader(32, 1)
trainer = pl.Trainer(max_epochs=3, accelerator="cpu", devices=1, log_every_n_steps=1)

if __name__ == "__main__":
    trainer.fit(model, train_dl, val_dl)
