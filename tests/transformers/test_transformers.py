"""Hugging Face ``Trainer``: loopdoc's static model against real runs, and every entry point on the HF examples.

Truth: for each scenario of ``tests/transformers/hf_scenarios.py`` and each shipped example, the trainer is built
under loopdoc's watch (``on_init_end`` observed) and the oracle (``tests/transformers/hf_observe.py``,
which shares no code with the adapter), modelled, then the call runs for real under the oracle;
``hf_compare.verify`` parses the recorded timeline with the static tree and checks every event's
place and callbacks, every conditional part, every loop count and every control-flag write.
Mutated models must fail the same comparison. Modelling changes nothing; loading writes nothing.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import io
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import HF_EXAMPLES, ROOT

pytest.importorskip("transformers")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import hf_scenarios as sc  # noqa: E402
from hf_compare import verify  # noqa: E402
from hf_observe import events as oracle_events  # noqa: E402
from hf_observe import recording  # noqa: E402

import loopdoc  # noqa: E402
from loopdoc.adapters.transformers import extract  # noqa: E402
from loopdoc.adapters.transformers.calls import parse_call  # noqa: E402
from loopdoc.adapters.transformers.creation import watch_creation  # noqa: E402
from loopdoc.adapters.transformers.wording import EVENTS_5_24  # noqa: E402
from loopdoc.errors import CallError, LoadError, UsageError  # noqa: E402
from loopdoc.model.loop import Event, Phase  # noqa: E402

pytestmark = [pytest.mark.transformers, pytest.mark.subprocess]



# ---------------------------------------------------------------- helpers


def fingerprint(trainer) -> dict:
    """Everything about a trainer (and the process) that modelling it could change."""
    import numpy as np
    import torch

    acc = trainer.accelerator
    return {
        "callbacks": [(id(cb), type(cb).__qualname__, sorted(vars(cb)) if hasattr(cb, "__dict__") else None)
                      for cb in trainer.callback_handler.callbacks],
        "handler": {k: id(v) for k, v in vars(trainer.callback_handler).items()},
        "trainer": {k: id(v) for k, v in vars(trainer).items()},
        "args": trainer.args.to_json_string(),
        "state": json.dumps(dataclasses.asdict(trainer.state), sort_keys=True, default=str),
        "control": (id(trainer.control), dataclasses.asdict(trainer.control)),
        "model": [(k, v.detach().clone()) for k, v in trainer.model.state_dict().items()],
        "training": trainer.model.training,
        "rng": (torch.get_rng_state().clone(), np.random.get_state()[1].tobytes(), random.getstate()),
        "accelerator": tuple(len(getattr(acc, n, [])) for n in ("_dataloaders", "_models", "_optimizers", "_schedulers")),
    }


def same(a: dict, b: dict) -> list[str]:
    import torch

    out = []
    for k in a:
        if k == "model":
            if [n for n, _ in a[k]] != [n for n, _ in b[k]] or any(not torch.equal(x, y) for (_, x), (_, y) in zip(a[k], b[k], strict=True)):
                out.append(k)
        elif k == "rng":
            if not torch.equal(a[k][0], b[k][0]) or a[k][1:] != b[k][1:]:
                out.append(k)
        elif a[k] != b[k]:
            out.append(k)
    return out


def run_call(trainer, call: str, namespace: dict):
    """Make the call for real, the test's own way (not loopdoc's parser)."""
    return eval("trainer." + call, {**namespace, "trainer": trainer})  # noqa: S307 - test calls


def check(build, call: str, namespace: dict | None = None, expect: type | None = None) -> dict:
    """Build under the watch and the oracle, model (proving nothing changed), run under the oracle, compare."""
    namespace = {**vars(sc), **(namespace or {})}
    with recording() as rec_init, watch_creation() as seen:
        trainer = build()
    before = fingerprint(trainer)
    built = extract.build(trainer, loaded_from="test", call=parse_call(call, namespace), at_init=seen.get(id(trainer)))
    changed = same(before, fingerprint(trainer))
    error = None
    with recording() as rec_call:
        try:
            run_call(trainer, call, namespace)
        except Exception as e:
            if expect is None or not isinstance(e, expect):
                raise
            error = e
    report = verify(built, rec_init["timeline"] + rec_call["timeline"])
    if changed:
        report["problems"].append(f"modelling changed the trainer: {changed}")
    report.update(built=built, trainer=trainer, timeline=rec_init["timeline"] + rec_call["timeline"], error=error)
    return report


def ok(report: dict) -> dict:
    assert report["problems"] == [], "\n".join(report["problems"])
    return report


def fired(report: dict, name: str) -> list[dict]:
    return [t for t in report["timeline"] if t["kind"] == "event" and t["event"] == name]


def nodes(loop, kind=Event):
    """``(path, node)`` for every phase or event."""
    out = []

    def walk(node, path):
        here = (*path, node.name) if isinstance(node, Phase) else path
        if isinstance(node, kind):
            out.append((here if kind is Phase else path, node))
        for c in getattr(node, "children", ()):
            walk(c, here)

    for p in loop.phases:
        walk(p, ())
    return out


def at(loop, path: tuple[str, ...], name: str) -> Event:
    return next(e for p, e in nodes(loop) if p == path and e.name == name)


# ---------------------------------------------------------------- static == observed, per scenario


@pytest.mark.parametrize("name", sorted(sc.SCENARIOS))
def test_static_model_equals_a_real_run(name, out):
    build, call = sc.SCENARIOS[name]
    report = ok(check(lambda: build(out), call))
    assert report["events"] > 0


@pytest.fixture(scope="module")
def users(tmp_path_factory):
    """The richest scenario (accumulation windows of 3 and 2, two epochs, eval, saves, a late callback), run once."""
    out = str(tmp_path_factory.mktemp("users") / "out")
    build, call = sc.SCENARIOS["users_ga3_partial_2epochs"]
    return ok(check(lambda: build(out), call))


def test_accumulation_windows_inherited_and_instance_handlers_and_the_late_callback(users):
    loop = users["built"].loop
    # 10 examples / batch 2 = 5 batches, GA=3: update steps of 3 and 2 micro-batches, in each of 2 epochs
    assert users["trainer"].state.global_step == 4
    assert len(fired(users, "on_substep_end")) == 2 * (2 + 1)
    assert [r["callback"] for r in fired(users, "on_init_end")[0]["ran"]] == ["Recorder", "Second"]
    assert [h.callback for h in at(loop, ("create",), "on_init_end").handlers] == ["Recorder", "Second"]
    assert next(c for c in loop.callbacks if c.id == "Late").origin == "added after Trainer(...) (trainer.add_callback)"
    begin = at(loop, ("train", "epoch"), "on_epoch_begin").handlers
    assert [(h.callback, h.function, h.defined_by) for h in begin] == [("Recorder", "Base.on_epoch_begin", "hf_scenarios.Base")]
    evaluate = at(loop, ("train", "epoch", "step", "log_save_evaluate", "evaluate"), "on_evaluate").handlers
    assert [(h.callback, h.via) for h in evaluate] == [("Recorder", "method"), ("Second", "instance")]
    substep = next(p for p, _ in nodes(loop, Phase) if p[-1] == "substep")
    phase = next(n for p, n in nodes(loop, Phase) if p == substep)
    assert phase.condition == ("each non-final micro-batch of 3 (gradient_accumulation_steps=3); the last update step of "
                               "each epoch has 2 (its 5 batches % 3)")
    evaluate_phase = next(n for p, n in nodes(loop, Phase) if p == ("train", "epoch", "step", "log_save_evaluate", "evaluate"))
    assert evaluate_phase.condition == ("control.should_evaluate: every 2 steps (eval_strategy='steps', eval_steps=2) and at the "
                                        "last step (max_steps=4); in this run: global_step 2 and 4")
    from loopdoc.adapters.transformers import ADAPTER
    from loopdoc.analysis.lint import lint_loop

    linted = lint_loop(loop, ADAPTER, users["trainer"], {})  # names that are no event: check findings, not notes
    meant = {f.name: f.message for f in linted.findings if f.code == "LD101" and f.callback == "Recorder"}
    assert "(did you mean `on_step_end`?" in meant["on_batch_end"] and "(did you mean `on_epoch_begin`?" in meant["on_epoch_start"]
    assert not any("nearest event" in n for n in loop.notes)


def test_log_evaluate_save_run_after_every_step_end_and_after_every_epoch_end(out):
    names = []
    with contextlib.redirect_stdout(io.StringIO()), recording() as rec:
        trainer = sc.make_trainer(out, n_eval=2, max_steps=-1, num_train_epochs=2, eval_strategy="epoch",
                                  save_strategy="no", logging_strategy="epoch")
        trainer.train()
    for t in rec["timeline"]:
        if t["kind"] == "event":
            names.append(t["event"])
    # after on_epoch_end: the epoch block logs, then evaluates (prediction steps, on_log, on_evaluate)
    first_end = names.index("on_epoch_end")
    assert names[first_end:first_end + 5] == ["on_epoch_end", "on_log", "on_prediction_step", "on_log", "on_evaluate"]
    assert names[-2:] == ["on_log", "on_train_end"]


def test_defaults_save_a_checkpoint_at_the_last_step(out):
    report = ok(check(lambda: sc.defaults(out), "train()"))
    assert sorted(os.listdir(out)) == ["checkpoint-4"]
    assert [t["ctx"]["global_step"] for t in fired(report, "on_save")] == [4]
    assert any(n == f"train() writes checkpoints to output_dir={out!r}: checkpoint-<global_step> at global_step 4."
               for n in report["built"].loop.notes)


def test_early_stopping_stops_and_loads_the_best_model(out):
    report = ok(check(lambda: sc.SCENARIOS["early_stopping_steps"][0](out), "train()"))
    assert report["trainer"].state.global_step == 2
    assert any(t["kind"] == "mark" and t["name"] == "_load_best_model" for t in report["timeline"])
    loop = report["built"].loop
    stop = next(f for f in loop.flows if f.flag == "control.should_training_stop")
    assert [(s.callback, s.event) for s in stop.set_by] == [("DefaultFlowCallback", "on_step_end"),
                                                              ("EarlyStoppingCallback", "on_evaluate")]
    assert any("loop counts are upper bounds" in n for n in loop.notes)


@pytest.mark.parametrize(("kw", "message", "note"), [
    (dict(eval_strategy="no", metric_for_best_model="eval_loss"), "EarlyStoppingCallback requires IntervalStrategy of steps or epoch",
     "set `eval_strategy`"),
    (dict(eval_strategy="steps", eval_steps=1), "EarlyStoppingCallback requires metric_for_best_model to be defined",
     "set `metric_for_best_model`"),
])
def test_early_stopping_requirements_fail_at_train_not_at_init_as_the_finding_says(kw, message, note, out):
    with recording() as rec:
        trainer = sc.make_trainer(out, callbacks=[sc.EarlyStoppingCallback()], n_eval=2, save_strategy="no", **kw)
        loop = loopdoc.loop(trainer)
        with pytest.raises(AssertionError, match=message):
            trainer.train()
    last = oracle_events(rec)[-1]
    assert last["event"] == "on_train_begin" and last["raised"]
    assert [r["callback"] for r in last["ran"]] == ["EarlyStoppingCallback"]  # the callbacks after it never ran
    (finding,) = [f for f in loop.findings if f.code == "LD501"]  # a check finding (no longer a note)
    assert message in finding.message and note in finding.message and "`Trainer(...)` checks nothing" in finding.message
    assert not any("AssertionError" in n for n in loop.notes)


def test_a_returned_fresh_control_runs_past_max_steps(out):
    report = ok(check(lambda: sc.SCENARIOS["fresh_control"][0](out), "train()"))
    assert report["trainer"].state.global_step == 8  # the whole epoch: DefaultFlowCallback's stop was discarded
    assert fired(report, "on_save") == [] and len(fired(report, "on_log")) == 1
    assert any("returns a new TrainerControl at on_step_end" in n and "max_steps may not stop training" in n
               for n in report["built"].loop.notes)


def test_a_stop_inside_an_accumulation_window_skips_the_optimizer_step(out):
    report = ok(check(lambda: sc.SCENARIOS["epoch_stop_mid_window"][0](out), "train()"))
    first = []
    for t in report["timeline"]:
        if t["kind"] == "event":
            first.append(t["event"])
            if t["event"] == "on_epoch_end":
                break
    assert first[-4:] == ["on_epoch_begin", "on_step_begin", "on_substep_end", "on_epoch_end"]
    assert any(n.startswith("A stop flag set at on_step_begin or on_substep_end (EpochStopInWindow at on_substep_end)")
               for n in report["built"].loop.notes)


def test_a_flag_written_through_a_helper_is_data_flow(out):
    report = ok(check(lambda: sc.SCENARIOS["ask_eval_with_strategy_no"][0](out), "train()"))
    assert [t["ctx"]["global_step"] for t in fired(report, "on_evaluate")] == [1]
    flow = next(f for f in report["built"].loop.flows if f.flag == "control.should_evaluate")
    assert [(s.callback, s.event, s.value) for s in flow.set_by] == [("AskEval", "on_step_end", "True")]
    assert flow.set_by[0].condition == "`control.should_evaluate = True` in `AskEval._ask`, when `state.global_step == 1`"


def test_without_default_flow_callback_max_steps_is_not_enforced(out):
    report = ok(check(lambda: sc.no_default_flow(out), "train()"))
    assert report["trainer"].state.global_step == 4  # a whole epoch, max_steps=2 not enforced
    assert fired(report, "on_save") == [] and len(fired(report, "on_log")) == 1
    assert any(n.startswith("No DefaultFlowCallback") for n in report["built"].loop.notes)


def test_evaluate_on_a_dict_calls_itself_per_dataset_and_predict_has_no_on_log(out):
    report = ok(check(lambda: sc.SCENARIOS["evaluate_dict"][0](out), sc.SCENARIOS["evaluate_dict"][1]))
    assert [p for p, _ in nodes(report["built"].loop, Phase)][-2:] == [("evaluate", "dataset"), ("evaluate", "dataset", "batch")]
    report = ok(check(lambda: sc.SCENARIOS["predict"][0](out), "predict(DictDataset(5))"))
    assert [t["event"] for t in report["timeline"] if t["kind"] == "event"][1:] == ["on_prediction_step"] * 3 + ["on_predict"]


def test_findings_about_events_that_never_fire_are_true(out):
    """LD105 (a check finding, no longer a note): Recorder's handlers of events train() never fires here."""
    from loopdoc.adapters.transformers import ADAPTER
    from loopdoc.analysis.lint import lint_loop

    report = ok(check(lambda: sc.make_trainer(out, callbacks=[sc.Recorder], save_strategy="no"), "train()"))
    loop = lint_loop(report["built"].loop, ADAPTER, report["trainer"], {})
    never = {f.name: f.message for f in loop.findings if f.code == "LD105"}
    assert never["on_evaluate"] == ("`Recorder.on_evaluate` never runs in `train()` (`eval_strategy='no'` and no callback "
                                    "sets `control.should_evaluate`, so `train()` never runs `evaluate()`)")
    assert never["on_substep_end"] == ("`Recorder.on_substep_end` never runs in `train()` (`gradient_accumulation_steps=1`: "
                                       "every micro-batch ends its update step)")
    assert never["on_save"] == ("`Recorder.on_save` never runs in `train()` (`save_strategy='no'` and no callback sets "
                                "`control.should_save`)")
    assert not any("never fires in train()" in n for n in loop.notes)
    for event in ("on_evaluate", "on_prediction_step", "on_substep_end", "on_save"):
        assert fired(report, event) == []


