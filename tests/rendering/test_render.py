"""The HTML and Markdown templates, on loops built by hand (``helpers.handmade_loop``, no fastai), one of them hostile.

HTML is parsed with html5lib in strict mode and checked as a tree; Markdown is parsed with
markdown-it (CommonMark + tables) and checked as tokens (the parsers are in ``helpers``). A real example is rendered
in ``tests/fastai/test_extract.py``.
"""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
from helpers import (
    HOSTILE,
    IMG,
    PLAIN,
    ROOT,
    SCRIPT,
    by_id,
    handmade_loop,
    has_class,
    md_outline,
    md_tokens,
    parse_html,
    plain_text,
    text_of,
    walk_phases,
)
from markdown_it import MarkdownIt

from loopdoc.model import Event, Loop, Phase, SourceLocation
from loopdoc.render import render

# ---------------------------------------------------------------- models


@pytest.fixture(params=["plain", "hostile"])
def model(request) -> Loop:
    return handmade_loop(PLAIN if request.param == "plain" else HOSTILE)


@pytest.fixture
def plain() -> Loop:
    return handmade_loop(PLAIN)


@pytest.fixture
def hostile() -> Loop:
    return handmade_loop(HOSTILE)


# ---------------------------------------------------------------- HTML


def test_html_parses_strictly_and_is_standalone(model):
    html = render(model, "html")
    doc = parse_html(html)
    assert html.startswith("<!DOCTYPE html>\n")
    tags = {el.tag for el in doc.iter() if isinstance(el.tag, str)}
    assert not tags & {"img", "iframe", "object", "embed", "link", "base", "form", "svg", "math"}
    # One inline script, allowed by its hash and nothing else; no request of any kind.
    scripts = list(doc.iter("script"))
    assert len(scripts) == 1 and not scripts[0].attrib
    assert "eval(" not in text_of(scripts[0]) and "innerHTML" not in text_of(scripts[0]) and "fetch(" not in text_of(scripts[0])
    csp = [m.get("content") for m in doc.iter("meta") if m.get("http-equiv") == "Content-Security-Policy"]
    digest = base64.b64encode(hashlib.sha256(text_of(scripts[0]).encode()).digest()).decode()
    assert csp == [f"default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'"]
    # The controls exist only for the script: hidden until it runs. Outside them: the theme switch and the
    # quiet-events toggle (with the folds' labels for it), which work without the script (CSS :has()).
    controls = by_id(doc)["ld-controls"]
    assert controls.get("hidden") is not None
    widgets = {el for el in doc.iter() if el.tag in ("input", "button", "output", "datalist", "label")}
    inside = {el for el in controls.iter() if el.tag in ("input", "button", "output", "datalist", "label")}
    outside = [(el.tag, el.get("id") or el.get("for") or text_of(el).strip()) for el in widgets - inside]
    assert {(t, n) for t, n in outside if t == "input"} == {
        ("input", "ld-theme-auto"), ("input", "ld-theme-light"), ("input", "ld-theme-dark"), ("input", "ld-show-quiet")}
    assert all(t == "label" for t, _ in outside if t != "input") and ("label", "ld-show-quiet") in outside
    for el in doc.iter():
        for attr, value in el.attrib.items():
            assert not attr.lower().startswith("on"), (el.tag, attr)
            if attr in ("href", "src", "action", "srcset"):
                assert not re.match(r"\s*(https?:|//|javascript:)", value, re.I), (el.tag, value)
    styles = [text_of(s) for s in doc.iter("style")]
    assert len(styles) == 1 and "--bg" in styles[0]
    assert "url(" not in styles[0] and "@import" not in styles[0] and "http" not in styles[0]
    assert "prefers-color-scheme: dark" in styles[0] and "@media print" in styles[0]
    assert len(html.encode()) < 200_000


