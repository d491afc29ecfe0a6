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
from loopdoc.resolve import resolve

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
