"""The Jinja environment: a fresh one per render, loopdoc's templates before a user's, filters, template errors.

Compiled templates are cached on disk (``loopdoc.rendering.cache``).

Templates live in the top-level ``templates/`` folder (installed as the package
``loopdoc.templates``). A user's ``template_dir`` is searched first, so a file of the same
name, or one that ``{% extends %}`` ours and overrides blocks, replaces ours.
"""

from __future__ import annotations

import binascii
import contextlib
import hashlib
import os
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import jinja2
from markupsafe import Markup

from ..errors import LoopdocError, TemplateError, UsageError
from ..model.loop import Event, Phase, Step
from ..paths import display_path
from .cache import cache_folder
from .markdown import (
    markdown_code,
    markdown_inline,
    markdown_inline_safe,
    markdown_memo,
    markdown_paragraph,
    markdown_raw_code,
    markdown_raw_text,
    markdown_safe,
    markdown_text,
    markdown_to_html,
    tidy_markdown,
)

if TYPE_CHECKING:
    from ..model.trace import EventTrace, Trace

def csp_hash(text: str) -> Markup:
    """The Content-Security-Policy source for an inline script: ``'sha256-<base64>'`` of ``text`` as UTF-8.

    Args:
        text: the exact text between ``<script>`` and ``</script>``.

    Returns:
        e.g. ``'sha256-abc…='``, quotes included, as markup (base64 and quotes need no escaping).
    """
    digest = hashlib.sha256(str(text).encode("utf-8")).digest()
    return Markup(f"'sha256-{binascii.b2a_base64(digest, newline=False).decode('ascii')}'")  # base64, without its module

def milliseconds(seconds: float) -> str:
    """Seconds as milliseconds for people: ``0.0123`` → ``"12.3 ms"``, three significant digits."""
    ms = seconds * 1000
    return f"{ms:.3g} ms" if ms < 1000 else f"{ms:,.0f} ms"

def trace_lookup(trace: Trace | None) -> Callable[[list[str], str], EventTrace | None]:
    """``trace_at(path, event)`` for templates: what the trace saw there, or ``None`` (also without a trace).

    ``path`` starts with the top-level key from ``Loop.top_keys`` (``["fit", "epoch", "train", "batch"]``).
    """
    events = trace.event_map() if trace is not None else {}
    return lambda path, event: events.get((tuple(path), event))

BUILTIN_PREFIX = "loopdoc"

class _Environment(jinja2.Environment):
    """Resolves a template that names itself (``{% extends "loop.html.jinja" %}`` inside a user's
    ``loop.html.jinja``) to loopdoc's built-in template of that name, ``loopdoc/loop.html.jinja``."""

    def join_path(self, template: str, parent: str) -> str:
        return f"{BUILTIN_PREFIX}/{template}" if template == parent else template

class _QuietBytecodeCache(jinja2.FileSystemBytecodeCache):
    """Jinja's on-disk cache of compiled templates, which never fails a render: a cache it cannot read or write is no cache."""

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except Exception:  # unreadable, truncated or foreign: compile instead
            bucket.reset()

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            super().dump_bytecode(bucket)
        except Exception:  # read-only or full disk: the next run compiles again
            pass

def _bytecode_cache(fmt: str) -> jinja2.BytecodeCache | None:
    """A ``_QuietBytecodeCache`` in ``cache_dir()/templates-<fmt>`` (``loopdoc.rendering.cache``; one per format:
    autoescaping is compiled in), or ``None`` when there is no cache folder or it cannot be made.

    Compiling loopdoc's templates takes ~60 ms, more than a third of ``loopdoc render loop.json``; a cached
    template is checked against its source (Jinja's ``FileSystemBytecodeCache`` keys it by name and file and
    stores a checksum of the source), so an edited template or a user's ``--template-dir`` one is compiled afresh.
    """
    folder = cache_folder(f"templates-{fmt}")
    return None if folder is None else _QuietBytecodeCache(str(folder))

