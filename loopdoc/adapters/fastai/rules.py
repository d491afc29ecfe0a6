"""fastai's own ``loopdoc check`` rules: what fastai 2.8's loop does with the callbacks a ``Learner`` has.

Each rule reads the loop model and the ``LintFacts`` of ``facts.lint_facts``; each claim it
prints is from fastai 2.8.12's source and is checked against a real ``fit`` in
``tests/fastai/test_check.py``:

- ``Learner.__init__`` fires ``after_create`` once, as its last statement (``fastai/learner.py``);
- ``Learner._call_one`` calls every object of ``learn.cbs`` (sorted by ``order``) as ``cb(event_name)``,
  whatever it is, and ignores the result; ``Learner.add_cb`` instantiates a class, sets
  ``cb.learn`` and ``setattr(learn, cb.name, cb)`` and appends, never checking for one already there;
- ``Callback.__call__`` (``fastai/callback/core.py``) runs the event method only when ``self.run`` and,
  for the events of ``_inner_loop``, ``run_train`` (while training) or ``run_valid`` (while not);
  at ``after_fit`` it sets ``self.run = True``. ``_inner_loop`` is ``before_batch`` … ``after_batch``
  without ``after_cancel_step``, and without the ``train``/``validate`` phase events.

Codes: ``LD104`` (a handler that never runs: ``after_create`` on a callback added later),
``LD201``–``LD203`` (not a callback; twice), ``LD301``–``LD305`` (flags).
"""

from __future__ import annotations

from collections.abc import Iterable

from ...model.loop import Finding, Loop
from ..base import CallbackFacts, LintFacts, Member, Rule

TRAIN_PHASE = ("before_train", "after_cancel_train", "after_train")
VALID_PHASE = ("before_validate", "after_cancel_validate", "after_validate")


def _handled(loop: Loop) -> set[tuple[str, str]]:
    """``(callback id, event)`` for every handler the model lists anywhere."""
    return {(h.callback, ev.name) for _, ev in loop.iter_events() for h in ev.handlers}


def _handler(cb: CallbackFacts, event: str) -> Member | None:
    """The member of the user's code that handles ``event`` for ``cb``, or ``None``."""
    return next((m for m in cb.members if m.name == event and m.callable), None)


def _at(cb: CallbackFacts, m: Member | None = None) -> tuple[object, int | None]:
    """Where a finding about ``cb`` points: the member, else the class, else where it was attached."""
    if m is not None and m.source is not None:
        return m.source, m.column
    if cb.source is not None:
        return cb.source, cb.column
    return cb.added_at, cb.added_column


def _attached(cb: CallbackFacts, facts: LintFacts, loop: Loop) -> tuple[object, int | None]:
    """Where a finding about attaching ``cb`` points: where the user's code attached it; for a callback a call added
    (``fit(cbs=...)``, ``fit_one_cycle``) its class; else where the learner was built; else its class."""
    if cb.added_at is not None:
        return cb.added_at, cb.added_column
    added_by_call = any(c.id == cb.callback and c.origin for c in loop.callbacks)
    if facts.created_at is not None and not added_by_call:
        return facts.created_at, facts.created_column
    return cb.source, cb.column


def _switched(loop: Loop, facts: LintFacts) -> Iterable[tuple[object, CallbackFacts]]:
    """The model's callbacks (fastai ``Callback`` objects without their own ``__call__``) with their facts."""
    for cb in loop.callbacks:
        f = facts.callback(cb.id)
        if f is not None and f.is_callback and not cb.receives_all:
            yield cb, f


def check_late_after_create(loop: Loop, facts: LintFacts) -> Iterable[Finding]:
    """LD104: an ``after_create`` method on a callback attached after ``Learner.__init__`` fired it: it never runs."""
    handled = _handled(loop)
    for cb, f in _switched(loop, facts):
        m = _handler(f, "after_create")
        if m is None or not cb.flags.get("run", True) or (cb.id, "after_create") in handled:
            continue
        if cb.origin:
            how = cb.origin
        elif f.added_at is not None and f.added_at.line is not None:
            how = f"at {f.added_at.file}:{f.added_at.line}"
        else:
            how = "after the learner was built"
        yield Finding("", "", f"`{m.owner}.after_create` never runs: fastai fires `after_create` once, at the end of "
                              f"`Learner.__init__`, and `{cb.id}` was attached later ({how})", *_at(f, m), cb.id, m.name)


