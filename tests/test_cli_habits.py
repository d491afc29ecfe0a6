"""Command-line habits (issue 15, section 4): ``--call`` checked before loading, ``loopdoc`` alone, colour,
loading progress on a terminal, ``render --watch``.

Fixtures: ``tests/fixtures/cli`` (``marker.py`` writes a file when imported; ``imports_fastai.py``
imports the top-level ``fastai`` package, which is cheap, and defines no learner). Most tests
run without importing fastai; the few that do say so.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import ROOT

import loopdoc.resolve
from loopdoc.calls import check_call, loop_calls
from loopdoc.cli import main
from loopdoc.errors import UsageError

FIX = "tests/fixtures/cli"


def run(*args: str, env: dict[str, str] | None = None, **kw) -> subprocess.CompletedProcess[str]:
    """``python -m loopdoc ARGS`` from the repository root, stdout and stderr captured as text."""
    full_env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "loopdoc", *args], cwd=ROOT, env=full_env, capture_output=True, text=True,
                          timeout=120, **kw)


# ---------------------------------------------------------------- --call checked before loading


def test_loop_calls_are_the_union_of_the_adapters_calls():
    from loopdoc.adapters.registry import adapters

    names = loop_calls()
    assert names[:2] == ("fit", "fit_one_cycle") and len(names) == len(set(names))
    assert set(names) == {c for a in adapters() for c in a.calls}


@pytest.mark.parametrize("call, message", [
    ("fit_one_cyle(3)", "--call 'fit_one_cyle(3)': 'fit_one_cyle' is not a loop call; did you mean 'fit_one_cycle'? "
                        "accepted: fit, fit_one_cycle, fit_flat_cos, fit_sgdr, fine_tune, lr_find, validate, get_preds"),
    ("export()", "--call 'export()': 'export' is not a loop call; accepted: fit, fit_one_cycle,"),
    ("learn.fine_tun(1)", "'fine_tun' is not a loop call; did you mean 'fine_tune'?"),
    ("fit(", "--call 'fit(': not a Python call"),
    ("fit", "--call 'fit': expected a call such as 'fit_one_cycle(3, 1e-3)'"),
    ("fit(*a)", "*args and **kwargs are not supported"),
])
def test_check_call_rejects(call, message):
    with pytest.raises(UsageError) as info:
        check_call(call)
    assert str(info.value).startswith(message) or message in str(info.value), str(info.value)
    assert "\n" not in str(info.value)


def test_check_call_accepts_without_evaluating_arguments():
    assert check_call("fit_one_cycle(3, lr_max=undefined_name)") == "fit_one_cycle"  # arguments: checked after loading
    assert check_call("learn.get_preds(with_loss=True)") == "get_preds"


@pytest.mark.parametrize("command", [["show"], ["render", "-o", "-"], ["trace"]])
def test_bad_call_fails_before_any_worker_starts(command, tmp_path, monkeypatch, capsys):
    """No worker process: the learner (which writes a marker file when imported) never runs, and ``Worker`` is never built."""
    marker = tmp_path / "imported"
    monkeypatch.setenv("LOOPDOC_TEST_MARKER", str(marker))

    def no_worker(*args, **kwargs):
        raise AssertionError("a worker was started")

    monkeypatch.setattr(loopdoc.resolve, "Worker", no_worker)
    monkeypatch.chdir(ROOT)
    code = main([command[0], f"{FIX}/marker.py", *command[1:], "--call", "fit_one_cyle(3)"])
    err = capsys.readouterr().err
    assert code == 2 and not marker.exists()
    assert err == ("Error: --call 'fit_one_cyle(3)': 'fit_one_cyle' is not a loop call; did you mean 'fit_one_cycle'? "
                   "accepted: fit, fit_one_cycle, fit_flat_cos, fit_sgdr, fine_tune, lr_find, validate, get_preds\n")


def test_bad_call_in_a_real_process_imports_nothing(tmp_path):
    """The real command line, and a good call for contrast: the marker learner does run then (and fails: no learner)."""
    marker = tmp_path / "imported"
    env = {"LOOPDOC_TEST_MARKER": str(marker)}
    (tmp_path / "README.md").write_text("# A model\n", encoding="utf-8")
    proc = run("card", f"{FIX}/marker.py", str(tmp_path / "README.md"), "--call", "fitt(1)", env=env)
    assert proc.returncode == 2 and not marker.exists(), proc.stderr
    assert proc.stderr.splitlines() == ["Error: --call 'fitt(1)': 'fitt' is not a loop call; did you mean 'fit'? accepted: fit, "
                                        "fit_one_cycle, fit_flat_cos, fit_sgdr, fine_tune, lr_find, validate, get_preds"]
    proc = run("show", f"{FIX}/marker.py", "--call", "fit(1)", env=env)
    assert proc.returncode == 4 and marker.read_text() == "imported\n", proc.stderr


# ---------------------------------------------------------------- `loopdoc` alone


def test_loopdoc_alone_prints_the_help_and_exits_2(capsys):
    assert main([]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("usage: loopdoc ") and "show the full traceback on error" in err
    for command in ("render", "show", "trace", "diff", "card"):
        assert f"\n    {command} " in err
    proc = run()
    assert proc.returncode == 2 and proc.stdout == "" and proc.stderr.startswith("usage: loopdoc ")
    proc = run("rendr")  # an unknown command is still argparse's one-line error
    assert proc.returncode == 2 and proc.stderr.startswith("Error: loopdoc: argument COMMAND: invalid choice: 'rendr'")
    assert len(proc.stderr.splitlines()) == 1
