"""Finding framework adapters: loopdoc's own, and any a package declares in the entry-point group ``loopdoc.frameworks``.

An entry point's name is the framework's name (``Loop.framework.name``) and its value an
object satisfying ``loopdoc.adapters.base.Adapter``, e.g. in a package's ``pyproject.toml``::

    [project.entry-points."loopdoc.frameworks"]
    mytrainer = "loopdoc_mytrainer:ADAPTER"

loopdoc declares its own adapters the same way; ``BUILTIN`` lets it find those by name without
reading every installed package's metadata (which costs milliseconds that rendering a saved
model cannot spare). Loading an adapter imports its package, never its framework.
"""

from __future__ import annotations

import functools
import importlib
from typing import TYPE_CHECKING, Any

from .words import Wording

if TYPE_CHECKING:  # the protocol is imported where it is checked: rendering a saved model needs only the wording
    from .base import Adapter

GROUP = "loopdoc.frameworks"
BUILTIN = {"fastai": "loopdoc.adapters.fastai:ADAPTER", "lightning": "loopdoc.adapters.lightning:ADAPTER",
           "transformers": "loopdoc.adapters.transformers:ADAPTER"}
BUILTIN_WORDING = {"fastai": "loopdoc.adapters.fastai.wording:WORDING", "lightning": "loopdoc.adapters.lightning.wording:WORDING",
                   "transformers": "loopdoc.adapters.transformers.wording:WORDING"}
"""Where a built-in adapter's ``Wording`` is, so that rendering a saved model imports that module alone (an
adapter package's ``__init__`` imports its adapter lazily); it is the same object as the adapter's ``wording``."""


def _load(target: str) -> Adapter:
    module, _, attr = target.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


@functools.lru_cache(maxsize=1)
def adapters() -> tuple[Adapter, ...]:
    """Every adapter: loopdoc's own first (in ``BUILTIN`` order), then those of the entry-point group, by name.

    An entry point whose name is a built-in's, or that fails to load, is skipped (a broken
    third-party package must not stop loopdoc documenting fastai).

    Returns:
        The adapters, one per framework name.
    """
    from importlib.metadata import entry_points

    from .base import Adapter

    found = {name: _load(target) for name, target in BUILTIN.items()}
    for ep in sorted(entry_points(group=GROUP), key=lambda ep: ep.name):
        if ep.name in found:
            continue
        try:
            adapter = ep.load()
        except Exception:  # a broken plug-in
            continue
        if isinstance(adapter, Adapter):
            found[ep.name] = adapter
    return tuple(found.values())


def adapter(name: str) -> Adapter | None:
    """The adapter of the framework ``name`` (``Loop.framework.name``), or ``None`` when none is installed.

    Args:
        name: e.g. ``"fastai"``.

    Returns:
        The adapter; a built-in one is found without reading package metadata.
    """
    if name in BUILTIN:
        return _load(BUILTIN[name])
    return next((a for a in adapters() if a.name == name), None)


def adapter_for(obj: Any) -> Adapter | None:
    """The adapter whose trainer ``obj`` is, or ``None``.

    Args:
        obj: any object (a fastai ``Learner``, …).

    Returns:
        The first adapter (``adapters()`` order) whose ``is_trainer(obj)`` is true.
    """
    return next((a for a in adapters() if _is_trainer(a, obj)), None)


def _is_trainer(adapter: Adapter, obj: Any) -> bool:
    try:
        return bool(adapter.is_trainer(obj))
    except Exception:  # a user's object whose __class__ or isinstance check raises
        return False


def wording(name: str) -> Wording:
    """The ``Wording`` of the framework ``name``; a neutral one (``Wording(name)``) when no adapter is installed.

    Args:
        name: ``Loop.framework.name`` of a model (possibly a saved one from another machine).

    Returns:
        The wording.
    """
    if name in BUILTIN_WORDING:
        words: Wording = _load(BUILTIN_WORDING[name])  # type: ignore[assignment]
        return words
    found = adapter(name)
    return found.wording if found is not None else Wording(name)
