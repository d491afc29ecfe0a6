"""Framework adapters: everything that knows a training framework, behind one protocol (``base.Adapter``).

``registry`` finds them (loopdoc's own and the entry-point group ``loopdoc.frameworks``);
``introspect`` holds the introspection every adapter shares; ``fastai`` is fastai's adapter.
No module outside this package imports a framework.
"""

from .base import Adapter, Wording
from .registry import adapter, adapter_for, adapters, wording

__all__ = ["Adapter", "Wording", "adapter", "adapter_for", "adapters", "wording"]