def test_evaluation_asked_without_an_eval_dataset_fails_as_the_finding_says(out):
    from loopdoc.adapters.transformers import ADAPTER
    from loopdoc.analysis.lint import lint_loop

    report = check(lambda: sc.make_trainer(out, callbacks=[sc.AskEval], save_strategy="no"), "train()", expect=ValueError)
    assert "evaluation requires an eval_dataset" in str(report["error"])
    loop = lint_loop(report["built"].loop, ADAPTER, report["trainer"], {})
    (finding,) = [f for f in loop.findings if f.code == "LD503"]  # a check finding, no longer a note
    assert finding.message.startswith("`AskEval` at `on_step_end` sets `control.should_evaluate`, but the Trainer has no")
    assert not any("eval_dataset" in n for n in loop.notes)


def test_a_callback_that_is_not_a_trainer_callback_fails_where_the_finding_says(out):
    with contextlib.redirect_stdout(io.StringIO()):
        trainer = sc.make_trainer(out, callbacks=[sc.NotACallback()], save_strategy="no")
        loop = loopdoc.loop(trainer)
        with pytest.raises(AttributeError, match="on_train_begin"):
            trainer.train()
    (finding,) = [f for f in loop.findings if f.code == "LD201"]  # a check finding, no longer a note
    assert finding.message.startswith("`NotACallback` is not a `TrainerCallback`: the Trainer keeps it")
    assert "no `on_train_begin`, so `train()` fails there with `AttributeError" in finding.message
    assert "`on_log`" not in finding.message and not any("not a TrainerCallback" in n for n in loop.notes)


