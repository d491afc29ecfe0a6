"""What rendering keeps between runs, under ``cache_dir()``: compiled templates and the HTML of docstrings.

Both are speed only: a document is byte-for-byte the same with a cache, without one
(``LOOPDOC_CACHE_DIR=""``) and with a cache that cannot be read or written (then there is no cache).

- ``templates-<fmt>/``: Jinja's compiled templates (``loopdoc.rendering.environment``), checked
  against each template's source.
- ``markdown/<key>.marshal``: ``MarkdownMemo``, the HTML markdown-it-py made of each docstring,
  so that rendering a saved model whose docstrings were rendered before imports no markdown-it-py
  (~25 ms) and parses no Markdown (~5 ms for a fastai learner's 56 docstrings). The docstrings of
  a framework's own callbacks are the same in every model, so most of a new model's are there too.

Whoever can write the cache folder can change what loopdoc writes (as for any compiled-code cache,
Jinja's included): it is the user's own folder, created ``0700``.
"""

from __future__ import annotations

import contextlib
import hashlib
import marshal
import os
import sys
from collections.abc import Callable
from pathlib import Path

MEMO_LIMIT = 4096
"""At most this many docstrings in one ``MarkdownMemo`` file; a larger one keeps only those of the last render."""

MEMO_BYTES = 1024 * 1024
"""At most this many characters of text and HTML in one memo file, likewise: each render reads the whole file
(~1 ms per 100 kB; a fastai learner's docstrings are ~15 kB)."""

ENTRY_CHARS = 64 * 1024
"""A docstring whose text and HTML are longer than this is rendered each time, never remembered."""


def cache_dir() -> Path | None:
    """Where loopdoc's rendering caches live.

    Returns:
        ``$LOOPDOC_CACHE_DIR`` (set but empty: ``None``, no cache), else
        ``$XDG_CACHE_HOME/loopdoc``, else ``~/.cache/loopdoc``; ``None`` when there is no home.
    """
    configured = os.environ.get("LOOPDOC_CACHE_DIR")
    if configured is not None:
        return Path(configured) if configured else None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return None if base.startswith("~") else Path(base) / "loopdoc"


def cache_folder(name: str) -> Path | None:
    """``cache_dir()/name``, created (``0700``) if missing; ``None`` when there is no cache or it cannot be made.

    Args:
        name: a folder name, e.g. ``"templates-html"``.
    """
    base = cache_dir()
    if base is None:
        return None
    folder = base / name
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError:
        return None
    return folder


def _identity(path: str | None) -> tuple[str, int, int] | None:
    """A file's path, size and modification time (ns): what changes when a package is installed again."""
    if path is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (path, st.st_size, st.st_mtime_ns)


def _module_file(name: str) -> str | None:
    """The file of the top-level module ``name``, found without importing it; ``None`` if not installed."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    return spec.origin if spec is not None else None


def markdown_key(code: str) -> str:
    """The name of the memo file for the Markdown rendering installed now.

    What the HTML of a docstring depends on: loopdoc's Markdown code (the file ``code``, with its
    size and modification time), markdown-it-py and mdurl (their installed files, likewise: a new
    version is new files), and the Python version (``marshal``'s format).

    Args:
        code: the path of the module that renders Markdown (``loopdoc.rendering.markdown.__file__``).

    Returns:
        32 hexadecimal digits.
    """
    parts = (sys.version_info[:2], _identity(code), _identity(_module_file("markdown_it")), _identity(_module_file("mdurl")))
    return hashlib.sha256(repr(parts).encode("utf-8")).hexdigest()[:32]


class MarkdownMemo:
    """Docstring → HTML, read once from ``cache_folder("markdown")/<key>.marshal`` and written back by ``save``.

    Entries are keyed by the kind of rendering (``"block"``, ``"inline"``) and the exact text. A file
    that is missing, unreadable or not a mapping of text to text is an empty memo.
    """

    def __init__(self, key: str) -> None:
        """Read the memo file of ``key`` (``markdown_key``), if any.

        Args:
            key: the memo's file name without its extension.
        """
        folder = cache_folder("markdown")
        self._path = None if folder is None else folder / f"{key}.marshal"
        self._known: dict[str, str] = self._read()
        self._used: set[str] = set()
        self._changed = False

    def _read(self) -> dict[str, str]:
        if self._path is None:
            return {}
        try:
            data = marshal.loads(self._path.read_bytes())
        except Exception:  # missing, unreadable, truncated or foreign: start empty
            return {}
        if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
            return {}
        return data

    def html(self, kind: str, text: str, make: Callable[[], str]) -> str:
        """The HTML of ``text`` rendered as ``kind``: remembered, or ``make()`` (then remembered unless longer than
        ``ENTRY_CHARS`` with its text).

        Args:
            kind: ``"block"`` or ``"inline"`` (different renderings of the same text).
            text: the Markdown source.
            make: renders it (imports markdown-it-py on first use).

        Returns:
            The HTML text.
        """
        key = f"{kind}\0{text}"
        found = self._known.get(key)
        if found is None:
            found = make()
            if len(key) + len(found) <= ENTRY_CHARS:
                self._known[key] = found
                self._changed = True
        if key in self._known:
            self._used.add(key)
        return found

    def save(self) -> None:
        """Write the memo back if it gained entries; never raises.

        What another process wrote meanwhile is kept too (the file is read again and merged). Past
        ``MEMO_LIMIT`` entries or ``MEMO_BYTES`` characters only the entries used since this memo was read
        are kept. The file is written to a new private temporary file (``tempfile.mkstemp``: mode ``0600``,
        a name no one can guess or plant a link at) that then replaces it in one step.
        """
        if not self._changed or self._path is None:
            return
        merged = {**self._read(), **self._known}
        if len(merged) > MEMO_LIMIT or sum(len(k) + len(v) for k, v in merged.items()) > MEMO_BYTES:
            merged = {k: self._known[k] for k in self._used}
        import tempfile

        try:
            fd, temporary = tempfile.mkstemp(prefix=f".{self._path.name}.", suffix=".tmp", dir=self._path.parent)
        except OSError:  # read-only or full: the next run renders again
            return
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(marshal.dumps(merged))
            os.replace(temporary, self._path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            return
        self._known = merged
        self._changed = False
