"""Output writing: the format an output path asks for, and atomic writes that never leave a half-written file.

Neutral: knows neither a framework nor a template. ``write_output`` writes through a temporary
file in the same folder and one rename; ``check_output`` checks a path before any slow work.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import OutputError, UsageError

FORMATS = ("html", "md", "json", "txt", "svg")

EXTENSIONS = {".html": "html", ".htm": "html", ".md": "md", ".markdown": "md", ".json": "json", ".txt": "txt", ".svg": "svg"}

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
