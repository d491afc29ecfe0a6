"""``loopdoc check`` on Hugging Face Trainers: each rule's findings on ``tests/fixtures/check/hf_setups.py``, exactly, and
each claim against a real, capped ``train()`` (CPU, a few update steps, ``report_to=[]``, ``save_strategy="no"``,
``output_dir`` in a temporary folder); the shipped HF examples; findings in the rendered outputs, not repeated as notes.

The trainers load in this process as the worker loads them (``loopdoc.load.load`` + ``loopdoc.worker.perform``).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import types
from pathlib import Path

import pytest
from helpers import ROOT

pytest.importorskip("transformers")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from loopdoc.cli import main  # noqa: E402
from loopdoc.model.check import Checked, CheckReport  # noqa: E402
from loopdoc.render import render  # noqa: E402
from loopdoc.rendering.check import render_check  # noqa: E402

pytestmark = pytest.mark.transformers

SETUPS = "tests/fixtures/check/hf_setups.py"
FILE = str(ROOT / SETUPS)

NAMES_FINDINGS = [
    f"{SETUPS}:48:5: LD101 `OtherNames.on_batch_end` is never called: transformers 5.24 has no event `on_batch_end` "
    "(did you mean `on_step_end`? `CallbackHandler.call_event` calls only `TrainerCallback`'s event names)",
    f"{SETUPS}:51:5: LD101 `OtherNames.on_epoch_start` is never called: transformers 5.24 has no event `on_epoch_start` "
    "(did you mean `on_epoch_begin`? `CallbackHandler.call_event` calls only `TrainerCallback`'s event names)",
    f"{SETUPS}:54:5: LD102 `OtherNames.on_step_ends` is never called: transformers 5.24 has no event `on_step_ends` "
    "(did you mean `on_step_end`?)",
    f"{SETUPS}:57:5: LD103 `OtherNames.on_gradient_clip` is never called: transformers 5.24 has no event `on_gradient_clip` "
    "and none is near; only a training loop changed to fire `on_gradient_clip` would call it",
    f"{SETUPS}:67:5: LD105 `EvalWatcher.on_evaluate` never runs in `train()` (`eval_strategy='no'` and no callback sets "
    "`control.should_evaluate`, so `train()` never runs `evaluate()`)",
    f"{SETUPS}:70:5: LD105 `EvalWatcher.on_substep_end` never runs in `train()` (`gradient_accumulation_steps=1`: every "
    "micro-batch ends its update step)",
]
DUCK_FINDING = (
    f"{SETUPS}:94:12: LD201 `Duck` is not a `TrainerCallback`: the Trainer keeps it in its callback list anyway, and "
    "`CallbackHandler.call_event` calls `Duck.<event>(args, state, control, **kwargs)` at every event; it has no "
    "`on_train_begin`, so `train()` fails there with `AttributeError: 'Duck' object has no attribute 'on_train_begin'`")
FINDINGS = {
    "": NAMES_FINDINGS + [DUCK_FINDING],
    "early_without_metric": [
        f"{SETUPS}:102:12: LD501 `EarlyStoppingCallback`: `train()` fails at `on_train_begin`, before the first step, with "
        "`AssertionError: EarlyStoppingCallback requires metric_for_best_model to be defined` (set `metric_for_best_model`); "
        "`Trainer(...)` checks nothing"],
    "early_without_evaluation": [
        f"{SETUPS}:108:12: LD501 `EarlyStoppingCallback`: `train()` fails at `on_train_begin`, before the first step, with "
        "`AssertionError: EarlyStoppingCallback requires IntervalStrategy of steps or epoch` (set `eval_strategy` to "
        "'steps' or 'epoch'); `Trainer(...)` checks nothing"],
    "early_without_best": [
        f"{SETUPS}:118:12: LD502 `EarlyStoppingCallback` without `load_best_model_at_end=True`: `train()` logs a warning at "
        "`on_train_begin` and still stops early (that needs only `metric_for_best_model`), but the best model is not "
        "loaded at the end: the Trainer keeps the last one trained"],
    "evaluation_without_dataset": [
        f"{SETUPS}:124:1: LD503 `AskEvaluation` at `on_step_end` sets `control.should_evaluate`, but the Trainer has no "
        "`eval_dataset`: the first evaluation `train()` runs raises `ValueError: Trainer: evaluation requires an eval_dataset.`"],
}


@contextlib.contextmanager
def quiet_in_root():
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        os.chdir(cwd)


def load_and_lint(spec: str) -> types.SimpleNamespace:
    """Load ``spec`` in this process and build its loop as the worker does."""
    from loopdoc.load import load
    from loopdoc.worker import perform

    with quiet_in_root():
        loaded = load(spec)
        loop = perform(loaded, {"what": "loop", "call": None})
    return types.SimpleNamespace(loaded=loaded, trainer=loaded.trainer, loop=loop, ns=loaded.namespace)


def shown(loop) -> list[str]:
    return render_check(CheckReport((Checked("x", findings=loop.findings),)), "text").splitlines()


@pytest.fixture(scope="module")
def setups() -> dict[str, types.SimpleNamespace]:
    return {attr: load_and_lint(f"{SETUPS}:{attr}" if attr else SETUPS) for attr in FINDINGS}


@pytest.fixture(autouse=True)
def _in_a_scratch_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test runs in its own folder: a setup built here (outside loopdoc's load) is a real ``Trainer(...)``, which
    makes its relative ``output_dir`` in the working directory, and must not leave it in the repository."""
    monkeypatch.chdir(tmp_path)


