"""Outputs touch nothing but themselves and carry nothing a terminal or a browser acts on (issue 10, items 3, 6 and 8).


- ``-o`` never overwrites an input (by path, symbolic or hard link) nor, without ``--force``, a ``.py`` file;
- control characters and bidi controls from model text never reach a diff or a render (U+FFFD; JSON escapes them);
- ``--source-url`` is checked as a browser reads it (HTML character references decoded);
- a saved JSON with a huge integer or a repeated key is refused naming the file;
- temporary files: stale ones of loopdoc's own are removed by the next write, SIGTERM/SIGHUP leave none.

Everything here uses saved JSON models or learner files that are never loaded (refused first): no framework import.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT

from loopdoc.cli import main
from loopdoc.errors import UsageError
from loopdoc.model import Loop, load_json
from loopdoc.rendering.documents import render
from loopdoc.rendering.links import check_source_url
from loopdoc.rendering.output import write_output

pytestmark = pytest.mark.subprocess

GOLDEN = ROOT / "tests" / "golden" / "synth.json"
LEARNER = "from fastai.test_utils import synth_learner\nlearn = synth_learner()\n"  # never loaded here: refused first
KNOWN = b"must stay exactly as it is\n"
# What a terminal acts on (ESC, BEL, CSI as 0x9b, DEL, NUL) and what reorders text (the bidi controls).
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
NASTY = "\x1b]0;owned\x07\x1b[2J\x9b31m\u202eevil\u202c\u2066x\u2069\x00\x7f"


def error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("Error: "), err
    return err[0]


@pytest.fixture
def folder(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "v.json").write_bytes(GOLDEN.read_bytes())
    (tmp_path / "v.py").write_bytes(KNOWN)
    (tmp_path / "w.py").write_bytes(KNOWN)
    return tmp_path


# --- item 3: -o never overwrites an input ----------------------------------------------------------------------------


@pytest.mark.parametrize("argv, victim", [
    (["render", "v.json", "-o", "v.json"], "v.json"),
    (["render", "v.py", "-o", "v.py", "--format", "md"], "v.py"),
    (["render", "v.py", "-o", "v.py", "--format", "md", "--force"], "v.py"),  # --force allows .py, never an input
    (["trace", "v.py", "-o", "v.py", "--format", "txt", "--force"], "v.py"),
    (["diff", "v.py", "w.py", "-o", "w.py", "--format", "md", "--force"], "w.py"),
    (["diff", "v.json", "v.json", "-o", "v.json"], "v.json"),
    (["card", "v.py", "v.py"], "v.py"),
    (["card", "v.py", "v.py", "--force"], "v.py"),
])
def test_output_that_is_an_input_is_refused(folder, capsys, argv, victim):
    before = (folder / victim).read_bytes()
    code = main(argv)
    assert code == 2
    line = error_line(capsys)
    assert line.startswith(f"Error: {victim}: ") and ("input" in line or "Python" in line), line
    assert (folder / victim).read_bytes() == before


@pytest.mark.parametrize("link", ["symlink", "hardlink"])
def test_output_linked_to_an_input_is_refused(folder, capsys, link):
    (folder / "loop.md").unlink(missing_ok=True)
    (os.symlink if link == "symlink" else os.link)(folder / "v.json", folder / "loop.md")
    assert main(["render", "v.json", "-o", "loop.md"]) == 2
    assert "the same file as v.json" in error_line(capsys)
    assert (folder / "v.json").read_bytes() == GOLDEN.read_bytes()


def test_python_files_need_force(folder, capsys):
    assert main(["render", "v.json", "-o", "new.py", "--format", "md"]) == 2
    assert "--force" in error_line(capsys) and not (folder / "new.py").exists()
    os.symlink(folder / "target.py", folder / "dangling.md")  # a link to a .py file that does not exist yet
    assert main(["render", "v.json", "-o", "dangling.md"]) == 2
    assert "links to" in error_line(capsys) and not (folder / "target.py").exists()
    assert main(["render", "v.json", "-o", "new.py", "--format", "md", "--force"]) == 0
    assert (folder / "new.py").read_text().startswith("# Training loop of")


def test_git_side_working_tree_file_is_an_input(folder, capsys):
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    for cmd in (["git", "init", "-q"], ["git", "add", "v.json"], ["git", "commit", "-qm", "x"]):
        subprocess.run(cmd, cwd=folder, env=env, check=True, capture_output=True)
    assert main(["diff", "git:HEAD:v.json", "v.json", "-o", "v.json"]) == 2
    assert error_line(capsys).startswith("Error: v.json: ")
    assert (folder / "v.json").read_bytes() == GOLDEN.read_bytes()


def test_module_spec_files_are_checked_after_loading(tmp_path):  # loads a learner in a worker (~6 s)
    """A module spec names no file before loading; after it, every file the load read is an input, --force or not."""
    import shutil

    shutil.copytree(ROOT / "tests" / "fixtures" / "pkg", tmp_path / "pkg")
    victim = tmp_path / "pkg" / "learnerpkg" / "models.py"
    before = victim.read_bytes()
    proc = subprocess.run([sys.executable, "-m", "loopdoc", "render", "learnerpkg.models", "-o", str(victim), "--format", "md",
                           "--force"], cwd=tmp_path / "pkg", capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith(f"Error: {victim}: the output would overwrite an input")
    assert victim.read_bytes() == before


# --- item 6: control and bidi characters ------------------------------------------------------------------------------


def nasty_pair(folder: Path) -> tuple[Path, Path]:
    """Two saved loops whose names, notes, classes, docstrings and settings carry terminal controls and bidi overrides."""
    data = json.loads(GOLDEN.read_text(encoding="utf-8"))
    new = json.loads(json.dumps(data))
    new["learner"]["loaded_from"] += NASTY
    new["learner"]["model"] += NASTY
    new["versions"]["torch"] += NASTY
    new["notes"] = [f"A note {NASTY}"]
    for cb in new["callbacks"]:
        cb["qualname"] += NASTY
        cb["doc"] = (cb["doc"] or "") + NASTY
    old_path, new_path = folder / "old.json", folder / "new.json"
    old_path.write_text(json.dumps(data), encoding="utf-8")
    new_path.write_text(json.dumps(new, ensure_ascii=False), encoding="utf-8")
    return old_path, new_path


@pytest.mark.parametrize("fmt", ["-", "txt", "md", "html"])
def test_diff_output_has_no_control_characters(folder, capsys, fmt):
    old, new = nasty_pair(folder)
    out = "-" if fmt == "-" else str(folder / f"diff.{fmt}")
    assert main(["diff", str(old), str(new), "-o", out]) == 1
    text = capsys.readouterr().out if fmt == "-" else Path(out).read_text(encoding="utf-8")
    assert "evil" in text and "\ufffd" in text, "the text is shown, its controls as U+FFFD"
    assert not CONTROL.search(text), repr(CONTROL.search(text))


def test_coloured_diff_has_only_its_own_escapes(folder):
    from loopdoc.analysis.diff import diff_loops
    from loopdoc.rendering.documents import _ANSI, render_diff

    old, new = nasty_pair(folder)
    text = render_diff(diff_loops(load_json(str(old)), load_json(str(new)), set()), "txt", color=True)
    for code in _ANSI.values():
        text = text.replace(code, "")
    assert "evil" in text and not CONTROL.search(text)


def test_json_outputs_escape_controls_and_round_trip(folder, capsys):
    old, new = nasty_pair(folder)
    assert main(["diff", str(old), str(new), "-o", "diff.json"]) == 1
    text = (folder / "diff.json").read_text(encoding="utf-8")
    assert not CONTROL.search(text) and "\\u202e" in text and "\\u009b" in text
    assert any(NASTY in s for s in _strings(json.loads(text))), "the JSON keeps the characters, as escapes"
    loop = load_json(str(new))
    assert main(["render", str(new), "-o", "loop.json"]) == 0
    saved = (folder / "loop.json").read_text(encoding="utf-8")
    assert not CONTROL.search(saved)
    assert load_json(str(folder / "loop.json")) == loop


def _strings(node):
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for v in node.values():
            yield from _strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from _strings(v)


@pytest.mark.parametrize("fmt", ["html", "md", "txt"])
def test_render_neutralises_bidi_controls(folder, fmt):
    _, new = nasty_pair(folder)
    text = render(load_json(str(new)), fmt, verbose=True)
    assert "evil" in text and not CONTROL.search(text), repr(CONTROL.search(text))


# --- item 8: --source-url, JSON, temporary files ----------------------------------------------------------------------


@pytest.mark.parametrize("url", [
    "java&#115;cript:alert(1)//{path}", "javascript&colon;alert(1)//{path}", "JaVa&#x53;cRiPt:alert(1)//{path}",
    "&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1)//{path}", "java&Tab;script:x//{path}",
    "java&NewLine;script:x//{path}", "&#32;javascript:x//{path}", "java&#x0A;script:x//{path}", "vbscript&#x3a;x//{path}",
    "data&#58;text/html,{path}", "java\tscript:x//{path}", "javascript:{path}",
])
def test_source_url_schemes_are_checked_as_a_browser_reads_them(url):
    with pytest.raises(UsageError, match="--source-url"):
        check_source_url(url)


@pytest.mark.parametrize("url", ["https://github.com/o/r/blob/main/{path}#L{line}", "https://x.org/{path}?a=1&b=2",
                                 "file:///src/{path}", "../src/{path}", "{path}"])
def test_source_url_that_is_fine(url):
    check_source_url(url)


@pytest.mark.parametrize("make, problem", [
    (lambda t: t.replace('"line": 86', '"line": ' + "9" * 5000, 1), "an integer with 5000 digits"),
    (lambda t: t.replace('"version": "2.8.12"', '"version": "2.8.12", "version": "9"', 1), "the key 'version' appears twice"),
])
@pytest.mark.parametrize("command", ["render", "diff"])
def test_json_that_no_loopdoc_document_holds(folder, capsys, make, problem, command):
    text = GOLDEN.read_text(encoding="utf-8")
    bad = make(text)
    assert bad != text
    (folder / "bad.json").write_text(bad, encoding="utf-8")
    argv = ["render", "bad.json", "-o", "out.html"] if command == "render" else ["diff", "v.json", "bad.json"]
    assert main(argv) == (4 if command == "render" else 2)
    line = error_line(capsys)
    assert line.startswith("Error: bad.json: not JSON this reader accepts: ") and problem in line, line
    assert not (folder / "out.html").exists()


def _dead_pid() -> int:
    pid = 4_000_000
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            pass
        pid += 1


def test_stale_temporaries_of_loopdocs_own_are_removed_by_the_next_write(tmp_path):
    import fcntl

    out = tmp_path / "loop.html"
    out.write_bytes(KNOWN)
    dead = _dead_pid()
    stale = tmp_path / f".loop.html.loopdoc-{dead}-abcd1234.tmp"
    live = tmp_path / f".loop.html.loopdoc-{os.getpid()}-efgh5678.tmp"  # this process: a writer still at work
    locked = tmp_path / f".loop.html.loopdoc-{dead}-ijkl9012.tmp"  # a dead pid here, but locked: a writer elsewhere
    foreign = tmp_path / ".loop.html.mnop3456.tmp"  # not loopdoc's name: someone else's
    other = tmp_path / f".other.html.loopdoc-{dead}-qrst7890.tmp"  # another target's
    recovery = tmp_path / f".loop.html.loopdoc-{dead}-uvwx1234.new"  # the copy an interrupted in-place write keeps
    for p in (stale, live, locked, foreign, other, recovery):
        p.write_text("half")
    holder = os.open(locked, os.O_RDONLY)
    fcntl.flock(holder, fcntl.LOCK_EX)
    try:
        write_output("<p>new</p>\n", str(out))
    finally:
        os.close(holder)
    assert out.read_text() == "<p>new</p>\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in (out, live, locked, foreign, other, recovery))


KILLER = """
import os, signal, sys
from loopdoc.cli import main
real = os.fdopen
class Killer:
    def __init__(self, f): self.f = f
    def __enter__(self): return self
    def __exit__(self, *exc): self.f.close()
    def write(self, data):
        self.f.write(data[: len(data) // 2]); self.f.flush()
        os.kill(os.getpid(), getattr(signal, sys.argv[3]))
        self.f.write(data[len(data) // 2:])
os.fdopen = lambda fd, mode='r', *a, **k: Killer(real(fd, mode, *a, **k)) if 'w' in mode else real(fd, mode, *a, **k)
sys.exit(main(["render", sys.argv[1], "-o", sys.argv[2]]))
"""


@pytest.mark.parametrize("sig, code", [("SIGTERM", 143), ("SIGHUP", 129), ("SIGINT", 130), ("SIGKILL", -9)])
def test_a_signal_during_the_write_leaves_the_old_file_and_no_temporary(tmp_path, sig, code):
    """SIGTERM, SIGHUP and SIGINT half way through the write: one line, the old file whole, no temporary file.
    SIGKILL cannot be caught: it leaves a hidden temporary, which the next write removes."""
    out = tmp_path / "loop.html"
    out.write_bytes(KNOWN)
    proc = subprocess.run([sys.executable, "-c", KILLER, str(GOLDEN), str(out), sig], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == code, proc.stderr
    assert out.read_bytes() == KNOWN
    left = sorted(p.name for p in tmp_path.iterdir())
    if sig == "SIGKILL":
        assert len(left) == 2 and re.fullmatch(r"\.loop\.html\.loopdoc-[0-9]+-\w+\.tmp", left[0]), left
        write_output("<p>next</p>\n", str(out))
        assert sorted(p.name for p in tmp_path.iterdir()) == ["loop.html"]
    else:
        assert left == ["loop.html"]
        name = {"SIGTERM": "terminated by SIGTERM", "SIGHUP": "terminated by SIGHUP", "SIGINT": "interrupted"}[sig]
        assert proc.stderr.strip().splitlines() == [f"Error: {name}"]


def test_loop_model_text_round_trips_through_json_escapes():
    data = json.loads(GOLDEN.read_text(encoding="utf-8"))
    data["notes"] = [NASTY]
    loop = Loop.from_dict(data)
    text = render(loop, "json")
    assert not CONTROL.search(text) and Loop.from_dict(json.loads(text)) == loop
