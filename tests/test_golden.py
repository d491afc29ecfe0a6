"""Golden files: every shipped example in every format, compared byte for byte.

The JSON model comes from the real CLI on the example learner (its own process, run
from the repository root); HTML, Markdown and text are rendered from that JSON, which
needs no fastai. To rewrite the goldens on purpose, after reading the diff:

    make golden        # LOOPDOC_REGENERATE=1 pytest tests/test_golden.py
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import EXAMPLES, HF_EXAMPLES, ROOT

from loopdoc.model import load_json
from loopdoc.render import render

GOLDEN = ROOT / "tests" / "golden"
REGENERATE = os.environ.get("LOOPDOC_REGENERATE") == "1"
CASES = EXAMPLES + HF_EXAMPLES


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory) -> dict[str, Path]:
    out = {}
    for spec in CASES:
        target = tmp_path_factory.mktemp("golden") / "loop.json"
        proc = subprocess.run([sys.executable, "-m", "loopdoc", "render", spec, "-o", str(target)],
                              cwd=ROOT, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr
        out[spec] = target
    return out


@pytest.mark.parametrize("fmt", ["json", "html", "md", "txt"])
@pytest.mark.parametrize("spec", CASES)
def test_golden(saved_models, spec, fmt):
    actual = render(load_json(str(saved_models[spec])), fmt)
    golden = GOLDEN / f"{Path(spec).stem}.{fmt}"
    if REGENERATE:
        golden.write_text(actual, encoding="utf-8", newline="\n")
    assert golden.exists(), f"no golden file {golden.relative_to(ROOT)}; run `make golden` and read what it wrote"
    expected = golden.read_text(encoding="utf-8")
    assert actual == expected, f"{golden.relative_to(ROOT)} differs; if the change is intended, run `make golden` and review the diff"
