"""Every entry point documents the same loop: the one ``loopdoc.resolve.resolve(spec).document`` gives.

For every spec of ``helpers.SPECS`` (the examples and the learner fixtures; a framework adds
its own lists there) the model is obtained through each entry point and compared with the
resolver's (the reference):

- the command line, each in its own process: ``render -o x.json`` (the same model),
  ``show`` (``render(model, "txt")``), ``trace`` (its embedded static loop is the model of the
  same call), ``card`` (the section ``update_card`` writes for the model), ``diff`` (a spec
  against its saved JSON is ``same``; the spec on the old side for every other spec, on the
  new side for the rest, both for ``late_add``);
- the mkdocs plugin in a real ``mkdocs build`` of one site with a page per spec (the loop the
  plugin's cache returned, and the HTML in each page), and the Sphinx directive in a real
  ``sphinx-build`` (likewise);
- the notebook: ``import loopdoc.fastai``, then a learner built as the spec's module builds
  it; ``learn.show_training_loop()`` prints ``render(model, "txt")`` (named ``learn``) and
  ``loopdoc.loop(learn)`` is the model;
- ``loopdoc.load_loop(spec)``.

``tests/fixtures/learners/late_add.py`` adds a callback with ``learn.add_cb`` after
``Learner(...)``: fastai never fires ``after_create`` for it, and no entry point may list it
there (``test_late_add_is_never_at_after_create``).

Everything runs in processes of its own, started together in the background as soon as the
selected tests are known (``prefetch``); the reference too (``python -c`` calling the
resolver, so that no thread of this process changes its working directory).
"""

from __future__ import annotations

import dataclasses
import functools
import html
import json
import re
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
from helpers import FASTAI_EXAMPLES, LEARNERS, ROOT, SPECS, background, cli_json, parse_html, run_loopdoc, run_python, scratch

from loopdoc.card import update_card
from loopdoc.model import Loop, load_json
from loopdoc.model.trace import Trace
from loopdoc.render import render
from loopdoc.rendering.fragment import fragment_parts, render_markdown_section

pytestmark = [pytest.mark.fastai, pytest.mark.subprocess]

LATE = "tests/fixtures/learners/late_add.py"
NOTEBOOK_SPECS = FASTAI_EXAMPLES + LEARNERS
"""The specs the fastai notebook patch is checked on (``import loopdoc.fastai``)."""
CARD = "# Model\n\n## Training procedure\n\nText.\n"

REFERENCE = """
import json, sys
from loopdoc.adapters.registry import adapter
from loopdoc.resolve import start

spec, out = sys.argv[1], sys.argv[2]
# resolve(spec) is start(spec).result(); the same worker then answers for the call `trace` runs by default
with start(spec) as pending:
    loop = pending.result().document
    call = adapter(loop.framework.name).trace_call
    traced = loop if call is None else pending.worker.ask({"what": "loop", "call": call})
with open(out, "w", encoding="utf-8") as f:
    json.dump({"loop": loop.to_dict(), "traced": traced.to_dict()}, f)
"""

LOAD_LOOP = """
import sys, loopdoc
sys.stdout.write(loopdoc.load_loop(sys.argv[1]).to_json())
"""

NOTEBOOK = """
import contextlib, importlib, json, os, sys
import loopdoc, loopdoc.fastai  # first, as a notebook's imports; then the learner is built

spec, out = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.path.dirname(os.path.abspath(spec)))
with contextlib.redirect_stdout(sys.stderr):  # what the learner's module prints is not the loop
    module = importlib.import_module(os.path.splitext(os.path.basename(spec))[0])
learn = module.learn
learn.show_training_loop()
with open(out, "w", encoding="utf-8") as f:
    json.dump(loopdoc.loop(learn, loaded_from=f"{spec}:learn").to_dict(), f)
"""

RECORD_CACHE = """
import json, sys
from loopdoc.publish import LoopCache

seen = {}
original = LoopCache.get


def get(self, spec, call, working_dir):
    loop = original(self, spec, call, working_dir)
    seen[spec] = loop.to_dict()
    return loop


LoopCache.get = get


def save(path):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(seen, f)
"""

