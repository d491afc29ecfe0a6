"""loopdoc's errors, and the one table that turns them into exit codes.

Library code raises them; only the command line (``loopdoc.cli.main``) exits. Each error's
message is one line that names the file (or argument) and the problem. ``EXIT_CODES`` maps
each class to its exit code; ``exit_code`` applies a command's own rule on top of it
(``diff`` exits 2 on any error, ``card`` never exits 1 on an error). This module imports nothing but ``typing``.
"""

from __future__ import annotations

from typing import Any, TypeVar, cast


class LoopdocError(Exception):
    """Base of every error loopdoc reports to a user. Exit code 1.

    Attributes:
        files: the user's own source files a failed load had read (absolute, sorted), when
            known: what a docs site watches so that fixing any of them loads again. ``()`` otherwise.
    """

    files: tuple[str, ...] = ()

    @property
    def exit_code(self) -> int:
        """This error's exit code, from ``EXIT_CODES`` (the nearest class in its MRO)."""
        return exit_code(self)


class UsageError(LoopdocError):
    """A bad command line: unknown format, malformed spec, missing argument. Exit code 2."""


_Named = TypeVar("_Named", bound="_NamingSpec")


class _NamingSpec:
    """``naming(spec)`` for the errors found where the spec is not known (an adapter's call checks, a recorder)."""

    files: tuple[str, ...]

    def naming(self: _Named, spec: str) -> _Named:
        """This error with its message prefixed by ``spec`` (``"examples/synth.py: --call …"``), unless it already is.

        Args:
            spec: the spec as the user gave it.

        Returns:
            An error of the same class (this one when its message starts with ``spec`` already), with the same ``files``.
        """
        message = str(self)
        if message.startswith(f"{spec}: "):
            return self
        error: _Named = cast(Any, type(self))(f"{spec}: {message}")  # an exception class: it takes the message
        error.files = self.files
        return error


class CallError(_NamingSpec, UsageError):
    """A bad ``--call`` (or a docs page's ``call:``). Exit code 2, like every bad command line.

    Every way a call can be wrong is this one class, whichever command and framework, and
    whenever it is found (before the learner loads, or once its arguments are evaluated in
    the learner's module): not Python, not a call of a loop method, an argument that fails
    to evaluate, arguments that do not bind to the method's signature, or a value the
    framework's own method refuses before its loop starts. The message is one line,
    ``SPEC: --call 'TEXT': PROBLEM`` (``loopdoc.resolve`` adds the spec; the library entry
    points, which have no spec, start at ``--call``).
    """


class LearnerNotFound(LoopdocError):
    """The file or module loaded, but did not yield exactly one trainer. Exit code 3."""


class LoadError(LoopdocError):
    """The trainer could not be loaded: missing file, syntax error, an exception, ``sys.exit`` or a crash while
    loading, or ``--timeout`` passed. Exit code 4."""


class RunError(_NamingSpec, LoadError):
    """The call ``loopdoc trace`` ran for real raised (in the user's code, a callback or the framework). Exit code 4.

    The same for every framework (``raised_while_running`` makes it). The message is one line,
    ``SPEC: --call 'TEXT': raised EXCEPTION while running: MESSAGE`` (``loopdoc.resolve`` adds the
    spec, as for a ``CallError``; the library entry points, which have no spec, start at ``--call``).
    """


def raised_while_running(call: str, error: BaseException) -> RunError:
    """The error for a traced call that raised ``error``: ``--call 'TEXT': raised EXCEPTION while running: MESSAGE``.

    Args:
        call: the call's text as given.
        error: what it raised; its message is put on one line (whitespace runs become one space).

    Returns:
        A ``RunError`` (the caller raises it ``from error``).
    """
    try:
        text = " ".join(str(error).split())
    except Exception:  # noqa: BLE001 - a message that cannot be shown must not hide the failure
        text = "(no message)"
    return RunError(f"--call {call!r}: raised {type(error).__name__} while running: {text}")


class ModelError(LoopdocError):
    """A saved loop model (``.json``) that breaks the schema or is from a newer major version. Exit code 3."""


class OutputError(LoopdocError):
    """The output could not be written, or must not be (it is an input). Exit code 5."""


class TemplateError(LoopdocError):
    """A Jinja template (typically one from ``--template-dir``) failed to load or render. Exit code 1.

    The message starts with the template's ``file:line`` when it is known.
    """


class CardError(LoopdocError):
    """A model card ``loopdoc card`` cannot edit: missing, not UTF-8, or broken loopdoc markers. Exit code 2."""


class Terminated(BaseException):  # noqa: N818 - a signal, like KeyboardInterrupt, not an error of the input
    """``SIGTERM`` or ``SIGHUP`` arrived while the command line ran (``loopdoc.cli`` raises it from the handler).

    A ``BaseException`` like ``KeyboardInterrupt``, so that cleanup in ``finally`` and
    ``except BaseException`` blocks runs (a half-written temporary file is removed) and no
    ``except Exception`` swallows it. Exit code ``128 + signum`` (143 for ``SIGTERM``, 129
    for ``SIGHUP``), the shell's convention for a process ended by a signal.

    Attributes:
        signum: the signal's number.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class InternalError(LoopdocError):
    """A bug in loopdoc or a library, reported in a child process: its message says ``internal error: …``. Exit code 1."""


EXIT_CODES: dict[type[BaseException], int] = {
    UsageError: 2,
    CallError: 2,
    CardError: 2,
    LearnerNotFound: 3,
    ModelError: 3,
    LoadError: 4,
    RunError: 4,
    OutputError: 5,
    TemplateError: 1,
    InternalError: 1,
    LoopdocError: 1,
    KeyboardInterrupt: 130,
}
"""Exit code per error class; an error takes the code of the nearest class of its MRO listed here (else 1)."""


def exit_code(error: BaseException, command: str | None = None) -> int:
    """The exit code for ``error`` raised by ``command``.

    Args:
        error: the exception (a ``LoopdocError``, ``KeyboardInterrupt``, ``Terminated``, or any other: a bug, code 1).
        command: the subcommand, for its own rule: ``"diff"`` exits 2 for every error but an
            interrupt (1 means "the loops differ"); ``"card"`` and ``"check"`` turn a code 1 into 2
            (1 means "stale" or "findings").

    Returns:
        The code: 130 for an interrupt, ``128 + signum`` for ``Terminated``, else from ``EXIT_CODES``, then the
        command's rule.
    """
    if isinstance(error, Terminated):
        return 128 + error.signum
    code = next((EXIT_CODES[k] for k in type(error).__mro__ if k in EXIT_CODES), 1)
    if code == 130:
        return code
    if command == "diff":
        return 2
    if command in ("card", "check"):
        return max(code, 2)
    return code