def capped(trainer, tmp_path: Path):
    """The trainer, its output_dir in ``tmp_path`` (nothing is saved: ``save_strategy="no"``)."""
    trainer.args.output_dir = str(tmp_path / "out")
    return trainer


def called_in_fixture(run) -> set[str]:
    """The qualnames of the fixture's functions that run while ``run()`` does."""
    called: set[str] = set()

    def profiler(frame, what, arg):
        if what == "call" and frame.f_code.co_filename == FILE:
            called.add(frame.f_code.co_qualname)

    sys.setprofile(profiler)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            run()
    finally:
        sys.setprofile(None)
    return called


@pytest.mark.parametrize("attr", list(FINDINGS))
def test_findings_of_each_setup(setups, attr):
    assert shown(setups[attr].loop) == FINDINGS[attr]


def test_findings_point_at_the_definition_or_the_trainer_call(setups):
    lines = (ROOT / SETUPS).read_text(encoding="utf-8").splitlines()
    for s in setups.values():
        for f in s.loop.findings:
            text = lines[f.source.line - 1][f.column - 1:]
            if f.code in ("LD101", "LD102", "LD103", "LD105"):
                assert text.startswith(f"def {f.name}("), f
            elif f.code == "LD503":  # the class of the callback that asks for the evaluation
                assert text.startswith("class AskEvaluation("), f
            else:  # where the user's code called Trainer(...)
                assert text.startswith("Trainer("), f


def test_names_that_are_no_event_and_events_that_never_fire_are_never_called(setups, tmp_path):
    """LD101–LD103 and LD105: a real train() (without the Duck) calls none of the six handlers, and the real ones."""
    trainer = capped(setups[""].ns["build"](duck=False), tmp_path)
    called = called_in_fixture(trainer.train)
    assert trainer.state.global_step == 4
    named = {"OtherNames.on_batch_end", "OtherNames.on_epoch_start", "OtherNames.on_step_ends", "OtherNames.on_gradient_clip",
             "EvalWatcher.on_evaluate", "EvalWatcher.on_substep_end"}
    assert named.isdisjoint(called)
    assert {"OtherNames.on_step_end", "EvalWatcher.on_train_begin"} <= called
    # the findings of that trainer are the same as the module's, without the Duck's
    from loopdoc import loop as model

    built = setups[""].ns["build"](duck=False)  # here, in the scratch folder: Trainer(...) makes its output_dir
    with quiet_in_root():
        again = model(built)
    assert shown(again) == NAMES_FINDINGS