def test_html_hostile_text_is_text(hostile):
    doc = parse_html(render(hostile, "html"))
    body = text_of(doc.find("body"))
    # Escaped, so present verbatim as text, never as elements or attributes.
    assert SCRIPT in body and IMG in body
    assert "{{ 7*7 }}" in body and "{% if x %}{{ y }}" in body and "{% raw %}" in body
    assert "49" not in body  # Jinja never evaluated model text
    assert "Ünïcødé—cb" in body and "ex/é|vil<b>.py" in body
    assert not any(el.tag in ("b", "i") and text_of(el) in (".py", "") for el in doc.iter())
    # Markdown in docstrings: images are not loaded, javascript: links are dropped.
    assert "https://example.com/x.png" not in {el.get("src") for el in doc.iter()}
    assert not [el for el in doc.iter("a") if "javascript" in (el.get("href") or "")]


def test_html_anchors(model):
    doc = parse_html(render(model, "html"))
    ids = by_id(doc)
    for path, event in model.iter_events():
        el = ids["-".join(path + (event.name,))]
        assert el.tag == "li" and has_class(el, "event")
    for path, phase in walk_phases(model):
        el = ids["phase-" + "-".join(path)]
        assert el.tag == "details" and el.get("open") is not None
        assert has_class(el, "is-loop") == (phase.loop is not None)
        summary = el.find("summary")
        for fact in (phase.loop, phase.context):
            if fact:
                assert fact in text_of(summary)
    for cb in model.callbacks:
        assert ids["cb-" + cb.id].tag == "article"
    # Short anchors: #<event name> on the first place of each name, in document order.
    first: dict[str, str] = {}
    for path, event in model.iter_events():
        first.setdefault(event.name, "-".join(path + (event.name,)))
    aliased = {name: anchor for name, anchor in first.items() if name in ids and ids[name].tag == "div"}
    for name, anchor in aliased.items():
        head = ids[name]
        assert has_class(head, "ev-head") and any(d is head for d in ids[anchor].iter())
    assert set(aliased) == set(first)
    assert "validate" not in first["after_batch"] and ids["after_batch"] is next(ids[first["after_batch"]].iter("div"))
    assert len(ids) == sum(1 for el in doc.iter() if el.get("id") is not None)  # no id twice
    # Every link is in-page and lands on an element.
    for a in doc.iter("a"):
        href = a.get("href")
        assert href.startswith("#") and href[1:] in ids, href


def test_html_nesting_and_loops(plain):
    ids = by_id(parse_html(render(plain, "html")))

    def ancestors_ids(target_id):
        # html5lib's etree has no parent links: search down from each phase instead.
        return {i for i, el in ids.items() if i.startswith("phase-") and any(d is ids[target_id] for d in el.iter())}

    assert ancestors_ids("phase-fit-epoch-train-batch-backward") >= {
        "phase-fit", "phase-fit-epoch", "phase-fit-epoch-train", "phase-fit-epoch-train-batch"}
    assert "phase-fit-epoch-train" not in ancestors_ids("phase-fit-epoch-validate-batch")
    train, valid = ids["phase-fit-epoch-train-batch"], ids["phase-fit-epoch-validate-batch"]
    assert "dls.train" in text_of(train.find("summary")) and "dls.valid" in text_of(valid.find("summary"))
    assert "torch.no_grad()" in text_of(ids["phase-fit-epoch-validate"].find("summary"))
    assert "only when training" in text_of(ids["phase-fit-epoch-train-batch-step"].find("summary"))


def test_html_events_and_handlers(model):
    doc = parse_html(render(model, "html"))
    ids = by_id(doc)
    cbs = {cb.id: cb for cb in model.callbacks}
    for path, event in model.iter_events():
        el = ids["-".join(path + (event.name,))]
        head = text_of(el.find("div"))
        assert event.name in head
        assert has_class(el, "quiet") == (not event.handlers)
        if event.filter:
            assert [t for t in el.iter("span") if has_class(t, "filter") and text_of(t) == event.filter]
        if event.cancel:
            branch = [d for d in el.iter("div") if has_class(d, "branch")]
            assert len(branch) == 1
            assert event.cancel.exception in text_of(branch[0]) and event.cancel.next in text_of(branch[0])
        items = [li for li in el.iter("li") if has_class(li, "handler")]
        assert [next(a for a in li.iter("a")).text for li in items] == [h.callback for h in event.handlers]
        for li, h in zip(items, event.handlers, strict=True):
            t = text_of(li)
            assert h.function in t
            assert has_class(li, "via-" + h.via)
            assert ("dispatch" in t) == (h.via == "dispatch")
            inherited = h.defined_by is not None and h.defined_by != cbs[h.callback].qualname
            assert ("inherited from " + (h.defined_by or "") in t) == inherited
            if h.source:
                loc = h.source.file + (f":{h.source.line}" if h.source.line is not None else "")
                assert loc in t
            assert f"order {cbs[h.callback].order}" in t
            for flag, on in cbs[h.callback].flags.items():
                assert (f"{flag}=False" in t) == (not on)


