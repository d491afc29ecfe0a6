"""The facts ``loopdoc check``'s rules need about a Lightning ``Trainer`` call, beyond its loop model (``LintFacts``).

Facts, each from Lightning 2.6's source and checked in a real capped run (``tests/lightning/test_lightning_check.py``):

- the hook names (``LintFacts.events``): every hook Lightning 2.6 calls on a Callback, LightningModule or
  LightningDataModule (``wording.HOOKS``, which the static model is built from, and the hooks it calls only on an
  exception or when loading a checkpoint: ``on_exception``, ``on_load_checkpoint``, ``load_state_dict``);
- which hooks reach which object: ``trainer/call.py``'s ``_call_callback_hooks`` calls ``getattr(callback, hook)``
  for the hooks of ``Callback`` (``callbacks/callback.py``); ``_call_lightning_module_hook`` the LightningModule's;
  no call site dispatches a LightningModule-only hook (``training_step``, ``configure_optimizers``, …) to a callback,
  or a callback-only hook (``on_sanity_check_start``, ``on_exception``) to the LightningModule;
- the removed 1.x hooks (``wording.REMOVED_HOOKS``): silently never called, except the LightningModule's
  ``training_epoch_end`` / ``validation_epoch_end`` / ``test_epoch_end``, which ``trainer/configuration_validator.py``
  rejects with ``NotImplementedError`` when ``fit`` (the first two), ``validate`` (the second) or ``test`` (the third)
  starts;
- ``_call_callback_hooks`` calls every object of ``trainer.callbacks`` that way whatever it is: ``Trainer(callbacks=...)``
  accepts any object, and a ``fit`` with one that lacks a hook raises ``AttributeError`` at that hook.

The members of a callback are read as for fastai (the user's classes only; see ``loopdoc.adapters.fastai.facts``,
whose helpers are repeated here: adapters import no other adapter). A member that one of the Lightning rules
reports itself (a removed hook without a replacement hook, a removed hook the validator rejects) is left out of
``CallbackFacts.members`` and put in ``extra["held"]``, so that the neutral rules do not report it again.
Imports Lightning only inside functions.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

from ...model.loop import Loop
from ..base import CallbackFacts, LintFacts, Renamed
from ..introspect import class_position, qualified, user_class, user_members
from .lib import Lightning, package_of
from .wording import HOOKS, REMOVED_HOOKS

FRAMEWORK_MODULES = ("pytorch_lightning", "lightning", "lightning_fabric", "lightning_utilities", "torch", "torchmetrics")
"""Top-level modules whose classes are never the user's."""

PREFIXES = ("on_",)
"""Names starting with one of these look like hooks."""

EXTRA_HOOKS = ("on_exception", "on_load_checkpoint", "load_state_dict")
"""Hooks Lightning calls only when a call raises or a checkpoint is loaded (not in the static model's tree)."""

REJECTED = {"training_epoch_end": ("fit",), "validation_epoch_end": ("fit", "validate"), "test_epoch_end": ("test",)}
"""The removed LightningModule hooks ``configuration_validator.py`` rejects, and the calls that raise for them."""

_HOOK_NAME = re.compile(r"\b(?:on_[a-z_]+|[a-z]+_(?:step|dataloader|epoch_end|epoch_start)|setup|teardown)\b")


def renamed(events: tuple[str, ...]) -> dict[str, Renamed]:
    """The removed 1.x hooks that have a replacement hook: ``{old name: Renamed(first replacement, why)}``.

    Args:
        events: Lightning's hook names.

    Returns:
        The removed names whose replacement (``wording.REMOVED_HOOKS``) begins with a hook of ``events``; the others
        (``on_init_start``: nothing replaces it) are reported by ``rules.check_removed_without_replacement``.
    """
    out = {}
    for old, (_, version, instead) in REMOVED_HOOKS.items():
        text = instead.split(";", 1)[0]
        names = [n for n in _HOOK_NAME.findall(text) if n in events]
        if not names or not text.startswith(names[0]):
            continue
        pr = re.search(r"\(#\d+\)", text)
        why = f"Lightning {version} removed `{old}`" + (f" {pr.group(0)}" if pr else "")
        if len(names) > 1:
            why += "; or " + ", ".join(f"`{n}`" for n in names[1:])
        out[old] = Renamed(names[0], why)
    return out


