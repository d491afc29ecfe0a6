"""Reading saved documents: a loop model or a trace from ``.json``, checked against its JSON Schema first.

The schemas sit beside this module (``loop.schema.json``, ``trace.schema.json``, JSON
Schema 2020-12); validation uses the ``jsonschema`` library. Part of the model layer:
imports nothing from loopdoc outside ``loopdoc.model`` but the error classes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import LoadError, ModelError
from .loop import SCHEMA_VERSION, Loop

if TYPE_CHECKING:
    from .trace import Trace


def schema() -> dict[str, Any]:
    """Return the JSON Schema (2020-12) of ``Loop.to_dict()``, read from ``loopdoc/model/loop.schema.json``."""
    return _read_schema("loop.schema.json")


def trace_schema() -> dict[str, Any]:
    """Return the JSON Schema (2020-12) of ``Trace.to_dict()``, read from ``loopdoc/model/trace.schema.json``."""
    return _read_schema("trace.schema.json")


def check_schema() -> dict[str, Any]:
    """Return the JSON Schema (2020-12) of ``CheckReport.to_dict()`` (``loopdoc check --format json``), read from
    ``loopdoc/model/check.schema.json``; its findings ``$ref`` the loop schema (``validator`` resolves it offline)."""
    return _read_schema("check.schema.json")


def validator(document_schema: dict[str, Any]) -> Any:
    """A ``jsonschema`` 2020-12 validator for one of loopdoc's schemas, resolving ``$ref`` to the loop schema offline.

    Args:
        document_schema: ``schema()``, ``trace_schema()`` or ``check_schema()``.

    Returns:
        A ``jsonschema.Draft202012Validator``.
    """
    return _validator(document_schema)


def _read_schema(name: str) -> dict[str, Any]:
    """A schema file beside this module: a plain file in any normal install, so no importlib.resources (~6 ms)."""
    return json.loads(Path(__file__).with_name(name).read_text(encoding="utf-8"))


def load_json(path: str) -> Loop | Trace:
    """Read a saved model or trace, checking it against its JSON Schema first.

    Args:
        path: a ``.json`` file written by ``loopdoc render -o loop.json`` (a ``Loop``)
            or ``loopdoc trace -o trace.json`` (a ``loopdoc.model.trace.Trace``, which has
            ``"kind": "trace"``); a UTF-8 byte order mark is allowed.

    Returns:
        The ``Loop`` or ``Trace``.

    Raises:
        LoadError: the file is missing, unreadable or not JSON, or JSON no loopdoc document
            holds: an object with a repeated key, an integer of more than 100 digits.
        ModelError: a ``schema_version`` with a newer major version than
            ``SCHEMA_VERSION``, or a document that breaks the schema (the
            message names the field path, e.g. ``phases/0/children/3/name``).
    """
    try:
        with open(path, encoding="utf-8-sig") as f:
            data = json.load(f, parse_constant=_no_constant, parse_float=_finite_float, parse_int=_bounded_int,
                             object_pairs_hook=_unique_keys)
    except FileNotFoundError as e:
        raise LoadError(f"{path}: no such file") from e
    except IsADirectoryError as e:
        raise LoadError(f"{path}: is a folder, not a .json file") from e
    except OSError as e:
        raise LoadError(f"{path}: cannot read: {e.strerror or e}") from e
    except json.JSONDecodeError as e:
        raise LoadError(f"{path}:{e.lineno}: not JSON: {e.msg}") from e
    except _NotFinite as e:
        raise LoadError(f"{path}: not JSON: {e}") from e
    except _NotAccepted as e:
        raise LoadError(f"{path}: not JSON this reader accepts: {e}") from e
    except UnicodeDecodeError as e:
        raise LoadError(f"{path}: not JSON: not UTF-8 text (byte {e.start})") from e
    except RecursionError as e:
        raise LoadError(f"{path}: not JSON this reader accepts: nested too deeply") from e
    is_trace = isinstance(data, dict) and data.get("kind") == "trace"
    build: Callable[[dict[str, Any]], Loop | Trace]
    if is_trace:
        from .trace import TRACE_SCHEMA_VERSION as ours_text
        from .trace import Trace

        what, build, kind = "loopdoc trace", Trace.from_dict, "trace"
    else:
        what, build, kind, ours_text = "loopdoc loop model", Loop.from_dict, "loop", SCHEMA_VERSION
    version = data.get("schema_version") if isinstance(data, dict) else None
    if isinstance(version, str) and version.split(".")[0].isdigit():
        major, ours = int(version.split(".")[0]), int(ours_text.split(".")[0])
        if major > ours:
            raise ModelError(f"{path}: schema_version {version} is newer than this loopdoc reads "
                             f"({ours_text}); upgrade loopdoc")
    problem = schema_problem(data, kind)
    if problem is not None:
        raise ModelError(f"{path}: not a {what}: {problem}")
    broken = _broken_reference(data["loop"] if is_trace else data, ["loop"] if is_trace else [])
    if broken is not None:
        raise ModelError(f"{path}: not a {what}: at {broken[0]}: {broken[1]}")
    try:
        return build(data)
    except (KeyError, TypeError, ValueError) as e:  # the schema should have caught it
        raise ModelError(f"{path}: not a {what}: {type(e).__name__}: {e}") from e


def schema_problem(data: Any, kind: str = "loop") -> str | None:
    """Why ``data`` breaks the schema of ``kind``, or ``None`` when it does not.

    The verdict comes from the validators compiled ahead of time from the schema files
    (``loopdoc.model._validators``, made by fastjsonschema; ``loopdoc.model.codegen``), which
    import nothing heavy; only a document that fails is checked again with ``jsonschema``, to
    name the field and the best-matching problem.

    Args:
        data: a parsed JSON document.
        kind: ``"loop"`` (``loop.schema.json``) or ``"trace"`` (``trace.schema.json``).

    Returns:
        ``"at phases/0/children/3/name: 5 is not of type 'string'"``, ``"nested too deeply"``, or ``None``.
    """
    from . import _validators

    check = _validators.validate_trace if kind == "trace" else _validators.validate_loop
    try:
        check(data)
        return None
    except _validators.SchemaError as e:
        fallback = str(e)
    except RecursionError:
        return "nested too deeply"
    import jsonschema  # only to explain a failure: a well-kept library, ~60 ms to import

    try:
        error = jsonschema.exceptions.best_match(_validator(trace_schema() if kind == "trace" else schema()).iter_errors(data))
    except RecursionError:
        return "nested too deeply"
    if error is None:  # the two validators disagree; the compiled one's message still says where
        return fallback
    where, message = _located(error)
    message = " ".join(message.split())
    if len(message) > 200:
        message = message[:199] + "…"
    return f"at {where}: {message}"


class _NotFinite(ValueError):
    """``NaN``, ``Infinity`` or a number too large for a float: Python's ``json`` accepts them, JSON does not."""


