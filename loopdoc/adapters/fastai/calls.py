"""What a fastai call would run, found by running fastai's own code for it without training.

``record_call(learn, "fit_one_cycle(3, 1e-3)", namespace)`` calls the method on a
shallow copy of the learner whose class overrides two methods of ``Learner``:

- ``_with_events(f, event_type, ...)`` records the phase and the callbacks attached at
  that moment, and returns without calling ``f`` (so no batch is loaded, nothing is
  computed, no optimizer steps);
- ``__call__(event_name)`` records events fired outside ``_with_events`` (e.g.
  ``validation_context`` fires ``before_fit``/``before_epoch`` itself) and
  dispatches nothing, so no callback runs.

Everything else is fastai's own code: ``fit_one_cycle`` builds its ``ParamScheduler``,
``fit`` adds ``cbs`` and ``SkipToEpoch`` through ``added_cbs``, ``fine_tune`` calls
``fit_one_cycle`` twice, ``get_preds`` adds ``GatherPredsCallback``. A new fastai
version that adds other callbacks is followed without a table to keep up to date.

The copy has its own callback list and its own optimizer (``opt`` starts as None), so
the learner's callbacks and optimizer are never touched; ``requires_grad`` and
``training`` of every model parameter and module, which ``freeze``/``unfreeze`` change,
are restored afterwards.

Before the dry run the arguments are bound to the method as Python binds them
(``loopdoc.calls.bind_call``). The dry run then refuses what the real call refuses before it
trains: an exception in fastai's method before its loop (``fit_sgdr('a', 1)``), and a ``fit``
whose ``n_epoch`` is no integer (``fit_one_cycle('a')``: ``Learner.fit`` stores it and
``Learner._do_fit`` runs ``range(self.n_epoch)``, a ``TypeError``, as does ``ProgressCallback``
in ``before_fit``; fastai 2.8). That one is refused only when every ``before_fit`` of the
callbacks is fastai's own: a callback of the user's could set ``learn.n_epoch`` or cancel the fit
first. Every refusal is a ``CallError``.
"""

from __future__ import annotations

import ast
import copy
import operator
from dataclasses import dataclass
from typing import Any

from ...calls import bind_call, call_arguments, call_expression, call_method, check_owner
from ...errors import CallError

# The Learner methods that run a loop. Listed so that `--call "export()"` cannot write
# files or worse: this is which calls are allowed, not what any of them adds.
CALLS = ("fit", "fit_one_cycle", "fit_flat_cos", "fit_sgdr", "fine_tune", "lr_find", "validate", "get_preds")


@dataclass(frozen=True)
class Fired:
    """One thing the call did, in order.

    Attributes:
        kind: ``"phase"`` for a ``Learner._with_events`` call (``name`` is its type:
            ``fit``, ``validate``, …), ``"event"`` for an event fired directly.
        name: the phase type or the event name.
        cbs: the learner's callbacks at that moment, in ``learn.cbs`` order.
    """

    kind: str
    name: str
    cbs: tuple[Any, ...]


def parse_call(text: str, namespace: dict[str, Any], trainer: Any = None) -> tuple[str, list[Any], dict[str, Any]]:
    """Parse ``"fit_one_cycle(3, 1e-3, cbs=[MyCallback()])"`` (or ``"learn.fit(1)"``).

    The shape is checked before anything is evaluated: one call of a method in ``CALLS``,
    written as ``method(...)`` or ``OWNER.method(...)`` where ``OWNER`` is a name or a dotted name
    (``loopdoc.calls.call_expression``: ``__import__('os').system('…').fit(1)``, ``fit(1).fit(2)`` are
    refused without evaluating any of it). The owner must then be the learner itself
    (``loopdoc.calls.check_owner``: ``learn.model.fit(1)``, ``os.fit(1)``, ``Callback.fit(1)`` are refused;
    only the owner's name and attributes are read). Only then are the arguments evaluated, in ``namespace``.

    Args:
        text: a Python call expression naming one of ``CALLS``.
        namespace: names the arguments may use (the learner module's globals).
        trainer: the learner the call runs on, to check the owner; ``None``: the owner is not checked.

    Returns:
        ``(method name, positional args, keyword args)`` with the arguments evaluated.

    Raises:
        CallError: not a call, not a call on the learner itself, an unknown method,
            ``*args``/``**kwargs``, or an argument that fails to evaluate (the message names it).
    """
    node = call_expression(text)
    name = call_method(node)
    if name not in CALLS:
        raise CallError(f"--call {text!r}: {name!r} does not run a training loop; use one of {', '.join(CALLS)}")
    if any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords):
        raise CallError(f"--call {text!r}: *args and **kwargs are not supported")
    if trainer is not None:
        check_owner(node, text, namespace, trainer)
    args, kwargs = call_arguments(node, text, namespace)
    return name, args, kwargs


