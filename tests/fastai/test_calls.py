"""``--call``: the loop of a named call, found without training and without changing the learner."""

from __future__ import annotations

import contextlib
import gc
import io
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import ROOT

import loopdoc
from loopdoc.errors import CallError

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


@pytest.mark.parametrize("call, text", [
    ("export()", "'export' does not run a training loop"),
    ("fit(", "not a Python call"),
    ("fit(1, cbs=[NoSuchCallback()])", "name 'NoSuchCallback' is not defined"),
    ("fit(*a)", "*args and **kwargs"),
    ("fit(n_epoch='x', nonsense=1)", "Learner.fit() got an unexpected keyword argument 'nonsense'"),
])
def test_bad_calls(trained, call, text):
    learn, _ = trained
    before = snapshot(learn)
    with pytest.raises(CallError, match=None) as info:
        loopdoc.loop(learn, call=call)
    assert str(info.value).startswith(f"--call {call!r}: ") and text in str(info.value)
    assert "\n" not in str(info.value) and info.value.exit_code == 2
    same(before, snapshot(learn))


def real_call(call: str, where: Path, cbs=()):
    """``call`` made for real on a fresh synthetic learner (8 training, 4 validation items) whose ``path`` is ``where``
    (``lr_find`` saves the model there first): ``None``, or what it raised."""
    from fastai.test_utils import synth_learner

    learn = synth_learner(n_trn=8, n_val=4, cbs=list(cbs), path=where)
    raised = None
    with warnings.catch_warnings():
        # a failed lr_find never reaches LRFinder.after_fit, which removes its TemporaryDirectory (under `where`)
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                eval("learn." + call, {"learn": learn, "np": np})  # noqa: S307 - the test's own calls
        except Exception as e:  # noqa: BLE001 - what the real call raises is the point
            raised = e.with_traceback(None)
        del learn
        gc.collect()
    return raised


def dry_call(call: str, cbs=()):
    """loopdoc's model of ``call`` on a fresh synthetic learner: the ``Loop``, or the ``CallError`` it raised."""
    from fastai.test_utils import synth_learner

    learn = synth_learner(n_trn=8, n_val=4, cbs=list(cbs))
    try:
        return loopdoc.loop(learn, call=call, namespace={"np": np})
    except CallError as e:
        return e


# Each refusal is one fastai refuses too: the real call raises TypeError before it has trained (fine_tune('a'): after
# its first, frozen fit of 1 epoch), while loopdoc refuses it without running anything.
REFUSED = {
    "fit_one_cycle('a')": "Learner.fit would get n_epoch='a', not an integer; it loops over range(n_epoch)",
    "fit(2.5)": "Learner.fit would get n_epoch=2.5, not an integer",
    "fine_tune('a')": "Learner.fit would get n_epoch='a', not an integer",
    "lr_find(num_it=10.0)": ".0, not an integer; it loops over range(n_epoch)",  # n_epoch = num_it // len(dls.train) + 1
    "fit(1, 2, 3, 4, 5, 6, 7, 8)": "Learner.fit() too many positional arguments; it takes (n_epoch, lr=None, wd=None, "
                                   "cbs=None, reset_opt=False, start_epoch=0)",
    "fit(1, bogus=3)": "Learner.fit() got an unexpected keyword argument 'bogus'",
    "fit()": "Learner.fit() missing a required argument: 'n_epoch'",
    "fit(1, n_epoch=2)": "Learner.fit() multiple values for argument 'n_epoch'",
    "fit_sgdr('a', 1)": "Learner.fit_sgdr raised TypeError before its loop started: unsupported operand type(s)",
    "fine_tune(1, lr_max=0.1)": "Learner.fine_tune raised TypeError before its loop started: Learner.fit_one_cycle() got "
                                "multiple values for argument 'lr_max'",
    "get_preds(bogus=1)": "Learner.get_preds raised TypeError before its loop started: GatherPredsCallback.__init__() "
                          "got an unexpected keyword argument 'bogus'",
}


@pytest.mark.parametrize("call", REFUSED)
def test_a_call_fastai_refuses_is_refused_before_anything_runs(call, tmp_path):
    refused = dry_call(call)
    assert isinstance(refused, CallError), refused
    assert str(refused).startswith(f"--call {call!r}: ") and REFUSED[call] in str(refused), str(refused)
    assert "\n" not in str(refused) and refused.exit_code == 2
    raised = real_call(call, tmp_path)
    assert isinstance(raised, TypeError), repr(raised)