def test_html_markdown_is_rendered(plain):
    ids = by_id(parse_html(render(plain, "html")))
    ev = ids["fit-epoch-train-batch-after_batch"]
    codes = [c.text for c in ev.iter("code")]
    assert "learn.xb" in codes  # event description: backticks became <code>
    assert "training" in [e.text for e in ev.iter("em")]  # handler docstring: *training*
    paragraphs = [p for p in ids["cb-LogBatch"].iter("p")]
    assert [p.text for p in paragraphs][:2] == ["Count batches.", "Second paragraph."]
    notes = ids["notes"]
    assert "Muted" in [c.text for c in notes.iter("code")]


def test_html_callback_index(model):
    doc = parse_html(render(model, "html"))
    cards = [a for a in doc.iter("article") if has_class(a, "cb-card")]
    assert [c.get("id") for c in cards] == ["cb-" + cb.id for cb in model.callbacks]
    handled = {cb.id: [] for cb in model.callbacks}
    for _, event in model.iter_events():
        for h in event.handlers:
            if event.name not in handled[h.callback]:
                handled[h.callback].append(event.name)
    for card, cb in zip(cards, model.callbacks, strict=True):
        facts = dict(zip([text_of(dt) for dt in card.iter("dt")], list(card.iter("dd")), strict=True))
        assert cb.qualname in text_of(card.find("h3"))
        assert text_of(facts["order"]) == str(cb.order)
        assert text_of(facts["flags"]) == " ".join(f"{k}={v}" for k, v in cb.flags.items())
        assert text_of(facts["receives all"]).startswith("yes" if cb.receives_all else "no")
        events = [c.text for c in facts["events"].iter("code")]
        assert events == handled[cb.id]
        if cb.source:
            assert cb.source.file in text_of(facts["defined in"])
    muted = next(c for c in cards if c.get("id") == "cb-Muted")
    assert has_class(muted, "not-running") and "none in this loop" in text_of(muted)


def test_html_header(plain):
    doc = parse_html(render(plain, "html", title="My loop"))
    assert doc.find("head/title").text == "My loop"
    header = text_of(doc.find("body/header"))
    for text in ("My loop", "fastai 2.8.12", "torch 2.5.0", "examples/mine.py:learn", "my.Model",
                 "CrossEntropyLoss", "Adam", "accuracy", "error_rate"):
        assert text in header


# ---------------------------------------------------------------- Markdown


def test_markdown_structure(model):
    md = render(model, "md")
    tokens = md_tokens(md)
    outline = md_outline(tokens)
    assert outline[0][:2] == (1, "Training loop of " + model.learner.loaded_from)
    phases = list(walk_phases(model))
    body = outline[1:1 + len(phases)]
    assert [(lvl, name) for lvl, name, _ in body] == [(min(len(p) + 1, 6), ph.name) for p, ph in phases]
    # create/fit ##, epoch ###, train/validate ####, batch #####, backward/step ######
    assert [lvl for lvl, _, _ in body] == [2, 2, 3, 4, 5, 6, 6, 4, 5]
    for (_, _, items), (_, phase) in zip(body, phases, strict=True):
        expected = []
        for child in phase.children:
            if isinstance(child, Event):
                expected.append(("event", child.name, [h.callback for h in child.handlers]))
            elif isinstance(child, Phase):
                expected.append(("phase", child.name, []))
            else:
                expected.append(("step", child.code, []))
        assert items == expected
    assert outline[1 + len(phases)][:2] == (2, "Callbacks")
    assert len(outline) == 2 + len(phases)
    n_events = sum(1 for _, _, items in body for kind, _, _ in items if kind == "event")
    assert n_events == len(model.iter_events())


