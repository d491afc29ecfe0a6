"""PyTorch Lightning's adapter: a ``Trainer`` call read into loopdoc's loop model (Lightning 2.6).

``ADAPTER`` is what ``loopdoc.adapters.registry`` finds (entry point ``loopdoc.frameworks``:
``lightning``). Modules: ``lib`` (the two packages, ``pytorch_lightning`` and ``lightning.pytorch``,
and whose code a hook runs), ``calls`` (``--call`` and the default call), ``extract`` (the static
model), ``recorder`` and ``outputs`` (``loopdoc trace``), ``creation`` (the ``callbacks=`` a Trainer
was built with), ``wording`` (hook descriptions, Lightning's defaults, removed 1.x hooks).
Importing this package imports no Lightning.
"""

from .adapter import ADAPTER, LightningAdapter

__all__ = ["ADAPTER", "LightningAdapter"]
