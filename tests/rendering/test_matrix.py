"""The loop at a glance: the matrix (HTML, SVG, Markdown), the trace chart, the folded quiet events, ``--assets``.

On the golden models and on hand-built models of other frameworks (a Lightning-shaped loop with module and
datamodule rows, a Hugging Face-shaped one), which must work without any template change. No fastai.
The browser side (links land, scrolling, themes, screenshots) is in ``tests/integration/test_browser.py``.
"""

from __future__ import annotations

import dataclasses
import html
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import html5lib
import pytest
from helpers import GOLDEN, HOSTILE, ROOT, handmade_loop, handmade_trace
from markdown_it import MarkdownIt

from loopdoc.cli import main
from loopdoc.model import Callback, Event, Framework, Handler, LearnerSummary, Loop, Phase, load_json
from loopdoc.render import render
from loopdoc.rendering.charts import code_segments, quiet_run, trace_chart, what_it_does
from loopdoc.rendering.matrix import loop_matrix, svg_layout

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def cc() -> Loop:
    return load_json(str(GOLDEN / "custom_callbacks.json"))


def _h(cb: str, name: str, via: str = "method") -> Handler:
    return Handler(cb, f"{cb}.{name}", via, f"my.{cb}", None, None)


def lightning_like() -> Loop:
    """A Lightning-shaped loop: hooks, a callback, the LightningModule and the LightningDataModule as rows."""
    cbs = (
        Callback("ModelCheckpoint", "ModelCheckpoint", "lightning.pytorch.callbacks.ModelCheckpoint", "Save checkpoints.",
                 None, None, origin="Lightning default"),
        Callback("LitModel", "LitModel", "my.LitModel", "The model.", None, None, kind="module"),
        Callback("LitData", "LitData", "my.LitData", None, None, None, kind="datamodule"),
    )
    train_batch = Phase("batch", "One training batch.", (
        Event("on_train_batch_start", "Before the batch.", (_h("LitModel", "on_train_batch_start"),)),
        Event("training_step", "The step.", (_h("LitModel", "training_step"),)),
        Event("on_train_batch_end", "After the batch.", (_h("ModelCheckpoint", "on_train_batch_end"), _h("LitModel", "on_train_batch_end"))),
    ), loop="for each batch of train_dataloader()")
    valid_batch = Phase("batch", "One validation batch.", (
        Event("validation_step", "The step.", (_h("LitModel", "validation_step"),)),
    ), loop="for each batch of val_dataloader()")
    phases = (Phase("fit", "Trainer.fit.", (
        Event("setup", "Once.", (_h("LitData", "setup"), _h("LitModel", "setup"))),
        Event("on_fit_start", "Once.", (_h("ModelCheckpoint", "on_fit_start"),)),
        Phase("epoch", "One epoch.", (
            Phase("train", "Training.", (
                Event("on_train_epoch_start", "Start.", ()),
                train_batch,
                Event("on_train_epoch_end", "End.", (_h("ModelCheckpoint", "on_train_epoch_end"),)),
            ), stage="train"),
            Phase("validate", "Validation.", (valid_batch,), stage="validate"),
        ), loop="for each epoch"),
        Event("on_fit_end", "Once.", (_h("LitModel", "on_fit_end"),)),
    )),)
    return Loop(Framework("lightning", "2.5.0"), {"lightning": "2.5.0", "torch": "2.5.0+cu124"},
                LearnerSummary("train.py:trainer", "my.LitModel", None, None), "fit", (), cbs, phases)


