"""loopdoc is typed for its users: ``py.typed`` ships in the wheel, and mypy passes on the public modules and on
``tests/typing/public_api.py`` (which uses the API as a user's code would, wrong arguments included).

mypy's configuration is in ``pyproject.toml`` (``[tool.mypy]``); ``make typecheck`` runs the same. A cold run
reads fastai's source (so that ``Learner`` is the real class) and takes ~25 s; its cache (``.mypy_cache``) makes
the next one take ~2 s.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile

import pytest
from helpers import ROOT

pytestmark = pytest.mark.subprocess


def test_mypy_passes_on_the_public_api():
    pytest.importorskip("mypy")
    proc = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("Success: no issues found"), proc.stdout


def test_wheel_ships_py_typed(tmp_path):
    code = ("import sys, setuptools.build_meta as b; print(b.build_wheel(sys.argv[1]))")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    wheel = tmp_path / proc.stdout.strip().splitlines()[-1]
    names = zipfile.ZipFile(wheel).namelist()
    assert "loopdoc/py.typed" in names and "loopdoc/model/loop.schema.json" in names


def test_public_annotations_name_the_real_classes():
    """At run time the annotations resolve (to ``Any`` where the framework's class is for type checkers only)."""
    import typing

    import loopdoc

    hints = typing.get_type_hints(loopdoc.trace_learner)
    assert hints["return"] is loopdoc.Trace
    assert typing.get_type_hints(loopdoc.load_loop)["return"] is loopdoc.Loop
    assert typing.get_type_hints(loopdoc.loop)["trainer"] is typing.Any  # fastai.learner.Learner for a type checker
