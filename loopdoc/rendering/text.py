"""Model text made printable: line breaks normalised and every character that is not text replaced by U+FFFD.

The one place where model text is made inert for display: ``printable_value`` runs on every
loop, trace and diff before the HTML, Markdown and text templates see it, and ``inert_json``
on every JSON document (which keeps the model's text exactly, writing the dangerous
characters as ``\\uXXXX`` escapes).
"""

from __future__ import annotations

import dataclasses
import re
from typing import TypeVar

T = TypeVar("T")

# The explicit bidirectional formatting characters: embeddings and overrides (U+202A–U+202E)
# and isolates (U+2066–U+2069). They reorder how the text around them is displayed, so a name
# or docstring could show one thing and be another ("Trojan Source", CVE-2021-42574; the
# characters are listed in Unicode's UAX #9, section 2).
BIDI_CONTROLS = "\u202a-\u202e\u2066-\u2069"

# Characters that are not text: C0 controls but tab and newline, DEL, C1 controls, lone
# surrogates, Unicode noncharacters and the bidi controls. HTML5 makes the first kinds a
# parse error, a terminal may act on them (ESC starts an escape sequence, 0x9B is CSI),
# UTF-8 cannot encode a surrogate, and a bidi control changes how its neighbours read.
_NOT_TEXT = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef" + BIDI_CONTROLS
                       + "".join(f"{chr(plane << 16 | 0xFFFE)}{chr(plane << 16 | 0xFFFF)}" for plane in range(17)) + "]")

# What ``json.dumps(..., ensure_ascii=False)`` leaves raw although a terminal or an editor acts on
# it: DEL, the C1 controls, the bidi controls and the JavaScript line terminators U+2028/U+2029.
_RAW_IN_JSON = re.compile("[\x7f-\x9f\u2028\u2029" + BIDI_CONTROLS + "]")

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

def printable_value(value: T) -> T:
    """``value`` with every string in it passed through ``printable_text``; the same object where nothing changes.

    Walks frozen dataclasses (a ``Loop``, a ``Trace``, a ``LoopDiff`` and everything in them),
    tuples, lists and dicts (keys too); other values are kept. So every document a template
    renders is cleaned by this one function, whatever its kind.

    Args:
        value: a model object, or any mix of the containers above.

    Returns:
        An equal-shaped value of the same types.
    """
    if isinstance(value, str):
        return printable_text(value)  # type: ignore[return-value]
    if isinstance(value, (tuple, list)):
        items = [printable_value(v) for v in value]
        if all(a is b for a, b in zip(items, value, strict=True)):
            return value
        return type(value)(items)  # type: ignore[return-value]
    if isinstance(value, dict):
        pairs = [(printable_value(k), printable_value(v)) for k, v in value.items()]
        if all(k is k0 and v is v0 for (k, v), (k0, v0) in zip(pairs, value.items(), strict=True)):
            return value
        return type(value)(pairs)  # type: ignore[return-value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {}
        for f in dataclasses.fields(value):
            if f.init:
                old = getattr(value, f.name)
                new = printable_value(old)
                if new is not old:
                    changes[f.name] = new
        return dataclasses.replace(value, **changes) if changes else value
    return value


def inert_json(text: str) -> str:
    """A JSON document with DEL, C1 controls, bidi controls and U+2028/U+2029 written as ``\\uXXXX`` escapes.

    ``json.dumps`` already escapes the C0 controls; these others it writes as they are, and
    a terminal (CSI, U+009B) or an editor (bidi overrides) would act on them. Outside strings
    JSON holds only ASCII, so every such character is inside a string, and the escape reads
    back as the same character: the document still round-trips exactly.

    Args:
        text: JSON text.

    Returns:
        The same JSON value, as text with none of those characters.
    """
    return _RAW_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
