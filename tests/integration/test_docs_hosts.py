"""The loop native in real docs hosts: Sphinx themes, mkdocs-material, build logs, live reload.

Real builds, each in its own process, started at once in one module fixture: ``sphinx-build``
with furo, alabaster and the Read the Docs theme (the golden model of
``examples/custom_callbacks.py``, verbose, and a hostile model), ``sphinx-build -b text``,
``mkdocs build`` with mkdocs-material (default ``max_heading_depth`` and a deeper one) and a
``mkdocs build --verbose`` of a learner that prints and warns. Pages are checked as HTML and
in Chromium (Playwright; see ``tests/integration/test_browser.py``), at 1280 and 390 px, light and dark where
the theme has a dark scheme; screenshots go to ``tests/_artifacts/screenshots/``. Then the live
paths, each with a learner whose callback lives in a sibling ``cbs.py``: a real ``mkdocs serve``
on a free local port, and two ``sphinx-build`` runs in one output folder.
"""

from __future__ import annotations

import functools
import http.server
import importlib.util
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import html5lib
import pytest
from helpers import IMG, ROOT, SCRIPT, SHOTS, Build, hostile_model, write_files

from loopdoc.errors import LoadError
from loopdoc.publish import HOST_CSS, LoopCache, PublishOptions

pytestmark = [pytest.mark.subprocess, pytest.mark.fastai]  # real builds; the live paths load a fastai learner

GOLDEN = ROOT / "tests" / "golden"
CC = GOLDEN / "custom_callbacks.json"
THEMES = ["furo", "alabaster", "sphinx_rtd_theme"]
DARK_THEMES = {"furo"}  # the others have no dark scheme
WIDTHS = (1280, 390)

MATERIAL = """site_name: hosts
theme:
  name: material
  palette:
    - media: "(prefers-color-scheme: light)"
      scheme: default
    - media: "(prefers-color-scheme: dark)"
      scheme: slate
markdown_extensions:
  - toc:
      permalink: true
  - admonition
plugins:
  - search
  - loopdoc:
      working_dir: {root}
      verbose: true
"""

NOISY_LEARNER = '''import sys
import warnings

from fastai.test_utils import synth_learner

print("hello from the learner")
print("and from its stderr", file=sys.stderr)
warnings.warn("a warning from the learner's own code")
learn = synth_learner()
'''

CBS = '''from fastai.callback.core import Callback


class MovedCallback(Callback):
    "A callback that lives in a sibling module."
    order = {order}

    def before_batch(self):
        pass
'''

LEARNER = '''from fastai.test_utils import synth_learner

from cbs import MovedCallback
{extra}
learn = synth_learner(cbs=MovedCallback())
'''


def _theme_available(theme: str) -> bool:
    return theme == "alabaster" or importlib.util.find_spec(theme) is not None