def environment(fmt: str, template_dir: str | os.PathLike[str] | None = None) -> jinja2.Environment:
    """A fresh Jinja environment for ``fmt``: autoescaping on for ``html`` and ``svg`` only, strict undefined.

    Templates are looked up in ``template_dir`` first, then in loopdoc's own; loopdoc's are
    also reachable as ``loopdoc/<name>``. A user's ``loop.html.jinja`` may therefore
    ``{% extends "loop.html.jinja" %}`` (a template naming itself means loopdoc's) and
    override single blocks.

    Raises:
        UsageError: ``template_dir`` is not a folder.
    """
    import loopdoc.templates

    builtin = jinja2.FileSystemLoader([str(p) for p in loopdoc.templates.__path__])
    loaders: list[jinja2.BaseLoader] = [builtin, jinja2.PrefixLoader({BUILTIN_PREFIX: builtin})]
    if template_dir is not None:
        if not Path(template_dir).is_dir():
            raise UsageError(f"{template_dir}: template folder not found")
        loaders.insert(0, jinja2.FileSystemLoader(str(template_dir)))
    env = _Environment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=fmt in ("html", "svg"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        bytecode_cache=_bytecode_cache(fmt),
    )
    memo = markdown_memo()  # docstring HTML remembered between runs (loopdoc.rendering.cache)
    env.filters["markdown"] = lambda text: markdown_to_html(text, memo)
    env.filters["markdown_inline"] = lambda text: markdown_inline(text, memo)
    env.filters["tidy_markdown"] = tidy_markdown
    env.filters["markdown_paragraph"] = markdown_paragraph
    env.filters["md_code"] = markdown_code  # model text inside Markdown documents (loopdoc.rendering.markdown)
    env.filters["md_text"] = markdown_text
    env.filters["md_raw_code"] = markdown_raw_code  # model text inside a raw <details> block of a Markdown document
    env.filters["md_raw_text"] = markdown_raw_text
    env.filters["md_inline"] = markdown_inline_safe
    env.filters["md_safe"] = markdown_safe
    env.filters["csp_hash"] = csp_hash
    env.filters["ms"] = milliseconds
    env.tests["phase"] = lambda n: isinstance(n, Phase)
    env.tests["event"] = lambda n: isinstance(n, Event)
    env.tests["step"] = lambda n: isinstance(n, Step)
    return env


@contextlib.contextmanager
def template_errors() -> Iterator[None]:
    """Turn an error raised by a template (loading or rendering it) into a one-line ``TemplateError``.

    Covers ``jinja2.TemplateError`` (syntax error, template not found, undefined variable)
    and any other exception raised while a template's code runs; loopdoc's own errors and
    exceptions raised outside template code pass through unchanged.

    Raises:
        TemplateError: ``"templates/x.jinja:12: template syntax error: …"`` (the template's file and line when known).
    """
    try:
        yield
    except LoopdocError:
        raise
    except Exception as e:
        error = _template_error(e)
        if error is None:
            raise
        raise error from e


def _template_error(exc: Exception) -> TemplateError | None:
    """A one-line ``TemplateError`` naming the template's ``file:line`` for an error raised by a template, else ``None``."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if _is_template_file(f.filename)]
    if isinstance(exc, jinja2.TemplateNotFound) and not frames:  # loopdoc asked for it, no template did
        return TemplateError(f"{exc.name}: template not found: {_message(exc)}")
    if isinstance(exc, jinja2.TemplateSyntaxError) and exc.filename:
        where = f"{display_path(exc.filename)}:{exc.lineno}"
    elif frames:
        where = f"{display_path(frames[-1].filename)}:{frames[-1].lineno}"
    elif isinstance(exc, jinja2.TemplateError):
        where = "template"
    else:
        return None
    if isinstance(exc, jinja2.TemplateNotFound):
        problem = f"template {exc.name!r} not found"
    elif isinstance(exc, jinja2.TemplateSyntaxError):
        problem = f"template syntax error: {_message(exc)}"
    elif isinstance(exc, jinja2.TemplateError):
        problem = f"template error: {_message(exc)}"
    else:
        problem = f"template error: {type(exc).__name__}: {_message(exc)}"
    return TemplateError(f"{where}: {problem}")


def _is_template_file(filename: str) -> bool:
    """Jinja rewrites tracebacks so that template code shows as frames of the template file."""
    return not filename.endswith((".py", ".pyc")) and not filename.startswith("<") and os.path.isfile(filename)


def _message(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:  # a broken __str__ must not hide the real error
        text = ""
    return " ".join(text.split()) or "(no message)"
