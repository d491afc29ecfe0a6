"""Every bad ``--call`` is one error, ``CallError``, with one exit code, 2, whichever command, framework or moment finds it.

A call is checked before the learner loads (its syntax, its method: ``loopdoc.calls.check_call``) and after
(its arguments evaluated in the learner's module and bound to the trainer's method, values the framework
refuses); both used to end differently (2 for a ``NameError``, 4 for a ``TypeError`` in the dry run). Here
each of ``render``, ``show``, ``trace``, ``card`` and ``check`` is run on a learner of each framework with
calls that fail at each moment: the exit code is 2, stderr has one ``Error: SPEC: --call 'CALL': …`` line,
and nothing is written (no output file, the card as it was).

The matrix runs ``loopdoc.cli.main`` in this process with the worker in-process too (the same
``perform``/``failure``/``_document`` path the worker process takes); ``test_the_real_command_line`` runs the
real program once per framework.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from helpers import ROOT

from loopdoc.cli import main
from loopdoc.errors import EXIT_CODES, CallError, UsageError

pytestmark = [pytest.mark.fastai, pytest.mark.lightning, pytest.mark.transformers, pytest.mark.subprocess]

FASTAI = "examples/synth.py"
LIGHTNING = "tests/fixtures/lightning/all_calls.py"
HF = "examples/hf_defaults.py"

# (spec, call, the problem after "SPEC: --call 'CALL': "): found after loading (a value, binding, an unknown name,
# a method of another object than the trainer) and before (not Python, a repeated keyword, no such loop method).
BAD = [
    (FASTAI, "fit_one_cycle('a')", "Learner.fit would get n_epoch='a', not an integer; it loops over range(n_epoch), "
                                   "which raises TypeError"),
    (FASTAI, "fit(1, 2, 3, 4, 5, 6, 7, 8)", "Learner.fit() too many positional arguments; it takes (n_epoch, lr=None, "
                                            "wd=None, cbs=None, reset_opt=False, start_epoch=0)"),
    (FASTAI, "fit(1, bogus=3)", "Learner.fit() got an unexpected keyword argument 'bogus'; it takes (n_epoch, lr=None, "
                                "wd=None, cbs=None, reset_opt=False, start_epoch=0)"),
    (FASTAI, "fit(nope)", "cannot evaluate 'nope': NameError: name 'nope' is not defined"),
    (LIGHTNING, "fit(model, bogus=1)", "Trainer.fit() got an unexpected keyword argument 'bogus'; it takes (model, "
                                       "train_dataloaders=None, val_dataloaders=None, datamodule=None, ckpt_path=None, "
                                       "weights_only=None)"),
    (LIGHTNING, "validate(nope)", "cannot evaluate 'nope': NameError: name 'nope' is not defined"),
    (HF, "train(bogus=1)", "Trainer.train() got an unexpected keyword argument 'bogus'; it takes "
                           "(resume_from_checkpoint=None, trial=None, ignore_keys_for_eval=None)"),
    (HF, "predict()", "Trainer.predict() missing a required argument: 'test_dataset'; it takes (test_dataset, "
                      "ignore_keys=None, metric_key_prefix='test')"),
    (HF, "fit(", "not a Python call: '(' was never closed"),
    (FASTAI, "fit(n_epoch=1, n_epoch=2)", "not a Python call: keyword argument repeated: n_epoch"),
    (LIGHTNING, "model.fit(model, train_dl)", "'model' is not the trainer (Trainer): write 'fit(model, train_dl)' or "
                                              "'trainer.fit(model, train_dl)'"),
    (HF, "trainer.model.train()", "'trainer.model' is not the trainer (Trainer): write 'train()' or 'trainer.train()'"),
]
COMMANDS = ["render", "show", "trace", "card", "check"]


def argv(command: str, spec: str, call: str, where) -> list[str]:
    """The command line of ``command`` on ``spec`` with ``--call call``, its output (if any) under ``where``."""
    return {"render": ["render", spec, "-o", str(where / "loop.html")],
            "show": ["show", spec],
            "trace": ["trace", spec, "-o", str(where / "trace.json")],
            "card": ["card", spec, str(where / "README.md")],
            "check": ["check", spec]}[command] + ["--call", call]


def test_one_class_and_one_code():
    assert issubclass(CallError, UsageError) and EXIT_CODES[CallError] == 2 and CallError("x").exit_code == 2


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(("spec", "call", "problem"), BAD, ids=[f"{s.rpartition('/')[2]}-{c}" for s, c, _ in BAD])
def test_a_bad_call_exits_2_with_one_line_naming_the_file_and_the_call(command, spec, call, problem, in_process,
                                                                      tmp_path, capsys):
    card = tmp_path / "README.md"
    card.write_text("# A model\n", encoding="utf-8")
    code = main(argv(command, spec, call, tmp_path))
    out, err = capsys.readouterr()
    errors = [line for line in err.splitlines() if line.startswith("Error")]
    assert (code, errors) == (2, [f"Error: {spec}: --call {call!r}: {problem}"]), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.md"] and card.read_text(encoding="utf-8") == "# A model\n"
    if command == "show":
        assert out == ""
    assert not (ROOT / "hf_defaults_output").exists()


@pytest.mark.parametrize(("spec", "call"), [(FASTAI, "fit(1, bogus=3)"), (LIGHTNING, "fit(model, bogus=1)"),
                                            (HF, "train(bogus=1)")])
def test_the_real_command_line(spec, call, tmp_path):
    """The program itself, its worker a process of its own: exit code 2 and the same line, no file written."""
    out = tmp_path / "loop.html"
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "loopdoc", "render", spec, "--call", call, "-o", str(out)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("Error")]
    assert proc.returncode == 2 and len(errors) == 1, proc.stderr
    assert errors[0].startswith(f"Error: {spec}: --call {call!r}: ") and "unexpected keyword argument 'bogus'" in errors[0]
    assert not out.exists()
