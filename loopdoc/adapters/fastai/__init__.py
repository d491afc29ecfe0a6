"""fastai's adapter: the ``Learner`` read into loopdoc's loop model (fastai 2.8).

``ADAPTER`` is what ``loopdoc.adapters.registry`` finds (entry point ``loopdoc.frameworks``:
``fastai``). Modules: ``extract`` (the static model), ``calls`` (``--call`` dry runs),
``recorder`` (``loopdoc trace``), ``creation`` (``after_create`` observed while loading),
``pickles`` (``learn.export()`` files), ``wording`` (event descriptions and labels),
``notebook`` (``Learner.show_training_loop``), ``facts`` and ``rules`` (``loopdoc check``'s facts and
fastai's own rules). Importing this package imports no fastai, and not even ``adapter`` until ``ADAPTER`` is
asked for (``loopdoc.adapters.registry.wording`` imports ``wording`` alone to render a saved model).
"""

from __future__ import annotations

from typing import Any

__all__ = ["ADAPTER", "FastaiAdapter"]


def __getattr__(name: str) -> Any:
    """``ADAPTER`` and ``FastaiAdapter``, imported from ``.adapter`` on first use (PEP 562)."""
    if name in __all__:
        from . import adapter

        return getattr(adapter, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
