"""``loopdoc check``'s rule engine: neutral rules, rule selection, levels and ordering.

The engine knows no framework. It runs the neutral rules defined here and the adapter's own
(``Linting.rules``, e.g. ``loopdoc.adapters.fastai.rules``) on a loop model and the facts the
adapter supplies (``Linting.facts`` → ``loopdoc.adapters.base.LintFacts``), and returns the
findings in a fixed order. ``loopdoc.worker`` calls ``lint_loop`` for every loop it builds, so
every output (render, show, card, the docs-site plugins, JSON) carries the findings.

Codes (stable; the README lists every rule):

- ``LD1xx``: a handler that never runs (a name no event has, or an event it never receives);
- ``LD2xx``: objects in the callback list that are not callbacks, or are there twice;
- ``LD3xx``: flags that do not do what they seem to;
- ``LD4xx``: order ties.

Neutral rules (any framework whose adapter supplies ``LintFacts``): ``LD101`` an event's old name,
``LD102`` a near miss of an event's name (the nearest by ``difflib``), ``LD103`` a name shaped like
an event that no event has, ``LD401`` callbacks of equal order at one event.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Iterable, Sequence
from typing import Any

from ..adapters.base import CallbackFacts, LintFacts, Member, Rule
from ..errors import UsageError
from ..model.loop import LEVELS, Finding, Loop

NEAR = 0.8
"""``difflib`` ratio from which a name with an event-like prefix is a near miss of an event (``after_epochs``)."""

NEAR_BARE = 0.9
"""The ratio from which a name without such a prefix is one (``afterbatch``); stricter, as such names are common."""


# --- the neutral rules -----------------------------------------------------------------------------------------------


def _never_called(member: Member, facts: LintFacts, reason: str) -> str:
    return f"`{member.owner}.{member.name}` is never called: {facts.framework} {facts.version} has no event `{member.name}` {reason}"


def _candidates(facts: LintFacts) -> Iterable[tuple[CallbackFacts, Member]]:
    """Every callable member of the user's callbacks that is not an event and that no other of its own code names."""
    events = set(facts.events)
    for cb in facts.callbacks:
        for m in cb.members:
            if m.callable and not m.referenced and m.name not in events and not m.name.startswith("_"):
                yield cb, m


def nearest_event(name: str, facts: LintFacts) -> str | None:
    """The event whose name is nearest to ``name`` (``difflib.get_close_matches``), or ``None`` when none is near.

    Args:
        name: an attribute name that is not an event.
        facts: the event list and the event-like prefixes.

    Returns:
        The event, when its ``difflib`` ratio reaches ``NEAR`` (names with one of ``facts.prefixes``) or
        ``NEAR_BARE`` (other names).
    """
    cutoff = NEAR if name.startswith(facts.prefixes) else NEAR_BARE
    found = difflib.get_close_matches(name, list(facts.events), n=1, cutoff=cutoff)
    return found[0] if found else None


def _finding(cb: CallbackFacts, m: Member, message: str) -> Finding:
    source, column = (m.source, m.column) if m.source is not None else (cb.source, cb.column)
    return Finding("", "", message, source, column, cb.callback, m.name)


def check_renamed(loop: Loop, facts: LintFacts) -> Iterable[Finding]:
    """LD101: a method named as an event used to be (``begin_fit``, fastai 1's ``on_train_begin``): never called."""
    for cb, m in _candidates(facts):
        old = facts.renamed.get(m.name)
        if old is not None:
            yield _finding(cb, m, _never_called(m, facts, f"(did you mean `{old.event}`? {old.why})"))


def check_near_miss(loop: Loop, facts: LintFacts) -> Iterable[Finding]:
    """LD102: a method whose name is a near miss of an event's (``after_epochs``): never called; the nearest is named."""
    for cb, m in _candidates(facts):
        if m.name in facts.renamed:
            continue
        near = nearest_event(m.name, facts)
        if near is not None:
            yield _finding(cb, m, _never_called(m, facts, f"(did you mean `{near}`?)"))


def check_unknown_event(loop: Loop, facts: LintFacts) -> Iterable[Finding]:
    """LD103: a method named like an event (``after_zero_grad``) that no event has and none is near: never called."""
    for cb, m in _candidates(facts):
        if m.name in facts.renamed or not m.name.startswith(facts.prefixes) or nearest_event(m.name, facts) is not None:
            continue
        yield _finding(cb, m, _never_called(
            m, facts, f"and none is near; only a training loop changed to fire `{m.name}` would call it"))


