"""Lightning's own ``loopdoc check`` rules: what Lightning 2.6 does with the hooks of a Trainer call's objects.

Each rule reads the loop model and the ``LintFacts`` of ``facts.lint_facts``; each claim it prints is from
Lightning 2.6's source (``trainer/call.py``, ``trainer/configuration_validator.py``,
``trainer/connectors/callback_connector.py``) and is checked against a real capped run in
``tests/lightning/test_lightning_check.py``. The neutral rules (``loopdoc.analysis.lint``) report the removed 1.x
hooks that have a replacement (``LD101``), near misses of a hook's name (``LD102``) and other ``on_*`` names no
hook has (``LD103``).

Codes: ``LD101`` (also: a removed hook that nothing replaces), ``LD105`` (a hook on an object Lightning does not
call it on), ``LD106`` (a removed hook the validator rejects: the call raises), ``LD107`` (a hook whose signature
takes an argument Lightning does not pass: the call raises), ``LD201`` (an object in ``callbacks=`` that is not a
``Callback``). No rule for two callbacks of one class: ``Trainer(...)`` itself raises ``RuntimeError`` for two
stateful callbacks with the same ``state_key`` (``_validate_callbacks_list``), two ``ModelCheckpoint`` in one folder
name their files apart (``-v1``), and other duplicates each run as configured.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from typing import Any

from ...model.loop import Finding, Loop
from ..base import CallbackFacts, LintFacts, Member, Rule
from .facts import REJECTED, passed
from .lib import Lightning
from .wording import REMOVED_HOOKS

KIND_WORDS = {"callback": "a Callback", "module": "a LightningModule", "datamodule": "a LightningDataModule"}


def _at(cb: CallbackFacts, m: Member | None = None) -> tuple[Any, int | None]:
    if m is not None and m.source is not None:
        return m.source, m.column
    return cb.source, cb.column


def _masked(facts: LintFacts, error: str) -> str:
    """When a call fails, ``_interrupt`` (``trainer/call.py``) calls ``on_exception`` on every object of the callbacks:
    a non-Callback without it raises AttributeError there, which replaces ``error`` (as its ``__context__``)."""
    lacking = [cb.callback for cb in facts.callbacks if not cb.is_callback and _fails(cb.extra.get("object"), "on_exception")]
    if not lacking:
        return ""
    return (f"; then Lightning calls `on_exception` on `{lacking[0]}`, which has none, so the {error} reaches you as the "
            "context of an AttributeError (LD201)")


def _version(facts: LintFacts) -> str:
    return f"{facts.framework} {facts.version}"


def check_removed_without_replacement(loop: Loop, facts: LintFacts) -> Iterable[Finding]:
    """LD101: a removed 1.x hook that no hook replaces (``on_init_start``, ``get_progress_bar_dict``): never called."""
    call = facts.extra.get("call", "fit")
    for cb in facts.callbacks:
        for m in cb.extra.get("held", ()):
            removed = REMOVED_HOOKS.get(m.name)
            if removed is None or (cb.extra.get("kind") == "module" and call in REJECTED.get(m.name, ())):
                continue
            _, version, instead = removed
            instead = instead.split(";", 1)[0]
            instead = f"nothing replaces it:{instead[len('nothing:'):]}" if instead.startswith("nothing:") else f"use {instead}"
            yield Finding("", "", f"`{m.owner}.{m.name}` is never called: {_version(facts)} has no event `{m.name}` "
                                  f"(Lightning {version} removed it; {instead})", *_at(cb, m), cb.callback, m.name)


def check_rejected(loop: Loop, facts: LintFacts) -> Iterable[Finding]:
    """LD106: ``training_epoch_end`` / ``validation_epoch_end`` / ``test_epoch_end`` on the LightningModule: the call raises."""
    call = facts.extra.get("call", "fit")
    for cb in facts.callbacks:
        if cb.extra.get("kind") != "module":
            continue
        for m in cb.extra.get("held", ()):
            if call not in REJECTED.get(m.name, ()):
                continue
            instead = f"on_{m.name.replace('training_', 'train_')}"
            yield Finding("", "", f"`{call}` raises NotImplementedError before any `setup` hook runs: `{m.owner}` defines "
                                  f"`{m.name}`, which Lightning 2.0 removed, and {_version(facts)}'s "
                                  f"`trainer/configuration_validator.py` rejects a LightningModule that has it "
                                  f"(use `{instead}` and keep the outputs yourself, #16520)" + _masked(facts, "NotImplementedError"),
                          *_at(cb, m), cb.callback, m.name)


def check_wrong_object(loop: Loop, facts: LintFacts) -> Iterable[Finding]:
    """LD105: a LightningModule-only hook on a Callback (``training_step``), a Callback-only hook on a LightningModule."""
    callback_hooks = facts.extra.get("callback_hooks", frozenset())
    events = set(facts.events)
    lib = Lightning.of(facts.extra.get("package", "pytorch_lightning"))
    for cb in facts.callbacks:
        kind = cb.extra.get("kind")
        for m in cb.members:
            if not m.callable or m.name not in events:
                continue
            if kind == "callback" and cb.is_callback and m.name not in callback_hooks:
                yield Finding("", "", f"`{m.owner}.{m.name}` is never called: `{m.name}` is a hook of the LightningModule "
                                      f"(or DataModule), and {_version(facts)} calls a Callback only at the hooks of "
                                      "`Callback`", *_at(cb, m), cb.callback, m.name)
            elif kind == "module" and m.name in callback_hooks and not hasattr(lib.LightningModule, m.name):
                yield Finding("", "", f"`{m.owner}.{m.name}` is never called: `{m.name}` is a Callback hook, and "
                                      f"{_version(facts)} does not call it on the LightningModule", *_at(cb, m), cb.callback, m.name)


def check_signature(loop: Loop, facts: LintFacts) -> Iterable[Finding]:
    """LD107: a handler whose signature needs an argument Lightning does not pass: the call raises ``TypeError`` there."""
    lib = Lightning.of(facts.extra.get("package", "pytorch_lightning"))
    call = facts.extra.get("call", "fit")
    seen: set[tuple[str, str]] = set()
    for _, event in loop.iter_events():
        for h in event.handlers:
            key = (h.callback, event.name)
            cb = facts.callback(h.callback)
            if key in seen or cb is None or not cb.is_callback:
                continue
            seen.add(key)
            kind = cb.extra.get("kind", "callback")
            m = next((x for x in cb.members if x.name == event.name and x.callable), None)
            args = passed(lib, kind, event.name)
            fn = _get(cb.extra.get("object"), event.name)
            if m is None or args is None or fn is None:
                continue  # only the user's own functions (Lightning's callbacks match their own hooks)
            positional, keywords = args
            try:
                sig = inspect.signature(fn)
            except (TypeError, ValueError):
                continue
            try:
                sig.bind(*positional, **dict.fromkeys(keywords))
                continue
            except TypeError:
                pass
            required = [p.name for p in sig.parameters.values()
                        if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
            extra = [n for n in required[len(positional):] if n not in keywords] or required
            shown = ", ".join([*positional, *(f"{k}=…" for k in keywords)])
            takes = ", ".join(f"`{n}`" for n in extra)
            message = (f"`{m.owner}.{event.name}` needs {takes}, which Lightning does not pass: "
                       f"{_version(facts)} calls `{event.name}({shown})` on {KIND_WORDS.get(kind, kind)}, so `{call}` raises "
                       f"TypeError the first time it reaches `{event.name}`")
            if event.name in ("on_train_epoch_end", "on_predict_epoch_end") and "outputs" in extra:
                message += " (Lightning 2.0 removed its `outputs` argument)"
            elif kind == "module" and {"trainer", "pl_module"} & set(extra):
                message += " (`(trainer, pl_module)` are a Callback's arguments)"
            message += _masked(facts, "TypeError")
            yield Finding("", "", message, *_at(cb, m), cb.callback, event.name)


def check_not_a_callback(loop: Loop, facts: LintFacts) -> Iterable[Finding]:
    """LD201: an object in ``callbacks=`` that is not a Lightning ``Callback``: the call raises at the first hook it lacks."""
    callback_hooks = facts.extra.get("callback_hooks", frozenset())
    call = facts.extra.get("call", "fit")
    order = list(dict.fromkeys(e.name for _, e in loop.iter_events() if e.name in callback_hooks))
    for cb in facts.callbacks:
        if cb.is_callback:
            continue
        obj = cb.extra.get("object")
        name = type(obj).__qualname__
        missing = next((hook for hook in order if _fails(obj, hook)), None)
        message = (f"`{cb.callback}` is not a Lightning `Callback`: `Trainer(callbacks=...)` accepts it, and Lightning "
                   f"calls `getattr(callback, hook)(trainer, pl_module, ...)` on every object of `trainer.callbacks` at "
                   "every hook")
        if missing is not None:
            lacks = f"`{missing}`" if not _has(obj, missing) else f"`state_key`, which Lightning reads to call its `{missing}`"
            also = "" if missing == "on_exception" or not _fails(obj, "on_exception") else (
                ", and the same at `on_exception`, which Lightning calls on it when the call fails")
            first = ", the first Callback hook of the call" if missing == order[0] else ""
            message += f", so `{call}` raises AttributeError at `{missing}`{first}: `{name}` has no {lacks}{also}"
        else:
            message += f": each method of `{name}` named like a hook runs as a Callback's would"
        yield Finding("", "", message, cb.source, cb.column, cb.callback, None)


def _has(obj: Any, name: str) -> bool:
    try:
        getattr(obj, name)
    except Exception:
        return False
    return True


def _fails(obj: Any, hook: str) -> bool:
    """Whether ``_call_callback_hooks`` raises AttributeError for ``obj`` at ``hook``: ``getattr(obj, hook)`` without a
    default, then, when that is callable, ``obj.state_key`` for the profiler's action name (``trainer/call.py``)."""
    if not _has(obj, hook):
        return True
    return _get(obj, hook) is not None and not _has(obj, "state_key")


def _get(obj: Any, name: str) -> Any:
    try:
        value = getattr(obj, name, None)
    except Exception:
        return None
    return value if callable(value) else None


RULES: tuple[Rule, ...] = (
    Rule("LD101", "warning", "a method named as an event used to be (an old name): never called", check_removed_without_replacement),
    Rule("LD105", "warning", "a hook on an object Lightning does not call it on (training_step on a Callback): never called",
         check_wrong_object),
    Rule("LD106", "error", "a removed hook Lightning rejects (training_epoch_end on the LightningModule): the call raises",
         check_rejected),
    Rule("LD107", "error", "a hook whose signature needs an argument Lightning does not pass: the call raises TypeError",
         check_signature),
    Rule("LD201", "error", "an object in callbacks= that is not a Callback: the call raises AttributeError at a hook it lacks",
         check_not_a_callback),
)
"""Lightning's rules (``LightningAdapter.rules``)."""
