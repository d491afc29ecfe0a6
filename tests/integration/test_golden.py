"""Golden files: every shipped example in every format, compared byte for byte.

The JSON model comes from the real CLI on the example learner (its own process, run
from the repository root); HTML, Markdown and text are rendered from that JSON, which
needs no fastai (``tests/rendering/test_golden_render.py`` renders the golden JSON itself). To rewrite the goldens on purpose, after reading the diff:

    make golden        # LOOPDOC_REGENERATE=1 pytest tests/integration/test_golden.py tests/fastai/test_diff_fixtures.py, then docs/matrix.svg
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import EXAMPLES, ROOT, spec_param

from loopdoc.model import load_json
from loopdoc.render import render

GOLDEN = ROOT / "tests" / "golden"
REGENERATE = os.environ.get("LOOPDOC_REGENERATE") == "1"


@pytest.fixture(scope="module")
def saved_models(cli_models) -> dict[str, Path]:
    """Each example's ``loopdoc render SPEC -o loop.json``, from the repository root (the session's ``cli_models``)."""
    return {spec: cli_models[spec] for spec in EXAMPLES}


@pytest.mark.parametrize("fmt", ["json", "html", "md", "txt", "svg"])
@pytest.mark.parametrize("spec", [spec_param(spec) for spec in EXAMPLES])
def test_golden(saved_models, spec, fmt):
    actual = render(load_json(str(saved_models[spec])), fmt)
    golden = GOLDEN / f"{Path(spec).stem}.{fmt}"
    if REGENERATE:
        golden.write_text(actual, encoding="utf-8", newline="\n")
    assert golden.exists(), f"no golden file {golden.relative_to(ROOT)}; run `make golden` and read what it wrote"
    expected = golden.read_text(encoding="utf-8")
    assert actual == expected, f"{golden.relative_to(ROOT)} differs; if the change is intended, run `make golden` and review the diff"