def transformers_like() -> Loop:
    """A Hugging Face Trainer-shaped loop: TrainerCallback events, one stage, no cancel branches."""
    cbs = (Callback("DefaultFlowCallback", "DefaultFlowCallback", "transformers.trainer_callback.DefaultFlowCallback", None, None, None),
           Callback("PrinterCallback", "PrinterCallback", "transformers.trainer_callback.PrinterCallback", None, None, None))
    phases = (Phase("train", "Trainer.train.", (
        Event("on_train_begin", "Once.", ()),
        Phase("epoch", "One epoch.", (
            Phase("step", "One step.", (
                Event("on_step_begin", "Before.", ()),
                Event("on_step_end", "After.", (_h("DefaultFlowCallback", "on_step_end"),)),
            ), loop="for each step"),
            Event("on_log", "Logs.", (_h("PrinterCallback", "on_log"),)),
        ), loop="for each epoch", stage="train"),
        Event("on_train_end", "Once.", ()),
    )),)
    return Loop(Framework("transformers", "4.50.0"), {"transformers": "4.50.0"},
                LearnerSummary("train.py:trainer", "my.Model", None, None), "train", (), cbs, phases)


def page_ids(html: str) -> set[str]:
    return set(re.findall(r'\bid="([^"]+)"', html))


# ---------------------------------------------------------------- the matrix model


def test_matrix_of_the_custom_example(cc: Loop) -> None:
    m = loop_matrix(cc)
    assert [(g.label, g.stage, len(g.columns)) for g in m.groups] == [
        ("create", None, 1), ("fit", None, 2), ("epoch", None, 2), ("train", "train", 10), ("validate", "validate", 6),
        ("after_cancel_…", None, 8)]
    assert len(m.columns) == len(cc.iter_events())
    assert {c.anchor for c in m.columns} == {"-".join(p + (e.name,)) for p, e in cc.iter_events(keyed=True)}
    train = m.groups[3]
    assert [c.event for c in train.columns] == ["before_train", "before_batch", "after_pred", "after_loss", "before_backward",
                                               "after_backward", "before_step", "after_step", "after_batch", "after_train"]
    assert all(c.filter == "run_train" for c in train.columns[1:-1]) and train.columns[0].filter is None
    cancel = m.groups[-1]
    assert [c.label for c in cancel.columns] == ["backward", "step", "batch (train)", "train", "batch (validate)", "validate",
                                                 "epoch", "fit"]  # the shared prefix is the group's label
    assert [c.event for c in cancel.columns][:3] == ["after_cancel_backward", "after_cancel_step", "after_cancel_batch"]
    assert cancel.columns[0].home == "train › batch › backward" and cancel.columns[0].stage == "train"
    assert [r.callback.id for r in m.rows] == [cb.id for cb in cc.callbacks]  # run order
    rows = {r.callback.id: r for r in m.rows}
    assert rows["Tracer"].count == len(m.columns) and {mk.kind for mk in rows["Tracer"].marks} == {"dispatch"}
    assert rows["Muted"].count == 0 and rows["Muted"].off == ("run=False",)
    assert rows["TrainEvalCallback"].off == ("run_valid=False",)
    col = {c.anchor: i for i, c in enumerate(m.columns)}
    assert rows["LogTrainBatch"].marks[col["fit-before_fit"]].kind == "inherited"  # LogBatch.before_fit
    assert rows["Callback"].marks[col["fit-epoch-train-batch-before_batch"]].kind == "instance"
    assert rows["Recorder"].marks[col["fit-epoch-validate-batch-after_batch"]].function == "Recorder.after_batch"
    # every handler is a mark, and nothing else is
    assert sum(r.count for r in m.rows) == sum(len(e.handlers) for _, e in cc.iter_events())
    assert m.kinds == ("own", "inherited", "dispatch", "instance")


def test_repeated_top_level_phases_get_telling_labels(cc: Loop) -> None:
    twice = dataclasses.replace(cc, phases=(*cc.phases, cc.phases[1]))  # create, fit, fit (as fine_tune)
    labels = [g.label for g in loop_matrix(twice).groups]
    assert labels == ["create", "fit", "fit › epoch", "fit › train", "fit › validate", "fit2", "fit2 › epoch", "fit2 › train",
                      "fit2 › validate", "after_cancel_…"]
    anchors = [c.anchor for c in loop_matrix(twice).columns]
    assert len(anchors) == len(set(anchors)) and "fit2-epoch-train-batch-after_batch" in anchors


