"""``build_parser(command)`` builds only the subcommand given: it must parse and explain exactly as the whole parser does."""

from __future__ import annotations

import contextlib
import io

import pytest

from loopdoc import cli

ARGVS = [
    ["render", "loop.json", "-o", "x.html"],
    ["--debug", "render", "learner.py", "-o", "x.md", "--call", "fine_tune(1)", "--quiet", "--assets", "img"],
    ["show", "learner.py", "-v", "--color", "never"],
    ["trace", "learner.py", "--batches", "2", "--diff-static", "-o", "t.json"],
    ["diff", "a.json", "b.json", "--ignore", "docstrings", "--strict-source"],
    ["card", "learner.py", "README.md", "--check", "--mode", "full"],
    ["check", "a.py", "b.py", "--format", "github", "--select", "LD1", "--fail-on", "info"],
]


@pytest.mark.parametrize("argv", ARGVS, ids=lambda a: " ".join(a))
def test_one_subcommand_parses_as_all(argv: list[str]) -> None:
    command = cli._command_in(argv)
    assert command == next(a for a in argv if not a.startswith("-"))
    assert vars(cli.build_parser(command).parse_args(argv)) == vars(cli.build_parser().parse_args(argv))


@pytest.mark.parametrize("command", list(cli._SUBCOMMANDS))
def test_one_subcommand_has_the_same_help(command: str) -> None:
    def help_of(parser: object) -> str:
        out = io.StringIO()
        with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
            parser.parse_args([command, "--help"])  # type: ignore[attr-defined]
        return out.getvalue()

    assert help_of(cli.build_parser(command)) == help_of(cli.build_parser())


def test_unknown_or_no_command_gets_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    listed = capsys.readouterr().err
    assert all(name in listed for name in cli._SUBCOMMANDS)
    with pytest.raises(SystemExit) as exit:
        cli.main(["rendr", "x.json"])
    assert exit.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'rendr'" in err and "'render'" in err and "'check'" in err


@pytest.mark.parametrize("command", [None, "render"])
def test_an_unknown_option_points_to_the_help_of_the_subcommand_given(command, capsys: pytest.CaptureFixture[str]) -> None:
    """argparse reports unknown options from the top-level parser; the message names the subcommand's help, where they are."""
    with pytest.raises(SystemExit) as exit:
        cli.build_parser(command).parse_args(["render", "x", "-o", "y.html", "--bogus"])
    assert exit.value.code == 2
    assert capsys.readouterr().err == "Error: loopdoc render: unrecognized arguments: --bogus (see loopdoc render --help)\n"
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["--bogus"])
    assert capsys.readouterr().err.startswith("Error: loopdoc: ")


def test_the_call_help_names_every_framework() -> None:
    assert all(f"'{c}' ({f})" in cli.CALL_HELP for c, f in (("fit_one_cycle(3, 1e-3)", "fastai"), ("validate()", "Lightning"),
                                                           ("evaluate()", "Hugging Face")))
    assert "framework's own call" in cli.CALL_HELP and "instead of plain fit" not in cli.CALL_HELP