def check_not_a_callback(loop: Loop, facts: LintFacts) -> Iterable[Finding]:
    """LD201: an object in the callbacks that is not a fastai ``Callback`` (a ``Transform`` passed in ``cbs``)."""
    for f in facts.callbacks:
        if f.is_callback:
            continue
        name = f.classes[0].rsplit(".", 1)[-1] if f.classes else f.callback
        kind = " (it is a `Transform`)" if f.extra.get("transform") else ""
        message = (f"`{f.callback}` is not a fastai `Callback`{kind}: fastai runs none of its methods as event handlers; "
                   f"`Learner._call_one` calls `{name}(event_name)` with each event's name at every event and ignores "
                   "the result, so the fit runs as long as that call returns")
        if f.extra.get("at_create"):
            message += " (it did for `after_create`, while the learner was built)"
        if f.extra.get("transform"):
            message += f", and `{f.callback}` never transforms a batch (pass a transform in `item_tfms` or `batch_tfms`)"
        yield Finding("", "", message, *_attached(f, facts, loop), f.callback, None)


def check_same_class_twice(loop: Loop, facts: LintFacts) -> Iterable[Finding]:
    """LD202: two or more instances of one callback class attached together (``learn.to_fp16()`` twice)."""
    reported: set[tuple[str, ...]] = set()
    for group in facts.groups:
        by_class: dict[str, list[str]] = {}
        for cb_id in group:
            f = facts.callback(cb_id)
            if f is None or not f.is_callback or not f.classes or f.classes[0] == facts.extra.get("base"):
                continue  # fastai's own `Callback(before_batch=f)`: each instance has its own handlers
            ids = by_class.setdefault(f.classes[0], [])
            if cb_id not in ids:
                ids.append(cb_id)
        for qualname, ids in by_class.items():
            if len(ids) < 2 or tuple(ids) in reported:
                continue
            reported.add(tuple(ids))
            cls = qualname.rsplit(".", 1)[-1]
            shown = ", ".join(f"`{i}`" for i in ids)
            message = (f"{len(ids)} `{cls}` callbacks are attached together ({shown}): fastai runs each of them at every "
                       f"event `{cls}` handles (`Learner.add_cb` does not check for one already attached)")
            every = [facts.callback(i) for i in ids]
            names = {f.extra.get("name") for f in every if f is not None}
            if all(f is not None and f.added_at is not None for f in every) and len(names) == 1 and None not in names:
                message += f", and `learn.{names.pop()}` refers only to the last one added, `{ids[-1]}`"
            last = facts.callback(ids[-1])
            assert last is not None
            yield Finding("", "", message, *_attached(last, facts, loop), ids[-1], None)


def check_same_object_twice(loop: Loop, facts: LintFacts) -> Iterable[Finding]:
    """LD203: one callback object attached twice (``cbs=[cb, cb]``): fastai runs it twice at every event."""
    reported: set[str] = set()
    for group in facts.groups:
        for cb_id in dict.fromkeys(group):
            times = group.count(cb_id)
            f = facts.callback(cb_id)
            if times < 2 or cb_id in reported or f is None:
                continue
            reported.add(cb_id)
            count = "twice" if times == 2 else f"{times} times"
            yield Finding("", "", f"`{cb_id}` is attached {count} (the same object): fastai runs it {count} at every event "
                                  "it handles, one right after the other", *_attached(f, facts, loop), cb_id, None)


def _batch_events(loop: Loop, facts: LintFacts) -> set[str]:
    """The events of ``_inner_loop`` that the loop fires somewhere."""
    inner = set(facts.extra.get("inner_loop", ()))
    return {ev.name for _, ev in loop.iter_events() if ev.name in inner}


def check_both_flags_off(loop: Loop, facts: LintFacts) -> Iterable[Finding]:
    """LD301: ``run_train`` and ``run_valid`` both False: the callback's batch-loop handlers never run."""
    batch = _batch_events(loop, facts)
    for cb, f in _switched(loop, facts):
        if cb.flags.get("run_train", True) or cb.flags.get("run_valid", True):
            continue
        for m in f.members:
            if m.callable and m.name in batch:
                yield Finding("", "", f"`{m.owner}.{m.name}` never runs: `{cb.id}` has `run_train=False` and "
                                      f"`run_valid=False`, and fastai's `Callback.__call__` skips such a callback at every "
                                      f"event of the batch loop (`{m.name}` is one of `_inner_loop`)", *_at(f, m), cb.id, m.name)


