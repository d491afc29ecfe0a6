"""The loop model as data: its schema, and the JSON round trip of saved and hand-built models (no framework).

Saved models: the examples' golden models (``tests/golden/*.json``, kept equal to what the
command line writes by ``tests/integration/test_golden.py``) and the diff fixtures'
(``tests/fixtures/diff/*.json``, kept equal to a fresh extraction by
``tests/fastai/test_diff_fixtures.py``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from helpers import DIFF_CASES, EXAMPLES, GOLDEN, HOSTILE, PLAIN, ROOT, diff_fixture_path, handmade_loop

from loopdoc.model import Loop, load_json, schema

SAVED = {spec: GOLDEN / f"{Path(spec).stem}.json" for spec in EXAMPLES}
SAVED.update({f"tests/fixtures/diff/{diff_fixture_path(case).stem}.py": diff_fixture_path(case) for case in ("old", *DIFF_CASES)})


@pytest.mark.parametrize("spec", SAVED)
def test_examples_match_schema_and_round_trip(spec):
    data = json.loads(SAVED[spec].read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(schema()).validate(data)
    loop = Loop.from_dict(data)
    assert loop.to_dict() == data
    assert json.loads(loop.to_json()) == data
    assert Loop.from_dict(json.loads(loop.to_json())) == loop
    assert load_json(str(SAVED[spec])) == loop


def test_schema_is_itself_valid():
    jsonschema.Draft202012Validator.check_schema(schema())


def test_handmade_loop_matches_schema_and_round_trips(tmp_path):
    loop = handmade_loop(PLAIN)
    jsonschema.Draft202012Validator(schema()).validate(loop.to_dict())
    saved = tmp_path / "loop.json"
    saved.write_text(loop.to_json(), encoding="utf-8")
    assert load_json(str(saved)) == loop


def test_hostile_handmade_loop_round_trips_but_is_no_valid_document():
    """Its callback ids are not URL-safe: the model keeps any text, the schema refuses such a saved document."""
    loop = handmade_loop(HOSTILE)
    assert Loop.from_dict(loop.to_dict()) == loop == Loop.from_dict(json.loads(loop.to_json()))
    with pytest.raises(jsonschema.ValidationError, match="does not match"):
        jsonschema.Draft202012Validator(schema()).validate(loop.to_dict())


@pytest.mark.subprocess
def test_model_module_does_not_import_jinja() -> None:
    # loopdoc/__init__.py imports the renderer; load loopdoc.model alone, as an empty package's module
    code = (f"import sys, types; pkg = types.ModuleType('loopdoc'); pkg.__path__ = [{str(ROOT / 'loopdoc')!r}]; "
            "sys.modules['loopdoc'] = pkg; import loopdoc.model; assert 'jinja2' not in sys.modules, 'jinja2 imported'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
