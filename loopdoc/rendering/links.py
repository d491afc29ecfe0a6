"""The source-URL policy: which ``--source-url`` templates are allowed, and which source locations get a link."""

from __future__ import annotations

import html
import re
from urllib.parse import quote

from ..errors import UsageError
from ..model.loop import Loop, SourceLocation

_URL_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")

_URL_BAD = re.compile(r'[\s<>"`\\\x00-\x1f\x7f-\x9f]')

def check_source_url(url: str) -> None:
    """Check a ``--source-url`` template before anything is loaded.

    The URL is checked as a browser reads it from a Markdown link or an HTML attribute: with
    HTML character references decoded (``html.unescape``: ``java&#115;cript:``, ``javascript&colon;``,
    hex, named, any case). What the WHATWG URL parser would remove before reading the scheme
    (leading and trailing C0 controls and spaces, every tab and newline:
    https://url.spec.whatwg.org/#concept-basic-url-parser) is refused outright, written or as a
    reference, so the scheme checked is the scheme a browser sees.

    Args:
        url: e.g. ``"https://github.com/org/repo/blob/main/{path}#L{line}"``.

    Raises:
        UsageError: ``url`` lacks ``{path}``; contains, as written or as a character
            reference, a space, a control character or one of ``<>"`\\`` (percent-encode
            them); or has a scheme other than ``http``, ``https`` or ``file`` (a relative URL,
            with no scheme, is allowed).
    """
    if "{path}" not in url:
        raise UsageError(f"--source-url: {url!r} has no {{path}}; e.g. https://github.com/ORG/REPO/blob/main/{{path}}#L{{line}}")
    bad = _URL_BAD.search(url)
    if bad:
        raise UsageError(f"--source-url: {url!r} contains {bad.group()!r}; percent-encode it")
    decoded = html.unescape(url)
    bad = _URL_BAD.search(decoded)
    if bad:
        raise UsageError(f"--source-url: {url!r} contains {bad.group()!r} as an HTML character reference; percent-encode it")
    scheme = _URL_SCHEME.match(decoded)
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
