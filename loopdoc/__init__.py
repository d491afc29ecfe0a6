"""loopdoc: make a callback-driven training loop legible and publishable.

Importing this package imports neither torch nor fastai (``loopdoc.fastai`` does,
on purpose). Public API:

- ``loop(learn)``: the ``Loop`` model of a live fastai ``Learner``;
- ``load_loop(spec)``: the ``Loop`` of ``learner.py[:ATTR]``, ``package.module[:ATTR]``
  or a saved ``loop.json``;
- ``render(loop, fmt)``: the model as ``html``, ``md``, ``txt`` or ``json`` text.
"""

from __future__ import annotations

from typing import Any

from .errors import LoopdocError
from .model import SCHEMA_VERSION, Loop, load_json
from .render import render

__version__ = "0.1.0"
__all__ = ["SCHEMA_VERSION", "Loop", "LoopdocError", "load_json", "load_loop", "loop", "render"]


def loop(learn: Any, *, loaded_from: str = "<learner>", cbs: Any = None) -> Loop:
    """Return the ``Loop`` of ``learn.fit`` without running or changing ``learn``.

    Args:
        learn: a ``fastai.learner.Learner``.
        loaded_from: how to name its origin in the model.
        cbs: a ``Callback`` instance or class, or a list of them, to list as if
            passed to ``fit(cbs=...)``; classes are instantiated with no arguments.
            ``learn`` is not modified.

    Raises:
        TypeError: an item of ``cbs`` is neither a ``Callback`` nor a ``Callback`` class.
    """
    from .extractors.fastai import as_callbacks, extract

    return extract(learn, loaded_from=loaded_from, extra_cbs=as_callbacks(cbs))


def load_loop(spec: str) -> Loop:
    """Return the ``Loop`` a spec names.

    Args:
        spec: a saved model (``*.json``; needs neither torch nor fastai), or
            ``PATH.py[:ATTR]`` / ``package.module[:ATTR]`` naming a ``Learner``
            (see ``loopdoc.load.load``).

    Raises:
        LoopdocError: any failure, with a one-line message naming the file.
    """
    if spec.endswith(".json"):
        return load_json(spec)
    from .load import load

    loaded = load(spec)
    return loop(loaded.learner, loaded_from=loaded.loaded_from)
