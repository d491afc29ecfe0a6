"""The saved models of the diff fixtures (``tests/fixtures/diff/*.json``) are what a fresh extraction gives.

``tests/analysis`` and ``tests/rendering`` compare and render those saved models without
fastai; this test keeps them honest. Each learner (``tests/fixtures/diff/*.py``) is loaded
in this process from the repository root (``helpers.load``), as ``loopdoc render -o x.json``
would write its model. To rewrite them on purpose, after reading the diff:

    make golden        # LOOPDOC_REGENERATE=1: also tests/integration/test_golden.py
"""

from __future__ import annotations

import os

import pytest
from helpers import DIFF, DIFF_CASES, ROOT, diff_fixture_path, load

from loopdoc.render import render

pytestmark = pytest.mark.fastai

REGENERATE = os.environ.get("LOOPDOC_REGENERATE") == "1"


@pytest.mark.parametrize("case", ["old", *DIFF_CASES])
def test_saved_diff_fixture_is_a_fresh_extraction(case: str) -> None:
    saved = diff_fixture_path(case)
    fresh = render(load(f"{DIFF}/{saved.stem}.py"), "json")
    if REGENERATE:
        saved.write_text(fresh, encoding="utf-8", newline="\n")
    assert saved.exists(), f"no saved model {saved.relative_to(ROOT)}; run `make golden` and read what it wrote"
    assert saved.read_text(encoding="utf-8") == fresh, (
        f"{saved.relative_to(ROOT)} differs from a fresh extraction; if the change is intended, run `make golden` and review the diff")
