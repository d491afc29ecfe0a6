"""The static model against a real run: what fastai fires is the ground truth.

For each learner (and each loop call), ``tests/fastai/observe.py`` loads it, takes loopdoc's
static model, then runs the call for real, recording which callback functions execute
at each event, in which phase. Every fired event must sit in the model at the same
phase path with exactly the handlers that ran, in order; where a ``Cancel*Exception``
stopped an event early, what ran must be the start of the model's list.

Each run is a process of its own; they start together in the background (``prefetch``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import Future

import pytest
from helpers import FASTAI_EXAMPLES, ROOT, background, scratch
from observe import mismatches

pytestmark = [pytest.mark.fastai, pytest.mark.subprocess]

FIXTURES = ["tests/fixtures/learners/model_after_fit.py", "tests/fixtures/learners/no_train_eval.py",
            "tests/fixtures/learners/dispatch_super.py", "tests/fixtures/learners/late_add.py"]
TRAIN, VALID = ("fit#1", "epoch", "train", "batch"), ("fit#1", "epoch", "validate", "batch")


def observation(spec: str, call: str | None = None) -> Future[dict]:
    """``python tests/fastai/observe.py SPEC OUT [CALL]`` from the repository root, once per session, in the background."""
    def work() -> dict:
        out = scratch(f"observe-{spec}-{call}") / "observed.json"
        proc = subprocess.run(
            [sys.executable, str(ROOT / "tests" / "fastai" / "observe.py"), spec, str(out), *([call] if call else [])],
            cwd=ROOT, capture_output=True, text=True, timeout=600,
        )
        assert proc.returncode == 0, proc.stderr
        return json.loads(out.read_text())

    return background(f"observe {spec} {call}", work)


def observe(spec: str, tmp_path, call: str | None = None) -> dict:
    return observation(spec, call).result()


def fired_at(data: dict) -> set[tuple[tuple[str, ...], str]]:
    return {(tuple(f["path"]), f["event"]) for f in data["observed"]}


@pytest.mark.parametrize("spec", FASTAI_EXAMPLES + FIXTURES)
def test_model_matches_a_real_fit(spec, tmp_path):
    data = observe(spec, tmp_path)
    assert data["observed"], "nothing was recorded"
    assert mismatches(data["model"], data["observed"]) == []
    fired = fired_at(data)
    # the run reached both batch loops, so both were really compared
    assert any(p == TRAIN for p, _ in fired) and any(p == VALID for p, _ in fired)
    assert (("create#1",), "after_create") in fired


def test_custom_example_exercises_cancels_flags_and_dispatch(tmp_path):
    data = observe("examples/custom_callbacks.py", tmp_path)
    assert mismatches(data["model"], data["observed"]) == []
    fired = fired_at(data)
    assert (TRAIN, "after_cancel_batch") in fired
    assert (TRAIN + ("step",), "after_cancel_step") in fired
    assert any(f["raised"] == "CancelBatchException" for f in data["observed"])
    model = {(tuple(m["path"]), m["event"]): [h["callback"] for h in m["handlers"]] for m in data["model"]}
    # run_valid=False callbacks are absent from the validation batch loop, present in training
    assert "LogTrainBatch" in model[(TRAIN, "after_batch")] and "LogTrainBatch" not in model[(VALID, "after_batch")]
    # run_train=False likewise, but it still gets the unfiltered after_validate
    assert "ValidOnly" in model[(VALID, "after_loss")] and "ValidOnly" not in model[(TRAIN, "after_loss")]
    assert "ValidOnly" in model[(("fit#1", "epoch", "validate"), "after_validate")]
    # after_cancel_step is not filtered by run_train/run_valid (fastai's _inner_loop omits it)
    assert model[(TRAIN + ("step",), "after_cancel_step")] == ["SkipFirstStep", "Tracer"]
    # ties on order 5 keep insertion order; run=False is nowhere; __call__ override everywhere
    assert model[(TRAIN, "after_batch")] == ["TrainEvalCallback", "LogBatch", "LogTrainBatch", "Recorder", "Tracer"]
    assert all("Muted" not in cbs for cbs in model.values())
    assert all(cbs and cbs[-1] == "Tracer" for cbs in model.values())


def test_model_attribute_named_like_an_event_is_not_a_handler(tmp_path):
    data = observe("tests/fixtures/learners/model_after_fit.py", tmp_path)
    after_fit = next(m for m in data["model"] if m["event"] == "after_fit")
    assert after_fit["handlers"] == []
    # ... yet fastai really calls the model's method once per running callback, through GetAttr
    assert data["delegated"] == [
        {"callback": cb, "function": "ModelWithHook.after_fit"} for cb in ("TrainEvalCallback", "CastToTensor", "Recorder")
    ]


CALLS = {
    "fit(1)": {"fit#1"},
    "fit_one_cycle(1, 1e-3)": {"fit#1"},
    "fit_flat_cos(1)": {"fit#1"},
    "fit_sgdr(1, 1)": {"fit#1"},
    "fine_tune(1)": {"fit#1", "fit#2"},
    "lr_find(num_it=6, show_plot=False)": {"fit#1"},
    "validate()": {"fit#1"},
    "get_preds()": {"fit#1"},
    "fit(2, start_epoch=1, cbs=[LogBatch()])": {"fit#1"},
}


@pytest.mark.parametrize("call", CALLS)
def test_call_model_matches_the_real_call(call, tmp_path):
    data = observe("examples/custom_callbacks.py", tmp_path, call)
    assert mismatches(data["model"], data["observed"]) == []
    fired = fired_at(data)
    assert {p[0] for p, _ in fired} - {"create#1"} == CALLS[call]
    model = {(tuple(m["path"]), m["event"]): [h["callback"] for h in m["handlers"]] for m in data["model"]}
    if call.startswith(("validate", "get_preds")):
        assert not any("train" in p for p, _ in model), "a validation-only call has no train phase"
        assert not any(e.startswith("after_cancel_fit") for _, e in model), "validation_context catches no CancelFitException"
    if call.startswith("get_preds"):
        assert "GatherPredsCallback" in model[(VALID, "after_batch")]
    if call.startswith(("fit_one_cycle", "fit_flat_cos", "fit_sgdr", "fine_tune")):
        assert model[(TRAIN, "after_batch")][-2:] == ["ParamScheduler", "Tracer"]  # after Recorder(50); Tracer is 90
    if call.startswith("fine_tune"):
        assert "ParamScheduler-2" in model[(("fit#2", "epoch", "train", "batch"), "after_batch")]
    if call.startswith("lr_find"):
        assert "LRFinder" in model[(TRAIN, "after_batch")]
    if "start_epoch" in call:
        assert "SkipToEpoch" in model[(("fit#1", "epoch"), "before_epoch")]
        assert "LogBatch-2" in model[(TRAIN, "after_batch")]  # a second LogBatch, added for this call only


def prefetch(items: list[pytest.Item] | None = None) -> None:
    """Start the runs the selected tests (``items``; ``None``: all) observe."""
    runs = {"test_custom_example_exercises_cancels_flags_and_dispatch": [("examples/custom_callbacks.py", None)],
            "test_model_attribute_named_like_an_event_is_not_a_handler": [("tests/fixtures/learners/model_after_fit.py", None)]}
    for item in items if items is not None else ():
        params = getattr(item, "callspec", None) and item.callspec.params
        name = getattr(item, "originalname", item.name)
        if name == "test_model_matches_a_real_fit":
            observation(params["spec"])
        elif name == "test_call_model_matches_the_real_call":
            observation("examples/custom_callbacks.py", params["call"])
        for spec, call in runs.get(name, ()):
            observation(spec, call)
    if items is None:
        for spec in FASTAI_EXAMPLES + FIXTURES:
            observation(spec)
        for call in CALLS:
            observation("examples/custom_callbacks.py", call)
