"""The Hugging Face Trainer's own ``loopdoc check`` rules: what transformers 5.24's ``Trainer`` does with its callbacks.

Each rule reads the loop model and the ``LintFacts`` of ``facts.lint_facts``; each claim it prints
is from transformers 5.24's source and is checked against a real, capped ``train()`` in
``tests/transformers/test_transformers_check.py``. Names that are no event (``on_batch_end``,
``on_epoch_start``, ``on_step_ends``) are the neutral rules' (``LD101``–``LD103``).

- ``LD105``: a handler of an event that ``train()`` never fires with these ``TrainingArguments`` (the
  event is nowhere in the model of the call: ``on_evaluate`` with ``eval_strategy="no"`` and no callback
  setting ``control.should_evaluate``; ``on_substep_end`` without gradient accumulation; ``on_save``
  with ``save_strategy="no"``; ``on_push_begin`` without ``push_to_hub``);
- ``LD201``: an object in the callback list that is not a ``TrainerCallback`` (same meaning as fastai's);
- ``LD501``: ``EarlyStoppingCallback`` whose ``on_train_begin`` asserts fail: no ``metric_for_best_model``,
  or ``eval_strategy="no"``; ``LD502``: ``EarlyStoppingCallback`` without ``load_best_model_at_end`` (it warns,
  stops early all the same, and the best model is not loaded at the end); ``LD503``: a callback sets
  ``control.should_evaluate`` and the Trainer has no ``eval_dataset`` (``evaluate()`` raises ``ValueError``).
"""

from __future__ import annotations

from collections.abc import Iterable

from ...model.loop import Finding, Loop, Phase
from ..base import CallbackFacts, LintFacts, Rule
from .wording import EARLY_STOPPING


def _placed(loop: Loop) -> set[str]:
    """The events the model of the call fires somewhere."""
    return {ev.name for _, ev in loop.iter_events()}


def _attached(cb: CallbackFacts, facts: LintFacts) -> tuple[object, int | None]:
    """Where a finding about attaching ``cb`` points: its ``trainer.add_callback(...)``, else ``Trainer(...)``,
    else its class."""
    if cb.added_at is not None:
        return cb.added_at, cb.added_column
    if facts.created_at is not None:
        return facts.created_at, facts.created_column
    return cb.source, cb.column


def _why_absent(facts: LintFacts) -> dict[str, str]:
    """Why ``train()`` never fires an event the model leaves out, in the arguments' words."""
    x = facts.extra
    return {
        "on_evaluate": f"`eval_strategy={x.get('eval_strategy')!r}` and no callback sets `control.should_evaluate`, so "
                       "`train()` never runs `evaluate()`",
        "on_prediction_step": f"`eval_strategy={x.get('eval_strategy')!r}` and no callback sets `control.should_evaluate`, "
                              "so `train()` runs no evaluation loop",
        "on_substep_end": f"`gradient_accumulation_steps={x.get('gradient_accumulation_steps')}`: every micro-batch ends "
                          "its update step",
        "on_save": f"`save_strategy={x.get('save_strategy')!r}` and no callback sets `control.should_save`",
        "on_push_begin": "`push_to_hub=False`",
    }


def check_never_fired(loop: Loop, facts: LintFacts) -> Iterable[Finding]:
    """LD105: a user's handler (or ``EarlyStoppingCallback``'s ``on_evaluate``) of an event ``train()`` never fires here."""
    if loop.call.split("(", 1)[0].strip() != "train":
        return
    placed = _placed(loop)
    for event, why in _why_absent(facts).items():
        if event in placed or event not in facts.events:
            continue
        for cb in facts.callbacks:
            if event not in cb.extra.get("handles", ()):
                continue
            member = next((m for m in cb.members if m.name == event and m.callable), None)
            if member is None and not (cb.extra.get("early_stopping") and event == "on_evaluate"):
                continue  # transformers' own callbacks: their design
            if cb.extra.get("early_stopping_checks") and facts.extra.get("eval_strategy") == "no":
                continue  # LD501: train() fails at on_train_begin before any of it
            owner = member.owner if member is not None else cb.callback
            what = f"`{owner}.{event}` never runs in `train()` ({why})"
            if cb.extra.get("early_stopping") and event == "on_evaluate":
                what += f"; `{cb.callback}` never stops training"
            where = (member.source, member.column) if member is not None and member.source is not None else _attached(cb, facts)
            yield Finding("", "", what, *where, cb.callback, event)


