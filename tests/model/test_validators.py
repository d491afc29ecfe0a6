"""The validators compiled ahead of time (``loopdoc/model/_validators.py``) against the schema files and jsonschema.

The compiled module decides whether a saved document is valid without importing jsonschema;
these tests prove it is what the schema files compile to, and that it agrees with jsonschema
on valid documents and on broken ones (hypothesis mutates real documents: values replaced,
keys removed or added, anywhere in the tree).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loopdoc.model import _validators, codegen
from loopdoc.model.documents import _validator, schema, schema_problem, trace_schema

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
DOCUMENTS = {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(GOLDEN.glob("*.json"))}


def _trace(loop: dict[str, Any]) -> dict[str, Any]:
    """A small valid trace document around a loop document."""
    return {"schema_version": "1.0", "kind": "trace", "loop": loop, "call": "fit(1)", "batches": 2, "events": [
        {"path": ["fit"], "event": "before_fit", "fired": 1, "cancellations": [],
         "handlers": [{"callback": loop["callbacks"][0]["id"], "function": "f", "calls": 1, "total_s": 0.1, "mean_s": 0.1, "max_s": 0.1}]}],
        "batch_s": 0.5, "callback_batch_s": 0.1, "differences": [], "after_loop": None}


def test_the_compiled_module_is_what_the_schemas_compile_to() -> None:
    assert codegen.generate() == codegen.TARGET.read_text(encoding="utf-8"), "run: python -m loopdoc.model.codegen"


def test_valid_documents_pass_both() -> None:
    assert DOCUMENTS, "no golden JSON found"
    loop_validator, trace_validator = _validator(schema()), _validator(trace_schema())
    for name, document in DOCUMENTS.items():
        assert _validators.validate_loop(document) is not None, name
        assert not list(loop_validator.iter_errors(document)), name
        trace = _trace(document)
        _validators.validate_trace(trace)
        assert not list(trace_validator.iter_errors(trace)), name
        assert schema_problem(document) is None and schema_problem(trace, "trace") is None


def _paths(node: Any, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [here]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*here, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*here, i))
    return out


JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers(-3, 3) | st.floats(-2, 2, allow_nan=False) | st.text(max_size=3),
                           lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=5), inner, max_size=2),
                           max_leaves=4)


@st.composite
def mutated(draw: Any) -> tuple[str, dict[str, Any]]:
    name = draw(st.sampled_from(sorted(DOCUMENTS)))
    document = copy.deepcopy(DOCUMENTS[name])
    kind = "loop"
    if draw(st.booleans()):
        document, kind = _trace(document), "trace"
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(document)[1:]))
        parent = document
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(JSON_VALUES)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=6))] = draw(JSON_VALUES)
        else:
            parent.append(draw(JSON_VALUES))
    return kind, document


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_both_validators_agree_on_broken_documents(case: tuple[str, dict[str, Any]]) -> None:
    kind, document = case
    reference = _validator(trace_schema() if kind == "trace" else schema())
    expected_valid = not list(reference.iter_errors(document))
    check = _validators.validate_trace if kind == "trace" else _validators.validate_loop
    try:
        check(document)
        compiled_valid = True
    except _validators.SchemaError:
        compiled_valid = False
    assert compiled_valid == expected_valid, json.dumps(document)[:400]
    assert (schema_problem(document, kind) is None) == expected_valid


def test_a_failure_is_explained_by_jsonschema_with_the_field_path() -> None:
    document = copy.deepcopy(DOCUMENTS["synth"])
    document["callbacks"][1]["order"] = "late"
    assert schema_problem(document) == "at callbacks/1/order: 'late' is not of type 'number', 'null'"
