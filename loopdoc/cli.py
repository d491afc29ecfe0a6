"""The ``loopdoc`` command line (argparse). Only ``main`` turns errors into exit codes.

    loopdoc render SPEC -o OUT [--format html|md|json|txt|svg] [--title T] [--template-dir DIR] [--source-url URL] [--assets DIR] [--watch] [--force]
    loopdoc show SPEC [--verbose] [--color auto|always|never]
    loopdoc trace SPEC [--call CALL] [--batches N] [-o OUT] [--diff-static] [--verbose] [--force]
    loopdoc diff OLD NEW [-o OUT] [--format txt|md|html|json] [--ignore WHAT]... [--strict-source] [--force]
    loopdoc card SPEC CARD [--call CALL] [--check] [--title T] [--mode compact|full] [--source-url URL] [--assets DIR] [--force]
    loopdoc check SPEC... [--call CALL] [--format text|json|github] [--select CODES] [--ignore CODES] [--fail-on LEVEL]

SPEC is ``learner.py[:ATTR]``, ``package.module[:ATTR]`` or a saved ``loop.json``.

Every failure is one line ``Error: …`` on stderr and a non-zero exit code (see
``loopdoc.errors``; 2 for a bad command line, 130 when interrupted); ``--debug``
adds the traceback. A failed ``render`` never creates or changes the output file, and no
output ever overwrites one of the command's inputs, nor a ``.py`` file without ``--force``
(``loopdoc.rendering.output.refuse_overwrite``).
``diff`` exits 0 when the loops are the same, 1 when they differ and 2 on any error.
``card --check`` exits 0 when the card's section is current, 1 when it is missing or stale;
``card`` never exits 1 on an error (such an error exits 2 instead). ``check`` exits 0 when no
finding is at or above ``--fail-on``, 1 when one is, and 2 or more when a spec failed to load
(every spec is still checked; the highest code wins).
"""

from __future__ import annotations

from . import _interrupted_while_starting

try:  # a Ctrl-C while starting: "Error: interrupted", exit 130 (see loopdoc/__init__.py)
    import argparse
    import contextlib
    import os
    import signal
    import sys
    import threading
    import traceback
    from collections.abc import Iterator
    from pathlib import Path
    from typing import Any, NoReturn

    from . import __version__, interrupts
    from .errors import LoopdocError, Terminated, UsageError, exit_code
    from .model.loop import LEVELS
    from .progress import reporting, wanted
    from .rendering.check import CHECK_FORMATS
    from .rendering.documents import render
    from .rendering.links import check_source_url
    from .rendering.output import FORMATS, check_output, files_under, format_for, refuse_overwrite, write_output
except KeyboardInterrupt:
    _interrupted_while_starting()
    raise

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
        prog = getattr(self, "_erring_prog", self.prog)
        self.exit(2, f"Error: {prog}: {_one_line(message)} (see {prog} --help)\n")

    def parse_args(self, args: Any = None, namespace: Any = None) -> argparse.Namespace:  # type: ignore[override]
        """argparse's ``parse_args``, except that arguments no parser knows are blamed on the subcommand given.

        argparse reports ``unrecognized arguments`` from the top-level parser even when they follow a
        subcommand; the message then points to ``loopdoc render --help``, where the options are listed.

        Args:
            args: the arguments (``None``: ``sys.argv[1:]``).
            namespace: the namespace to fill, or ``None``.

        Returns:
            The parsed arguments.

        Raises:
            SystemExit: a usage error (code 2, one line ``Error: …``; ``error``), or ``--help``/``--version`` (0).
        """
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            command = getattr(parsed, "command", None)
            self._erring_prog = f"{self.prog} {command}" if command else self.prog
            try:
                self.error(f"unrecognized arguments: {' '.join(extras)}")
            finally:
                del self._erring_prog
        return parsed

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


ASSETS_HELP = ("Markdown: write the matrix as DIR/<name>-matrix.svg and show that image instead of the inline table "
               "(for hosts that allow SVG images)")
