"""Hugging Face transformers' adapter: the ``Trainer`` read into loopdoc's loop model (transformers 5.x).

``ADAPTER`` is what ``loopdoc.adapters.registry`` finds (entry point ``loopdoc.frameworks``:
``transformers``). Modules: ``extract`` (the static model), ``plan`` (the numbers of a run and
DefaultFlowCallback's schedule), ``flows`` (the control flags as data flow), ``calls`` (``--call``),
``recorder`` (``loopdoc trace``), ``creation`` (``on_init_end`` observed, and ``output_dir`` left
unwritten, while loading), ``wording`` (event descriptions, names that are not events,
EarlyStoppingCallback's failures). Importing this package imports no transformers.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ADAPTER", "TransformersAdapter"]


def __getattr__(name: str) -> Any:
    """``ADAPTER`` and ``TransformersAdapter``, imported from ``.adapter`` on first use (PEP 562), so that reading
    ``.wording`` alone (rendering a saved model) imports nothing else of the adapter."""
    if name in __all__:
        from . import adapter

        return getattr(adapter, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
