"""Markdown in and out: docstrings (Markdown) rendered as safe HTML, and model text made safe inside Markdown documents.

Uses markdown-it-py with raw HTML off and images off (a page must load nothing).
"""

from __future__ import annotations

import functools
import re

from markdown_it import MarkdownIt
from markupsafe import Markup


def markdown_parser() -> MarkdownIt:
    # Images are off: a page must make no request, and ``![x](http://…)`` would be one.
    return MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"]).disable("image")

@functools.lru_cache(maxsize=1)
def _shared_markdown_parser() -> MarkdownIt:
    """One ``markdown_parser()`` for the filters, which never change it: building one costs ~1 ms, and a page has
    dozens of docstrings. (``markdown_parser()`` itself stays fresh: callers may add render rules.)"""
    return markdown_parser()

def markdown_to_html(text: str | None) -> Markup:
    """Render a docstring's Markdown (CommonMark plus tables and strikethrough) as safe HTML.

    Raw HTML in ``text`` is escaped, never passed through; ``javascript:`` and
    similar links are dropped (markdown-it-py's ``validateLink``); images are
    not rendered (``![alt](url)`` shows as ``!`` and a link), so the page loads nothing.
    Python names written without backticks keep their underscores and stars
    (``__call__``, ``*args``, ``**kwargs``; see ``python_names_literal``).
    """
    if not text:
        return Markup("")
    return Markup(_shared_markdown_parser().render(python_names_literal(text)))

_CODE_SPAN = re.compile(r"(`+)(?:.+?)\1")

_PY_NAME = re.compile(r"(?<![\\\w`*])(__\w+__|\*\*?[A-Za-z_]\w*+(?!\*))")

def python_names_literal(text: str) -> str:
    """Backslash-escape dunder names and ``*args``/``**kwargs`` outside code, so Markdown shows them as written.

    Docstrings are Markdown by fastai's convention, but most also mention ``__init__`` or
    ``*args`` without backticks, which Markdown would turn into bold or italics. Code spans
    and fenced code blocks are left as they are.

    Args:
        text: a docstring.

    Returns:
        The same text with ``_`` and ``*`` of such names escaped (``\\_\\_call\\_\\_``).
    """
    out, fenced = [], False
    for line in text.split("\n"):
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        if fenced or line.startswith("    "):
            out.append(line)
            continue
        parts, last = [], 0
        for m in _CODE_SPAN.finditer(line):
            parts.append(_escape_names(line[last:m.start()]))
            parts.append(m.group(0))
            last = m.end()
        parts.append(_escape_names(line[last:]))
        out.append("".join(parts))
    return "\n".join(out)

def _escape_names(text: str) -> str:
    return _PY_NAME.sub(lambda m: m.group(0).replace("_", "\\_").replace("*", "\\*"), text)

def markdown_inline(text: str | None) -> Markup:
    """Like ``markdown_to_html`` for one line of phrasing: inline Markdown only, no ``<p>``.

    For places where a block is not allowed (``<summary>``, ``<span>``). Newlines become spaces.
    """
    if not text:
        return Markup("")
    return Markup(_shared_markdown_parser().renderInline(" ".join(text.split("\n"))))


# What makes a line start a block rather than continue a paragraph: a code fence, heading,
# quote, list item, HTML block or thematic break.

# What makes a line start a block rather than continue a paragraph: a code fence, heading,
# quote, list item, HTML block or thematic break.
_BLOCK_START = re.compile(r"`{3,}|~{3,}|#{1,6}(?:\s|$)|>|<|[-+*](?:\s|$)|(\d{1,9})[.)](?:\s|$)|[-*_](?:\s*[-*_]){2,}\s*$")

def markdown_paragraph(text: str | None) -> str:
    """Model text as one line of Markdown that stays a paragraph wherever it is put.

    Newlines become spaces and the line is stripped; if it would open a block (a code fence,
    heading, quote, list item, HTML block or thematic break) its first marker is backslash-escaped,
    so a description such as ``"```"`` cannot swallow the rest of a Markdown document.
    """
    line = " ".join((text or "").splitlines()).strip()
    m = _BLOCK_START.match(line)
    if m is None:
        return line
    cut = m.end(1) if m.group(1) else 0
    return line[:cut] + "\\" + line[cut:]

def tidy_markdown(text: str) -> str:
    """Strip trailing whitespace from every line and squeeze runs of blank lines to one.

    Used as ``{% filter tidy_markdown %}`` around the Markdown template, so model text
    (docstrings with trailing spaces or many blank lines) cannot break those rules.
    """
    out: list[str] = []
    for line in text.split("\n"):
        line = line.rstrip()
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out)

def code_fence(text: str) -> str:
    """A Markdown code fence of backticks longer than any run of backticks in ``text`` (at least three)."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)