CALL_HELP = ("the call whose loop to document, e.g. 'fit_one_cycle(3, 1e-3)' (fastai), 'validate()' (Lightning), "
             "'evaluate()' (Hugging Face); arguments may use names from the learner's module; default: the framework's "
             "own call (fastai and Lightning: fit, Hugging Face: train()); nothing is trained")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser of ``loopdoc``: subcommands ``render``, ``show``, ``trace``, ``diff``, ``card`` and ``check``.

    Args:
        command: build only this subcommand's parser (``main`` passes the command it was given: the others
            cost milliseconds of every run and parse nothing); ``None`` or an unknown name: all of them, for the
            top-level help and its "invalid choice" error.

    Returns:
        The parser; its usage errors print one line ``Error: …`` and exit 2.
    """
    parser = _Parser(prog="loopdoc",
                     description="Document a training loop (fastai, PyTorch Lightning, Hugging Face Trainer): "
                                 "phases, events and the callbacks that run at each.")
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
    quieting = argparse.ArgumentParser(add_help=False)
    quieting.add_argument("--quiet", "-q", action="store_true",
                          help="no progress line while loading (shown only when stderr is a terminal)")
    coloring = argparse.ArgumentParser(add_help=False)
    coloring.add_argument("--color", choices=("auto", "always", "never"), default="auto",
                          help="colour terminal text: auto (the default) when stdout is a terminal and NO_COLOR is "
                               "unset or empty, always, or never")
    force = argparse.ArgumentParser(add_help=False)
    force.add_argument("--force", action="store_true",
                       help="allow the output to be a .py file (an input of the command is refused even so)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")  # none: main prints the help (exit 2)
    parents = {"common": common, "loading": loading, "timeout": timeout, "quieting": quieting,
               "coloring": coloring, "force": force}
    for name, add in _SUBCOMMANDS.items():
        if command == name or command not in _SUBCOMMANDS:
            add(sub, parents)
    return parser


def _add_render(sub: Any, parents: dict[str, argparse.ArgumentParser]) -> None:
    """Add ``loopdoc render``'s parser to ``sub`` (``build_parser``)."""
    p = sub.add_parser("render", parents=[parents[n] for n in ("common", "loading", "quieting", "force")],
                       help="write the loop as HTML, Markdown, JSON, text or an SVG matrix")
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
    p.add_argument("--assets", metavar="DIR", help=ASSETS_HELP)
    p.add_argument("--watch", action="store_true",
                   help="render again whenever the learner's files change (the learner file and the modules beside it "
                        "that it imports); Ctrl-C stops, exit 0. Needs watchfiles (pip install 'loopdoc[watch]')")


def _add_show(sub: Any, parents: dict[str, argparse.ArgumentParser]) -> None:
    """Add ``loopdoc show``'s parser to ``sub`` (``build_parser``)."""
    s = sub.add_parser("show", parents=[parents[n] for n in ("common", "loading", "quieting", "coloring")],
                       help="print the loop as a tree in the terminal")
    s.add_argument("spec", metavar="SPEC", help=SPEC_HELP)
    s.add_argument("--verbose", "-v", action="store_true", help="add each callback method's docstring and the steps")
    s.add_argument("--call", metavar="CALL", help=CALL_HELP)


def _add_trace(sub: Any, parents: dict[str, argparse.ArgumentParser]) -> None:
    """Add ``loopdoc trace``'s parser to ``sub`` (``build_parser``)."""
    t = sub.add_parser("trace", parents=[parents[n] for n in ("common", "timeout", "quieting", "coloring", "force")],
                       help="run a call for real (capped) and record events, callbacks and time",
                       description="Run the call on the learner for real, at most --batches batches per loop, and record "
                                   "every event fired, the callbacks whose methods ran, how often and how long. This trains "
                                   "the learner (in this process only; nothing is saved: its path points to a temporary folder, removed "
                                   "afterwards).")
    t.add_argument("spec", metavar="SPEC", help="learner.py[:ATTR] or package.module[:ATTR]")
    t.add_argument("--call", metavar="CALL", default=None,
                   help="the call to run (default: the framework's own: fit(1) for fastai; Lightning: fit with the module's "
                        "objects; train() for a Hugging Face Trainer)")
    t.add_argument("--batches", type=int, default=3, metavar="N", help="at most N batches per batch loop (default: 3)")
    t.add_argument("-o", "--output", default="-", metavar="OUT",
                   help="output file (format from its extension: .html, .md, .json, .txt); default - (text to stdout)")
    t.add_argument("--format", choices=FORMATS, help="output format, overriding the extension")
    t.add_argument("--diff-static", action="store_true",
                   help="say where the run differed from the static model (events never fired, callbacks that never ran)")
    t.add_argument("--verbose", action="store_true",
                   help="text format: add docstrings and steps; and show the run's own output (progress bars) on stderr")


