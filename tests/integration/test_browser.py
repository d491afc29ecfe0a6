"""The HTML page in a real browser: Debian's Chromium driven by Playwright (sync API).

Pages are rendered from the golden models (``tests/golden/*.json``), which needs no
fastai; each test opens one in a fresh browser context and checks it by mouse, keyboard
and script: no console error, no request but the page's own file, the tree folds, the
filter narrows, the highlight marks, anchors land, events without callbacks fold and unfold, the
matrix links into the tree and scrolls inside its own box on a phone, the contents sidebar and the
light/dark switch work, hostile docstrings stay text, and the page still reads and folds with
JavaScript off. Screenshots of the page, the matrix, the trace chart and the standalone SVG, at
1280 and 390 px, light and dark, go to ``tests/_artifacts/screenshots/``.

Chromium is ``/usr/bin/chromium`` (``apt-get install chromium``; ``.ci/run`` installs it);
Playwright's own browser download is never used. Without Chromium or Playwright these
tests are skipped, except under ``CI`` (set and not ``0``/``false``), where they fail.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers import HOSTILE, ROOT, SHOTS, handmade_loop, handmade_trace

from loopdoc.model import Loop, load_json
from loopdoc.render import render

pytestmark = pytest.mark.browser
GOLDEN = ROOT / "tests" / "golden"
EXAMPLES = sorted(p.stem for p in GOLDEN.glob("*.json"))
DESKTOP = {"viewport": {"width": 1280, "height": 900}}
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}
MODES = {"1280-light": {}, "1280-dark": {"color_scheme": "dark"}, "390-light": PHONE, "390-dark": {**PHONE, "color_scheme": "dark"}}
DARK_BG, LIGHT_BG = "rgb(20, 22, 26)", "rgb(255, 255, 255)"
# The session's one Chromium is conftest's `browser` fixture (one sync Playwright per session; a second would fail).


@pytest.fixture(scope="session")
def models() -> dict[str, Loop]:
    """Each example's golden model, by name."""
    return {name: load_json(str(GOLDEN / f"{name}.json")) for name in EXAMPLES}


@pytest.fixture(scope="session")
def pages(models, tmp_path_factory) -> dict[str, Path]:
    """Each example rendered to ``<tmp>/<example>.html``."""
    folder = tmp_path_factory.mktemp("pages")
    out = {}
    for name, loop in models.items():
        out[name] = folder / f"{name}.html"
        out[name].write_text(render(loop, "html"), encoding="utf-8")
    return out


class Visit:
    """Opens pages in fresh contexts and records what a page must not do."""

    def __init__(self, browser):
        self.browser = browser
        self.contexts: list = []
        self.problems: list[str] = []
        self.requests: list[str] = []
        self.files: set[str] = set()

    def __call__(self, path: Path, fragment: str = "", **context: Any):
        ctx = self.browser.new_context(**{**DESKTOP, **context})
        self.contexts.append(ctx)
        ctx.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:") else route.abort())
        page = ctx.new_page()
        page.on("console", lambda m: m.type in ("error", "warning") and self.problems.append(f"console {m.type}: {m.text}"))
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        page.on("dialog", lambda d: (self.problems.append(f"dialog: {d.message}"), d.dismiss()))
        page.on("request", lambda r: self.requests.append(r.url))
        url = path.as_uri()
        self.files.add(url)
        page.goto(url + fragment)
        return page

    def assert_quiet(self) -> None:
        """No console error or warning, no script error or dialog, no request but the pages' own files."""
        assert self.problems == []
        assert self.requests and {u.split("#")[0] for u in self.requests} <= self.files, self.requests

    def close(self) -> None:
        for ctx in self.contexts:
            ctx.close()


@pytest.fixture
def visit(browser):
    """A ``Visit`` whose contexts close after the test."""
    v = Visit(browser)
    yield v
    v.close()


def visible(page, selector: str) -> int:
    """How many elements matching ``selector`` are rendered (not hidden by ``display: none`` or a closed ``<details>``)."""
    return page.evaluate("s => [...document.querySelectorAll(s)].filter(e => e.checkVisibility()).length", selector)