def check_run_off(loop: Loop, facts: LintFacts) -> Iterable[Finding]:
    """LD302: ``run=False`` when the loop starts: fastai skips the callback until the ``after_fit`` that ends the next fit."""
    for cb, f in _switched(loop, facts):
        if cb.flags.get("run", True):
            continue
        handles = [e for e in f.extra.get("handles", ()) if e != "after_create"]  # after_create is no part of a fit
        if not handles:
            continue
        run = next((m for m in f.members if m.name == "run" and not m.callable and m.defined_by is not None), None)
        source, column = (run.source, run.column) if run is not None and run.source is not None else _at(f)
        listed = ", ".join(f"`{e}`" for e in handles)
        fits = sum(1 for p in loop.phases if p.name == "fit")
        method = loop.call.split("(", 1)[0].strip().rpartition(".")[2] or "fit"
        call = "fit" if method.startswith("fit") or fits > 1 or method == "fine_tune" else method
        what = f"handler {listed} does" if len(handles) == 1 else f"handlers {listed} do"
        yield Finding("", "", f"`{cb.id}` has `run=False`: fastai skips it at every event of the next `{call}`, so its {what} "
                              f"not run there; at the end of that `{call}`, `after_fit` sets `run` back to True", source, column, cb.id, "run")


def check_cancel_step_runs(loop: Loop, facts: LintFacts) -> Iterable[Finding]:
    """LD303: a ``run_train=False`` callback's ``after_cancel_step`` runs during training anyway."""
    handled = _handled(loop)
    for cb, f in _switched(loop, facts):
        m = _handler(f, "after_cancel_step")
        if m is None or cb.flags.get("run_train", True) or (cb.id, "after_cancel_step") not in handled:
            continue
        yield Finding("", "", f"`{m.owner}.after_cancel_step` runs during training although `{cb.id}` has `run_train=False`: "
                              "fastai's flags filter only the events of `_inner_loop`, and `after_cancel_step` (fired when a "
                              "`CancelStepException` skips the optimizer step) is not one of them", *_at(f, m), cb.id, m.name)


def check_training_only(loop: Loop, facts: LintFacts) -> Iterable[Finding]:
    """LD304: a ``run_train=False`` callback's handler of an event that fires only while training: it never runs."""
    places: dict[str, set[str | None]] = {}
    for _, ev in loop.iter_events():
        places.setdefault(ev.name, set()).add(ev.filter)
    training_only = {name for name, filters in places.items() if filters == {"run_train"}}
    handled = _handled(loop)
    for cb, f in _switched(loop, facts):
        if cb.flags.get("run_train", True) or not cb.flags.get("run_valid", True):
            continue  # both off: LD301
        for m in f.members:
            if m.callable and m.name in training_only and (cb.id, m.name) not in handled:
                yield Finding("", "", f"`{m.owner}.{m.name}` never runs: fastai fires `{m.name}` only while training, and "
                                      f"`{cb.id}` has `run_train=False`, which skips it there", *_at(f, m), cb.id, m.name)


def check_phase_events_unfiltered(loop: Loop, facts: LintFacts) -> Iterable[Finding]:
    """LD305: ``run_train=False`` with a train-phase handler, or ``run_valid=False`` with a validate-phase one: it runs."""
    handled = _handled(loop)
    for cb, f in _switched(loop, facts):
        for flag, events in (("run_train", TRAIN_PHASE), ("run_valid", VALID_PHASE)):
            if cb.flags.get(flag, True):
                continue
            for m in f.members:
                if m.callable and m.name in events and (cb.id, m.name) in handled:
                    yield Finding("", "", f"`{m.owner}.{m.name}` runs although `{cb.id}` has `{flag}=False`: `{flag}` filters "
                                          f"only the batch-loop events (`_inner_loop`), not `{m.name}`", *_at(f, m), cb.id, m.name)


RULES: tuple[Rule, ...] = (
    Rule("LD104", "warning", "an after_create method on a callback attached after the Learner was built: never runs",
         check_late_after_create),
    Rule("LD201", "warning", "an object in the callbacks that is not a fastai Callback (e.g. a Transform in cbs)",
         check_not_a_callback),
    Rule("LD202", "warning", "two or more instances of one callback class attached together (to_fp16() twice)",
         check_same_class_twice),
    Rule("LD203", "warning", "one callback object attached twice: it runs twice at every event", check_same_object_twice),
    Rule("LD301", "warning", "run_train and run_valid both False: the batch-loop handlers never run", check_both_flags_off),
    Rule("LD302", "warning", "run=False when the loop starts: skipped for the whole next fit", check_run_off),
    Rule("LD303", "warning", "run_train=False with an after_cancel_step handler: it runs during training anyway",
         check_cancel_step_runs),
    Rule("LD304", "warning", "run_train=False with a handler of a training-only event: never runs", check_training_only),
    Rule("LD305", "warning", "run_train/run_valid=False with a train/validate phase handler: it runs anyway",
         check_phase_events_unfiltered),
)
"""fastai's rules (``FastaiAdapter.rules``)."""
