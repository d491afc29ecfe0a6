"""Model text made printable: line breaks normalised and every character that is not text replaced by U+FFFD.

Used on all model text before the HTML, Markdown and text templates see it (the JSON
format keeps the model's text exactly).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..model.loop import Loop
    from ..model.trace import Trace

# Characters that are not text: C0 controls but tab and newline, DEL, C1 controls, lone
# surrogates and Unicode noncharacters. HTML5 makes each a parse error, a terminal may act
# on them (ESC starts an escape sequence), and UTF-8 cannot encode a surrogate.
_NOT_TEXT = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef"
                       + "".join(f"{chr(plane << 16 | 0xFFFE)}{chr(plane << 16 | 0xFFFF)}" for plane in range(17)) + "]")

def printable_text(text: str) -> str:
    """``text`` with line breaks as ``\\n`` and every character that is not text (see ``_NOT_TEXT``) as U+FFFD.

    ``\\r\\n``, a lone ``\\r`` and the Unicode line and paragraph separators (U+2028,
    U+2029, which ``str.splitlines`` and so Jinja's ``indent`` break lines at, but Markdown
    does not) become ``\\n``. Used on all model text before the HTML, Markdown and text
    templates see it; the JSON format keeps the model's text exactly.

    Args:
        text: any model text (a docstring, a name, a note).

    Returns:
        The text, unchanged when it holds none of those characters.
    """
    if "\r" in text or "\u2028" in text or "\u2029" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n").replace("\u2029", "\n")
    return _NOT_TEXT.sub("\ufffd", text)

def printable_model(model: Loop | Trace) -> Loop | Trace:
    """``model`` with every string passed through ``printable_text``; ``model`` itself when none changes.

    Args:
        model: a ``Loop`` or a ``Trace`` (both have ``to_dict``/``from_dict``).

    Returns:
        The same kind of object.
    """
    changed = False

    def clean(value: object) -> object:
        nonlocal changed
        if isinstance(value, str):
            new = printable_text(value)
            changed = changed or new != value
            return new
        if isinstance(value, dict):
            return {clean(k): clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    data = clean(model.to_dict())
    return type(model).from_dict(data) if changed else model  # type: ignore[arg-type]
