"""``loopdoc trace``: a real, capped run recorded per event and callback, checked against the static model.

The traces come from ``loopdoc.trace_learner``, each called in a process of its own from the
repository root (as the command line runs it), all started together in the background (``prefetch``).
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from concurrent.futures import Future

import jsonschema
import pytest
from helpers import ROOT, background, run_python

import loopdoc
from loopdoc.analysis.compare import static_events
from loopdoc.model.documents import _validator, load_json, trace_schema
from loopdoc.model.trace import Trace
from loopdoc.render import render

CALLS = ["fit(1)", "fit_one_cycle(1)", "fit_flat_cos(1)", "fit_sgdr(1, 1)", "fine_tune(1)", "lr_find(num_it=10, suggest_funcs=None)",
         "validate()", "get_preds()", "fit(2, start_epoch=1)"]


pytestmark = [pytest.mark.fastai, pytest.mark.subprocess]

TRACE = "import sys, loopdoc\nsys.stdout.write(loopdoc.trace_learner(sys.argv[1], sys.argv[2], batches=int(sys.argv[3])).to_json())\n"


def traced(spec: str, call: str, batches: int = 2) -> Future[Trace]:
    """``loopdoc.trace_learner(spec, call, batches=batches)`` in a process of its own (what it prints goes nowhere), once."""
    def work() -> Trace:
        proc = run_python(TRACE, spec, call, str(batches))
        assert proc.returncode == 0, proc.stderr[-5000:]
        return Trace.from_dict(json.loads(proc.stdout))

    return background(f"trace {spec} {call} {batches}", work)


def quiet_trace(spec: str, call: str, batches: int = 2) -> Trace:
    return traced(spec, call, batches).result()


TRACES = {
    "test_custom_example_counts_cancels_and_timings": [("examples/custom_callbacks.py", "fit(1)", 3)],
    "test_a_callback_cancelled_every_time_is_explained_by_the_cancel": [("examples/custom_callbacks.py", "fit(1)", 2)],
    "test_batches_cap": [("tests/fixtures/learners/switches_off.py", "fit(1)", 1)],
    "test_switched_off_callback_is_reported": [("tests/fixtures/learners/switches_off.py", "fit(1)", 2)],
    "test_trace_json_round_trip_schema_and_render": [("examples/custom_callbacks.py", "fine_tune(1)", 2)],
}
"""The traces each test reads (``test_trace_of_each_call_matches_its_static_model``: ``examples/synth.py`` with its call)."""


def prefetch(items: list[pytest.Item] | None = None) -> None:
    """Start the traces the selected tests (``items``; ``None``: all) read."""
    names = {getattr(i, "originalname", i.name): i for i in items} if items is not None else dict.fromkeys(TRACES)
    for item in items if items is not None else ():
        if getattr(item, "originalname", item.name) == "test_trace_of_each_call_matches_its_static_model":
            traced("examples/synth.py", item.callspec.params["call"])
    if items is None:
        for call in CALLS:
            traced("examples/synth.py", call)
    for name in names:
        for args in TRACES.get(name, ()):
            traced(*args)


@pytest.mark.parametrize("call", CALLS)
def test_trace_of_each_call_matches_its_static_model(call):
    result = quiet_trace("examples/synth.py", call)
    if call.startswith("lr_find"):  # LRFinder.before_validate raises CancelValidException: no validation batch runs
        assert result.differences == (
            "fit/epoch/validate:before_validate: LRFinder raised CancelValidException. The remaining validation batches "
            "are skipped; `after_validate` runs, then `after_epoch`. So fit/epoch/validate ended early: later batches "
            "and their events never ran.",  # the cancellation that explains the events below (issue 10)
            *(f"fit/epoch/validate/batch:{e} never fired" for e in ("before_batch", "after_pred", "after_loss", "after_batch")))
    else:
        assert result.differences == ()
    static = static_events(result.loop)
    for e in result.events:
        assert [h.callback for h in e.handlers] == static[(e.path, e.event)], (e.path, e.event)
    tops = {e.path[0] for e in result.events}
    assert tops == ({"fit", "fit2"} if call.startswith("fine_tune") else {"fit"})


def test_custom_example_counts_cancels_and_timings():
    result = quiet_trace("examples/custom_callbacks.py", "fit(1)", batches=3)
    at = result.event_map()
    train = ("fit", "epoch", "train", "batch")
    before = at[(train, "before_batch")]
    assert before.fired == 3  # capped: synth_learner(n_trn=16) has 16 training batches
    cancels = [(c.exception, c.callback, c.count) for c in before.cancellations]
    assert cancels == [("CancelBatchException", "DropOddBatches", 1)]
    assert at[(train, "after_cancel_batch")].fired == 1
    step = at[(train + ("step",), "before_step")]
    assert [(c.exception, c.callback) for c in step.cancellations] == [("CancelStepException", "SkipFirstStep")]
    # Each cancellation ends its event: the callbacks after the one that raised it did not run that time.
    assert result.differences == (
        "fit/epoch/train/batch:before_batch: CastToTensor ran 2 of 3 times: DropOddBatches raised CancelBatchException before it (1×)",
        "fit/epoch/train/batch:before_batch: Tracer ran 2 of 3 times: DropOddBatches raised CancelBatchException before it (1×)",
        "fit/epoch/train/batch/step:before_step: Tracer ran 1 of 2 times: SkipFirstStep raised CancelStepException before it (1×)")
    order = [cb.id for cb in result.loop.callbacks]
    assert order.index("DropOddBatches") < order.index("CastToTensor") < order.index("Tracer")
    assert order.index("SkipFirstStep") < order.index("Tracer")
    for e in result.events:
        for h in e.handlers:
            assert h.calls >= 1 and 0 <= h.mean_s <= h.max_s <= h.total_s + 1e-12
    totals = result.callback_totals()
    assert [t["total_s"] for t in totals] == sorted((t["total_s"] for t in totals), reverse=True)
    assert 0 < result.callback_batch_s < result.batch_s


def test_a_callback_cancelled_every_time_is_explained_by_the_cancel():
    """Two batches: ``before_step`` fires once (the other batch was cancelled before it), on the first iteration, where
    SkipFirstStep raises CancelStepException, so Tracer (after it) never runs there: the sentence says so."""
    result = quiet_trace("examples/custom_callbacks.py", "fit(1)", batches=2)
    step = result.event_map()[(("fit", "epoch", "train", "batch", "step"), "before_step")]
    assert step.fired == 1 and "Tracer" not in [h.callback for h in step.handlers]
    assert [(c.exception, c.callback, c.count) for c in step.cancellations] == [("CancelStepException", "SkipFirstStep", 1)]
    assert result.differences == (
        "fit/epoch/train/batch:before_batch: CastToTensor ran 1 of 2 times: DropOddBatches raised CancelBatchException before it (1×)",
        "fit/epoch/train/batch:before_batch: Tracer ran 1 of 2 times: DropOddBatches raised CancelBatchException before it (1×)",
        "fit/epoch/train/batch/step:before_step: Tracer never ran: SkipFirstStep raised CancelStepException before it (1×)")


def test_batches_cap():
    result = quiet_trace("tests/fixtures/learners/switches_off.py", "fit(1)", batches=1)
    train = ("fit", "epoch", "train", "batch")
    assert result.event_map()[(train, "before_batch")].fired == 1


def test_switched_off_callback_is_reported():
    result = quiet_trace("tests/fixtures/learners/switches_off.py", "fit(1)")
    assert "fit/epoch/train/batch:after_batch: Lazy never ran (switched off with run=False, or stopped by a cancel)" in result.differences


def test_trace_leaves_no_instrumentation():
    from fastai.callback.core import Callback, _events
    from fastai.test_utils import synth_learner

    from loopdoc.adapters.fastai.recorder import run_trace

    def own(cb):
        return {k: v for k, v in vars(cb).items() if k in _events}

    learn = synth_learner(cbs=Callback(after_batch=lambda self: None))
    before = [own(cb) for cb in learn.cbs]
    with contextlib.redirect_stdout(io.StringIO()):
        run_trace(learn, loopdoc.loop(learn, call="fit(1)"), "fit(1)", {}, 2)
    assert [own(cb) for cb in learn.cbs] == before  # the instance handler is back, no wrapper left
    assert not {"_call_one", "all_batches", "one_batch"} & set(vars(learn))


def test_a_call_that_raises_inside_its_loop_fails_the_trace():
    """``validate(dl=3)`` raises in ``all_batches`` (``len(3)``), as fastai's own run does, though the validation
    context's exit still fires ``after_epoch`` and ``after_fit``: the trace fails, it does not claim the loop completed."""
    from fastai.test_utils import synth_learner

    from loopdoc.adapters.fastai.recorder import run_trace
    from loopdoc.errors import RunError

    learn = synth_learner(n_trn=16, n_val=8)
    with contextlib.redirect_stdout(io.StringIO()), pytest.raises(TypeError, match="object of type 'int' has no len"):
        learn.validate(dl=3)  # the real thing raises
    with contextlib.redirect_stdout(io.StringIO()), pytest.raises(RunError) as info:
        run_trace(learn, loopdoc.loop(learn, call="validate(dl=3)"), "validate(dl=3)", {}, 3)
    assert str(info.value) == "--call 'validate(dl=3)': raised TypeError while running: object of type 'int' has no len()"