def _sites(tmp: Path) -> dict[str, tuple[list[str], Path]]:
    py = sys.executable
    hostile = hostile_model(tmp / "hostile.json")
    out: dict[str, tuple[list[str], Path]] = {}
    for theme in THEMES:
        if not _theme_available(theme):
            continue
        site = write_files(tmp / f"sphinx-{theme}", {
            "conf.py": (f"project = 'hosts'\nextensions = ['loopdoc.sphinx']\nhtml_theme = {theme!r}\n"
                        f"loopdoc_working_dir = {str(ROOT)!r}\nloopdoc_verbose = True\n"),
            "index.rst": "Home\n====\n\n.. toctree::\n\n   loop\n   hostile\n",
            "loop.rst": f"The loop\n========\n\nIntro.\n\n.. loopdoc:: {CC}\n",
            "hostile.rst": f"Hostile\n=======\n\n.. loopdoc:: {hostile}\n",
        })
        out[f"sphinx-{theme}"] = ([py, "-m", "sphinx", "-b", "html", ".", "_build"], site)
    out["sphinx-text"] = ([py, "-m", "sphinx", "-b", "text", ".", "_text"], write_files(tmp / "sphinx-text", {
        "conf.py": f"extensions = ['loopdoc.sphinx']\nloopdoc_working_dir = {str(ROOT)!r}\n",
        "index.rst": f"Home\n====\n\n.. loopdoc:: {CC}\n",
    }))
    material = write_files(tmp / "mk-material", {
        "mkdocs.yml": MATERIAL.format(root=ROOT),
        "docs/index.md": f"# Home\n\n::: loopdoc {CC}\n",
        "docs/deep.md": f"# Deep\n\n::: loopdoc {CC}\n    max_heading_depth: 6\n",
    })
    out["mk-material"] = ([py, "-m", "mkdocs", "build", "--site-dir", str(material / "site")], material)
    noisy = write_files(tmp / "mk-noisy", {
        "mkdocs.yml": "site_name: noisy\ntheme: mkdocs\nplugins:\n  - loopdoc\n",
        "learner.py": NOISY_LEARNER,
        "docs/index.md": "# Home\n\n::: loopdoc learner.py:learn\n",
    })
    out["mk-noisy"] = ([py, "-m", "mkdocs", "build", "--verbose", "--site-dir", str(noisy / "site")], noisy)
    return out


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Build]:
    """Run every build at once and wait for all of them."""
    tmp = tmp_path_factory.mktemp("hosts")
    env = {**os.environ, "NO_COLOR": "1", "NO_MKDOCS_2_WARNING": "1"}
    env.pop("PYTHONWARNINGS", None)  # mkdocs shows Python warnings as INFO lines unless -W/PYTHONWARNINGS is set
    started = {}
    for name, (cmd, cwd) in _sites(tmp).items():
        out = open(tmp / f"{name}.log", "w+", encoding="utf-8")  # noqa: SIM115 (closed below)
        started[name] = (subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env), out, cwd, time.monotonic())
    done = {}
    for name, (proc, out, cwd, start) in started.items():
        code = proc.wait(timeout=300)
        out.seek(0)
        done[name] = Build(proc.args, cwd, code, out.read(), time.monotonic() - start)
        out.close()
    return done


# ---------------------------------------------------------------- a browser on a local server


@pytest.fixture(scope="module")
def chromium(browser):
    """The session's Chromium (conftest's ``browser``)."""
    return browser


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        pass


@pytest.fixture(scope="module")
def serve_dir() -> Iterator[Any]:
    """``serve(folder)`` → the URL of a static HTTP server on 127.0.0.1 for that folder (stopped at the end)."""
    servers = []

    def serve(folder: Path) -> str:
        handler = functools.partial(_QuietHandler, directory=str(folder))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}/"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


def _open(browser, url: str, width: int, scheme: str = "light"):
    context = browser.new_context(viewport={"width": width, "height": 900}, color_scheme=scheme)
    page = context.new_page()
    page.goto(url)
    page.wait_for_load_state("load")
    return context, page


