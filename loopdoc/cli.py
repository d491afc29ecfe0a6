"""The ``loopdoc`` command line (argparse). Only ``main`` turns errors into exit codes.

    loopdoc render SPEC -o OUT [--format html|md|json|txt] [--title T] [--template-dir DIR]
    loopdoc show SPEC [--verbose]

SPEC is ``learner.py[:ATTR]``, ``package.module[:ATTR]`` or a saved ``loop.json``.
"""

from __future__ import annotations

import argparse
import sys
import traceback

from . import __version__, load_loop
from .errors import LoopdocError
from .render import FORMATS, format_for, render, write_output

SPEC_HELP = "learner.py[:ATTR], package.module[:ATTR], or a saved loop.json"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``loopdoc``: subcommands ``render`` and ``show``."""
    parser = argparse.ArgumentParser(prog="loopdoc", description="Document a fastai training loop: phases, events and the callbacks that run at each.")
    parser.add_argument("--version", action="version", version=f"loopdoc {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show the full traceback on error")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("render", parents=[common], help="write the loop as HTML, Markdown, JSON or text")
    p.add_argument("spec", metavar="SPEC", help=SPEC_HELP)
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="output file (format from its extension), or - for stdout")
    p.add_argument("--format", choices=FORMATS, help="output format, overriding the extension")
    p.add_argument("--title", help="page title (default: 'Training loop of SPEC')")
    p.add_argument("--template-dir", metavar="DIR", help="folder of Jinja templates searched before loopdoc's own")
    p.add_argument("--verbose", action="store_true", help="text format: add docstrings and steps")

    s = sub.add_parser("show", parents=[common], help="print the loop as a tree in the terminal")
    s.add_argument("spec", metavar="SPEC", help=SPEC_HELP)
    s.add_argument("--verbose", "-v", action="store_true", help="add each callback method's docstring and the steps")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line.

    Args:
        argv: arguments without the program name; ``sys.argv[1:]`` when ``None``.

    Returns:
        The exit code: 0 on success, the error's ``exit_code`` on a loopdoc
        error (one line ``Error: …`` on stderr), 2 on a bad command line.
    """
    args = build_parser().parse_args(argv)
    try:
        if args.command == "render":
            fmt = format_for(args.output, args.format)
            text = render(load_loop(args.spec), fmt, verbose=args.verbose, title=args.title, template_dir=args.template_dir)
            write_output(text, args.output)
        else:
            write_output(render(load_loop(args.spec), "txt", verbose=args.verbose), "-")
    except LoopdocError as e:
        if args.debug:
            traceback.print_exc()
        print(f"Error: {e}", file=sys.stderr)
        return e.exit_code
    return 0
