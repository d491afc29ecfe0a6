"""loopdoc's errors. Library code raises them; only ``loopdoc.cli.main`` turns them into exit codes.

Each error's message is one line that names the file (or argument) and the problem.
Exit codes: 1 any other loopdoc error (e.g. ``TemplateError``), 2 ``UsageError`` (and
argparse's own usage errors) and ``CardError``, 3 ``LearnerNotFound`` and ``ModelError``, 4 ``LoadError``,
5 ``OutputError``.
"""

from __future__ import annotations


class LoopdocError(Exception):
    """Base of every error loopdoc reports to a user. Exit code 1."""

    exit_code = 1


class UsageError(LoopdocError):
    """A bad command line: unknown format, malformed spec, missing argument. Exit code 2."""

    exit_code = 2


class LearnerNotFound(LoopdocError):
    """The file or module loaded, but did not yield exactly one ``Learner``. Exit code 3."""

    exit_code = 3


class LoadError(LoopdocError):
    """The learner could not be loaded: missing file, syntax error, an exception or ``sys.exit`` while loading. Exit code 4."""

    exit_code = 4


class ModelError(LoopdocError):
    """A saved loop model (``.json``) that breaks the schema or is from a newer major version. Exit code 3."""

    exit_code = 3


class OutputError(LoopdocError):
    """The output could not be written. Exit code 5."""

    exit_code = 5


class TemplateError(LoopdocError):
    """A Jinja template (typically one from ``--template-dir``) failed to load or render. Exit code 1.

    The message starts with the template's ``file:line`` when it is known.
    """

    exit_code = 1


class CardError(LoopdocError):
    """A model card ``loopdoc card`` cannot edit: missing, not UTF-8, or broken loopdoc markers. Exit code 2."""

    exit_code = 2