def _shot(page, name: str, at: str) -> None:
    """A screenshot of the viewport with the element of id ``at`` scrolled to its top, once the theme's scripts have settled."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.evaluate("(id) => document.getElementById(id).scrollIntoView()", at)
    page.evaluate("() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")
    page.evaluate("(id) => document.getElementById(id).scrollIntoView()", at)  # again, after a sticky header moved it
    page.screenshot(path=str(SHOTS / f"{name}.png"))


# The table's visible box: the nearest ancestor (or itself) that scrolls it sideways, else the table (it fits).
_TABLE_BOX = """([selector, column]) => {
  const table = document.querySelector(selector);
  let box = table;
  const scrolls = (e) => ['auto', 'scroll'].includes(getComputedStyle(e).overflowX) && e.scrollWidth > e.clientWidth + 1;
  while (box && box !== document.body && !scrolls(box)) box = box.parentElement;
  if (!box || box === document.body) box = table;
  const main = document.querySelector(column);  // the content column
  const r = box.getBoundingClientRect(), m = main.getBoundingClientRect();
  return {scrolls: scrolls(box), boxRight: r.right, mainRight: m.right, pageScroll: document.documentElement.scrollWidth,
          inner: innerWidth};
}"""


# ---------------------------------------------------------------- Sphinx


def _main(page: str) -> str:
    """The page from its title on (the loop's summary, notes and sections)."""
    return page[page.index("<h1"):]


@pytest.mark.parametrize("theme", THEMES)
def test_sphinx_theme_gets_docutils_nodes(hosts: dict[str, Build], theme: str) -> None:
    if f"sphinx-{theme}" not in hosts:
        pytest.skip(f"{theme} is not installed (pip install furo sphinx-rtd-theme)")
    b = hosts[f"sphinx-{theme}"]
    assert b.returncode == 0, b.output
    assert "WARNING" not in b.output and "ERROR" not in b.output, b.output
    page = b.page("_build/loop.html")
    html5lib.HTMLParser(strict=False).parse(page)
    body = _main(page)
    # inline code is docutils literals (the theme's code style), never a bare <code>
    assert len(re.findall(r'<code class="docutils literal notranslate">', body)) > 300
    assert not re.search(r"<code>", body)
    # the Callbacks table is a docutils table, in its section, with loopdoc's class (and no fixed column widths)
    callbacks = body[body.index('<section id="callbacks">'):]
    assert re.search(r'<table class="(?=[^"]*\bdocutils\b)(?=[^"]*\bloopdoc-table\b)[^"]*">\s*<thead>', callbacks)
    assert "<col style" not in callbacks and 'id="cb-TrainEvalCallback"' in callbacks
    # notes and findings are admonitions the theme styles; nested phases are admonitions titled with the phase
    assert re.search(r'<div class="warning admonition">\s*<p class="admonition-title">LD302 \(warning\)</p>', body)
    assert re.search(r'<div class="(admonition note|note admonition)">\s*<p class="admonition-title">LD401 \(info\)</p>', body)
    assert re.search(r'<div class="loopdoc-phase admonition" id="phase-fit-epoch-train-batch">\s*<p class="admonition-title">batch</p>', body)
    assert body.index('id="phase-fit-epoch-train-batch"') < body.index('id="phase-fit-epoch-train-batch-backward"')
    # internal links stay on the page; no raw HTML node: every id the links name exists
    ids = set(re.findall(r'id="([^"]+)"', page))
    targets = set(re.findall(r'<a class="reference internal" href="#([^"]+)"', body))
    assert targets and targets <= ids, sorted(targets - ids)[:5]
    # the stylesheet is linked and is loopdoc's
    assert re.search(r'href="_static/loopdoc\.css\?v=[0-9a-f]+"', page)
    assert (b.folder / "_build" / "_static" / "loopdoc.css").read_text(encoding="utf-8") == HOST_CSS


def test_sphinx_hostile_model_is_inert(hosts: dict[str, Build]) -> None:
    b = hosts["sphinx-alabaster"]
    page = b.page("_build/hostile.html")
    body = page[page.index('id="phase-create"'):]
    assert "<script>alert" not in body and "<img" not in body and "<div onclick" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body and SCRIPT not in body and IMG not in body
    assert "A docstring heading" in body and "<h1>A docstring heading" not in body


@pytest.mark.parametrize("theme", THEMES)
def test_sphinx_theme_in_the_browser(hosts: dict[str, Build], chromium, serve_dir, theme: str) -> None:
    """At 1280 px the Callbacks table stays in the content column; at 390 px it scrolls inside its box, not the page."""
    if f"sphinx-{theme}" not in hosts:
        pytest.skip(f"{theme} is not installed")
    url = serve_dir(hosts[f"sphinx-{theme}"].folder / "_build") + "loop.html"
    for width in WIDTHS:
        for scheme in ("light", "dark") if theme in DARK_THEMES else ("light",):
            context, page = _open(chromium, url + "#callbacks", width, scheme)
            try:
                m = page.evaluate(_TABLE_BOX, ["table.loopdoc-table", "[role=main]"])
                assert m["pageScroll"] <= m["inner"], (width, m)  # the page never scrolls sideways
                # furo's own table wrapper is 100% wide plus .2rem padding on each side: up to 7 px past its column
                slack = 7 if theme == "furo" else 1
                assert m["boxRight"] <= min(m["mainRight"] + slack, m["inner"]), (width, m)
                if width == 390:
                    assert m["scrolls"], m  # the table is wider than the phone: it scrolls in its box
                background = page.evaluate("getComputedStyle(document.querySelector('#callbacks code.literal')).backgroundColor")
                if theme == "furo":
                    assert background not in ("rgba(0, 0, 0, 0)", "transparent"), background
                _shot(page, f"sphinx-{theme}-callbacks-{width}-{scheme}", "callbacks")
                _shot(page, f"sphinx-{theme}-batch-{width}-{scheme}", "phase-fit-epoch-train-batch")
            finally:
                context.close()


def test_sphinx_text_builder_gets_real_nodes(hosts: dict[str, Build]) -> None:
    b = hosts["sphinx-text"]
    assert b.returncode == 0, b.output
    text = b.page("_text/index.txt")
    # sections, a grid table with whole identifiers, lists, admonitions: not a literal block of the text tree
    assert "\nfit\n===\n" in text and "\nCallbacks\n=========\n" in text
    assert re.search(r'\| callback +\| order +\| flags off +\| defined in +\| runs at +\|', text)
    assert re.search(r'\| "TrainEvalCallback" +\| -10 +\| "run_valid=False" +\|', text)
    assert "\nLD302 (warning): " in text and "\nbatch:\n" in text and "\nbackward:\n" in text
    assert '* **"before_batch"** · *filtered by* "run_train"' in text
    assert "<code>" not in text and "&lt;" not in text


# ---------------------------------------------------------------- mkdocs-material


def test_material_heading_depth(hosts: dict[str, Build], chromium, serve_dir) -> None:
    """Default depth: batch/backward/step are nested blocks, not h6 siblings; depth 6: nested headings in the TOC."""
    b = hosts["mk-material"]
    assert b.returncode == 0, b.output
    page = b.page("site/index.html")
    assert "<h6" not in page[page.index('id="phase-create"'):]
    for phase in ("batch", "batch-backward", "batch-step"):
        assert f'<details open class="loopdoc-phase" id="phase-fit-epoch-train-{phase}">' in page
    url = serve_dir(b.folder / "site")
    toc_parent = """(href) => { const a = document.querySelector(`.md-nav--secondary a[href="${href}"]`);
        if (!a) return null; const up = a.closest('li').parentElement.closest('li');
        return up ? up.querySelector(':scope > a').getAttribute('href') : ''; }"""
    nested_in = "(id) => document.getElementById(id).parentElement.closest('details.loopdoc-phase')?.id ?? null"
    context, view = _open(chromium, url, 1280)
    try:
        assert view.evaluate(toc_parent, "#phase-fit-epoch-train") == "#phase-fit-epoch"
        for phase in ("batch", "batch-backward", "batch-step"):
            assert view.evaluate(toc_parent, f"#phase-fit-epoch-train-{phase}") is None  # not in the TOC at all
        assert view.evaluate(nested_in, "phase-fit-epoch-train-batch-backward") == "phase-fit-epoch-train-batch"
        assert view.evaluate(nested_in, "phase-fit-epoch-train-batch-step") == "phase-fit-epoch-train-batch"
        assert view.evaluate(nested_in, "phase-fit-epoch-train-batch") is None
    finally:
        context.close()
    context, view = _open(chromium, url + "deep/", 1280)
    try:
        assert view.evaluate("document.querySelector('#phase-fit-epoch-train-batch').tagName") == "H5"
        assert view.evaluate("document.querySelector('#phase-fit-epoch-train-batch-backward').tagName") == "H6"
        assert view.evaluate(toc_parent, "#phase-fit-epoch-train-batch-backward") == "#phase-fit-epoch-train-batch"
        assert view.evaluate(toc_parent, "#phase-fit-epoch-train-batch-step") == "#phase-fit-epoch-train-batch"
        assert view.evaluate(toc_parent, "#phase-fit-epoch-train-batch") == "#phase-fit-epoch-train"
    finally:
        context.close()


def test_material_callbacks_table_keeps_identifiers_whole(hosts: dict[str, Build], chromium, serve_dir) -> None:
    b = hosts["mk-material"]
    page = b.page("site/index.html")
    assert 'href="assets/loopdoc/loopdoc.css"' in page
    assert (b.folder / "site" / "assets" / "loopdoc" / "loopdoc.css").read_text(encoding="utf-8") == HOST_CSS
    url = serve_dir(b.folder / "site")
    measure = """() => { const codes = [...document.querySelectorAll('.loopdoc-table table code')];
        return codes.map(c => [c.textContent, c.getClientRects().length, c.getBoundingClientRect().height]); }"""
    for width in WIDTHS:
        for scheme in ("light", "dark"):
            context, view = _open(chromium, url + "#callbacks", width, scheme)
            try:
                codes = view.evaluate(measure)
                assert len(codes) > 40
                one_line = min(h for _, _, h in codes)
                for text, rects, height in codes:  # each identifier on one line: one box, one line high
                    assert rects == 1 and abs(height - one_line) < 1, (width, text, rects, height, one_line)
                assert {"TrainEvalCallback", "examples/custom_callbacks.py:82", "run_valid=False"} <= {t for t, _, _ in codes}
                m = view.evaluate(_TABLE_BOX, [".loopdoc-table table", ".md-content"])  # material's column
                assert m["pageScroll"] <= m["inner"], (width, m)
                assert m["boxRight"] <= min(m["mainRight"], m["inner"]) + 1 and (m["scrolls"] or width > 390), (width, m)
                _shot(view, f"material-callbacks-{width}-{scheme}", "callbacks")
                _shot(view, f"material-batch-{width}-{scheme}", "phase-fit-epoch-train-batch")
            finally:
                context.close()


# ---------------------------------------------------------------- the build log


def test_mkdocs_log_has_no_learner_output_or_framework_warnings(hosts: dict[str, Build]) -> None:
    """What the learner prints and warns reaches the log only as DEBUG lines (``--verbose``); a default build shows none."""
    b = hosts["mk-noisy"]
    assert b.returncode == 0, b.output
    lines = b.output.splitlines()
    shown = [line for line in lines if not line.startswith("DEBUG")]  # what `mkdocs build` without --verbose prints
    for needle in ("hello from the learner", "and from its stderr", "a warning from the learner", "Warning", "Traceback"):
        assert not any(needle in line for line in shown), (needle, shown)
    debug = [line for line in lines if line.startswith("DEBUG") and "loopdoc: learner.py:learn: " in line]
    assert any(line.endswith("learner.py:learn: hello from the learner") for line in debug), debug
    assert any(line.endswith("learner.py:learn: and from its stderr") for line in debug), debug
    assert any("UserWarning: a warning from the learner's own code" in line for line in debug), debug
    assert any(re.search(r"INFO\s+-\s+loopdoc: loaded learner\.py:learn", line) for line in shown), shown
    assert "hello from the learner" not in b.page("site/index.html")


# ---------------------------------------------------------------- options


def test_max_heading_depth_option() -> None:
    assert PublishOptions().max_heading_depth == 3
    assert "max_heading_depth" in PublishOptions.SITE
    PublishOptions.check({"max_heading_depth": None}, block=False)
    for bad, message in ((0, "from 1 to 6"), (7, "from 1 to 6"), (True, "must be int"), ("3", "must be int")):
        with pytest.raises(Exception, match=message):
            PublishOptions.check({"max_heading_depth": bad})
    from loopdoc.model import load_json
    from loopdoc.rendering.fragment import fragment_parts

    loop = load_json(str(CC))
    levels = {p.anchor: p.level for p in fragment_parts(loop, heading_level=2, max_heading_depth=2) if p.level}
    assert levels["phase-fit"] == 2 and levels["phase-fit-epoch"] == 3 and "phase-fit-epoch-train" not in levels
    # None: headings down to h6, then blocks (never two levels flattened into h6)
    parts = fragment_parts(loop, heading_level=4)
    levels = {p.anchor: p.level for p in parts if p.level}
    assert levels["phase-fit-epoch-train"] == 6 and "phase-fit-epoch-train-batch" not in levels
    assert any('<details open class="loopdoc-phase" id="phase-fit-epoch-train-batch">' in p.html for p in parts)


def test_doctree_of_a_hostile_fragment_is_text() -> None:
    from docutils import nodes

    from loopdoc.doctree import fragment_nodes

    html = ('<p>a <code>&lt;script&gt;</code> <a href="javascript:alert(1)">x</a> <a href="#cb-A">A</a></p>'
            '<ul><li id="ev">one<br>two<ol><li>three</li></ol></li></ul><script>alert(1)</script><hr>'
            '<div class="loopdoc-table"><table><thead><tr><th>h</th></tr></thead>'
            '<tbody><tr id="cb-A"><td>c</td><td>d</td></tr></tbody></table></div>')
    out = fragment_nodes(html)
    kinds = [type(n).__name__ for n in out]
    assert kinds == ["paragraph", "bullet_list", "paragraph", "table"]
    assert not any(isinstance(n, nodes.raw) for top in out for n in top.findall())
    first = out[0]
    assert first.findall(nodes.literal).__next__().astext() == "<script>"
    refs = list(first.findall(nodes.reference))
    assert len(refs) == 1 and refs[0]["refid"] == "cb-A"  # the javascript: link is text only
    assert out[2].astext() == "alert(1)"  # unknown elements keep their text, lose their markup
    item = out[1].children[0]
    assert item["ids"] == ["ev"] and [type(c).__name__ for c in item.children] == ["paragraph", "paragraph", "enumerated_list"]
    table = out[3]
    assert "loopdoc-table" in table["classes"] and table.children[0]["cols"] == 2
    assert [r["ids"] for r in table.findall(nodes.row)] == [[], ["cb-A"]]


# ---------------------------------------------------------------- live reload


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _fetch(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.read().decode("utf-8")
    except OSError:
        return None


def _order_shown(page: str | None) -> str | None:
    m = re.search(r'id="cb-MovedCallback"><td><code>MovedCallback</code>.*?</td><td>(-?\d+)</td>', page or "", re.S)
    return m.group(1) if m else None


def _wait_for(what: str, check, timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    pytest.fail(f"mkdocs serve: {what} not seen within {timeout:.0f} s; its log:\n{log.read_text(encoding='utf-8')[-4000:]}")


def test_mkdocs_serve_reloads_sibling_modules(tmp_path: Path) -> None:
    """A real ``mkdocs serve``: editing the learner's sibling cbs.py, then the learner, rebuilds with each imported afresh."""
    site = write_files(tmp_path, {
        "mkdocs.yml": "site_name: live\ntheme: mkdocs\nplugins:\n  - loopdoc\n",
        "cbs.py": CBS.format(order=7),
        "learner.py": LEARNER.format(extra=""),
        "docs/index.md": "# Live\n\n::: loopdoc learner.py:learn\n",
    })
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    log = tmp_path / "serve.log"
    env = {**os.environ, "NO_COLOR": "1", "NO_MKDOCS_2_WARNING": "1"}
    with open(log, "w", encoding="utf-8") as out:
        proc = subprocess.Popen([sys.executable, "-m", "mkdocs", "serve", "--dev-addr", f"127.0.0.1:{port}"], cwd=site,
                                stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        _wait_for("the first page", lambda: _order_shown(_fetch(url)) == "7", 180, log)
        assert re.search(r"Watching paths for changes: .*'cbs\.py'.*'learner\.py'", log.read_text(encoding="utf-8"))
        (site / "cbs.py").write_text(CBS.format(order=8), encoding="utf-8")
        _wait_for("order 8 after editing cbs.py", lambda: _order_shown(_fetch(url)) == "8", 180, log)
        (site / "learner.py").write_text(LEARNER.format(extra="MovedCallback.order = 9\n"), encoding="utf-8")
        _wait_for("order 9 after editing learner.py", lambda: _order_shown(_fetch(url)) == "9", 180, log)
        assert len(re.findall(r"loopdoc: loaded learner\.py:learn", log.read_text(encoding="utf-8"))) == 3
    finally:
        proc.send_signal(signal.SIGINT)  # as Ctrl-C: mkdocs shuts down, the plugin stops its worker
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert "Shutting down" in log.read_text(encoding="utf-8")


def test_sphinx_incremental_build_rereads_on_a_sibling_module(tmp_path: Path) -> None:
    """Two ``sphinx-build`` runs in one output folder: editing cbs.py re-reads the page that embeds the learner, only it."""
    site = write_files(tmp_path, {
        "conf.py": "extensions = ['loopdoc.sphinx']\n",
        "cbs.py": CBS.format(order=7),
        "learner.py": LEARNER.format(extra=""),
        "index.rst": "Home\n====\n\n.. toctree::\n\n   loop\n",
        "loop.rst": "Loop\n====\n\n.. loopdoc:: learner.py:learn\n",
    })
    env = {**os.environ, "NO_COLOR": "1"}

    def build() -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([sys.executable, "-m", "sphinx", "-b", "html", ".", "_build"], cwd=site, capture_output=True,
                              text=True, timeout=300, env=env)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc

    def order() -> str | None:
        page = (site / "_build" / "loop.html").read_text(encoding="utf-8")
        m = re.search(r'id="cb-MovedCallback">\s*<td><p><code class="docutils literal notranslate"><span class="pre">MovedCallback</span>'
                      r'</code>.*?</td>\s*<td><p>(-?\d+)</p></td>', page, re.S)
        return m.group(1) if m else None

    build()
    assert order() == "7"
    time.sleep(0.01)
    (site / "cbs.py").write_text(CBS.format(order=8), encoding="utf-8")
    os.utime(site / "cbs.py", ns=(time.time_ns(), time.time_ns() + 10**9))  # a later mtime, whatever the clock's resolution
    second = build()
    reading = [line for line in second.stdout.splitlines() if line.startswith("reading sources")]
    assert reading and all(line.endswith("loop") for line in reading), second.stdout
    assert order() == "8"


def test_cache_watches_a_sibling_that_broke_the_load(tmp_path: Path) -> None:
    """A learner whose sibling module fails: the failure names it, it is watched, and fixing it loads again (no fastai)."""
    write_files(tmp_path, {"learner.py": "from cbs import thing\n", "cbs.py": "def broken(:\n"})
    lines: list[tuple[str, str]] = []
    cache = LoopCache(on_output=lambda spec, line: lines.append((spec, line)))
    with pytest.raises(LoadError, match=r"cbs\.py:1: syntax error"):
        cache.get("learner.py", None, tmp_path)
    assert cache.file_list("learner.py", tmp_path) == [tmp_path / "cbs.py", tmp_path / "learner.py"]
    with pytest.raises(LoadError, match=r"cbs\.py:1: syntax error"):  # unchanged: the remembered failure, no new load
        cache.get("learner.py", None, tmp_path)
    assert cache.loads == 1
    (tmp_path / "cbs.py").write_text('print("cbs speaking")\nraise RuntimeError("second failure")\n', encoding="utf-8")
    os.utime(tmp_path / "cbs.py", ns=(time.time_ns(), time.time_ns() + 10**9))
    with pytest.raises(LoadError, match=r"learner\.py:1: RuntimeError: second failure"):
        cache.get("learner.py", None, tmp_path)
    assert cache.loads == 2
    assert ("learner.py", "cbs speaking") in lines  # the worker's output went to on_output, not to stderr
    cache.clear()


def test_worker_output_is_not_lost_without_a_trailing_newline(tmp_path: Path) -> None:
    from loopdoc.resolve import start

    write_files(tmp_path, {"learner.py": 'import sys\nsys.stdout.write("no newline")\nraise SystemExit(3)\n'})
    got: list[str] = []
    with start("learner.py", cwd=str(tmp_path), output=got.append) as pending, pytest.raises(LoadError, match="sys.exit"):
        pending.result()
    assert got == ["no newline"]


def test_host_css_is_inert() -> None:
    """``HOST_CSS`` is inert: no url(), import, or generated content; only loopdoc's classes."""
    assert not re.search(r"url\(|@import|content\s*:|expression\(|javascript:", HOST_CSS)
    selectors = re.findall(r"^([^/{][^{]*)\{", HOST_CSS, re.M)
    assert selectors and all("loopdoc-" in s for s in selectors), selectors


def test_in_process_warnings_reach_the_mkdocs_log_at_debug_only(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """A warning raised in the mkdocs process while loopdoc works (an adapter module's import, say) is a DEBUG line,
    not the INFO line with a stack trace mkdocs makes of it (and not an error under this suite's ``-W error``)."""
    import logging
    import warnings

    from loopdoc import mkdocs as plugin_module

    real = plugin_module.fragment_parts

    def noisy(*args: Any, **kwargs: Any) -> Any:
        warnings.warn_explicit("an import-time deprecation", FutureWarning, "torch/__init__.py", 3, module="torch")
        return real(*args, **kwargs)

    monkeypatch.setattr(plugin_module, "fragment_parts", noisy)
    plugin = plugin_module.LoopdocPlugin()
    plugin.working_dir = ROOT
    with caplog.at_level(logging.DEBUG):
        parts, failed = plugin.expand(str(CC), {"_level": 2, "_prefix": ""})
    assert parts and failed is None
    logged = [(r.levelno, r.getMessage()) for r in caplog.records if "import-time deprecation" in r.getMessage()]
    assert logged == [(logging.DEBUG, f"loopdoc: (page): ::: loopdoc {CC}: FutureWarning: an import-time deprecation (torch/__init__.py:3)")]
