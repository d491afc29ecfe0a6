"""A Hugging Face Trainer with the defaults: a tiny regression model, in-memory data, no callbacks of its own.

    loopdoc render examples/hf_defaults.py -o loop.html

Loading this file for loopdoc builds the Trainer and nothing else: no training, no download,
and output_dir ("hf_defaults_output", relative to the working directory) is not created.
`python examples/hf_defaults.py --train` trains it (3 epochs of 2 update steps; the default
save_strategy="steps" writes hf_defaults_output/checkpoint-6 at the last step).
"""

import sys

import torch
from transformers import Trainer, TrainingArguments


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

    def __init__(self, n):
        self.x = torch.linspace(0, 1, 2 * n).reshape(n, 2)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"x": self.x[i], "labels": 2 * self.x[i, 0] - self.x[i, 1]}


trainer = Trainer(
    model=TinyRegressor(),
    args=TrainingArguments(output_dir="hf_defaults_output"),
    train_dataset=Points(16),
)

if __name__ == "__main__" and "--train" in sys.argv:
    trainer.train()
