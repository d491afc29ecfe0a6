"""A guard that keeps a traced run from writing into the user's folders (``loopdoc trace`` saves nothing).

A framework adapter's recorder points every file its framework's callbacks write at a
temporary folder (fastai: ``learn.path``, see ``loopdoc.adapters.fastai.recorder``). This
guard is the net under that: while ``no_writes_under(folders, allowed)`` is active, an attempt
by any Python code to create, change, rename or remove a file or folder below one of
``folders`` (outside ``allowed``) raises ``PermissionError`` at that point, before anything is
touched, so the run fails with one line naming the file instead of writing it.

It uses Python's audit hooks (PEP 578, ``sys.addaudithook``; the events are listed in
https://docs.python.org/3/library/audit_events.html): ``open`` with a writing flag,
``os.mkdir``, ``os.remove``, ``os.rmdir``, ``os.rename``, ``os.link``, ``os.symlink``,
``os.truncate``, ``os.chmod``, ``os.chown``, ``os.utime``, ``os.setxattr``,
``os.removexattr``, ``shutil.copyfile``, ``shutil.copymode``, ``shutil.copystat``,
``shutil.copytree``, ``shutil.move``, ``shutil.rmtree``, ``shutil.chown``, ``sqlite3.connect``.
It cannot see writes made by C code that opens files itself (``torch.save`` of a zip
archive, for one), which is why the recorder redirects paths first. An audit hook cannot be
removed, so one is added per process, the first time, and does nothing outside the block.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterable, Iterator

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
# event -> positions of the path arguments it writes
_PATH_EVENTS = {
    "os.mkdir": (0,), "os.remove": (0,), "os.rmdir": (0,), "os.rename": (0, 1), "os.link": (1,), "os.symlink": (1,),
    "os.truncate": (0,), "os.chmod": (0,), "os.chown": (0,), "os.utime": (0,), "os.setxattr": (0,),
    "os.removexattr": (0,), "shutil.copyfile": (1,), "shutil.copymode": (1,), "shutil.copystat": (1,),
    "shutil.copytree": (1,), "shutil.move": (0, 1), "shutil.rmtree": (0,), "shutil.chown": (0,), "sqlite3.connect": (0,),
}

_active: list[tuple[tuple[str, ...], tuple[str, ...]]] = []  # (protected folders, allowed folders), innermost last
_installed = False


@contextlib.contextmanager
def no_writes_under(folders: Iterable[str | os.PathLike[str]], allowed: Iterable[str | os.PathLike[str]] = ()) -> Iterator[None]:
    """Refuse, inside the block, every write below ``folders`` that is not below ``allowed``.

    Args:
        folders: folders to keep as they are (the working directory, the learner's folder).
        allowed: folders below them that may be written (loopdoc's temporary folder).

    Raises:
        PermissionError: inside the block, from the operation that would have written
            (``errno`` EACCES, the file named, the message saying why).
    """
    global _installed
    if not _installed:
        sys.addaudithook(_hook)
        _installed = True
    _active.append((tuple(_folder(f) for f in folders), tuple(_folder(f) for f in allowed)))
    try:
        yield
    finally:
        _active.pop()


def _folder(path: str | os.PathLike[str]) -> str:
    return os.path.join(os.path.normpath(os.path.abspath(os.fspath(path))), "")


def _hook(event: str, args: tuple[object, ...]) -> None:
    if not _active:
        return
    if event == "open":
        if len(args) < 3 or not isinstance(args[2], int) or not args[2] & _WRITE_FLAGS:
            return
        paths: tuple[object, ...] = (args[0],)
    elif event in _PATH_EVENTS:
        paths = tuple(args[i] for i in _PATH_EVENTS[event] if i < len(args))
    else:
        return
    protected, allowed = _active[-1]
    for path in paths:
        if isinstance(path, int) or path is None:
            continue  # a file descriptor: opened (and checked) before
        try:
            text = os.fsdecode(path)  # type: ignore[arg-type]
        except TypeError:
            continue
        if event == "sqlite3.connect" and (text == ":memory:" or text.startswith("file:")):
            continue
        full = os.path.join(os.path.normpath(os.path.abspath(text)), "")
        if any(full.startswith(f) for f in protected) and not any(full.startswith(a) for a in allowed):
            raise PermissionError(13, "loopdoc trace saves nothing: writing here is not allowed during the run "
                                      f"({event})", text)
