"""How paths are shown in a model (``loopdoc.paths``, below the model layer): relative to the working directory,
installed packages by their import path."""

from __future__ import annotations

import sys


def test_display_path_with_a_virtualenv_inside_the_project(tmp_path, monkeypatch):
    from loopdoc.paths import display_path

    site = tmp_path / "proj" / ".venv" / "lib" / "python3.11" / "site-packages"
    (site / "fastai").mkdir(parents=True)
    (tmp_path / "proj" / "tests").mkdir()
    monkeypatch.chdir(tmp_path / "proj")
    monkeypatch.setattr(sys, "path", [str(tmp_path / "proj" / "tests"), str(site), *sys.path])
    assert display_path(site / "fastai" / "learner.py") == "fastai/learner.py"
    assert display_path(tmp_path / "proj" / "tests" / "fixtures" / "x.py") == "tests/fixtures/x.py"  # not fixtures/x.py
    assert display_path("examples/synth.py") == "examples/synth.py"
    monkeypatch.chdir("/")
    assert display_path(tmp_path / "elsewhere.py") == (tmp_path / "elsewhere.py").as_posix()  # never relative to /
