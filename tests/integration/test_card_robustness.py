"""``loopdoc card`` on cards that are hard to edit safely (issue 10, item 7).


An unclosed code fence (refused, naming its line, for a write and for ``--check``), CR-only line ends
(idempotent, line ends kept), a hard-linked README (rewritten in place: the inode and the other link see
the new text), a FIFO or another non-regular file (refused at once, never read). The learner is a saved
model, so nothing here imports a framework.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT

from loopdoc.cli import main
from loopdoc.rendering.output import write_output

pytestmark = pytest.mark.subprocess

GOLDEN = ROOT / "tests" / "golden" / "synth.json"


@pytest.fixture
def folder(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "loop.json").write_bytes(GOLDEN.read_bytes())
    return tmp_path


def run(capsys, *argv: str) -> tuple[int, list[str]]:
    code = main(["card", *argv])
    return code, capsys.readouterr().err.strip().splitlines()


@pytest.mark.parametrize("card", [
    "# Model\n\nSome text.\n\n```python\nprint('never closed')\n",
    "# Model\n\n## Training procedure\n\n~~~~\nstill code\n~~~\n\n## Evaluation\n\nGood.\n",  # the ~~~ does not close ~~~~
])
def test_unclosed_fence_is_refused_for_write_and_check(folder, capsys, card):
    path = folder / "README.md"
    path.write_text(card)
    fence_line = next(i for i, line in enumerate(card.split("\n"), 1) if line.startswith(("```", "~~~~")))
    for check in ((), ("--check",)):
        code, err = run(capsys, "loop.json", "README.md", *check)
        assert code == 2 and err == [f"Error: README.md:{fence_line}: this code fence is never closed, so everything after it "
                                     "is code and a loopdoc section there would be too; close the fence (or add the loopdoc "
                                     "markers before it) and run again"], err
        assert path.read_text() == card


def test_fence_closed_then_each_run_is_idempotent(folder, capsys):
    path = folder / "README.md"
    path.write_text("# Model\n\n```python\nprint('closed')\n```\n\n## Training procedure\n\nText.\n")
    assert run(capsys, "loop.json", "README.md")[0] == 0
    first = path.read_bytes()
    assert first.count(b"<!-- loopdoc:start ") == 1
    for _ in range(2):
        assert run(capsys, "loop.json", "README.md") == (0, ["README.md: loopdoc section unchanged"])
    assert path.read_bytes() == first
    assert run(capsys, "loop.json", "README.md", "--check") == (0, ["README.md: the loopdoc section is current"])


def test_markers_before_an_unclosed_fence_still_work(folder, capsys):
    """The fence only matters where a new section would go: markers before it are found, and the update is idempotent."""
    path = folder / "README.md"
    path.write_text("# Model\n\n<!-- loopdoc:start -->\n<!-- loopdoc:end -->\n\n```\nopen to the end\n")
    assert run(capsys, "loop.json", "README.md")[0] == 0
    written = path.read_bytes()
    assert run(capsys, "loop.json", "README.md") == (0, ["README.md: loopdoc section unchanged"])
    assert path.read_bytes() == written and written.endswith(b"```\nopen to the end\n")


def test_cr_only_line_ends_are_kept_and_idempotent(folder, capsys):
    path = folder / "README.md"
    path.write_bytes(b"# Model\r\rText.\r\r## Training procedure\r\rTrained.\r\r## Evaluation\r\rGood.\r")
    assert run(capsys, "loop.json", "README.md") == (0, ["README.md: loopdoc section inserted"])
    first = path.read_bytes()
    assert b"\n" not in first, "the section uses the card's own line ends"
    assert first.count(b"<!-- loopdoc:start ") == 1 and first.endswith(b"## Evaluation\r\rGood.\r")
    assert run(capsys, "loop.json", "README.md") == (0, ["README.md: loopdoc section unchanged"])
    assert path.read_bytes() == first
    assert run(capsys, "loop.json", "README.md", "--check") == (0, ["README.md: the loopdoc section is current"])


def test_hard_linked_card_keeps_its_inode(folder, capsys):
    path, other = folder / "README.md", folder / "docs-README.md"
    path.write_text("# Model\n\n## Training procedure\n\nText.\n")
    os.link(path, other)
    inode = path.stat().st_ino
    assert run(capsys, "loop.json", "README.md") == (0, ["README.md: loopdoc section inserted"])
    assert path.stat().st_ino == inode and path.stat().st_nlink == 2
    assert other.read_bytes() == path.read_bytes() and b"<!-- loopdoc:start " in other.read_bytes()
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "docs-README.md", "loop.json"], "no copy left behind"


def test_in_place_write_refuses_after_an_interrupted_one(folder):
    """Killed while rewriting a hard-linked file in place, loopdoc leaves the complete new text in a ``.new`` copy;
    the next write does not remove it but says where it is."""
    from loopdoc.errors import OutputError

    path = folder / "README.md"
    path.write_text("old\n")
    os.link(path, folder / "other.md")
    left = folder / ".README.md.loopdoc-4999999-abcdefgh.new"
    left.write_text("complete new text\n")
    with pytest.raises(OutputError, match=r"interrupted; its complete new text is in .*\.README\.md\.loopdoc-4999999-abcdefgh\.new"):
        write_output("newer\n", str(path), keep_links=True)
    assert path.read_text() == "old\n" and left.exists()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs mkfifo")
def test_fifo_card_is_refused_without_blocking(folder):
    os.mkfifo(folder / "README.md")
    proc = subprocess.run([sys.executable, "-m", "loopdoc", "card", "loop.json", "README.md"], cwd=folder,
                          capture_output=True, text=True, timeout=120)  # a read would block for ever: the timeout fails it
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ["Error: README.md: not a regular file (a FIFO, socket or device); "
                                                "loopdoc card edits a Markdown file"]


def test_device_card_is_refused(capsys):
    assert main(["card", str(GOLDEN), "/dev/null"]) == 2
    assert "not a regular file" in capsys.readouterr().err
