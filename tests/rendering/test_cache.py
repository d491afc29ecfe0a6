"""The docstring HTML memo (``loopdoc.rendering.cache.MarkdownMemo``): speed only, never a different byte."""

from __future__ import annotations

import json
import marshal
import os

import pytest
from helpers import ROOT, run_python

from loopdoc.model import Loop
from loopdoc.render import render
from loopdoc.rendering import cache, markdown
from loopdoc.rendering.cache import MEMO_LIMIT, MarkdownMemo, markdown_key

GOLDEN = ROOT / "tests" / "golden"


def _loop(name: str) -> Loop:
    return Loop.from_dict(json.loads((GOLDEN / f"{name}.json").read_text(encoding="utf-8")))


@pytest.fixture
def memo_dir(tmp_path, monkeypatch):
    """A fresh cache folder, and no memo left from other tests in this process."""
    monkeypatch.setenv("LOOPDOC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(markdown, "_MEMOS", {})
    return tmp_path / "cache" / "markdown"


def _memo_file(folder):
    files = [p for p in folder.iterdir() if p.suffix == ".marshal"]
    assert len(files) == 1, files
    return files[0]


@pytest.mark.parametrize("name", ["synth", "custom_callbacks", "hf_callbacks", "lightning_callbacks"])
def test_same_bytes_cold_warm_and_without(name, memo_dir, monkeypatch):
    loop = _loop(name)
    golden = (GOLDEN / f"{name}.html").read_text(encoding="utf-8")
    assert render(loop, "html") == golden  # cold: every docstring rendered, then remembered
    remembered = marshal.loads(_memo_file(memo_dir).read_bytes())
    assert any(k.startswith("block\0") for k in remembered) and any(k.startswith("inline\0") for k in remembered)
    monkeypatch.setattr(markdown, "_MEMOS", {})  # as a new process: read from the file
    assert render(loop, "html") == golden
    monkeypatch.setenv("LOOPDOC_CACHE_DIR", "")
    assert render(loop, "html") == golden


def test_memo_holds_what_markdown_it_makes(memo_dir):
    render(_loop("synth"), "html")
    parser = markdown.markdown_parser()
    remembered = marshal.loads(_memo_file(memo_dir).read_bytes())
    assert len(remembered) > 20
    for key, html in remembered.items():
        kind, text = key.split("\0", 1)
        expected = (parser.render(markdown.python_names_literal(text)) if kind == "block"
                    else parser.renderInline(" ".join(text.split("\n"))))
        assert html == expected


def test_a_remembered_render_imports_no_markdown_it(tmp_path):
    """The point of the memo: the second render of a saved model never imports markdown-it-py; the first one does."""
    code = ("import sys; from loopdoc.cli import main; code = main(['render', sys.argv[1], '-o', sys.argv[2]]); "
            "print(code, 'markdown_it' in sys.modules)")
    env = {"LOOPDOC_CACHE_DIR": str(tmp_path / "cache")}
    args = (str(GOLDEN / "synth.json"), str(tmp_path / "x.html"))
    first = run_python(code, *args, env=env)
    assert first.stdout.split() == ["0", "True"], first.stderr
    second = run_python(code, *args, env=env)
    assert second.stdout.split() == ["0", "False"], second.stderr
    assert (tmp_path / "x.html").read_text(encoding="utf-8") == (GOLDEN / "synth.html").read_text(encoding="utf-8")


@pytest.mark.parametrize("content", [b"", b"not marshal data", marshal.dumps(["a", "list"]), marshal.dumps({"block\0x": 3}),
                                     marshal.dumps({1: "<p>x</p>"}), marshal.dumps({"block\0x": "<p>x</p>"})[:-3]])
def test_a_broken_memo_file_is_an_empty_memo(content, memo_dir):
    golden = (GOLDEN / "synth.html").read_text(encoding="utf-8")
    render(_loop("synth"), "html")
    path = _memo_file(memo_dir)
    path.write_bytes(content)
    memo = MarkdownMemo(path.stem)
    assert memo.html("block", "x", lambda: "<p>made</p>\n") == "<p>made</p>\n"
    markdown._MEMOS.clear()
    assert render(_loop("synth"), "html") == golden
    assert isinstance(marshal.loads(path.read_bytes()), dict)  # written again, whole


def test_an_unwritable_or_impossible_cache_still_renders(tmp_path, monkeypatch):
    golden = (GOLDEN / "synth.html").read_text(encoding="utf-8")
    monkeypatch.setattr(markdown, "_MEMOS", {})
    (tmp_path / "a_file").write_text("in the way")
    monkeypatch.setenv("LOOPDOC_CACHE_DIR", str(tmp_path / "a_file" / "cache"))
    assert render(_loop("synth"), "html") == golden
    folder = tmp_path / "full"
    monkeypatch.setenv("LOOPDOC_CACHE_DIR", str(folder))

    def full_disk(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cache.os, "replace", full_disk)
    assert render(_loop("synth"), "html") == golden
    assert list((folder / "markdown").iterdir()) == []  # the temporary file is gone; no memo, no error


def test_a_new_markdown_setup_is_a_new_memo(tmp_path, monkeypatch):
    """The key follows loopdoc's Markdown code and the installed markdown-it-py: another file, or the same file
    rewritten (as an upgrade does), is another key."""
    code = tmp_path / "markdown.py"
    code.write_text("x = 1\n")
    key = markdown_key(str(code))
    assert key == markdown_key(str(code))
    os.utime(code, ns=(1, 1))
    assert markdown_key(str(code)) != key
    assert markdown_key(str(tmp_path / "other.py")) != key


def test_markdown_it_upgrade_changes_the_key(tmp_path, monkeypatch):
    before = markdown_key(markdown.__file__)
    fake = tmp_path / "markdown_it" / "__init__.py"
    fake.parent.mkdir()
    fake.write_text("__version__ = '99'\n")
    monkeypatch.setattr(cache, "_module_file", lambda name: str(fake) if name == "markdown_it" else None)
    assert markdown_key(markdown.__file__) != before


def test_the_memo_is_bounded(memo_dir, monkeypatch):
    monkeypatch.setattr(cache, "MEMO_LIMIT", 5)
    memo = MarkdownMemo("k")
    for i in range(8):
        memo.html("block", f"old {i}", lambda i=i: f"<p>old {i}</p>\n")
    memo.save()
    assert len(marshal.loads((memo_dir / "k.marshal").read_bytes())) == 8  # over the limit, but all used in this run
    memo = MarkdownMemo("k")
    memo.html("block", "old 1", lambda: "unused")
    memo.html("block", "new", lambda: "<p>new</p>\n")
    memo.save()
    assert marshal.loads((memo_dir / "k.marshal").read_bytes()) == {"block\0old 1": "<p>old 1</p>\n", "block\0new": "<p>new</p>\n"}
    assert MEMO_LIMIT == 4096


def test_two_writers_keep_both_entries_and_the_file_is_private(memo_dir):
    """Two renders at once (two memos read before either saves): the second save keeps what the first wrote."""
    first, second = MarkdownMemo("k"), MarkdownMemo("k")
    first.html("block", "one", lambda: "<p>one</p>\n")
    second.html("block", "two", lambda: "<p>two</p>\n")
    first.save()
    second.save()
    path = memo_dir / "k.marshal"
    assert marshal.loads(path.read_bytes()) == {"block\0one": "<p>one</p>\n", "block\0two": "<p>two</p>\n"}
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in memo_dir.iterdir()] == ["k.marshal"]  # no temporary file left


def test_huge_docstrings_are_not_remembered_and_the_file_is_bounded_in_size(memo_dir, monkeypatch):
    memo = MarkdownMemo("k")
    huge = "x" * cache.ENTRY_CHARS
    assert memo.html("block", huge, lambda: f"<p>{huge}</p>\n") == f"<p>{huge}</p>\n"
    memo.html("block", "small", lambda: "<p>small</p>\n")
    memo.save()
    assert list(marshal.loads((memo_dir / "k.marshal").read_bytes())) == ["block\0small"]
    monkeypatch.setattr(cache, "MEMO_BYTES", 100)
    memo = MarkdownMemo("k")
    for i in range(5):
        memo.html("block", f"text {i} " * 5, lambda i=i: f"<p>{i}</p>\n")
    memo.save()  # over 100 characters: only this memo's own entries are kept, not the older one
    kept = marshal.loads((memo_dir / "k.marshal").read_bytes())
    assert "block\0small" not in kept and len(kept) == 5
