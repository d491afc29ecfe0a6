"""``loopdoc diff`` on the command line: exit codes, errors, output formats, learners loaded by the CLI, the git form.

The command line runs in-process on the saved models of ``tests/fixtures/diff`` (no
framework), and in a subprocess only where a learner must be loaded by the CLI itself (one
learner pair, the git form). ``diff_loops`` itself is tested in ``tests/analysis``.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import html5lib
import pytest
from helpers import DIFF as FIX
from helpers import DIFF_CASES, ROOT, diff_fixture_path, events_of, snapshot

from loopdoc.cli import _use_color, main
from loopdoc.errors import LoadError, UsageError
from loopdoc.git import GitSpec, export_revision

HTML_NS = "{http://www.w3.org/1999/xhtml}"


@pytest.fixture(scope="module")
def saved() -> dict[str, str]:
    """Each diff fixture's saved model (as ``loopdoc render -o x.json`` writes it), keyed ``"old"`` and the case name."""
    return {case: str(diff_fixture_path(case)) for case in ("old", *DIFF_CASES)}


def test_color_only_on_a_terminal_without_no_color():
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert _use_color(Tty(), {})
    assert _use_color(Tty(), {"NO_COLOR": ""})  # https://no-color.org: only a non-empty value disables
    assert not _use_color(Tty(), {"NO_COLOR": "1"})
    assert not _use_color(io.StringIO(), {})
    assert not _use_color(None, {})


# ---------------------------------------------------------------- the command line (in-process, saved models)


def _html(text: str):
    return html5lib.HTMLParser(strict=True, namespaceHTMLElements=True).parse(text)


