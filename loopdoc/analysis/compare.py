"""A traced run against its static model: where reality departed from what the model says.

Neutral: reads only model fields (``Loop``, ``Trace``) and the framework's ``Wording``.
"""

from __future__ import annotations

from ..adapters.words import Wording
from ..model.loop import Cancel, Loop, Phase
from ..model.trace import EventTrace, Trace


def static_events(loop: Loop) -> dict[tuple[tuple[str, ...], str], list[str]]:
    """The static model's handlers per (path, event), top-level phases keyed by ``Loop.top_keys``.

    Args:
        loop: the model.

    Returns:
        ``{(path, event name): [callback id, ...]}`` in run order.
    """
    return {(path, ev.name): [h.callback for h in ev.handlers] for path, ev in loop.iter_events(keyed=True)}


def differences(trace: Trace, words: Wording) -> list[str]:
    """Where the run departed from the static model, one sentence each, in loop order.

    Reports, first, each cancellation that cut the run short: a ``Cancel…`` exception (any
    exception the static model has a cancel branch for) whose catching phase holds a loop
    (a fit cancelled by ``EarlyStoppingCallback``: later epochs never ran) or under which some
    event never fired, saying who raised it where and what it skipped; then events the model
    has that never fired (cancel events, ``after_cancel_*``, are expected not to, unless
    something cancelled, and so are the events of a phase the model says runs only under a
    ``condition``); callbacks the model lists at an event that never ran there (why, in the
    framework's words: ``words.never_ran``, unless the cancellations raised at that event by
    callbacks before it, in run order, account for every time it fired: then those, as below);
    callbacks that ran where the model does not list them; callbacks that ran fewer times than
    their event fired (saying which cancellation raised by a callback before them at that event
    cut it short, when one did). The ``create``
    phase fired when the trainer was built, before the run, and is not compared.

    Args:
        trace: the run, with its static model.
        words: the framework's wording (``loopdoc.adapters.words``).

    Returns:
        The sentences.
    """
    static = static_events(trace.loop)
    observed = trace.event_map()
    conditional = conditional_paths(trace.loop)
    out = _cancellations(trace, static, observed, words)
    for key, expected in static.items():
        path, ev = key
        if path[0] == "create":  # fired when the learner was built, before the trace
            continue
        where = f"{'/'.join(path)}:{ev}"
        seen = observed.get(key)
        if seen is None:
            if not ev.startswith("after_cancel_") and path not in conditional:
                out.append(f"{where} never fired")
            continue
        ran = {h.callback: h for h in seen.handlers}
        for i, cb in enumerate(expected):
            if cb not in ran:
                cut = _cut_short(seen, expected[:i]) if _cancelled_before(seen, expected[:i]) >= seen.fired else ""
                out.append(f"{where}: {cb} never ran{cut or f' ({words.never_ran})'}")
            elif ran[cb].calls < seen.fired:
                out.append(f"{where}: {cb} ran {ran[cb].calls} of {seen.fired} times{_cut_short(seen, expected[:i])}")
        for cb in ran:
            if cb not in expected:
                out.append(f"{where}: {cb} ran but the static model does not list it")
    for key in observed:
        if key not in static:
            out.append(f"{'/'.join(key[0])}:{key[1]} fired but is not in the static model")
    return out


def _cut_short(seen: EventTrace, before: list[str]) -> str:
    """``": DropOddBatches raised CancelBatchException before it (1×)"``: the cancellations at this event raised by
    callbacks that run before the one in question (``before``, in run order), which end the event there; else ``""``."""
    causes = [f"{cx.callback} raised {cx.exception} before it ({cx.count}×)" for cx in seen.cancellations
              if cx.callback in before]
    return f": {'; '.join(causes)}" if causes else ""


def _cancelled_before(seen: EventTrace, before: list[str]) -> int:
    """How many times a callback in ``before`` raised a cancellation at this event (each ends the event there)."""
    return sum(cx.count for cx in seen.cancellations if cx.callback in before)


def conditional_paths(loop: Loop) -> set[tuple[str, ...]]:
    """The keyed paths (as ``Loop.iter_events(keyed=True)`` gives them) of every phase that has a ``condition``,
    and of every phase inside one: their events may rightly never fire in a run.

    Args:
        loop: the model.

    Returns:
        The paths, the top-level phase named by its ``Loop.top_keys`` key.
    """
    out: set[tuple[str, ...]] = set()

    def walk(phase: Phase, path: tuple[str, ...], inside: bool) -> None:
        inside = inside or phase.condition is not None
        if inside:
            out.add(path)
        for child in phase.children:
            if isinstance(child, Phase):
                walk(child, (*path, child.name), inside)

    for key, phase in zip(loop.top_keys(), loop.phases, strict=True):
        walk(phase, (key,), False)
    return out


def _cancellations(trace: Trace, static: dict[tuple[tuple[str, ...], str], list[str]], observed: dict, words: Wording) -> list[str]:
    """The sentences about cancellations that cut the run short (see ``differences``), in order of first firing."""
    loop = trace.loop
    phases = _phases(loop)
    catchers = [(path, ev.cancel) for path, ev in loop.iter_events(keyed=True) if ev.cancel is not None]
    out = []
    for e in trace.events:
        for cx in e.cancellations:
            found = [(path, cancel) for path, cancel in catchers
                     if cancel.exception == cx.exception and e.path[:len(path)] == path]
            if not found:
                continue
            path, cancel = max(found, key=lambda item: len(item[0]))
            phase = phases.get(path)
            loops = [child.name for child in (phase.children if phase else ()) if isinstance(child, Phase) and child.loop]
            missing = [key for key in static if key[0][:len(path)] == path and key not in observed
                       and not key[1].startswith("after_cancel_")]
            if not loops and not missing:
                continue
            who = cx.callback or words.own_code
            times = f" ({cx.count} times)" if cx.count > 1 else ""
            text = f"{'/'.join(e.path)}:{e.event}: {who} raised {cx.exception}{times}. {_sentence(cancel)}"
            if loops:
                later = ", ".join(_plural(name) for name in loops)
                text += f" So {'/'.join(path)} ended early: later {later} and their events never ran."
            out.append(text)
    return out


def _sentence(cancel: Cancel) -> str:
    text = cancel.description.strip()
    return text if text.endswith((".", "!", "?")) else text + "."


def _plural(name: str) -> str:
    return name + ("es" if name.endswith(("s", "sh", "tch", "x", "z")) else "s")


def _phases(loop: Loop) -> dict[tuple[str, ...], Phase]:
    """Every phase of the model by its path, the top-level ones keyed by ``Loop.top_keys``."""
    found: dict[tuple[str, ...], Phase] = {}

    def walk(phase: Phase, path: tuple[str, ...]) -> None:
        found[path] = phase
        for child in phase.children:
            if isinstance(child, Phase):
                walk(child, (*path, child.name))

    for key, phase in zip(loop.top_keys(), loop.phases, strict=True):
        walk(phase, (key,))
    return found
