"""Signals the command line has received, remembered so that none is lost.

A ``SIGINT`` (or ``SIGTERM``/``SIGHUP``) handler raises its exception wherever Python is,
and Python sometimes swallows it there: raised inside a weakref callback, a ``__del__`` or
the import system's lock clean-up, it is printed as "Exception ignored" and dropped. Then a
Ctrl-C would be lost while loopdoc waits for a worker. So ``loopdoc.cli`` notes each signal
here as well (``note``), and the places that wait or are about to write call
``raise_if_received``. Imports nothing.
"""

from __future__ import annotations

_received: list[int] = []

SIGINT = 2  # signal.SIGINT on every platform Python runs on (POSIX and Windows)


def note(signum: int) -> None:
    """Remember that ``signum`` arrived (called from the signal handler, before it raises).

    Args:
        signum: the signal's number.
    """
    _received.append(signum)


def raise_if_received() -> None:
    """Raise the exception of the first signal noted (once per signal), in case the handler's was swallowed.

    Raises:
        KeyboardInterrupt: a ``SIGINT`` was noted.
        loopdoc.errors.Terminated: a ``SIGTERM`` or ``SIGHUP`` was noted.
    """
    if not _received:
        return
    signum = _received[0]
    _received.clear()
    if signum == SIGINT:
        raise KeyboardInterrupt
    from .errors import Terminated

    raise Terminated(signum)


def clear() -> None:
    """Forget the signals noted (the command has reported them)."""
    _received.clear()
