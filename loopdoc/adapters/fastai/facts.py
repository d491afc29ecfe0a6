"""The facts ``loopdoc check``'s rules need about a fastai ``Learner``, beyond its loop model (``LintFacts``).

Facts, each from fastai 2.8.12's source or fastai's history:

- the event list: ``fastai.callback.core._events`` (read at run time); the events
  ``run_train``/``run_valid`` filter: ``fastai.callback.core._inner_loop`` (read at run time);
- fastai 2's early releases named the ``before_*`` events ``begin_*`` (``begin_fit``,
  ``begin_batch``, …: fastbook and the fastai paper still do; fastai's own notebooks renamed them);
- fastai 1's ``Callback`` methods (``fastai/callback.py`` of fastai 1.0.61) and the fastai 2 event
  each corresponds to: ``on_train_begin`` → ``before_fit``, ``on_epoch_begin`` → ``before_epoch``,
  ``on_batch_begin`` → ``before_batch``, ``on_loss_begin`` (after the forward pass) → ``after_pred``,
  ``on_backward_begin`` (training only, before backprop) → ``before_backward``, ``on_backward_end`` →
  ``after_backward``, ``on_step_end`` → ``after_step``, ``on_batch_end`` → ``after_batch``,
  ``on_epoch_end`` → ``after_epoch``, ``on_train_end`` → ``after_fit``;
- which objects are callbacks: ``isinstance(obj, fastai.callback.core.Callback)``; ``Learner._call_one``
  calls every object of ``learn.cbs`` as ``obj(event_name)`` whatever it is.

The user's own classes are those ``loopdoc.adapters.introspect.user_class`` accepts: not of fastai,
fastcore, fasttransform, torch or plum, not installed. Imports fastai only inside functions.
"""

from __future__ import annotations

from typing import Any

from ...model.loop import Loop
from ..base import CallbackFacts, LintFacts, Renamed
from ..introspect import class_position, get, qualified, user_class, user_members
from .creation import Creation, at_create_ids

FRAMEWORK_MODULES = ("fastai", "fastcore", "fasttransform", "torch", "plum")
"""Top-level modules whose classes are never the user's."""

PREFIXES = ("before_", "after_", "begin_", "on_")
"""Names starting with one of these look like event handlers (``on_`` for fastai 1's and other frameworks' names)."""

FASTAI1 = {
    "on_train_begin": "before_fit", "on_epoch_begin": "before_epoch", "on_batch_begin": "before_batch",
    "on_loss_begin": "after_pred", "on_backward_begin": "before_backward", "on_backward_end": "after_backward",
    "on_step_end": "after_step", "on_batch_end": "after_batch", "on_epoch_end": "after_epoch", "on_train_end": "after_fit",
}
"""fastai 1's ``Callback`` methods and the fastai 2 event each corresponds to (see the module docstring)."""

TRANSFORMS = ("fasttransform.transform.Transform", "fastcore.transform.Transform")
"""The qualified names of fastai's ``Transform`` base class (fasttransform since fastai 2.8; fastcore before)."""


def renamed(events: tuple[str, ...]) -> dict[str, Renamed]:
    """Old names of fastai's events: ``begin_X`` for every ``before_X``, and fastai 1's names (``FASTAI1``).

    Args:
        events: the event list (``fastai.callback.core._events``).

    Returns:
        ``{old name: Renamed(event, why)}``, only for events in ``events``.
    """
    out = {f"begin_{e[len('before_'):]}": Renamed(e, "fastai 2 renamed `begin_*` to `before_*`")
           for e in events if e.startswith("before_")}
    out.update({old: Renamed(new, f"`{old}` is fastai 1's name") for old, new in FASTAI1.items() if new in events})
    return out


def lint_facts(learn: Any, loop: Loop, namespace: dict[str, Any], observation: Any = None) -> LintFacts:
    """The ``LintFacts`` of ``loop``, a model of ``learn`` built by ``extract.extract``.

    Args:
        learn: the live ``Learner``.
        loop: its model; when it is not the model ``extract`` built last, the same call is extracted
            again to find the objects behind its callback ids.
        namespace: the learner module's globals (for a ``--call``'s arguments).
        observation: the ``creation.Creation`` seen while the learner was built, or ``None``.

    Returns:
        The facts: events and renames, per callback its members, where the user's code attached it,
        and the callbacks attached together per fit. Raises nothing on a user's broken object.
    """
    import fastai
    from fastai.callback import core

    from .extract import extract, extracted

    found = extracted(loop)
    if found is None or found.learn is not learn:
        call = None if loop.call == "fit" else loop.call
        again = extract(learn, loaded_from=loop.learner.loaded_from, call=call, namespace=namespace,
                        at_create=at_create_ids(observation))
        found = extracted(again)
        assert found is not None
    creation = observation if isinstance(observation, Creation) else Creation()
    events = tuple(str(e) for e in core._events)
    received = set(creation.at_create)
    callbacks = tuple(_callback_facts(cb.id, found.objects[cb.id], core.Callback, events, creation, received)
                      for cb in loop.callbacks)
    created = creation.created_at
    return LintFacts(
        framework="fastai",
        version=".".join(fastai.__version__.split(".")[:2]),
        events=events,
        renamed=renamed(events),
        prefixes=PREFIXES,
        callbacks=callbacks,
        groups=found.groups,
        created_at=created[0] if created else None,
        created_column=created[1] if created else None,
        extra={"inner_loop": tuple(str(e) for e in core._inner_loop), "base": qualified(core.Callback)},
    )


def _callback_facts(cb_id: str, cb: Any, base: type, events: tuple[str, ...], creation: Creation,
                    received: set[int]) -> CallbackFacts:
    """The facts of one object of the learner's callbacks."""
    cls = type(cb)
    mro = [k for k in cls.__mro__ if k is not object]
    users = [k for k in mro if user_class(k, FRAMEWORK_MODULES)]
    position = class_position(users[0]) if users else None
    added = creation.added_at.get(id(cb))
    name = get(cb, "name") if isinstance(cb, base) else None
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
            "name": name if isinstance(name, str) else None,
            "transform": any(qualified(k) in TRANSFORMS for k in mro),
            "at_create": id(cb) in received,
            "handles": _handles(cb, cls, base, events),
        },
    )


def _handles(cb: Any, cls: type, base: type, events: tuple[str, ...]) -> tuple[str, ...]:
    """The events ``cb`` has a method for, as fastai's ``Callback.__call__`` finds it (``getcallable``): an instance
    attribute, or an attribute of a class of its MRO other than ``Callback``'s own bases; only callables count."""
    if not isinstance(cb, base):
        return ()
    skip = set(base.__mro__)
    own = get(cb, "__dict__")
    out = []
    for event in events:
        value = own.get(event) if isinstance(own, dict) else None
        if value is None:
            klass = next((k for k in cls.__mro__ if k not in skip and event in vars(k)), None)
            value = vars(klass)[event] if klass is not None else None
        if isinstance(value, (staticmethod, classmethod)) or (value is not None and not isinstance(value, property) and _callable(value)):
            out.append(event)
    return tuple(out)


def _callable(value: Any) -> bool:
    try:
        return callable(value)
    except Exception:
        return False