def check_not_a_trainer_callback(loop: Loop, facts: LintFacts) -> Iterable[Finding]:
    """LD201: an object in the callbacks that is not a ``TrainerCallback``; what ``CallbackHandler`` does with it."""
    order = [ev.name for _, ev in loop.iter_events()]
    for cb in facts.callbacks:
        if cb.is_callback:
            continue
        name = cb.classes[0].rsplit(".", 1)[-1] if cb.classes else cb.callback
        missing = set(cb.extra.get("missing", ()))
        message = (f"`{cb.callback}` is not a `TrainerCallback`: the Trainer keeps it in its callback list anyway, and "
                   f"`CallbackHandler.call_event` calls `{name}.<event>(args, state, control, **kwargs)` at every event")
        first = next((e for e in order if e in missing and e != "on_init_end"), None)
        if first is not None:
            message += (f"; it has no `{first}`, so `{loop.call}` fails there with `AttributeError: '{name}' object has "
                        f"no attribute '{first}'`")
        elif missing:
            shown = ", ".join(f"`{e}`" for e in facts.events if e in missing)
            message += f"; `{loop.call}` fires none of the events it lacks ({shown}), so it runs, but any call that fires one fails"
        else:
            message += "; it has a method for every event, so it runs as a subclass would"
        yield Finding("", "", message, *_attached(cb, facts), cb.callback, None)


def check_early_stopping_fails(loop: Loop, facts: LintFacts) -> Iterable[Finding]:
    """LD501: ``EarlyStoppingCallback`` without ``metric_for_best_model``, or with ``eval_strategy="no"``: ``train()``
    fails at ``on_train_begin``."""
    if loop.call.split("(", 1)[0].strip() != "train":
        return
    x = facts.extra
    if x.get("metric_for_best_model") is None:
        problem, fix = EARLY_STOPPING["no_metric"], "set `metric_for_best_model`"
    elif x.get("eval_strategy") == "no":
        problem, fix = EARLY_STOPPING["no_eval"], "set `eval_strategy` to 'steps' or 'epoch'"
    else:
        return
    for cb in facts.callbacks:
        if cb.extra.get("early_stopping_checks"):
            yield Finding("", "", f"`{cb.callback}`: `train()` fails at `on_train_begin`, before the first step, with "
                                  f"`AssertionError: {problem}` ({fix}); `Trainer(...)` checks nothing",
                          *_attached(cb, facts), cb.callback, "on_train_begin")


def check_early_stopping_no_best(loop: Loop, facts: LintFacts) -> Iterable[Finding]:
    """LD502: ``EarlyStoppingCallback`` without ``load_best_model_at_end``: it warns; the best checkpoint is not loaded."""
    if loop.call.split("(", 1)[0].strip() != "train":
        return
    x = facts.extra
    if x.get("load_best_model_at_end") or x.get("metric_for_best_model") is None or x.get("eval_strategy") == "no":
        return  # LD501 reports the setups that fail
    for cb in facts.callbacks:
        if cb.extra.get("early_stopping_checks"):
            yield Finding("", "", f"`{cb.callback}` without `load_best_model_at_end=True`: `train()` logs a warning at "
                                  "`on_train_begin` and still stops early (that needs only `metric_for_best_model`), but "
                                  "the best model is not loaded at the end: the Trainer keeps the last one trained",
                          *_attached(cb, facts), cb.callback, "on_train_begin")


def check_evaluation_without_dataset(loop: Loop, facts: LintFacts) -> Iterable[Finding]:
    """LD503: a callback asks ``train()`` to evaluate (``control.should_evaluate``), and the Trainer has no eval dataset."""
    if loop.call.split("(", 1)[0].strip() != "train" or facts.extra.get("has_eval_dataset", True):
        return
    train = next((p for p in loop.phases if p.name == "train"), None)
    if train is None or not any(p.name == "evaluate" for p in _phases(train)):
        return
    flow = next((f for f in loop.flows if f.flag == "control.should_evaluate"), None)
    setters = [s for s in (flow.set_by if flow is not None else ()) if s.callback != "DefaultFlowCallback"]
    who = ", ".join(dict.fromkeys(f"`{s.callback}` at `{s.event}`" for s in setters)) or "a callback"
    first = facts.callback(setters[0].callback) if setters else None
    where = (first.source, first.column) if first is not None and first.source is not None else (facts.created_at, facts.created_column)
    yield Finding("", "", f"{who} sets `control.should_evaluate`, but the Trainer has no `eval_dataset`: the first evaluation "
                          "`train()` runs raises `ValueError: Trainer: evaluation requires an eval_dataset.`",
                  *where, setters[0].callback if setters else None, None)


def _phases(phase: Phase) -> Iterable[Phase]:
    yield phase
    for child in phase.children:
        if isinstance(child, Phase):
            yield from _phases(child)


RULES: tuple[Rule, ...] = (
    Rule("LD105", "warning", "a handler of an event the call never fires with these arguments (on_evaluate with "
         "eval_strategy='no'): never runs", check_never_fired),
    Rule("LD201", "warning", "an object in the callbacks that is not the framework's callback class (fastai Callback, "
         "TrainerCallback)", check_not_a_trainer_callback),
    Rule("LD501", "warning", "EarlyStoppingCallback without metric_for_best_model or with eval_strategy='no': train() "
         "fails at on_train_begin", check_early_stopping_fails),
    Rule("LD502", "info", "EarlyStoppingCallback without load_best_model_at_end: the best model is not loaded at the end",
         check_early_stopping_no_best),
    Rule("LD503", "warning", "a callback sets control.should_evaluate and the Trainer has no eval_dataset: train() raises "
         "ValueError at that evaluation", check_evaluation_without_dataset),
)
"""The Trainer's rules (``TransformersAdapter.rules``)."""
