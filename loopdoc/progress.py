"""Loading progress on a terminal: one status line on stderr, redrawn in place, gone when loading ends.

``loopdoc.cli.main`` turns it on (``reporting``) when stderr is a terminal and ``--quiet`` is
not given; library callers (the docs-site plugins, ``loopdoc.load_loop``) never see it. While it
is on, each worker ``loopdoc.resolve`` starts registers a task (``begin``): the line reads
``loading learner.py…``, then, once the worker reports what it is doing (it notices the first
import of an adapter's framework: ``importing fastai``), ``loading learner.py (importing fastai)…``,
followed by a spinner and the seconds elapsed. When the last task ends the line is erased, so
the document (``show`` writes to stdout, often the same terminal) and any ``Error:`` line start
on a clean line.

The worker's own output (what the user's code prints, its stdout and stderr alike) is relayed
through this process while the line is shown (``relay``), so that it never lands in the middle
of the status line: each chunk erases the line, is written as it came, and the line is redrawn
below it once the chunk ended a line. (So while progress is shown, the user's code writes to a
pipe, not to the terminal; with ``--quiet`` or without a terminal it writes to stderr directly.)
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import time
from collections.abc import Iterator
from typing import IO

_active: Progress | None = None

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
ASCII_SPINNER = "|/-\\"


def active() -> Progress | None:
    """The progress line of this process while ``reporting`` is on, else ``None``."""
    return _active


def wanted(stream: IO[str] | None, *, quiet: bool = False, environ: dict[str, str] | None = None) -> bool:
    """Whether to show progress on ``stream``: it is a terminal, ``quiet`` is false, and ``TERM`` is not ``dumb``.

    Args:
        stream: where the line would go (``sys.stderr``), or ``None``.
        quiet: ``--quiet`` was given.
        environ: the environment (``os.environ`` when ``None``).

    Returns:
        The answer; ``False`` for a stream without ``isatty`` or a closed one.
    """
    if quiet or stream is None or (os.environ if environ is None else environ).get("TERM") == "dumb":
        return False
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


@contextlib.contextmanager
def reporting(enabled: bool, stream: IO[str] | None = None) -> Iterator[Progress | None]:
    """Show loading progress on ``stream`` for the body (``active()`` returns it), then erase it.

    Args:
        enabled: ``False``: a no-op (yields ``None``).
        stream: the terminal, ``sys.stderr`` when ``None``; written through its file descriptor.

    Yields:
        The ``Progress``, or ``None``.
    """
    global _active
    if not enabled:
        yield None
        return
    import sys

    progress = Progress(stream or sys.stderr)
    previous, _active = _active, progress
    try:
        yield progress
    finally:
        _active = previous
        progress.close()


class Progress:
    """The status line and the relay of workers' output; every method is thread-safe and never raises ``OSError``."""

    def __init__(self, stream: IO[str], interval: float = 0.1) -> None:
        """Nothing is drawn until a task begins.

        Args:
            stream: the terminal (its ``fileno()`` is written to directly).
            interval: seconds between redraws of the spinner.
        """
        self._fd = stream.fileno()
        self._unicode = (getattr(stream, "encoding", "") or "").lower().replace("-", "") in ("utf8", "utf8sig")
        self._interval = interval
        self._lock = threading.RLock()
        self._tasks: dict[int, list[str]] = {}  # id(key) -> [label, detail]
        self._started = time.monotonic()
        self._relayed: set[int] = set()
        self._drawn = 0  # width of the line on screen, 0: none
        self._line_start = True  # the terminal's cursor is at the start of a line (relayed output ended one)
        self._frame = 0
        self._wake_r, self._wake_w = os.pipe()
        self._closing = False
        self._thread: threading.Thread | None = None

    # -- tasks ------------------------------------------------------------
    def begin(self, key: object, label: str) -> None:
        """Start a task: the line shows ``label`` (e.g. ``"loading learner.py"``) until ``end(key)``."""
        with self._lock:
            if not self._tasks:
                self._started = time.monotonic()
            self._tasks[id(key)] = [label, ""]
            self._start_thread()
            self._draw()

    def detail(self, key: object, text: str) -> None:
        """Say what the task is doing, shown in brackets after its label (``"importing fastai"``)."""
        with self._lock:
            task = self._tasks.get(id(key))
            if task is not None:
                task[1] = text
                self._draw()

    def end(self, key: object) -> None:
        """End a task (again: nothing); the line is erased at once when it was the last one."""
        with self._lock:
            if self._tasks.pop(id(key), None) is not None and not self._tasks:
                self._erase()

    def relay(self, fd: int) -> None:
        """Copy what arrives on ``fd`` (the read end of a worker's stdout and stderr) to the terminal until end of file.

        ``fd`` is closed at its end of file, or by ``close``.
        """
        with self._lock:
            self._relayed.add(fd)
            self._start_thread()
            self._wake()

    def write(self, text: str) -> None:
        """Write ``text`` to the terminal above the line (erased first, redrawn after if ``text`` ends a line)."""
        self._show(text.encode("utf-8", "backslashreplace"))

    def close(self) -> None:
        """Copy what the workers still wrote, erase the line, and stop (waits at most ~0.5 s for a writer that lingers)."""
        with self._lock:
            self._tasks.clear()
            self._erase()
            self._closing = True
            self._wake()
        thread = self._thread
        if thread is not None:
            thread.join()
        for fd in (*self._relayed, self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._relayed.clear()

    # -- internals ----------------------------------------------------------
    def _start_thread(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="loopdoc-progress", daemon=True)
            self._thread.start()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")

    def _run(self) -> None:
        """Relay output and redraw the spinner; ends when nothing is left to do (``_start_thread`` starts it again).

        Once closing, it copies what is still arriving and stops at the end of every relayed file
        or after 0.5 s without any output (a process the user's code started may hold a pipe open).
        """
        while True:
            with self._lock:
                fds = [self._wake_r, *self._relayed]
                closing = self._closing
                if not self._relayed and (closing or not self._tasks):
                    self._thread = None
                    return
            try:
                ready, _, _ = select.select(fds, [], [], 0.5 if closing else self._interval)
            except (OSError, ValueError):
                with self._lock:
                    self._thread = None
                return
            if not ready:
                if closing:
                    with self._lock:
                        self._thread = None
                    return
                with self._lock:
                    self._frame += 1
                    self._draw()
                continue
            for fd in ready:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    chunk = b""
                if fd == self._wake_r:
                    continue
                if chunk:
                    self._show(chunk)
                else:
                    with self._lock:
                        self._relayed.discard(fd)
                    with contextlib.suppress(OSError):
                        os.close(fd)

    def _show(self, data: bytes) -> None:
        with self._lock:
            self._erase()
            self._put(data)
            self._line_start = data.endswith(b"\n")
            self._draw()

    def _line(self) -> str:
        dots = "…" if self._unicode else "..."
        parts = [f"{label} ({detail})" if detail else label for label, detail in self._tasks.values()]
        frames = SPINNER if self._unicode else ASCII_SPINNER
        elapsed = int(time.monotonic() - self._started)
        text = f"{', '.join(parts)}{dots} {frames[self._frame % len(frames)]}" + (f" {elapsed} s" if elapsed else "")
        try:
            width = os.get_terminal_size(self._fd).columns
        except OSError:
            width = 0
        if not width:  # a terminal that does not say: COLUMNS, else 80
            import shutil

            width = shutil.get_terminal_size().columns
        return text[: max(width - 1, 20)]  # one line: a wrapped line could not be redrawn in place

    def _draw(self) -> None:
        if not self._tasks or not self._line_start:
            return
        line = self._line()
        self._put(b"\r" + line.encode("utf-8", "replace") + b"\x1b[K")
        self._drawn = len(line)

    def _erase(self) -> None:
        if self._drawn:
            self._put(b"\r\x1b[K")
            self._drawn = 0

    def _put(self, data: bytes) -> None:
        with contextlib.suppress(OSError):
            while data:
                data = data[os.write(self._fd, data):]