def _add_diff(sub: Any, parents: dict[str, argparse.ArgumentParser]) -> None:
    """Add ``loopdoc diff``'s parser to ``sub`` (``build_parser``)."""
    d = sub.add_parser("diff", parents=[parents[n] for n in ("common", "quieting", "coloring", "force")],
                       help="compare two loops; exit 0 same, 1 different, 2 error",
                       description="Compare two training loops event by event: callbacks added, removed, moved in the "
                                   "run order, flags, docstrings, and the learner's settings. Exit code 0 when the loops "
                                   "are the same, 1 when they differ, 2 on any error.")
    d.add_argument("old", metavar="OLD", help=f"{SPEC_HELP}, or git:REV:PATH.py[:ATTR] (the file at a git revision)")
    d.add_argument("new", metavar="NEW", help="as OLD")
    d.add_argument("-o", "--output", default="-", metavar="OUT",
                   help="output file (format from its extension: .txt, .md, .html, .json); default - (the terminal)")
    d.add_argument("--format", choices=FORMATS, help="output format, overriding the extension")
    _lazy_help(d.add_argument("--ignore", action="append", default=[], metavar="WHAT"), _ignore_help)
    d.add_argument("--strict-source", action="store_true",
                   help="also report source line numbers that changed (by default code that only moved down a file is no change)")


def _add_card(sub: Any, parents: dict[str, argparse.ArgumentParser]) -> None:
    """Add ``loopdoc card``'s parser to ``sub`` (``build_parser``)."""
    k = sub.add_parser("card", parents=[parents[n] for n in ("common", "quieting", "force")],
                       help="write or update the Training loop section of a model card",
                       description="Write or update a 'Training loop' section between <!-- loopdoc:start --> and "
                                   "<!-- loopdoc:end --> in an existing Markdown file (a Hugging Face README.md), keeping "
                                   "every other byte. A new section goes at the end of the 'Training procedure' section, "
                                   "else at the end. With --check: write nothing, exit 0 when current, 1 when missing or stale.")
    k.add_argument("spec", metavar="SPEC", help=SPEC_HELP)
    k.add_argument("card", metavar="CARD", help="the Markdown file to update, e.g. README.md; it must exist")
    k.add_argument("--call", metavar="CALL", help=CALL_HELP)
    k.add_argument("--check", action="store_true", help="write nothing; exit 1 when the section is missing or stale (for CI)")
    k.add_argument("--title", help="the section's heading (default: the one recorded in the card, else 'Training loop')")
    k.add_argument("--mode", choices=("compact", "full"),
                   help="compact: the callbacks, the matrix and the loop folded in <details>; full: the whole Markdown format "
                        "(default: the one recorded in the card, else compact)")
    k.add_argument("--source-url", metavar="URL", help="link source locations, as for render")
    k.add_argument("--assets", metavar="DIR", help=ASSETS_HELP)


def _add_check(sub: Any, parents: dict[str, argparse.ArgumentParser]) -> None:
    """Add ``loopdoc check``'s parser to ``sub`` (``build_parser``)."""
    c = sub.add_parser("check", parents=[parents[n] for n in ("common", "loading")],
                       help="find handlers that never run and setups that surprise; "
                                                                "exit 0 clean, 1 findings, 2+ error",
                       description="Check each learner for callback methods the framework never calls (old or mistyped "
                                   "event names), objects in the callbacks that are not callbacks, callbacks attached "
                                   "twice, flags that do not do what they seem to, and order ties. One line per finding: "
                                   "file:line:col: CODE message. Exit 0 when no finding is at or above --fail-on, 1 when "
                                   "one is, 2 or more when a learner fails to load.")
    c.add_argument("specs", nargs="+", metavar="SPEC", help=SPEC_HELP + " (several allowed)")
    c.add_argument("--call", metavar="CALL", help=CALL_HELP)
    c.add_argument("--format", choices=CHECK_FORMATS, default="text",
                   help="text (file:line:col: CODE message), json (a versioned report) or github "
                        "(GitHub Actions annotations); default: text")
    _lazy_help(c.add_argument("--select", action="append", default=[], metavar="CODES"),
               lambda: "report only these codes or prefixes (repeat, or separate with commas): " + _rule_list())
    c.add_argument("--ignore", action="append", default=[], metavar="CODES",
                   help="leave out these codes or prefixes (repeat, or separate with commas); a longer --select wins")
    c.add_argument("--fail-on", choices=LEVELS, default="warning",
                   help="exit 1 when a finding is at this level or above (info < warning < error); default: warning")