def check_ties(loop: Loop, facts: LintFacts) -> Iterable[Finding]:
    """LD401: callbacks of equal order that respond at the same event: only the order they were added decides.

    One finding per set of tied callbacks (at least one of them the user's), listing the events (with their places,
    ``after_batch (fit › epoch › validate › batch)``, where two findings name the same event: a tie can differ from
    place to place, as when a callback is switched off in validation); it points at the user's callback added last
    among them, or at the trainer's construction.
    """
    from ..adapters.registry import wording

    words = wording(loop.framework.name)
    by_id = {cb.id: cb for cb in loop.callbacks}
    ties: dict[tuple[str, ...], dict[str, list[tuple[str, ...]]]] = {}  # tied callbacks → event name → its places
    for path, event in loop.iter_events():
        orders: dict[Any, list[str]] = {}
        for h in event.handlers:
            cb = by_id.get(h.callback)
            if cb is None or cb.order is None:
                continue
            group = orders.setdefault(cb.order, [])
            if h.callback not in group:
                group.append(h.callback)
        for group in orders.values():
            if len(group) > 1:
                places = ties.setdefault(tuple(group), {}).setdefault(event.name, [])
                if path not in places:
                    places.append(path)
    groups_reported = [g for g in ties if any(f is not None and f.user for f in (facts.callback(i) for i in g))]
    named = [name for g in groups_reported for name in ties[g]]
    shared = {name for name in named if named.count(name) > 1}  # named by two findings: each says where
    key = words.order_key or "order"
    for group, events in ties.items():
        users = [f for f in (facts.callback(i) for i in group) if f is not None and f.user]
        if not users:
            continue  # the framework's own callbacks: its design, not the user's setup
        last = users[-1]
        names = ", ".join(f"`{i}`" for i in group[:-1]) + f" and `{group[-1]}`"
        shown = ", ".join(f"`{e}`" + (f" ({'; '.join(' › '.join(p) for p in places)})" if e in shared else "")
                          for e, places in events.items())
        if last.added_at is not None:
            source, column = last.added_at, last.added_column
        elif facts.created_at is not None and not by_id[last.callback].origin:  # not added by the call
            source, column = facts.created_at, facts.created_column
        else:
            source, column = last.source, last.column
        every = "both" if len(group) == 2 else "all"
        yield Finding("", "", f"{names} have equal `{key}` ({_number(by_id[group[0]].order)}) and {every} respond to {shown}: "
                              f"they run in {words.tie_decider}, which alone decides which runs first",
                      source, column, last.callback, None)


def _number(value: Any) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


NEUTRAL_RULES: tuple[Rule, ...] = (
    Rule("LD101", "warning", "a method named as an event used to be (an old or fastai 1 name): never called", check_renamed),
    Rule("LD102", "warning", "a method whose name is a near miss of an event's: never called", check_near_miss),
    Rule("LD103", "warning", "a method named like an event that no event has: never called", check_unknown_event),
    Rule("LD401", "info", "callbacks of equal order responding to the same event: only the order they were added decides",
         check_ties),
)
"""The rules every adapter gets, for any framework whose adapter supplies ``LintFacts``."""


# --- the engine ------------------------------------------------------------------------------------------------------


def adapter_rules(adapter: Any) -> tuple[Rule, ...]:
    """The adapter's own rules (``Linting.rules``; ``()`` when it has none).

    Args:
        adapter: an ``Adapter``, possibly without the optional ``Linting`` members.

    Returns:
        Its ``Rule`` objects, in its order.
    """
    rules = getattr(adapter, "rules", ())
    return tuple(r for r in rules if isinstance(r, Rule))


def rules_for(adapter: Any) -> tuple[Rule, ...]:
    """The rules ``loopdoc check`` runs for ``adapter``'s framework: ``NEUTRAL_RULES``, then the adapter's own, by code."""
    return tuple(sorted(NEUTRAL_RULES + adapter_rules(adapter), key=lambda r: r.code))


def every_rule() -> tuple[Rule, ...]:
    """The rules of every installed adapter and the neutral ones, one per code, sorted by code (for ``--select`` checks)."""
    from ..adapters.registry import adapters

    out = {r.code: r for r in NEUTRAL_RULES}
    for a in adapters():
        for r in adapter_rules(a):
            out.setdefault(r.code, r)
    return tuple(out[c] for c in sorted(out))


