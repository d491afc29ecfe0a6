"""``loopdoc check``: every rule's claim against a real ``fit``, the exact findings of the shipped examples, the
command line's formats and exit codes, the findings in every rendered output, and every note kind against a real run.

The learners load in this process (``loopdoc.load.load`` + ``loopdoc.worker.perform``, the worker's own code), once
per module; ``tests/observe.py``'s ``recording`` is the oracle of what fastai really ran. One command-line run checks
every shipped example in worker processes, as CI does.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import types
import warnings
from pathlib import Path

import pytest
from helpers import EXAMPLES, ROOT

from loopdoc.analysis.lint import NEUTRAL_RULES, lint_loop, parse_codes, run_rules, select
from loopdoc.cli import main
from loopdoc.errors import UsageError
from loopdoc.model.check import Checked, CheckError, CheckReport
from loopdoc.model.documents import check_schema, load_json, validator
from loopdoc.model.loop import Finding, SourceLocation
from loopdoc.rendering.check import escape_property, github_line, render_check, summary

pytestmark = [pytest.mark.fastai, pytest.mark.subprocess]

SETUPS = "tests/fixtures/check/setups.py"
STALE = "examples/stale_names.py"


@contextlib.contextmanager
def in_root():
    """From the repository root, output kept (for the command line's own stdout)."""
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        yield
    finally:
        os.chdir(cwd)


@contextlib.contextmanager
def quiet_in_root():
    """From the repository root (paths in findings relative to it), fastai's progress output swallowed."""
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch: "CUDA is not available … Disabling autocast" (MixedPrecision on CPU)
            yield
    finally:
        os.chdir(cwd)


def load_and_lint(spec: str, record: bool = False) -> types.SimpleNamespace:
    """Load ``spec`` in this process and build its loop as the worker does; with ``record``, observe the load too."""
    from observe import recording

    from loopdoc.load import load
    from loopdoc.worker import perform

    with quiet_in_root(), recording() if record else contextlib.nullcontext({}) as created:
        loaded = load(spec)
        loop = perform(loaded, {"what": "loop", "call": None})
    return types.SimpleNamespace(loaded=loaded, learn=loaded.trainer, loop=loop, created=created)


def fit(learn, epochs: int = 1) -> dict:
    """A real ``learn.fit(epochs)``, recorded (``observe.recording``)."""
    from observe import recording

    with quiet_in_root(), recording() as seen:
        learn.fit(epochs)
    return seen


def shown(loop) -> list[str]:
    """The findings as ``loopdoc check`` prints them."""
    return render_check(CheckReport((Checked("x", findings=loop.findings),)), "text").splitlines()


def ran(seen: dict, function: str) -> list[tuple[tuple[str, ...], str]]:
    """``(phase path, event)`` of every place where ``function`` (a qualname) ran."""
    return [(tuple(f["path"]), f["event"]) for f in seen["observed"] for r in f["ran"] if r["function"] == function]


# --- the shipped example with stale names: LD101, LD102, LD103 ------------------------------------------------------

STALE_FINDINGS = [
    "examples/stale_names.py:17:5: LD101 `LegacyNames.begin_fit` is never called: fastai 2.8 has no event `begin_fit` "
    "(did you mean `before_fit`? fastai 2 renamed `begin_*` to `before_*`)",
    "examples/stale_names.py:21:5: LD101 `LegacyNames.begin_batch` is never called: fastai 2.8 has no event `begin_batch` "
    "(did you mean `before_batch`? fastai 2 renamed `begin_*` to `before_*`)",
    "examples/stale_names.py:24:5: LD101 `LegacyNames.on_epoch_end` is never called: fastai 2.8 has no event `on_epoch_end` "
    "(did you mean `after_epoch`? `on_epoch_end` is fastai 1's name)",
    "examples/stale_names.py:31:5: LD102 `Typos.after_epochs` is never called: fastai 2.8 has no event `after_epochs` "
    "(did you mean `after_epoch`?)",
    "examples/stale_names.py:34:5: LD102 `Typos.before_bacth` is never called: fastai 2.8 has no event `before_bacth` "
    "(did you mean `before_batch`?)",
    "examples/stale_names.py:45:5: LD103 `CustomEvent.after_zero_grad` is never called: fastai 2.8 has no event "
    "`after_zero_grad` and none is near; only a training loop changed to fire `after_zero_grad` would call it",
]


@pytest.fixture(scope="module")
def stale() -> types.SimpleNamespace:
    return load_and_lint(STALE)


def test_stale_names_findings(stale):
    assert shown(stale.loop) == STALE_FINDINGS
    lines = (ROOT / STALE).read_text().splitlines()
    for f in stale.loop.findings:  # each points at the `def` of the method it names
        assert lines[f.source.line - 1][f.column - 1:].startswith(f"def {f.name}("), f
        assert f.callback in {"LegacyNames", "Typos", "CustomEvent"} and f.level == "warning"


def test_stale_names_are_never_called_in_a_real_fit(stale):
    """Every function of the example file that runs in a real fit: none of the six the findings name."""
    called: set[str] = set()
    path = str(ROOT / STALE)

    def profiler(frame, what, arg):
        if what == "call" and frame.f_code.co_filename == path:
            called.add(frame.f_code.co_qualname)

    sys.setprofile(profiler)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            stale.learn.fit(1)
    finally:
        sys.setprofile(None)
    assert called == {"CustomEvent.before_fit", "CustomEvent.after_batch", "CustomEvent.after_logging"}
    assert stale.learn.custom_event.logged == 24, "the helper named like an event ran, called by after_batch (16 + 8 batches)"


# --- one learner with one of each fastai setup: LD104, LD2xx, LD3xx -------------------------------------------------

SETUP_FINDINGS = [
    "tests/fixtures/check/setups.py:25:5: LD301 `BothOff.after_batch` never runs: `BothOff` has `run_train=False` and "
    "`run_valid=False`, and fastai's `Callback.__call__` skips such a callback at every event of the batch loop "
    "(`after_batch` is one of `_inner_loop`)",
    "tests/fixtures/check/setups.py:32:5: LD302 `Off` has `run=False`: fastai skips it at every event of the next `fit`, "
    "so its handlers `before_fit`, `after_batch` do not run there; at the end of that `fit`, `after_fit` sets `run` back "
    "to True",
    "tests/fixtures/check/setups.py:46:5: LD303 `ValidOnlyCancel.after_cancel_step` runs during training although "
    "`ValidOnlyCancel` has `run_train=False`: fastai's flags filter only the events of `_inner_loop`, and "
    "`after_cancel_step` (fired when a `CancelStepException` skips the optimizer step) is not one of them",
    "tests/fixtures/check/setups.py:55:5: LD304 `TrainOnlyEvents.before_step` never runs: fastai fires `before_step` only "
    "while training, and `TrainOnlyEvents` has `run_train=False`, which skips it there",
    "tests/fixtures/check/setups.py:58:5: LD304 `TrainOnlyEvents.after_backward` never runs: fastai fires `after_backward` "
    "only while training, and `TrainOnlyEvents` has `run_train=False`, which skips it there",
    "tests/fixtures/check/setups.py:67:5: LD305 `PhaseEvents.after_validate` runs although `PhaseEvents` has "
    "`run_valid=False`: `run_valid` filters only the batch-loop events (`_inner_loop`), not `after_validate`",
    "tests/fixtures/check/setups.py:75:5: LD104 `Late.after_create` never runs: fastai fires `after_create` once, at the "
    "end of `Learner.__init__`, and `Late` was attached later (at tests/fixtures/check/setups.py:101)",
    "tests/fixtures/check/setups.py:99:9: LD201 `RandomErasing` is not a fastai `Callback` (it is a `Transform`): fastai "
    "runs none of its methods as event handlers; `Learner._call_one` calls `RandomErasing(event_name)` with each event's "
    "name at every event and ignores the result, so the fit runs as long as that call returns (it did for `after_create`, "
    "while the learner was built), and `RandomErasing` never transforms a batch (pass a transform in `item_tfms` or "
    "`batch_tfms`)",
    "tests/fixtures/check/setups.py:99:9: LD202 2 `Twice` callbacks are attached together (`Twice`, `Twice-2`): fastai "
    "runs each of them at every event `Twice` handles (`Learner.add_cb` does not check for one already attached), and "
    "`learn.twice` refers only to the last one added, `Twice-2`",
    "tests/fixtures/check/setups.py:99:9: LD203 `Shared` is attached twice (the same object): fastai runs it twice at "
    "every event it handles, one right after the other",
    "tests/fixtures/check/setups.py:99:9: LD401 `Twice` and `Twice-2` have equal `order` (17) and both respond to "
    "`after_batch`: they run in the cbs list order, which alone decides which runs first",
    "tests/fixtures/check/setups.py:103:1: LD202 2 `MixedPrecision` callbacks are attached together (`MixedPrecision`, "
    "`MixedPrecision-2`): fastai runs each of them at every event `MixedPrecision` handles (`Learner.add_cb` does not "
    "check for one already attached), and `learn.mixed_precision` refers only to the last one added, `MixedPrecision-2`",
]


@pytest.fixture(scope="module")
def setups() -> types.SimpleNamespace:
    """The fixture learner loaded (its ``after_create`` recorded) and linted, then two real fits, each recorded."""
    s = load_and_lint(SETUPS, record=True)
    s.first = fit(s.learn)
    s.off_after_first = s.learn.off.run
    s.second = fit(s.learn)
    return s


def test_setups_findings(setups):
    assert shown(setups.loop) == SETUP_FINDINGS
    assert [f.level for f in setups.loop.findings].count("info") == 1


def test_real_fit_completes_with_every_setup(setups):
    assert [f["event"] for f in setups.first["observed"]][-1] == "after_fit"
    assert not any(f["raised"] for f in setups.first["observed"] if f["event"] != "before_step"), "only the planned cancel"


def test_ld104_after_create_never_reaches_a_callback_added_later(setups):
    created = {r["function"] for f in setups.created["observed"] for r in f["ran"]}
    assert "TrainEvalCallback.after_create" in created and "Late.after_create" not in created
    assert ran(setups.first, "Late.before_fit") == [(("fit#1",), "before_fit")], "Late itself runs"


def test_ld201_a_transform_in_cbs_is_called_with_event_names_and_the_fit_runs(setups):
    """``Learner._call_one`` calls the ``Transform`` at every event, with the event's name, never with a batch."""
    from fastai.learner import Learner
    from fastai.vision.augment import RandomErasing

    target = next(cb for cb in setups.learn.cbs if isinstance(cb, RandomErasing))
    code, call_one = type(target).__call__.__code__, Learner._call_one.__code__
    args: list = []
    fired: list = []

    def profiler(frame, what, arg):
        if what == "call" and frame.f_code is code and frame.f_locals.get("self") is target:
            args.append(frame.f_locals[code.co_varnames[1]])
        elif what == "call" and frame.f_code is call_one:
            fired.append(frame.f_locals["event_name"])

    sys.setprofile(profiler)
    try:
        with quiet_in_root():
            setups.learn.fit(1)
    finally:
        sys.setprofile(None)
    assert fired[0] == "before_fit" and fired[-1] == "after_fit", "the fit completed"
    cancelled = fired.index("before_step")  # SkipFirstStep (order 1) raises there: the later callbacks wait in vain
    assert args == fired[:cancelled] + fired[cancelled + 1:], "called once per event, with the event's name only"
    assert all(type(a) is str for a in args)
    assert setups.loop.callbacks[[c.id for c in setups.loop.callbacks].index("RandomErasing")].kind == "object"
    assert not any("RandomErasing" in note for note in setups.loop.notes), "no note claims the fit fails on it"


def test_ld202_two_instances_of_one_class_both_run(setups):
    batches = [f for f in setups.first["observed"] if f["event"] == "after_batch"]
    assert len(batches) == 24
    for f in batches:
        assert [r["callback"] for r in f["ran"] if r["function"] == "Twice.after_batch"] == ["Twice", "Twice-2"]
    mixed = [r["callback"] for f in setups.first["observed"] if f["event"] == "before_fit" for r in f["ran"]
             if r["function"].startswith("MixedPrecision.")]
    assert mixed == ["MixedPrecision", "MixedPrecision-2"]
    from fastai.callback.fp16 import MixedPrecision

    both = [cb for cb in setups.learn.cbs if isinstance(cb, MixedPrecision)]
    assert len(both) == 2 and setups.learn.mixed_precision is both[-1] and setups.learn.twice is setups.learn.cbs[
        [type(cb).__name__ for cb in setups.learn.cbs].index("Twice") + 1]


def test_ld203_one_object_twice_runs_twice(setups):
    for f in setups.first["observed"]:
        if f["event"] == "after_batch":
            assert [r["callback"] for r in f["ran"] if r["function"] == "Shared.after_batch"] == ["Shared", "Shared"]


def test_ld301_both_flags_off_never_runs_in_the_batch_loop(setups):
    assert ran(setups.first, "BothOff.after_batch") == []


def test_ld302_run_false_skips_the_next_fit_then_runs(setups):
    assert ran(setups.first, "Off.before_fit") == [] and ran(setups.first, "Off.after_batch") == []
    assert setups.off_after_first is True, "after_fit set run back to True"
    assert ran(setups.second, "Off.before_fit") == [(("fit#1",), "before_fit")]
    assert len(ran(setups.second, "Off.after_batch")) == 24


def test_ld303_after_cancel_step_reaches_a_run_train_false_callback_while_training(setups):
    assert ran(setups.first, "ValidOnlyCancel.after_cancel_step") == [(("fit#1", "epoch", "train", "batch", "step"),
                                                                       "after_cancel_step")]


def test_ld304_training_only_events_never_reach_run_train_false(setups):
    fired = {f["event"] for f in setups.first["observed"]}
    assert {"before_step", "after_backward"} <= fired
    assert ran(setups.first, "TrainOnlyEvents.before_step") == [] and ran(setups.first, "TrainOnlyEvents.after_backward") == []


def test_ld305_phase_events_reach_run_valid_false(setups):
    assert ran(setups.first, "PhaseEvents.after_validate") == [(("fit#1", "epoch", "validate"), "after_validate")]


@pytest.fixture(scope="module")
def custom() -> types.SimpleNamespace:
    return load_and_lint("examples/custom_callbacks.py")


def test_ld401_equal_order_runs_in_insertion_order(custom):
    """``LogBatch`` and ``LogTrainBatch`` (order 5): only the list order decides; reversed, they run reversed."""
    from fastai.test_utils import synth_learner

    ties = [f for f in custom.loop.findings if f.code == "LD401"]
    assert [f.message for f in ties] == [
        "`LogBatch` and `LogTrainBatch` have equal `order` (5) and both respond to `before_fit`, `after_batch`: they run "
        "in the cbs list order, which alone decides which runs first"]
    ns = custom.loaded.namespace

    def first_at_before_fit(cbs):
        seen = fit(synth_learner(n_trn=4, n_val=4, cbs=cbs))
        return [r["callback"] for f in seen["observed"] if f["event"] == "before_fit" for r in f["ran"]
                if r["callback"].startswith("Log")]

    assert first_at_before_fit([ns["LogBatch"](), ns["LogTrainBatch"]()]) == ["LogBatch", "LogTrainBatch"]
    assert first_at_before_fit([ns["LogTrainBatch"](), ns["LogBatch"]()]) == ["LogTrainBatch", "LogBatch"]


def test_ld401_ties_that_differ_by_place_say_where():
    """With a second ``LogBatch`` (``fit(1, cbs=[LogBatch()])``) three callbacks of order 5 respond to ``after_batch``
    in training, two in validation (``LogTrainBatch`` has ``run_valid=False``): both findings name ``after_batch``, so
    each says where, and a real fit runs exactly those there."""
    from loopdoc.worker import perform

    fresh = load_and_lint("examples/custom_callbacks.py")
    with quiet_in_root():
        loop = perform(fresh.loaded, {"what": "loop", "call": "fit(1, cbs=[LogBatch()])"})
    assert [f.message for f in loop.findings if f.code == "LD401"] == [
        "`LogBatch` and `LogBatch-2` have equal `order` (5) and both respond to `after_batch` (fit › epoch › validate › "
        "batch): they run in the cbs list order, which alone decides which runs first",
        "`LogBatch`, `LogTrainBatch` and `LogBatch-2` have equal `order` (5) and all respond to `before_fit`, `after_batch` "
        "(fit › epoch › train › batch): they run in the cbs list order, which alone decides which runs first"]
    from observe import recording

    with quiet_in_root(), recording() as seen:
        fresh.learn.fit(1, cbs=[fresh.loaded.namespace["LogBatch"]()])
    order5 = {"LogBatch", "LogTrainBatch", "LogBatch-2"}

    def tied(path, event):
        return {tuple(r["callback"] for r in f["ran"] if r["callback"] in order5) for f in seen["observed"]
                if tuple(f["path"]) == path and f["event"] == event}

    assert tied(("fit#1", "epoch", "train", "batch"), "after_batch") == {("LogBatch", "LogTrainBatch", "LogBatch-2")}
    assert tied(("fit#1", "epoch", "validate", "batch"), "after_batch") == {("LogBatch", "LogBatch-2")}
    assert tied(("fit#1",), "before_fit") == {("LogBatch", "LogTrainBatch", "LogBatch-2")}


# --- notes: each kind against a real run ---------------------------------------------------------------------------


def _broken(name: str, **body):
    from fastai.callback.core import Callback

    return type(name, (Callback,), body)()


def _fit_events(cb) -> tuple[list[str], list[dict]]:
    """``(notes, events)`` for a synthetic learner with ``cb`` added (``learn.add_cb``), after a real ``fit(1)``.

    ``events``: every event ``Learner._call_one`` was entered for, in order, with ``learn.training`` then and the
    exception it raised (``tests/observe.py`` sorts the callbacks itself, so it cannot watch a sort that fails).
    """
    from fastai.learner import Learner
    from fastai.test_utils import synth_learner

    import loopdoc

    learn = synth_learner(n_trn=4, n_val=4)
    learn.add_cb(cb)
    notes = list(loopdoc.loop(learn).notes)
    events: list[dict] = []
    original = Learner._call_one

    def call_one(self, event_name):
        events.append({"event": event_name, "training": self.training, "raised": None})
        try:
            original(self, event_name)
        except Exception as e:
            events[-1]["raised"] = type(e).__name__
            raise

    Learner._call_one = call_one
    try:
        with quiet_in_root(), contextlib.suppress(ValueError):
            learn.fit(1)
    finally:
        Learner._call_one = original
    return notes, events


def _boom(self):
    raise ValueError("boom")


def test_note_order_raises_fails_at_the_first_event():
    notes, events = _fit_events(_broken("BadOrder", order=property(_boom)))
    assert notes == ["`BadOrder.order` raises ValueError: boom: fastai sorts the callbacks by `order` before every event "
                     "(`Learner._call_one`: `self.cbs.sorted('order')`), so a real `fit` fails at its first event. loopdoc "
                     "places `BadOrder` as if its `order` were 0."]
    assert [(e["event"], e["raised"]) for e in events] == [("before_fit", "ValueError")]


def test_note_run_raises_fails_at_the_first_event_that_reaches_it():
    notes, events = _fit_events(_broken("BadRun", run=property(_boom)))
    assert notes == ["`BadRun.run` raises ValueError: boom: fastai's `Callback.__call__` reads `run` to decide whether to "
                     "call the callback, so a real `fit` fails at the first event that reaches it. loopdoc shows `run` as True."]
    assert [(e["event"], e["raised"]) for e in events] == [("before_fit", "ValueError")]


def test_note_run_train_raises_fails_at_the_first_before_batch():
    notes, events = _fit_events(_broken("BadRunTrain", run_train=property(_boom)))
    assert notes == ["`BadRunTrain.run_train` raises ValueError: boom: fastai's `Callback.__call__` reads `run_train` to "
                     "decide whether to call the callback, so a real `fit` fails at its first `before_batch`. loopdoc shows "
                     "`run_train` as True."]
    assert [e["event"] for e in events] == ["before_fit", "before_epoch", "before_train", "before_batch"]
    assert events[-1]["raised"] == "ValueError" and events[-1]["training"] is True


def test_note_run_valid_raises_fails_at_the_first_validation_before_batch():
    notes, events = _fit_events(_broken("BadRunValid", run_valid=property(_boom)))
    assert notes == ["`BadRunValid.run_valid` raises ValueError: boom: fastai's `Callback.__call__` reads `run_valid` to "
                     "decide whether to call the callback, so a real `fit` fails at its first validation `before_batch`. "
                     "loopdoc shows `run_valid` as True."]
    assert [(e["event"], e["training"]) for e in events if e["raised"]] == [("before_batch", False)]
    assert "after_train" in [e["event"] for e in events], "the training part completed first"


def test_note_no_train_eval_callback_skips_backward_and_step():
    s = load_and_lint("tests/fixtures/learners/no_train_eval.py")
    assert any(n.startswith("No `TrainEvalCallback`: nothing sets `learn.training = True`, so fastai skips the backward "
                            "pass and the optimizer step") for n in s.loop.notes)
    seen = fit(s.learn)
    fired = {f["event"] for f in seen["observed"]}
    assert "before_batch" in fired and not fired & {"before_backward", "after_backward", "before_step", "after_step"}


def test_note_learner_attribute_named_like_an_event_is_called_once_per_callback():
    """``learn.after_fit`` set on the learner: fastai calls it (through ``GetAttr``) once per callback without its own."""
    from fastai.test_utils import synth_learner

    import loopdoc

    learn = synth_learner(n_trn=4, n_val=4)
    calls: list[int] = []
    learn.after_fit = lambda: calls.append(1)
    loop = loopdoc.loop(learn)
    assert any(n.startswith("`learn` has an attribute `after_fit`: fastai's `Callback.__call__` finds it through attribute "
                            "delegation (`GetAttr`), so it calls `learn.after_fit` once for each running callback that does "
                            "not define `after_fit` itself") for n in loop.notes)
    own = {h.callback for _, ev in loop.iter_events() if ev.name == "after_fit" for h in ev.handlers}
    fit(learn)
    assert len(calls) == len(loop.callbacks) - len(own) > 0


def test_no_flag_note_for_an_object_that_is_not_a_callback():
    """fastai never reads flags of an object that is not a ``Callback``: no note says a fit fails, and it does not."""
    class Plain:  # callable, with what Learner.add_cb needs
        name, order = "plain", 0

        def __call__(self, event_name):
            return event_name

    notes, events = _fit_events(Plain())
    assert notes == [] and events[-1]["event"] == "after_fit" and not any(e["raised"] for e in events)


# --- the engine, neutral and adapter-free -----------------------------------------------------------------------------


def test_an_adapter_without_rules_or_facts_still_works(stale):
    class Bare:
        name = "bare"

    assert lint_loop(stale.loop, Bare(), None, {}) is stale.loop


def test_rules_set_code_and_level_and_sort(stale):
    from loopdoc.adapters.base import LintFacts, Rule

    facts = LintFacts("x", "1.0", ("before_fit",))
    b = Finding("?", "?", "b", SourceLocation("b.py", 2), 1)
    a = Finding("?", "?", "a", SourceLocation("a.py", 9), None)
    rule = Rule("XX1", "info", "test", lambda loop, facts: [b, a, a])
    assert [(f.code, f.level, f.message) for f in run_rules(stale.loop, facts, [rule])] == [("XX1", "info", "a"),
                                                                                           ("XX1", "info", "b")]
    assert {r.code for r in NEUTRAL_RULES} == {"LD101", "LD102", "LD103", "LD401"}


def test_select_and_ignore_by_code_and_prefix(stale):
    codes = lambda fs: [f.code for f in fs]  # noqa: E731
    all_codes = codes(stale.loop.findings)
    assert codes(select(stale.loop.findings, ("LD10",), ())) == all_codes
    assert codes(select(stale.loop.findings, (), ("LD1",))) == []
    assert codes(select(stale.loop.findings, ("LD102",), ("LD1",))) == ["LD102", "LD102"], "a longer --select wins"
    assert codes(select(stale.loop.findings, ("LD1",), ("LD101",))) == ["LD102", "LD102", "LD103"]
    assert parse_codes(["ld1, LD401", "LD1"], "--select") == ("LD1", "LD401")
    with pytest.raises(UsageError, match="--select LD999: no rule has this code or prefix"):
        parse_codes(["LD999"], "--select")
    with pytest.raises(UsageError, match="--ignore 1X: not a rule code"):
        parse_codes(["1x"], "--ignore")


# --- command line ------------------------------------------------------------------------------------------------------


EXAMPLE_FINDINGS = {
    "examples/custom_callbacks.py": [
        "examples/custom_callbacks.py:85:5: LD302 `Muted` has `run=False`: fastai skips it at every event of the next `fit`, "
        "so its handler `after_batch` does not run there; at the end of that `fit`, `after_fit` sets `run` back to True",
        "examples/custom_callbacks.py:108:9: LD401 `LogBatch` and `LogTrainBatch` have equal `order` (5) and both respond "
        "to `before_fit`, `after_batch`: they run in the cbs list order, which alone decides which runs first",
    ],
    "examples/lightning_callbacks.py": [
        "examples/lightning_callbacks.py:73:5: LD101 `LegacyHooks.on_epoch_end` is never called: Lightning 2.6 has no event "
        "`on_epoch_end` (did you mean `on_train_epoch_end`? Lightning 1.8.0 removed `on_epoch_end` (#14834); or "
        "`on_validation_epoch_end`, `on_test_epoch_end`)",
    ],
    "examples/lightning_datamodule.py": [],
    "examples/lightning_defaults.py": [],
    "examples/hf_callbacks.py": [
        "examples/hf_callbacks.py:63:5: LD101 `MicroBatchCounter.on_batch_end` is never called: transformers 5.24 has no "
        "event `on_batch_end` (did you mean `on_step_end`? `CallbackHandler.call_event` calls only `TrainerCallback`'s "
        "event names)",
    ],
    "examples/hf_defaults.py": [],
    "examples/stale_names.py": STALE_FINDINGS,
    "examples/synth.py": [],
    "examples/tabular.py": [],
}


@pytest.mark.lightning
@pytest.mark.transformers  # examples/lightning_*.py and examples/hf_*.py
def test_check_every_shipped_example(capsys):
    """``loopdoc check examples/*.py`` as CI runs it: exactly these findings, exit 1 (warnings)."""
    assert sorted(EXAMPLE_FINDINGS) == EXAMPLES, "every shipped example has its expected findings here"
    with in_root():
        code = main(["check", *EXAMPLES])
    out, err = capsys.readouterr()
    assert out.splitlines() == [line for spec in EXAMPLES for line in EXAMPLE_FINDINGS[spec]]
    assert code == 1
    assert err.splitlines()[-1] == "10 findings (9 warnings, 1 info) in 4 of 9 files; exit 1 (--fail-on warning)."


def test_custom_callbacks_findings_are_true_of_a_real_fit(custom):
    """``Muted`` (``run=False``) never runs in a real fit; ``LogBatch`` runs before ``LogTrainBatch`` at ``before_fit``."""
    seen = fit(custom.learn)
    assert ran(seen, "Muted.after_batch") == []
    at_fit = [r["callback"] for f in seen["observed"] if f["event"] == "before_fit" for r in f["ran"]]
    assert at_fit.index("LogBatch") < at_fit.index("LogTrainBatch")


def test_call_loops_are_checked_and_true_of_the_real_call(custom):
    """``--call`` loops carry findings too: a callback the call adds twice (LD202, pointing at its class), and
    ``run=False`` in ``fine_tune`` (LD302: the first of its two fits)."""
    from observe import recording, run_call

    from loopdoc.worker import perform

    ns = custom.loaded.namespace
    vars(custom.learn.muted).pop("run", None)  # an earlier real fit set `run = True` on the instance: back to the class's False
    with quiet_in_root():
        twice = perform(custom.loaded, {"what": "loop", "call": "fit(1, cbs=[LogBatch()])"})
        tuned = perform(custom.loaded, {"what": "loop", "call": "fine_tune(1)"})
    (dup,) = [f for f in twice.findings if f.code == "LD202"]
    assert (dup.callback, dup.source, dup.column) == ("LogBatch-2", SourceLocation("examples/custom_callbacks.py", 11), 1)
    assert dup.message.startswith("2 `LogBatch` callbacks are attached together (`LogBatch`, `LogBatch-2`): fastai runs each")
    assert "learn.log_batch" not in dup.message, "fit(cbs=...) removes the attribute again: no claim about it"
    with quiet_in_root(), recording() as seen:
        custom.learn.fit(1, cbs=[ns["LogBatch"]()])
    for f in seen["observed"]:
        if f["event"] == "after_batch":
            assert [r["callback"] for r in f["ran"] if r["callback"].startswith("LogBatch")] == ["LogBatch", "LogBatch-2"]
    (off,) = [f for f in tuned.findings if f.code == "LD302"]
    assert "every event of the next `fit`" in off.message and "at the end of that `fit`" in off.message
    vars(custom.learn.muted).pop("run", None)  # the fit above set it True again
    with quiet_in_root(), recording() as seen:
        run_call(custom.learn, "fine_tune(1)", ns)()
    assert {path[0] for path, _ in ran(seen, "Muted.after_batch")} == {"fit#2"}, "skipped in the first fit only"


def test_facts_of_an_earlier_loop_are_found_again(custom):
    """``Linting.facts`` for a loop that is not the last one built extracts the same call again: the same findings."""
    from loopdoc.analysis.lint import rules_for
    from loopdoc.worker import perform

    vars(custom.learn.muted).pop("run", None)
    with quiet_in_root():
        earlier = perform(custom.loaded, {"what": "loop", "call": None})
        perform(custom.loaded, {"what": "loop", "call": "validate()"})
        facts = custom.loaded.adapter.facts(custom.learn, earlier, custom.loaded.namespace, custom.loaded.observation)
    assert [f.code for f in earlier.findings] == ["LD302", "LD401"]
    assert run_rules(earlier, facts, rules_for(custom.loaded.adapter)) == earlier.findings


@pytest.fixture(scope="module")
def saved_stale(stale, tmp_path_factory) -> Path:
    """The stale example's model saved as JSON: ``loopdoc check`` reads its findings without loading a learner."""
    path = tmp_path_factory.mktemp("check") / "stale.json"
    path.write_text(stale.loop.to_json(), encoding="utf-8")
    return path


def test_check_saved_model_formats_and_exit_codes(saved_stale, capsys):
    spec = str(saved_stale)
    assert main(["check", spec]) == 1
    assert capsys.readouterr().out.splitlines() == STALE_FINDINGS
    assert main(["check", spec, "--fail-on", "error"]) == 0
    assert main(["check", spec, "--ignore", "LD1"]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == STALE_FINDINGS, "--fail-on error: still reported, exit 0"
    assert err.splitlines()[-1] == "No findings in 1 file."
    assert main(["check", spec, "--select", "LD103", "--format", "github"]) == 1
    assert capsys.readouterr().out == (
        "::warning file=examples/stale_names.py,line=45,col=5,title=LD103::`CustomEvent.after_zero_grad` is never called: "
        "fastai 2.8 has no event `after_zero_grad` and none is near; only a training loop changed to fire `after_zero_grad` "
        "would call it\n")


def test_check_json_report_matches_its_schema(saved_stale, capsys):
    assert main(["check", str(saved_stale), "--format", "json", "--select", "LD10"]) == 1
    report = json.loads(capsys.readouterr().out)
    errors = sorted(validator(check_schema()).iter_errors(report), key=str)
    assert not errors, errors[0]
    assert report["schema_version"] == "1.0" and report["kind"] == "check" and report["select"] == ["LD10"]
    assert report["summary"] == {"specs": 1, "errors": 0, "findings": {"error": 0, "warning": 6, "info": 0}, "failed": True,
                                 "exit_code": 1}
    (result,) = report["results"]
    assert result["loaded_from"] == "examples/stale_names.py:learn" and result["error"] is None
    assert result["findings"][0] == {"code": "LD101", "level": "warning", "message": STALE_FINDINGS[0].split("LD101 ", 1)[1],
                                     "source": {"file": "examples/stale_names.py", "line": 17}, "column": 5,
                                     "callback": "LegacyNames", "name": "begin_fit"}


def test_check_a_learner_that_fails_to_load_is_an_error(saved_stale, capsys):
    """Never "no findings": each spec is still checked, the error's exit code wins (LoadError 4, LearnerNotFound 3)."""
    with in_root():
        code = main(["check", "tests/fixtures/broken/raises.py", str(saved_stale), "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 4
    assert err.startswith("Error: tests/fixtures/broken/raises.py:5: ")
    report = json.loads(out)
    assert not list(validator(check_schema()).iter_errors(report))
    assert report["results"][0]["error"]["kind"] == "LoadError" and report["results"][0]["error"]["exit_code"] == 4
    assert len(report["results"][1]["findings"]) == 6 and report["summary"]["exit_code"] == 4
    with in_root():
        assert main(["check", "tests/fixtures/broken/no_learner.py", "--format", "github"]) == 3
    out, err = capsys.readouterr()
    assert err.splitlines()[-1] == "1 file could not be checked (exit 3)."
def test_the_summary_never_counts_a_file_that_failed_to_load_as_without_findings():
    """``summary``: a file that could not be checked is said so, with the exit code; the other lines are as they were."""
    failed = Checked("a.py", error=CheckError("LoadError", "a.py: boom", 4))
    clean = Checked("b.py", "b.py", call="fit")
    finding = Finding("LD101", "warning", "x", None)
    found = Checked("c.py", "c.py", call="fit", findings=(finding,))
    assert summary(CheckReport((failed,))) == "1 file could not be checked (exit 4)."
    assert summary(CheckReport((failed, failed))) == "2 files could not be checked (exit 4)."
    assert summary(CheckReport((failed, clean))) == "No findings in 1 of 2 files; 1 could not be checked (exit 4)."
    assert summary(CheckReport((clean,))) == "No findings in 1 file."
    assert summary(CheckReport((clean, found))) == "1 finding (1 warning) in 1 of 2 files; exit 1 (--fail-on warning)."
    assert summary(CheckReport((failed, found))) == "1 finding (1 warning) in 1 of 2 files (could not check 1 of them); exit 4."


@pytest.mark.transformers  # examples/hf_*.py: the Hugging Face Trainer's (tests/transformers/test_transformers_check.py)


def test_check_bad_options_exit_2(saved_stale, capsys):
    assert main(["check", str(saved_stale), "--select", "LD999"]) == 2
    assert capsys.readouterr().err.startswith("Error: --select LD999: no rule has this code or prefix (rules: LD101, ")
    with pytest.raises(SystemExit) as exit_info:
        main(["check", str(saved_stale), "--fail-on", "never"])
    assert exit_info.value.code == 2


def test_github_annotations_escape_data_and_properties():
    f = Finding("LD101", "info", "100% sure\r\nline two", SourceLocation("a,b:c.py", 3), 7)
    assert github_line(Checked("x"), f) == "::notice file=a%2Cb%3Ac.py,line=3,col=7,title=LD101::100%25 sure%0Aline two"
    nowhere = Finding("LD201", "warning", "m: n", None, None)
    assert github_line(Checked("spec.py"), nowhere) == "::warning title=LD201::spec.py: m: n"
    assert escape_property("%,:\n") == "%25%2C%3A%0A"


def test_pre_commit_hook_is_declared():
    import yaml

    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "loopdoc-check" and hook["entry"] == "loopdoc check" and hook["language"] == "python"
    assert hook["types"] == ["python"] and "files" in hook


# --- the findings in every rendered output ---------------------------------------------------------------------------


def _places(loop) -> list[str]:
    return [f"{f.source.file}:{f.source.line}" for f in loop.findings]


def test_findings_show_with_file_and_line_in_every_format(stale, tmp_path):
    """HTML, Markdown, text, JSON, the HTML fragment (mkdocs, Sphinx, notebooks) and a model card: each finding, its
    code and its ``file:line``."""
    from loopdoc.card import card_command
    from loopdoc.rendering.documents import render
    from loopdoc.rendering.fragment import render_fragment

    loop = stale.loop
    outputs = {fmt: render(loop, fmt) for fmt in ("html", "md", "txt")}
    outputs["fragment"] = render_fragment(loop)
    saved = tmp_path / "stale.json"
    saved.write_text(loop.to_json(), encoding="utf-8")
    card = tmp_path / "README.md"
    card.write_text("# Model\n\n## Training procedure\n\nText.\n", encoding="utf-8")
    card_command(str(saved), str(card))
    outputs["card"] = card.read_text(encoding="utf-8")
    for name, text in outputs.items():
        for f, place in zip(loop.findings, _places(loop), strict=True):
            assert place in text and f.code in text, (name, place)
            assert f"{f.source.file}:{f.source.line}" in text
    assert "LD101</code>" in outputs["html"] and "examples/stale_names.py:17</span>" in outputs["html"]
    assert "> **LD101** (warning) `examples/stale_names.py:17`: " in outputs["md"]
    assert "LD101 warning examples/stale_names.py:17:5: `LegacyNames.begin_fit` is never called" in outputs["txt"]
    assert load_json(str(saved)).findings == loop.findings


def test_findings_in_mkdocs_and_sphinx_sites(saved_stale, tmp_path):
    """Real builds of a mkdocs site and a Sphinx site embedding the saved model (no learner is loaded)."""
    mk = tmp_path / "mk"
    (mk / "docs").mkdir(parents=True)
    (mk / "mkdocs.yml").write_text("site_name: t\nplugins:\n  - loopdoc\n", encoding="utf-8")
    (mk / "docs" / "index.md").write_text(f"# Loop\n\n::: loopdoc {saved_stale}\n", encoding="utf-8")
    sp = tmp_path / "sp"
    sp.mkdir()
    (sp / "conf.py").write_text("extensions = ['loopdoc.sphinx']\n", encoding="utf-8")
    (sp / "index.rst").write_text(f"Loop\n====\n\n.. loopdoc:: {saved_stale}\n", encoding="utf-8")
    builds = [subprocess.Popen([sys.executable, "-m", "mkdocs", "build", "-q"], cwd=mk, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True),
              subprocess.Popen([sys.executable, "-m", "sphinx", "-q", "-b", "html", ".", "_build"], cwd=sp,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)]
    for proc in builds:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    for page in (mk / "site" / "index.html", sp / "_build" / "index.html"):
        text = page.read_text(encoding="utf-8")
        for place in ("examples/stale_names.py:17", "examples/stale_names.py:45"):
            assert place in text, (page, place)
        assert "LD101 (warning)" in text and "LD103 (warning)" in text
