"""HTML fragments and Markdown sections of a ``Loop``, for documents that are not loopdoc's own.

A page with its own theme (the mkdocs plugin ``loopdoc.mkdocs``, the Sphinx extension
``loopdoc.sphinx``, a Jupyter notebook) gets an HTML fragment (``render_fragment``), cut at
its headings (``fragment_parts``) when the host makes its own headings; a model card gets a
Markdown section (``render_markdown_section``). Built on ``loopdoc.rendering.environment``.
"""

from __future__ import annotations

import html
import os
import re
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from ..errors import UsageError
from ..model.loop import Loop
from .documents import document_context, render
from .environment import environment, template_errors
from .links import check_source_url
from .markdown import markdown_parser, markdown_text, python_names_literal
from .text import printable_text, printable_value

FRAGMENT_TEMPLATE = "fragment.html.jinja"
_ANCHOR_PREFIX = re.compile(r"[A-Za-z0-9_-]*")
_FRAGMENT_HEADING = re.compile(r'^<h([1-6]) id="([^"]*)" class="loopdoc-heading">(.*)</h\1>$', re.MULTILINE)


@dataclass(frozen=True)
class FragmentPart:
    """One piece of an HTML fragment (``fragment_parts``): a heading, or the HTML between two headings.

    Attributes:
        html: the heading's own ``<hN …>`` line, or a self-contained block of HTML.
        level: the heading's level (1–6), or ``None`` for HTML.
        anchor: the heading's ``id`` (prefix included), or ``None``.
        title: the heading's text, unescaped (plain text, no markup), or ``None``.
    """

    html: str
    level: int | None = None
    anchor: str | None = None
    title: str | None = None


def render_fragment(loop: Loop, *, verbose: bool = False, heading_level: int = 2, title: str | None = None,
                    id_prefix: str = "", show_callbacks: bool = True, source_url: str | None = None,
                    template_dir: str | os.PathLike[str] | None = None, max_heading_depth: int | None = None) -> str:
    """Render ``loop`` as an HTML fragment for a page with its own theme (a docs site, a notebook).

    Not a document: no ``<html>``, CSS or script, only headings, paragraphs, lists, tables
    (each in a ``<div class="loopdoc-body loopdoc-table">``), admonitions (``<div class="admonition
    note">``) and, for phases nested deeper than the headings may go, ``<details open
    class="loopdoc-phase">`` blocks, all inside one ``<div class="loopdoc">``.
    Model text is escaped and docstrings are Markdown rendered without raw HTML, so the
    fragment is safe to embed. Template: ``fragment.html.jinja``.

    Args:
        loop: the model.
        verbose: add the steps, each handler's docstring and the callbacks' docstrings.
        heading_level: level (1–6) of the first headings: ``title`` when given, else the
            top-level phases and "Callbacks"; nested phases go one level deeper each.
        title: a heading above everything, or ``None`` for none.
        id_prefix: put before every ``id`` and ``#`` link of the fragment, so that several
            loops fit on one page (letters, digits, ``-`` and ``_`` only).
        show_callbacks: add the "Callbacks" table (and link callback names to it).
        source_url: see ``render``.
        template_dir: see ``render``.
        max_heading_depth: how many heading levels the phases use, the top-level phases being
            the first (1–6); a phase deeper than that, or one that would be below h6, is a
            ``<details open class="loopdoc-phase">`` block (its ``<summary>`` the phase name)
            nested in its parent's. ``None``: headings down to h6.

    Returns:
        The fragment, ending in a newline; the same input gives the same bytes.

    Raises:
        UsageError: ``heading_level`` or ``max_heading_depth`` outside 1–6, a bad ``id_prefix``,
            ``source_url`` or ``template_dir``.
        TemplateError: a broken user template.
    """
    body = _fragment_text(loop, verbose=verbose, heading_level=heading_level, title=title, id_prefix=id_prefix,
                          show_callbacks=show_callbacks, source_url=source_url, template_dir=template_dir,
                          max_heading_depth=max_heading_depth)
    return f'<div class="loopdoc">\n{body}</div>\n'


def fragment_parts(loop: Loop, **options: Any) -> list[FragmentPart]:
    """``render_fragment``'s content cut at its headings, for a host that makes its own headings.

    The mkdocs plugin turns each heading into a Markdown heading element (so it is in the
    page's table of contents) and each HTML part into raw HTML; the Sphinx extension makes
    sections and ``raw`` nodes. Without the outer ``<div class="loopdoc">``.

    Args:
        loop: the model.
        **options: the keyword arguments of ``render_fragment``.

    Returns:
        Headings and HTML parts in document order; no empty HTML part.

    Raises:
        UsageError, TemplateError: as ``render_fragment``.
    """
    text = _fragment_text(loop, **options)
    parts: list[FragmentPart] = []

    def add_html(chunk: str) -> None:
        if chunk.strip():
            parts.append(FragmentPart(chunk.strip("\n") + "\n"))

    start = 0
    for m in _FRAGMENT_HEADING.finditer(text):
        add_html(text[start:m.start()])
        parts.append(FragmentPart(m.group(0) + "\n", int(m.group(1)), html.unescape(m.group(2)), html.unescape(m.group(3))))
        start = m.end()
    add_html(text[start:])
    return parts