MKDOCS = RECORD_CACHE + """
from mkdocs.__main__ import cli

try:
    cli(["build", "-q", "-f", sys.argv[1], "--site-dir", sys.argv[2]], standalone_mode=False)
finally:
    save(sys.argv[3])
"""

SPHINX = RECORD_CACHE + """
from sphinx.cmd.build import main

try:
    code = main(["-q", "-b", "html", sys.argv[1], sys.argv[2]])
finally:
    save(sys.argv[3])
sys.exit(code)
"""


def _page(i: int) -> str:
    return f"p{i}"


# ---------------------------------------------------------------- the jobs


def _python(code: str, *args: str) -> Any:
    proc = run_python(code, *args)
    assert proc.returncode == 0, proc.stderr[-5000:]
    return proc


# Each job returns what its process wrote (text, JSON data, paths); the tests read the models from it, in the main
# thread (a job's thread must not import anything while a test may have patched the import machinery).


def reference(spec: str) -> Future[dict[str, Any]]:
    def work() -> dict[str, Any]:
        out = scratch(f"ref-{spec}") / "ref.json"
        _python(REFERENCE, spec, str(out))
        return json.loads(out.read_text(encoding="utf-8"))

    return background(f"ep reference {spec}", work)


def cli_show(spec: str) -> Future[str]:
    def work() -> str:
        proc = run_loopdoc("show", spec)
        assert proc.returncode == 0, proc.stderr[-5000:]
        return proc.stdout

    return background(f"ep show {spec}", work)


def cli_trace(spec: str) -> Future[Path]:
    def work() -> Path:
        out = scratch(f"trace-{spec}") / "trace.json"
        proc = run_loopdoc("trace", spec, "-o", str(out))
        assert proc.returncode == 0, proc.stderr[-5000:]
        return out

    return background(f"ep trace {spec}", work)


def cli_card(spec: str) -> Future[tuple[str, str]]:
    def work() -> tuple[str, str]:
        card = scratch(f"card-{spec}") / "README.md"
        card.write_text(CARD, encoding="utf-8")
        proc = run_loopdoc("card", spec, str(card))
        assert proc.returncode == 0, proc.stderr[-5000:]
        return str(card), card.read_text(encoding="utf-8")

    return background(f"ep card {spec}", work)


def diff_sides(spec: str) -> list[str]:
    """Which side(s) of ``diff`` the spec is loaded on: alternately old and new, both for ``late_add``."""
    if spec == LATE:
        return ["old", "new"]
    return ["old" if SPECS.index(spec) % 2 == 0 else "new"]


def cli_diff(spec: str, side: str) -> Future[dict[str, Any]]:
    saved = cli_json(spec)  # started earlier (prefetch), so this job never waits for one queued behind it

    def work() -> dict[str, Any]:
        pair = (spec, str(saved.result())) if side == "old" else (str(saved.result()), spec)
        proc = run_loopdoc("diff", *pair, "--format", "json", "-o", "-", env={"NO_COLOR": "1"})
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        return json.loads(proc.stdout)

    return background(f"ep diff {side} {spec}", work)


def notebook(spec: str) -> Future[tuple[str, dict[str, Any]]]:
    def work() -> tuple[str, dict[str, Any]]:
        out = scratch(f"notebook-{spec}") / "loop.json"
        proc = _python(NOTEBOOK, spec, str(out))
        return proc.stdout, json.loads(out.read_text(encoding="utf-8"))

    return background(f"ep notebook {spec}", work)


def load_loop(spec: str) -> Future[dict[str, Any]]:
    return background(f"ep load_loop {spec}", lambda: json.loads(_python(LOAD_LOOP, spec).stdout))


def mkdocs_site() -> Future[tuple[Path, dict[str, Any]]]:
    """One ``mkdocs build`` (the real command, with the plugin's cache recorded): a page per spec."""
    def work() -> tuple[Path, dict[str, Any]]:
        folder = scratch("mkdocs")
        (folder / "docs").mkdir()
        (folder / "mkdocs.yml").write_text(f"site_name: entry points\ntheme: mkdocs\nplugins:\n  - loopdoc:\n"
                                           f"      working_dir: {ROOT}\n", encoding="utf-8")
        (folder / "docs" / "index.md").write_text("# Entry points\n", encoding="utf-8")
        for i, spec in enumerate(SPECS):
            (folder / "docs" / f"{_page(i)}.md").write_text(f"# {spec}\n\n::: loopdoc {spec}\n", encoding="utf-8")
        seen = folder / "cache.json"
        _python(MKDOCS, str(folder / "mkdocs.yml"), str(folder / "site"), str(seen))
        return folder / "site", json.loads(seen.read_text(encoding="utf-8"))

    return background("ep mkdocs", work)


