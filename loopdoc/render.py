"""Render a ``Loop`` as HTML, Markdown, plain text or JSON, and write outputs safely.

Templates are Jinja files in the top-level ``templates/`` folder (installed as the
package ``loopdoc.templates``). A user's ``template_dir`` is searched first, so a
file of the same name, or one that ``{% extends %}`` ours and overrides blocks,
replaces ours. Only this module imports jinja2 and markdown-it-py; nothing here
imports torch or fastai.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import jinja2
from markdown_it import MarkdownIt
from markupsafe import Markup

from .errors import OutputError, UsageError
from .model import Event, Loop, Phase, SourceLocation, Step

if TYPE_CHECKING:  # imported where needed: rendering a saved model need not pay ~30 ms for them
    from .diff import LoopDiff
    from .trace import EventTrace, Trace

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
        UsageError: empty ``output``, unknown format or extension.
    """
    if not output:
        raise UsageError("--output: empty path; give a file name, or - for stdout")
    if override is not None:
        if override not in FORMATS:
            raise UsageError(f"--format: unknown format {override!r}; choose one of {', '.join(FORMATS)}")
        return override
    if output == "-":
        return "txt"
    ext = Path(output).suffix.lower()
    if ext not in EXTENSIONS:
        raise UsageError(f"{output}: unknown output extension {ext or '(none)'!r}; use {', '.join(EXTENSIONS)} or --format")
    return EXTENSIONS[ext]


def render(loop: Loop | Trace, fmt: str, *, verbose: bool = False, title: str | None = None,
           template_dir: str | os.PathLike[str] | None = None, source_url: str | None = None,
           show_differences: bool = False) -> str:
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

    Returns:
        The whole document, ending in a newline; the same input gives the same bytes.

    Raises:
        UsageError: unknown ``fmt``, a ``template_dir`` that is not a folder, or a
            bad ``source_url`` (see ``check_source_url``).
        jinja2.TemplateError: a broken user template.
    """
    if source_url is not None:
        check_source_url(source_url)
    if fmt == "json":
        return loop.to_json()
    if fmt not in TEMPLATES:
        raise UsageError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    loop, title = printable_model(loop), None if title is None else printable_text(title)
    trace = loop if _is_trace(loop) else None
    if trace is not None:
        loop = trace.loop
        title = title or f"Trace of {trace.call} on {loop.learner.loaded_from}"
    env = environment(fmt, template_dir)
    text = env.get_template(TEMPLATES[fmt]).render(
        trace=trace,
        trace_at=trace_lookup(trace),
        show_differences=show_differences,
        top_keys=loop.top_keys(),
        loop=loop,
        callbacks={cb.id: cb for cb in loop.callbacks},
        handled=handled_events(loop),
        places=event_places(loop),
        aliases=event_aliases(loop),
        title=title or f"Training loop of {loop.learner.loaded_from}",
        verbose=verbose,
        source_url=source_url,
        source_link=lambda source: source_link(source, source_url, loop),
    )
    return text.rstrip("\n") + "\n"


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


def _is_trace(obj: object) -> bool:
    """``isinstance(obj, loopdoc.trace.Trace)`` without importing ``loopdoc.trace`` (no ``Trace`` exists before it is)."""
    module = sys.modules.get("loopdoc.trace")
    return module is not None and isinstance(obj, module.Trace)


DIFF_TEMPLATES = {"html": "diff.html.jinja", "md": "diff.md.jinja", "txt": "diff.txt.jinja"}
_ANSI = {"add": "\x1b[32m", "remove": "\x1b[31m", "change": "\x1b[33m", "move": "\x1b[36m",
         "bold": "\x1b[1m", "dim": "\x1b[2m", "reset": "\x1b[0m"}


def render_diff(diff: LoopDiff, fmt: str, *, color: bool = False) -> str:
    """Render a ``LoopDiff`` (``loopdoc.diff``) as text in ``fmt``, through ``environment()``.

    Args:
        diff: the comparison.
        fmt: ``txt`` (terminal), ``md`` (a pull-request comment), ``html`` (a
            standalone page: the merged tree with the changes marked) or ``json``
            (``LoopDiff.to_json()``).
        color: for ``txt``, colour with ANSI escapes (added green, removed red,
            changed yellow, moved cyan); ignored by the other formats.

    Returns:
        The whole document, ending in a newline; the same input gives the same bytes.

    Raises:
        UsageError: unknown ``fmt``.
    """
    from .diff import first_line, show_value, text_diff

    if fmt == "json":
        return diff.to_json()
    if fmt not in DIFF_TEMPLATES:
        raise UsageError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    env = environment(fmt)
    env.filters["value"] = show_value
    env.filters["first_line"] = first_line
    env.globals["text_diff"] = text_diff
    env.globals["fence"] = _fence
    text = env.get_template(DIFF_TEMPLATES[fmt]).render(
        diff=diff,
        c=_ANSI if color and fmt == "txt" else dict.fromkeys(_ANSI, ""),
        title=f"Loop diff: {diff.old.loaded_from} → {diff.new.loaded_from}",
    )
    return text.rstrip("\n") + "\n"


def _fence(text: str) -> str:
    """A Markdown code fence of backticks longer than any run of backticks in ``text`` (at least three)."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


