"""``loopdoc diff``: ``diff_loops`` on pairs of real learners, its renderings, the command line, and the git form.

Fixtures: ``tests/fixtures/diff/old.py`` is a baseline learner (``synth_learner`` with three
custom callbacks); each ``new_*.py`` is a copy with one change, line for line where it can be,
so that the diff must report exactly that change. Their loops are built once, in this
process (fastai is imported once); the command line runs in-process on saved ``.json``
models, and in a subprocess only where a learner must be loaded by the CLI itself (one
learner pair, the git form).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import html5lib
import pytest
from conftest import ROOT
from markdown_it import MarkdownIt

from loopdoc.cli import _use_color, main
from loopdoc.diff import IGNORABLE, Change, LoopDiff, diff_loops, parse_ignore
from loopdoc.errors import LoadError, UsageError
from loopdoc.git import GitSpec, export_revision
from loopdoc.model import Event, Loop, Phase
from loopdoc.render import render_diff
from loopdoc.resolve import resolve

FIX = "tests/fixtures/diff"
CASES = ("added", "removed", "order", "tie", "reordered", "run_valid", "doc", "learner", "lines")
HTML_NS = "{http://www.w3.org/1999/xhtml}"


@pytest.fixture(scope="module")
def loops() -> dict[str, Loop]:
    """The loop of ``old.py`` and of every ``new_*.py``, keyed ``"old"`` and the case name."""
    with contextlib.chdir(ROOT):
        out = {"old": resolve(f"{FIX}/old.py", isolated=False).document}
        for case in CASES:
            out[case] = resolve(f"{FIX}/new_{case}.py", isolated=False).document
    return out


@pytest.fixture(scope="module")
def saved(loops: dict[str, Loop], tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Each loop saved as ``.json`` (as ``loopdoc render -o x.json`` writes it), by the same keys."""
    folder = tmp_path_factory.mktemp("saved")
    out = {}
    for name, loop in loops.items():
        path = folder / f"{name}.json"
        path.write_text(loop.to_json(), encoding="utf-8")
        out[name] = str(path)
    return out


def diff(loops: dict[str, Loop], case: str, ignore: frozenset[str] = frozenset()) -> LoopDiff:
    return diff_loops(loops["old"], loops[case], ignore)


def changed_handlers(d: LoopDiff) -> list[tuple[str, str, str, str, str | None]]:
    """``(path, event, callback, status, reason)`` of every handler that is not the same."""
    return [(e.path, e.name, h.callback, h.status, h.reason) for e in d.events() for h in e.handlers if h.status != "same"]


# ---------------------------------------------------------------- diff_loops on real learners


def test_callback_added_and_event_gaining_its_first_callback(loops):
    d = diff(loops, "added")
    assert not d.same and d.learner == ()
    [cb] = d.callbacks
    assert (cb.id, cb.status, cb.order, cb.events) == ("CountSteps", "added", 30, ("after_step",))
    assert cb.flags == {"run": True, "run_train": True, "run_valid": True}
    [event] = d.events()
    assert (event.path, event.name, event.status, event.old, event.new) == (
        "fit/epoch/train/batch/step", "after_step", "gained", (), ("CountSteps",))
    [h] = event.handlers
    assert (h.callback, h.function, h.status, h.new_index, h.after, h.reason) == (
        "CountSteps", "CountSteps.after_step", "added", 1, None, "new callback")


def test_callback_removed_and_event_losing_all_callbacks(loops):
    d = diff(loops, "removed")
    [cb] = d.callbacks
    assert (cb.id, cb.status, cb.order, cb.events) == ("ClipGrad", "removed", 20, ("after_backward",))
    assert changed_handlers(d) == [("fit/epoch/train/batch/backward", "after_backward", "ClipGrad", "removed", "callback removed")]
    assert d.events()[0].status == "lost" and d.events()[0].new == ()


def test_order_changed_moves_the_callback_not_its_neighbours(loops):
    d = diff(loops, "order")
    [cb] = d.callbacks
    assert (cb.id, cb.status, cb.changes) == ("LogLoss", "changed", (Change("order", 10, 60),))
    assert changed_handlers(d) == [
        ("fit/epoch/train/batch", "after_batch", "LogLoss", "moved", "order 10 → 60"),
        ("fit/epoch/validate/batch", "after_batch", "LogLoss", "moved", "order 10 → 60"),
    ]
    train = d.events()[0]
    assert train.old == ("TrainEvalCallback", "LogLoss", "Check", "Recorder")
    assert train.new == ("TrainEvalCallback", "Check", "Recorder", "LogLoss")
    [moved] = train.moved
    assert (moved.old_index, moved.new_index, moved.after) == (2, 4, "Recorder")