@pytest.mark.parametrize("make", [lightning_like, transformers_like])
def test_other_frameworks_need_no_template_change(make) -> None:
    loop = make()
    m = loop_matrix(loop)
    page = render(loop, "html")
    html5lib.HTMLParser(strict=True).parse(page)
    ids = page_ids(page)
    marks = re.findall(r'<a class="mk mk-(\w+)" href="#([^"]+)"', page)
    assert len(marks) == sum(len(e.handlers) for _, e in loop.iter_events())
    assert {anchor for _, anchor in marks} <= ids  # every mark lands on an event of the tree
    assert {f"cb-{cb.id}" for cb in loop.callbacks} <= ids
    rows = re.findall(r'<tr class="mx-row[^"]*">\n<th class="mx-cb" scope="row"><a class="cb-link" href="#cb-([^"]+)">', page)
    assert rows == [cb.id for cb in loop.callbacks]
    if make is lightning_like:
        assert [g.label for g in m.groups] == ["fit", "train", "validate"]
        assert [c.event for c in m.groups[0].columns] == ["setup", "on_fit_start", "on_fit_end"]
        assert '<span class="b kind">module</span>' in page and '<span class="b kind">datamodule</span>' in page
        assert [g.stage for g in m.groups] == [None, "train", "validate"]
    else:
        assert [g.label for g in m.groups] == ["train", "epoch"]
        assert m.groups[1].stage == "train" and [c.event for c in m.groups[1].columns] == ["on_step_begin", "on_step_end", "on_log"]
        assert "&#8623;" not in page.split('id="matrix"')[1].split("</section>")[0]  # no cancel branches
    svg = ET.fromstring(render(loop, "svg"))
    assert len(svg.findall(f".//{SVG}g[@class='row']")) == len(loop.callbacks)
    md = render(loop, "md")
    assert f"Who runs where: {len(loop.callbacks)} callbacks × {len(m.columns)} events" in md


# ---------------------------------------------------------------- the standalone SVG


@pytest.mark.parametrize("name", ["custom_callbacks", "synth", "tabular"])
def test_svg_is_valid_inert_and_deterministic(name: str) -> None:
    loop = load_json(str(GOLDEN / f"{name}.json"))
    text = render(loop, "svg")
    assert text == render(loop, "svg")
    root = ET.fromstring(text)  # well-formed XML
    assert root.tag == f"{SVG}svg" and root.get("viewBox") == f"0 0 {root.get('width')} {root.get('height')}"
    elements = list(root.iter())
    assert not [e for e in elements if e.tag in (f"{SVG}script", f"{SVG}foreignObject", f"{SVG}image", f"{SVG}use", f"{SVG}a")]
    assert not [(e.tag, k) for e in elements for k in e.attrib if k.startswith("on") or k.endswith("href")]
    style = root.find(f"{SVG}style").text
    assert "url(" not in style and "@import" not in style and "prefers-color-scheme: dark" in style and "@media print" in style
    assert re.findall(r"https?://[^\"' ]+", text) == ["http://www.w3.org/2000/svg"]  # only the namespace
    m = loop_matrix(loop)
    rows = root.findall(f".//{SVG}g[@class='row']")
    assert [r.find(f"{SVG}text").text for r in rows] == [cb.id for cb in loop.callbacks]
    marks = [e for r in rows for e in r.iter() if (e.get("class") or "").startswith("mk ")]
    assert len(marks) == sum(r.count for r in m.rows)
    labels = [e for e in root.iter(f"{SVG}text") if (e.get("class") or "").startswith("ev")]
    assert [e.find(f"{SVG}title").tail for e in labels] == [c.label for c in m.columns]  # the tooltip first, then the text
    layout = svg_layout(m, "t")
    assert float(root.get("width")) == layout.width and layout.right < layout.width


