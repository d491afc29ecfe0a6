"""PyTorch Lightning's adapter: a ``Trainer`` call read into loopdoc's loop model (Lightning 2.6).

``ADAPTER`` is what ``loopdoc.adapters.registry`` finds (entry point ``loopdoc.frameworks``:
``lightning``). Modules: ``lib`` (the two packages, ``pytorch_lightning`` and ``lightning.pytorch``,
and whose code a hook runs), ``calls`` (``--call`` and the default call), ``extract`` (the static
model), ``recorder`` and ``outputs`` (``loopdoc trace``), ``creation`` (the ``callbacks=`` a Trainer
was built with), ``wording`` (hook descriptions, Lightning's defaults, removed 1.x hooks), ``facts`` and
``rules`` (``loopdoc check``'s Lightning facts and rules). Importing this package imports no Lightning, and not
even ``adapter`` until ``ADAPTER`` is asked for (``loopdoc.adapters.registry.wording`` imports ``wording`` alone to
render a saved model).
"""

from __future__ import annotations

from typing import Any

__all__ = ["ADAPTER", "LightningAdapter"]


def __getattr__(name: str) -> Any:
    """``ADAPTER`` and ``LightningAdapter``, imported from ``.adapter`` on first use (PEP 562)."""
    if name in __all__:
        from . import adapter

        return getattr(adapter, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