_SUBCOMMANDS = {"render": _add_render, "show": _add_show, "trace": _add_trace, "diff": _add_diff, "card": _add_card, "check": _add_check}
"""Each subcommand's parser builder, in the order ``loopdoc --help`` lists them."""


def _rule_list() -> str:
    """``LD101 (warning), …``: each code with its level, and a framework's own level where it differs
    (``LD201 (warning; lightning: error)``)."""
    from .adapters.registry import adapters
    from .analysis.lint import adapter_rules, every_rule

    others: dict[str, list[str]] = {}
    for rule in every_rule():
        for a in adapters():
            own = next((r for r in adapter_rules(a) if r.code == rule.code), None)
            if own is not None and own.level != rule.level:
                others.setdefault(rule.code, []).append(f"{a.name}: {own.level}")
    return ", ".join(f"{r.code} ({'; '.join([r.level, *others.get(r.code, [])])})" for r in every_rule()) + (
        "; the README says what each finds")


def _ignore_help() -> str:
    from .diff import IGNORABLE

    return f"leave out of the comparison (repeat, or separate with commas): {', '.join(IGNORABLE)}"


def main(argv: list[str] | None = None) -> int:
    """Run the command line.

    While it runs, ``SIGTERM`` and ``SIGHUP`` raise ``loopdoc.errors.Terminated`` (so a
    half-written temporary file is removed and a worker is stopped, as for Ctrl-C); the
    previous handlers are put back afterwards. Run as the program (``argv`` is ``None``), a
    Ctrl-C after the exit code is known is ignored, so it cannot turn into a traceback.

    Args:
        argv: arguments without the program name; ``sys.argv[1:]`` when ``None``.

    Returns:
        The exit code: 2 with the help on stderr when no command is given (``loopdoc`` alone: a
        script that runs ``loopdoc $EMPTY`` must not pass); 0 on success; 1 when ``diff`` finds differences or ``card --check`` a
        stale section; on failure one line ``Error: …`` on stderr (after the traceback with
        ``--debug``) and the code ``loopdoc.errors.exit_code`` gives for the error and the
        command (130 when interrupted, 143/129 for SIGTERM/SIGHUP; 1 for an unexpected
        exception, a bug, which the line says).

    Raises:
        SystemExit: a bad command line (code 2, one line ``Error: …``), ``--help`` or ``--version`` (code 0).
    """
    command, debug = None, False
    try:
        with _signals_raise():
            try:
                parser = build_parser(_command_in(sys.argv[1:] if argv is None else argv))
                args = parser.parse_args(argv)
                if args.command is None:  # `loopdoc` alone: the whole help, not argparse's one-line error; still a usage error
                    sys.stderr.write(parser.format_help())
                    return 2
                command = args.command
                args.debug = debug = args.debug or args.debug_top
                with reporting(wanted(sys.stderr, quiet=getattr(args, "quiet", True))):  # a command without --quiet loads nothing
                    return COMMANDS[args.command](args)
            except (Exception, KeyboardInterrupt, Terminated) as e:
                if isinstance(e, LoopdocError):
                    message = str(e)
                elif isinstance(e, KeyboardInterrupt):
                    message = "interrupted"
                elif isinstance(e, Terminated):
                    message = f"terminated by {signal.Signals(e.signum).name}"
                else:  # a bug in loopdoc or a library: still one line, the traceback with --debug
                    message = f"internal error: {type(e).__name__}: {_message(e)}" + ("" if debug else "; rerun with --debug for the traceback")
                if debug:
                    traceback.print_exc()
                print(f"Error: {_one_line(message)}", file=sys.stderr)
                return exit_code(e, command)
    finally:
        if argv is None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # the program is ending: no traceback from a late Ctrl-C


def _command_in(argv: list[str]) -> str | None:
    """The subcommand ``argv`` names: its first word that is no option (the top-level options take no value), or ``None``."""
    return next((a for a in argv if not a.startswith("-")), None)