def test_svg_escapes_hostile_names() -> None:
    loop = handmade_loop(HOSTILE)
    text = render(loop, "svg")
    root = ET.fromstring(text)
    names = [r.find(f"{SVG}text").text for r in root.findall(f".//{SVG}g[@class='row']")]
    assert names[0] == HOSTILE["cb_a"] and "<img" not in text.replace("&lt;img", "")
    assert not [e for e in root.iter() if e.tag in (f"{SVG}script", f"{SVG}img", f"{SVG}foreignObject")]


def test_cli_writes_svg(tmp_path: Path) -> None:
    out = tmp_path / "loop.svg"
    assert main(["render", str(GOLDEN / "synth.json"), "-o", str(out)]) == 0
    assert ET.parse(out).getroot().tag == f"{SVG}svg"
    assert main(["render", str(GOLDEN / "synth.json"), "-o", str(tmp_path / "x.img"), "--format", "svg"]) == 0
    assert (tmp_path / "x.img").read_bytes() == out.read_bytes()


# ---------------------------------------------------------------- the HTML page


def test_page_matrix_links_and_layout(cc: Loop) -> None:
    page = render(cc, "html")
    doc = html5lib.HTMLParser(strict=True, namespaceHTMLElements=False).parse(page)
    section = doc.find(".//section[@id='matrix']")
    assert section is not None and section.find("h2").text == "Who runs where"
    table = section.find(".//table[@class='mx']")
    heads = [th for th in table.iter("th") if "mx-ev" in th.get("class", "")]
    m = loop_matrix(cc)
    assert [th.find("a").get("href") for th in heads] == ["#" + c.anchor for c in m.columns]
    assert [th.find("a").text for th in heads] == [c.label for c in m.columns]
    assert "stage-train" in heads[5].get("class") and "stage-validate" in heads[15].get("class")
    groups = [th for th in table.iter("th") if "mx-grp" in th.get("class", "")]
    assert [int(th.get("colspan")) for th in groups] == [len(g.columns) for g in m.groups]
    assert groups[3].find("a").get("href") == "#phase-fit-epoch-train"
    body_rows = table.find("tbody").findall("tr")
    assert len(body_rows) == len(cc.callbacks)
    ids = page_ids(page)
    for row, r in zip(body_rows, m.rows, strict=True):
        cells = row.findall("td")[1:]  # after the order
        assert len(cells) == len(m.columns)
        for cell, mark, col in zip(cells, r.marks, m.columns, strict=True):
            link = cell.find("a")
            assert (link is None) == (mark is None)
            if link is not None:
                assert link.get("href") == "#" + col.anchor and col.anchor in ids
                assert link.get("title") == f"{mark.function} at {col.place}"
    # The box scrolls, not the page; the page's nav and contents point at it.
    assert section.find(".//div[@class='mx-wrap']").get("tabindex") == "0"
    assert '<a href="#matrix">Who runs where</a>' in page and 'id="toc"' in page


def test_page_contents_theme_and_quiet_toggle() -> None:
    loop = load_json(str(GOLDEN / "synth.json"))
    page = render(loop, "html")
    doc = html5lib.HTMLParser(strict=True, namespaceHTMLElements=False).parse(page)
    toc = doc.find(".//nav[@id='toc']")
    links = [a.get("href") for a in toc.iter("a")]
    assert links == ["#matrix", "#loop", "#phase-create", "#phase-fit", "#phase-fit-epoch", "#phase-fit-epoch-train",
                     "#phase-fit-epoch-train-batch", "#phase-fit-epoch-train-batch-backward", "#phase-fit-epoch-train-batch-step",
                     "#phase-fit-epoch-validate", "#phase-fit-epoch-validate-batch", "#callbacks"]
    assert set(links[2:-1]) <= {f"#{i}" for i in page_ids(page)}
    radios = [i for i in doc.iter("input") if i.get("name") == "ld-theme"]
    assert [(r.get("id"), r.get("checked") is not None) for r in radios] == [
        ("ld-theme-auto", True), ("ld-theme-light", False), ("ld-theme-dark", False)]
    quiet = [e for _, e in loop.iter_events() if not e.handlers]
    toggle = doc.find(".//input[@id='ld-show-quiet']")
    assert toggle is not None and toggle.get("checked") is None
    assert f"show the {len(quiet)} events without callbacks" in page
    folds = [li for li in doc.iter("li") if li.get("class") == "quiet-fold"]
    named = [c.text for li in folds for c in li.iter("code")]
    assert sorted(named) == sorted(e.name for e in quiet)  # each quiet event is in exactly one fold
    assert all(li.find("label").get("for") == "ld-show-quiet" for li in folds)
    style = doc.find(".//style").text
    assert ":root:has(#ld-theme-dark:checked)" in style and "html:has(#ld-show-quiet:not(:checked))" in style


