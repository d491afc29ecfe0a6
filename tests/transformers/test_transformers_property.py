"""Property: for random callback sets and ``TrainingArguments``, loopdoc's model of ``train()`` is what a real run does.

Hypothesis generates the source of a module of ``TrainerCallback`` subclasses (some inheriting from
the one before, some plain instances with a function as an instance attribute) whose handlers, at
random events, set or clear control flags (``should_log``, ``should_evaluate``, ``should_save``, the
stop flags), always or under a condition on ``state.global_step``, and may return the control or a
fresh ``TrainerControl``; and arguments: gradient accumulation on or off, logging, evaluation and
saving strategies and steps, ``logging_first_step``, ``eval_delay``, ``eval_on_start``, and
``EarlyStoppingCallback`` with ``load_best_model_at_end``. The module is written to a file and
imported, so loopdoc reads the handlers' source as it would a user's. Each trainer is built under
loopdoc's watch and the oracle (``tests/transformers/hf_observe.py``), modelled, trained for real, and
compared (``tests/transformers/hf_compare.py``): every event at its place with its callbacks, every conditional
part, every loop count, every control-flag write.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import itertools
import os
import sys
import tempfile
from pathlib import Path

import pytest

pytest.importorskip("transformers")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import hf_scenarios as sc  # noqa: E402
from hf_compare import verify  # noqa: E402
from hf_observe import recording  # noqa: E402
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from loopdoc.adapters.transformers import extract  # noqa: E402
from loopdoc.adapters.transformers.creation import watch_creation  # noqa: E402

pytestmark = pytest.mark.transformers

EVENTS = ["on_init_end", "on_train_begin", "on_epoch_begin", "on_step_begin", "on_substep_end", "on_pre_optimizer_step",
          "on_optimizer_step", "on_step_end", "on_log", "on_evaluate", "on_prediction_step", "on_save", "on_epoch_end",
          "on_train_end"]
WRITES = [("should_log", "True"), ("should_evaluate", "True"), ("should_save", "True"), ("should_log", "False"),
          ("should_save", "False"), ("should_epoch_stop", "True"), ("should_training_stop", "True")]
CONDITIONS = [None, "state.global_step % 2 == 0", "state.global_step >= 2"]
FOLDER = Path(tempfile.mkdtemp(prefix="loopdoc-hf-property-"))
_count = itertools.count()

write = st.tuples(st.sampled_from(WRITES), st.sampled_from(CONDITIONS))
handler = st.fixed_dictionaries({
    "event": st.sampled_from(EVENTS),
    "writes": st.lists(write, max_size=2),
    "returns": st.sampled_from([None, None, "control", "fresh"]),
})
callback = st.fixed_dictionaries({
    "kind": st.sampled_from(["class", "subclass", "instance"]),
    "handlers": st.lists(handler, max_size=3, unique_by=lambda h: h["event"]),
})


@st.composite
def arguments(draw) -> dict:
    kw: dict = {"gradient_accumulation_steps": draw(st.integers(1, 3)), "per_device_train_batch_size": draw(st.integers(1, 3))}
    kw["max_steps"] = draw(st.sampled_from([-1, 1, 2, 3, 5]))
    kw["num_train_epochs"] = draw(st.sampled_from([1, 2]))
    kw["logging_strategy"] = draw(st.sampled_from(["steps", "epoch", "no"]))
    kw["logging_steps"] = draw(st.integers(1, 3))
    kw["logging_first_step"] = draw(st.booleans())
    early = draw(st.booleans())
    kw["eval_strategy"] = draw(st.sampled_from(["steps", "epoch"] if early else ["no", "steps", "epoch"]))
    kw["eval_steps"] = draw(st.integers(1, 3))
    kw["eval_delay"] = draw(st.sampled_from([0, 0, 2]))
    kw["eval_on_start"] = draw(st.booleans()) and kw["eval_strategy"] != "no"
    best = early and draw(st.booleans())  # load_best_model_at_end: save strategy = eval strategy, save_steps a multiple
    if best:
        kw.update(load_best_model_at_end=True, save_strategy=kw["eval_strategy"], save_steps=kw["eval_steps"] * draw(st.integers(1, 2)))
    else:
        kw["save_strategy"] = draw(st.sampled_from(["no", "steps", "epoch"] + (["best"] if kw["eval_strategy"] != "no" else [])))
        kw["save_steps"] = draw(st.integers(1, 4))
    if early or kw["save_strategy"] == "best":
        kw["metric_for_best_model"] = "eval_loss"
    kw["early"] = early
    kw["threshold"] = draw(st.sampled_from([0.0, 10.0]))
    kw["n_train"] = draw(st.integers(2, 9))
    return kw


def source(specs: list[dict]) -> str:
    """The module the callbacks live in: classes, and functions set as instance attributes."""
    lines = ["from transformers import TrainerCallback, TrainerControl", ""]
    previous = None
    for i, spec in enumerate(specs):
        if spec["kind"] == "instance":
            for h in spec["handlers"][:1]:
                lines += [f"def f{i}(args, state, control, **kwargs):", *_body(h), ""]
            continue
        base = previous if spec["kind"] == "subclass" and previous else "TrainerCallback"
        lines.append(f"class CB{i}({base}):")
        for h in spec["handlers"]:
            lines += [f"    def {h['event']}(self, args, state, control, **kwargs):", *("    " + b for b in _body(h))]
        lines += ["    pass", ""]
        previous = f"CB{i}"
    return "\n".join(lines) + "\n"


def _body(h: dict) -> list[str]:
    out = []
    for (flag, value), cond in h["writes"]:
        if cond:
            out += [f"    if {cond}:", f"        control.{flag} = {value}"]
        else:
            out.append(f"    control.{flag} = {value}")
    if h["returns"] == "control":
        out.append("    return control")
    elif h["returns"] == "fresh":
        out.append("    return TrainerControl()")
    return out or ["    pass"]


def callbacks(specs: list[dict], module) -> list:
    from transformers import TrainerCallback

    out = []
    for i, spec in enumerate(specs):
        if spec["kind"] == "instance":
            cb = TrainerCallback()
            if spec["handlers"]:
                setattr(cb, spec["handlers"][0]["event"], getattr(module, f"f{i}"))
            out.append(cb)
        else:
            out.append(getattr(module, f"CB{i}"))  # a class: the Trainer instantiates it
    return out


def _import(text: str):
    name = f"hf_property_{next(_count)}"
    path = FOLDER / f"{name}.py"
    path.write_text(text, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# No shrinking: each example trains a Trainer, and the failure message already holds the module and the arguments.
@settings(max_examples=30, deadline=None, derandomize=True, database=None, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(callback, max_size=4), arguments())
def test_static_model_equals_a_real_train(specs, kw):
    from transformers import EarlyStoppingCallback

    module = _import(source(specs))
    kw = dict(kw)
    early, threshold, n_train = kw.pop("early"), kw.pop("threshold"), kw.pop("n_train")
    cbs = callbacks(specs, module)
    if early:
        cbs.append(EarlyStoppingCallback(early_stopping_patience=1, early_stopping_threshold=threshold))
    with tempfile.TemporaryDirectory() as out, contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        with recording() as rec_init, watch_creation() as seen:
            trainer = sc.make_trainer(os.path.join(out, "out"), callbacks=cbs, n_train=n_train, n_eval=3, **kw)
        built = extract.build(trainer, loaded_from="property", at_init=seen.get(id(trainer)))
        with recording() as rec_run:
            trainer.train()
    report = verify(built, rec_init["timeline"] + rec_run["timeline"])
    assert report["problems"] == [], "\n".join(report["problems"]) + "\n\n" + source(specs) + f"\n{kw}"
