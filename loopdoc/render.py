"""Render a ``Loop`` as HTML, Markdown, plain text or JSON, and write outputs safely.

Templates are Jinja files in the top-level ``templates/`` folder (installed as the
package ``loopdoc.templates``). A user's ``template_dir`` is searched first, so a
file of the same name, or one that ``{% extends %}`` ours and overrides blocks,
replaces ours. Only this module imports jinja2 and markdown-it-py; nothing here
imports torch or fastai.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import jinja2
from markdown_it import MarkdownIt
from markupsafe import Markup

from .errors import OutputError, UsageError
from .model import Event, Loop, Phase, Step

TEMPLATES = {"html": "loop.html.jinja", "md": "loop.md.jinja", "txt": "loop.txt.jinja"}
FORMATS = ("html", "md", "json", "txt")
EXTENSIONS = {".html": "html", ".htm": "html", ".md": "md", ".markdown": "md", ".json": "json", ".txt": "txt"}


def format_for(output: str, override: str | None) -> str:
    """Pick the output format.

    Args:
        output: the output path, or ``"-"`` for stdout.
        override: a format from ``--format``, or ``None``.

    Returns:
        One of ``FORMATS``: ``override`` if given, else from the extension;
        ``"txt"`` for stdout without ``override``.

    Raises:
        UsageError: unknown format or extension.
    """
    if override is not None:
        if override not in FORMATS:
            raise UsageError(f"unknown format {override!r}; choose one of {', '.join(FORMATS)}")
        return override
    if output == "-":
        return "txt"
    ext = Path(output).suffix.lower()
    if ext not in EXTENSIONS:
        raise UsageError(f"{output}: unknown output extension {ext or '(none)'!r}; use {', '.join(EXTENSIONS)} or --format")
    return EXTENSIONS[ext]


def render(loop: Loop, fmt: str, *, verbose: bool = False, title: str | None = None,
           template_dir: str | os.PathLike[str] | None = None) -> str:
    """Render ``loop`` as text in ``fmt``.

    Args:
        loop: the model.
        fmt: one of ``FORMATS``.
        verbose: for ``txt``, add each handler's docstring and the steps.
        title: page title; default ``"Training loop of <loaded_from>"``.
        template_dir: a folder searched before the built-in templates.

    Returns:
        The whole document, ending in a newline; the same input gives the same bytes.

    Raises:
        UsageError: unknown ``fmt`` or a ``template_dir`` that is not a folder.
        jinja2.TemplateError: a broken user template.
    """
    if fmt == "json":
        return loop.to_json()
    if fmt not in TEMPLATES:
        raise UsageError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    env = environment(fmt, template_dir)
    text = env.get_template(TEMPLATES[fmt]).render(
        loop=loop,
        callbacks={cb.id: cb for cb in loop.callbacks},
        handled=handled_events(loop),
        title=title or f"Training loop of {loop.learner.loaded_from}",
        verbose=verbose,
    )
    return text.rstrip("\n") + "\n"


def environment(fmt: str, template_dir: str | os.PathLike[str] | None = None) -> jinja2.Environment:
    """A fresh Jinja environment for ``fmt``: autoescaping on for ``html`` only, strict undefined.

    Raises:
        UsageError: ``template_dir`` is not a folder.
    """
    import loopdoc.templates

    paths = [str(p) for p in loopdoc.templates.__path__]
    if template_dir is not None:
        if not Path(template_dir).is_dir():
            raise UsageError(f"{template_dir}: template folder not found")
        paths.insert(0, str(template_dir))
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(paths),
        autoescape=fmt == "html",
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["markdown"] = markdown_to_html
    env.tests["phase"] = lambda n: isinstance(n, Phase)
    env.tests["event"] = lambda n: isinstance(n, Event)
    env.tests["step"] = lambda n: isinstance(n, Step)
    return env


def markdown_to_html(text: str | None) -> Markup:
    """Render a docstring's Markdown (CommonMark plus tables and strikethrough) as safe HTML.

    Raw HTML in ``text`` is escaped, never passed through; ``javascript:`` and
    similar links are dropped (markdown-it-py's ``validateLink``).
    """
    if not text:
        return Markup("")
    md = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])
    return Markup(md.render(text))


def handled_events(loop: Loop) -> dict[str, list[str]]:
    """Map each ``Callback.id`` to the event names it handles anywhere in ``loop``, in loop order, once each."""
    out: dict[str, list[str]] = {cb.id: [] for cb in loop.callbacks}
    for _, event in loop.iter_events():
        for h in event.handlers:
            if event.name not in out[h.callback]:
                out[h.callback].append(event.name)
    return out


def write_output(text: str, output: str) -> None:
    """Write ``text`` (UTF-8) to ``output`` atomically, or to stdout when ``output`` is ``"-"``.

    The text goes to a temporary file in the same folder, which then replaces
    ``output`` in one step: an existing file is never left half-written.

    Raises:
        OutputError: the folder is missing or not writable, or ``output`` is a folder.
    """
    if output == "-":
        import sys

        sys.stdout.write(text)
        sys.stdout.flush()
        return
    target = Path(output)
    if target.is_dir():
        raise OutputError(f"{output}: is a directory")
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise OutputError(f"{output}: folder {folder} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as e:
        raise OutputError(f"{output}: cannot write: {e.strerror}") from e
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        if target.exists():
            os.chmod(tmp, target.stat().st_mode & 0o777)
        else:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, target)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise OutputError(f"{output}: cannot write: {e.strerror}") from e

