"""Markdown in and out: docstrings (Markdown) rendered as safe HTML, and model text made safe inside Markdown documents.

Uses markdown-it-py with raw HTML off and images off (a page must load nothing). Its HTML of each
docstring is remembered between runs (``loopdoc.rendering.cache.MarkdownMemo``): markdown-it-py is
imported only when a docstring is new.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from markupsafe import Markup

from .cache import MarkdownMemo, cache_dir, markdown_key

if TYPE_CHECKING:
    from markdown_it import MarkdownIt


def markdown_parser() -> MarkdownIt:
    """A fresh markdown-it-py parser as loopdoc renders docstrings: CommonMark plus tables and strikethrough,
    raw HTML off, images off (a page must make no request, and ``![x](http://…)`` would be one)."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"]).disable("image")

@functools.lru_cache(maxsize=1)
def _shared_markdown_parser() -> MarkdownIt:
    """One ``markdown_parser()`` for the filters, which never change it: building one costs ~1 ms, and a page has
    dozens of docstrings. (``markdown_parser()`` itself stays fresh: callers may add render rules.)"""
    return markdown_parser()

_MEMOS: dict[str, MarkdownMemo] = {}  # by cache folder: LOOPDOC_CACHE_DIR may change while a process runs (tests, hosts)

def markdown_memo() -> MarkdownMemo:
    """The memo of the cache folder in use now (``loopdoc.rendering.cache.cache_dir``), read on first use.

    ``environment()`` takes it once per render and binds it to the filters (finding the folder costs ~20 µs).
    """
    where = str(cache_dir())
    memo = _MEMOS.get(where)
    if memo is None:
        memo = _MEMOS[where] = MarkdownMemo(_markdown_key())
    return memo

@functools.lru_cache(maxsize=1)
def _markdown_key() -> str:
    return markdown_key(__file__)

def _remembered(kind: str, text: str, make: Callable[[], str], memo: MarkdownMemo | None) -> Markup:
    return Markup((memo or markdown_memo()).html(kind, text, make))

def save_markdown_memo() -> None:
    """Write what was rendered since the last call to the cache (``MarkdownMemo.save``); never raises."""
    for memo in _MEMOS.values():
        memo.save()

def markdown_to_html(text: str | None, memo: MarkdownMemo | None = None) -> Markup:
    """Render a docstring's Markdown (CommonMark plus tables and strikethrough) as safe HTML.

    ``memo``: where the HTML is remembered (``None``: ``markdown_memo()``).

    Raw HTML in ``text`` is escaped, never passed through; ``javascript:`` and
    similar links are dropped (markdown-it-py's ``validateLink``); images are
    not rendered (``![alt](url)`` shows as ``!`` and a link), so the page loads nothing.
    Python names written without backticks keep their underscores and stars
    (``__call__``, ``*args``, ``**kwargs``; see ``python_names_literal``).
    """
    if not text:
        return Markup("")
    return _remembered("block", text, lambda: _shared_markdown_parser().render(python_names_literal(text)), memo)

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

def markdown_inline(text: str | None, memo: MarkdownMemo | None = None) -> Markup:
    """Like ``markdown_to_html`` for one line of phrasing: inline Markdown only, no ``<p>``.

    For places where a block is not allowed (``<summary>``, ``<span>``). Newlines become spaces.
    """
    if not text:
        return Markup("")
    return _remembered("inline", text, lambda: _shared_markdown_parser().renderInline(" ".join(text.split("\n"))), memo)


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


# --- model text inside Markdown documents -------------------------------------------------------------------------
#
# A Markdown document loopdoc writes (``render -o x.md``, ``card``, ``diff -o x.md``, ``trace -o x.md``) may be
# rendered by any CommonMark renderer with raw HTML on, or by python-markdown (mkdocs' renderer, which is not
# CommonMark: ``\<`` is no escape there, fenced code is an extension, and its raw-HTML pass runs over the text
# before anything else). Model text must come out of all of them as text. The rules, each chosen to hold in both:
#
# - ``<``, ``>`` and ``&`` become the entities ``&lt;``, ``&gt;``, ``&amp;`` (both renderers decode entities in
#   text, and neither can start a tag, an autolink, a comment or an entity from them), except inside a code
#   span, where both show the characters literally anyway;
# - a code span counts only when it opens and closes on one line (CommonMark code spans may run over lines,
#   and python-markdown's raw-HTML pass reads a ``<div>`` at the start of such a continuation line as HTML);
#   a backtick that does not close on its own line is escaped (``\```), so no line can open a span another closes;
# - ``[`` and ``]`` are escaped, so model text makes no link, image or link reference (python-markdown keeps
#   ``javascript:`` links, which CommonMark renderers may drop); ``{`` becomes ``&#123;`` (python-markdown's
#   ``attr_list`` extension, common with mkdocs, reads ``{: onclick=…}`` as attributes);
# - inside a fenced code block, backticks also become ``&#96;``: without its fenced-code extension python-markdown
#   reads the block as paragraphs, where a backtick could pair with one outside the block.
#
# Entities inside code (a fenced or indented code block) are shown as written, e.g. ``&lt;`` for ``<``: the
# price of one text that is inert in every renderer. Emphasis, lists, headings and code keep their meaning.

_ENTITIES = {"<": "&lt;", ">": "&gt;", "&": "&amp;", "{": "&#123;"}
_ASCII_PUNCTUATION = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
_FENCE_LINE = re.compile(r"(\s*)(`{3,}|~{3,})(.*)")
_INFO_STRING = re.compile(r"[\w.+#-]*")
_QUOTE_MARKERS = re.compile(r"[ \t]{0,3}(?:>[ \t]?)+")
_UNDERSCORES = re.compile(r"_+")
_SPECIAL = re.compile(r"[\\`<>&\[\]{]")  # what _inline_safe changes


def markdown_code(text: object) -> str:
    """Model text as one Markdown code span: a fence of backticks longer than any run of backticks in it.

    The text is put on one line (line breaks become spaces); when it holds a backtick, the
    fence is padded with a space on each side (CommonMark removes one each side, so a
    leading or trailing backtick is kept). Code span contents are literal in CommonMark and
    python-markdown, so nothing else needs escaping.

    Args:
        text: any value (``str()`` is taken); ``None`` or empty gives ``""`` (a lone fence
            would be an unmatched backtick run that could pair with a later one).

    Returns:
        ``"`name`"``, ``"`` a`b ``"``, …
    """
    line = " ".join(str("" if text is None else text).splitlines())
    if not line:
        return ""
    longest = max((len(run) for run in re.findall(r"`+", line)), default=0)
    fence = "`" * (longest + 1)
    return f"{fence}{line}{fence}" if longest == 0 else f"{fence} {line} {fence}"


def markdown_text(text: object) -> str:
    """Model text shown literally in Markdown (a phase name, a title, a version): no formatting, link or HTML.

    ``\\``, backticks, ``*``, ``[`` and ``]`` are backslash-escaped, ``_`` too unless it sits inside a word
    (``custom_callbacks`` stays as it is: an underscore between letters starts no emphasis in either
    renderer); ``<``, ``>``, ``&`` and ``{`` become entities (see the rules above). Line breaks become spaces.

    Args:
        text: any value (``str()`` is taken); ``None`` gives ``""``.

    Returns:
        One line of Markdown that renders as ``text``.
    """
    line = " ".join(str("" if text is None else text).splitlines())
    out = []
    for ch in line:
        if ch in "\\`*[]":
            out.append("\\" + ch)
        else:
            out.append(_ENTITIES.get(ch, ch))
    return _escape_underscores("".join(out))


_RAW_HTML_ENTITIES = {ch: f"&#{ord(ch)};" for ch in "\\`*_[]{}|~!#"} | {"<": "&lt;", ">": "&gt;", "&": "&amp;"}


def markdown_raw_text(text: object) -> str:
    """Model text inside a raw HTML block of a Markdown document (``<details>``), shown literally by every renderer.

    python-markdown passes a ``<details>`` block through as raw HTML, unparsed, while CommonMark renderers
    parse Markdown again after its first blank line; backslash escapes and code spans would show (or run)
    in one of them. Character references are decoded by both and start no syntax, so every character
    with a meaning in Markdown or HTML (``\\ ` * _ [ ] { } | ~ ! #``, ``<``, ``>``, ``&``) becomes one.
    Line breaks become spaces.

    Args:
        text: any value (``str()`` is taken); ``None`` gives ``""``.

    Returns:
        One line of inert text, e.g. ``"after&#95;fit"`` (also inside a table cell: ``|`` is ``&#124;``).
    """
    line = " ".join(str("" if text is None else text).splitlines())
    return "".join(_RAW_HTML_ENTITIES.get(ch, ch) for ch in line)


def markdown_raw_code(text: object) -> str:
    """Model text as inline code inside a raw HTML block (see ``markdown_raw_text``): ``<code>…</code>``.

    Args:
        text: any value; ``None`` or empty gives ``""``.

    Returns:
        ``"<code>after&#95;fit</code>"``, the same element in CommonMark and python-markdown.
    """
    inner = markdown_raw_text(text)
    return f"<code>{inner}</code>" if inner else ""


def _escape_underscores(text: str) -> str:
    def escape(m: re.Match[str]) -> str:
        before = text[m.start() - 1] if m.start() else ""
        after = text[m.end()] if m.end() < len(text) else ""
        if before.isalnum() and after.isalnum():
            return m.group()
        return m.group().replace("_", "\\_")

    return _UNDERSCORES.sub(escape, text)


def markdown_inline_safe(text: object) -> str:
    """Markdown-bearing model text (a description, a condition, a note) for one line of a Markdown document.

    Line breaks become spaces; then as ``markdown_safe`` with every ``>`` an entity (on one
    line a ``>`` is never a quote marker).

    Args:
        text: any value; ``None`` gives ``""``.

    Returns:
        One line, inert in every renderer (see the rules above).
    """
    return markdown_safe(" ".join(str("" if text is None else text).splitlines()), block=False)


def markdown_safe(text: object, *, block: bool = True) -> str:
    """Model text that is Markdown (a docstring, a note) made inert inside a Markdown document, its formatting kept.

    Applies the rules above line by line, so every line is self-contained: no code span,
    tag or link can reach from one line, or from one piece of model text, into another.
    Emphasis, lists, headings, quotes, code spans and fenced code keep their meaning.

    Args:
        text: the Markdown; ``None`` gives ``""``.
        block: keep the quote markers (``>``) that start a line; ``False``: escape every ``>``.

    Returns:
        The same number of lines, each inert (see the rules above).
    """
    lines = str("" if text is None else text).split("\n")
    out: list[str] = []
    fence: tuple[str, int] | None = None  # (character, length) of the open fenced code block
    for line in lines:
        m = _FENCE_LINE.fullmatch(line) if block else None
        if fence is not None:
            if m and m.group(2)[0] == fence[0] and len(m.group(2)) >= fence[1] and not m.group(3).strip():
                fence = None
                out.append(m.group(1) + m.group(2))
            else:
                out.append("".join("&#96;" if ch == "`" else _ENTITIES.get(ch, ch) for ch in line))
            continue
        if m and not (m.group(2)[0] == "`" and "`" in m.group(3)):
            fence = (m.group(2)[0], len(m.group(2)))
            info = m.group(3).strip()
            out.append(m.group(1) + m.group(2) + (info if _INFO_STRING.fullmatch(info) else ""))
            continue
        lead = ""
        if block:
            q = _QUOTE_MARKERS.match(line)
            if q:
                lead, line = q.group(), line[q.end():]
        out.append(lead + _inline_safe(line))
    if out and out[-1].endswith("\\") and (len(out[-1]) - len(out[-1].rstrip("\\"))) % 2:
        out[-1] += "\\"  # a last backslash would escape what the template puts after the text
    return "\n".join(out)


def _inline_safe(line: str) -> str:
    """One line of Markdown with the rules above applied: code spans that close on it kept, all else escaped."""
    if not _SPECIAL.search(line):
        return line  # nothing to change: most lines of most docstrings
    out: list[str] = []
    i, n = 0, len(line)
    while i < n:
        ch = line[i]
        if ch == "\\" and i + 1 < n and line[i + 1] in _ASCII_PUNCTUATION:
            nxt = line[i + 1]
            out.append(_ENTITIES[nxt] if nxt in _ENTITIES else ("\\" + nxt))
            i += 2
            continue
        if ch == "`":
            j = i
            while j < n and line[j] == "`":
                j += 1
            run = j - i
            close = _closing_run(line, j, run)
            if close is None:
                out.append("\\`" * run)
                i = j
            else:
                out.append(line[i:close + run])
                i = close + run
            continue
        if ch in "[]":
            out.append("\\" + ch)
        else:
            out.append(_ENTITIES.get(ch, ch))
        i += 1
    return "".join(out)


def _closing_run(line: str, start: int, length: int) -> int | None:
    """Where the next run of exactly ``length`` backticks at or after ``start`` begins (CommonMark's code span end)."""
    i, n = start, len(line)
    while i < n:
        if line[i] != "`":
            i += 1
            continue
        j = i
        while j < n and line[j] == "`":
            j += 1
        if j - i == length:
            return i
        i = j
    return None
