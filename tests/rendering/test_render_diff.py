"""A loop diff rendered: terminal text (with and without colour), Markdown for a pull request, an HTML page, JSON.

The diffs compare the saved models of ``tests/fixtures/diff`` (no framework; see
``tests/analysis/test_diff_loops.py``).
"""

from __future__ import annotations

import json

import html5lib
import pytest
from helpers import DIFF as FIX
from helpers import diff_fixture_loops
from markdown_it import MarkdownIt

from loopdoc.diff import LoopDiff, diff_loops
from loopdoc.model import Loop
from loopdoc.render import render_diff

HTML_NS = "{http://www.w3.org/1999/xhtml}"


@pytest.fixture(scope="module")
def loops() -> dict[str, Loop]:
    """The loop of ``old.py`` and of every ``new_*.py``, keyed ``"old"`` and the case name."""
    return diff_fixture_loops()


def diff(loops: dict[str, Loop], case: str, ignore: frozenset[str] = frozenset()) -> LoopDiff:
    return diff_loops(loops["old"], loops[case], ignore)


def test_terminal_text(loops):
    text = render_diff(diff(loops, "order"), "txt")
    assert text.splitlines()[:3] == ["loopdoc diff", f"--- {FIX}/old.py:learn", f"+++ {FIX}/new_order.py:learn"]
    assert "  ~ LogLoss: order 10 → 60" in text
    assert "      ↕ LogLoss 2 → 4, now after Recorder (order 10 → 60)" in text
    assert "      now: TrainEvalCallback, Check, Recorder, LogLoss" in text
    assert "\x1b[" not in text
    coloured = render_diff(diff(loops, "order"), "txt", color=True)
    assert "\x1b[36m↕ LogLoss 2 → 4\x1b[0m" in coloured
    assert "No differences: both run the same loop." in render_diff(diff(loops, "reordered"), "txt")


def _md_tables(text: str) -> list[list[list[str]]]:
    """Every table of a Markdown text as rows of cell texts (the header row first)."""
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    tables, row, cells = [], None, None
    for t in tokens:
        if t.type == "table_open":
            tables.append([])
        elif t.type == "tr_open":
            row = []
        elif t.type in ("th_open", "td_open"):
            cells = []
        elif t.type == "inline" and cells is not None:
            cells.append(t.content)
        elif t.type in ("th_close", "td_close"):
            row.append(" ".join(cells))
            cells = None
        elif t.type == "tr_close":
            tables[-1].append(row)
    return tables


def test_markdown_for_a_pull_request(loops):
    text = render_diff(diff(loops, "run_valid"), "md")
    assert text.startswith(f"### Loop diff: `{FIX}/old.py:learn` → `{FIX}/new_run_valid.py:learn`\n")
    assert "**Changed: 1 callback, 2 events.**" in text
    callbacks, events = _md_tables(text)
    assert callbacks == [["callback", "change"], ["`Check`", "run_valid `True` → `False`"]]
    assert events[0] == ["phase", "event", "change", "old run order", "new run order"]
    assert events[1] == ["`fit/epoch/validate/batch`", "`after_pred`",
                         "**lost all its callbacks**<br>removed `Check` (run_valid True → False)", "`Check`", "—"]
    assert events[2][1] == "`after_batch`" and events[2][4] == "`LogLoss`, `Recorder`"

    doc = render_diff(diff(loops, "doc"), "md")
    assert "<details><summary>Docstring changes (2)</summary>" in doc
    # raw HTML with escaped text: python-markdown passes a <details> block through unparsed (issue 10)
    assert "<pre><code>- Log the loss of every batch.\n+ Log every batch's loss, for the loss curve.\n</code></pre>" in doc
    learner = _md_tables(render_diff(diff(loops, "learner"), "md"))[0]
    assert learner == [["setting", "old", "new"], ["loss", "`FlattenedLoss of MSELoss()`", "`FlattenedLoss of L1Loss()`"],
                       ["optimizer", "`partial(SGD, mom=0.9)`", "`Adam`"], ["metrics", "*none*", "`mae`"]]
    assert render_diff(diff(loops, "reordered"), "md").splitlines()[2] == "**No differences**: both run the same loop."


def _html(text: str):
    return html5lib.HTMLParser(strict=True, namespaceHTMLElements=True).parse(text)


def _classes(el) -> set[str]:
    return set((el.get("class") or "").split())


def _text(el) -> str:
    return " ".join("".join(el.itertext()).split())


def test_html_page_marks_the_changes_in_the_tree(loops):
    page = render_diff(diff(loops, "run_valid"), "html")
    tree = _html(page)
    assert "<script" not in page and "http://" not in page.replace("http://www.w3.org", "")
    assert _text(tree.find(f".//{HTML_NS}p[@id='verdict']")) == "Changed: 1 callback, 2 events."
    events = {el.get("id"): el for el in tree.iter(f"{HTML_NS}li") if "event" in _classes(el)}
    lost = events["fit-epoch-validate-batch-after_pred"]
    assert "d-lost" in _classes(lost) and "lost all its callbacks" in _text(lost)
    [removed] = [li for li in lost.iter(f"{HTML_NS}li") if "handler" in _classes(li)]
    assert "d-removed" in _classes(removed) and "Check" in _text(removed) and "run_valid True → False" in _text(removed)
    assert "d-same" in _classes(events["fit-epoch-train-batch-after_pred"])  # the training loop still has it
    phases = {el.get("id"): el for el in tree.iter(f"{HTML_NS}details")}
    assert phases["phase-fit-epoch-validate-batch"].get("open") is not None
    assert phases["phase-fit-epoch-train"].get("open") is None  # unchanged: folded
    cards = [li for li in tree.iter(f"{HTML_NS}li") if li.get("id") == "cb-Check"]
    assert len(cards) == 1 and "run_valid True → False" in _text(cards[0])

    moved = _html(render_diff(diff(loops, "order"), "html"))
    [h] = [li for li in moved.iter(f"{HTML_NS}li") if {"handler", "d-moved"} <= _classes(li)][:1]
    assert "moved 2 → 4" in _text(h) and "order 10 → 60" in _text(h) and h.get("value") == "4"
    same = _html(render_diff(diff(loops, "reordered"), "html"))
    assert _text(same.find(f".//{HTML_NS}p[@id='verdict']")) == "No differences: both run the same loop."


def test_json_rendering_is_the_model(loops):
    d = diff(loops, "added")
    data = json.loads(render_diff(d, "json"))
    assert data == d.to_dict()
    step = [p for p in data["phases"] if p["name"] == "fit"][0]
    assert step["status"] == "changed" and data["callbacks"][0]["id"] == "CountSteps"
