"""Running the user's code as ``python learner.py`` would, and turning its failures into one-line errors.

Neutral: used by the loader (``loopdoc.load``) and by adapters that load a trainer from a
file of their own (fastai's ``learn.export()`` pickles). While the user's code runs, its
folder is first on ``sys.path``, ``sys.argv`` is ``[learner.py]``, and what it prints goes
to stderr (``sys.stdout`` and file descriptor 1 alike), so that loopdoc's stdout carries only
the document; all of it is restored afterwards.
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from .errors import LoadError
from .limits import Timeout

T = TypeVar("T")


@contextlib.contextmanager
def as_script(folder: str, argv0: str) -> Iterator[None]:
    """Run the body as ``python argv0`` would: ``folder`` first on ``sys.path``, ``sys.argv == [argv0]``.

    The user's prints go to stderr: ``sys.stdout`` is ``sys.stderr``, and file descriptor 1
    is a copy of 2, so that ``print(file=sys.__stdout__)``, ``os.write(1, …)``, C
    libraries and child processes cannot write into a document sent to stdout
    (``-o -``) either. All are restored afterwards, and so is the working directory
    (a script may ``os.chdir`` to its data; loopdoc's output paths and the source paths it
    shows stay relative to where it was started); a ``sys.path`` entry the user's code
    added is kept.
    """
    argv = sys.argv
    cwd = _getcwd()
    sys.path.insert(0, folder)
    sys.argv = [argv0]
    saved_fd = _stdout_to_stderr()
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.argv = argv
        if cwd is not None and _getcwd() != cwd:
            with contextlib.suppress(OSError):
                os.chdir(cwd)
        with contextlib.suppress(ValueError):  # the user's code may have removed it
            sys.path.remove(folder)
        if saved_fd is not None:
            _flush(sys.__stdout__)
            with contextlib.suppress(OSError):
                os.dup2(saved_fd, 1)
            os.close(saved_fd)


def _getcwd() -> str | None:
    try:
        return os.getcwd()
    except OSError:  # the working directory was removed
        return None


def _flush(stream: Any) -> None:
    with contextlib.suppress(Exception):  # None, closed, or a broken replacement
        stream.flush()


def _stdout_to_stderr() -> int | None:
    """Point file descriptor 1 at what 2 is; return a copy of the old 1 to restore, or ``None`` when either is unusable."""
    _flush(sys.stdout)
    _flush(sys.__stdout__)
    try:
        saved = os.dup(1)
    except OSError:
        return None
    try:
        os.dup2(2, 1)
    except OSError:
        os.close(saved)
        return None
    return saved


def check_file(path: Path, suffixes: tuple[str, ...] = (".py",)) -> None:
    """Check that ``path`` is a readable regular file with one of ``suffixes``, before anything runs.

    Args:
        path: the file named by a spec.
        suffixes: the suffixes allowed (``.py``; an adapter's own, matched without case).

    Raises:
        LoadError: a folder, a missing file, another suffix, or an unreadable path (a symlink loop).
    """
    kind = "/".join(suffixes)
    try:
        if path.is_dir():
            raise LoadError(f"{path}: is a folder, not a {kind} file")
        if not path.is_file():
            raise LoadError(f"{path}: no such file")
        if path.suffix not in suffixes and not (suffixes != (".py",) and path.suffix.lower() in suffixes):
            raise LoadError(f"{path}: not a .py file (expected PATH.py[:ATTR], package.module[:ATTR] or a saved .json model)")
        path.resolve(strict=True)
    except OSError as e:
        raise LoadError(f"{path}: cannot read: {e.strerror or e}") from e
    except RuntimeError as e:  # symlink loop (Python < 3.13)
        raise LoadError(f"{path}: cannot read: {e}") from e


def run_user_code(fn: Callable[[], T], where: str, user: Path | None, doing: str = "") -> T:
    """Call ``fn``; turn any failure of the user's code into a one-line ``LoadError``.

    Args:
        fn: runs the user's code.
        where: how to name the code when no frame of ``user`` is in the traceback.
        user: the user's file, or the folder of the user's package, whose
            innermost traceback frame locates the error; ``None`` for none.
        doing: what was being done, e.g. ``"while calling make()"``; ``""`` for importing.

    Raises:
        LoadError: ``fn`` raised anything but ``KeyboardInterrupt`` or ``loopdoc.limits.Timeout``
            (``sys.exit`` included).
    """

    suffix = f" ({doing})" if doing else ""
    try:
        return fn()
    except (KeyboardInterrupt, Timeout):  # Timeout: --timeout's signal, reported by loopdoc.limits.time_limit
        raise
    except SyntaxError as e:
        line = f":{e.lineno}" if e.lineno else ""
        file = user_path(e.filename) if e.filename else where
        raise LoadError(f"{file}{line}: syntax error: {one_line(str(e.msg))}{suffix}") from e
    except SystemExit as e:
        raise LoadError(f"{_user_frame(e, where, user)}: called sys.exit({one_line(repr(e.code))}) "
                        f"{doing or 'while loading'}") from e
    except BaseException as e:
        raise LoadError(f"{_user_frame(e, where, user)}: {type(e).__name__}: {first_line(e)}{suffix}") from e


def _user_frame(exc: BaseException, where: str, user: Path | None) -> str:
    """``file:line`` of the innermost traceback frame in the user's file or package, else ``where``."""
    if user is None:
        return where
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if _within(f.filename, user)]
    return f"{user_path(frames[-1].filename)}:{frames[-1].lineno}" if frames else where


def user_path(filename: str) -> str:
    """A file of the user's, relative to the working directory when under it, else absolute.

    Unlike ``display_path``, never relative to a ``sys.path`` entry: while the
    user's code runs its own folder is on ``sys.path``.
    """
    if filename.startswith("<"):  # "<string>", "<frozen ...>"
        return filename
    path = Path(os.path.abspath(filename))
    return path.relative_to(Path.cwd()).as_posix() if path.is_relative_to(Path.cwd()) else path.as_posix()


def _within(filename: str, user: Path) -> bool:
    try:
        path = Path(filename).resolve()
    except (OSError, RuntimeError):
        return False
    return path == user or (user.is_dir() and path.is_relative_to(user))


def one_line(text: str, limit: int = 200) -> str:
    """``text`` with all whitespace runs as one space, cut to ``limit`` characters (ending in ``…``).

    Args:
        text: any text.
        limit: the longest result.

    Returns:
        One line.
    """
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, via ``one_line``; ``"(no message)"`` when it has none or ``str`` raises.

    Args:
        exc: the exception.

    Returns:
        One line.
    """
    try:
        text = str(exc)
    except Exception:  # a broken __str__ must not hide the real error
        text = ""
    lines = text.strip().splitlines()
    return one_line(lines[0]) if lines else "(no message)"


def a_an(type_name: str) -> str:
    """``"a Learner"`` or ``"an int"``: the article a type name takes in a message.

    Args:
        type_name: a class name.

    Returns:
        The name with its article.
    """
    return f"{'an' if type_name[:1].lower() in 'aeiou' else 'a'} {type_name}"
