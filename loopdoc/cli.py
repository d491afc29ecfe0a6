"""The ``loopdoc`` command line (argparse). Only ``main`` turns errors into exit codes.

    loopdoc render SPEC -o OUT [--format html|md|json|txt] [--title T] [--template-dir DIR] [--source-url URL]
    loopdoc show SPEC [--verbose]
    loopdoc trace SPEC [--call CALL] [--batches N] [-o OUT] [--diff-static]
    loopdoc diff OLD NEW [-o OUT] [--format txt|md|html|json] [--ignore WHAT]...
    loopdoc card SPEC CARD [--call CALL] [--check] [--title T] [--source-url URL]

SPEC is ``learner.py[:ATTR]``, ``package.module[:ATTR]`` or a saved ``loop.json``.

Every failure is one line ``Error: …`` on stderr and a non-zero exit code (see
``loopdoc.errors``; 2 for a bad command line, 130 when interrupted); ``--debug``
adds the traceback. A failed ``render`` never creates or changes the output file.
``diff`` exits 0 when the loops are the same, 1 when they differ and 2 on any error.
``card --check`` exits 0 when the card's section is current, 1 when it is missing or stale;
``card`` never exits 1 on an error (such an error exits 2 instead).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import sys
import threading
import traceback
import warnings
from pathlib import Path
from typing import Any, NoReturn

import jinja2

from . import __version__, load_loop
from .errors import LoopdocError, TemplateError, UsageError
from .limits import lingering_threads, time_limit
from .render import FORMATS, check_output, check_source_url, format_for, render, write_output

SPEC_HELP = "learner.py[:ATTR], package.module[:ATTR], or a saved loop.json"


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one line ``Error: …`` and exit code 2."""

    def error(self, message: str) -> NoReturn:
        """Print ``Error: PROG: MESSAGE (see PROG --help)`` on stderr and exit 2.

        Args:
            message: argparse's message.

        Raises:
            SystemExit: always, with code 2.
        """
        self.exit(2, f"Error: {self.prog}: {_one_line(message)} (see {self.prog} --help)\n")

    def format_help(self) -> str:
        """argparse's help, after filling in help texts deferred with ``_lazy_help`` (they import modules)."""
        for action in self._actions:
            lazy = getattr(action, "lazy_help", None)
            if lazy is not None:
                action.help = lazy()
        return super().format_help()


def _lazy_help(action: argparse.Action, make: Any) -> None:
    """Let ``action``'s help text be made only when help is shown: importing ``loopdoc.diff`` for it
    would cost every ``loopdoc render`` ~20 ms."""
    action.lazy_help = make  # type: ignore[attr-defined]