def sphinx_site() -> Future[tuple[Path, dict[str, Any]]]:
    """One ``sphinx-build -b html`` (the real command, with the directive's cache recorded): a page per spec."""
    def work() -> tuple[Path, dict[str, Any]]:
        folder = scratch("sphinx")
        (folder / "conf.py").write_text(f"project = 'entry points'\nextensions = ['loopdoc.sphinx']\n"
                                        f"loopdoc_working_dir = {str(ROOT)!r}\n", encoding="utf-8")
        pages = "".join(f"   {_page(i)}\n" for i in range(len(SPECS)))
        (folder / "index.rst").write_text(f"Entry points\n============\n\n.. toctree::\n\n{pages}", encoding="utf-8")
        for i, spec in enumerate(SPECS):
            (folder / f"{_page(i)}.rst").write_text(f"{spec}\n{'=' * len(spec)}\n\n.. loopdoc:: {spec}\n", encoding="utf-8")
        seen = folder / "cache.json"
        _python(SPHINX, str(folder), str(folder / "_build"), str(seen))
        return folder / "_build", json.loads(seen.read_text(encoding="utf-8"))

    return background("ep sphinx", work)


JOBS_OF = {
    "test_cli_render_json": ("render",), "test_cli_show": ("show",), "test_cli_trace_embeds_the_static_loop_of_its_call": ("trace",),
    "test_cli_card": ("card",), "test_cli_diff_of_a_spec_and_its_saved_model_is_same": ("diff",), "test_mkdocs_plugin": ("mkdocs",),
    "test_sphinx_directive": ("sphinx",), "test_notebook_patch_and_loop_of_a_live_learner": ("notebook",),
    "test_load_loop": ("load_loop",),
    "test_late_add_is_never_at_after_create": ("render", "show", "trace", "card", "mkdocs", "sphinx", "notebook", "load_loop"),
}
"""The jobs each test waits for (besides the reference of its spec)."""


def prefetch(items: list[pytest.Item] | None = None) -> None:
    """Start the jobs the selected tests (``items``; ``None``: all) wait for: the saved JSON first (``diff`` waits for it),
    the references, the two builds (the longest), then the rest spec by spec."""
    wanted: dict[str, set[str]] = {}
    for item in items if items is not None else ():
        name = getattr(item, "originalname", item.name)
        spec = getattr(item, "callspec", None) and item.callspec.params.get("spec")
        for kind in JOBS_OF.get(name, ()):
            wanted.setdefault(kind, set()).add(spec or LATE)
    if items is None:
        wanted = {kind: set(SPECS) for jobs in JOBS_OF.values() for kind in jobs}
    specs = [spec for spec in SPECS if any(spec in chosen for chosen in wanted.values())]
    for spec in specs:
        if spec in wanted.get("render", ()) or spec in wanted.get("diff", ()):
            cli_json(spec)
    for spec in specs:
        reference(spec)
    if wanted.get("mkdocs"):
        mkdocs_site()
    if wanted.get("sphinx"):
        sphinx_site()
    starts = {"show": cli_show, "trace": cli_trace, "card": cli_card, "notebook": notebook, "load_loop": load_loop}
    for spec in specs:
        for kind, start in starts.items():
            if spec in wanted.get(kind, ()) and (kind != "notebook" or spec in NOTEBOOK_SPECS):
                start(spec)
        if spec in wanted.get("diff", ()):
            for side in diff_sides(spec):
                cli_diff(spec, side)


@functools.cache
def ref(spec: str) -> Loop:
    """The reference: ``loopdoc.resolve.resolve(spec).document``."""
    return Loop.from_dict(reference(spec).result()["loop"])


