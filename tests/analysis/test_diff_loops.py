"""``diff_loops`` on pairs of saved loop models (no framework): what changed, where, and why.

Fixtures: ``tests/fixtures/diff/old.py`` is a baseline learner (``synth_learner`` with three
custom callbacks); each ``new_*.py`` is a copy with one change, line for line where it can be,
so that the diff must report exactly that change. Their models are saved beside them
(``tests/fixtures/diff/*.json``, read by ``helpers.diff_fixture_loops``; kept equal to a fresh
extraction by ``tests/fastai/test_diff_fixtures.py``). Renderings of a diff are in
``tests/rendering/test_render_diff.py``; the command line and the git form in
``tests/integration/test_diff_cli.py``.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
from helpers import DIFF as FIX
from helpers import diff_fixture_loops

from loopdoc.diff import IGNORABLE, Change, LoopDiff, diff_loops, parse_ignore
from loopdoc.errors import UsageError
from loopdoc.model import Event, Loop, Phase
from loopdoc.render import render_diff


@pytest.fixture(scope="module")
def loops() -> dict[str, Loop]:
    """The loop of ``old.py`` and of every ``new_*.py``, keyed ``"old"`` and the case name."""
    return diff_fixture_loops()


def diff(loops: dict[str, Loop], case: str, ignore: frozenset[str] = frozenset(), strict_source: bool = False) -> LoopDiff:
    return diff_loops(loops["old"], loops[case], ignore, strict_source=strict_source)


def changed_handlers(d: LoopDiff) -> list[tuple[str, str, str, str, str | None]]:
    """``(path, event, callback, status, reason)`` of every handler that is not the same."""
    return [(e.path, e.name, h.callback, h.status, h.reason) for e in d.events() for h in e.handlers if h.status != "same"]


# ---------------------------------------------------------------- diff_loops on the learners' saved models


def test_callback_added_and_event_gaining_its_first_callback(loops):
    d = diff(loops, "added")
    assert not d.same and d.learner == ()
    [cb] = d.callbacks
    assert (cb.id, cb.status, cb.order, cb.events) == ("CountSteps", "added", 30, ("after_step",))
    assert cb.flags == {"run": True, "run_train": True, "run_valid": True}
    [event] = d.events()
    assert (event.path, event.name, event.status, event.old, event.new) == (
        "fit/epoch/train/batch/step", "after_step", "gained", (), ("CountSteps",))
    [h] = event.handlers
    assert (h.callback, h.function, h.status, h.new_index, h.after, h.reason) == (
        "CountSteps", "CountSteps.after_step", "added", 1, None, "new callback")


def test_callback_removed_and_event_losing_all_callbacks(loops):
    d = diff(loops, "removed")
    [cb] = d.callbacks
    assert (cb.id, cb.status, cb.order, cb.events) == ("ClipGrad", "removed", 20, ("after_backward",))
    assert changed_handlers(d) == [("fit/epoch/train/batch/backward", "after_backward", "ClipGrad", "removed", "callback removed")]
    assert d.events()[0].status == "lost" and d.events()[0].new == ()


def test_order_changed_moves_the_callback_not_its_neighbours(loops):
    d = diff(loops, "order")
    [cb] = d.callbacks
    assert (cb.id, cb.status, cb.changes) == ("LogLoss", "changed", (Change("order", 10, 60),))
    assert changed_handlers(d) == [
        ("fit/epoch/train/batch", "after_batch", "LogLoss", "moved", "order 10 → 60"),
        ("fit/epoch/validate/batch", "after_batch", "LogLoss", "moved", "order 10 → 60"),
    ]
    train = d.events()[0]
    assert train.old == ("TrainEvalCallback", "LogLoss", "Check", "Recorder")
    assert train.new == ("TrainEvalCallback", "Check", "Recorder", "LogLoss")
    [moved] = train.moved
    assert (moved.old_index, moved.new_index, moved.after) == (2, 4, "Recorder")


def test_relative_position_changed_by_a_tie_in_order(loops):
    d = diff(loops, "tie")
    assert d.callbacks == () and d.learner == ()  # no callback changed: only the cbs list order, which breaks the tie
    assert [(e.path, e.name, e.old, e.new) for e in d.events()] == [
        ("fit/epoch/train/batch", "after_batch", ("TrainEvalCallback", "LogLoss", "Check", "Recorder"),
         ("TrainEvalCallback", "Check", "LogLoss", "Recorder")),
        ("fit/epoch/validate/batch", "after_batch", ("LogLoss", "Check", "Recorder"), ("Check", "LogLoss", "Recorder")),
    ]
    for e in d.events():
        [moved] = e.moved
        assert moved.callback == "LogLoss" and moved.after == "Check"
        assert "same order 10 as Check" in moved.reason and "cbs list order" in moved.reason
    # after_pred is handled by Check alone: nothing to reorder there
    assert all(e.name == "after_batch" for e in d.events())


def test_pure_reordering_of_cbs_with_the_same_run_order_is_no_difference(loops):
    d = diff(loops, "reordered")
    assert d.same
    assert (d.learner, d.callbacks, d.events()) == ((), (), [])
    assert d.summary() == dict.fromkeys(("learner", "callbacks", "events", "added", "removed", "moved", "changed"), 0)
    assert [cb.id for cb in loops["old"].callbacks] == [cb.id for cb in loops["reordered"].callbacks]


def test_run_valid_flag_changed_leaves_the_validation_batch_loop(loops):
    d = diff(loops, "run_valid")
    [cb] = d.callbacks
    assert (cb.id, cb.changes) == ("Check", (Change("run_valid", True, False),))
    assert changed_handlers(d) == [
        ("fit/epoch/validate/batch", "after_pred", "Check", "removed", "run_valid True → False"),
        ("fit/epoch/validate/batch", "after_batch", "Check", "removed", "run_valid True → False"),
    ]
    pred, batch = d.events()
    assert (pred.status, pred.old, pred.new) == ("lost", ("Check",), ())
    assert (batch.status, batch.new) == ("changed", ("LogLoss", "Recorder"))


def test_docstrings_changed_and_ignored(loops):
    d = diff(loops, "doc")
    [cb] = d.callbacks
    assert (cb.id, cb.changes) == ("LogLoss", (Change("doc", "Log the loss of every batch.", "Log every batch's loss, for the loss curve."),))
    events = d.events()
    assert [(e.path, e.name, e.status) for e in events] == [
        ("fit/epoch/train/batch", "after_pred", "changed"), ("fit/epoch/validate/batch", "after_pred", "changed")]
    for e in events:
        [h] = e.changed
        assert (h.function, h.status, h.changes) == (
            "Check.after_pred", "changed", (Change("doc", "Check the prediction has the batch's shape.", "Assert one prediction per input."),))
    assert [who for who, _ in d.doc_changes()] == ["LogLoss", "Check.after_pred"]  # each docstring once
    assert diff(loops, "doc", frozenset({"docstrings"})).same


def test_learner_settings_changed(loops):
    d = diff(loops, "learner")
    assert d.learner == (
        Change("loss_func", "FlattenedLoss of MSELoss()", "FlattenedLoss of L1Loss()"),
        Change("opt_func", "partial(SGD, mom=0.9)", "Adam"),
        Change("metrics", [], ["mae"]),
    )
    assert d.callbacks == () and d.events() == []
    assert diff(loops, "learner", frozenset({"learner"})).same


def test_source_lines_moved_are_no_change_unless_strict(loops):
    """A comment added above ``ClipGrad`` moves its lines down: no difference by default, reported with ``strict_source``."""
    assert diff(loops, "lines").same
    d = diff(loops, "lines", strict_source=True)
    [cb] = d.callbacks
    assert (cb.id, cb.changes) == ("ClipGrad", (Change("source", f"{FIX}/old.py:31", f"{FIX}/new_lines.py:32"),))
    [h] = d.events()[0].changed
    assert h.changes == (Change("source", f"{FIX}/old.py:36", f"{FIX}/new_lines.py:37"),)
    assert diff(loops, "lines", frozenset({"source"}), strict_source=True).same


def test_source_moved_to_another_file_is_a_change(loops):
    """A callback whose source is now in another file is reported, strict or not, with its lines; ``--ignore source`` drops it."""
    old = loops["old"]
    moved = tuple(dataclasses.replace(cb, source=dataclasses.replace(cb.source, file=f"{FIX}/cbs.py", line=3))
                  if cb.id == "ClipGrad" else cb for cb in old.callbacks)
    new = dataclasses.replace(old, callbacks=moved)
    for strict in (False, True):
        [cb] = diff_loops(old, new, strict_source=strict).callbacks
        assert (cb.id, cb.changes) == ("ClipGrad", (Change("source", f"{FIX}/old.py:31", f"{FIX}/cbs.py:3"),))
    assert diff_loops(old, new, {"source"}).same


def test_learner_file_renamed_compares_classes_relative_to_it(loops):
    """``old.LogLoss`` and ``new_x.LogLoss`` are the same class for the diff; a class from elsewhere is not."""
    qualnames = {cb.id: cb.qualname for cb in loops["old"].callbacks} | {cb.id + "'": cb.qualname for cb in loops["reordered"].callbacks}
    assert (qualnames["LogLoss"], qualnames["LogLoss'"]) == ("old.LogLoss", "new_reordered.LogLoss")
    assert diff(loops, "reordered").same
    new = loops["old"]
    swapped = tuple(dataclasses.replace(cb, qualname="mylib.LogLoss") if cb.id == "LogLoss" else cb for cb in new.callbacks)
    d = diff_loops(loops["old"], dataclasses.replace(new, callbacks=swapped))
    assert [(cb.id, cb.changes) for cb in d.callbacks] == [("LogLoss", (Change("class", "old.LogLoss", "mylib.LogLoss"),))]


def test_versions_and_notes_changed_and_ignored(loops):
    old = loops["old"]
    new = dataclasses.replace(old, versions={**old.versions, "torch": "9.9"}, notes=("A new note.",))
    d = diff_loops(old, new)
    assert d.learner == (Change("versions.torch", old.versions["torch"], "9.9"), Change("note", None, "A new note."))
    assert diff_loops(old, new, {"versions", "notes"}).same


def test_repeated_phases_are_keyed_by_occurrence(loops):
    """A second ``fit`` (as ``fine_tune`` runs): the first matches the old loop's lone ``fit``, the second is added."""
    old = loops["old"]
    create, fit = old.phases
    d = diff_loops(old, dataclasses.replace(old, phases=(create, fit, fit)))
    assert [(p.name, p.path, p.status) for p in d.phases] == [
        ("create", "create", "same"), ("fit[0]", "fit[0]", "same"), ("fit[1]", "fit[1]", "added")]
    paths = {e.path for e in d.events()}
    assert "fit[1]/epoch/train/batch" in paths and not any(p.startswith("fit[0]") for p in paths)
    assert {e.status for e in d.events()} == {"added"}
    assert {h.reason for e in d.events() for h in e.handlers} == {"the event is new"}
    [whole] = d.whole_phases()
    assert (whole.path, len(whole.events())) == ("fit[1]", len(fit_events := [e for e in d.all_events() if e.path.startswith("fit[0]")]))
    assert fit_events and whole.callbacks() == ["TrainEvalCallback", "Recorder", "CastToTensor", "Check", "ClipGrad", "LogLoss"]
    text = render_diff(d, "txt")  # an added phase is one line, not each of its events
    assert f"  + fit[1]  phase added: {len(fit_events)} events; callbacks TrainEvalCallback, Recorder," in text
    assert "Events" not in text and "fit[1]/epoch" not in text
    # and back: the second fit is removed, the first unchanged
    back = diff_loops(dataclasses.replace(old, phases=(create, fit, fit)), old)
    assert [(p.name, p.status) for p in back.phases] == [("create", "same"), ("fit[0]", "same"), ("fit[1]", "removed")]


