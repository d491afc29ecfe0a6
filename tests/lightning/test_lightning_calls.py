"""``--call`` for a Lightning ``Trainer``: arguments bound to the Trainer's own method, every bad call one ``CallError``.

Each refusal is checked against the real call, made on the same Trainer: it raises too (``TypeError`` from Python's
binding or from Lightning's own check of the model), before anything runs or is written. Everything is in this
process (``resolve(..., isolated=False)``, ``load``): one import of Lightning for the file.
"""

from __future__ import annotations

import os

import pytest
from helpers import ROOT

from loopdoc.errors import CallError
from loopdoc.load import load
from loopdoc.resolve import resolve, resolve_trace

pytestmark = pytest.mark.lightning
SPEC = "tests/fixtures/lightning/all_calls.py"


@pytest.fixture(autouse=True)
def at_root(monkeypatch):
    monkeypatch.chdir(ROOT)


@pytest.fixture(scope="module")
def loaded():
    """The fixture's Trainer and module namespace, loaded once (from the repository root)."""
    here = os.getcwd()
    os.chdir(ROOT)
    try:
        return load(SPEC)
    finally:
        os.chdir(here)


def real_call(loaded, call: str, where) -> BaseException | None:
    """``trainer.<call>`` made for real in the folder ``where`` (nothing may be written anywhere else): what it raised."""
    here = os.getcwd()
    os.chdir(where)
    try:
        eval("trainer." + call, {**loaded.namespace, "trainer": loaded.trainer})  # noqa: S307 - the test's own calls
    except Exception as e:  # noqa: BLE001 - what the real call raises is the point
        return e
    finally:
        os.chdir(here)
    return None


REFUSED = {
    "fit(model, bogus=1)": "Trainer.fit() got an unexpected keyword argument 'bogus'; it takes (model, "
                           "train_dataloaders=None, val_dataloaders=None, datamodule=None, ckpt_path=None, weights_only=None)",
    "fit(model, train_dl, val_dl, None, None, None, 7)": "Trainer.fit() too many positional arguments",
    "fit()": "Trainer.fit() missing a required argument: 'model'",
    "fit(model, model=model)": "Trainer.fit() multiple values for argument 'model'",
    "validate(model, val_dl, verbos=False)": "Trainer.validate() got an unexpected keyword argument 'verbos'",
    "fit(1)": "the model is 1, not a LightningModule (Trainer.fit would raise TypeError)",
}


@pytest.mark.parametrize("call", REFUSED)
def test_a_call_lightning_refuses_is_refused_naming_the_file_and_the_call(call, loaded, tmp_path):
    with pytest.raises(CallError) as info:
        resolve(SPEC, call, isolated=False)
    message = str(info.value)
    assert message.startswith(f"{SPEC}: --call {call!r}: ") and REFUSED[call] in message, message
    assert "\n" not in message and info.value.exit_code == 2
    raised = real_call(loaded, call, tmp_path)
    assert isinstance(raised, TypeError), repr(raised)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("call", ["validate(model, val_dl, None, False)", "predict(model, test_dl, return_predictions=True)"])
def test_arguments_that_bind_are_documented(call):
    loop = resolve(SPEC, call, isolated=False).document
    assert loop.call == call


@pytest.mark.parametrize(("call", "words"), [
    ("fit(", "not a Python call"),
    ("fit(missing)", "cannot evaluate 'missing': NameError"),
    ("fit_one_cycle(model)", "'fit_one_cycle' does not run a loop"),
    ("fit(model, ckpt_path='x.ckpt')", "ckpt_path is not modelled"),
])
def test_every_bad_call_is_a_call_error(call, words):
    with pytest.raises(CallError) as info:
        resolve(SPEC, call, isolated=False)
    assert str(info.value).startswith(f"{SPEC}: --call {call!r}: ") and words in str(info.value), str(info.value)
    assert info.value.exit_code == 2


