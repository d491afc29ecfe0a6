"""A fast yes/no check of a document against loopdoc's own JSON Schemas, without importing jsonschema.

``jsonschema`` (with ``referencing`` and ``attrs``) takes about 60 ms to import, a third of
what ``loopdoc render loop.json`` needs. Saved models are almost always valid, so
``loopdoc.model.load_json`` asks ``conforms`` first and imports jsonschema only for a
document that fails, to find and word the error. ``conforms`` implements exactly the
keywords ``loop.schema.json`` and ``trace.schema.json`` use, with jsonschema's (Draft
2020-12) meaning; any other keyword raises ``Unsupported`` so that the caller falls back
to jsonschema. A test checks that both agree on thousands of mutated documents.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

# Keywords that describe and do not constrain.
_ANNOTATIONS = frozenset({"$schema", "$id", "$defs", "title", "description", "$comment"})


class Unsupported(Exception):  # noqa: N818 - a signal to fall back, not an error to report
    """The schema uses a keyword ``conforms`` does not implement."""


def _is_type(instance: Any, name: str) -> bool:
    """JSON Schema's type test as jsonschema does it: ``bool`` is neither integer nor number; ``1.0`` is an integer."""
    if name == "object":
        return isinstance(instance, dict)
    if name == "array":
        return isinstance(instance, list)
    if name == "string":
        return isinstance(instance, str)
    if name == "boolean":
        return isinstance(instance, bool)
    if name == "null":
        return instance is None
    if isinstance(instance, bool):
        return False
    if name == "integer":
        return isinstance(instance, int) or (isinstance(instance, float) and instance.is_integer())
    if name == "number":
        return isinstance(instance, (int, float))
    raise Unsupported(f"type {name!r}")


def _equal(a: Any, b: Any) -> bool:
    """JSON equality: ``True`` is not ``1``, ``1`` is ``1.0``; containers element by element."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b or (_is_type(a, "number") and _is_type(b, "number") and a == b)


def conforms(instance: Any, schema: dict[str, Any], documents: dict[str, dict[str, Any]]) -> bool:
    """Whether ``instance`` is valid against ``schema``, for the keywords loopdoc's schemas use.

    Args:
        instance: the parsed JSON document.
        schema: the schema (a dict with ``$id``).
        documents: every schema a ``$ref`` may name, by ``$id`` (``schema`` included).

    Returns:
        ``True`` when valid.

    Raises:
        Unsupported: the schema uses a keyword not implemented here.
        RecursionError: the document is nested too deeply.
    """
    patterns: dict[str, re.Pattern[str]] = {}

    def resolve(ref: str, base: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        uri, _, pointer = ref.partition("#")
        doc = documents.get(uri) if uri else base
        if doc is None:
            raise Unsupported(f"$ref {ref!r}")
        node: Any = doc
        for part in [p for p in pointer.split("/") if p]:
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node, doc

    def check(value: Any, node: Any, base: dict[str, Any]) -> bool:
        if node is True:
            return True
        if node is False:
            return False
        for key, arg in node.items():
            if key in _ANNOTATIONS:
                continue
            keyword = keywords.get(key)
            if keyword is None:
                raise Unsupported(key)
            if not keyword(value, arg, node, base):
                return False
        return True

    def ref(value: Any, arg: str, node: Any, base: dict[str, Any]) -> bool:
        target, doc = resolve(arg, base)
        return check(value, target, doc)

    def properties(value: Any, arg: dict[str, Any], node: Any, base: dict[str, Any]) -> bool:
        return not isinstance(value, dict) or all(check(value[k], sub, base) for k, sub in arg.items() if k in value)

    def additional(value: Any, arg: Any, node: Any, base: dict[str, Any]) -> bool:
        if not isinstance(value, dict):
            return True
        if "patternProperties" in node:
            raise Unsupported("patternProperties")
        known = node.get("properties", {})
        return all(check(v, arg, base) for k, v in value.items() if k not in known)

    def pattern(value: Any, arg: str, node: Any, base: dict[str, Any]) -> bool:
        if not isinstance(value, str):
            return True
        if arg not in patterns:
            patterns[arg] = re.compile(arg)
        return patterns[arg].search(value) is not None  # jsonschema uses re.search too

    keywords: dict[str, Callable[[Any, Any, Any, dict[str, Any]], bool]] = {
        "$ref": ref,
        "type": lambda v, arg, n, b: any(_is_type(v, t) for t in (arg if isinstance(arg, list) else [arg])),
        "properties": properties,
        "additionalProperties": additional,
        "required": lambda v, arg, n, b: not isinstance(v, dict) or all(k in v for k in arg),
        "items": lambda v, arg, n, b: not isinstance(v, list) or all(check(x, arg, b) for x in v),
        "enum": lambda v, arg, n, b: any(_equal(v, x) for x in arg),
        "const": lambda v, arg, n, b: _equal(v, arg),
        "minimum": lambda v, arg, n, b: not _is_type(v, "number") or v >= arg,
        "pattern": pattern,
        "anyOf": lambda v, arg, n, b: any(check(v, sub, b) for sub in arg),
    }
    return check(instance, schema, schema)