def import_for(learn: Any, name: str, text: str) -> None:
    """Make sure ``learn`` has the method ``name``, importing ``fastai.callback.schedule`` if needed.

    That module patches ``fit_one_cycle``, ``fit_flat_cos``, ``fit_sgdr``, ``fine_tune`` and
    ``lr_find`` onto ``Learner`` (fastai 2.8). Importing it also imports
    ``fastai.callback.progress``, which appends ``ProgressCallback`` to
    ``defaults.callbacks``; the learner's callbacks are fixed already, and the list is
    restored so that learners built later in this process are as they would have been.

    Args:
        learn: the ``Learner``.
        name: the method, one of ``CALLS``.
        text: the call as given, for the message.

    Raises:
        CallError: ``learn`` still has no such method.
    """
    if not hasattr(type(learn), name):
        from fastai.learner import defaults

        saved = list(defaults.callbacks)
        import fastai.callback.schedule  # noqa: F401

        defaults.callbacks[:] = saved
    if not callable(getattr(type(learn), name, None)):
        raise CallError(f"--call {text!r}: {type(learn).__name__} has no method {name!r} in this fastai")


def record_call(learn: Any, text: str, namespace: dict[str, Any]) -> list[Fired]:
    """Run the call ``text`` on a copy of ``learn`` and record its phases and events, without training.

    Args:
        learn: a ``fastai.learner.Learner``; it is not changed.
        text: the call, e.g. ``"fine_tune(2)"``; see ``parse_call``.
        namespace: names the call's arguments may use.

    Returns:
        What the call fired, in order; at least one ``"phase"``.

    Raises:
        CallError: a bad call (see ``parse_call``), arguments that do not bind to the method
            (``loopdoc.calls.bind_call``), an exception in fastai's method before its loop, or a
            ``fit`` whose ``n_epoch`` is no integer (see the module doc); the message names the call.
        (the call returning without running a loop is a ``CallError`` too.)
    """
    name, args, kwargs = parse_call(text, namespace, learn)
    import_for(learn, name, text)
    bind_call(text, getattr(learn, name), args, kwargs, f"{type(learn).__name__}.{name}")
    fired: list[Fired] = []

    def record_event(self: Any, event_name: Any) -> None:
        names = event_name if isinstance(event_name, (list, tuple)) else [event_name]
        fired.extend(Fired("event", str(n), tuple(self.cbs)) for n in names)

    def record_phase(self: Any, f: Any, event_type: str, ex: Any, final: Any = None) -> None:
        if event_type == "fit":
            _check_epochs(self, text)
        fired.append(Fired("phase", event_type, tuple(self.cbs)))

    base = type(learn)
    dry = type(base.__name__, (base,), {"__call__": record_event, "_with_events": record_phase,
                                        "__module__": base.__module__, "__qualname__": base.__qualname__})
    clone = copy.copy(learn)
    clone.__class__ = dry
    clone.cbs = type(learn.cbs)(list(learn.cbs))
    clone.opt = None
    params = [(p, p.requires_grad) for p in learn.model.parameters()]
    modules = [(m, m.training) for m in learn.model.modules()]
    try:
        getattr(clone, name)(*args, **kwargs)
    except CallError:
        raise
    except Exception as e:
        # Code after the last loop (lr_find reading the recorder's losses) may fail on
        # the copy, which recorded nothing: what the loop would run is already known.
        if not any(f.kind == "phase" for f in fired):
            raise CallError(f"--call {text!r}: {type(learn).__name__}.{name} raised {type(e).__name__} before its loop "
                            f"started: {_one_line(e)}") from e
    finally:
        for p, flag in params:
            p.requires_grad_(flag)
        for m, flag in modules:
            m.training = flag
    if not any(f.kind == "phase" for f in fired):
        raise CallError(f"--call {text!r}: returned without running a loop")
    return fired


def _check_epochs(learn: Any, text: str) -> None:
    """Refuse a ``fit`` whose ``n_epoch`` is no integer, as fastai's own loop would (see the module doc).

    Args:
        learn: the dry copy, as ``Learner.fit`` leaves it just before ``_with_events(self._do_fit, 'fit', …)``.
        text: the call, for the message.

    Raises:
        CallError: ``learn.n_epoch`` is no integer (``operator.index`` fails, as in ``range``) and every
            ``before_fit`` of ``learn.cbs`` is fastai's own.
    """
    n_epoch = getattr(learn, "n_epoch", None)
    try:
        operator.index(n_epoch)
    except TypeError:
        if all(_fastais_before_fit(cb) for cb in learn.cbs):
            raise CallError(f"--call {text!r}: Learner.fit would get n_epoch={n_epoch!r}, not an integer; it loops "
                            "over range(n_epoch), which raises TypeError") from None


def _fastais_before_fit(cb: Any) -> bool:
    """The callback has no ``before_fit``, or the one it has is a function of a class of fastai's own."""
    if "before_fit" in getattr(cb, "__dict__", {}):
        return False
    owner = next((k for k in type(cb).__mro__ if "before_fit" in vars(k)), None)
    return owner is None or (owner.__module__ or "").split(".")[0] == "fastai"


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or "(no message)"
