"""Render a loop model, a trace or a diff as a whole document: HTML, Markdown, plain text or JSON.

Each render builds a fresh Jinja environment (``loopdoc.rendering.environment``) and reads
only the model (and, for its wording, the framework adapter's ``Wording``, which imports no
framework). An error raised by a template (a user's ``--template-dir`` one, typically)
becomes a one-line ``TemplateError`` naming the template's file and line.
"""

from __future__ import annotations

import html
import os
import sys
from typing import TYPE_CHECKING, Any

from ..adapters.registry import wording
from ..adapters.words import Wording
from ..errors import UsageError
from ..model.loop import Loop
from .anchors import event_aliases, event_places, handled_events
from .charts import code_segments, quiet_run, trace_chart, what_it_does
from .environment import environment, template_errors, trace_lookup
from .links import check_source_url, source_link
from .markdown import code_fence, save_markdown_memo
from .matrix import MARKS, loop_matrix, svg_layout
from .output import FORMATS
from .text import inert_json, printable_text, printable_value

if TYPE_CHECKING:  # imported where needed: rendering a saved model need not pay for them
    from ..model.diff import LoopDiff
    from ..model.trace import Trace

TEMPLATES = {"html": "loop.html.jinja", "md": "loop.md.jinja", "txt": "loop.txt.jinja", "svg": "matrix.svg.jinja"}
def render(loop: Loop | Trace, fmt: str, *, verbose: bool = False, title: str | None = None,
           template_dir: str | os.PathLike[str] | None = None, source_url: str | None = None,
           show_differences: bool = False, matrix_image: str | None = None, template: str | None = None,
           color: bool = False) -> str:
    """Render a loop model, or a trace (its static loop annotated with what ran), as text in ``fmt``.

    Args:
        loop: the model, or a ``loopdoc.trace.Trace``.
        fmt: one of ``FORMATS``.
        verbose: for ``txt``, add each handler's docstring and the steps.
        title: page title; default ``"Training loop of <loaded_from>"``.
        template_dir: a folder searched before the built-in templates.
        source_url: a URL template such as
            ``"https://github.com/org/repo/blob/main/{path}#L{line}"`` that turns
            source locations into links in ``html`` and ``md``; see ``source_link``
            for which locations are linked. ``None``: no links.
        show_differences: for a trace, list where the run differed from the static model.
        matrix_image: for ``md``, the URL (relative to the document) of the matrix as an SVG file
            (``render(loop, "svg")``) to show instead of the inline table; ``None``: the table.
        template: the template to render instead of the format's own (``TEMPLATES``), e.g. ``"card.md.jinja"``.
        color: for ``txt``, colour with ANSI escapes (``SHOW_COLORS``: phases by stage, event
            names, callbacks, filters, cancel branches); ignored by the other formats.

    Returns:
        The whole document, ending in a newline; the same input gives the same bytes. ``svg`` is
        the matrix alone (``matrix.svg.jinja``), a standalone, inert SVG image.

    Raises:
        UsageError: unknown ``fmt``, a ``template_dir`` that is not a folder, or a
            bad ``source_url`` (see ``check_source_url``).
        TemplateError: a broken template (a user's, typically), naming its file and line.
    """
    if source_url is not None:
        check_source_url(source_url)
    if fmt == "json":
        return inert_json(loop.to_json())
    if fmt not in TEMPLATES:
        raise UsageError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    loop, title = printable_value(loop), None if title is None else printable_text(title)
    trace = loop if _is_trace(loop) else None
    if trace is not None:
        loop = trace.loop
        title = title or f"Trace of {trace.call} on {loop.learner.loaded_from}"
    title = title or f"Training loop of {loop.learner.loaded_from}"
    context = document_context(loop, trace, verbose=verbose, source_url=source_url)
    if fmt == "svg":
        context["layout"] = svg_layout(context["matrix"], title)
    with template_errors():
        env = environment(fmt, template_dir)
        text = env.get_template(template or TEMPLATES[fmt]).render(**context, show_differences=show_differences, title=title,
                                                                   matrix_image=matrix_image,
                                                                   c=SHOW_COLORS if color and fmt == "txt" else _NO_COLORS)
    save_markdown_memo()
    return text.rstrip("\n") + "\n"