def test_a_repeated_keyword_is_refused_as_python_refuses_it(loaded):
    """Python refuses ``fit(model=model, model=model)`` when compiling it: so does loopdoc, with its words (not as
    ``multiple values``, which is a call Python would make)."""
    call = "fit(model=model, model=model)"
    with pytest.raises(CallError) as info:
        resolve(SPEC, call, isolated=False)
    assert str(info.value) == f"{SPEC}: --call {call!r}: not a Python call: keyword argument repeated: model"
    with pytest.raises(SyntaxError, match="keyword argument repeated: model"):
        compile("trainer." + call, "<test>", "eval")


def test_a_method_of_another_object_is_refused_and_never_run(loaded, tmp_path):
    """``model.fit(model, train_dl)`` is the LightningModule's ``fit`` (it has none), not ``Trainer.fit``: refused, and
    ``trace`` does not run ``Trainer.fit`` for it."""
    call = "model.fit(model, train_dl)"
    for how in (resolve, lambda spec, call, **kw: resolve_trace(spec, call, batches=1, **kw)):
        with pytest.raises(CallError) as info:
            how(SPEC, call, isolated=False)
        assert str(info.value) == (f"{SPEC}: --call {call!r}: 'model' is not the trainer (Trainer): write "
                                   "'fit(model, train_dl)' or 'trainer.fit(model, train_dl)'"), str(info.value)
    assert loaded.trainer.global_step == 0
    with pytest.raises(AttributeError, match="fit"):
        eval(call, dict(loaded.namespace))  # noqa: S307 - the real call: no Trainer.fit
    assert resolve(SPEC, "trainer.fit(model, train_dl)", isolated=False).document.call == "fit(model, train_dl)"


@pytest.mark.parametrize(("call", "problem"), [
    ("test(model, val_dl)", "Regressor defines no test_step (Trainer.test would raise)"),
    ("validate(model)", "no validation data: pass dataloaders or a datamodule, or define val_dataloader() "
                        "(Trainer.validate would raise)"),
    ("fit(model)", "no training data: pass train_dataloaders or a datamodule, or define train_dataloader() "
                   "(Trainer.fit would raise)"),
    ("predict(model)", "no predict data: pass dataloaders or a datamodule, or define predict_dataloader() "
                       "(Trainer.predict would raise)"),
])
def test_a_call_lightning_refuses_is_named_as_every_bad_call_is(call, problem, tmp_path):
    """``SPEC: --call 'CALL': PROBLEM``, as for every other bad call; the real call raises too."""
    spec = "examples/lightning_defaults.py"
    with pytest.raises(CallError) as info:
        resolve(spec, call, isolated=False)
    assert str(info.value) == f"{spec}: --call {call!r}: {problem}"
    real = load(spec)
    assert real_call(real, call, tmp_path) is not None and list(tmp_path.iterdir()) == []


DEFAULT_ONLY = '''"""A LightningModule and a Trainer, and no data: the default call, fit(model), has nothing to train on."""
import pytorch_lightning as pl
import torch
from torch import nn


class Bare(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(4, 1)

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


model = Bare()
trainer = pl.Trainer(accelerator="cpu", devices=1, max_epochs=1, logger=False, enable_progress_bar=False)
'''


def test_the_default_call_is_named_in_its_errors(tmp_path):
    """Without ``--call``, an error names the call loopdoc chose: ``the default call 'fit(model)'``, on one line."""
    spec = tmp_path / "no_data.py"
    spec.write_text(DEFAULT_ONLY, encoding="utf-8")
    with pytest.raises(CallError) as info:
        resolve(str(spec), None, isolated=False)
    assert str(info.value) == (f"{spec}: the default call 'fit(model)': no training data: pass train_dataloaders or a "
                               "datamodule, or define train_dataloader() (Trainer.fit would raise)")
    assert info.value.exit_code == 2
    real = load(str(spec))
    where = tmp_path / "run"
    where.mkdir()
    assert real_call(real, "fit(model)", where) is not None and list(where.iterdir()) == []