def lint_facts(trainer: Any, loop: Loop, namespace: dict[str, Any], observation: Any = None) -> LintFacts:
    """The ``LintFacts`` of ``loop``, a model of a call on ``trainer`` built by ``extract.extract``.

    Args:
        trainer: the live Trainer.
        loop: its model; when it is not the model ``extract`` built last, the call is modelled again to find the
            objects behind its callback ids.
        namespace: the module's globals (for the call's arguments).
        observation: ``creation.Observed`` for this Trainer, or ``None``.

    Returns:
        The facts; raises nothing on a user's broken object.
    """
    from .extract import extract, extracted

    objects = extracted(loop)
    if objects is None:
        again = extract(trainer, loaded_from=loop.learner.loaded_from, call=loop.call, namespace=namespace, observation=observation)
        objects = extracted(again) or {}
    lib = Lightning.of(package_of(trainer) or "pytorch_lightning")
    events = tuple(sorted({*HOOKS, *EXTRA_HOOKS}))
    callback_hooks = frozenset(n for n in vars(lib.Callback) if not n.startswith("_") and n != "state_key")
    method = loop.call.split("(", 1)[0].strip().rpartition(".")[2] or "fit"
    callbacks = tuple(_callback_facts(cb.id, objects[cb.id], lib, method) for cb in loop.callbacks if cb.id in objects)
    return LintFacts(
        framework="Lightning",
        version=".".join(lib.version.split(".")[:2]),
        events=events,
        renamed=renamed(events),
        prefixes=PREFIXES,
        callbacks=callbacks,
        groups=(tuple(cb.id for cb in loop.callbacks if cb.kind == "callback"),),
        extra={"callback_hooks": callback_hooks, "call": method, "package": lib.pkg},
    )


def _callback_facts(cb_id: str, obj: Any, lib: Lightning, method: str) -> CallbackFacts:
    """The facts of one object Lightning dispatches hooks to (a callback, the LightningModule, the DataModule)."""
    cls = type(obj)
    mro = [k for k in cls.__mro__ if k is not object]
    users = [k for k in mro if user_class(k, FRAMEWORK_MODULES)]
    position = class_position(users[0]) if users else None
    kind = lib.kind(obj)
    # a Callback of either package (a `pytorch_lightning` callback in a `lightning.pytorch` Trainer is called alike)
    is_callback = kind != "callback" or any(k.__name__ == "Callback" and k in lib.base["callback"] for k in cls.__mro__)
    members, held = [], []
    for m in user_members(obj, cls, users):
        removed = REMOVED_HOOKS.get(m.name)
        rejected = kind == "module" and method in REJECTED.get(m.name, ())
        if m.callable and (rejected or (removed is not None and m.name not in renamed(tuple(HOOKS)))):
            held.append(m)
        else:
            members.append(m)
    return CallbackFacts(
        callback=cb_id,
        is_callback=is_callback,
        user=bool(users),
        classes=tuple(qualified(k) for k in mro),
        source=position[0] if position else None,
        column=position[1] if position else None,
        members=tuple(members),
        extra={"kind": kind, "held": tuple(held), "object": obj},
    )


def passed(lib: Lightning, kind: str, hook: str) -> tuple[list[str], list[str]] | None:
    """The arguments Lightning 2.6 passes to ``hook`` on an object of ``kind``: ``(positional names, keyword names)``.

    Read from the base class's signature (``Callback`` for callbacks, ``LightningModule`` / ``LightningDataModule``):
    its parameters without a default (a Callback's start with ``trainer``, ``pl_module``); ``stage`` by keyword
    (``trainer/call.py`` calls ``setup(stage=fn)`` / ``teardown(stage=fn)``); and ``PASSED_TOO``; ``dataloader_idx``
    counts as passed (Lightning passes it only with several loaders). ``None`` when the base takes
    ``*args`` (``training_step``) or has no such hook.
    """
    base = {"callback": lib.Callback, "module": lib.LightningModule, "datamodule": lib.LightningDataModule}.get(kind)
    fn = getattr(base, hook, None) if base is not None else None
    if fn is None or not callable(fn):
        return None
    try:
        params = list(inspect.signature(fn).parameters.values())[1:]
    except (TypeError, ValueError):
        return None
    if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params):
        return None
    required = [p.name for p in params if p.default is p.empty]
    keywords = [n for n in required if n == "stage"]
    positional = [n for n in required if n not in keywords]
    more_positional, more_keywords = PASSED_TOO.get((kind, hook), ((), ()))
    if any(p.name == "dataloader_idx" for p in params) and "dataloader_idx" not in positional:
        positional.append("dataloader_idx")  # passed with several loaders only: counted as passed, so never a false claim
    return [*positional, *more_positional], [*keywords, *more_keywords]


PASSED_TOO: dict[tuple[str, str], tuple[tuple[str, ...], tuple[str, ...]]] = {
    ("module", "optimizer_step"): (("optimizer_closure",), ()),  # loops/optimization/automatic.py: positional
    ("module", "configure_gradient_clipping"): ((), ("gradient_clip_val", "gradient_clip_algorithm")),  # precision.py
}
"""Arguments with a default in the base signature that Lightning 2.6 passes all the same (``passed``)."""