def test_relative_position_changed_by_a_tie_in_order(loops):
    d = diff(loops, "tie")
    assert d.callbacks == () and d.learner == ()  # no callback changed: only the cbs list order, which breaks the tie
    assert [(e.path, e.name, e.old, e.new) for e in d.events()] == [
        ("fit/epoch/train/batch", "after_batch", ("TrainEvalCallback", "LogLoss", "Check", "Recorder"),
         ("TrainEvalCallback", "Check", "LogLoss", "Recorder")),
        ("fit/epoch/validate/batch", "after_batch", ("LogLoss", "Check", "Recorder"), ("Check", "LogLoss", "Recorder")),
    ]
    for e in d.events():
        [moved] = e.moved
        assert moved.callback == "LogLoss" and moved.after == "Check"
        assert "same order 10 as Check" in moved.reason and "cbs list order" in moved.reason
    # after_pred is handled by Check alone: nothing to reorder there
    assert all(e.name == "after_batch" for e in d.events())


def test_pure_reordering_of_cbs_with_the_same_run_order_is_no_difference(loops):
    d = diff(loops, "reordered")
    assert d.same
    assert (d.learner, d.callbacks, d.events()) == ((), (), [])
    assert d.summary() == dict.fromkeys(("learner", "callbacks", "events", "added", "removed", "moved", "changed"), 0)
    assert [cb.id for cb in loops["old"].callbacks] == [cb.id for cb in loops["reordered"].callbacks]


def test_run_valid_flag_changed_leaves_the_validation_batch_loop(loops):
    d = diff(loops, "run_valid")
    [cb] = d.callbacks
    assert (cb.id, cb.changes) == ("Check", (Change("run_valid", True, False),))
    assert changed_handlers(d) == [
        ("fit/epoch/validate/batch", "after_pred", "Check", "removed", "run_valid True → False"),
        ("fit/epoch/validate/batch", "after_batch", "Check", "removed", "run_valid True → False"),
    ]
    pred, batch = d.events()
    assert (pred.status, pred.old, pred.new) == ("lost", ("Check",), ())
    assert (batch.status, batch.new) == ("changed", ("LogLoss", "Recorder"))


def test_docstrings_changed_and_ignored(loops):
    d = diff(loops, "doc")
    [cb] = d.callbacks
    assert (cb.id, cb.changes) == ("LogLoss", (Change("doc", "Log the loss of every batch.", "Log every batch's loss, for the loss curve."),))
    events = d.events()
    assert [(e.path, e.name, e.status) for e in events] == [
        ("fit/epoch/train/batch", "after_pred", "changed"), ("fit/epoch/validate/batch", "after_pred", "changed")]
    for e in events:
        [h] = e.changed
        assert (h.function, h.status, h.changes) == (
            "Check.after_pred", "changed", (Change("doc", "Check the prediction has the batch's shape.", "Assert one prediction per input."),))
    assert [who for who, _ in d.doc_changes()] == ["LogLoss", "Check.after_pred"]  # each docstring once
    assert diff(loops, "doc", frozenset({"docstrings"})).same


def test_learner_settings_changed(loops):
    d = diff(loops, "learner")
    assert d.learner == (
        Change("loss_func", "FlattenedLoss of MSELoss()", "FlattenedLoss of L1Loss()"),
        Change("opt_func", "partial(SGD, mom=0.9)", "Adam"),
        Change("metrics", [], ["mae"]),
    )
    assert d.callbacks == () and d.events() == []
    assert diff(loops, "learner", frozenset({"learner"})).same


def test_source_lines_moved_and_ignored(loops):
    d = diff(loops, "lines")
    [cb] = d.callbacks
    assert (cb.id, cb.changes) == ("ClipGrad", (Change("source", f"{FIX}/old.py:31", f"{FIX}/new_lines.py:32"),))
    [h] = d.events()[0].changed
    assert h.changes == (Change("source", f"{FIX}/old.py:36", f"{FIX}/new_lines.py:37"),)
    assert diff(loops, "lines", frozenset({"source"})).same


