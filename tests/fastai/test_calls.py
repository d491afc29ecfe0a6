"""``--call``: the loop of a named call, found without training and without changing the learner."""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys

import pytest
import torch
from helpers import ROOT

import loopdoc
from loopdoc.errors import LoadError, UsageError

pytestmark = pytest.mark.fastai

CALLS = ["fit(2)", "fit_one_cycle(3, 1e-3)", "fit_flat_cos(1)", "fit_sgdr(2, 1)", "fine_tune(2)", "lr_find()",
         "validate()", "get_preds(with_loss=True)", "fit(1, cbs=[SaveModelCallback()], start_epoch=1)"]


def snapshot(learn) -> dict:
    from fastai.learner import defaults

    return {
        "cbs": [id(cb) for cb in learn.cbs],
        "cb_state": [dict(vars(cb)) for cb in learn.cbs],
        "attrs": {k: id(v) for k, v in vars(learn).items()},
        "weights": {k: v.clone() for k, v in learn.model.state_dict().items()},
        "requires_grad": [p.requires_grad for p in learn.model.parameters()],
        "modes": [m.training for m in learn.model.modules()],
        "opt_state": repr(learn.opt.state_dict()) if learn.opt is not None else None,
        "opt_hypers": [dict(h) for h in learn.opt.hypers] if learn.opt is not None else None,
        "loss_reduction": getattr(learn.loss_func, "reduction", None),
        "defaults": list(defaults.callbacks),
    }


def same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        if k == "weights":
            assert all(torch.equal(a[k][n], b[k][n]) for n in a[k]), "weights changed"
        else:
            assert a[k] == b[k], k


@pytest.fixture(scope="module")
def trained():
    """A learner that already has an optimizer with state, a frozen parameter and a CSV logger."""
    from fastai.callback.tracker import SaveModelCallback
    from fastai.test_utils import synth_learner

    learn = synth_learner(n_trn=8, n_val=4)
    with contextlib.redirect_stdout(io.StringIO()):
        learn.fit(1)
    learn.model.b.requires_grad_(False)
    return learn, {"SaveModelCallback": SaveModelCallback}


@pytest.mark.parametrize("call", CALLS)
def test_call_leaves_the_learner_unchanged(trained, call):
    learn, namespace = trained
    before = snapshot(learn)
    loop = loopdoc.loop(learn, call=call, namespace=namespace)
    same(before, snapshot(learn))
    assert loop.call == call
    assert loop.phases[0].name == "create"


def test_fine_tune_has_two_fits_and_validate_none(trained):
    learn, namespace = trained
    ft = loopdoc.loop(learn, call="fine_tune(2)")
    assert [p.name for p in ft.phases] == ["create", "fit", "fit"]
    assert "fit 1 of 2 in `fine_tune(2)`" in ft.phases[1].description
    assert [cb.id for cb in ft.callbacks if cb.name == "ParamScheduler"] == ["ParamScheduler", "ParamScheduler-2"]
    v = loopdoc.loop(learn, call="validate()")
    assert [p.name for p in v.phases] == ["create", "fit"]
    names = [(p, e.name) for p, e in v.iter_events()]
    assert (("fit",), "before_fit") in names and not any("train" in p for p, _ in names)


def test_run_false_is_reset_between_fits():
    from fastai.callback.core import Callback
    from fastai.test_utils import synth_learner

    class Off(Callback):
        run = False

        def after_batch(self):
            "x"

    learn = synth_learner(cbs=Off())
    loop = loopdoc.loop(learn, call="fine_tune(1)")
    per_fit = [[h.callback for p, e in type(loop)(**{**loop.__dict__, "phases": (ph,)}).iter_events() if e.name == "after_batch"
                for h in e.handlers] for ph in loop.phases[1:]]
    assert "Off" not in per_fit[0] and "Off" in per_fit[1]


@pytest.mark.parametrize("call, error, text", [
    ("export()", UsageError, "'export' does not run a training loop"),
    ("fit(", UsageError, "not a Python call"),
    ("fit(1, cbs=[NoSuchCallback()])", UsageError, "name 'NoSuchCallback' is not defined"),
    ("fit(*a)", UsageError, "*args and **kwargs"),
    ("fit(n_epoch='x', nonsense=1)", LoadError, "TypeError before the loop started"),
])
def test_bad_calls(trained, call, error, text):
    learn, _ = trained
    before = snapshot(learn)
    with pytest.raises(error, match=None) as info:
        loopdoc.loop(learn, call=call)
    assert text in str(info.value)
    same(before, snapshot(learn))


@pytest.mark.subprocess
def test_cli_call_on_a_saved_model_is_refused(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "loopdoc", "render", "tests/golden/synth.json", "--call", "fit(1)", "-o", "-"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "--call needs a learner" in proc.stderr
