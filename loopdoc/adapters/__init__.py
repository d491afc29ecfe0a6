"""Framework adapters: everything that knows a training framework, behind one protocol (``base.Adapter``).

``registry`` finds them (loopdoc's own and the entry-point group ``loopdoc.frameworks``);
``introspect`` holds the introspection every adapter shares; ``fastai`` is fastai's adapter.
No module outside this package imports a framework.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .base import Adapter
    from .registry import adapter, adapter_for, adapters, wording
    from .words import Wording

__all__ = ["Adapter", "Wording", "adapter", "adapter_for", "adapters", "wording"]
_HOMES = {"Adapter": "base", "Wording": "words", "adapter": "registry", "adapter_for": "registry",
          "adapters": "registry", "wording": "registry"}


def __getattr__(name: str) -> Any:
    """The names of ``__all__``, imported on first use: importing a framework's ``wording`` module (all that
    rendering a saved model needs) runs this package's ``__init__``, which must not import the protocol.

    Raises:
        AttributeError: a name not in ``__all__``.
    """
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