def test_markdown_phase_facts_and_quiet_events(plain):
    md = render(plain, "md")
    assert "*↻ loop:* `for epoch in range(n_epoch)`" in md
    assert "*in fit › epoch › validate* · *↻ loop:* `for each batch of dls.valid`" in md
    assert "*under* `torch.no_grad()`" in md
    assert "- **`before_step`** — Before `opt.step()`. — *no callbacks*" in md
    assert "filtered by `run_valid`" in md
    assert "↳ *on* `CancelBatchException` *→ this event, then* `after_batch`: Rest skipped." in md
    assert "· inherited from `my.LogBatch`" in md and "*dispatch: overrides* `__call__`" in md
    assert "*instance attribute*" in md
    # A handler's docstring sits inside its list item.
    assert "  - `TrainEvalCallback` → `TrainEvalCallback.after_batch` · `examples/mine.py:10`\n\n" \
           "    Update the iter counter (in *training* mode).\n" in md
    assert "> **Note:** `Muted` has `run=False`." in md


def test_markdown_table(model):
    tokens = md_tokens(render(model, "md"))
    start = max(i for i, t in enumerate(tokens) if t.type == "tbody_open")  # the last table (the first is the matrix)
    end = max(i for i, t in enumerate(tokens) if t.type == "tbody_close")
    rows, row = [], None
    for t in tokens[start:end]:
        if t.type == "tr_open":
            row = []
            rows.append(row)
        elif t.type == "inline":
            row.append(t)
    header = [plain_text(t) for t in tokens[:start] if t.type == "inline"][-7:]
    assert header == ["callback", "order", "run", "run_train", "run_valid", "defined in", "events"]
    assert len(rows) == len(model.callbacks)
    for cells, cb in zip(rows, model.callbacks, strict=True):
        assert len(cells) == 7
        assert plain_text(cells[0]) == cb.id  # pipes escaped, so the id survives whole
        assert [plain_text(c) for c in cells[2:5]] == ["yes" if cb.flags[k] else "no" for k in ("run", "run_train", "run_valid")]
    muted = rows[[cb.id for cb in model.callbacks].index("Muted")]
    assert plain_text(muted[6]) == "none"


def test_markdown_is_tidy(model):
    md = render(model, "md")
    assert md.endswith("\n") and not md.endswith("\n\n")
    assert not [line for line in md.split("\n") if line != line.rstrip()]
    assert "\n\n\n" not in md


def test_markdown_hostile_stays_contained(hostile):
    md = render(hostile, "md")
    html = MarkdownIt("commonmark", {"html": False}).enable("table").render(md)
    # Jinja in model text is shown, never evaluated; "{" is written as "&#123;" (python-markdown's attr_list
    # would read "{: …}" as attributes: issue 10), which every renderer shows as "{".
    assert "{{ x }}" in html and "{% if x %}{{ y }}" in html and "49" not in md
    # The unclosed fence in a handler's docstring ends with the handler's list item:
    # the next event still parses as an event (checked fully in test_markdown_structure).
    assert html.count("<h6>") == 2


# ---------------------------------------------------------------- both


@pytest.mark.parametrize("fmt", ["html", "md"])
def test_deterministic(model, fmt):
    first = render(model, fmt)
    assert render(model, fmt) == first
    assert render(Loop.from_dict(model.to_dict()), fmt) == first
    assert re.search(r"20\d\d-\d\d-\d\d", first) is None


def test_event_aliases_skip_names_that_cannot_be_anchors(plain):
    from dataclasses import replace

    from loopdoc.rendering.anchors import event_aliases

    names = ["before fit", "callbacks", "phase-fit", "fit-before_fit", "cb-LogBatch", "", "before_fit"]
    fit = plain.phases[1]
    extra = tuple(Event(n, "x") for n in names)
    loop = replace(plain, phases=(plain.phases[0], replace(fit, children=extra + fit.children)))
    aliases = event_aliases(loop)
    # "fit-before_fit" is its own path anchor's twin: the first "before_fit" keeps the short one.
    assert aliases["fit-before_fit"] == "before_fit"
    assert set(aliases.values()) >= {"before_batch", "after_batch", "after_create"}
    assert not set(aliases.values()) & {"before fit", "callbacks", "phase-fit", "fit-before_fit", "cb-LogBatch", ""}
    ids = by_id(parse_html(render(loop, "html")))
    assert ids["before_fit"].tag == "div"


