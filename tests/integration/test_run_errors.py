"""A traced call that raises while it runs is one error, ``RunError`` (exit code 4), naming the file first, for every framework.

Each call below passes every check made before the run (it is Python, a loop method, its arguments bind),
and the framework's own method raises once running: ``learn.fit(2.5)`` (``range(2.5)``), Lightning's
``validate`` given ``dataloaders=3``, Hugging Face's ``evaluate`` given ``eval_dataset=3``. stderr then has one
``Error: SPEC: --call 'CALL': raised EXCEPTION while running: MESSAGE`` line, as every other error names its file.
The matrix runs ``loopdoc.cli.main`` with the worker in this process (the same ``perform``/``failure``/``_document``
path the worker process takes); ``test_the_real_command_line`` runs the real program.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from helpers import ROOT

from loopdoc.cli import main
from loopdoc.errors import EXIT_CODES, LoadError, RunError, raised_while_running

pytestmark = [pytest.mark.fastai, pytest.mark.lightning, pytest.mark.transformers, pytest.mark.subprocess]

FAILS = [
    ("examples/custom_callbacks.py", "fit(2.5)", "TypeError", "'float' object cannot be interpreted as an integer"),
    ("examples/synth.py", "validate(dl=3)", "TypeError", "object of type 'int' has no len()"),
    ("tests/fixtures/lightning/all_calls.py", "validate(model, dataloaders=3)", "TypeError",
     "An invalid dataloader was passed to `Trainer.validate(dataloaders=...)`. Found 3."),
    ("examples/hf_defaults.py", "evaluate(eval_dataset=3)", "TypeError", "object of type 'int' has no len()"),
]


def test_one_class_and_one_code():
    error = raised_while_running("fit(1)", ValueError("two\n  lines"))
    assert isinstance(error, LoadError) and EXIT_CODES[RunError] == 4 and error.exit_code == 4
    assert str(error) == "--call 'fit(1)': raised ValueError while running: two lines"
    named = error.naming("a.py")
    assert str(named) == "a.py: --call 'fit(1)': raised ValueError while running: two lines" and named.naming("a.py") is named


@pytest.mark.parametrize(("spec", "call", "exception", "message"), FAILS, ids=[f"{s.rpartition('/')[2]}-{c}" for s, c, _, _ in FAILS])
def test_a_call_that_raises_while_running_exits_4_naming_the_file(spec, call, exception, message, in_process, tmp_path,
                                                                  capsys):
    out = tmp_path / "trace.json"
    code = main(["trace", spec, "--call", call, "--batches", "2", "-o", str(out)])
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("Error")]
    assert (code, errors) == (4, [f"Error: {spec}: --call {call!r}: raised {exception} while running: {message}"])
    assert not out.exists()
    assert not (ROOT / "hf_defaults_output").exists()


def test_the_framework_raises_the_same():
    """What the lines above report is what the frameworks really do with these calls."""
    import contextlib
    import io

    from fastai.test_utils import synth_learner

    learn = synth_learner(n_trn=16, n_val=8)
    with contextlib.redirect_stdout(io.StringIO()):
        with pytest.raises(TypeError, match="cannot be interpreted as an integer"):
            learn.fit(2.5)
        with pytest.raises(TypeError, match="has no len"):
            learn.validate(dl=3)


def test_the_real_command_line(tmp_path):
    """The program itself, its worker a process of its own: exit code 4 and the same line, no file written."""
    spec, call, exception, message = FAILS[0]
    out = tmp_path / "trace.json"
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "loopdoc", "trace", spec, "--call", call, "-o", str(out)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("Error")]
    assert (proc.returncode, errors) == (4, [f"Error: {spec}: --call {call!r}: raised {exception} while running: {message}"])
    assert not out.exists()
