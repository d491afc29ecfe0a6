"""The golden files, rendered from the golden models themselves (no framework): HTML, Markdown and text, byte for byte.

``tests/integration/test_golden.py`` checks the same files against models the command line
writes from the example learners (and rewrites them with ``make golden``); this one checks
the renderer alone, on the saved ``tests/golden/*.json``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import EXAMPLES, GOLDEN, ROOT

from loopdoc.model import load_json
from loopdoc.render import render


@pytest.mark.parametrize("fmt", ["json", "html", "md", "txt"])
@pytest.mark.parametrize("spec", EXAMPLES)
def test_golden_model_renders_to_its_golden_files(spec, fmt):
    saved = GOLDEN / f"{Path(spec).stem}.json"
    golden = GOLDEN / f"{Path(spec).stem}.{fmt}"
    assert saved.exists() and golden.exists(), f"no golden files for {spec}; run `make golden` and read what it wrote"
    assert render(load_json(str(saved)), fmt) == golden.read_text(encoding="utf-8"), f"{golden.relative_to(ROOT)} differs"
