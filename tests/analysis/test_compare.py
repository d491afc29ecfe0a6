"""The trace-vs-static comparison (``loopdoc.analysis.compare``) on traces built by hand (no framework).

The static model is ``tests/golden/synth.json``; a "perfect" run fires every event it has
(but the cancel events) with exactly the model's callbacks; each test changes one thing and
expects exactly one sentence, in the framework's wording. Real runs are compared in
``tests/fastai/test_trace.py``.
"""

from __future__ import annotations

import dataclasses

import pytest
from helpers import GOLDEN

from loopdoc.adapters.registry import wording
from loopdoc.analysis.compare import differences, static_events
from loopdoc.model import Loop, load_json
from loopdoc.model.trace import EventTrace, HandlerTiming, Trace

WORDS = wording("fastai")


@pytest.fixture(scope="module")
def loop() -> Loop:
    return load_json(str(GOLDEN / "synth.json"))


def run(loop: Loop, fired: int = 2, edit=None) -> Trace:
    """A trace in which every non-cancel event after ``create`` fired ``fired`` times with the model's callbacks."""
    events = []
    for (path, name), cbs in static_events(loop).items():
        if path[0] == "create" or name.startswith("after_cancel_"):
            continue
        handlers = tuple(HandlerTiming(cb, f"{cb}.{name}", fired, 0.002, 0.001, 0.001) for cb in cbs)
        event = EventTrace(path, name, fired, handlers)
        events.append(edit(event) if edit else event)
    return Trace(loop=loop, call="fit(1)", batches=2, events=tuple(e for e in events if e is not None), batch_s=0.1,
                 callback_batch_s=0.01)


def test_a_run_as_modelled_has_no_difference(loop):
    assert static_events(loop)[(("fit", "epoch", "train", "batch"), "after_batch")] == ["TrainEvalCallback", "Recorder"]
    assert differences(run(loop), WORDS) == []


def test_an_event_that_never_fired(loop):
    def drop(e):
        return None if (e.path, e.event) == (("fit", "epoch", "validate", "batch"), "after_pred") else e

    assert differences(run(loop, edit=drop), WORDS) == ["fit/epoch/validate/batch:after_pred never fired"]


def test_a_listed_callback_that_never_ran_is_said_in_the_frameworks_words(loop):
    def without_recorder(e):
        if (e.path, e.event) != (("fit", "epoch", "train", "batch"), "after_batch"):
            return e
        return dataclasses.replace(e, handlers=tuple(h for h in e.handlers if h.callback != "Recorder"))

    assert differences(run(loop, edit=without_recorder), WORDS) == [
        f"fit/epoch/train/batch:after_batch: Recorder never ran ({WORDS.never_ran})"]
    assert "run=False" in WORDS.never_ran


def test_a_callback_that_ran_fewer_times_and_one_not_in_the_model(loop):
    def edit(e):
        if (e.path, e.event) == (("fit", "epoch", "train", "batch"), "before_batch"):
            [h] = e.handlers
            return dataclasses.replace(e, handlers=(dataclasses.replace(h, calls=1),))
        if (e.path, e.event) == (("fit",), "after_fit"):
            return dataclasses.replace(e, handlers=(HandlerTiming("Stranger", "Stranger.after_fit", 2, 0.0, 0.0, 0.0),))
        return e

    assert differences(run(loop, edit=edit), WORDS) == [
        "fit/epoch/train/batch:before_batch: CastToTensor ran 1 of 2 times",
        "fit:after_fit: Stranger ran but the static model does not list it"]


def test_an_event_outside_the_model_is_reported_and_the_create_phase_is_not_compared(loop):
    trace = run(loop)
    extra = EventTrace(("fit", "epoch"), "before_nothing", 1)
    created = EventTrace(("create",), "after_create", 1)  # fired while the learner was built: never compared
    trace = dataclasses.replace(trace, events=(*trace.events, extra, created))
    assert differences(trace, WORDS) == ["fit/epoch:before_nothing fired but is not in the static model"]


def test_fewer_runs_are_explained_only_by_a_cancellation_raised_before_the_callback(loop):
    """At ``after_batch`` the model runs TrainEvalCallback, then Recorder: a cancel from TrainEvalCallback explains
    Recorder's missing run; one from Recorder itself explains nothing about TrainEvalCallback."""
    from loopdoc.model.trace import Cancellation

    def edit(raiser):
        def change(e):
            if (e.path, e.event) != (("fit", "epoch", "train", "batch"), "after_batch"):
                return e
            first, second = e.handlers
            cut = second if raiser == "TrainEvalCallback" else first
            handlers = tuple(dataclasses.replace(h, calls=1) if h is cut else h for h in e.handlers)
            return dataclasses.replace(e, handlers=handlers, cancellations=(Cancellation("CancelBatchException", raiser, 1),))
        return change

    where = "fit/epoch/train/batch:after_batch"
    assert differences(run(loop, edit=edit("TrainEvalCallback")), WORDS) == [
        f"{where}: Recorder ran 1 of 2 times: TrainEvalCallback raised CancelBatchException before it (1×)"]
    assert differences(run(loop, edit=edit("Recorder")), WORDS) == [f"{where}: TrainEvalCallback ran 1 of 2 times"]


def test_a_callback_that_never_ran_is_explained_by_the_cancellations_before_it_when_they_account_for_it(loop):
    """``after_batch`` fired twice: TrainEvalCallback cancelled it both times, so Recorder (after it) never ran, and
    the sentence says why; a cancel by TrainEvalCallback once (Recorder never ran the other time either), or one
    raised by the framework's own code (no callback before Recorder), does not account for it: the generic reason."""
    from loopdoc.model.trace import Cancellation

    def edit(raiser, count):
        def change(e):
            if (e.path, e.event) != (("fit", "epoch", "train", "batch"), "after_batch"):
                return e
            handlers = tuple(h for h in e.handlers if h.callback != "Recorder")
            return dataclasses.replace(e, handlers=handlers, cancellations=(Cancellation("CancelBatchException", raiser, count),))
        return change

    where = "fit/epoch/train/batch:after_batch"
    assert differences(run(loop, edit=edit("TrainEvalCallback", 2)), WORDS) == [
        f"{where}: Recorder never ran: TrainEvalCallback raised CancelBatchException before it (2×)"]
    assert differences(run(loop, edit=edit("TrainEvalCallback", 1)), WORDS) == [
        f"{where}: Recorder never ran ({WORDS.never_ran})"]
    assert differences(run(loop, edit=edit(None, 2)), WORDS) == [f"{where}: Recorder never ran ({WORDS.never_ran})"]
