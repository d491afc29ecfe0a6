"""Property: for random sets of callbacks, loopdoc's static model of ``fit(1)`` is what a real run executes.

Hypothesis generates callbacks with random ``order`` (ties likely), ``run`` / ``run_train`` /
``run_valid`` flags, methods for random events, subclasses that inherit or override,
``Callback(event=f)`` instances, and methods raising each ``Cancel*Exception`` (once or
every time). Each set is attached to a synthetic learner, modelled, and run for one
epoch under the oracle of ``tests/observe.py``; every event that fired must match.
"""

from __future__ import annotations

import contextlib
import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from observe import mismatches, model_events, recording

import loopdoc

core = pytest.importorskip("fastai.callback.core")
from fastai.test_utils import synth_dbunch, synth_learner  # noqa: E402

pytestmark = pytest.mark.fastai

EVENTS = list(core._events)
CANCELS = [core.CancelBatchException, core.CancelTrainException, core.CancelValidException, core.CancelEpochException,
           core.CancelFitException, core.CancelBackwardException, core.CancelStepException]


def make_method(qualname: str, raises: type | None, always: bool):
    """A handler whose code object carries ``qualname`` (what the oracle reads), raising when asked."""
    state = {"n": 0}

    def handler(self):
        state["n"] += 1
        if raises is not None and (always or state["n"] == 1):
            raise raises()

    handler.__code__ = handler.__code__.replace(co_name=qualname.rsplit(".", 1)[-1], co_qualname=qualname)
    handler.__qualname__ = qualname
    return handler


callback_spec = st.fixed_dictionaries({
    "kind": st.sampled_from(["class", "subclass", "instance"]),
    "order": st.integers(-2, 2),
    "run": st.booleans(),
    "run_train": st.booleans(),
    "run_valid": st.booleans(),
    "events": st.lists(st.sampled_from(EVENTS), max_size=4, unique=True),
    "raise_in": st.none() | st.sampled_from([e for e in EVENTS if e != "after_create"]),  # no learner to document
    "raises": st.sampled_from(CANCELS),
    "always": st.booleans(),
})


def build(specs: list[dict]) -> list:
    cbs, classes = [], []
    for i, spec in enumerate(specs):
        events = set(spec["events"]) | ({spec["raise_in"]} if spec["raise_in"] else set())
        flags = {k: spec[k] for k in ("order", "run", "run_train", "run_valid")}
        if spec["kind"] == "instance":
            name = next(iter(sorted(events)), None)
            cb = core.Callback(**({name: make_method(f"f{i}", _raises(spec, name), spec["always"])} if name else {}))
            for k, v in flags.items():
                setattr(cb, k, v)
            cbs.append(cb)
            continue
        base = classes[-1] if spec["kind"] == "subclass" and classes else core.Callback
        methods = {e: make_method(f"CB{i}.{e}", _raises(spec, e), spec["always"]) for e in sorted(events)}
        cls = type(f"CB{i}", (base,), {**flags, **methods, "__qualname__": f"CB{i}"})
        classes.append(cls)
        cbs.append(cls())
    return cbs


def _raises(spec: dict, event: str) -> type | None:
    return spec["raises"] if spec["raise_in"] == event else None


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(st.lists(callback_spec, min_size=1, max_size=6))
def test_static_model_equals_a_real_run(specs):
    with recording() as seen, contextlib.redirect_stdout(io.StringIO()):
        learn = synth_learner(data=synth_dbunch(n_train=8, n_valid=4, bs=4), cbs=build(specs))
        loop = loopdoc.loop(learn)
        with contextlib.suppress(Exception):  # a cancel raised where nothing catches it ends the fit early
            learn.fit(1)
    assert seen["observed"], "nothing fired"
    assert mismatches(model_events(loop), seen["observed"]) == []