def run_rules(loop: Loop, facts: LintFacts, rules: Sequence[Rule]) -> tuple[Finding, ...]:
    """Run ``rules`` on ``loop`` and ``facts``: every finding takes its rule's code and level; duplicates go; sorted.

    Args:
        loop: the model.
        facts: its facts.
        rules: the rules to run.

    Returns:
        The findings, unique by (code, source, column, name, message), in ``sort_key`` order.
    """
    seen: set[tuple[Any, ...]] = set()
    out = []
    for rule in rules:
        for f in rule(loop, facts):
            f = dataclasses.replace(f, code=rule.code, level=rule.level)
            key = (f.code, f.source, f.column, f.name, f.message)
            if key not in seen:
                seen.add(key)
                out.append(f)
    return tuple(sorted(out, key=sort_key))


def sort_key(f: Finding) -> tuple[Any, ...]:
    """Findings by file, line, column, code, message; those without a file or line after those with one."""
    file = f.source.file if f.source else None
    line = f.source.line if f.source else None
    return (file is None, file or "", line is None, line or 0, f.column or 0, f.code, f.message)


def lint_loop(loop: Loop, adapter: Any, trainer: Any, namespace: dict[str, Any], observation: Any = None) -> Loop:
    """``loop`` with ``findings`` set: the rules of its framework run on the facts its adapter supplies.

    Args:
        loop: a model just built by ``adapter.loop`` from ``trainer``.
        adapter: the adapter; without ``Linting.facts`` the loop is returned unchanged.
        trainer: the live trainer.
        namespace: the learner module's globals.
        observation: what ``adapter.watch`` saw while the trainer was built.

    Returns:
        A new ``Loop`` (or ``loop`` itself when the adapter supplies no facts).
    """
    facts_of = getattr(adapter, "facts", None)
    if facts_of is None:
        return loop
    facts = facts_of(trainer, loop, namespace, observation)
    return dataclasses.replace(loop, findings=run_rules(loop, facts, rules_for(adapter)))


def parse_codes(values: Iterable[str], option: str, known: Sequence[str] | None = None) -> tuple[str, ...]:
    """The codes and prefixes of ``--select``/``--ignore`` (repeated, or separated by commas), upper-cased.

    Args:
        values: the option's values, e.g. ``["LD1,LD401"]``.
        option: the option's name, for messages.
        known: every rule code; a code or prefix that matches none of them is an error. ``None``: ``every_rule()``.

    Returns:
        The codes, in the order given, without repeats.

    Raises:
        UsageError: a value that is not letters and digits, or that matches no rule.
    """
    codes = [c.strip().upper() for v in values for c in v.split(",") if c.strip()]
    if not codes:
        return ()
    known = [r.code for r in every_rule()] if known is None else list(known)
    for code in codes:
        if not code.isalnum() or not code[0].isalpha():
            raise UsageError(f"{option} {code}: not a rule code or prefix (letters then digits, e.g. LD101 or LD1)")
        if not any(k.startswith(code) for k in known):
            raise UsageError(f"{option} {code}: no rule has this code or prefix (rules: {', '.join(known)})")
    return tuple(dict.fromkeys(codes))


def select(findings: Iterable[Finding], selected: Sequence[str] = (), ignored: Sequence[str] = ()) -> tuple[Finding, ...]:
    """The findings whose code starts with one of ``selected`` (all when empty) and with none of ``ignored``.

    A more specific ``--select`` beats a shorter ``--ignore`` prefix, as in ruff: ``--ignore LD1 --select LD101``
    keeps ``LD101``.

    Args:
        findings: the findings.
        selected: codes or prefixes to keep (``parse_codes``).
        ignored: codes or prefixes to drop.

    Returns:
        The kept findings, in the given order.
    """
    def keep(code: str) -> bool:
        sel = max((len(s) for s in selected if code.startswith(s)), default=None) if selected else 0
        ign = max((len(i) for i in ignored if code.startswith(i)), default=None)
        return sel is not None and (ign is None or sel > ign)

    return tuple(f for f in findings if keep(f.code))


def at_or_above(findings: Iterable[Finding], level: str) -> tuple[Finding, ...]:
    """The findings whose level is ``level`` or more severe (``LEVELS``: info < warning < error).

    Raises:
        UsageError: an unknown level.
    """
    if level not in LEVELS:
        raise UsageError(f"--fail-on {level}: use one of {', '.join(LEVELS)}")
    rank = LEVELS.index(level)
    return tuple(f for f in findings if LEVELS.index(f.level) >= rank)