_URL_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
_URL_BAD = re.compile(r'[\s<>"`\\\x00-\x1f\x7f]')


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


def check_source_url(url: str) -> None:
    """Check a ``--source-url`` template before anything is loaded.

    Args:
        url: e.g. ``"https://github.com/org/repo/blob/main/{path}#L{line}"``.

    Raises:
        UsageError: ``url`` lacks ``{path}``; contains a space, a control character
            or one of ``<>"`\\`` (percent-encode them); or has a scheme other than
            ``http``, ``https`` or ``file`` (a relative URL, with no scheme, is allowed).
    """
    if "{path}" not in url:
        raise UsageError(f"--source-url: {url!r} has no {{path}}; e.g. https://github.com/ORG/REPO/blob/main/{{path}}#L{{line}}")
    bad = _URL_BAD.search(url)
    if bad:
        raise UsageError(f"--source-url: {url!r} contains {bad.group()!r}; percent-encode it")
    scheme = _URL_SCHEME.match(url)
    if scheme and scheme.group(1).lower() not in ("http", "https", "file"):
        raise UsageError(f"--source-url: scheme {scheme.group(1)!r} not allowed; use http, https or file, or a relative URL")


def source_link(source: SourceLocation | None, url: str | None, loop: Loop) -> str | None:
    """The link for one source location, or ``None`` when it is shown without one.

    The rule: a location is linked when ``url`` is given and its file is a relative path
    (not ``/…``, not ``C:…``, no ``..`` part) whose first folder is not a package the loop
    was read from, i.e. not ``loop.framework.name`` nor a name in ``loop.versions``
    (``fastai/…``, ``torch/…``): those files are shown relative to site-packages, not to
    your repository. Your own files (``examples/x.py``) are shown relative to the working
    directory, so run loopdoc from the repository root. A callback from another installed
    package (``wandb/…``) cannot be told apart from the model and is linked too.

    Args:
        source: the location (``SourceLocation.file`` as shown, and ``line``), or ``None``.
        url: a template checked by ``check_source_url``: ``{path}`` becomes the file,
            percent-encoded except ``/``; ``{line}`` the line, empty when unknown;
            ``(`` and ``)`` are percent-encoded so the URL also works in Markdown.
            ``None``: nothing is linked.
        loop: the model, for its framework and package names.

    Returns:
        The URL, or ``None``.
    """
    if url is None or source is None:
        return None
    path = source.file
    parts = path.split("/")
    if not path or path.startswith("/") or re.match(r"[A-Za-z]:", path) or ".." in parts:
        return None
    installed = {name.lower().replace("-", "_") for name in (loop.framework.name, *loop.versions)}
    if len(parts) > 1 and parts[0].lower() in installed:
        return None
    link = url.replace("{path}", quote(path, safe="/")).replace("{line}", "" if source.line is None else str(source.line))
    return link.replace("(", "%28").replace(")", "%29")


# Ids the page itself uses: an event name equal to one of them gets no short anchor.
PAGE_IDS = frozenset({"loop", "callbacks", "notes", "ld-controls", "ld-q", "ld-names", "ld-quiet", "ld-desc",
                      "ld-open", "ld-close", "ld-status", "ld-hl"})


def event_aliases(loop: Loop) -> dict[str, str]:
    """Short anchors: the first place (in document order) of each event name also answers to ``#<name>``.

    Event names repeat across phases (``before_batch`` is in the training and the
    validation batch loop), so every event keeps its path anchor
    (``fit-epoch-train-batch-before_batch``) and the first one also gets ``#before_batch``.
    A name that is empty, contains whitespace, or equals another anchor of the page
    (a path anchor, ``phase-…``, ``cb-…`` or one of ``PAGE_IDS``) gets no alias.

    Args:
        loop: the model.

    Returns:
        ``{path anchor: alias}`` for the events that get an alias.
    """
    taken = set(PAGE_IDS) | {"cb-" + cb.id for cb in loop.callbacks}
    events = loop.iter_events(keyed=True)
    taken |= {"-".join(path + (event.name,)) for path, event in events}
    for path, _ in events:
        taken |= {"phase-" + "-".join(path[:i]) for i in range(1, len(path) + 1)}
    out: dict[str, str] = {}
    for path, event in events:
        name = event.name
        if name and not re.search(r"\s", name) and name not in taken:
            out["-".join(path + (name,))] = name
            taken.add(name)
    return out