def document_context(loop: Loop, trace: Trace | None = None, *, verbose: bool = False,
                     source_url: str | None = None) -> dict[str, Any]:
    """The variables every loop template (page, Markdown, text, fragment) gets, computed from the model alone.

    Args:
        loop: the model (already passed through ``printable_value``).
        trace: a trace of it, or ``None``.
        verbose: add docstrings and steps where the format has a short form.
        source_url: see ``render``.

    Returns:
        ``loop``, ``trace``, ``trace_at``, ``top_keys``, ``callbacks`` (by id), ``handled``, ``places``,
        ``aliases``, ``filters`` (the flags that filter events, in loop order), ``flag_names`` (the callbacks'
        flags, in the framework's order), ``words`` (the framework's ``Wording``), ``verbose``,
        ``source_url``, ``source_link``, ``matrix`` (``loopdoc.rendering.matrix.loop_matrix``), ``marks``
        (its glyphs and legend, ``MARKS``), ``chart`` (``loopdoc.rendering.charts.trace_chart``) and
        ``quiet_run`` (``charts.quiet_run``, for folding events without callbacks) and ``what_it_does``
        (``charts.what_it_does``, a docstring's first sentence) and ``code_segments`` (``charts.code_segments``).
    """
    words = wording(loop.framework.name)
    return dict(
        trace=trace,
        trace_at=trace_lookup(trace),
        top_keys=loop.top_keys(),
        loop=loop,
        callbacks={cb.id: cb for cb in loop.callbacks},
        handled=handled_events(loop),
        places=event_places(loop),
        aliases=event_aliases(loop),
        filters=list(dict.fromkeys(ev.filter for _, ev in loop.iter_events() if ev.filter)),
        flag_names=flag_names(loop, words),
        words=words,
        verbose=verbose,
        source_url=source_url,
        source_link=lambda source: source_link(source, source_url, loop),
        matrix=loop_matrix(loop),
        marks=MARKS,
        chart=trace_chart(trace),
        quiet_run=quiet_run,
        what_it_does=what_it_does,
        code_segments=code_segments,
    )


def flag_names(loop: Loop, words: Wording) -> list[str]:
    """The flags the loop's callbacks carry: the framework's (``words.flags``) first, in its order, then any others.

    Args:
        loop: the model.
        words: its framework's wording.

    Returns:
        Flag names, each once.
    """
    seen = list(dict.fromkeys(name for cb in loop.callbacks for name in cb.flags))
    return [f for f in words.flags if f in seen] + [f for f in seen if f not in words.flags]


def _is_trace(obj: object) -> bool:
    """``isinstance(obj, Trace)`` without importing ``loopdoc.model.trace`` (no ``Trace`` exists before it is)."""
    module = sys.modules.get("loopdoc.model.trace")
    return module is not None and isinstance(obj, module.Trace)


SHOW_COLORS = {"title": "\x1b[1m", "phase": "\x1b[1;34m", "train": "\x1b[1;32m", "validate": "\x1b[1;33m",
               "test": "\x1b[1;35m", "predict": "\x1b[1;35m", "event": "\x1b[36m", "callback": "\x1b[1m",
               "filter": "\x1b[33m", "cancel": "\x1b[31m", "note": "\x1b[1;33m", "dim": "\x1b[2m", "reset": "\x1b[0m"}
"""ANSI codes of ``loop.txt.jinja`` by role when ``render(..., color=True)``: phases bold, by stage (training
green, validation yellow, others blue), event names cyan, callbacks bold, filters in their stage's colour,
cancel branches red, annotations dim."""
_NO_COLORS = dict.fromkeys(SHOW_COLORS, "")

DIFF_TEMPLATES = {"html": "diff.html.jinja", "md": "diff.md.jinja", "txt": "diff.txt.jinja"}
_ANSI = {"add": "\x1b[32m", "remove": "\x1b[31m", "change": "\x1b[33m", "move": "\x1b[36m",
         "bold": "\x1b[1m", "dim": "\x1b[2m", "reset": "\x1b[0m"}


def render_diff(diff: LoopDiff, fmt: str, *, color: bool = False) -> str:
    """Render a ``LoopDiff`` (``loopdoc.model.diff``) as text in ``fmt``, through ``environment()``.

    Args:
        diff: the comparison.
        fmt: ``txt`` (terminal), ``md`` (a pull-request comment), ``html`` (a
            standalone page: the merged tree with the changes marked) or ``json``
            (``LoopDiff.to_json()``).
        color: for ``txt``, colour with ANSI escapes (added green, removed red,
            changed yellow, moved cyan); ignored by the other formats.

    Returns:
        The whole document, ending in a newline; the same input gives the same bytes. Model
        text is cleaned as for ``render`` (``loopdoc.rendering.text``): control characters,
        lone surrogates and bidi controls show as U+FFFD; JSON keeps them as ``\\uXXXX`` escapes.

    Raises:
        UsageError: unknown ``fmt``.
        TemplateError: a broken template.
    """
    from .values import first_line, show_value, text_diff

    if fmt == "json":
        return inert_json(diff.to_json())
    if fmt not in DIFF_TEMPLATES:
        raise UsageError(f"unknown format {fmt!r} for a diff; choose one of {', '.join(f for f in FORMATS if f != 'svg')}")
    diff = printable_value(diff)  # control and bidi characters as U+FFFD, as for a loop
    with template_errors():
        env = environment(fmt)
        env.filters["value"] = show_value
        env.filters["first_line"] = first_line
        env.globals["text_diff"] = text_diff
        env.globals["fence"] = code_fence
        env.filters["html_text"] = lambda s: html.escape(str(s), quote=False)  # text inside raw HTML of a Markdown diff
        text = env.get_template(DIFF_TEMPLATES[fmt]).render(
            diff=diff,
            c=_ANSI if color and fmt == "txt" else dict.fromkeys(_ANSI, ""),
            title=f"Loop diff: {diff.old.loaded_from} → {diff.new.loaded_from}",
        )
    save_markdown_memo()
    return text.rstrip("\n") + "\n"