def _no_constant(name: str) -> Any:
    raise _NotFinite(f"{name} is not a JSON number")


class _NotAccepted(ValueError):
    """Valid JSON that no loopdoc document holds, refused with the file named: a repeated key, a huge integer."""


# Python refuses to convert integers longer than this many digits (``sys.get_int_max_str_digits``, 4300 by default)
# with a ValueError; no count or line number in a loopdoc document comes near it.
_MAX_INT_DIGITS = 100


def _bounded_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > _MAX_INT_DIGITS:
        raise _NotAccepted(f"an integer with {digits} digits (at most {_MAX_INT_DIGITS})")
    return int(text)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object as a dict, refusing a key that appears twice (``json`` would keep the last one silently)."""
    data: dict[str, Any] = {}
    for key, value in pairs:
        if key in data:
            raise _NotAccepted(f"the key {key!r} appears twice in one object")
        data[key] = value
    return data


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise _NotFinite(f"{text[:40]} is too large for a number")
    return value


def _located(error: Any) -> tuple[str, str]:
    """``(field path, message)`` of a schema error, looking inside a failed ``anyOf`` over node kinds.

    ``children`` items are ``anyOf`` phase/event/step; the error jsonschema reports for a
    broken event is then "{…the whole event…} is not valid under any of the given schemas".
    This reports the error inside the branch whose ``kind`` matches the item instead, or,
    for an unknown ``kind``, which kinds are allowed.
    """
    from jsonschema.exceptions import best_match

    while error.validator in ("anyOf", "oneOf") and error.context:
        branches: dict[Any, list[Any]] = {}
        for sub in error.context:
            branches.setdefault(sub.schema_path[0] if sub.schema_path else None, []).append(sub)
        kind_errors = [e for errors in branches.values() for e in errors
                       if e.validator in ("const", "enum") and list(e.relative_path) == ["kind"]]
        matching = [errors for errors in branches.values() if not any(e in kind_errors for e in errors)]
        if len(matching) == 1:
            error = best_match(matching[0])
            continue
        if kind_errors and not matching and isinstance(error.instance, dict):
            kinds = ", ".join(repr(v) for e in kind_errors for v in (e.validator_value if e.validator == "enum" else [e.validator_value]))
            where = "/".join(str(p) for p in [*error.absolute_path, "kind"])
            return where, f"{error.instance.get('kind')!r} is not one of {kinds}"
        break
    where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
    if error.validator in ("anyOf", "oneOf"):
        return where, f"not valid under any of the given schemas ({type(error.instance).__name__})"
    return where, error.message


def _broken_reference(loop: dict[str, Any], prefix: list[str]) -> tuple[str, str] | None:
    """What the schema cannot say: callback ids are unique, and every handler, finding and flag setter names one.

    Returns:
        ``(path, problem)`` of the first broken reference, or ``None``.
    """
    ids: set[str] = set()
    for i, cb in enumerate(loop["callbacks"]):
        if cb["id"] in ids:
            return "/".join([*prefix, "callbacks", str(i), "id"]), f"{cb['id']!r} is the id of an earlier callback"
        ids.add(cb["id"])
    stack = [([*prefix, "phases", str(i)], phase) for i, phase in enumerate(loop["phases"])]
    while stack:
        here, node = stack.pop(0)
        if node["kind"] == "phase":
            stack[:0] = [([*here, "children", str(i)], child) for i, child in enumerate(node["children"])]
        elif node["kind"] == "event":
            for i, handler in enumerate(node["handlers"]):
                if handler["callback"] not in ids:
                    return ("/".join([*here, "handlers", str(i), "callback"]),
                            f"{handler['callback']!r} is not the id of a callback in callbacks")
    refs = [(["findings", str(i), "callback"], f.get("callback")) for i, f in enumerate(loop.get("findings", ()))]
    refs += [(["flows", str(i), "set_by", str(j), "callback"], s["callback"])
             for i, flow in enumerate(loop.get("flows", ())) for j, s in enumerate(flow["set_by"])]
    for where, ref in refs:
        if ref is not None and ref not in ids:
            return "/".join([*prefix, *where]), f"{ref!r} is not the id of a callback in callbacks"
    return None


def _validator(document_schema: dict[str, Any]) -> Any:
    """A 2020-12 validator for ``document_schema`` that resolves ``$ref`` to the loop schema offline."""
    import jsonschema
    from referencing import Registry, Resource

    loop = schema()
    registry = Registry().with_resource(loop["$id"], Resource.from_contents(loop))
    return jsonschema.Draft202012Validator(document_schema, registry=registry)