def test_quiet_runs() -> None:
    a, b, c = Event("a", ""), Event("b", "", (_h("X", "b"),)), Event("c", "")
    children = (a, Event("a2", ""), b, c, Phase("p", ""), Event("d", ""))
    assert [quiet_run(children, i) for i in range(len(children))] == [["a", "a2"], None, None, ["c"], None, ["d"]]


def test_callback_summary_helpers() -> None:
    assert what_it_does(None) == ""
    assert what_it_does("Save the model. Then more.\n\nDetails.") == "Save the model."
    assert what_it_does("Wrapped\nfirst line. Second") == "Wrapped first line."
    long = what_it_does("word " * 60)
    assert len(long) <= 161 and long.endswith("…")
    assert code_segments("Sets `learn.training` or ``a`b``.") == [(False, "Sets "), (True, "learn.training"), (False, " or "),
                                                                    (True, "a`b"), (False, ".")]


# ---------------------------------------------------------------- Markdown: the table, or the image with --assets


def _md_tables(text: str) -> list[list[list[str]]]:
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    tables, rows = [], None
    for t in tokens:
        if t.type == "table_open":
            rows = []
            tables.append(rows)
        elif t.type == "tr_open" and rows is not None:
            rows.append([])
        elif t.type == "inline" and rows is not None and rows:
            rows[-1].append("".join(c.content for c in t.children or []))
        elif t.type == "table_close":
            rows = None
    return tables


def _shown(cell: str) -> str:
    """A cell of the raw-HTML table as readers see it (``<code>``/``<strong>`` dropped, character references decoded)."""
    return html.unescape(re.sub(r"</?(code|strong)>", "", cell))


def test_markdown_matrix_table(cc: Loop) -> None:
    md = render(cc, "md")
    m = loop_matrix(cc)
    assert "<details>\n<summary>Who runs where: 11 callbacks × 29 events</summary>\n\n" in md
    table = _md_tables(md)[0]
    assert table[0] == ["phase", "event", *[str(i) for i in range(1, 12)]]
    assert len(table) == 1 + len(m.columns)
    assert [_shown(row[1]) for row in table[1:]] == [c.event for c in m.columns]
    assert all(row[1].startswith("<code>") for row in table[1:])  # raw HTML: inert in python-markdown's <details> too
    tracer = [row[-1] for row in table[1:]]
    assert tracer == ["◆"] * len(m.columns)
    recorder = {_shown(row[1]) + "@" + _shown(row[0]): row[11] for row in table[1:]}  # callback 10
    assert recorder["before_fit@fit"] == "●" and recorder["after_cancel_train@↯ train"] == "●"
    assert "1 <code>TrainEvalCallback</code> (run&#95;valid=False) · 2 <code>Muted</code> (run=False)" in md
    assert md.index("Who runs where") < md.index("## create") and md.count("</details>") == 1


def test_markdown_matrix_hostile_names_stay_in_their_cells() -> None:
    loop = handmade_loop(HOSTILE)
    table = _md_tables(render(loop, "md"))[0]
    assert all(len(row) == 2 + len(loop.callbacks) for row in table)  # pipes escaped: no cell split
    assert f"after_{HOSTILE['ev_evil'][6:]}" in [_shown(row[1]) for row in table]


