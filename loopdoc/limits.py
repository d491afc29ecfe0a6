"""A time limit on the user's code (``--timeout``), inside the process that runs it.

``time_limit(seconds, where)`` bounds a block that runs the user's code. On the main
thread of a POSIX process it arms ``signal.setitimer(ITIMER_REAL)``; when it fires, the
``SIGALRM`` handler raises ``Timeout`` (a ``BaseException``, so the user's
``except Exception:`` does not swallow it) wherever the user's code is, and the block
ends with a one-line ``LoadError`` naming that place. Code that never returns to Python
(stuck in C), swallows ``BaseException`` or cancels the timer is not stopped by it: the
process that started the worker (``loopdoc.resolve``) kills it ``GRACE`` seconds after the limit.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import traceback
from collections.abc import Iterator
from pathlib import Path

from .errors import LoadError
from .paths import display_path

# Seconds after the time limit before the parent kills a worker the signal did not stop.
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


def check_timeout(seconds: float | None) -> None:
    """Refuse a ``--timeout`` that is not ``None``, 0 (no limit) or a positive number of seconds below 1e9 (1e9 s or more is absurd).

    ``loopdoc.resolve.start`` calls it before a worker starts (whose deadline a negative limit
    would put in the past); ``time_limit`` again.

    Args:
        seconds: the limit as given.

    Raises:
        UsageError: negative, NaN, infinite or absurdly large.
    """
    if seconds is None or seconds == 0:
        return
    if not 0 < seconds < 1e9:  # also NaN and infinity
        from .errors import UsageError

        raise UsageError(f"--timeout {seconds:g}: must be a positive number of seconds (or 0 for no limit)")


@contextlib.contextmanager
def time_limit(seconds: float | None, where: str, *, doing: str = "loading") -> Iterator[None]:
    """Bound the block's run time.

    Args:
        seconds: the limit; ``None`` or ``0`` for none (the block runs as is).
        where: what is being loaded, for the message (the spec as given).
        doing: what the block does, for the message: ``"loading"``, ``"running"``.

    Raises:
        LoadError: the block was still running after ``seconds``:
            ``"learner.py: still loading after 5 s (--timeout 5); it was running learner.py:12"``.
        UsageError: ``seconds`` is negative.
    """
    if seconds is None or seconds == 0:
        yield
        return
    check_timeout(seconds)
    message = f"{where}: still {doing} after {_seconds(seconds)} (--timeout {seconds:g})"
    use_signal = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
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