def handlers_of(loop: Loop, callback: str) -> list[tuple[str, str]]:
    """(path anchor, callback) of every handler of ``callback``."""
    return [("-".join(p + (e.name,)), h.callback) for p, e in loop.iter_events() for h in e.handlers if h.callback == callback]


def box(page, selector: str) -> dict[str, float]:
    """The element's top and bottom, the controls bar's bottom and the viewport height, in CSS pixels."""
    return page.evaluate("""s => { const r = document.querySelector(s).getBoundingClientRect();
        const bar = document.getElementById('ld-controls').getBoundingClientRect();
        return {top: r.top, bottom: r.bottom, bar: bar.bottom, height: innerHeight}; }""", selector)


def assert_in_view(page, selector: str) -> None:
    """The element's top is on screen and not under the sticky controls bar."""
    b = box(page, selector)
    assert b["bar"] - 1 <= b["top"] < b["height"] - 20, (selector, b)


# ---------------------------------------------------------------- every example


@pytest.mark.parametrize("name", EXAMPLES)
def test_page_loads_clean(visit, pages, models, name):
    loop = models[name]
    page = visit(pages[name])
    assert page.title() == f"Training loop of {loop.learner.loaded_from}"
    assert page.evaluate("document.documentElement.classList.contains('js')")
    assert page.is_visible("#ld-controls")
    n_events = len(loop.iter_events())
    n_quiet = sum(not e.handlers for _, e in loop.iter_events())
    n_handlers = sum(len(e.handlers) for _, e in loop.iter_events())
    assert visible(page, "li.event") == n_events - n_quiet  # events without callbacks are folded
    assert visible(page, "#matrix a.mk") == n_handlers
    assert visible(page, "li.handler") == n_handlers
    assert visible(page, ".cb-card") == len(loop.callbacks)
    assert visible(page, ".hl-btn") == len(loop.callbacks)
    # Landmarks and headings: one h1, h2 for the sections, h3 for each callback.
    assert page.evaluate("[...document.querySelectorAll('h1,h2,h3')].map(h => h.tagName).join(' ')") == " ".join(
        ["H1"] + ["H2"] * (3 + bool(loop.notes or loop.findings) + bool(loop.flows)) + ["H3"] * len(loop.callbacks))
    for role in ("banner", "main", "contentinfo", "search"):
        assert page.get_by_role(role).count() == 1, role
    visit.assert_quiet()