def test_a_trainer_subclass_gets_a_note_and_the_trainer_s_loop(out):
    report = ok(check(lambda: sc.subclass(out), "train()"))
    assert report["trainer"].micro_batches == 8  # 4 update steps of 2
    assert ("`CountingTrainer` overrides `Trainer.training_step`: this model shows transformers.Trainer's own code there; "
            "what the override runs instead is not read.") in report["built"].loop.notes


def test_a_dataset_without_length_trains_until_max_steps(out):
    report = ok(check(lambda: sc.iterable(out), "train()"))
    assert report["trainer"].state.global_step == 3
    assert any(n.startswith("The train dataset has no length: the Trainer trains until max_steps=3.") for n in report["built"].loop.notes)


# ---------------------------------------------------------------- the comparison is not vacuous


def _replace(loop, path: tuple[str, ...], change):
    """``loop`` with the phase at ``path`` replaced by ``change(phase)``."""
    def walk(node, here):
        if not isinstance(node, Phase):
            return node
        here = (*here, node.name)
        if here == path:
            return change(node)
        return dataclasses.replace(node, children=tuple(walk(c, here) for c in node.children))

    return dataclasses.replace(loop, phases=tuple(walk(p, ()) for p in loop.phases))


def _event_change(path, name, change):
    def on_phase(phase):
        return dataclasses.replace(phase, children=tuple(change(c) if isinstance(c, Event) and c.name == name else c
                                                         for c in phase.children))
    return lambda loop, rules: (_replace(loop, path, on_phase), rules)