def test_event_added_with_a_phase(loops):
    old = loops["old"]
    create, fit = old.phases
    before_fit = next(n for n in fit.children if isinstance(n, Event))
    extra = Phase("extra", "A phase only the new loop has.", (before_fit,))
    d = diff_loops(old, dataclasses.replace(old, phases=(create, fit, extra)))
    [e] = d.events()
    assert (e.path, e.name, e.status, e.old, e.new) == ("extra", "before_fit", "added", (), ("TrainEvalCallback", "Recorder"))
    assert [h.status for h in e.handlers] == ["added"] * 2
    assert [(p.name, p.status) for p in d.phases] == [("create", "same"), ("fit", "same"), ("extra", "added")]


def test_diff_is_deterministic_and_json_ready(loops):
    d = diff(loops, "run_valid")
    assert d == diff(loops, "run_valid")
    data = d.to_dict()
    assert list(data)[:3] == ["schema_version", "same", "summary"]
    assert data["schema_version"] == "1.0" and data["same"] is False
    assert data["summary"] == {"learner": 0, "callbacks": 1, "events": 2, "added": 0, "removed": 2, "moved": 0, "changed": 0}
    assert json.loads(d.to_json()) == data
    assert data["callbacks"][0]["changes"] == [{"field": "run_valid", "old": True, "new": False}]


def test_ignore_categories_are_checked(loops):
    assert parse_ignore(["docstrings", "source,versions"]) == {"docstrings", "source", "versions"}
    with pytest.raises(UsageError, match="unknown category 'doc'"):
        parse_ignore(["doc"])
    with pytest.raises(UsageError, match="unknown category ''"):
        parse_ignore(["docstrings,"])
    assert set(IGNORABLE) == {"docstrings", "source", "versions", "learner", "notes"}
    with pytest.raises(UsageError, match="unknown ignore categories bogus"):
        diff_loops(loops["old"], loops["old"], {"bogus"})