@contextlib.contextmanager
def _signals_raise() -> Iterator[None]:
    """Inside the block ``SIGINT`` raises ``KeyboardInterrupt`` and ``SIGTERM``/``SIGHUP`` raise ``Terminated``,
    each also noted in ``loopdoc.interrupts`` so that one Python swallows is raised again where loopdoc waits
    (main thread only; elsewhere nothing changes)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        interrupts.note(signum)
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise Terminated(signum)

    names = [name for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)]
    previous = {}
    for name in names:
        if name == "SIGINT" and signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
            continue  # Ctrl-C is someone else's (ignored, or a host's own handler): leave it
        previous[name] = signal.signal(getattr(signal, name), handler)
    try:
        yield
    finally:
        for name, old in previous.items():
            signal.signal(getattr(signal, name), old if old is not None else signal.SIG_DFL)
        interrupts.clear()


def _diff_command(args: argparse.Namespace) -> int:
    """``loopdoc diff``: 0 when the loops are the same, 1 when they differ (every error exits 2: ``exit_code``)."""
    from .analysis.diff import diff_loops, parse_ignore
    from .rendering.documents import render_diff
    from .resolve import spec_files, start

    fmt = format_for(args.output, args.format)
    if args.output != "-":
        check_output(args.output)
    refuse_overwrite(args.output, [*spec_files(args.old), *spec_files(args.new)], force=args.force)
    ignore = parse_ignore(args.ignore)
    with start(args.old, debug=args.debug) as old, start(args.new, debug=args.debug) as new:
        a, b = old.result(), new.result()
    refuse_overwrite(args.output, [*a.files, *b.files], force=args.force)
    diff = diff_loops(a.document, b.document, ignore, strict_source=args.strict_source)
    color = fmt == "txt" and args.output == "-" and _want_color(args.color, sys.stdout, os.environ)
    write_output(render_diff(diff, fmt, color=color), args.output)
    return 0 if diff.same else 1


def _card_command(args: argparse.Namespace) -> int:
    """``loopdoc card``: 0 written or current, 1 (only with ``--check``) missing or stale; errors exit 2 or more."""
    from .card import card_command

    result = card_command(args.spec, args.card, call=args.call, check=args.check, title=args.title,
                          source_url=args.source_url, mode=args.mode, assets=args.assets, force=args.force)
    print(("Error: " if result.stale else "") + result.message, file=sys.stderr)
    return 1 if result.stale else 0


def _show_command(args: argparse.Namespace) -> int:
    """``loopdoc show``: the text tree on stdout, coloured as ``--color`` says (``_want_color``)."""
    color = _want_color(args.color, sys.stdout, os.environ)
    write_output(render(_load_loop(args), "txt", verbose=args.verbose, color=color), "-")
    return 0


def _want_color(choice: str, stream: Any, environ: Any) -> bool:
    """``--color``: ``always``, ``never``, or ``auto`` = ``_use_color`` (a terminal, ``NO_COLOR`` unset or empty).

    The command-line flag overrides ``NO_COLOR``, as https://no-color.org asks.
    """
    return True if choice == "always" else False if choice == "never" else _use_color(stream, environ)


def _use_color(stream: Any, environ: Any) -> bool:
    """Colour the terminal diff: ``stream`` is a terminal and ``NO_COLOR`` is unset or empty (https://no-color.org)."""
    if environ.get("NO_COLOR"):
        return False
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def _trace_command(args: argparse.Namespace) -> int:
    """``loopdoc trace``: checks that need no learner first, then load, model, run (in a worker), write."""
    from .resolve import resolve_trace, spec_files

    fmt = format_for(args.output, args.format)
    if args.output != "-":
        check_output(args.output)
    refuse_overwrite(args.output, spec_files(args.spec), force=args.force)
    if args.batches < 1:
        raise UsageError(f"--batches {args.batches}: must be at least 1")
    result = resolve_trace(args.spec, args.call, batches=args.batches, timeout=args.timeout, debug=args.debug,
                           verbose=args.verbose)
    refuse_overwrite(args.output, result.files, force=args.force)
    color = fmt == "txt" and args.output == "-" and _want_color(args.color, sys.stdout, os.environ)
    write_output(render(result.document, fmt, verbose=args.verbose, show_differences=args.diff_static, color=color),
                 args.output)
    return 0


def _render_command(args: argparse.Namespace) -> int:
    """``loopdoc render``: every check that needs no learner runs before loading it."""
    fmt = format_for(args.output, args.format)
    if args.output != "-":
        check_output(args.output)
    if args.template_dir is not None and not Path(args.template_dir).is_dir():
        raise UsageError(f"{args.template_dir}: template folder not found (--template-dir)")
    if args.source_url is not None:
        check_source_url(args.source_url)
    from .resolve import spec_files

    refuse_overwrite(args.output, [*spec_files(args.spec), *files_under(args.template_dir)], force=args.force)
    asset = _matrix_asset(args, fmt)

    def render_once() -> tuple[str, ...]:
        resolved = _resolve(args)
        refuse_overwrite(args.output, resolved.files, force=args.force)
        text = render(resolved.document, fmt, verbose=args.verbose, title=args.title, template_dir=args.template_dir,
                      source_url=args.source_url, matrix_image=asset and asset.url)
        if asset is not None:
            from .rendering.assets import write_asset

            write_asset(render(resolved.document, "svg"), asset)  # first: the document never shows an image that is not there
        write_output(text, args.output)
        return resolved.files

    if not args.watch:
        render_once()
        return 0
    from .watch import check_watchable, watch

    check_watchable(args.spec, args.output, args.call)
    # What to watch until a render has read the files: the spec's file (without its :ATTR).
    first = args.spec if os.path.isfile(args.spec) else (args.spec.rpartition(":")[0] or args.spec)
    return watch(render_once, [first], quiet=args.quiet)


def _matrix_asset(args: argparse.Namespace, fmt: str) -> Any:
    """``--assets``: the matrix image to write next to a Markdown output (``loopdoc.rendering.assets``), or ``None``."""
    if args.assets is None:
        return None
    if fmt != "md":
        raise UsageError(f"--assets: only for Markdown output, not {fmt} (the HTML page has the matrix inline)")
    from .rendering.assets import matrix_asset

    return matrix_asset(args.output, args.assets, inputs=(args.spec, args.spec.rsplit(":", 1)[0]))


def _load_loop(args: argparse.Namespace) -> Any:
    """The spec's loop for ``render`` and ``show`` (``loopdoc.resolve.resolve``, within ``--timeout``)."""
    return _resolve(args).document


def _resolve(args: argparse.Namespace) -> Any:
    """``loopdoc.resolve.resolve`` of the spec: the loop and the files it was read from."""
    from .resolve import resolve

    return resolve(args.spec, args.call, trust_pickle=args.trust_pickle, timeout=args.timeout, debug=args.debug)


def _check_command(args: argparse.Namespace) -> int:
    """``loopdoc check``: every spec is loaded (two at once, each in its own worker) and reported in the order given;
    see ``CheckReport.exit_code``.

    A spec that fails to load prints its ``Error: …`` line and counts as an error (exit 2 or more), never as clean.
    """
    from .analysis.lint import parse_codes, select
    from .model.check import Checked, CheckError, CheckReport
    from .rendering.check import render_check, summary
    from .resolve import start

    selected = parse_codes(args.select, "--select")
    ignored = parse_codes(args.ignore, "--ignore")
    op = {"what": "loop", "call": args.call}
    jobs = 2 if (os.cpu_count() or 1) > 1 else 1  # each worker imports the framework: a few hundred MB each
    pending: dict[int, Any] = {}

    def failed(spec: str, e: LoopdocError) -> Checked:
        if args.debug:
            traceback.print_exception(e)
        print(f"Error: {_one_line(str(e))}", file=sys.stderr)
        return Checked(spec, error=CheckError(type(e).__name__, _one_line(str(e)), exit_code(e, "check")))

    def launch(i: int) -> None:
        try:
            pending[i] = start(args.specs[i], op, trust_pickle=args.trust_pickle, timeout=args.timeout, debug=args.debug)
        except LoopdocError as e:
            pending[i] = e

    results = []
    try:
        for i in range(min(jobs, len(args.specs))):
            launch(i)
        for i, spec in enumerate(args.specs):
            job = pending.pop(i)
            if i + jobs < len(args.specs):
                launch(i + jobs)
            if isinstance(job, LoopdocError):
                results.append(failed(spec, job))
                continue
            try:
                loop = job.result().document
            except LoopdocError as e:
                results.append(failed(spec, e))
                continue
            finally:
                job.close()
            results.append(Checked(spec, loop.learner.loaded_from, loop.framework, loop.call,
                                   select(loop.findings, selected, ignored)))
    finally:
        for job in pending.values():
            if not isinstance(job, LoopdocError):
                job.close()
    report = CheckReport(tuple(results), args.fail_on, selected, ignored)
    write_output(render_check(report, args.format), "-")
    if args.format != "json":
        print(summary(report), file=sys.stderr)
    return report.exit_code()


COMMANDS = {"render": _render_command, "show": _show_command, "trace": _trace_command, "diff": _diff_command,
            "card": _card_command, "check": _check_command}
"""The subcommands, each returning its exit code on success (errors are raised: ``main`` reports them)."""


def _message(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:  # a broken __str__ must not hide the real error
        text = ""
    return _one_line(text) or "(no message)"


def _one_line(text: Any) -> str:
    return " ".join(str(text).split())