def _swap(path, a, b):
    def on_phase(phase):
        kids = list(phase.children)
        i, j = next(i for i, c in enumerate(kids) if c.name == a), next(i for i, c in enumerate(kids) if c.name == b)
        kids[i], kids[j] = kids[j], kids[i]
        return dataclasses.replace(phase, children=tuple(kids))
    return lambda loop, rules: (_replace(loop, path, on_phase), rules)


def _rule(kind, path, value):
    def change(loop, rules):
        rules = copy.copy(rules)
        setattr(rules, kind, {**getattr(rules, kind), path: value})
        return loop, rules
    return change


STEP = ("train", "epoch", "step")
BLOCK = (*STEP, "log_save_evaluate")
MUTATIONS = {
    "swap the optimizer events": _swap(STEP, "on_pre_optimizer_step", "on_optimizer_step"),
    "the block before on_step_end": _swap(STEP, "on_step_end", "log_save_evaluate"),
    "drop a handler": _event_change(STEP, "on_step_end", lambda e: dataclasses.replace(e, handlers=e.handlers[:-1])),
    "reverse handlers": _event_change(STEP, "on_step_end", lambda e: dataclasses.replace(e, handlers=e.handlers[::-1])),
    "an extra handler": _event_change(STEP, "on_step_begin", lambda e: dataclasses.replace(
        e, handlers=(*e.handlers, dataclasses.replace(e.handlers[0], callback="DefaultFlowCallback")))),
    "on_init_end to the late callback": _event_change(("create",), "on_init_end", lambda e: dataclasses.replace(
        e, handlers=(*e.handlers, dataclasses.replace(e.handlers[0], callback="Late", function="Late.on_init_end")))),
    "evaluate every 3 steps": _rule("when", (*BLOCK, "evaluate"), lambda env: env["global_step"] % 3 == 0),
    "log every other step": _rule("when", (*BLOCK, "log"), lambda env: env["global_step"] % 2 == 0),
    "substep at every micro-batch": _rule("when", (*STEP, "micro_batch", "substep"), lambda env: True),
    "3 micro-batches always": _rule("count", (*STEP, "micro_batch"), lambda env: 3),
    "3 steps per epoch": _rule("count", STEP, lambda env: 3),
    "no should_save setter": lambda loop, rules: (dataclasses.replace(loop, flows=tuple(
        dataclasses.replace(f, set_by=()) if f.flag == "control.should_save" else f for f in loop.flows)), rules),
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_a_wrong_model_is_caught(users, mutation):
    loop, rules = MUTATIONS[mutation](users["built"].loop, users["built"].rules)
    assert verify(extract.Built(loop, rules), users["timeline"])["problems"] != []


# ---------------------------------------------------------------- modelling changes nothing, loading writes nothing


def test_modelling_every_call_changes_nothing(out):
    trainer = sc.SCENARIOS["users_ga3_partial_2epochs"][0](out)
    before = fingerprint(trainer)
    for call in ("train()", "evaluate()", "evaluate(eval_dataset=DictDataset(3))", "predict(DictDataset(3))"):
        loopdoc.loop(trainer, call=call, namespace=vars(sc))
    assert same(before, fingerprint(trainer)) == []


def test_the_trainer_creates_output_dir_but_loading_does_not(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sc.make_trainer(str(tmp_path / "plain"), save_strategy="no")
    assert (tmp_path / "plain").is_dir()  # what Trainer.__init__ does (args.should_save)
    with watch_creation():
        sc.make_trainer(str(tmp_path / "watched"), save_strategy="no")
        os.makedirs(tmp_path / "other")  # any other makedirs still works
    assert not (tmp_path / "watched").exists() and (tmp_path / "other").is_dir()


def _tree(folder: Path) -> dict[str, tuple[int, int]]:
    return {p.relative_to(folder).as_posix(): (p.stat().st_mtime_ns, p.stat().st_size) for p in sorted(folder.rglob("*"))}


@contextlib.contextmanager
def _no_network():
    """Fail every socket connection while the block runs, and list the addresses tried."""
    import socket

    attempts: list = []
    original = socket.socket.connect

    def connect(self, address):
        attempts.append(address)
        raise OSError("loopdoc test: no network while loading")

    socket.socket.connect = connect
    try:
        yield attempts
    finally:
        socket.socket.connect = original


@pytest.fixture(scope="module")
def examples(tmp_path_factory):
    """Each HF example loaded by loopdoc (in a copy of examples/ as the working directory) under the oracle and with
    no network, then modelled for train() and run for real; and the folder before and after loading."""
    from loopdoc.load import load

    folder = tmp_path_factory.mktemp("examples")
    for spec in HF_EXAMPLES:
        (folder / Path(spec).name).write_bytes((ROOT / spec).read_bytes())
    out = {}
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        for spec in HF_EXAMPLES:
            name = Path(spec).name
            before = _tree(folder)
            with recording() as rec_init, contextlib.redirect_stderr(io.StringIO()), _no_network() as attempts:
                loaded = load(name)
            after = _tree(folder)
            assert attempts == [], f"loading {spec} opened network connections: {attempts}"
            built = extract.build(loaded.trainer, loaded_from=loaded.loaded_from, call=None, at_init=loaded.observation)
            with recording() as rec_run, contextlib.redirect_stderr(io.StringIO()):
                loaded.trainer.train()
            out[spec] = {"loaded": loaded, "built": built, "before": before, "after": after,
                         "report": verify(built, rec_init["timeline"] + rec_run["timeline"]),
                         "timeline": rec_init["timeline"] + rec_run["timeline"]}
    finally:
        os.chdir(cwd)
    return out


@pytest.mark.parametrize("spec", HF_EXAMPLES)
def test_example_model_equals_its_real_run(examples, spec):
    data = examples[spec]
    assert data["report"]["problems"] == [], "\n".join(data["report"]["problems"])
    assert data["loaded"].observation is not None  # the watch saw the Trainer being built
    # loading wrote nothing: the folder is byte-for-byte what it was, output_dir was not created
    assert data["after"] == data["before"]
    output_dir = data["loaded"].trainer.args.output_dir
    assert output_dir.endswith("_output") and output_dir not in data["after"]


def test_hf_callbacks_example_facts(examples):
    data = examples["examples/hf_callbacks.py"]
    loop, trainer = data["built"].loop, data["loaded"].trainer
    counter = next(cb for cb in trainer.callback_handler.callbacks if type(cb).__name__ == "MicroBatchCounter")
    steps = trainer.state.global_step
    assert counter.windows == [2, 2, 1, 2, 2, 1][:steps]  # the accumulation windows the model states
    report = next(cb for cb in trainer.callback_handler.callbacks if type(cb).__name__ == "EvalReport")
    assert report.saved == [g for g in (2, 4, 6) if g <= steps] and sorted(report.losses) == report.saved
    assert [c.id for c in loop.callbacks] == ["DefaultFlowCallback", "MicroBatchCounter", "StopOnNan", "EvalReport",
                                              "EarlyStoppingCallback", "ProgressCallback"]
    assert [c.origin for c in loop.callbacks] == ["Trainer default", None, None, None, None, "Trainer default (disable_tqdm=False)"]
    stop = next(f for f in loop.flows if f.flag == "control.should_training_stop")
    assert ("StopOnNan", "on_log") in [(s.callback, s.event) for s in stop.set_by]
    from loopdoc.adapters.transformers import ADAPTER
    from loopdoc.analysis.lint import lint_loop

    linted = lint_loop(loop, ADAPTER, trainer, {}, data["loaded"].observation)
    assert [(f.code, f.callback, f.name) for f in linted.findings] == [("LD101", "MicroBatchCounter", "on_batch_end")]
    assert "(did you mean `on_step_end`?" in linted.findings[0].message


def test_event_list_is_read_from_the_installed_trainer_callback(examples):
    from transformers import TrainerCallback

    events = [n for n in vars(TrainerCallback) if n.startswith("on_")]
    assert extract.events() == events == list(EVENTS_5_24)
    placed = set()
    trainer = examples["examples/hf_callbacks.py"]["loaded"].trainer
    for call in ("train()", "evaluate()", "predict(ds)"):
        loop = loopdoc.loop(trainer, call=call, namespace={"ds": sc.DictDataset(2)})
        placed |= {e.name for _, e in nodes(loop)}
    assert set(events) - placed == {"on_push_begin"}  # only with push_to_hub=True (it needs the network)


def test_is_trainer_never_imports_transformers():
    code = ("import sys, loopdoc.adapters.registry as r; a = r.adapter('transformers'); "
            "assert not a.is_trainer(object()) and r.adapter_for(1) is None; "
            "assert not [m for m in sys.modules if m.split('.')[0] in ('transformers', 'torch')], 'imported'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


# ---------------------------------------------------------------- calls


@pytest.mark.parametrize(("call", "text"), [
    ("fit(1)", "'fit' does not run a Trainer loop"),
    ("train(resume_from_checkpoint=True)", "resume_from_checkpoint is not supported"),
    ("predict()", "Trainer.predict() missing a required argument: 'test_dataset'"),
    ("predict(None)", "predict needs a dataset"),
    ("evaluate(nope)", "cannot evaluate 'nope'"),
    ("evaluate(None, eval_dataset=None)", "Trainer.evaluate() multiple values for argument 'eval_dataset'"),
    ("train(**{})", "*args and **kwargs"),
])
def test_bad_calls(examples, call, text):
    trainer = examples["examples/hf_defaults.py"]["loaded"].trainer
    with pytest.raises(CallError) as info:
        loopdoc.loop(trainer, call=call)
    assert str(info.value).startswith(f"--call {call!r}: ") and text in str(info.value), str(info.value)


def test_a_call_the_trainer_cannot_make(examples):
    trainer = examples["examples/hf_defaults.py"]["loaded"].trainer  # no eval_dataset
    with pytest.raises(CallError, match="has no eval_dataset"):
        loopdoc.loop(trainer, call="evaluate()")
    loop = loopdoc.loop(trainer, call="evaluate(eval_dataset=ds)", namespace={"ds": sc.DictDataset(3)})
    assert [p.name for p in loop.phases] == ["create", "evaluate"] and loop.call == "evaluate(eval_dataset=ds)"
    assert next(n for p, n in nodes(loop, Phase) if p == ("evaluate", "batch")).loop == "for each batch of the eval dataloader (1 batch)"


# ---------------------------------------------------------------- trace


@pytest.fixture(scope="module")
def traced(tmp_path_factory):
    """``loopdoc trace`` of hf_callbacks, in-process, from a copy of the example, with the folder watched."""
    from loopdoc.resolve import resolve_trace

    folder = tmp_path_factory.mktemp("trace")
    (folder / "hf_callbacks.py").write_bytes((ROOT / "examples/hf_callbacks.py").read_bytes())
    before = _tree(folder)
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            trace = resolve_trace("hf_callbacks.py", None, batches=3, isolated=False).document
    finally:
        os.chdir(cwd)
    return trace, before, _tree(folder)


def test_trace_records_every_event_with_the_callbacks_that_ran(traced):
    trace, before, after = traced
    assert trace.call == "train()" and trace.differences == ()
    assert after == before  # no checkpoint, no output_dir in the user's folder
    seen = {(e.path, e.event): e for e in trace.events}
    step = seen[(("train", "epoch", "step"), "on_step_end")]
    assert step.fired == 3 and [h.callback for h in step.handlers] == ["DefaultFlowCallback", "MicroBatchCounter",
                                                                       "ProgressCallback"]
    assert seen[(("train", "epoch", "step", "micro_batch", "substep"), "on_substep_end")].fired == 2  # windows 2, 2, 1
    save = seen[(("train", "epoch", "step", "log_save_evaluate", "save"), "on_save")]
    assert save.fired == 2 and [h.callback for h in save.handlers] == ["EvalReport"]  # at steps 2 and 3 (the capped last)
    assert all(h.total_s >= 0 and h.calls >= 1 for e in trace.events for h in e.handlers)
    assert trace.loop.notes[0].startswith("Traced run: output_dir 'hf_callbacks_output' redirected to a temporary folder")
    assert "max_steps=3 (--batches) instead of 6" in trace.loop.notes[0]


def test_trace_restores_the_trainer(tmp_path, monkeypatch):
    from loopdoc.adapters.transformers.recorder import run_trace

    monkeypatch.chdir(tmp_path)
    with watch_creation():  # so that Trainer.__init__ does not create output_dir
        trainer = sc.SCENARIOS["users_ga2"][0](str(tmp_path / "out"))
    args, eval_dataset = trainer.args, trainer.eval_dataset
    handler = {k: v for k, v in vars(trainer.callback_handler).items()}
    attrs = {id(cb): dict(vars(cb)) for cb in trainer.callback_handler.callbacks}
    with contextlib.redirect_stdout(io.StringIO()):
        trace = run_trace(trainer, "train()", {}, batches=2)
    assert trainer.args is args and args.max_steps == 4 and args.output_dir == str(tmp_path / "out")
    assert trainer.eval_dataset is eval_dataset and set(vars(trainer.callback_handler)) == set(handler)  # no on_* left
    assert {id(cb): dict(vars(cb)) for cb in trainer.callback_handler.callbacks if id(cb) in attrs}.keys() == attrs.keys()
    assert all(not any(k.startswith("on_") and k not in attrs[id(cb)] for k in vars(cb))
               for cb in trainer.callback_handler.callbacks)
    assert not any(k in vars(trainer) for k in ("evaluate", "predict", "_maybe_log_save_evaluate", "_run_epoch"))
    assert not (tmp_path / "out").exists() and os.listdir(tmp_path) == []
    assert trainer.state.global_step == 2 and trace.batches == 2


def test_trace_refuses_push_to_hub(tmp_path):
    from loopdoc.adapters.transformers.recorder import run_trace

    trainer = sc.make_trainer(str(tmp_path / "o"), save_strategy="no")
    trainer.args.push_to_hub = True
    try:
        with pytest.raises(UsageError, match="push_to_hub=True"):
            run_trace(trainer, "train()", {}, batches=1)
    finally:
        trainer.args.push_to_hub = False


def test_trace_of_a_failing_call_is_a_load_error(tmp_path):
    from loopdoc.adapters.transformers.recorder import run_trace

    trainer = sc.make_trainer(str(tmp_path / "o"), callbacks=[sc.EarlyStoppingCallback()], save_strategy="no")
    with pytest.raises(LoadError, match="raised AssertionError while running: EarlyStoppingCallback requires"):
        run_trace(trainer, "train()", {}, batches=1)
    assert "on_step_end" not in vars(trainer.callback_handler)


# ---------------------------------------------------------------- entry points on the HF examples


def test_render_show_call_diff_and_notebook_in_process(examples, tmp_path):
    from loopdoc.analysis.diff import diff_loops
    from loopdoc.model import load_json
    from loopdoc.render import render
    from loopdoc.resolve import resolve

    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            loop = resolve("examples/hf_callbacks.py", isolated=False).document
            evaluate = resolve("examples/hf_callbacks.py", "evaluate()", isolated=False).document
            predict = resolve("examples/hf_callbacks.py", "predict(Points(3))", isolated=False).document
            defaults = resolve("examples/hf_defaults.py", isolated=False).document
    finally:
        os.chdir(cwd)
    assert loop.learner.loaded_from == "examples/hf_callbacks.py:trainer" and loop.framework.name == "transformers"
    for fmt in ("html", "md", "txt", "json"):
        text = render(loop, fmt)
        assert "MicroBatchCounter" in text and "on_substep_end" in text, fmt
    (tmp_path / "loop.json").write_text(render(loop, "json"), encoding="utf-8")
    assert load_json(str(tmp_path / "loop.json")) == loop
    assert [p.name for p in evaluate.phases] == ["create", "evaluate"] and evaluate.call == "evaluate()"
    assert [p.name for p in predict.phases] == ["create", "predict"]
    assert [e.name for e in predict.phases[1].children if isinstance(e, Event)] == ["on_predict"]
    diff = diff_loops(defaults, loop)
    assert not diff.same and {c.id for c in diff.callbacks if c.status == "added"} >= {"MicroBatchCounter", "EarlyStoppingCallback"}
    assert diff_loops(loop, loop).same
    trainer = examples["examples/hf_callbacks.py"]["loaded"].trainer
    live = loopdoc.loop(trainer)
    html = live._repr_html_()
    assert html.startswith('<details class="loopdoc-notebook">') and "MicroBatchCounter" in html
    assert live._repr_markdown_() == render(live, "md")


CARD = """---
language: en
license: apache-2.0
library_name: transformers
tags:
- regression
---

# tiny-regressor

A two-weight regression model.

## Training procedure

Trained with the Hugging Face Trainer.

### Training hyperparameters

- learning_rate: 5e-05
- gradient_accumulation_steps: 2

## Evaluation results

eval_loss 0.01.
"""


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    """Real runs of the command line, mkdocs and Sphinx on hf_callbacks, all started at once (each imports transformers)."""
    tmp = tmp_path_factory.mktemp("hf-publish")
    (tmp / "card").mkdir()
    (tmp / "card" / "README.md").write_text(CARD, encoding="utf-8")
    site = tmp / "mkdocs"
    (site / "docs").mkdir(parents=True)
    (site / "mkdocs.yml").write_text(f"site_name: hf\nplugins:\n  - loopdoc:\n      working_dir: {ROOT}\nmarkdown_extensions:\n  - toc\n")
    (site / "docs" / "index.md").write_text("# Trainer\n\n::: loopdoc examples/hf_callbacks.py:trainer\n\n"
                                            "## Evaluation\n\n::: loopdoc examples/hf_callbacks.py\n    call: evaluate()\n")
    sphinx = tmp / "sphinx"
    sphinx.mkdir()
    (sphinx / "conf.py").write_text(f"project = 'hf'\nextensions = ['loopdoc.sphinx']\nloopdoc_working_dir = {str(ROOT)!r}\n")
    (sphinx / "index.rst").write_text("Trainer\n=======\n\n.. loopdoc:: examples/hf_callbacks.py\n   :call: train()\n")
    py = sys.executable
    commands = {
        "card": ([py, "-m", "loopdoc", "card", "examples/hf_callbacks.py", str(tmp / "card" / "README.md")], ROOT),
        "trace": ([py, "-m", "loopdoc", "trace", "examples/hf_callbacks.py", "--batches", "2", "--diff-static", "-o",
                   str(tmp / "trace.md")], ROOT),
        "mkdocs": ([py, "-m", "mkdocs", "build", "-q", "--site-dir", str(site / "site")], site),
        "sphinx": ([py, "-m", "sphinx", "-q", "-b", "html", ".", "_build"], sphinx),
    }
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "NO_COLOR": "1", "HF_HUB_OFFLINE": "1"}
    started = {name: (subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True),
                      time.monotonic()) for name, (cmd, cwd) in commands.items()}
    done = {name: (proc.communicate(timeout=600)[0], proc.returncode) for name, (proc, _) in started.items()}
    return tmp, done


def test_card_on_a_hugging_face_readme(builds):
    tmp, done = builds
    output, code = done["card"]
    assert code == 0, output
    text = (tmp / "card" / "README.md").read_text(encoding="utf-8")
    head, _, rest = CARD.partition("## Evaluation results")
    assert text.startswith(head.rstrip("\n") + "\n\n<!-- loopdoc:start ")  # front matter and the section kept
    assert text.endswith("<!-- loopdoc:end -->\n\n## Evaluation results\n\neval_loss 0.01.\n")
    assert "### Training loop" in text and "call `train()`" in text and "`MicroBatchCounter`" in text
    assert "#### Control flags" in text or "Control flags" in text
    assert not (ROOT / "hf_callbacks_output").exists()


def test_cli_trace_writes_markdown(builds):
    tmp, done = builds
    output, code = done["trace"]
    assert code == 0, output
    text = (tmp / "trace.md").read_text(encoding="utf-8")
    assert "**Trace of `train()`**" in text and "none: every event and callback ran as the static model says" in text
    assert not (ROOT / "hf_callbacks_output").exists()


def test_mkdocs_and_sphinx_pages_embed_the_trainer(builds):
    tmp, done = builds
    for name in ("mkdocs", "sphinx"):
        assert done[name][1] == 0, done[name][0]
    page = (tmp / "mkdocs" / "site" / "index.html").read_text(encoding="utf-8")
    assert "MicroBatchCounter" in page and "on_substep_end" in page and "call <code>evaluate()</code>" in page
    page = (tmp / "sphinx" / "_build" / "index.html").read_text(encoding="utf-8")
    assert "MicroBatchCounter" in page and "on_prediction_step" in page


@pytest.mark.parametrize("name", ["hf_callbacks", "hf_defaults"])
def test_golden_page_is_valid_html_with_unique_ids_and_no_broken_anchor(name):
    import re

    import html5lib

    page = (ROOT / "tests" / "golden" / f"{name}.html").read_text(encoding="utf-8")
    html5lib.HTMLParser(strict=True).parse(page)
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids))
    assert set(re.findall(r'href="#([^"]+)"', page)) <= set(ids)
    assert 'id="flows"' in page and "control.should_evaluate" in page