def test_a_duck_is_kept_called_and_fails_where_the_finding_says(setups, tmp_path):
    """LD201: the Trainer keeps the Duck, called its on_init_end while being built, and train() fails at on_train_begin."""
    s = setups[""]
    duck = next(cb for cb in s.trainer.callback_handler.callbacks if type(cb).__name__ == "Duck")
    called = called_in_fixture(lambda: s.ns["build"]())
    assert "Duck.on_init_end" in called
    trainer = capped(s.ns["build"](), tmp_path)
    with pytest.raises(AttributeError, match="'Duck' object has no attribute 'on_train_begin'"), contextlib.redirect_stdout(io.StringIO()):
        trainer.train()
    assert trainer.state.global_step == 0 and duck in s.trainer.callback_handler.callbacks


@pytest.mark.parametrize(("attr", "message"), [
    ("early_without_metric", "EarlyStoppingCallback requires metric_for_best_model to be defined"),
    ("early_without_evaluation", "EarlyStoppingCallback requires IntervalStrategy of steps or epoch"),
])
def test_early_stopping_set_ups_fail_at_train_begin(setups, tmp_path, attr, message):
    """LD501: Trainer(...) worked (the fixture loaded); train() raises the AssertionError before the first step."""
    trainer = capped(setups[attr].ns[attr](), tmp_path)
    with pytest.raises(AssertionError, match=message), contextlib.redirect_stdout(io.StringIO()):
        trainer.train()
    assert trainer.state.global_step == 0


def test_early_stopping_without_best_model_warns_stops_early_and_loads_nothing(setups, tmp_path, monkeypatch):
    """LD502: the warning is logged at on_train_begin, training stops before max_steps, _load_best_model never runs."""
    from transformers.utils import logging as hf_logging

    trainer = capped(setups["early_without_best"].ns["early_without_best"](), tmp_path)
    loaded = []
    monkeypatch.setattr(trainer, "_load_best_model", lambda *a, **k: loaded.append(a))
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    logger = hf_logging.get_logger("transformers.trainer_callback")
    handler = Keep()
    logger.addHandler(handler)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            trainer.train()
    finally:
        logger.removeHandler(handler)
    assert any(r.startswith("Using EarlyStoppingCallback without load_best_model_at_end=True") for r in records)
    assert 0 < trainer.state.global_step < trainer.args.max_steps
    assert loaded == []


def test_evaluation_without_an_eval_dataset_fails_where_the_finding_says(setups, tmp_path):
    """LD503: the callback's request makes train() evaluate after step 2, which raises the ValueError."""
    trainer = capped(setups["evaluation_without_dataset"].ns["evaluation_without_dataset"](), tmp_path)
    with pytest.raises(ValueError, match="Trainer: evaluation requires an eval_dataset."), contextlib.redirect_stdout(io.StringIO()):
        trainer.train()
    assert trainer.state.global_step == 2


def test_findings_are_not_repeated_as_notes(setups):
    notes = " ".join(n for s in setups.values() for n in s.loop.notes)
    for text in ("on_batch_end", "not a TrainerCallback", "never fires in train()", "AssertionError",
                 "without load_best_model_at_end", "eval_dataset"):
        assert text not in notes


def test_findings_in_rendered_outputs(setups):
    for fmt in ("md", "txt", "html"):
        out = render(setups[""].loop, fmt)
        for code in ("LD101", "LD102", "LD103", "LD105", "LD201"):
            assert code in out, (fmt, code)


@pytest.mark.subprocess
def test_check_command_line_on_the_setups(capsys):
    """The command line, in worker processes as CI runs it: exit 1 (warnings), the same lines."""
    specs = [f"{SETUPS}:{a}" if a else SETUPS for a in FINDINGS]
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        code = main(["check", *specs])
    finally:
        os.chdir(cwd)
    out, err = capsys.readouterr()
    assert out.splitlines() == [line for a in FINDINGS for line in FINDINGS[a]]
    assert code == 1
    assert err.splitlines()[-1] == "11 findings (10 warnings, 1 info) in 5 of 5 files; exit 1 (--fail-on warning)."