@functools.cache
def ref_traced(spec: str) -> Loop:
    """The reference for the call ``loopdoc trace`` runs by default (the adapter's ``trace_call``)."""
    return Loop.from_dict(reference(spec).result()["traced"])


def site(build: Future[tuple[Path, dict[str, Any]]], spec: str) -> tuple[Path, Loop]:
    """A build's folder, and the loop its cache returned for ``spec``."""
    folder, cache = build.result()
    return folder, Loop.from_dict(cache[spec])


def live(spec: str) -> tuple[str, Loop]:
    """What ``learn.show_training_loop()`` printed, and ``loopdoc.loop(learn)``."""
    printed, data = notebook(spec).result()
    return printed, Loop.from_dict(data)


def named(loop: Loop, loaded_from: str) -> Loop:
    return dataclasses.replace(loop, learner=dataclasses.replace(loop.learner, loaded_from=loaded_from))


# ---------------------------------------------------------------- the command line


@pytest.mark.parametrize("spec", SPECS)
def test_cli_render_json(spec):
    path = cli_json(spec).result()
    assert load_json(str(path)) == ref(spec)
    assert path.read_text(encoding="utf-8") == render(ref(spec), "json")


@pytest.mark.parametrize("spec", SPECS)
def test_cli_show(spec):
    assert cli_show(spec).result() == render(ref(spec), "txt")


@pytest.mark.parametrize("spec", SPECS)
def test_cli_trace_embeds_the_static_loop_of_its_call(spec):
    trace = load_json(str(cli_trace(spec).result()))
    assert isinstance(trace, Trace)
    if trace.loop.framework.name == "transformers":
        # The Trainer's trace embeds the static model of the capped call it really ran (max_steps=--batches, output_dir
        # in a temporary folder: its counts and conditions differ), saying so in its first note; the rest is the same.
        static = ref_traced(spec)
        assert trace.loop.notes[0].startswith("Traced run: ")
        assert (trace.loop.callbacks, trace.loop.call, trace.loop.findings) == (static.callbacks, static.call, static.findings)
        assert {e.name for _, e in trace.loop.iter_events()} <= {e.name for _, e in static.iter_events()}
        return
    assert trace.loop == ref_traced(spec)


@pytest.mark.parametrize("spec", SPECS)
def test_cli_card(spec):
    card, text = cli_card(spec).result()
    assert text == update_card(CARD, ref(spec), where=card).text
    assert render_markdown_section(ref(spec), heading_level=3, compact=True).rstrip("\n") in text  # card's default mode


@pytest.mark.parametrize(("spec", "side"), [(spec, side) for spec in SPECS for side in diff_sides(spec)])
def test_cli_diff_of_a_spec_and_its_saved_model_is_same(spec, side):
    data = cli_diff(spec, side).result()
    assert data["same"] is True and data["summary"] == dict.fromkeys(data["summary"], 0)
    assert data[side]["loaded_from"] == ref(spec).learner.loaded_from


def test_diff_sides_cover_both():
    assert {side for spec in SPECS for side in diff_sides(spec)} == {"old", "new"}


# ---------------------------------------------------------------- docs sites


def _in_page(loop: Loop, page: str, level: int, *, verbatim: bool) -> None:
    """Each heading of the loop's fragment (the hosts' default ``max_heading_depth``, 3) is an element of the page, and
    each HTML part is in it verbatim (mkdocs: raw HTML) or, for Sphinx (docutils nodes), each callback's name is."""
    for part in fragment_parts(loop, heading_level=level, id_prefix="", max_heading_depth=3):
        if part.level is not None:
            assert f'id="{part.anchor}"' in page, part.anchor
        elif verbatim:
            assert part.html.strip() in page, part.html[:200]
    for cb in loop.callbacks:
        assert html.escape(cb.name, quote=False) in page, cb.name


@pytest.mark.parametrize("spec", SPECS)
def test_mkdocs_plugin(spec):
    folder, cached = site(mkdocs_site(), spec)
    assert cached == ref(spec)
    _in_page(ref(spec), (folder / _page(SPECS.index(spec)) / "index.html").read_text(encoding="utf-8"), 2, verbatim=True)


@pytest.mark.parametrize("spec", SPECS)
def test_sphinx_directive(spec):
    folder, cached = site(sphinx_site(), spec)
    assert cached == ref(spec)
    _in_page(ref(spec), (folder / f"{_page(SPECS.index(spec))}.html").read_text(encoding="utf-8"), 1, verbatim=False)