def test_learner_file_renamed_compares_classes_relative_to_it(loops):
    """``old.LogLoss`` and ``new_x.LogLoss`` are the same class for the diff; a class from elsewhere is not."""
    qualnames = {cb.id: cb.qualname for cb in loops["old"].callbacks} | {cb.id + "'": cb.qualname for cb in loops["reordered"].callbacks}
    assert (qualnames["LogLoss"], qualnames["LogLoss'"]) == ("old.LogLoss", "new_reordered.LogLoss")
    assert diff(loops, "reordered").same
    new = loops["old"]
    swapped = tuple(dataclasses.replace(cb, qualname="mylib.LogLoss") if cb.id == "LogLoss" else cb for cb in new.callbacks)
    d = diff_loops(loops["old"], dataclasses.replace(new, callbacks=swapped))
    assert [(cb.id, cb.changes) for cb in d.callbacks] == [("LogLoss", (Change("class", "old.LogLoss", "mylib.LogLoss"),))]


def test_versions_and_notes_changed_and_ignored(loops):
    old = loops["old"]
    new = dataclasses.replace(old, versions={**old.versions, "torch": "9.9"}, notes=("A new note.",))
    d = diff_loops(old, new)
    assert d.learner == (Change("versions.torch", old.versions["torch"], "9.9"), Change("note", None, "A new note."))
    assert diff_loops(old, new, {"versions", "notes"}).same


def test_repeated_phases_are_keyed_by_occurrence(loops):
    """A second ``fit`` (as ``fine_tune`` runs): the first matches the old loop's lone ``fit``, the second is added."""
    old = loops["old"]
    create, fit = old.phases
    d = diff_loops(old, dataclasses.replace(old, phases=(create, fit, fit)))
    assert [(p.name, p.path, p.status) for p in d.phases] == [
        ("create", "create", "same"), ("fit[0]", "fit[0]", "same"), ("fit[1]", "fit[1]", "added")]
    paths = {e.path for e in d.events()}
    assert "fit[1]/epoch/train/batch" in paths and not any(p.startswith("fit[0]") for p in paths)
    assert {e.status for e in d.events()} == {"added"}
    assert {h.reason for e in d.events() for h in e.handlers} == {"the event is new"}
    [whole] = d.whole_phases()
    assert (whole.path, len(whole.events())) == ("fit[1]", len(fit_events := [e for e in d.all_events() if e.path.startswith("fit[0]")]))
    assert fit_events and whole.callbacks() == ["TrainEvalCallback", "Recorder", "CastToTensor", "Check", "ClipGrad", "LogLoss"]
    text = render_diff(d, "txt")  # an added phase is one line, not each of its events
    assert f"  + fit[1]  phase added: {len(fit_events)} events; callbacks TrainEvalCallback, Recorder," in text
    assert "Events" not in text and "fit[1]/epoch" not in text
    # and back: the second fit is removed, the first unchanged
    back = diff_loops(dataclasses.replace(old, phases=(create, fit, fit)), old)
    assert [(p.name, p.status) for p in back.phases] == [("create", "same"), ("fit[0]", "same"), ("fit[1]", "removed")]


def test_event_added_with_a_phase(loops):
    old = loops["old"]
    create, fit = old.phases
    before_fit = next(n for n in fit.children if isinstance(n, Event))
    extra = Phase("extra", "A phase only the new loop has.", (before_fit,))
    d = diff_loops(old, dataclasses.replace(old, phases=(create, fit, extra)))
    [e] = d.events()
    assert (e.path, e.name, e.status, e.old, e.new) == ("extra", "before_fit", "added", (), ("TrainEvalCallback", "Recorder"))
    assert [h.status for h in e.handlers] == ["added"] * 2
    assert [(p.name, p.status) for p in d.phases] == [("create", "same"), ("fit", "same"), ("extra", "added")]


def test_diff_is_deterministic_and_json_ready(loops):
    d = diff(loops, "run_valid")
    assert d == diff(loops, "run_valid")
    data = d.to_dict()
    assert list(data)[:3] == ["schema_version", "same", "summary"]
    assert data["schema_version"] == "1.0" and data["same"] is False
    assert data["summary"] == {"learner": 0, "callbacks": 1, "events": 2, "added": 0, "removed": 2, "moved": 0, "changed": 0}
    assert json.loads(d.to_json()) == data
    assert data["callbacks"][0]["changes"] == [{"field": "run_valid", "old": True, "new": False}]


def test_ignore_categories_are_checked(loops):
    assert parse_ignore(["docstrings", "source,versions"]) == {"docstrings", "source", "versions"}
    with pytest.raises(UsageError, match="unknown category 'doc'"):
        parse_ignore(["doc"])
    with pytest.raises(UsageError, match="unknown category ''"):
        parse_ignore(["docstrings,"])
    assert set(IGNORABLE) == {"docstrings", "source", "versions", "learner", "notes"}
    with pytest.raises(UsageError, match="unknown ignore categories bogus"):
        diff_loops(loops["old"], loops["old"], {"bogus"})