def _sets_epochs():
    """A user callback whose ``before_fit`` sets ``n_epoch``: then fit('a') runs, and loopdoc must not refuse it."""
    from fastai.callback.core import Callback

    class SetsEpochs(Callback):
        def before_fit(self):
            self.learn.n_epoch = 1

    return SetsEpochs()


# What fastai accepts, loopdoc documents: a bool or a numpy integer is an index (range accepts it), a keyword fine_tune
# forwards through **kwargs (its declared __signature__ is fastcore's, the code's is what binds), and n_epoch='a' when
# a callback of the user's own replaces it in before_fit (loopdoc cannot know what that one does).
ACCEPTED = ["fit(True)", "fit(np.int64(1))", "fit(0)", "fine_tune(1, div_final=1e4)", "get_preds(with_preds=True)",
            "fit_one_cycle(1, 1e-3, 25.0, 1e5, 0.3)"]


@pytest.mark.parametrize("call", ACCEPTED)
def test_a_call_fastai_accepts_is_documented(call, tmp_path):
    loop = dry_call(call)
    assert not isinstance(loop, Exception), str(loop)
    assert loop.call == call
    assert real_call(call, tmp_path) is None


def test_a_user_before_fit_may_make_any_n_epoch_work(tmp_path):
    loop = dry_call("fit('a')", [_sets_epochs()])
    assert not isinstance(loop, Exception), str(loop)
    assert real_call("fit('a')", tmp_path, [_sets_epochs()]) is None
    assert isinstance(dry_call("fit('a')"), CallError) and isinstance(real_call("fit('a')", tmp_path), TypeError)


@pytest.mark.subprocess
def test_cli_call_on_a_saved_model_is_refused(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "loopdoc", "render", "tests/golden/synth.json", "--call", "fit(1)", "-o", "-"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "--call needs a learner" in proc.stderr


def test_a_repeated_keyword_is_refused_as_python_refuses_it():
    """``fit(n_epoch=1, n_epoch=2)`` is no call Python makes (a ``SyntaxError`` when compiled): refused with its words,
    before any learner loads (``check_call``), not documented as ``fit(2)``."""
    from loopdoc.calls import check_call

    call = "fit(n_epoch=1, n_epoch=2)"
    with pytest.raises(CallError) as info:
        check_call(call)
    assert str(info.value) == f"--call {call!r}: not a Python call: keyword argument repeated: n_epoch"
    with pytest.raises(SyntaxError, match="keyword argument repeated: n_epoch"):
        compile("learn." + call, "<test>", "eval")


# A method of something else than the learner: the real call is another object's (here none: AttributeError), not
# Learner.fit; loopdoc refuses it once the owner is looked up in the module, and says what to write.
OWNERS = {
    "os.fit(1)": "'os' is not the trainer (Learner): write 'fit(1)' or 'learn.fit(1)'",
    "Callback.fit(1)": "'Callback' is not the trainer (Learner): write 'fit(1)' or 'learn.fit(1)'",
    "learn.model.fit(1)": "'learn.model' is not the trainer (Learner): write 'fit(1)' or 'learn.fit(1)'",
    "nope.fit(1)": "'nope' is not the trainer (Learner) (it is not defined in the learner's module): write 'fit(1)' or "
                   "'learn.fit(1)'",
}


@pytest.mark.parametrize("call", OWNERS)
def test_a_method_of_another_object_is_refused(call):
    import os

    from fastai.callback.core import Callback
    from fastai.test_utils import synth_learner

    learn = synth_learner(n_trn=8, n_val=4)
    namespace = {"learn": learn, "os": os, "Callback": Callback}
    with pytest.raises(CallError) as info:
        loopdoc.loop(learn, call=call, namespace=namespace)
    assert str(info.value) == f"--call {call!r}: {OWNERS[call]}" and info.value.exit_code == 2
    with pytest.raises((AttributeError, NameError)):  # the real call: no Learner.fit is run
        eval(call, dict(namespace))  # noqa: S307 - the test's own calls


def test_a_method_of_the_learner_itself_is_documented_by_any_name():
    import types

    from fastai.test_utils import synth_learner

    learn = synth_learner(n_trn=8, n_val=4)
    namespace = {"learn": learn, "box": types.SimpleNamespace(learn=learn)}
    for call in ("fit(1)", "learn.fit(1)", "box.learn.fit(1)"):
        assert loopdoc.loop(learn, call=call, namespace=namespace).call == call