def event_places(loop: Loop) -> dict[str, list[tuple[str, list[tuple[str, str]]]]]:
    """Where each callback runs: for the callback index's links into the tree.

    Args:
        loop: the model.

    Returns:
        ``{callback id: [(event name, [(path anchor, label), ...]), ...]}``, event names in loop
        order, once each; the places in loop order. ``label`` names the phases that tell the
        places of one event name apart (``"train"`` and ``"validate"`` for ``before_batch``),
        or is ``""`` when the name occurs once in the loop.
    """
    events = loop.iter_events(keyed=True)
    paths: dict[str, list[tuple[str, ...]]] = {}
    for path, event in events:
        paths.setdefault(event.name, []).append(path)
    out: dict[str, dict[str, list[tuple[str, str]]]] = {cb.id: {} for cb in loop.callbacks}
    for path, event in events:
        for h in event.handlers:
            places = out.setdefault(h.callback, {}).setdefault(event.name, [])
            anchor = "-".join(path + (event.name,))
            if all(a != anchor for a, _ in places):
                places.append((anchor, _place_label(path, paths[event.name])))
    return {cb: list(names.items()) for cb, names in out.items()}


def _place_label(path: tuple[str, ...], others: list[tuple[str, ...]]) -> str:
    """The part of ``path`` that differs among ``others`` (all paths of one event name), joined by " › "."""
    if len(others) < 2:
        return ""
    start = 0
    while all(len(p) > start for p in others) and len({p[start] for p in others}) == 1:
        start += 1
    end = 0
    while all(len(p) - end > start for p in others) and len({p[len(p) - 1 - end] for p in others}) == 1:
        end += 1
    return " › ".join(path[start:len(path) - end] or path)


def csp_hash(text: str) -> Markup:
    """The Content-Security-Policy source for an inline script: ``'sha256-<base64>'`` of ``text`` as UTF-8.

    Args:
        text: the exact text between ``<script>`` and ``</script>``.

    Returns:
        e.g. ``'sha256-abc…='``, quotes included, as markup (base64 and quotes need no escaping).
    """
    digest = hashlib.sha256(str(text).encode("utf-8")).digest()
    return Markup(f"'sha256-{base64.b64encode(digest).decode('ascii')}'")


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


def template_cache_dir() -> Path | None:
    """Where compiled templates are cached.

    Compiling loopdoc's templates takes ~60 ms, more than a third of ``loopdoc render
    loop.json``; a cached template is checked against its source (Jinja's
    ``FileSystemBytecodeCache`` keys it by name and file and stores a checksum of the
    source), so an edited template or a user's ``--template-dir`` one is compiled afresh.

    Returns:
        ``$LOOPDOC_CACHE_DIR`` (set but empty: ``None``, no cache), else
        ``$XDG_CACHE_HOME/loopdoc``, else ``~/.cache/loopdoc``; ``None`` when there is no home.
    """
    configured = os.environ.get("LOOPDOC_CACHE_DIR")
    if configured is not None:
        return Path(configured) if configured else None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return None if base.startswith("~") else Path(base) / "loopdoc"


def _bytecode_cache(fmt: str) -> jinja2.BytecodeCache | None:
    """A ``_QuietBytecodeCache`` in ``template_cache_dir()/templates-<fmt>`` (one per format: autoescaping is
    compiled in), or ``None`` when there is no cache folder or it cannot be made."""
    folder = template_cache_dir()
    if folder is None:
        return None
    folder = folder / f"templates-{fmt}"
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError:
        return None
    return _QuietBytecodeCache(str(folder))