# ---------------------------------------------------------------- renderings


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


def test_color_only_on_a_terminal_without_no_color():
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert _use_color(Tty(), {})
    assert _use_color(Tty(), {"NO_COLOR": ""})  # https://no-color.org: only a non-empty value disables
    assert not _use_color(Tty(), {"NO_COLOR": "1"})
    assert not _use_color(io.StringIO(), {})
    assert not _use_color(None, {})


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


# ---------------------------------------------------------------- the command line (in-process, saved models)


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


def test_cli_learner_with_the_same_run_order_exits_0(saved):
    """A real learner file loaded by the CLI (in its own process) against the baseline's saved model."""
    proc = loopdoc_cli("diff", saved["old"], f"{FIX}/new_reordered.py", cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[1:3] == [f"--- {FIX}/old.py:learn", f"+++ {FIX}/new_reordered.py:learn"]
    assert "No differences: both run the same loop." in proc.stdout


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


def snapshot(folder: Path) -> dict[str, bytes | None]:
    return {p.relative_to(folder).as_posix(): None if p.is_dir() else p.read_bytes()
            for p in sorted(folder.rglob("*")) if ".git" not in p.relative_to(folder).parts}


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


def test_git_revision_against_the_working_tree(repo, tmp_path):
    folder = repo / "train"
    before, head = snapshot(repo), git(repo, "rev-parse", "HEAD")
    out = tmp_path / "diff.json"
    proc = loopdoc_cli("diff", "git:HEAD~1:learner.py", "learner.py", "-o", str(out), cwd=folder)
    assert proc.returncode == 1, proc.stderr
    data = json.loads(out.read_text())
    assert data["old"]["loaded_from"] == "git:HEAD~1:learner.py:learn"
    assert data["new"]["loaded_from"] == "learner.py:learn"
    assert data["callbacks"] == [{"id": "Audit", "status": "changed", "qualname": "helpers.Audit", "order": 70,
                                  "flags": {"run": True, "run_train": True, "run_valid": True},
                                  "changes": [{"field": "order", "old": 10, "new": 70}], "events": ["after_batch"]}]
    moved = [(e["path"], h["callback"], h["reason"]) for e in _events(data) for h in e["handlers"] if h["status"] == "moved"]
    assert moved == [("fit/epoch/train/batch", "Audit", "order 10 → 70"), ("fit/epoch/validate/batch", "Audit", "order 10 → 70")]
    # the working tree is untouched: no checkout, no __pycache__, same bytes, same HEAD, clean status
    assert snapshot(repo) == before
    assert git(repo, "status", "--porcelain", "--ignored") == ""
    assert git(repo, "rev-parse", "HEAD") == head


def _events(data: dict) -> list[dict]:
    out = []

    def walk(node: dict) -> None:
        if node["kind"] == "event":
            out.append(node)
        else:
            for child in node["children"]:
                walk(child)

    for p in data["phases"]:
        walk(p)
    return out


def test_git_spec_parsing():
    assert GitSpec.parse("git:HEAD~1:train/learner.py:make") == GitSpec("git:HEAD~1:train/learner.py:make", "HEAD~1", "train/learner.py", "make")
    assert GitSpec.parse("git:v1.0:learner.py").attr is None
    assert GitSpec.parse("git:main:loop.json").is_json
    for bad in ("git:HEAD", "git::learner.py", "git:HEAD:", "git:-x:learner.py", "git:HEAD:notes.txt"):
        with pytest.raises(UsageError):
            GitSpec.parse(bad)


def test_git_export_mirrors_the_revision_without_touching_the_tree(repo, tmp_path, monkeypatch):
    monkeypatch.chdir(repo / "train")
    before = snapshot(repo)
    exported = export_revision(GitSpec.parse("git:HEAD~1:learner.py"), tmp_path / "x")
    assert exported.rel == "train/learner.py" and exported.file == (tmp_path / "x" / "train" / "learner.py").resolve()
    assert exported.file.read_text() == LEARNER
    assert (exported.file.parent / "helpers.py").read_text() == HELPERS.format(order=10)
    assert exported.shown == "learner.py"
    assert exported.rewrite(f"{exported.file}:3: NameError") == "git:HEAD~1:learner.py:3: NameError"
    assert snapshot(repo) == before and git(repo, "status", "--porcelain") == ""
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