def _fragment_text(loop: Loop, *, verbose: bool = False, heading_level: int = 2, title: str | None = None,
                   id_prefix: str = "", show_callbacks: bool = True, source_url: str | None = None,
                   template_dir: str | os.PathLike[str] | None = None, max_heading_depth: int | None = None) -> str:
    if not isinstance(heading_level, int) or isinstance(heading_level, bool) or not 1 <= heading_level <= 6:
        raise UsageError(f"heading level {heading_level!r}: must be a whole number from 1 to 6")
    if max_heading_depth is not None and (not isinstance(max_heading_depth, int) or isinstance(max_heading_depth, bool)
                                          or not 1 <= max_heading_depth <= 6):
        raise UsageError(f"max heading depth {max_heading_depth!r}: must be a whole number from 1 to 6")
    if not _ANCHOR_PREFIX.fullmatch(id_prefix):
        raise UsageError(f"id prefix {id_prefix!r}: use only letters, digits, '-' and '_'")
    if source_url is not None:
        check_source_url(source_url)
    loop = printable_value(loop)  # control characters and the like become U+FFFD, as in ``render``
    title = None if title is None else printable_text(title)
    with template_errors():
        env = environment("html", template_dir)
        env.filters["markdown_fragment"] = markdown_fragment
        text = env.get_template(FRAGMENT_TEMPLATE).render(
            **document_context(loop, verbose=verbose, source_url=source_url),
            level=heading_level + (1 if title else 0),
            depth=6 if max_heading_depth is None else max_heading_depth,
            title=title,
            show_callbacks=show_callbacks,
            anchor=lambda name: id_prefix + name,
        )
    return text.strip("\n") + "\n"


def markdown_fragment(text: str | None) -> Markup:
    """Like ``loopdoc.rendering.markdown.markdown_to_html``, for a docstring inside a page: its headings become bold paragraphs.

    A docstring's ``# Heading`` must not become a heading of the page it is embedded in
    (nor of its table of contents). Raw HTML is escaped, never passed through. Python names
    written without backticks (``__init__``, ``*args``) stay as written, as on loopdoc's own page
    (``python_names_literal``).

    Args:
        text: Markdown, or ``None``.

    Returns:
        Safe HTML (empty for no text).
    """
    if not text:
        return Markup("")
    md = markdown_parser()
    md.add_render_rule("heading_open", lambda *args: "<p><strong>")
    md.add_render_rule("heading_close", lambda *args: "</strong></p>\n")
    return Markup(md.render(python_names_literal(text)))


def render_markdown_section(loop: Loop, *, heading_level: int = 2, title: str = "Training loop",
                            source_url: str | None = None, template_dir: str | os.PathLike[str] | None = None,
                            compact: bool = False, matrix_image: str | None = None) -> str:
    """Render ``loop`` as a Markdown section for another document (a model card): one heading, then the content.

    The content is the Markdown format (``render(loop, "md")``) without its page title, its
    headings moved so that the top-level phases sit one level below ``title``; or, ``compact``, the
    card template (``card.md.jinja``: the callbacks in run order, the matrix, the loop inside ``<details>``).

    Args:
        loop: the model.
        heading_level: level (1–6) of the ``title`` heading.
        title: the section's heading text.
        source_url: see ``render``.
        template_dir: see ``render``.
        compact: render ``card.md.jinja`` instead of ``loop.md.jinja``.
        matrix_image: see ``render``.

    Returns:
        ``"## Training loop\\n\\n…"``, ending in one newline; the same input gives the same bytes.

    Raises:
        UsageError: ``heading_level`` outside 1–6, a bad ``source_url`` or ``template_dir``.
        TemplateError: a broken user template.
    """
    if not isinstance(heading_level, int) or not 1 <= heading_level <= 6:
        raise UsageError(f"heading level {heading_level!r}: must be a whole number from 1 to 6")
    document = render(loop, "md", title=title, source_url=source_url, template_dir=template_dir, matrix_image=matrix_image,
                      template="card.md.jinja" if compact else None)
    lines = document.split("\n")
    tokens = markdown_parser().parse(document)
    if tokens and tokens[0].type == "heading_open" and tokens[0].tag == "h1" and tokens[0].map:
        heading = "#" * heading_level + " " + tokens[1].content  # the title, as the template escaped it
        lines = lines[tokens[0].map[1]:]
    else:  # a user template without a title heading
        heading = "#" * heading_level + " " + markdown_text(title)
    body = shift_markdown_headings("\n".join(lines).strip("\n"), heading_level - 1)
    return f"{heading}\n\n{body}\n"


_ATX_MARKER = re.compile(r"#{1,6}(?=[ \t]|$)")


def shift_markdown_headings(text: str, delta: int) -> str:
    """Move every ATX heading (``## x``) of a Markdown text ``delta`` levels deeper, at most to level 6.

    Headings are found by parsing (CommonMark), so a ``#`` line inside a code block is left
    alone; headings inside lists and quotes move too. Setext headings (underlined) are kept.

    Args:
        text: Markdown, ``\\n`` line ends.
        delta: levels to add (0 or more).

    Returns:
        The text with only the heading markers changed.
    """
    if delta <= 0:
        return text
    lines = text.split("\n")
    for token in markdown_parser().parse(text):
        if token.type != "heading_open" or not token.markup.startswith("#") or token.map is None:
            continue
        row = token.map[0]
        line = lines[row]
        # The marker is the first run of '#' that CommonMark accepts, after any indentation,
        # quote or list markers; replace just that run.
        for m in _ATX_MARKER.finditer(line):
            if len(m.group()) == len(token.markup) and (m.start() == 0 or line[m.start() - 1] in " \t>"):
                level = min(len(token.markup) + delta, 6)
                lines[row] = line[: m.start()] + "#" * level + line[m.end():]
                break
    return "\n".join(lines)
