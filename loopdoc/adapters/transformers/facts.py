"""The facts ``loopdoc check``'s rules need about a ``transformers.Trainer``, beyond its loop model (``LintFacts``).

Facts, each from transformers 5.24's source (``trainer_callback.py``, ``trainer.py``):

- the event list: the ``on_*`` methods of ``TrainerCallback`` (read at run time, ``extract.events``);
- ``CallbackHandler.add_callback`` keeps any object it is given (a class is instantiated first) and
  never checks that it is a ``TrainerCallback``; ``CallbackHandler.call_event`` calls
  ``getattr(callback, event)(args, state, control, model=..., ...)`` on every callback at every event,
  so an object without that method raises ``AttributeError`` there and ends the call;
- ``EarlyStoppingCallback.on_train_begin`` warns without ``load_best_model_at_end``, then asserts
  ``metric_for_best_model is not None`` and ``eval_strategy != "no"``; ``Trainer(...)`` checks neither;
- ``on_evaluate`` fires only inside ``Trainer.evaluate``, which ``train()`` runs only when
  ``control.should_evaluate`` is set (by ``DefaultFlowCallback`` for an ``eval_strategy`` other
  than ``"no"``, or by a callback's own code), or with ``eval_on_start=True``.

Method names other frameworks use for a Trainer event (``on_batch_end``, ``on_epoch_start``) are
``wording.NOT_EVENTS``; they become ``LintFacts.renamed``. Imports transformers only inside functions.
"""

from __future__ import annotations

from typing import Any

from ...model.loop import Loop
from ..base import CallbackFacts, LintFacts, Renamed
from ..introspect import callback_ids, class_position, get, qualified, user_class, user_members
from .plan import arg
from .wording import NOT_EVENTS

FRAMEWORK_MODULES = ("transformers", "torch", "accelerate", "huggingface_hub", "safetensors", "tqdm")
"""Top-level modules whose classes are never the user's."""

PREFIXES = ("on_",)
"""Names starting with this look like ``TrainerCallback`` event handlers."""


def renamed(events: tuple[str, ...]) -> dict[str, Renamed]:
    """``NOT_EVENTS`` as ``Renamed`` entries: the names other frameworks (Keras, Lightning, fastai) give a Trainer event.

    Args:
        events: the event list (``TrainerCallback``'s ``on_*`` methods).

    Returns:
        ``{name: Renamed(event, why)}`` for the names whose event is in ``events`` and that are no event themselves.
    """
    return {name: Renamed(event, "`CallbackHandler.call_event` calls only `TrainerCallback`'s event names")
            for name, event in NOT_EVENTS.items() if event in events and name not in events}


def lint_facts(trainer: Any, loop: Loop, namespace: dict[str, Any], observation: Any = None) -> LintFacts:
    """The ``LintFacts`` of ``loop``, a model of ``trainer`` built by ``extract.build``.

    Args:
        trainer: the live ``Trainer``.
        loop: its model (its callbacks are ``trainer.callback_handler.callbacks``, with ``introspect.callback_ids``).
        namespace: the trainer module's globals (unused: a Trainer's calls add no callbacks).
        observation: the ``creation.Observed`` seen while the trainer was built, or ``None``.

    Returns:
        The facts; extra: ``eval_strategy`` (``"no"``, ``"steps"``, ``"epoch"``), ``metric_for_best_model``,
        ``load_best_model_at_end``, ``eval_on_start``, ``gradient_accumulation_steps``, ``save_strategy``,
        ``push_to_hub``, ``has_eval_dataset``. Raises nothing on a user's broken object.
    """
    import transformers
    from transformers.trainer_callback import EarlyStoppingCallback, TrainerCallback

    from .extract import events as read_events

    events = tuple(read_events())
    cbs = list(trainer.callback_handler.callbacks)
    ids = callback_ids(cbs)
    by_id = {ids[id(cb)]: cb for cb in cbs}
    created = get(observation, "created_at")
    added = get(observation, "added_at") or {}
    callbacks = tuple(_callback_facts(cb.id, by_id[cb.id], TrainerCallback, EarlyStoppingCallback, events,
                                      added.get(id(by_id[cb.id])))
                      for cb in loop.callbacks if cb.id in by_id)
    a = trainer.args
    return LintFacts(
        framework="transformers",
        version=".".join(transformers.__version__.split(".")[:2]),
        events=events,
        renamed=renamed(events),
        prefixes=PREFIXES,
        callbacks=callbacks,
        groups=(tuple(c.callback for c in callbacks),),
        created_at=created[0] if created else None,
        created_column=created[1] if created else None,
        extra={
            "eval_strategy": arg(a.eval_strategy).strip("'"),
            "save_strategy": arg(a.save_strategy).strip("'"),
            "metric_for_best_model": a.metric_for_best_model,
            "load_best_model_at_end": bool(a.load_best_model_at_end),
            "eval_on_start": bool(getattr(a, "eval_on_start", False)),
            "gradient_accumulation_steps": a.gradient_accumulation_steps,
            "push_to_hub": bool(getattr(a, "push_to_hub", False)),
            "has_eval_dataset": get(trainer, "eval_dataset") is not None,
        },
    )


def _callback_facts(cb_id: str, cb: Any, base: type, early: type, events: tuple[str, ...],
                    added: Any) -> CallbackFacts:
    """The facts of one object of ``trainer.callback_handler.callbacks``."""
    cls = type(cb)
    mro = [k for k in cls.__mro__ if k is not object]
    users = [k for k in mro if user_class(k, FRAMEWORK_MODULES)]
    position = class_position(users[0]) if users else None
    return CallbackFacts(
        callback=cb_id,
        is_callback=isinstance(cb, base),
        user=bool(users),
        classes=tuple(qualified(k) for k in mro),
        source=position[0] if position else None,
        column=position[1] if position else None,
        added_at=added[0] if added else None,
        added_column=added[1] if added else None,
        members=user_members(cb, cls, users),
        extra={
            "handles": _handles(cb, base, events),
            "missing": tuple(e for e in events if not _callable(_lookup(cb, e))),
            "early_stopping": isinstance(cb, early),
            "early_stopping_checks": isinstance(cb, early) and _function(cb, "on_train_begin") is early.on_train_begin,
        },
    )


def _lookup(cb: Any, name: str) -> Any:
    """``getattr(cb, name)`` as ``CallbackHandler.call_event`` does it, or ``None`` when it raises."""
    try:
        return getattr(cb, name)
    except Exception:
        return None


def _function(cb: Any, name: str) -> Any:
    """The function behind ``cb.<name>`` (a bound method's ``__func__``), or ``None``."""
    value = _lookup(cb, name)
    return getattr(value, "__func__", value)


def _handles(cb: Any, base: type, events: tuple[str, ...]) -> tuple[str, ...]:
    """The events ``cb`` has its own method for: the lookup ends somewhere other than ``TrainerCallback``'s empty one."""
    out = []
    for event in events:
        fn = _function(cb, event)
        if _callable(fn) and fn is not getattr(base, event, None):
            out.append(event)
    return tuple(out)


def _callable(value: Any) -> bool:
    try:
        return value is not None and callable(value)
    except Exception:
        return False


__all__ = ["FRAMEWORK_MODULES", "PREFIXES", "lint_facts", "renamed"]
