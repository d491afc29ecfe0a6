"""Values as a diff shows them: changed values, first lines of docstrings, line diffs of texts."""

from __future__ import annotations

import difflib
from typing import Any


def show_value(value: Any) -> str:
    """A changed value as readers see it: ``none``, ``True``/``False``, a list joined by ``, `` (``none`` when empty), else ``str``.

    Args:
        value: a ``Change.old`` or ``Change.new``.

    Returns:
        One string (possibly several lines for a docstring).
    """
    if value is None:
        return "none"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value) or "none"
    return str(value)


def first_line(text: Any, limit: int = 60) -> str:
    """The first line of ``show_value(text)``, cut to ``limit`` characters with ``…`` (and ``…`` when more lines follow).

    Args:
        text: a value, typically a docstring.
        limit: the longest result.

    Returns:
        One line.
    """
    lines = show_value(text).strip().splitlines() or [""]
    line = lines[0].strip()
    more = len(lines) > 1
    if len(line) > limit:
        line, more = line[: limit - 1].rstrip(), True
    return line + ("…" if more else "")


def text_diff(old: Any, new: Any) -> list[str]:
    """A line diff of two texts (docstrings), every line kept: ``"- "`` old only, ``"+ "`` new only, ``"  "`` both.

    Args:
        old: the old text, or ``None``.
        new: the new text, or ``None``.

    Returns:
        The lines, without newlines; deterministic.
    """
    a = "" if old is None else str(old)
    b = "" if new is None else str(new)
    return [line for line in difflib.ndiff(a.splitlines(), b.splitlines()) if not line.startswith("? ")]