# ---------------------------------------------------------------- notebook and Python API


@pytest.mark.parametrize("spec", NOTEBOOK_SPECS)
def test_notebook_patch_and_loop_of_a_live_learner(spec):
    printed, loop = live(spec)
    assert printed == render(named(ref(spec), "learn"), "txt")
    assert loop == ref(spec)


@pytest.mark.parametrize("spec", SPECS)
def test_load_loop(spec):
    assert Loop.from_dict(load_loop(spec).result()) == ref(spec)


# ---------------------------------------------------------------- the known drift


def _after_create(loop: Loop) -> list[str]:
    [event] = [e for path, e in loop.iter_events() if path == ("create",) and e.name == "after_create"]
    return [h.callback for h in event.handlers]


def _in_text(text: str, event: str) -> list[str]:
    """The callbacks the text tree lists at the first place of ``event`` (``- after_create   : A, B (via __call__)``)."""
    line = next(line for line in text.splitlines() if line.strip().startswith(f"- {event} "))
    listed = line.split(":", 1)[1].strip()
    return [] if listed.startswith("-") else [name.split(" (")[0] for name in listed.split(", ")]


def _in_card(text: str, event: str) -> list[str]:
    """The callbacks a compact card's whole-loop list names at the first place of ``event``
    (``- <code>after&#95;create</code>: <code>A</code>, <code>B</code>``; ``–`` for none)."""
    shown = f"<code>{html.escape(event).replace('_', '&#95;')}</code>"
    line = next(line for line in text.splitlines() if line.strip().startswith(f"- {shown}"))
    listed = line.split(":", 1)[1]
    return [html.unescape(name) for name in re.findall(r"<code>([^<]+)</code>", listed)]


def _in_html(page: str, anchor: str) -> list[str]:
    """The callbacks the fragment in a docs page lists at the event ``anchor`` (its handler list's links to callback cards)."""
    element = next(el for el in parse_html(page).iter() if el.get("id") == anchor)
    return ["".join(a.itertext()) for a in element.iter("a") if (a.get("href") or "").startswith("#cb-")]


def test_late_add_is_never_at_after_create():
    """``Late`` (added with ``learn.add_cb``) handles ``after_create`` and ``before_fit``: it is listed at the second only."""
    reference_loop = ref(LATE)
    assert _after_create(reference_loop) == ["TrainEvalCallback"]
    assert "Late" in [h.callback for _, e in reference_loop.iter_events() if e.name == "before_fit" for h in e.handlers]
    printed, live_loop = live(LATE)
    mk_site, mk_loop = site(mkdocs_site(), LATE)
    sphinx_folder, sphinx_loop = site(sphinx_site(), LATE)
    models = {"render": load_json(str(cli_json(LATE).result())), "trace": load_json(str(cli_trace(LATE).result())).loop,
              "mkdocs": mk_loop, "sphinx": sphinx_loop, "notebook loopdoc.loop": live_loop,
              "load_loop": Loop.from_dict(load_loop(LATE).result())}
    assert {name: _after_create(loop) for name, loop in models.items()} == dict.fromkeys(models, ["TrainEvalCallback"])
    index = SPECS.index(LATE)
    pages = {"mkdocs page": (mk_site / _page(index) / "index.html").read_text(encoding="utf-8"),
             "sphinx page": (sphinx_folder / f"{_page(index)}.html").read_text(encoding="utf-8")}
    listed = {"show": _in_text(cli_show(LATE).result(), "after_create"), "show_training_loop": _in_text(printed, "after_create"),
              "card": _in_card(cli_card(LATE).result()[1], "after_create"),
              **{name: _in_html(page, "create-after_create") for name, page in pages.items()}}
    assert listed == dict.fromkeys(listed, ["TrainEvalCallback"])
    assert "Late" in _in_text(printed, "before_fit") and "Late" in _in_html(pages["mkdocs page"], "fit-before_fit")


def test_every_spec_is_covered():
    assert LATE in SPECS and set(NOTEBOOK_SPECS) <= set(SPECS) and len(SPECS) >= 8