def run_main(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_exit_codes_0_same_1_different(saved, capsys):
    code, out, err = run_main(["diff", saved["old"], saved["reordered"]], capsys)
    assert (code, err) == (0, "") and "No differences: both run the same loop." in out
    code, out, _ = run_main(["diff", saved["old"], saved["doc"]], capsys)
    assert code == 1 and "docstring" in out
    code, out, _ = run_main(["diff", saved["old"], saved["doc"], "--ignore", "docstrings"], capsys)
    assert code == 0 and "ignoring: docstrings" in out and "No differences" in out
    code, _, _ = run_main(["diff", saved["old"], saved["lines"], "--ignore", "docstrings,source"], capsys)
    assert code == 0
    code, out, _ = run_main(["diff", saved["old"], saved["lines"]], capsys)  # only line numbers moved
    assert code == 0 and "No differences" in out
    code, out, _ = run_main(["diff", saved["old"], saved["lines"], "--strict-source"], capsys)
    assert code == 1 and f"{FIX}/old.py:31 → {FIX}/new_lines.py:32" in out, out


def test_cli_every_error_exits_2(saved, capsys, tmp_path):
    broken = str(ROOT / "tests/fixtures/broken")
    cases = [
        (["diff", saved["old"], str(tmp_path / "missing.json")], "missing.json: no such file"),
        (["diff", saved["old"], f"{broken}/foreign.json"], "foreign.json: not a loopdoc loop model"),  # exit 3 for render
        (["diff", saved["old"], saved["doc"], "--ignore", "comments"], "--ignore: unknown category 'comments'"),
        (["diff", saved["old"], saved["doc"], "-o", str(tmp_path / "x.pdf")], "unknown output extension '.pdf'"),
        (["diff", saved["old"], saved["doc"], "-o", str(tmp_path / "no" / "x.md")], "does not exist"),  # exit 5 for render
        (["diff", "git:HEAD", saved["doc"]], "expected git:REV:PATH.py[:ATTR]"),
    ]
    for args, message in cases:
        code, out, err = run_main(args, capsys)
        assert code == 2, (args, err)
        assert out == "" and len(err.splitlines()) == 1 and err.startswith("Error: ") and message in err, err
    assert not (tmp_path / "x.pdf").exists()
    with pytest.raises(SystemExit) as e:  # argparse: a missing NEW
        main(["diff", saved["old"]])
    assert e.value.code == 2


def test_cli_json_that_is_not_a_loop_model_exits_2(saved, capsys, monkeypatch):
    class Trace:
        """Stands in for another loopdoc document that ``load_json`` reads (e.g. ``loopdoc trace -o x.json``)."""

    monkeypatch.setattr(sys.modules["loopdoc.resolve"], "load_json", lambda path: Trace())
    code, _, err = run_main(["diff", saved["old"], saved["doc"]], capsys)
    assert code == 2 and err == f"Error: {saved['old']}: a trace, not a loop model\n"


def test_cli_internal_error_exits_2_not_1(saved, capsys, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(sys.modules["loopdoc.rendering.documents"], "render_diff", broken)
    code, _, err = run_main(["diff", saved["old"], saved["doc"]], capsys)
    assert code == 2 and err.startswith("Error: internal error: RuntimeError: a bug")


def test_cli_writes_markdown_html_json_by_extension(saved, capsys, tmp_path):
    for ext in ("md", "html", "json", "txt"):
        out = tmp_path / f"diff.{ext}"
        code, stdout, _ = run_main(["diff", saved["old"], saved["run_valid"], "-o", str(out)], capsys)
        assert (code, stdout) == (1, "")
        text = out.read_text(encoding="utf-8")
        if ext == "md":
            assert text.startswith("### Loop diff:") and "| `Check` | run_valid `True` → `False` |" in text
        elif ext == "html":
            assert _html(text).find(f".//{HTML_NS}p[@id='verdict']") is not None
        elif ext == "json":
            assert json.loads(text)["summary"]["removed"] == 2
        else:
            assert text.startswith("loopdoc diff\n") and "\x1b[" not in text
    code, stdout, _ = run_main(["diff", saved["old"], saved["run_valid"], "--format", "json"], capsys)
    assert code == 1 and json.loads(stdout)["same"] is False


# ---------------------------------------------------------------- the command line (subprocess, learners)


def loopdoc_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "loopdoc", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.subprocess
@pytest.mark.fastai
def test_cli_learner_with_the_same_run_order_exits_0(saved):
    """A real learner file loaded by the CLI (in its own process) against the baseline's saved model."""
    proc = loopdoc_cli("diff", saved["old"], f"{FIX}/new_reordered.py", cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[1:3] == [f"--- {FIX}/old.py:learn", f"+++ {FIX}/new_reordered.py:learn"]
    assert "No differences: both run the same loop." in proc.stdout


@pytest.mark.subprocess
def test_cli_learner_that_fails_to_load_exits_2(saved):
    proc = loopdoc_cli("diff", saved["old"], "tests/fixtures/broken/raises.py", cwd=ROOT)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("Error: ")]
    assert proc.returncode == 2  # render would exit 4
    assert errors == ["Error: tests/fixtures/broken/raises.py:5: ValueError: could not convert string to float: 'fast'"]


# ---------------------------------------------------------------- the git form

LEARNER = '''from fastai.test_utils import synth_learner
from helpers import Audit

learn = synth_learner(n_trn=8, n_val=4, cbs=[Audit()])
'''
HELPERS = '''from fastai.callback.core import Callback


class Audit(Callback):
    """Audit every batch."""

    order = {order}

    def after_batch(self):
        "Note the batch."
'''


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@x"}
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository with two commits of ``train/learner.py`` and its sibling ``train/helpers.py``.

    The learner file is the same in both; the sibling module changes ``Audit.order`` 10 → 70,
    so only a sibling import from the right revision shows the change.
    """
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "repo"
    (repo / "train").mkdir(parents=True)
    git(repo, "init", "-q")
    (repo / "train" / "learner.py").write_text(LEARNER)
    (repo / "train" / "helpers.py").write_text(HELPERS.format(order=10))
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "one")
    (repo / "train" / "helpers.py").write_text(HELPERS.format(order=70))
    git(repo, "commit", "-qam", "two")
    return repo


@pytest.mark.subprocess
@pytest.mark.fastai
def test_git_revision_against_the_working_tree(repo, tmp_path):
    folder = repo / "train"
    before, head = snapshot(repo, skip={".git"}), git(repo, "rev-parse", "HEAD")
    out = tmp_path / "diff.json"
    proc = loopdoc_cli("diff", "git:HEAD~1:learner.py", "learner.py", "-o", str(out), cwd=folder)
    assert proc.returncode == 1, proc.stderr
    data = json.loads(out.read_text())
    assert data["old"]["loaded_from"] == "git:HEAD~1:learner.py:learn"
    assert data["new"]["loaded_from"] == "learner.py:learn"
    assert data["callbacks"] == [{"id": "Audit", "status": "changed", "qualname": "helpers.Audit", "order": 70,
                                  "flags": {"run": True, "run_train": True, "run_valid": True},
                                  "changes": [{"field": "order", "old": 10, "new": 70}], "events": ["after_batch"]}]
    moved = [(e["path"], h["callback"], h["reason"]) for e in events_of(data) for h in e["handlers"] if h["status"] == "moved"]
    assert moved == [("fit/epoch/train/batch", "Audit", "order 10 → 70"), ("fit/epoch/validate/batch", "Audit", "order 10 → 70")]
    # the working tree is untouched: no checkout, no __pycache__, same bytes, same HEAD, clean status
    assert snapshot(repo, skip={".git"}) == before
    assert git(repo, "status", "--porcelain", "--ignored") == ""
    assert git(repo, "rev-parse", "HEAD") == head


def test_git_spec_parsing():
    assert GitSpec.parse("git:HEAD~1:train/learner.py:make") == GitSpec("git:HEAD~1:train/learner.py:make", "HEAD~1", "train/learner.py", "make")
    assert GitSpec.parse("git:v1.0:learner.py").attr is None
    assert GitSpec.parse("git:main:loop.json").is_json
    for bad in ("git:HEAD", "git::learner.py", "git:HEAD:", "git:-x:learner.py", "git:HEAD:notes.txt"):
        with pytest.raises(UsageError):
            GitSpec.parse(bad)


def test_git_export_mirrors_the_revision_without_touching_the_tree(repo, tmp_path, monkeypatch):
    monkeypatch.chdir(repo / "train")
    before = snapshot(repo, skip={".git"})
    exported = export_revision(GitSpec.parse("git:HEAD~1:learner.py"), tmp_path / "x")
    assert exported.rel == "train/learner.py" and exported.file == (tmp_path / "x" / "train" / "learner.py").resolve()
    assert exported.file.read_text() == LEARNER
    assert (exported.file.parent / "helpers.py").read_text() == HELPERS.format(order=10)
    assert exported.shown == "learner.py"
    assert exported.rewrite(f"{exported.file}:3: NameError") == "git:HEAD~1:learner.py:3: NameError"
    assert snapshot(repo, skip={".git"}) == before and git(repo, "status", "--porcelain") == ""
    with pytest.raises(LoadError, match=r"git:nope:learner\.py: unknown git revision 'nope'"):
        export_revision(GitSpec.parse("git:nope:learner.py"), tmp_path / "y")
    with pytest.raises(LoadError, match=r"train/gone\.py does not exist at HEAD~1"):
        export_revision(GitSpec.parse("git:HEAD~1:gone.py"), tmp_path / "z")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(LoadError, match="is not in a git repository"):
        export_revision(GitSpec.parse("git:HEAD:learner.py"), tmp_path / "w")


def test_cli_git_errors_exit_2(repo, saved, capsys, monkeypatch):
    monkeypatch.chdir(repo / "train")
    code, _, err = run_main(["diff", "git:nope:learner.py", saved["old"]], capsys)
    assert code == 2 and err == "Error: git:nope:learner.py: unknown git revision 'nope'\n"
