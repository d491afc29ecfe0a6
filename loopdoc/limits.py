"""Limits on the user's code: a time limit for loading a learner (``--timeout``), and not waiting for its threads.

``time_limit(seconds, where)`` bounds a block that runs the user's code. On the main
thread of a POSIX process it arms ``signal.setitimer(ITIMER_REAL)``; when it fires, the
``SIGALRM`` handler raises ``Timeout`` (a ``BaseException``, so the user's
``except Exception:`` does not swallow it) wherever the user's code is, and the block
ends with a one-line ``LoadError`` naming that place. Code that never returns to Python
(stuck in C) or that swallows ``BaseException`` is not stopped by a signal: with
``hard=True`` (the command line), a watchdog thread then prints the error and ends the
process ``GRACE`` seconds later with ``os._exit`` (no output file has been written yet:
outputs are written after loading, atomically).

``lingering_threads(before)``: the non-daemon threads the user's code started and left
running. Python waits for those at exit, forever if they never end; the command line
ends the process without waiting for them (see ``loopdoc.cli.main``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import traceback
from collections.abc import Iterable, Iterator
from pathlib import Path

from .errors import LoadError
from .paths import display_path

# Seconds after the time limit before the watchdog ends a process the signal did not stop.
GRACE = 3.0
_OWN = str(Path(__file__).resolve().parent)


class Timeout(BaseException):  # noqa: N818 - not an error of the user's code: a signal from loopdoc
    """Raised by the ``SIGALRM`` handler of ``time_limit`` inside the user's code.

    A ``BaseException`` like ``KeyboardInterrupt``, so that ``except Exception`` in the
    user's code lets it through; ``loopdoc.load`` re-raises it unchanged.
    """


def _seconds(value: float) -> str:
    return f"{value:g} s"


def _where_stuck(exc: BaseException) -> str:
    """``file:line`` (as ``display_path`` shows it) of the innermost frame outside loopdoc, or ``""``."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith(_OWN)]
    if not frames:
        return ""
    frame = frames[-1]
    name = frame.filename if frame.filename.startswith("<") else display_path(frame.filename)
    return f"; it was running {name}:{frame.lineno}"


@contextlib.contextmanager
def time_limit(seconds: float | None, where: str, *, doing: str = "loading", hard: bool = False) -> Iterator[None]:
    """Bound the block's run time.

    Args:
        seconds: the limit; ``None`` or ``0`` for none (the block runs as is).
        where: what is being loaded, for the message (the spec as given).
        doing: what the block does, for the message: ``"loading"``, ``"running"``.
        hard: also start the watchdog that ends the whole process ``GRACE`` seconds
            after the limit if the signal could not stop the block (command line only).

    Raises:
        LoadError: the block was still running after ``seconds``:
            ``"learner.py: still loading after 5 s (--timeout 5); it was running learner.py:12"``.
        UsageError: ``seconds`` is negative.
    """
    if seconds is None or seconds == 0:
        yield
        return
    if not 0 < seconds < 1e9:  # also NaN and infinity
        from .errors import UsageError

        raise UsageError(f"--timeout {seconds:g}: must be a positive number of seconds (or 0 for no limit)")
    message = f"{where}: still {doing} after {_seconds(seconds)} (--timeout {seconds:g})"
    use_signal = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    watchdog = None
    if hard:
        watchdog = threading.Timer(seconds + GRACE, _give_up, args=(f"{message} and did not stop; gave up",))
        watchdog.daemon = True
        watchdog.start()
    previous = None
    if use_signal:
        def alarm(signum: int, frame: object) -> None:
            raise Timeout()

        previous = signal.signal(signal.SIGALRM, alarm)
        signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        try:
            yield
        finally:
            if use_signal:  # first thing: an alarm from here on still raises inside the outer try
                signal.setitimer(signal.ITIMER_REAL, 0)
    except Timeout as e:
        raise LoadError(message + _where_stuck(e)) from e
    finally:
        if use_signal:
            signal.signal(signal.SIGALRM, previous if previous is not None else signal.SIG_DFL)
        if watchdog is not None:
            watchdog.cancel()


def _give_up(message: str) -> None:
    """The watchdog: one ``Error:`` line, then end the process with ``LoadError.exit_code``."""
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    with contextlib.suppress(Exception):
        sys.stderr.write(f"Error: {message}\n")
        sys.stderr.flush()
    os._exit(LoadError.exit_code)


def lingering_threads(before: Iterable[threading.Thread]) -> list[threading.Thread]:
    """The non-daemon threads started since ``before`` and still running: those Python would wait for at exit.

    Args:
        before: ``threading.enumerate()`` taken before the user's code ran.

    Returns:
        The threads, in ``threading.enumerate()`` order; ``[]`` when none.
    """
    known = set(before)
    return [t for t in threading.enumerate()
            if t not in known and t.is_alive() and not t.daemon and t is not threading.current_thread()]