def test_html_callback_index_links_each_place(plain):
    ids = by_id(parse_html(render(plain, "html")))
    card = ids["cb-TrainEvalCallback"]
    items = {next(li.iter("code")).text: [a.get("href") for a in li.iter("a")] for li in card.iter("li")}
    assert items["after_create"] == ["#create-after_create"]
    # before_batch runs in both batch loops: the name links to the first, then each place by the phase that differs.
    assert items["before_batch"] == ["#fit-epoch-train-batch-before_batch", "#fit-epoch-train-batch-before_batch",
                                     "#fit-epoch-validate-batch-before_batch"]
    where = next(li for li in card.iter("li") if next(li.iter("code")).text == "before_batch")
    assert "(train, validate)" in text_of(where)


URL = "https://github.com/org/repo/blob/main/{path}#L{line}"


def test_source_link_rule(plain):
    from loopdoc.rendering.links import source_link

    def link(file, line=3, url=URL):
        return source_link(SourceLocation(file, line), url, plain)

    assert link("examples/mine.py") == "https://github.com/org/repo/blob/main/examples/mine.py#L3"
    assert link("mine.py", None) == "https://github.com/org/repo/blob/main/mine.py#L"
    assert link("ex/é (1)|x.py") == "https://github.com/org/repo/blob/main/ex/%C3%A9%20%281%29%7Cx.py#L3"
    assert link("src/pkg/cbs.py", 7, "../{path}?plain=1#L{line}") == "../src/pkg/cbs.py?plain=1#L7"
    # Installed packages the loop was read from (framework and versions), absolute paths, "..": no link.
    for file in ("fastai/learner.py", "torch/nn/module.py", "Torch/x.py", "/home/me/x.py", "C:/x.py", "../x.py", "a/../x.py"):
        assert link(file) is None, file
    assert link("fastai.py") is not None  # a file of that name, not the package folder
    assert source_link(None, URL, plain) is None and source_link(SourceLocation("x.py", 1), None, plain) is None


@pytest.mark.parametrize("url, problem", [
    ("https://github.com/org/repo/blob/main/", "has no {path}"),
    ("https://x/{path} #L{line}", "contains ' '"),
    ('https://x/{path}"', "contains '\"'"),
    ("javascript:alert(1)//{path}", "scheme 'javascript' not allowed"),
    ("data:text/html,{path}", "scheme 'data' not allowed"),
])
def test_source_url_is_checked(plain, url, problem):
    from loopdoc.errors import UsageError

    with pytest.raises(UsageError, match=re.escape(problem)):
        render(plain, "html", source_url=url)


def test_source_url_links_html_and_markdown(plain):
    html = render(plain, "html", source_url=URL)
    doc = parse_html(html)
    links = {a.text: a.get("href") for a in doc.iter("a") if has_class(a, "src")}
    assert links == {f"examples/mine.py:{n}": f"https://github.com/org/repo/blob/main/examples/mine.py#L{n}" for n in (10, 20, 21, 99)} | {
        "examples/mine.py": "https://github.com/org/repo/blob/main/examples/mine.py#L"}
    assert render(plain, "html", source_url=URL) == html
    # Without --source-url nothing links out (see test_html_parses_strictly_and_is_standalone).
    md = render(plain, "md", source_url=URL)
    tokens = md_tokens(md)
    hrefs = [c.attrGet("href") for t in tokens if t.type == "inline" for c in t.children if c.type == "link_open"]
    assert "https://github.com/org/repo/blob/main/examples/mine.py#L10" in hrefs
    assert set(hrefs) == set(links.values())
    assert "[`examples/mine.py:99`](https://github.com/org/repo/blob/main/examples/mine.py#L99)" in md
    # The callback table keeps its 7 cells with a link in "defined in".
    row = next(line for line in md.splitlines() if line.startswith("| `LogBatch`"))
    assert "| [`examples/mine.py:20`](https://github.com/org/repo/blob/main/examples/mine.py#L20) |" in row


