"""Output writing: the format an output path asks for, and atomic writes that never leave a half-written file.

Neutral: knows neither a framework nor a template. ``write_output`` writes through a temporary
file in the same folder and one rename; ``check_output`` checks a path before any slow work.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable
from pathlib import Path

from .. import interrupts
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

def write_output(text: str, output: str, *, keep_links: bool = False) -> None:
    """Write ``text`` as UTF-8 to ``output`` atomically, or to stdout when ``output`` is ``"-"``.

    The text goes to a temporary file in the same folder, which then replaces
    ``output`` in one step: an existing file is never left half-written, and on
    any failure it is left untouched and no file is left behind. A symlink is
    written through (its target is replaced, the link kept); a device or FIFO
    (``/dev/stdout``, ``/dev/null``) is written in place, never replaced.
    Characters UTF-8 cannot encode (lone surrogates) are written as ``\\uXXXX``.

    The temporary file is ``.NAME.loopdoc-PID-XXXXXXXX.tmp``, locked (``flock``) while it is
    written. It is removed on any error and on ``SIGTERM``/``SIGHUP`` (``loopdoc.cli`` turns
    them into an exception); only ``SIGKILL`` (or a power cut) can leave one behind, and the
    next write to the same ``output`` removes such stale files of loopdoc's own: those whose
    process is gone and whose lock is free (a concurrent writer's file is left alone).

    Args:
        text: the document.
        output: a file path, or ``"-"`` for stdout.
        keep_links: when ``output`` has more than one hard link, write it in place (after a
            verified temporary copy) so that every link keeps seeing it (``loopdoc card``: a
            README hard-linked elsewhere). See ``_write_in_place`` for what an interruption leaves.

    Raises:
        OutputError: see ``check_output``; or writing failed (disk full,
            stdout closed).
    """
    data = text.encode("utf-8", errors="backslashreplace")
    if output == "-":
        _write_stdout(data, text)
        return
    target = check_output(output)
    if target is None:  # a device or FIFO
        try:
            with open(output, "wb") as f:
                f.write(data)
        except (OSError, ValueError) as e:
            raise OutputError(f"{output}: cannot write: {getattr(e, 'strerror', None) or e}") from e
        return
    remove_stale_temporaries(target)
    if keep_links:
        try:
            linked = target.exists() and target.stat().st_nlink > 1
        except OSError:
            linked = False
        if linked:
            _write_in_place(data, target, output)
            return
    fd, tmp, lock = _temporary(target, output, ".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        if target.exists():
            os.chmod(tmp, target.stat().st_mode & 0o777)
        else:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        interrupts.raise_if_received()  # an interrupt Python swallowed: do not replace the file after all
        os.replace(tmp, target)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise OutputError(f"{output}: cannot write: {e.strerror or e}") from e
        raise
    finally:
        os.close(lock)


_TEMPORARY = re.compile(r"\.(?P<name>.*)\.loopdoc-(?P<pid>[0-9]+)-[A-Za-z0-9_]+\.(?P<kind>tmp|new)")


def _temporary(target: Path, output: str, suffix: str) -> tuple[int, str, int]:
    """A new locked temporary file beside ``target``: ``(fd, path, lock fd)``; close the lock fd when done with the file."""
    import tempfile

    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name[:64]}.loopdoc-{os.getpid()}-", suffix=suffix, dir=target.parent)
    except (OSError, ValueError) as e:
        raise OutputError(f"{output}: cannot write: {getattr(e, 'strerror', None) or e}") from e
    lock = os.dup(fd)
    try:
        import fcntl

        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except (ImportError, OSError):  # no flock (Windows) or a file system without locks: the pid check remains
        pass
    return fd, tmp, lock


def stale_temporaries(target: Path, kind: str = "tmp") -> list[Path]:
    """loopdoc's own temporary files for ``target`` (``.NAME.loopdoc-PID-XXXX.tmp``) whose writer is gone.

    Gone means: no process with that PID exists here, and the file's ``flock`` can be taken
    (a writer holds it while writing, so a live writer on another machine sharing the folder
    is not taken for gone either).

    Args:
        target: the output file.
        kind: ``"tmp"`` (an atomic write's file) or ``"new"`` (the copy kept during an in-place write).

    Returns:
        The files, sorted.
    """
    found = []
    try:
        names = os.listdir(target.parent)
    except OSError:
        return []
    for name in sorted(names):
        m = _TEMPORARY.fullmatch(name)
        if m is None or m.group("name") != target.name[:64] or m.group("kind") != kind or _alive(int(m.group("pid"))):
            continue
        path = target.parent / name
        if _unlocked(path):
            found.append(path)
    return found


def remove_stale_temporaries(target: Path) -> None:
    """Remove ``stale_temporaries(target)`` (best effort: a file that cannot be removed is left).

    Args:
        target: the output file about to be written.
    """
    for path in stale_temporaries(target):
        try:
            path.unlink()
        except OSError:
            pass


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # someone else's process, or a number we cannot check: assume it is alive
    return True


def _unlocked(path: Path) -> bool:
    try:
        import fcntl
    except ImportError:
        return True
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def _write_in_place(data: bytes, target: Path, output: str) -> None:
    """Rewrite ``target`` in place (same inode, so its other hard links see the new text), after a verified copy.

    First the new bytes go to ``.NAME.loopdoc-PID-XXXX.new`` beside it, read back and
    compared; then ``target`` is overwritten and truncated and synced; then the copy is
    removed. On an error or ``SIGTERM``/``SIGHUP`` the old bytes are written back. Killed
    during the overwrite (``SIGKILL``), the file may be cut short, but the complete new text
    is in the ``.new`` copy, which nothing removes: the next write to ``target`` refuses
    until it is looked at (``OutputError`` naming it).

    Raises:
        OutputError: a ``.new`` copy from an interrupted write is there, or writing failed.
    """
    left = stale_temporaries(target, "new")
    if left:
        raise OutputError(f"{output}: an earlier loopdoc write to it was interrupted; its complete new text is in "
                          f"{left[0]}: check {output}, then remove that file")
    old = target.read_bytes()
    fd, copy, lock = _temporary(target, output, ".new")
    try:
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            if Path(copy).read_bytes() != data:
                raise OutputError(f"{output}: cannot write: the temporary copy {copy} did not read back the same")
        except BaseException:
            Path(copy).unlink(missing_ok=True)
            raise
        try:
            _overwrite(target, data)
        except BaseException as e:
            try:
                _overwrite(target, old)
            except BaseException:  # noqa: BLE001 - the copy keeps the new text; say so
                raise OutputError(f"{output}: cannot write, and restoring it failed; its new text is in {copy}") from e
            Path(copy).unlink(missing_ok=True)
            if isinstance(e, OSError):
                raise OutputError(f"{output}: cannot write: {e.strerror or e}") from e
            raise
        Path(copy).unlink(missing_ok=True)
    except OSError as e:
        raise OutputError(f"{output}: cannot write: {e.strerror or e}") from e
    finally:
        os.close(lock)


def _overwrite(target: Path, data: bytes) -> None:
    fd = os.open(target, os.O_WRONLY)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.ftruncate(fd, len(data))
        os.fsync(fd)
    finally:
        os.close(fd)


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


PYTHON_SUFFIXES = (".py", ".pyw")
"""Files ``-o`` never writes without ``--force``: a Python source file is someone's code, never a loopdoc output."""


def refuse_overwrite(output: str, inputs: Iterable[str | os.PathLike[str]], *, force: bool = False, what: str = "the output") -> None:
    """Refuse to write ``output`` when it is one of the command's inputs, or a Python file without ``force``.

    "Is" means the same file, however it is reached: the same path, a symbolic link to it
    or a hard link of it (compared by ``os.stat``'s ``st_dev`` and ``st_ino``, following links,
    where both exist). A Python file is one whose name, or the name its links resolve to,
    ends in ``.py`` or ``.pyw``. Nothing is written or created either way.

    Args:
        output: the path to be written (``"-"``, stdout, is never refused).
        inputs: the files the command reads (a learner, a saved model, a diff side's file,
            a template); missing ones are skipped.
        force: allow a Python file that is not an input (an input is refused even then).
        what: how to call ``output`` in the message (``"the output"``, ``"the card"``).

    Raises:
        UsageError: one line naming ``output`` and the input it is (exit code 2).
    """
    if output == "-":
        return
    try:
        out_stat = os.stat(output)
    except (OSError, ValueError):
        out_stat = None  # not there yet (or a dangling link): it is no input
    if out_stat is not None and stat.S_ISREG(out_stat.st_mode):
        for source in inputs:
            try:
                in_stat = os.stat(source)
            except (OSError, ValueError):
                continue
            if (in_stat.st_dev, in_stat.st_ino) == (out_stat.st_dev, out_stat.st_ino):
                same = "" if os.path.abspath(source) == os.path.abspath(output) else f" (the same file as {os.fspath(source)})"
                raise UsageError(f"{output}: {what} would overwrite an input of this command{same}; "
                                 "choose another file, it is left as it is")
    if not force:
        resolved = os.path.realpath(output)
        if Path(output).suffix.lower() in PYTHON_SUFFIXES or Path(resolved).suffix.lower() in PYTHON_SUFFIXES:
            via = "" if Path(output).suffix.lower() in PYTHON_SUFFIXES else f" (it links to {resolved})"
            raise UsageError(f"{output}: {what} would be a Python file{via}; loopdoc does not write over Python "
                             "code unless you pass --force")


def files_under(folder: str | os.PathLike[str] | None) -> list[str]:
    """Every file below ``folder`` (a ``--template-dir``: its templates are inputs), or ``[]`` for ``None``.

    Args:
        folder: a folder, or ``None``.

    Returns:
        Paths, in ``os.walk`` order; unreadable subfolders are skipped.
    """
    if folder is None:
        return []
    return [os.path.join(root, name) for root, _, names in os.walk(folder) for name in names]