def environment(fmt: str, template_dir: str | os.PathLike[str] | None = None) -> jinja2.Environment:
    """A fresh Jinja environment for ``fmt``: autoescaping on for ``html`` only, strict undefined.

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
        autoescape=fmt == "html",
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        bytecode_cache=_bytecode_cache(fmt),
    )
    env.filters["markdown"] = markdown_to_html
    env.filters["markdown_inline"] = markdown_inline
    env.filters["tidy_markdown"] = tidy_markdown
    env.filters["markdown_paragraph"] = markdown_paragraph
    env.filters["csp_hash"] = csp_hash
    env.filters["ms"] = milliseconds
    env.tests["phase"] = lambda n: isinstance(n, Phase)
    env.tests["event"] = lambda n: isinstance(n, Event)
    env.tests["step"] = lambda n: isinstance(n, Step)
    return env


def _markdown_parser() -> MarkdownIt:
    # Images are off: a page must make no request, and ``![x](http://…)`` would be one.
    return MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"]).disable("image")


@functools.lru_cache(maxsize=1)
def _shared_markdown_parser() -> MarkdownIt:
    """One ``_markdown_parser()`` for the filters, which never change it: building one costs ~1 ms, and a page has
    dozens of docstrings. (``_markdown_parser()`` itself stays fresh: callers may add render rules.)"""
    return _markdown_parser()


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


def handled_events(loop: Loop) -> dict[str, list[str]]:
    """Map each ``Callback.id`` to the event names it handles anywhere in ``loop``, in loop order, once each."""
    out: dict[str, list[str]] = {cb.id: [] for cb in loop.callbacks}
    for _, event in loop.iter_events():
        for h in event.handlers:
            if event.name not in out[h.callback]:
                out[h.callback].append(event.name)
    return out


def write_output(text: str, output: str) -> None:
    """Write ``text`` as UTF-8 to ``output`` atomically, or to stdout when ``output`` is ``"-"``.

    The text goes to a temporary file in the same folder, which then replaces
    ``output`` in one step: an existing file is never left half-written, and on
    any failure it is left untouched and no file is left behind. A symlink is
    written through (its target is replaced, the link kept); a device or FIFO
    (``/dev/stdout``, ``/dev/null``) is written in place, never replaced.
    Characters UTF-8 cannot encode (lone surrogates) are written as ``\\uXXXX``.

    Args:
        text: the document.
        output: a file path, or ``"-"`` for stdout.

    Raises:
        OutputError: see ``check_output``; or writing failed (disk full,
            stdout closed).
    """
    data = text.encode("utf-8", errors="backslashreplace")
    if output == "-":
        _write_stdout(data, text)
        return
    target = check_output(output)
    try:
        if target is None:  # a device or FIFO
            with open(output, "wb") as f:
                f.write(data)
            return
        import tempfile

        fd, tmp = tempfile.mkstemp(prefix=f".{target.name[:64]}.", suffix=".tmp", dir=target.parent)
    except (OSError, ValueError) as e:
        raise OutputError(f"{output}: cannot write: {getattr(e, 'strerror', None) or e}") from e
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        if target.exists():
            os.chmod(tmp, target.stat().st_mode & 0o777)
        else:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, target)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise OutputError(f"{output}: cannot write: {e.strerror or e}") from e
        raise


def check_output(output: str) -> Path | None:
    """Check, without writing anything, that ``write_output`` can write ``output``.

    Cheap: call it before the slow work so that a bad ``-o`` fails at once.

    Args:
        output: a file path (not ``"-"``).

    Returns:
        The regular file to replace (a symlink resolved to its target), or
        ``None`` when ``output`` is an existing device or FIFO, to be written in place.

    Raises:
        OutputError: ``output`` is a folder or a read-only file; its folder is
            missing, is a file or is not writable; or the path is invalid.
    """
    try:
        target = Path(output)
        if target.is_dir():
            raise OutputError(f"{output}: is a directory")
        if target.exists() and not target.is_file():
            return None
        if target.is_symlink():
            target = Path(os.path.realpath(target))
        folder = target.parent
        if not folder.is_dir():
            existing = next((p for p in folder.parents if p.exists()), None)
            if folder.exists() or (existing is not None and not existing.is_dir()):
                blocker = folder if folder.exists() else existing
                raise OutputError(f"{output}: {blocker} is not a folder")
            raise OutputError(f"{output}: folder {folder} does not exist")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise OutputError(f"{output}: folder {folder} is not writable")
        if target.exists() and not os.access(target, os.W_OK):
            raise OutputError(f"{output}: file is read-only")
        return target
    except (OSError, ValueError) as e:  # e.g. a name too long, a NUL byte
        raise OutputError(f"{output}: cannot write: {getattr(e, 'strerror', None) or e}") from e


def _write_stdout(data: bytes, text: str) -> None:
    import sys

    stream = sys.stdout
    if stream is None:
        raise OutputError("-: standard output is closed")
    try:
        buffer = getattr(stream, "buffer", None)
        if buffer is not None:
            stream.flush()
            buffer.write(data)
            buffer.flush()
        else:  # a text-only stream, e.g. io.StringIO
            stream.write(text)
            stream.flush()
    except BrokenPipeError as e:
        # The reader went away (``| head``). Point stdout at devnull so that the
        # flush at interpreter exit cannot raise again.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, stream.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        raise OutputError("-: standard output closed before the document was written (broken pipe)") from e
    except OSError as e:
        raise OutputError(f"-: cannot write to standard output: {e.strerror or e}") from e