def test_an_error_after_a_complete_loop_is_reported_as_after_the_loop():
    """``get_preds()`` capped at one batch: every phase fired its ``after_`` event, then fastai's reordering by dataset
    index raised (fewer predictions than items): the trace stands, with ``after_loop``."""
    from fastai.test_utils import synth_learner

    from loopdoc.adapters.fastai.recorder import run_trace

    learn = synth_learner(n_trn=16, n_val=8)
    with contextlib.redirect_stdout(io.StringIO()):
        result = run_trace(learn, loopdoc.loop(learn, call="get_preds()"), "get_preds()", {}, 1)
    assert result.after_loop is not None and result.after_loop.startswith("IndexError: ")
    fired = {(e.path, e.event): e.fired for e in result.events}
    assert fired[(("fit", "epoch", "validate", "batch"), "after_batch")] == 1
    assert fired[(("fit", "epoch", "validate"), "after_validate")] == 1
    assert fired[(("fit", "epoch"), "after_epoch")] == 1 and fired[(("fit",), "after_fit")] == 1


def test_trace_json_round_trip_schema_and_render(tmp_path):
    result = quiet_trace("examples/custom_callbacks.py", "fine_tune(1)")
    data = result.to_dict()
    _validator(trace_schema()).validate(data)
    assert Trace.from_dict(data) == result
    saved = tmp_path / "trace.json"
    saved.write_text(result.to_json())
    assert load_json(str(saved)) == result
    text = render(result, "txt", show_differences=True)
    assert "Traced fine_tune(1), at most 2 batches per loop" in text and "Differences from the static model:" in text
    assert render(result, "json") == result.to_json()
    page = render(result, "html", show_differences=True)
    import collections
    import re

    import html5lib

    html5lib.HTMLParser(strict=True).parse(page)
    ids = collections.Counter(re.findall(r'id="([^"]+)"', page))
    assert [k for k, n in ids.items() if n > 1] == []  # the second fit's anchors are fit2-…
    assert 'id="phase-fit2-epoch-train-batch"' in page and "Time per callback, most expensive first" in page
    assert page.count('class="obs"') == sum(1 for e in result.events)  # every fired event is annotated
    md = render(result, "md", show_differences=True)
    assert "| callback | total | max | calls | events |" in md and "*trace:* fired" in md
    broken = dict(data, events=[{**data["events"][0], "fired": 0}])
    saved.write_text(json.dumps(broken))
    with pytest.raises(loopdoc.LoopdocError, match="at events/0/fired"):
        load_json(str(saved))
    with pytest.raises(jsonschema.ValidationError):
        _validator(trace_schema()).validate({**data, "kind": "loop"})


def test_cli_trace_writes_clean_json_to_stdout():
    proc = subprocess.run([sys.executable, "-m", "loopdoc", "trace", "examples/synth.py", "-o", "-", "--format", "json"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["kind"] == "trace" and data["call"] == "fit(1)" and data["differences"] == []
