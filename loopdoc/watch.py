"""``loopdoc render --watch``: render, then render again whenever one of the learner's own files changes, until Ctrl-C.

The files are those the load read (``loopdoc.resolve.Resolved.files``: the learner file and
the sibling modules it imported; the ``.json`` of a saved model), so a callback moved to a
``cbs.py`` beside the learner is watched too; the set is taken afresh after every render.
Each render loads the learner in a new worker process, so an edited module is imported anew.

Watching uses watchfiles (https://github.com/samuelcolvin/watchfiles; the optional extra
``loopdoc[watch]``): the operating system's change notifications through the Rust ``notify``
crate (inotify, FSEvents, ReadDirectoryChangesW), grouping the several writes of one save.
It watches the files' folders (not the files themselves, whose watch an editor's
save-by-rename would end) and keeps only events about the files. A change made while a render
was loading, before the watcher started, is caught once it runs: a file known before the load
whose ``stat`` differs from then, or one the load found that was modified after it began.
The ``watching …`` line is printed once the watcher runs.

A render that fails prints its one ``Error:`` line and the watch goes on (the output file is
left as it was); fix the file and it renders again. Ctrl-C ends the watch with exit code 0:
watching ends only that way, and every output written was complete (``write_output`` is atomic).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

from .errors import LoopdocError, UsageError

POLL_MS = 500
"""How often (milliseconds) the watcher wakes without a change, to check the files' ``stat`` once it runs."""


def check_watchable(spec: str, output: str, call: str | None = None) -> None:
    """Refuse, before any work, what ``--watch`` cannot do, and a command line no edit of a file can fix.

    Args:
        spec: the ``SPEC`` given.
        output: the ``-o`` given.
        call: the ``--call`` given, or ``None``.

    Raises:
        UsageError: ``-o -`` (a stream cannot be rewritten), a ``git:`` spec (a revision does
            not change), a ``call`` no adapter accepts (``loopdoc.calls.check_call``), or
            watchfiles is not installed.
    """
    if call is not None:
        from .calls import check_call

        check_call(call)
    if output == "-":
        raise UsageError("--watch: needs an output file (-o FILE), not -")
    if spec.startswith("git:"):
        raise UsageError(f"--watch: {spec}: a git revision does not change; watch the working tree's file")
    try:
        import watchfiles  # noqa: F401
    except ImportError as e:
        raise UsageError("--watch needs the watchfiles package: pip install 'loopdoc[watch]'") from e


def watch(render_once: Callable[[], tuple[str, ...]], first_files: Iterable[str], *, quiet: bool = False,
          say: Callable[[str], None] | None = None) -> int:
    """Call ``render_once``, then again after every change of the files it read, until interrupted.

    Args:
        render_once: renders and writes the output; returns the absolute paths of the files it
            read (``Resolved.files``); raises ``LoopdocError`` when the spec fails.
        first_files: what to watch when the first render fails before reading anything (the spec's file).
        quiet: no ``rendered …``/``watching …`` lines (``Error:`` lines are always printed).
        say: where lines go (``None``: stderr, above a progress line if one is shown).

    Returns:
        0, when Ctrl-C ends the watch (``KeyboardInterrupt``, also during a render).

    Raises:
        UsageError: watchfiles is not installed.
    """
    say = say or _say
    files = tuple(os.path.abspath(f) for f in first_files)
    try:
        while True:
            before, began = _stats(files), time.time_ns()
            message = "watching"
            try:
                files = tuple(render_once()) or files
                message = "rendered; watching"
            except LoopdocError as e:
                say(f"Error: {' '.join(str(e).split())}")
            line = f"{message} {_count(files)} for changes (Ctrl-C to stop)"
            ready = None if quiet else (lambda line=line: say(line))
            changed = wait_for_change(files, before, began, ready=ready)
            if not quiet:
                say(f"changed: {', '.join(_shown(f) for f in changed)}")
    except KeyboardInterrupt:
        if not quiet:
            say("stopped watching")
        return 0


def wait_for_change(files: tuple[str, ...], before: dict[str, Any], began: int,
                    ready: Callable[[], None] | None = None) -> list[str]:
    """Block until one of ``files`` changes, or return at once if one changed since the load that read them began.

    Args:
        files: absolute paths.
        before: ``_stats`` of the files known when that load began (the others were found by it).
        began: ``time.time_ns()`` when it began: a file found by the load counts as changed
            when it was modified after that (less ``MARGIN_NS``, for the file system's coarser clock).
        ready: called once the watcher runs (it then sees every later change).

    Returns:
        The changed files among ``files``, sorted (at least one).

    Raises:
        UsageError: none of the files' folders exists.
        KeyboardInterrupt: Ctrl-C while waiting.
    """
    import watchfiles

    wanted = {os.path.realpath(f): f for f in files} | {f: f for f in files}
    folders = sorted({os.path.dirname(f) for f in wanted if os.path.isdir(os.path.dirname(f))})
    if not folders:
        raise UsageError(f"--watch: none of the folders of {', '.join(files)} exists")
    first = True
    for changes in watchfiles.watch(*folders, watch_filter=lambda _change, path: _match(path, wanted) is not None,
                                    recursive=False, yield_on_timeout=True, rust_timeout=POLL_MS, debounce=1600, step=50,
                                    raise_interrupt=True):
        if changes:
            return sorted({m for _, path in changes if (m := _match(path, wanted)) is not None})
        if first:  # the watcher runs now; a change made while the render loaded was no event for it
            first = False
            moved = _changed_since(files, before, began)
            if moved:
                return moved
            if ready is not None:
                ready()
    raise KeyboardInterrupt  # the generator ends only when interrupted (no stop_event is given)


MARGIN_NS = 50_000_000
"""A file's modification time may lag the system clock by a tick (file systems stamp with a coarse clock): 50 ms."""


def _changed_since(files: tuple[str, ...], before: dict[str, Any], began: int) -> list[str]:
    """The files whose ``stat`` differs from ``before``, and those not in it that were modified after ``began``."""
    out = []
    for f, now in _stats(files).items():
        if f in before:
            if now != before[f]:
                out.append(f)
        elif now is not None and now[0] >= began - MARGIN_NS:
            out.append(f)
    return sorted(out)


def _match(path: str, wanted: dict[str, str]) -> str | None:
    return wanted.get(path) or wanted.get(os.path.realpath(path))


def _stats(files: Iterable[str]) -> dict[str, tuple[int, int, int] | None]:
    out: dict[str, tuple[int, int, int] | None] = {}
    for f in files:
        try:
            st = os.stat(f)
            out[f] = (st.st_mtime_ns, st.st_size, st.st_ino)
        except OSError:
            out[f] = None
    return out


def _count(files: tuple[str, ...]) -> str:
    return f"{len(files)} file{'' if len(files) == 1 else 's'} ({', '.join(_shown(f) for f in files)})"


def _shown(path: str) -> str:
    from .paths import display_path

    return display_path(path)


def _say(text: str) -> None:
    from .progress import active

    progress = active()
    if progress is not None:
        progress.write(text + "\n")
    else:
        print(text, file=sys.stderr, flush=True)
