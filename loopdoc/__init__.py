"""loopdoc: make a callback-driven training loop legible and publishable.

Importing this package imports neither torch nor fastai (``loopdoc.fastai`` does,
on purpose). Public API:

- ``loop(learn)``: the ``Loop`` model of a live fastai ``Learner``;
- ``load_loop(spec)``: the ``Loop`` of ``learner.py[:ATTR]``, ``package.module[:ATTR]``
  or a saved ``loop.json``;
- ``render(loop, fmt)``: the model (or a trace) as ``html``, ``md``, ``txt`` or ``json`` text;
- ``trace_learner(spec, call)``: run the call for real (capped) and record it (``loopdoc.trace.Trace``).
"""

from __future__ import annotations

from typing import Any

from .errors import LoopdocError
from .model import SCHEMA_VERSION, Loop, load_json
from .render import render

__version__ = "0.1.0"
__all__ = ["SCHEMA_VERSION", "Loop", "LoopdocError", "load_json", "load_loop", "loop", "render", "trace_learner"]


def loop(learn: Any, *, loaded_from: str = "<learner>", cbs: Any = None, call: str | None = None,
         namespace: dict[str, Any] | None = None, at_create: Any = None) -> Loop:
    """Return the ``Loop`` of a call on ``learn`` without training or changing ``learn``.

    Args:
        learn: a ``fastai.learner.Learner``.
        loaded_from: how to name its origin in the model.
        cbs: a ``Callback`` instance or class, or a list of them, to list as if
            passed to ``fit(cbs=...)``; classes are instantiated with no arguments.
        call: the call to document, e.g. ``"fine_tune(2)"`` or ``"get_preds()"``;
            ``None`` documents ``fit`` with the learner's callbacks (and ``cbs``).
        namespace: names the call's arguments may use, e.g. ``globals()``.
        at_create: ``id()`` of the callbacks that received ``after_create`` (as
            ``loopdoc.load.load`` observes them); ``None``: all of the learner's own.

    Raises:
        TypeError: an item of ``cbs`` is neither a ``Callback`` nor a ``Callback`` class.
        LoopdocError: a bad ``call``.
    """
    from .extractors.fastai import as_callbacks, extract

    return extract(learn, loaded_from=loaded_from, extra_cbs=as_callbacks(cbs), call=call, namespace=namespace,
                   at_create=at_create)


def load_loop(spec: str, call: str | None = None, *, trust_pickle: bool = False) -> Loop:
    """Return the ``Loop`` a spec names.

    Args:
        spec: a saved model (``*.json``; needs neither torch nor fastai),
            ``PATH.py[:ATTR]`` / ``package.module[:ATTR]`` naming a ``Learner``
            (see ``loopdoc.load.load``), or a ``learn.export()`` pickle
            (``*.pkl``, ``*.pickle``; see ``loopdoc.load.load_pickle``).
        call: for a learner, the call to document (see ``loop``); its arguments
            may use the learner module's names. Not allowed with a saved model.
        trust_pickle: allow loading a pickle. Unpickling runs any code the file
            names: pass ``True`` only for a file you trust.

    Raises:
        LoopdocError: any failure, with a one-line message naming the file
            (``UsageError`` for a pickle without ``trust_pickle``).
    """
    if spec.lower().endswith(".json"):
        if call is not None:
            from .errors import UsageError

            raise UsageError(f"{spec}: --call needs a learner; a saved model already holds the loop of one call")
        return load_json(spec)
    from .load import is_pickle_spec, load, load_pickle

    loaded = load_pickle(spec, trust=trust_pickle) if is_pickle_spec(spec) else load(spec)
    return loop(loaded.learner, loaded_from=loaded.loaded_from, call=call, namespace=loaded.namespace,
                at_create=loaded.at_create)


def trace_learner(spec: str, call: str = "fit(1)", *, batches: int = 3) -> Any:
    """Load a learner, model ``call``, then run it for real and record what happened.

    Args:
        spec: ``PATH.py[:ATTR]`` or ``package.module[:ATTR]`` naming a ``Learner``.
        call: the call to run, e.g. ``"fit_one_cycle(1)"``; arguments may use the module's names.
        batches: at most this many batches per batch loop.

    Returns:
        A ``loopdoc.trace.Trace``: the static ``Loop`` of the call plus, per event and
        place, how often it fired, which callbacks ran and their wall time.

    Raises:
        LoopdocError: loading failed, a bad call, or the call raised while running.
    """
    import contextlib
    import sys

    from .load import load
    from .trace import run_trace

    loaded = load(spec)
    static = loop(loaded.learner, loaded_from=loaded.loaded_from, call=call, namespace=loaded.namespace,
                  at_create=loaded.at_create)
    with contextlib.redirect_stdout(sys.stderr):  # fastai prints its progress table; stdout may be the output
        return run_trace(loaded.learner, static, call, loaded.namespace, batches)