@pytest.mark.parametrize("name", EXAMPLES)
def test_screenshots(visit, pages, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    for mode, context in MODES.items():
        page = visit(pages[name], **context)
        page.screenshot(path=SHOTS / f"{name}-{mode}-top.png")
        page.locator("#matrix").screenshot(path=SHOTS / f"{name}-{mode}-matrix.png")
        page.evaluate("location.hash = '#before_batch'")
        page.screenshot(path=SHOTS / f"{name}-{mode}-batch.png")
        page.evaluate("location.hash = '#callbacks'")
        page.screenshot(path=SHOTS / f"{name}-{mode}-callbacks.png")
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background == (DARK_BG if mode.endswith("dark") else LIGHT_BG), mode
        # Nothing sticks out sideways, on a phone either: the matrix scrolls inside its own box.
        assert page.evaluate("document.documentElement.scrollWidth <= innerWidth"), mode
    visit.assert_quiet()


def test_trace_chart_and_svg_screenshots(visit, models, tmp_path):
    SHOTS.mkdir(parents=True, exist_ok=True)
    trace = handmade_trace(models["custom_callbacks"])
    path = tmp_path / "trace.html"
    path.write_text(render(trace, "html"), encoding="utf-8")
    svg = tmp_path / "loop.svg"
    svg.write_text(render(models["custom_callbacks"], "svg"), encoding="utf-8")
    for mode, context in MODES.items():
        page = visit(path, "#trace", **context)
        page.locator("#trace").screenshot(path=SHOTS / f"trace-{mode}-chart.png")
        widths = page.evaluate("[...document.querySelectorAll('#chart td.bar .fill')].map(e => e.getBoundingClientRect().width)")
        total_recorder, mean_recorder, total_tec, mean_tec = widths
        assert total_tec == pytest.approx(total_recorder * 0.25, abs=1.5) and mean_tec == pytest.approx(mean_recorder * 0.2, abs=1.5)
        split = page.evaluate("[...document.querySelectorAll('#chart .split .part')].map(e => e.getBoundingClientRect().width)")
        assert split[0] == pytest.approx(sum(split) * 0.225, abs=1.5)
        assert page.evaluate("document.documentElement.scrollWidth <= innerWidth"), mode
        picture = visit(svg, **context)
        picture.screenshot(path=SHOTS / f"custom_callbacks-{mode}-svg.png")
        fill = picture.evaluate("getComputedStyle(document.querySelector('rect.bg')).fill")
        assert fill == (DARK_BG if mode.endswith("dark") else LIGHT_BG), mode
    visit.assert_quiet()


# ---------------------------------------------------------------- the controls (custom_callbacks: every feature)


@pytest.fixture
def cc(visit, pages):
    """The custom_callbacks page, which has every feature: cancels, dispatch, inheritance, quiet events."""
    return visit(pages["custom_callbacks"])


def test_tree_folds_by_mouse(visit, cc):
    summary, epoch = "#phase-fit-epoch > summary", "#phase-fit-epoch"
    assert cc.is_visible("#before_epoch")
    cc.click(summary)
    assert cc.get_attribute(epoch, "open") is None and not cc.is_visible("#before_epoch")
    assert cc.is_visible("#before_fit")  # its parent stays open
    cc.click(summary)
    assert cc.get_attribute(epoch, "open") == "" and cc.is_visible("#before_epoch")
    cc.click("#ld-close")
    assert cc.evaluate("[...document.querySelectorAll('details.phase')].every(d => !d.open)")
    assert visible(cc, "li.event") == 0 and visible(cc, "details.phase > summary") == 2  # create, fit
    cc.click("#ld-open")
    assert cc.evaluate("[...document.querySelectorAll('details.phase')].every(d => d.open)")
    visit.assert_quiet()


def test_tree_folds_by_keyboard(visit, cc):
    for _ in range(150):  # past the contents, the theme switch and the matrix's headings and names
        cc.keyboard.press("Tab")
        if cc.evaluate("document.activeElement.matches('details.phase > summary')"):
            break
    phase = cc.evaluate("document.activeElement.parentElement.id")
    assert phase == "phase-create"
    cc.keyboard.press("Enter")
    assert cc.get_attribute("#phase-create", "open") is None and not cc.is_visible("#after_create")
    cc.keyboard.press("Space")
    assert cc.get_attribute("#phase-create", "open") == "" and cc.is_visible("#after_create")
    # The controls are reachable too: Shift+Tab back to the last of them, Space; "Collapse all" takes Enter.
    cc.keyboard.press("Shift+Tab")
    assert cc.evaluate("document.activeElement.id") == "ld-desc"
    cc.keyboard.press("Space")
    assert visible(cc, ".ev-desc") == 0
    cc.focus("#ld-close")
    cc.keyboard.press("Enter")
    assert visible(cc, "li.event") == 0
    visit.assert_quiet()


def test_filter_narrows_to_a_callback_or_an_event(visit, cc, models):
    loop = models["custom_callbacks"]
    cc.fill("#ld-q", "recorder")
    where = {anchor for anchor, _ in handlers_of(loop, "Recorder")}
    shown = cc.evaluate("[...document.querySelectorAll('li.event')].filter(e => e.checkVisibility()).map(e => e.id)")
    assert set(shown) == where
    names = cc.evaluate("[...document.querySelectorAll('.handler')].filter(e => e.checkVisibility())"
                        ".map(e => e.querySelector('.cb-link').textContent)")
    assert set(names) == {"Recorder"} and len(names) == len(where)
    assert cc.evaluate("[...document.querySelectorAll('.cb-card')].filter(e => e.checkVisibility()).map(e => e.id)") == ["cb-Recorder"]
    assert visible(cc, "li.step") == 0 and not cc.is_visible("#phase-create")
    assert cc.text_content("#ld-status") == f"{len(where)} events, 1 callback"
    # An event name: both places, every callback there, and the callbacks that handle it.
    cc.fill("#ld-q", "after_cancel_batch")
    places = [("-".join(p + (e.name,)), e) for p, e in loop.iter_events() if e.name == "after_cancel_batch"]
    assert visible(cc, "li.event") == len(places) == 2
    assert visible(cc, "li.handler") == sum(len(e.handlers) for _, e in places)
    cards = {h.callback for _, e in places for h in e.handlers}
    assert visible(cc, ".cb-card") == len(cards)
    cc.fill("#ld-q", "no such name")
    assert visible(cc, "li.event") == 0 and cc.text_content("#ld-status") == "nothing matches"
    cc.fill("#ld-q", "")
    assert visible(cc, "li.event") == len(loop.iter_events()) and cc.text_content("#ld-status") == ""
    visit.assert_quiet()


def test_highlight_marks_a_callback_everywhere(visit, cc, models):
    loop = models["custom_callbacks"]
    cc.locator("#fit-epoch-train-batch-after_batch a.cb-link", has_text="Recorder").click()
    marked = cc.evaluate("[...document.querySelectorAll('.handler.hl')].map(h => h.closest('li.event').id)")
    assert marked == [anchor for anchor, _ in handlers_of(loop, "Recorder")]
    assert cc.evaluate("[...document.querySelectorAll('.cb-card.hl')].map(c => c.id)") == ["cb-Recorder"]
    assert cc.get_attribute("#cb-Recorder .hl-btn", "aria-pressed") == "true"
    assert cc.is_visible("#ld-hl") and "Recorder runs at 11 places" in cc.text_content("#ld-hl")
    assert cc.evaluate("location.hash") == ""  # highlighting does not jump away
    # The card's button switches to another callback; Escape clears.
    cc.click("#cb-LogBatch .hl-btn")
    assert cc.evaluate("document.querySelectorAll('.handler.hl').length") == len(handlers_of(loop, "LogBatch"))
    assert cc.get_attribute("#cb-Recorder .hl-btn", "aria-pressed") == "false"
    cc.keyboard.press("Escape")
    assert cc.evaluate("document.querySelectorAll('.hl').length") == 0 and not cc.is_visible("#ld-hl")
    # By keyboard: a callback link takes Enter.
    cc.focus("#fit-before_fit a.cb-link >> nth=0")
    cc.keyboard.press("Enter")
    assert cc.evaluate("document.querySelectorAll('.handler.hl').length") == len(handlers_of(loop, "TrainEvalCallback"))
    # The bar's link goes to the card.
    cc.click("#ld-hl a")
    assert cc.evaluate("location.hash") == "#cb-TrainEvalCallback"
    assert_in_view(cc, "#cb-TrainEvalCallback")
    visit.assert_quiet()


@pytest.mark.parametrize("fragment, inside", [
    ("#before_batch", "#fit-epoch-train-batch-before_batch"),
    ("#cb-Recorder", "#cb-Recorder"),
    ("#fit-epoch-validate-batch-after_loss", "#fit-epoch-validate-batch-after_loss"),
    ("#phase-fit-epoch-validate-batch", "#phase-fit-epoch-validate-batch"),
])
def test_anchors_land_on_their_element(visit, pages, fragment, inside):
    page = visit(pages["custom_callbacks"], fragment)
    assert page.evaluate(f"document.querySelector('{inside}').contains(document.querySelector('{fragment}'))")
    assert_in_view(page, fragment)
    assert page.evaluate("document.querySelector(':target').id") == fragment[1:]
    visit.assert_quiet()


def test_anchor_opens_folded_phases(visit, cc):
    cc.click("#ld-close")
    cc.evaluate("location.hash = '#fit-epoch-validate-batch-after_loss'")
    assert cc.is_visible("#fit-epoch-validate-batch-after_loss")
    assert_in_view(cc, "#fit-epoch-validate-batch-after_loss")
    # A link from the index into a folded phase, or into a filtered-out event, opens it too.
    cc.click("#ld-close")
    cc.fill("#ld-q", "after_loss")
    assert not cc.is_visible("#fit-epoch-validate-batch-before_batch")
    cc.locator("#cb-Tracer .where a", has_text="validate").first.click()
    assert cc.evaluate("location.hash") == "#fit-epoch-validate-batch-before_batch"
    assert cc.is_visible("#fit-epoch-validate-batch-before_batch")
    assert_in_view(cc, "#fit-epoch-validate-batch-before_batch")
    visit.assert_quiet()


def test_events_without_callbacks_fold(visit, pages, models):
    loop = models["synth"]
    page = visit(pages["synth"])
    quiet = sum(not e.handlers for _, e in loop.iter_events())
    folds = page.locator("li.quiet-fold").count()
    assert quiet > 0 and visible(page, "li.event.quiet") == 0 and visible(page, "li.quiet-fold") == folds > 0
    assert visible(page, "li.event") == len(loop.iter_events()) - quiet
    page.check("#ld-show-quiet")
    assert visible(page, "li.event.quiet") == quiet and visible(page, "li.quiet-fold") == 0
    page.focus("#ld-show-quiet")
    page.keyboard.press("Space")
    assert visible(page, "li.event.quiet") == 0
    # A fold's label unfolds them all; a link to a folded event shows it, and lands.
    page.locator("li.quiet-fold label").first.click()
    assert page.is_checked("#ld-show-quiet") and visible(page, "li.event.quiet") == quiet
    page.uncheck("#ld-show-quiet")
    page.evaluate("location.hash = '#fit-epoch-train-batch-after_loss'")
    assert page.is_visible("#fit-epoch-train-batch-after_loss") and visible(page, "li.event.quiet") == 1
    assert_in_view(page, "#fit-epoch-train-batch-after_loss")
    # Filtering for a quiet event's name shows it.
    page.evaluate("location.hash = ''")
    page.fill("#ld-q", "before_step")
    assert visible(page, "li.event") == 1 and visible(page, "li.quiet-fold") == 0
    page.fill("#ld-q", "")
    # "descriptions" off leaves names and callbacks only.
    page.uncheck("#ld-desc")
    assert visible(page, ".ev-desc") == 0 and visible(page, ".doc") == 0 and visible(page, "li.handler") > 0
    page.check("#ld-desc")
    assert visible(page, ".ev-desc") == len(loop.iter_events()) - quiet  # the folded ones' stay folded
    visit.assert_quiet()


def test_a_tree_without_the_toggle_folds_nothing(visit, models, tmp_path):
    """A --template-dir tree block that leaves out the quiet-events toggle shows every event, and no folds."""
    loop = models["synth"]
    (tmp_path / "loop.html.jinja").write_text(
        '{% extends "loop.html.jinja" %}\n{% block tree %}<section id="loop">{% for phase in loop.phases %}'
        '{{ phase_section(phase, [], top_keys[loop.index0]) }}{% endfor %}</section>{% endblock %}\n', encoding="utf-8")
    path = tmp_path / "mine.html"
    path.write_text(render(loop, "html", template_dir=tmp_path), encoding="utf-8")
    page = visit(path)
    assert page.locator("#ld-show-quiet").count() == 0 and page.locator("li.quiet-fold").count() > 0
    assert visible(page, "li.event") == len(loop.iter_events()) and visible(page, "li.quiet-fold") == 0
    visit.assert_quiet()


def test_matrix_prints_within_the_page(visit, pages):
    page = visit(pages["custom_callbacks"], viewport={"width": 700, "height": 1000}, color_scheme="dark")
    page.click("label:has(#ld-theme-dark)")
    page.emulate_media(media="print")
    width = page.evaluate("document.querySelector('#matrix table.mx').getBoundingClientRect().width")
    assert width <= 700 and page.evaluate("document.documentElement.scrollWidth <= innerWidth")
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == LIGHT_BG  # printed light, theme or not
    assert not page.is_visible("#toc") and not page.is_visible(".theme")
    visit.assert_quiet()


def test_print_opens_everything(visit, cc):
    cc.click("#ld-close")
    cc.evaluate("dispatchEvent(new Event('beforeprint'))")
    assert cc.evaluate("[...document.querySelectorAll('details.phase')].every(d => d.open)")
    cc.evaluate("dispatchEvent(new Event('afterprint'))")
    assert cc.evaluate("[...document.querySelectorAll('details.phase')].every(d => !d.open)")
    cc.click("#ld-open")
    cc.emulate_media(media="print")
    assert not cc.is_visible("#ld-controls") and not cc.is_visible("nav") and not cc.is_visible(".hl-btn >> nth=0")
    assert cc.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(255, 255, 255)"
    cc.emulate_media(media="print", color_scheme="dark")
    assert cc.evaluate("getComputedStyle(document.body).color") == "rgb(0, 0, 0)"
    visit.assert_quiet()


# ---------------------------------------------------------------- the overview: matrix, contents, theme


def test_matrix_marks_land_in_the_tree_and_names_highlight(visit, cc, models):
    loop = models["custom_callbacks"]
    cc.click("#ld-close")  # everything folded: a mark still lands, opening the phases on the way
    row = cc.locator("#matrix tr.mx-row", has=cc.locator("a.cb-link", has_text="Recorder"))
    row.locator("a.mk[href='#fit-epoch-train-batch-after_batch']").click()
    assert cc.evaluate("location.hash") == "#fit-epoch-train-batch-after_batch"
    assert cc.is_visible("#fit-epoch-train-batch-after_batch")
    assert_in_view(cc, "#fit-epoch-train-batch-after_batch")
    # A column heading lands on its event too.
    cc.click("#matrix th.mx-ev a[href='#fit-epoch-validate-batch-after_loss']")
    assert cc.evaluate("location.hash") == "#fit-epoch-validate-batch-after_loss"
    assert_in_view(cc, "#fit-epoch-validate-batch-after_loss")
    # A name highlights the callback in the tree and its row in the matrix.
    row.locator("a.cb-link").click()
    assert cc.evaluate("document.querySelectorAll('.handler.hl').length") == len(handlers_of(loop, "Recorder"))
    assert cc.evaluate("[...document.querySelectorAll('.mx-row.hl a.cb-link')].map(a => a.textContent)") == ["Recorder"]
    cc.keyboard.press("Escape")
    assert cc.evaluate("document.querySelectorAll('.hl').length") == 0
    # The Tracer row: a mark at every column, each linking to an event of the page.
    hrefs = cc.evaluate("[...document.querySelectorAll('#matrix tr.mx-row:last-child a.mk')].map(a => a.getAttribute('href'))")
    assert len(hrefs) == len(loop.iter_events()) and all(cc.locator(h).count() == 1 for h in hrefs)
    visit.assert_quiet()


def test_matrix_scrolls_inside_its_box_on_a_phone(visit, pages):
    page = visit(pages["custom_callbacks"], **PHONE)
    wrap = "document.querySelector('#matrix .mx-wrap')"
    assert page.evaluate(f"{wrap}.scrollWidth > {wrap}.clientWidth + 200")  # wider than the phone: it scrolls...
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")  # ...inside its box, not the page
    first = "document.querySelector('#matrix tbody .mx-cb').getBoundingClientRect().left"
    left = page.evaluate(first)
    page.evaluate(f"{wrap}.scrollLeft = 400")
    assert page.evaluate(f"{wrap}.scrollLeft") == 400
    assert page.evaluate(first) == pytest.approx(left, abs=1)  # the names stay in view
    last = page.locator("#matrix tbody tr.mx-row:last-child a.mk").last
    last.scroll_into_view_if_needed()
    last.click()
    assert page.evaluate("location.hash") == "#fit-after_cancel_fit"
    visit.assert_quiet()


def test_theme_switch_overrides_the_system(visit, pages):
    page = visit(pages["synth"], color_scheme="dark")
    body = "getComputedStyle(document.body).backgroundColor"
    assert page.evaluate(body) == DARK_BG and page.is_checked("#ld-theme-auto")
    page.click("label:has(#ld-theme-light)")
    assert page.evaluate(body) == LIGHT_BG
    assert page.evaluate("getComputedStyle(document.documentElement).colorScheme") == "light"
    page.emulate_media(media="print", color_scheme="dark")
    assert page.evaluate("getComputedStyle(document.body).color") == "rgb(0, 0, 0)"
    page.emulate_media(media="screen", color_scheme="light")
    page.click("label:has(#ld-theme-dark)")
    assert page.evaluate(body) == DARK_BG
    page.emulate_media(media="print")
    assert page.evaluate(body) == LIGHT_BG and page.evaluate("getComputedStyle(document.body).color") == "rgb(0, 0, 0)"
    page.emulate_media(media="screen")
    page.keyboard.press("Shift+Tab")  # the radios take the keyboard: arrows move between them
    page.focus("#ld-theme-dark")
    page.keyboard.press("ArrowLeft")
    assert page.is_checked("#ld-theme-light") and page.evaluate(body) == LIGHT_BG
    # Nothing is stored: a new page starts from the system's choice again.
    assert page.evaluate("localStorage.length") == 0 and page.evaluate("document.cookie") == ""
    again = visit(pages["synth"], color_scheme="dark")
    assert again.evaluate(body) == DARK_BG and again.is_checked("#ld-theme-auto")
    visit.assert_quiet()


def test_contents_sidebar_and_folded_contents_on_a_phone(visit, pages):
    page = visit(pages["custom_callbacks"])
    toc = "document.getElementById('toc')"
    assert page.evaluate(f"getComputedStyle({toc}).position") == "fixed" and page.is_visible("#toc a[href='#phase-fit-epoch']")
    assert page.evaluate(f"{toc}.getBoundingClientRect().right <= document.querySelector('main').getBoundingClientRect().left")
    page.evaluate("scrollTo(0, 5000)")
    assert page.evaluate(f"{toc}.getBoundingClientRect().top") == 0  # it stays beside the page
    page.click("#toc a[href='#phase-fit-epoch-validate-batch']")
    assert page.evaluate("location.hash") == "#phase-fit-epoch-validate-batch"
    assert_in_view(page, "#phase-fit-epoch-validate-batch")
    phone = visit(pages["custom_callbacks"], **PHONE)
    assert phone.get_attribute("#toc > details", "open") is None and not phone.is_visible("#toc a[href='#loop']")
    phone.click("#toc summary")
    assert phone.is_visible("#toc a[href='#phase-fit-epoch-train-batch-step']")
    phone.click("#toc a[href='#callbacks']")
    assert phone.evaluate("location.hash") == "#callbacks"
    visit.assert_quiet()


# ---------------------------------------------------------------- without JavaScript


# Per framework: a batch-loop event to jump to, an epoch phase to fold, an event of fit whose first handler links to a card.
ANCHORS = {"fastai": ("before_batch", "phase-fit-epoch", "fit-before_fit"),
           "lightning": ("on_train_batch_end", "phase-fit-train-epoch", "fit-setup"),  # an event with handlers: a targeted quiet one shows
           "transformers": ("on_step_end", "phase-train-epoch", "train-on_train_begin")}


@pytest.mark.parametrize("name", EXAMPLES)
def test_without_javascript(visit, pages, models, name):
    loop = models[name]
    batch, epoch, first = ANCHORS[loop.framework.name]
    page = visit(pages[name], f"#{batch}", java_script_enabled=False)
    assert not page.evaluate("document.documentElement.classList.contains('js')")
    assert not page.is_visible("#ld-controls") and page.locator(".hl-btn").count() == 0
    assert page.evaluate("[...document.querySelectorAll('details.phase')].every(d => d.open)")
    quiet = sum(not e.handlers for _, e in loop.iter_events())
    assert visible(page, "li.event") == len(loop.iter_events()) - quiet
    assert visible(page, "li.handler") == sum(len(e.handlers) for _, e in loop.iter_events())
    top = page.evaluate(f"document.getElementById('{batch}').getBoundingClientRect().top")
    assert 0 <= top < 100
    if quiet:  # the quiet-events toggle is a checkbox read by CSS: no script needed
        page.check("#ld-show-quiet")
        assert visible(page, "li.event") == len(loop.iter_events())
        page.uncheck("#ld-show-quiet")
    # So is the theme switch.
    page.click("label:has(#ld-theme-dark)")
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == DARK_BG
    page.click("label:has(#ld-theme-auto)")
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == LIGHT_BG
    # <details> still folds, by mouse and by keyboard.
    page.click(f"#{epoch} > summary")
    assert page.get_attribute(f"#{epoch}", "open") is None
    page.focus(f"#{epoch} > summary")
    page.keyboard.press("Enter")
    assert page.get_attribute(f"#{epoch}", "open") == ""
    # A callback link is a plain link to its card.
    page.click(f"#{first} a.cb-link >> nth=0")
    event = next(e for p, e in loop.iter_events(keyed=True) if "-".join((*p, e.name)) == first)
    assert page.evaluate("location.hash") == "#cb-" + event.handlers[0].callback
    visit.assert_quiet()


# ---------------------------------------------------------------- hostile text


PAYLOAD = ('<script>window.__pwned = 1</script> <img src="x" onerror="window.__pwned = 2"> '
           '<svg onload="window.__pwned = 3"></svg> [click](javascript:window.__pwned=4) '
           '![pic](https://example.com/p.png) <a href="https://example.com/">out</a> **unbalanced `tick\n\n```\nopen fence <b>')


@pytest.fixture
def hostile_page(tmp_path) -> tuple[Path, Loop]:
    """custom_callbacks with every docstring and event description replaced by ``PAYLOAD``."""
    data = json.loads((GOLDEN / "custom_callbacks.json").read_text(encoding="utf-8"))
    for cb in data["callbacks"]:
        cb["doc"] = PAYLOAD

    def walk(node):
        if node["kind"] == "event":
            node["description"] = PAYLOAD
            for h in node["handlers"]:
                h["doc"] = PAYLOAD
        for child in node.get("children", []):
            walk(child)

    for phase in data["phases"]:
        walk(phase)
    saved = tmp_path / "hostile.json"
    saved.write_text(json.dumps(data), encoding="utf-8")
    loop = load_json(str(saved))
    page = tmp_path / "hostile.html"
    page.write_text(render(loop, "html"), encoding="utf-8")
    return page, loop


def test_hostile_docstrings_are_text(visit, hostile_page):
    path, loop = hostile_page
    page = visit(path)
    assert page.evaluate("window.__pwned") is None
    assert page.evaluate("document.querySelectorAll('img, svg, iframe, object, embed').length") == 0
    assert page.evaluate("document.scripts.length") == 1
    doc = page.inner_text("#cb-Recorder .doc")
    assert '<script>window.__pwned = 1</script> <img src="x" onerror="window.__pwned = 2">' in doc
    assert "open fence <b>" in doc
    # Raw <a> is text, javascript: links are dropped; ![pic](url) is only a link (to the picture), never an image.
    hrefs = page.evaluate("[...document.querySelectorAll('.doc a, .ev-desc a')].map(a => a.getAttribute('href'))")
    assert set(hrefs) == {"https://example.com/p.png"}
    assert "[click](javascript:window.__pwned=4)" in doc and '<a href="https://example.com/">out</a>' in doc
    # The unclosed fence and bold end with their docstring: the tree is whole.
    assert visible(page, "li.event") == len(loop.iter_events())
    assert visible(page, "li.handler") == sum(len(e.handlers) for _, e in loop.iter_events())
    page.fill("#ld-q", "<script>")
    assert visible(page, "li.event") == 0
    page.fill("#ld-q", "")
    page.locator("a.cb-link", has_text="Recorder").first.click()
    assert page.evaluate("document.querySelectorAll('.handler.hl').length") == len(handlers_of(loop, "Recorder"))
    page.mouse.wheel(0, 20000)
    assert page.evaluate("window.__pwned") is None
    visit.assert_quiet()


def test_hostile_names_work_in_the_controls(visit, tmp_path):
    loop = handmade_loop(HOSTILE)
    path = tmp_path / "names.html"
    path.write_text(render(loop, "html"), encoding="utf-8")
    page = visit(path)
    evil = HOSTILE["cb_a"]
    page.locator("a.cb-link", has_text=evil).first.click()
    assert page.evaluate("document.querySelectorAll('.handler.hl').length") == len(handlers_of(loop, evil))
    assert page.inner_text("#ld-hl strong") == evil
    page.fill("#ld-q", "pipe|`tick`")
    assert page.evaluate("[...document.querySelectorAll('.cb-card')].filter(e => e.checkVisibility()).map(e => e.id)") == \
        ["cb-" + HOSTILE["cb_b"]]
    page.fill("#ld-q", "")
    # The short anchor of an event named like markup still lands.
    page.evaluate("name => { location.hash = '#' + encodeURIComponent(name); }", HOSTILE["ev_evil"])
    top = page.evaluate("name => document.getElementById(name).getBoundingClientRect().top", HOSTILE["ev_evil"])
    assert 0 < top < 300
    visit.assert_quiet()
