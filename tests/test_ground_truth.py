"""The static model against a real run: what fastai fires is the ground truth.

For each learner, ``tests/ground_truth.py`` loads it, takes loopdoc's model, then runs
``fit(1)`` recording which callback functions execute at each event, in which phase.
Every fired event must sit in the model at the same phase path with exactly the
handlers that ran, in order. Where a ``Cancel*Exception`` stopped an event early,
what ran must be the start of the model's list.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import EXAMPLES, ROOT

FIXTURES = ["tests/fixtures/learners/model_after_fit.py", "tests/fixtures/learners/no_train_eval.py"]


def observe(spec: str, tmp_path) -> dict:
    out = tmp_path / "observed.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "ground_truth.py"), spec, str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(out.read_text())


def mismatches(data: dict) -> list[str]:
    model = {(tuple(m["path"]), m["event"]): [(h["callback"], h["function"]) for h in m["handlers"]] for m in data["model"]}
    problems = []
    for fired in data["observed"]:
        key = (tuple(fired["path"]), fired["event"])
        ran = [(r["callback"], r["function"]) for r in fired["ran"]]
        if key not in model:
            problems.append(f"{'/'.join(key[0])}:{key[1]} fired but is not in the model")
            continue
        expected = model[key]
        if fired["raised"]:
            expected = expected[: len(ran)]
        if ran != expected:
            problems.append(f"{'/'.join(key[0])}:{key[1]}: model {model[key]} but ran {ran} (raised {fired['raised']})")
    return sorted(set(problems))


@pytest.mark.parametrize("spec", EXAMPLES + FIXTURES)
def test_model_matches_a_real_fit(spec, tmp_path):
    data = observe(spec, tmp_path)
    assert data["observed"], "nothing was recorded"
    assert mismatches(data) == []
    fired = {(tuple(f["path"]), f["event"]) for f in data["observed"]}
    # the run reached both batch loops, so both were really compared
    assert any(p[-2:] == ("train", "batch") for p, _ in fired) and any(p[-2:] == ("validate", "batch") for p, _ in fired)
    assert (("create",), "after_create") in fired


def test_custom_example_exercises_cancels_flags_and_dispatch(tmp_path):
    data = observe("examples/custom_callbacks.py", tmp_path)
    assert mismatches(data) == []
    fired = {(tuple(f["path"]), f["event"]) for f in data["observed"]}
    train, valid = ("fit", "epoch", "train", "batch"), ("fit", "epoch", "validate", "batch")
    assert (train, "after_cancel_batch") in fired
    assert (train + ("step",), "after_cancel_step") in fired
    assert any(f["raised"] == "CancelBatchException" for f in data["observed"])
    model = {(tuple(m["path"]), m["event"]): [h["callback"] for h in m["handlers"]] for m in data["model"]}
    # run_valid=False callbacks are absent from the validation batch loop, present in training
    assert "LogTrainBatch" in model[(train, "after_batch")] and "LogTrainBatch" not in model[(valid, "after_batch")]
    # run_train=False likewise, but it still gets the unfiltered after_validate
    assert "ValidOnly" in model[(valid, "after_loss")] and "ValidOnly" not in model[(train, "after_loss")]
    assert "ValidOnly" in model[(("fit", "epoch", "validate"), "after_validate")]
    # after_cancel_step is not filtered by run_train/run_valid (fastai's _inner_loop omits it)
    assert model[(train + ("step",), "after_cancel_step")] == ["SkipFirstStep", "Tracer"]
    # ties on order 5 keep insertion order; run=False is nowhere; __call__ override everywhere
    assert model[(train, "after_batch")] == ["TrainEvalCallback", "LogBatch", "LogTrainBatch", "Recorder", "Tracer"]
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