def test_source_url_hostile_paths_stay_in_the_href(hostile):
    doc = parse_html(render(hostile, "html", source_url=URL))
    hrefs = [a.get("href") for a in doc.iter("a") if has_class(a, "src")]
    assert hrefs and all(h.startswith("https://github.com/org/repo/blob/main/ex/%C3%A9%7Cvil%3Cb%3E.py#L") for h in hrefs)
    md = render(hostile, "md", source_url=URL)
    tokens = md_tokens(md)
    hrefs = {c.attrGet("href") for t in tokens if t.type == "inline" for c in t.children if c.type == "link_open"}
    assert hrefs and all(h.startswith("https://github.com/org/repo/blob/main/ex/%C3%A9%7Cvil%3Cb%3E.py#L") for h in hrefs)


def test_cli_source_url(tmp_path, capsys):
    from loopdoc.cli import main

    saved = str(ROOT / "tests" / "golden" / "custom_callbacks.json")
    out = tmp_path / "loop.md"
    assert main(["render", saved, "-o", str(out), "--source-url", URL]) == 0
    md = out.read_text(encoding="utf-8")
    assert "[`examples/custom_callbacks.py:101`](https://github.com/org/repo/blob/main/examples/custom_callbacks.py#L101)" in md
    assert "github.com/org/repo/blob/main/fastai/" not in md and "`fastai/learner.py:549`" in md
    assert main(["render", saved, "-o", str(tmp_path / "x.html"), "--source-url", "https://x/"]) == 2
    assert "--source-url" in capsys.readouterr().err and not (tmp_path / "x.html").exists()


def test_template_dir_overrides_one_block(plain, tmp_path):
    (tmp_path / "loop.html.jinja").write_text(
        '{% extends "loop.html.jinja" %}\n{% block footer %}<p>Team footer</p>{% endblock %}\n', encoding="utf-8")
    base = render(plain, "html")
    mine = render(plain, "html", template_dir=tmp_path)
    before, rest = base.split("<footer>\n", 1)
    _, after = rest.split("</footer>", 1)
    assert mine == before + "<footer>\n<p>Team footer</p></footer>" + after
    parse_html(mine)


def test_template_dir_block_can_use_macros_and_css(plain, tmp_path):
    (tmp_path / "loop.html.jinja").write_text(
        '{% extends "loop.html.jinja" %}\n'
        '{% block tree %}<section id="loop">{{ phase_section(loop.phases[1], []) }}</section>{% endblock %}\n',
        encoding="utf-8")
    (tmp_path / "loop.css").write_text("body { color: teal; }\n", encoding="utf-8")
    doc = parse_html(render(plain, "html", template_dir=tmp_path))
    ids = by_id(doc)
    assert "phase-fit" in ids and "phase-create" not in ids
    # The user's loop.css replaces loopdoc's; the overview parts' style (overview.css, a file of its own) follows.
    overview = (ROOT / "templates" / "overview.css").read_text(encoding="utf-8")
    assert text_of(doc.find("head/style")).strip() == "body { color: teal; }\n" + overview.strip()


def test_template_dir_overrides_markdown_block(plain, tmp_path):
    (tmp_path / "loop.md.jinja").write_text(
        '{% extends "loop.md.jinja" %}\n{% block callbacks %}## Ours   \n\n\n\nDone.\n{% endblock %}\n', encoding="utf-8")
    base = render(plain, "md")
    mine = render(plain, "md", template_dir=tmp_path)
    assert mine == base.split("## Callbacks\n", 1)[0] + "## Ours\n\nDone.\n"


def test_python_names_in_docstrings_keep_their_underscores_and_stars():
    from loopdoc.rendering.markdown import markdown_to_html

    html = str(markdown_to_html("Overrides __call__, takes *args and **kwargs; `__init__` and **bold** *it* stay."))
    assert "__call__" in html and "*args" in html and "**kwargs" in html
    assert "<code>__init__</code>" in html and "<strong>bold</strong>" in html and "<em>it</em>" in html
    assert "<strong>call</strong>" not in html