CALL_HELP = ("document the loop of this call instead of plain fit, e.g. 'fit_one_cycle(3, 1e-3)', 'fine_tune(2)', "
             "'get_preds()', 'fit(1, cbs=[MyCallback()])' (names from the learner's module); nothing is trained")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``loopdoc``: subcommands ``render``, ``show``, ``diff`` and ``card``.

    Returns:
        The parser; its usage errors print one line ``Error: …`` and exit 2.
    """
    parser = _Parser(prog="loopdoc",
                     description="Document a fastai training loop: phases, events and the callbacks that run at each.")
    parser.add_argument("--version", action="version", version=f"loopdoc {__version__}")
    parser.add_argument("--debug", action="store_true", dest="debug_top", help="show the full traceback on error")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show the full traceback on error")
    timeout = argparse.ArgumentParser(add_help=False)
    timeout.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                         help="give up (exit 4) if loading the learner and running the call take longer; default: no limit")
    loading = argparse.ArgumentParser(add_help=False)
    loading.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                         help="give up (exit 4) if loading the learner takes longer; default: no limit")
    loading.add_argument("--trust-pickle", action="store_true",
                         help="allow SPEC to be a learn.export() pickle (.pkl): unpickling runs any code the file "
                              "contains, so pass this only for files you trust")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("render", parents=[common, loading], help="write the loop as HTML, Markdown, JSON or text")
    p.add_argument("spec", metavar="SPEC", help=SPEC_HELP)
    p.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="output file (format from its extension), or - for stdout")
    p.add_argument("--format", choices=FORMATS, help="output format, overriding the extension")
    p.add_argument("--title", help="page title (default: 'Training loop of SPEC')")
    p.add_argument("--template-dir", metavar="DIR", help="folder of Jinja templates searched before loopdoc's own")
    p.add_argument("--source-url", metavar="URL",
                   help="link source locations (html, md), e.g. 'https://github.com/ORG/REPO/blob/main/{path}#L{line}'; "
                        "links relative paths outside the framework's own packages")
    p.add_argument("--verbose", action="store_true", help="text format: add docstrings and steps")
    p.add_argument("--call", metavar="CALL", help=CALL_HELP)

    s = sub.add_parser("show", parents=[common, loading], help="print the loop as a tree in the terminal")
    s.add_argument("spec", metavar="SPEC", help=SPEC_HELP)
    s.add_argument("--verbose", "-v", action="store_true", help="add each callback method's docstring and the steps")
    s.add_argument("--call", metavar="CALL", help=CALL_HELP)

    t = sub.add_parser("trace", parents=[common, timeout], help="run a call for real (capped) and record events, callbacks and time",
                       description="Run the call on the learner for real, at most --batches batches per loop, and record "
                                   "every event fired, the callbacks whose methods ran, how often and how long. This trains "
                                   "the learner (in this process only; nothing is saved).")
    t.add_argument("spec", metavar="SPEC", help="learner.py[:ATTR] or package.module[:ATTR]")
    t.add_argument("--call", metavar="CALL", default="fit(1)", help="the call to run (default: fit(1))")
    t.add_argument("--batches", type=int, default=3, metavar="N", help="at most N batches per batch loop (default: 3)")
    t.add_argument("-o", "--output", default="-", metavar="OUT",
                   help="output file (format from its extension: .html, .md, .json, .txt); default - (text to stdout)")
    t.add_argument("--format", choices=FORMATS, help="output format, overriding the extension")
    t.add_argument("--diff-static", action="store_true",
                   help="say where the run differed from the static model (events never fired, callbacks that never ran)")
    t.add_argument("--verbose", action="store_true", help="text format: add docstrings and steps")

    d = sub.add_parser("diff", parents=[common], help="compare two loops; exit 0 same, 1 different, 2 error",
                       description="Compare two training loops event by event: callbacks added, removed, moved in the "
                                   "run order, flags, docstrings, and the learner's settings. Exit code 0 when the loops "
                                   "are the same, 1 when they differ, 2 on any error.")
    d.add_argument("old", metavar="OLD", help=f"{SPEC_HELP}, or git:REV:PATH.py[:ATTR] (the file at a git revision)")
    d.add_argument("new", metavar="NEW", help="as OLD")
    d.add_argument("-o", "--output", default="-", metavar="OUT",
                   help="output file (format from its extension: .txt, .md, .html, .json); default - (the terminal)")
    d.add_argument("--format", choices=FORMATS, help="output format, overriding the extension")
    _lazy_help(d.add_argument("--ignore", action="append", default=[], metavar="WHAT"), _ignore_help)

    k = sub.add_parser("card", parents=[common], help="write or update the Training loop section of a model card",
                       description="Write or update a 'Training loop' section between <!-- loopdoc:start --> and "
                                   "<!-- loopdoc:end --> in an existing Markdown file (a Hugging Face README.md), keeping "
                                   "every other byte. A new section goes at the end of the 'Training procedure' section, "
                                   "else at the end. With --check: write nothing, exit 0 when current, 1 when missing or stale.")
    k.add_argument("spec", metavar="SPEC", help=SPEC_HELP)
    k.add_argument("card", metavar="CARD", help="the Markdown file to update, e.g. README.md; it must exist")
    k.add_argument("--call", metavar="CALL", help=CALL_HELP)
    k.add_argument("--check", action="store_true", help="write nothing; exit 1 when the section is missing or stale (for CI)")
    k.add_argument("--title", default="Training loop", help="the section's heading (default: %(default)s)")
    k.add_argument("--source-url", metavar="URL", help="link source locations, as for render")
    return parser


def _no_waiting_for_user_threads(run: Any) -> Any:
    """Wrap ``main``: when the user's code left non-daemon threads running, end the process without waiting.

    Python waits for every non-daemon thread at exit, forever for one that never ends.
    loopdoc has written its output by then, so ``main`` flushes stdout and stderr and ends
    the process with ``os._exit(code)`` (atexit hooks do not run); otherwise it returns.
    """
    @functools.wraps(run)
    def main(argv: list[str] | None = None) -> int:
        before = threading.enumerate()
        code = run(argv)
        if lingering_threads(before):
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            os._exit(code)
        return code

    return main


def _ignore_help() -> str:
    from .diff import IGNORABLE

    return f"leave out of the comparison (repeat, or separate with commas): {', '.join(IGNORABLE)}"


@_no_waiting_for_user_threads
def main(argv: list[str] | None = None) -> int:
    """Run the command line.

    Args:
        argv: arguments without the program name; ``sys.argv[1:]`` when ``None``.

    Returns:
        The exit code: 0 on success; on failure one line ``Error: …`` on
        stderr (after the traceback with ``--debug``) and the error's
        ``exit_code`` for a loopdoc error, 130 when interrupted, 1 for an
        unexpected exception (a bug: the line says so). When the learner's code
        left non-daemon threads running, the process ends instead of returning
        (``os._exit`` with that code, after flushing), since Python would wait
        for those threads at exit.

    Raises:
        SystemExit: a bad command line (code 2, one line ``Error: …``), ``--help`` or ``--version`` (code 0).
    """
    args = build_parser().parse_args(argv)
    debug = args.debug or args.debug_top
    if not debug:  # torch and fastai warn about their own deprecations on import; not the user's concern
        for category in (FutureWarning, DeprecationWarning, UserWarning):
            warnings.filterwarnings("ignore", category=category, module=r"(torch|fastai|fastcore|fasttransform|plum)(\.|$)")
    if args.command == "diff":
        return _diff_command(args, debug)
    if args.command == "card":
        return _card_command(args, debug)
    try:
        if args.command == "render":
            _render_command(args)
        elif args.command == "trace":
            _trace_command(args)
        else:
            write_output(render(_load_loop(args), "txt", verbose=args.verbose), "-")
    except LoopdocError as e:
        return _fail(str(e), e.exit_code, debug)
    except KeyboardInterrupt:
        return _fail("interrupted", 130, debug)
    except Exception as e:  # a bug in loopdoc or a library: still one line, the traceback with --debug
        hint = "" if debug else "; rerun with --debug for the traceback"
        return _fail(f"internal error: {type(e).__name__}: {_message(e)}{hint}", 1, debug)
    return 0


def _diff_command(args: argparse.Namespace, debug: bool) -> int:
    """``loopdoc diff``: 0 when the loops are the same, 1 when they differ, 2 on ANY error.

    Unlike the other commands, every failure exits 2 (a loopdoc error of any kind,
    a broken template, a bug), so that 1 always means "the loops differ" and
    the command can gate CI; 130 when interrupted.
    """
    from .diff import diff_loops, parse_ignore
    from .render import render_diff
    from .sides import load_sides

    try:
        fmt = format_for(args.output, args.format)
        if args.output != "-":
            check_output(args.output)
        ignore = parse_ignore(args.ignore)
        old, new = load_sides(args.old, args.new, debug=debug)
        diff = diff_loops(old, new, ignore)
        color = fmt == "txt" and args.output == "-" and _use_color(sys.stdout, os.environ)
        write_output(render_diff(diff, fmt, color=color), args.output)
        return 0 if diff.same else 1
    except LoopdocError as e:
        return _fail(str(e), 2, debug)
    except KeyboardInterrupt:
        return _fail("interrupted", 130, debug)
    except Exception as e:  # a bug or a broken template: still exit 2, never 1
        hint = "" if debug else "; rerun with --debug for the traceback"
        return _fail(f"internal error: {type(e).__name__}: {_message(e)}{hint}", 2, debug)


def _card_command(args: argparse.Namespace, debug: bool) -> int:
    """``loopdoc card``: 0 written or current, 1 (only with ``--check``) missing or stale; an error never exits 1.

    A loopdoc error keeps its exit code, except that code 1 (a template error) becomes 2,
    as does a bug; 130 when interrupted. The outcome is one line on stderr.
    """
    from .card import card_command

    try:
        code, message = card_command(args.spec, args.card, call=args.call, check=args.check, title=args.title,
                                     source_url=args.source_url)
    except LoopdocError as e:
        return _fail(str(e), max(e.exit_code, 2), debug)
    except KeyboardInterrupt:
        return _fail("interrupted", 130, debug)
    except Exception as e:  # a bug or a broken template: exit 2, never 1 (1 means stale)
        hint = "" if debug else "; rerun with --debug for the traceback"
        return _fail(f"internal error: {type(e).__name__}: {_message(e)}{hint}", 2, debug)
    print(("" if code == 0 else "Error: ") + message, file=sys.stderr)
    return code


def _use_color(stream: Any, environ: Any) -> bool:
    """Colour the terminal diff: ``stream`` is a terminal and ``NO_COLOR`` is unset or empty (https://no-color.org)."""
    if environ.get("NO_COLOR"):
        return False
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def _trace_command(args: argparse.Namespace) -> None:
    """``loopdoc trace``: checks that need no learner first, then load, model, run, write."""
    from . import trace_learner

    fmt = format_for(args.output, args.format)
    if args.output != "-":
        check_output(args.output)
    if args.batches < 1:
        raise UsageError(f"--batches {args.batches}: must be at least 1")
    with time_limit(args.timeout, args.spec, doing="running", hard=True):
        result = trace_learner(args.spec, args.call, batches=args.batches)
    write_output(render(result, fmt, verbose=args.verbose, show_differences=args.diff_static), args.output)


def _render_command(args: argparse.Namespace) -> None:
    """``loopdoc render``: every check that needs no learner runs before loading it."""
    fmt = format_for(args.output, args.format)
    if args.output != "-":
        check_output(args.output)
    if args.template_dir is not None and not Path(args.template_dir).is_dir():
        raise UsageError(f"{args.template_dir}: template folder not found (--template-dir)")
    if args.source_url is not None:
        check_source_url(args.source_url)
    loop = _load_loop(args)
    try:
        text = render(loop, fmt, verbose=args.verbose, title=args.title, template_dir=args.template_dir,
                      source_url=args.source_url)
    except LoopdocError:
        raise
    except Exception as e:
        error = _template_error(e)
        if error is None:
            raise
        raise error from e
    write_output(text, args.output)


def _load_loop(args: argparse.Namespace) -> Any:
    """``load_loop`` for ``render`` and ``show``, within ``--timeout`` (``loopdoc.limits.time_limit``)."""
    with time_limit(args.timeout, args.spec, hard=True):
        return load_loop(args.spec, args.call, trust_pickle=args.trust_pickle)


def _template_error(exc: Exception) -> TemplateError | None:
    """A one-line ``TemplateError`` naming the template's ``file:line`` for an error raised by a template, else ``None``.

    Covers ``jinja2.TemplateError`` (syntax error, template not found,
    undefined variable) and any other exception raised while a template's code runs.
    """
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if _is_template_file(f.filename)]
    if isinstance(exc, jinja2.TemplateNotFound) and not frames:  # loopdoc asked for it, no template did
        return TemplateError(f"{exc.name}: template not found: {_message(exc)}")
    if isinstance(exc, jinja2.TemplateSyntaxError) and exc.filename:
        where = f"{_show(exc.filename)}:{exc.lineno}"
    elif frames:
        where = f"{_show(frames[-1].filename)}:{frames[-1].lineno}"
    elif isinstance(exc, jinja2.TemplateError):
        where = "template"
    else:
        return None
    if isinstance(exc, jinja2.TemplateNotFound):
        problem = f"template {exc.name!r} not found"
    elif isinstance(exc, jinja2.TemplateSyntaxError):
        problem = f"template syntax error: {_message(exc)}"
    elif isinstance(exc, jinja2.TemplateError):
        problem = f"template error: {_message(exc)}"
    else:
        problem = f"template error: {type(exc).__name__}: {_message(exc)}"
    return TemplateError(f"{where}: {problem}")


def _is_template_file(filename: str) -> bool:
    """Jinja rewrites tracebacks so that template code shows as frames of the template file."""
    return not filename.endswith((".py", ".pyc")) and not filename.startswith("<") and os.path.isfile(filename)


def _show(filename: str) -> str:
    from .paths import display_path

    return display_path(filename)


def _message(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:  # a broken __str__ must not hide the real error
        text = ""
    return _one_line(text) or "(no message)"


def _one_line(text: Any) -> str:
    return " ".join(str(text).split())


def _fail(message: str, code: int, debug: bool) -> int:
    if debug:
        traceback.print_exc()
    print(f"Error: {_one_line(message)}", file=sys.stderr)
    return code
