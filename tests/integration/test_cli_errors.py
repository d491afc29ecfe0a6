"""The command line's failures, end to end: the real ``python -m loopdoc`` in a subprocess.

Every failure must print exactly one line ``Error: …`` on stderr that names the
file (or argument) and the problem, exit with its exact code (``loopdoc.errors``),
print no traceback (unless ``--debug``), and neither create the output file nor
change an existing one. Fixtures: ``tests/fixtures/broken`` (learner files, JSON,
broken templates) and ``tests/fixtures/pkg`` (a package, on ``PYTHONPATH``).

Most cases fail before fastai is imported and take ~0.15 s; the few that import
fastai (3–5 s each) say so in a comment.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import BROKEN, PKG_PATH, run_loopdoc, snapshot

pytestmark = pytest.mark.subprocess  # and fastai, for every test that uses a saved model (model_json: cli_models)

KNOWN = b"existing output: must survive every failure byte for byte\n"

# A Python warning as ``warnings.showwarning`` prints it: ``file:line: SomeWarning: message``,
# followed by the indented source line. fastai and torch print some on import.
WARNING = re.compile(r"^\S.*:\d+: \w*Warning: ")


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m loopdoc ARGS`` from the repository root.

    Args:
        args: the command line after ``loopdoc``.
        env: extra environment variables.

    Returns:
        The finished process, stdout and stderr as text.
    """
    return run_loopdoc(*args, env={"PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(PKG_PATH), **(env or {})}, timeout=120)


def loopdoc_lines(stderr: str) -> list[str]:
    """The lines of ``stderr`` that are not Python warnings (a warning line and its indented source lines)."""
    out: list[str] = []
    in_warning = False
    for line in stderr.splitlines():
        if WARNING.match(line):
            in_warning = True
        elif in_warning and line[:1] in (" ", "\t"):
            continue
        else:
            in_warning = False
            if line.strip():
                out.append(line)
    return out


@pytest.fixture(scope="session")
def model_json(cli_models: dict[str, Path]) -> Path:
    """A valid saved model of ``examples/synth.py``, written once per session by the CLI itself (``cli_models``)."""
    return cli_models["examples/synth.py"]


# --- the table of failures ----------------------------------------------------------------------------------------


@dataclass
class Case:
    """One failing command line.

    Attributes:
        args: the arguments; ``{out}`` is the output path, ``{tmp}`` a scratch
            folder, ``{model}`` a valid saved model, ``{fx}`` the broken fixtures.
        code: the exact exit code.
        phrases: each must appear in the ``Error:`` line (the file and the problem).
        setup: prepares ``{tmp}`` (e.g. a file in the way), given ``{tmp}`` and ``{model}``.
        out: the output path under ``{tmp}``.
        fastai: the case imports fastai (3–5 s): it runs once, with an existing output.
        noisy: the learner prints to stderr (what it prints to stdout goes there too), so
            the ``Error:`` line is the last line of stderr rather than the only one.
    """

    args: list[str]
    code: int
    phrases: tuple[str, ...]
    setup: Callable[[Path, Path], None] | None = None
    out: str = "out.html"
    fastai: bool = False
    noisy: bool = False


def _file(name: str, content: str = "in the way\n") -> Callable[[Path, Path], None]:
    return lambda tmp, model: (tmp / name).write_text(content)


def _folder(name: str) -> Callable[[Path, Path], None]:
    return lambda tmp, model: (tmp / name).mkdir()


def _broken_model(tmp: Path, model: Path) -> None:
    data = json.loads(model.read_text())
    data["phases"][0]["name"] = 123
    (tmp / "broken_model.json").write_text(json.dumps(data))


def _edited_model(name: str, edit: Callable[[dict], object]) -> Callable[[Path, Path], None]:
    """A setup writing ``{tmp}/NAME``: the valid model after ``edit(data)`` changed it in place."""
    def setup(tmp: Path, model: Path) -> None:
        data = json.loads(model.read_text())
        edit(data)
        (tmp / name).write_text(json.dumps(data))

    return setup


def _first_event(data: dict) -> dict:
    """The first event with a handler, depth first (``before_fit`` or deeper)."""
    stack = list(data["phases"])
    while stack:
        node = stack.pop(0)
        if node["kind"] == "phase":
            stack[:0] = node["children"]
        elif node["kind"] == "event" and node["handlers"]:
            return node
    raise AssertionError("no event with a handler")


def _bytes(name: str, content: bytes) -> Callable[[Path, Path], None]:
    return lambda tmp, model: (tmp / name).write_bytes(content)


def _bad_template(tmp: Path, model: Path) -> None:
    (tmp / "theme").mkdir()
    (tmp / "theme" / "loop.txt.jinja").write_text("{{ title }}\n{{ loop.phases | no_such_filter }}\n")


CASES = {
    # LoadError (4): the learner file or module cannot be run
    "missing-file": Case(["render", "{fx}/no_such_learner.py", "-o", "{out}"], 4, ("no_such_learner.py", "no such file")),
    "spec-is-folder": Case(["render", "{fx}/templates_syntax/", "-o", "{out}"], 4, ("templates_syntax", "is a folder")),
    "spec-not-python": Case(["render", "{fx}/templates_syntax/loop.txt.jinja", "-o", "{out}"], 4,
                            ("loop.txt.jinja", "not a .py file")),
    "syntax-error": Case(["render", "{fx}/syntax_error.py", "-o", "{out}"], 4,
                         ("syntax_error.py:5", "syntax error", "never closed")),
    "raises": Case(["render", "{fx}/raises.py", "-o", "{out}"], 4, ("raises.py:5", "ValueError", "'fast'")),
    "sys-exit": Case(["render", "{fx}/exits.py", "-o", "{out}"], 4, ("exits.py:5", "sys.exit(3)")),
    "show-sys-exit": Case(["show", "{fx}/exits.py"], 4, ("exits.py", "sys.exit(3)")),
    "no-such-module": Case(["render", "no_such_module_xyz", "-o", "{out}"], 4, ("no_such_module_xyz", "no such module")),
    "no-such-submodule": Case(["render", "learnerpkg.nope", "-o", "{out}"], 4, ("learnerpkg.nope", "no such module")),
    "module-raises": Case(["render", "learnerpkg.broken", "-o", "{out}"], 4,
                          ("learnerpkg/broken.py:5", "RuntimeError", "database not reachable")),
    "attr-raises": Case(["render", "{fx}/attrs.py:raises", "-o", "{out}"], 4, ("attrs.py:", "ValueError: boom", "raises()")),
    "attr-exits": Case(["render", "{fx}/attrs.py:exits", "-o", "{out}"], 4, ("attrs.py:23", "sys.exit('no GPU')", "exits()")),
    # LearnerNotFound (3): loaded, but no single Learner. A file that imports no framework is told every installed
    # adapter's trainer: "no trainer (fastai Learner, lightning Trainer)" (loopdoc.load._noun).
    "no-learner": Case(["render", "{fx}/no_learner.py", "-o", "{out}"], 3,
                       ("no_learner.py", "defines no", "fastai Learner", "build_dls, build_learner")),
    "argv-not-leaked": Case(["render", "{fx}/uses_argparse.py", "-o", "{out}"], 3, ("uses_argparse.py", "defines no", "fastai Learner")),
    "two-learners": Case(["render", "{fx}/two_learners.py", "-o", "{out}"], 3,
                         ("two_learners.py", "2 Learners", "learn_a = also_a", "learn_b", "two_learners.py:ATTR"), fastai=True),
    "attr-missing": Case(["render", "{fx}/attrs.py:nope", "-o", "{out}"], 3, ("attrs.py", "no attribute 'nope'", "make")),
    "attr-not-callable": Case(["render", "{fx}/attrs.py:NUMBER", "-o", "{out}"], 3,
                              ("attrs.py:NUMBER", "an int", "not a", "fastai Learner")),
    "attr-returns-other": Case(["render", "{fx}/attrs.py:not_a_learner", "-o", "{out}"], 3,
                               ("attrs.py:not_a_learner()", "returned an int", "not a", "fastai Learner")),
    "attr-needs-args": Case(["render", "{fx}/attrs.py:needs_args", "-o", "{out}"], 3,
                            ("attrs.py:needs_args", "needs arguments (dls, model)")),
    # The learner's code hangs, leaves threads running or prints megabytes (no fastai)
    "timeout": Case(["render", "{fx}/hangs.py", "--timeout", "0.5", "-o", "{out}"], 4,
                    ("hangs.py: still loading after 0.5 s (--timeout 0.5)", "it was running tests/fixtures/broken/hangs.py:5")),
    "timeout-show": Case(["show", "{fx}/hangs.py", "--timeout", "0.5"], 4, ("hangs.py", "still loading after 0.5 s")),
    "timeout-trace": Case(["trace", "{fx}/hangs.py", "--timeout", "0.5", "-o", "{out}"], 4, ("hangs.py", "still running after 0.5 s")),
    "timeout-swallowed": Case(["render", "{fx}/hangs_stubbornly.py", "--timeout", "0.5", "-o", "{out}"], 4,  # ~3.5 s
                              ("hangs_stubbornly.py", "still loading after 0.5 s", "did not stop; gave up")),
    "timeout-negative": Case(["render", "{fx}/hangs.py", "--timeout", "-1", "-o", "{out}"], 2, ("--timeout -1", "positive")),
    "timeout-not-a-number": Case(["render", "{fx}/hangs.py", "--timeout", "soon", "-o", "{out}"], 2,
                                 ("--timeout", "invalid float value: 'soon'")),
    "thread-left-running": Case(["render", "{fx}/threads.py", "-o", "{out}"], 3, ("threads.py", "defines no", "fastai Learner", "poll_forever")),
    "prints-megabytes": Case(["render", "{fx}/prints_a_lot.py", "-o", "-", "--format", "json"], 3,
                             ("prints_a_lot.py", "defines no", "fastai Learner"), noisy=True),
    # Pickles (learn.export()): refused without --trust-pickle, before anything is read
    "pickle-untrusted": Case(["render", "{tmp}/export.pkl", "-o", "{out}"], 2,
                             ("export.pkl", "pickled Learner", "runs any code", "--trust-pickle"), setup=_file("export.pkl")),
    "pickle-show-untrusted": Case(["show", "{tmp}/export.pkl"], 2, ("export.pkl", "--trust-pickle"), setup=_file("export.pkl")),
    "pickle-attr": Case(["render", "{tmp}/export.pkl:learn", "--trust-pickle", "-o", "{out}"], 2, ("export.pkl", "no ATTR"),
                        setup=_file("export.pkl")),
    "pickle-missing": Case(["render", "{fx}/no_such_export.pkl", "--trust-pickle", "-o", "{out}"], 4,
                           ("no_such_export.pkl", "no such file")),
    "pickle-garbage": Case(["render", "{tmp}/garbage.pkl", "--trust-pickle", "-o", "{out}"], 4,
                           ("garbage.pkl", "while unpickling"), setup=_file("garbage.pkl", "not a pickle\n"), fastai=True),
    # ModelError (3) and LoadError (4): saved models
    "json-missing": Case(["render", "{fx}/no_such_loop.json", "-o", "{out}"], 4, ("no_such_loop.json", "no such file")),
    "json-malformed": Case(["render", "{fx}/not_json.json", "-o", "{out}"], 4, ("not_json.json:4", "not JSON")),
    "json-foreign": Case(["render", "{fx}/foreign.json", "-o", "{out}"], 3, ("foreign.json", "not a loopdoc loop model")),
    "json-newer": Case(["render", "{fx}/newer.json", "-o", "{out}"], 3, ("newer.json", "schema_version 2.0 is newer")),
    "json-field": Case(["render", "{tmp}/broken_model.json", "-o", "{out}"], 3,
                       ("broken_model.json", "phases/0/name", "not of type 'string'"), setup=_broken_model),
    "json-empty": Case(["render", "{tmp}/empty.json", "-o", "{out}"], 4, ("empty.json:1", "not JSON"), setup=_file("empty.json", "")),
    "json-not-utf8": Case(["render", "{tmp}/latin1.json", "-o", "{out}"], 4, ("latin1.json", "not UTF-8"),
                          setup=_bytes("latin1.json", '{"call": "fit \u00e9"}'.encode("latin-1"))),
    "json-nan": Case(["render", "{tmp}/nan.json", "-o", "{out}"], 4, ("nan.json", "NaN is not a JSON number"),
                     setup=_file("nan.json", '{"schema_version": "1.0", "order": NaN}')),
    "json-top-level-array": Case(["render", "{tmp}/array.json", "-o", "{out}"], 3, ("array.json", "(top level)", "not of type 'object'"),
                                 setup=_file("array.json", "[1, 2]")),
    "json-missing-field": Case(["render", "{tmp}/m.json", "-o", "{out}"], 3, ("m.json", "(top level)", "'phases' is a required property"),
                               setup=_edited_model("m.json", lambda d: d.pop("phases"))),
    "json-unknown-kind": Case(["render", "{tmp}/m.json", "-o", "{out}"], 3,
                              ("m.json", "phases/1/children/1/kind", "'teleport' is not one of 'phase', 'event', 'step'"),
                              setup=_edited_model("m.json", lambda d: d["phases"][1]["children"][1].update(kind="teleport"))),
    "json-deep-field": Case(["render", "{tmp}/m.json", "-o", "{out}"], 3, ("m.json", "/handlers/0/doc", "5 is not of type"),
                            setup=_edited_model("m.json", lambda d: _first_event(d)["handlers"][0].update(doc=5))),
    "json-unknown-callback": Case(["render", "{tmp}/m.json", "-o", "{out}"], 3,
                                  ("m.json", "/handlers/0/callback", "'Nope' is not the id of a callback"),
                                  setup=_edited_model("m.json", lambda d: _first_event(d)["handlers"][0].update(callback="Nope"))),
    "json-duplicate-id": Case(["show", "{tmp}/m.json"], 3, ("m.json", "callbacks/3/id", "the id of an earlier callback"),
                              setup=_edited_model("m.json", lambda d: d["callbacks"].append(d["callbacks"][0]))),
    "json-trace-newer": Case(["render", "{tmp}/t.json", "-o", "{out}"], 3, ("t.json", "schema_version 9.0 is newer"),
                             setup=_file("t.json", '{"kind": "trace", "schema_version": "9.0"}')),
    # UsageError (2) and argparse (2)
    "format-unknown": Case(["render", "{model}", "--format", "xyz", "-o", "{out}"], 2, ("--format", "'xyz'", "invalid choice")),
    "extension-unknown": Case(["render", "{model}", "-o", "{out}"], 2, ("out.pdf", "unknown output extension '.pdf'"),
                              out="out.pdf"),
    "extension-none": Case(["render", "{model}", "-o", "{out}"], 2, ("README", "unknown output extension"), out="README"),
    "attr-empty": Case(["render", "examples/synth.py:", "-o", "{out}"], 2, ("examples/synth.py", "empty ATTR")),
    "attr-not-a-name": Case(["render", "examples/synth.py:1st", "-o", "{out}"], 2,
                            ("synth.py", "ATTR '1st'", "not a dotted Python name")),
    # `loopdoc` alone prints the whole help (exit 2): tests/integration/test_cli_habits.py
    "command-unknown": Case(["draw", "{model}"], 2, ("loopdoc", "invalid choice: 'draw'")),
    "output-missing": Case(["render", "{model}"], 2, ("-o/--output", "required")),
    "template-dir-missing": Case(["render", "{model}", "--template-dir", "{tmp}/no_theme", "-o", "{out}"], 2,
                                 ("no_theme", "template folder not found"), out="out.txt"),
    # OutputError (5): checked before the learner is loaded, so these are fast even for a .py spec
    "output-folder-missing": Case(["render", "examples/synth.py", "-o", "{out}"], 5, ("no_dir/out.html", "does not exist"),
                                  out="no_dir/out.html"),
    "output-under-file": Case(["render", "examples/synth.py", "-o", "{out}"], 5, ("somefile.txt/out.html", "not a folder"),
                              setup=_file("somefile.txt"), out="somefile.txt/out.html"),
    "output-is-folder": Case(["render", "{model}", "-o", "{out}"], 5, ("outdir.html", "is a directory"),
                             setup=_folder("outdir.html"), out="outdir.html"),
    "output-name-too-long": Case(["render", "{model}", "-o", "{out}"], 5, ("x" * 300, "too long"), out="x" * 300 + ".html"),
    # TemplateError (1): a broken user theme, named by file:line
    "template-syntax": Case(["render", "{model}", "--template-dir", "{fx}/templates_syntax", "-o", "{out}"], 1,
                            ("templates_syntax/loop.txt.jinja:3", "template syntax error"), out="out.txt"),
    "template-undefined": Case(["render", "{model}", "--template-dir", "{fx}/templates_undefined", "-o", "{out}"], 1,
                               ("templates_undefined/loop.txt.jinja:2", "'no_such_variable' is undefined"), out="out.txt"),
    "template-bad-filter": Case(["render", "{model}", "--template-dir", "{tmp}/theme", "-o", "{out}"], 1,
                                ("theme/loop.txt.jinja:2", "no_such_filter"), setup=_bad_template, out="out.txt"),
}


def params(*, fastai: bool = True) -> list:
    """``CASES`` as pytest params with their names as ids; without the ones importing fastai if ``fastai`` is false."""
    return [pytest.param(name, case, id=name) for name, case in CASES.items() if fastai or not case.fastai]


def run_case(case: Case, tmp: Path, model: Path, *, existing: bool) -> None:
    """Run one failing case in ``tmp`` and check everything the issue requires.

    Args:
        case: the case.
        tmp: an empty scratch folder.
        model: a valid saved model.
        existing: put ``KNOWN`` at the output path first (when it can hold a file).
    """
    if case.setup is not None:
        case.setup(tmp, model)
    out = tmp / case.out
    if existing:
        try:
            if out.parent.is_dir() and not out.exists():
                out.write_bytes(KNOWN)
        except OSError:  # a name too long: nothing can exist there
            pass
    before = snapshot(tmp)
    args = [a.format(out=out, tmp=tmp, model=model, fx=BROKEN) for a in case.args]

    result = run(*args)

    assert result.returncode == case.code, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    lines = loopdoc_lines(result.stderr)
    if case.noisy:  # the learner's own output comes first
        assert len(lines) > 1000 and not [line for line in lines[:-1] if line.startswith("Error:")]
        lines = lines[-1:]
    assert len(lines) == 1, f"expected one Error line, got {lines!r}"
    assert re.match(r"^Error: ", lines[0]), lines[0]
    for phrase in case.phrases:
        assert phrase in lines[0], f"{phrase!r} not in {lines[0]!r}"
    assert result.stdout == "", "nothing on stdout when failing"
    assert snapshot(tmp) == before, "the scratch folder changed (output created or changed, or a file left behind)"


@pytest.mark.parametrize(("name", "case"), params())
def test_failure(name: str, case: Case, tmp_path: Path, model_json: Path) -> None:
    """Each failure: exact exit code, one ``Error:`` line naming file and problem, no traceback, no output file."""
    run_case(case, tmp_path, model_json, existing=case.fastai)


@pytest.mark.parametrize(("name", "case"), params(fastai=False))
def test_failure_leaves_existing_output_untouched(name: str, case: Case, tmp_path: Path, model_json: Path) -> None:
    """The same failures with an output file already there: it keeps its bytes, and no stray file appears."""
    run_case(case, tmp_path, model_json, existing=True)


# --- --debug ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["after-command", "before-command"])
def test_debug_shows_traceback_and_still_fails(where: str, tmp_path: Path) -> None:
    """``--debug`` adds the traceback (before the ``Error:`` line), keeps the exit code and writes nothing."""
    args = ["render", f"{BROKEN}/raises.py", "-o", str(tmp_path / "out.html")]
    args.insert(1 if where == "after-command" else 0, "--debug")
    result = run(*args)
    assert result.returncode == 4
    assert "Traceback" in result.stderr
    assert "raises.py" in result.stderr
    assert result.stderr.rstrip().splitlines()[-1].startswith("Error: ")
    assert list(tmp_path.iterdir()) == []


# --- what works -----------------------------------------------------------------------------------------------------


def test_help() -> None:
    """``python -m loopdoc --help`` and ``render --help`` print usage and exit 0."""
    top = run("--help")
    assert top.returncode == 0, top.stderr
    assert "render" in top.stdout and "show" in top.stdout
    sub = run("render", "--help")
    assert sub.returncode == 0, sub.stderr
    assert "--template-dir" in sub.stdout


def test_stdout_defaults_to_text(model_json: Path) -> None:
    """``-o -`` writes the text format to stdout and nothing to stderr."""
    result = run("render", str(model_json), "-o", "-")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Training loop of examples/synth.py:learn")
    assert loopdoc_lines(result.stderr) == []


def test_format_overrides_extension(model_json: Path, tmp_path: Path) -> None:
    """``--format json`` with a ``.txt`` name writes JSON, the same model."""
    out = tmp_path / "loop.txt"
    result = run("render", str(model_json), "--format", "json", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert json.loads(out.read_text()) == json.loads(model_json.read_text())
    assert [p.name for p in tmp_path.iterdir()] == ["loop.txt"], "no temporary file left behind"


def test_success_replaces_existing_output_and_writes_through_symlink(model_json: Path, tmp_path: Path) -> None:
    """An existing output is replaced whole; a symlinked output keeps its link and its target gets the text."""
    real = tmp_path / "real.txt"
    real.write_bytes(KNOWN)
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    result = run("render", str(model_json), "-o", str(link))
    assert result.returncode == 0, result.stderr
    assert link.is_symlink()
    assert real.read_text().startswith("Training loop of")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.txt", "real.txt"]


def test_show_saved_model(model_json: Path) -> None:
    """``show loop.json`` prints the tree without fastai."""
    result = run("show", str(model_json))
    assert result.returncode == 0, result.stderr
    assert "before_fit" in result.stdout


@pytest.mark.fastai
def test_callable_attr_to_stdout_as_json() -> None:  # imports fastai
    """``file.py:make`` calls ``make()`` (its folder on sys.path, so its own imports work); its prints
    go to stderr, so ``-o - --format json`` gives clean JSON on stdout."""
    result = run("render", f"{BROKEN}/attrs.py:make", "-o", "-", "--format", "json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["learner"]["loaded_from"] == f"{BROKEN}/attrs.py:make"
    assert "building the learner" in result.stderr
    assert not [line for line in loopdoc_lines(result.stderr) if line.startswith("Error")]


@pytest.mark.fastai
def test_package_module_attr(tmp_path: Path) -> None:  # imports fastai
    """``package.module:ATTR`` imports from ``PYTHONPATH`` (here ``tests/fixtures/pkg``) and calls ``ATTR``."""
    out = tmp_path / "loop.json"
    result = run("render", "learnerpkg.models:make", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert json.loads(out.read_text())["learner"]["loaded_from"] == "learnerpkg.models:make"


@pytest.mark.skipif(not Path("/dev/stdout").exists(), reason="needs /dev/stdout")
def test_device_output_is_written_in_place(model_json: Path) -> None:
    """``-o /dev/stdout`` (a device, here a pipe) is written to, not replaced by a file."""
    result = run("render", str(model_json), "--format", "txt", "-o", "/dev/stdout")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Training loop of")