def test_render_markdown_with_assets(tmp_path: Path) -> None:
    spec = str(GOLDEN / "custom_callbacks.json")
    (tmp_path / "docs").mkdir()
    out = tmp_path / "docs" / "loop.md"
    assert main(["render", spec, "-o", str(out), "--assets", str(tmp_path / "docs" / "img dir")]) == 0
    image = tmp_path / "docs" / "img dir" / "loop-matrix.svg"
    assert image.read_text(encoding="utf-8") == render(load_json(spec), "svg")
    md = out.read_text(encoding="utf-8")
    assert "![Who runs where: 11 callbacks × 29 events](img%20dir/loop-matrix.svg)\n" in md and "<details>" not in md
    assert sorted(p.name for p in image.parent.iterdir()) == ["loop-matrix.svg"]  # atomic: no temporary file left


def test_assets_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "m.json"
    spec.write_bytes((GOLDEN / "synth.json").read_bytes())
    assert main(["render", str(spec), "-o", str(tmp_path / "loop.html"), "--assets", str(tmp_path)]) == 2
    assert "--assets: only for Markdown output" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert main(["render", str(spec), "-o", str(tmp_path / "loop.md"), "--assets", str(tmp_path / "file")]) == 5
    assert "is not a folder" in capsys.readouterr().err
    # An image that would replace the input (through a symlink) is refused, and nothing is written.
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "loop-matrix.svg").symlink_to(spec)
    assert main(["render", str(spec), "-o", str(tmp_path / "loop.md"), "--assets", str(tmp_path / "img")]) == 2
    assert "would overwrite" in capsys.readouterr().err
    assert spec.read_bytes() == (GOLDEN / "synth.json").read_bytes() and not (tmp_path / "loop.md").exists()


# ---------------------------------------------------------------- the trace chart


def test_trace_chart_numbers_and_page(cc: Loop) -> None:
    trace = handmade_trace(cc)
    chart = trace_chart(trace)
    assert [(b.callback, b.calls, b.total_pct, b.mean_pct) for b in chart.bars] == [
        ("Recorder", 4, 100.0, 100.0), ("TrainEvalCallback", 5, 25.0, 20.0)]
    assert chart.bars[1].mean_s == pytest.approx(0.0004) and chart.bars[1].events == ("before_fit", "after_batch")
    assert chart.callbacks_pct == 22.5 and chart.framework_s == pytest.approx(0.031)
    page = render(trace, "html")
    doc = html5lib.HTMLParser(strict=True, namespaceHTMLElements=False).parse(page)
    figure = doc.find(".//div[@id='chart']")
    split = [s.get("style") for s in figure.iter("span") if "part" in (s.get("class") or "")]
    assert split == ["width: 22.5%", "width: 77.5%"]
    fills = [(td.get("class"), td.find("span").get("style")) for td in figure.iter("td") if "bar" in (td.get("class") or "")]
    assert fills == [("bar total", "width: 100.0%"), ("bar mean", "width: 100.0%"),
                     ("bar total", "width: 25.0%"), ("bar mean", "width: 20.0%")]
    assert "Time per callback, most expensive first" in page and "<script" not in figure.__repr__()
    assert render(trace, "html") == page
    assert '<a href="#trace">Trace</a>' in page
    assert trace_chart(None) is None
    empty = trace_chart(dataclasses.replace(trace, events=(), batch_s=0.0, callback_batch_s=0.0))
    assert empty.bars == () and empty.callbacks_pct == 0.0


def test_readme_shows_the_current_matrix() -> None:
    """The README's picture is ``docs/matrix.svg``: the custom example's golden SVG (``make golden`` rewrites that one)."""
    assert (ROOT / "docs" / "matrix.svg").read_bytes() == (GOLDEN / "custom_callbacks.svg").read_bytes()
    assert "![Who runs where" in (ROOT / "README.md").read_text(encoding="utf-8").split("## Set-up")[0]
