"""Publishing: the mkdocs plugin and the Sphinx extension in real builds, the notebook views.

Every real build (``mkdocs build`` with the default theme and with mkdocs-material,
``sphinx-build -b html``, each also with a learner that fails, and one ``loopdoc card``
with ``--call``) runs in its own process; they all start at once in one module fixture,
because each one that loads ``examples/synth.py`` spends ~10 s importing fastai (so the
mkdocs-material site embeds that learner's saved model, ``tests/golden/synth.json``). The
other tests use the golden loop models (no fastai) in this process.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import html5lib
import pytest
from helpers import ROOT, Build, hostile_model, write_files
from mkdocs.exceptions import PluginError

from loopdoc.errors import UsageError
from loopdoc.publish import LoopCache

pytestmark = [pytest.mark.subprocess, pytest.mark.fastai]  # the builds load examples/synth.py

GOLDEN = ROOT / "tests" / "golden"
BROKEN = 'raise RuntimeError("boom in the learner")\n'


# ---------------------------------------------------------------- sites


MKDOCS_DEFAULT = """site_name: default theme
theme: mkdocs
markdown_extensions:
  - toc:
      permalink: true
  - admonition
plugins:
  - loopdoc:
      working_dir: {root}
"""

MKDOCS_MATERIAL = """site_name: material
theme: material
markdown_extensions:
  - toc:
      permalink: true
  - admonition
  - pymdownx.superfences
plugins:
  - search
  - loopdoc:
      working_dir: {root}
"""


def _sites(tmp: Path) -> dict[str, tuple[list[str], Path]]:
    """Each build's command and working directory."""
    hostile = hostile_model(tmp / "hostile.json")
    broken = tmp / "broken" / "broken_learner.py"
    write_files(broken.parent, {broken.name: BROKEN})
    py = sys.executable
    default = write_files(tmp / "mk-default", {
        "mkdocs.yml": MKDOCS_DEFAULT.format(root=ROOT),
        "docs/index.md": "# Home\n\nThe loop of the synthetic learner.\n\n::: loopdoc examples/synth.py:learn\n\nAfter the loop.\n",
        "docs/fine.md": "# Fine-tuning\n\n## The loop\n\n::: loopdoc examples/synth.py:learn\n    call: fine_tune(2)\n    verbose: true\n",
        "docs/hostile.md": f"# Hostile\n\n::: loopdoc {hostile}\n    verbose: true\n",
        "docs/code.md": "# Code\n\n```\n::: loopdoc not/a/learner.py\n```\n",
    })
    material = write_files(tmp / "mk-material", {
        "mkdocs.yml": MKDOCS_MATERIAL.format(root=ROOT),
        # the saved model of examples/synth.py: no second fastai import in these tests
        "docs/index.md": (f"# Home\n\n::: loopdoc tests/golden/synth.json\n\n## Broken\n\n::: loopdoc {broken}\n"
                          "    lenient: true\n"),
    })
    failing = write_files(tmp / "mk-failing", {
        "mkdocs.yml": MKDOCS_DEFAULT.format(root=broken.parent),
        "docs/index.md": "# Home\n\nFine.\n",
        "docs/bad.md": f"# Bad\n\n::: loopdoc {broken.name}\n",
    })
    sphinx = write_files(tmp / "sphinx", {
        "conf.py": f"project = 'sphinx site'\nextensions = ['loopdoc.sphinx']\nloopdoc_working_dir = {str(ROOT)!r}\n",
        "index.rst": "Home\n====\n\n.. toctree::\n\n   loop\n   saved\n",
        "loop.rst": (".. _top:\n\nThe loop\n========\n\nIntro.\n\n.. loopdoc:: examples/synth.py:learn\n   :call: fine_tune(2)\n\n"
                     f".. loopdoc:: {broken}\n   :lenient:\n"),
        "saved.rst": f"Saved\n=====\n\n.. loopdoc:: {tmp / 'saved.json'}\n",
    })
    (tmp / "saved.json").write_bytes((GOLDEN / "synth.json").read_bytes())
    # Six pages that fail: more than five documents makes Sphinx read them in parallel processes.
    sphinx_failing = write_files(tmp / "sphinx-failing", {
        "conf.py": f"extensions = ['loopdoc.sphinx']\nloopdoc_working_dir = {str(broken.parent)!r}\n",
        "index.rst": "Home\n====\n\n.. toctree::\n   :glob:\n\n   bad*\n",
        **{f"bad{i}.rst": f"Bad {i}\n=====\n\n.. loopdoc:: {broken.name}\n" for i in range(6)},
    })
    card = write_files(tmp / "card", {"README.md": "---\nlicense: mit\n---\n\n# Model\n\n## Training procedure\n\nText.\n"})
    return {
        "mk-default": ([py, "-m", "mkdocs", "build", "--site-dir", str(default / "site")], default),
        "mk-material": ([py, "-m", "mkdocs", "build", "--site-dir", str(material / "site")], material),
        "mk-failing": ([py, "-m", "mkdocs", "build", "--site-dir", str(failing / "site")], failing),
        "sphinx": ([py, "-m", "sphinx", "-j", "2", "-b", "html", ".", "_build"], sphinx),
        "sphinx-failing": ([py, "-m", "sphinx", "-j", "2", "-b", "html", ".", "_build"], sphinx_failing),
        "card": ([py, "-m", "loopdoc", "card", "examples/synth.py:learn", str(card / "README.md"), "--call", "fine_tune(2)"], ROOT),
    }


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Build]:
    """Run every build at once and wait for all of them."""
    tmp = tmp_path_factory.mktemp("publish")
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "NO_COLOR": "1"}
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


def _toc_links(page: str, nav_pattern: str) -> list[str]:
    m = re.search(nav_pattern, page, re.S)
    assert m, "no table of contents in the page"
    return re.findall(r'href="#([^"]+)"', m.group(0))


def _one_document(page: str) -> None:
    """The page is one HTML document: the loop added no <html>, <body>, <style> or <script> of its own."""
    assert page.count("<html") == 1 and page.count("<body") == 1
    html5lib.parse(page)  # parses


# ---------------------------------------------------------------- mkdocs


def test_mkdocs_default_theme(builds: dict[str, Build]) -> None:
    b = builds["mk-default"]
    assert b.returncode == 0, b.output
    assert "ERROR" not in b.output and "WARNING" not in b.output, b.output
    # one import for three blocks on two pages (one with another call)
    assert len(re.findall(r"loopdoc: loaded examples/synth\.py:learn", b.output)) == 1, b.output
    page = b.page("site/index.html")
    _one_document(page)
    for heading in ('<h2 id="phase-create"', '<h2 id="phase-fit"', '<h3 id="phase-fit-epoch"', '<h2 id="callbacks"'):
        assert heading in page
    assert "TrainEvalCallback" in page and "Recorder" in page and "before_batch" in page
    assert page.index("The loop of the synthetic learner") < page.index('id="phase-fit"') < page.index("After the loop")
    toc = _toc_links(page, r'<div id="toc-collapse".*?</ul>\s*</div>')
    assert {"phase-create", "phase-fit", "callbacks"} <= set(toc)


def test_mkdocs_options_call_verbose_and_level(builds: dict[str, Build]) -> None:
    page = builds["mk-default"].page("site/fine/index.html")
    assert "call <code>fine_tune(2)</code>" in page
    # below the page's "## The loop": top headings at level 3
    assert '<h3 id="phase-fit"' in page and '<h3 id="callbacks"' in page
    assert "<em>step</em>" in page  # verbose: steps are shown
    assert '<h2 id="phase-fit"' not in page


def test_mkdocs_hostile_model_is_inert(builds: dict[str, Build]) -> None:
    page = builds["mk-default"].page("site/hostile/index.html")
    body = page[page.index('id="hostile"'):]
    assert "<script>alert" not in body and "<img" not in body and "<div onclick" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "A docstring heading" in body and "<h1>A docstring heading" not in body
    _one_document(page)


def test_mkdocs_fenced_block_is_not_expanded(builds: dict[str, Build]) -> None:
    page = builds["mk-default"].page("site/code/index.html")
    assert "::: loopdoc not/a/learner.py" in page and "loopdoc-body" not in page


def test_mkdocs_material_toc_and_lenient_failure(builds: dict[str, Build]) -> None:
    b = builds["mk-material"]
    assert b.returncode == 0, b.output
    page = b.page("site/index.html")
    _one_document(page)
    toc = _toc_links(page, r'<div class="md-sidebar md-sidebar--secondary".*?<div class="md-content"')
    for anchor in ("phase-fit", "phase-fit-epoch-train", "phase-fit-epoch-validate", "callbacks", "broken"):
        assert anchor in toc
    # max_heading_depth 3 (the default): the batch loops are nested blocks, not headings
    assert "phase-fit-epoch-train-batch" not in toc and '<details open class="loopdoc-phase" id="phase-fit-epoch-train-batch">' in page
    # lenient: a warning in the log and a warning box in the page, the build goes on
    assert re.search(r"WARNING\s+-\s+loopdoc: index\.md: ::: loopdoc \S*broken_learner\.py: .*RuntimeError: boom", b.output), b.output
    box = page[page.index("admonition warning loopdoc-error"):]
    assert "loopdoc could not document" in box[:500] and "RuntimeError: boom in the learner" in box[:800]


def test_mkdocs_failing_learner_fails_the_build(builds: dict[str, Build]) -> None:
    b = builds["mk-failing"]
    assert b.returncode != 0
    assert re.search(r"ERROR\s+-\s+bad\.md: ::: loopdoc broken_learner\.py: broken_learner\.py:1: RuntimeError: boom in the learner",
                     b.output), b.output
    assert "Aborted" in b.output


def test_mkdocs_plugin_watches_learner_files_and_reloads_changed_ones(tmp_path: Path) -> None:
    """In this process, on saved models: ``mkdocs serve`` gets the files to watch; an edit is picked up."""
    from mkdocs.commands.build import build
    from mkdocs.config import load_config

    model = tmp_path / "loop.json"
    model.write_bytes((GOLDEN / "synth.json").read_bytes())
    site = write_files(tmp_path / "site", {
        "mkdocs.yml": f"site_name: t\ntheme: mkdocs\nplugins:\n  - loopdoc:\n      working_dir: {tmp_path}\n",
        "docs/index.md": "# A\n\n::: loopdoc loop.json\n\n::: loopdoc loop.json\n",
        "docs/b.md": "# B\n\n::: loopdoc loop.json\n",
    })
    config = load_config(config_file=str(site / "mkdocs.yml"))
    plugin = config.plugins["loopdoc"]
    plugin.on_startup(command="serve", dirty=False)  # as `mkdocs serve` does: learners stay loaded between rebuilds
    build(config)
    assert plugin.cache.loads == 1
    second = (site / "site" / "index.html").read_text(encoding="utf-8")
    assert 'id="phase-fit"' in second and 'id="loop2-phase-fit"' in second  # a second loop on a page: prefixed anchors

    class Server:
        watched: list[str] = []

        def watch(self, path: str, recursive: bool = True) -> None:
            self.watched.append(path)

    server = Server()
    assert plugin.on_serve(server, config=config, builder=None) is server
    assert server.watched == [str(model)]

    data = json.loads(model.read_text(encoding="utf-8"))
    data["learner"]["loaded_from"] = "edited.py:learn"
    model.write_text(json.dumps(data), encoding="utf-8")
    os.utime(model, ns=(time.time_ns(), time.time_ns() + 10**9))
    plugin.cache.get("loop.json", None, tmp_path)  # same build: the changed file is loaded again
    assert plugin.cache.loads == 2
    assert plugin.cache.get("loop.json", None, tmp_path).learner.loaded_from == "edited.py:learn"


@pytest.mark.parametrize(("options", "message"), [
    ("    bogus: 1\n", "unknown option 'bogus'"),
    ("    verbose: maybe\n", "option 'verbose' must be bool"),
    ("    heading_level: 9\n", "must be from 1 to 6"),
    ("    source_url: javascript:x{path}\n", "scheme 'javascript' not allowed"),
    ("    - a list\n", "options must be 'name: value' lines"),
    ("    call: [unclosed\n", "not valid YAML"),
])
def test_mkdocs_bad_block_options(options: str, message: str) -> None:
    from loopdoc.mkdocs import _parse_options

    with pytest.raises(PluginError, match=re.escape(message)):
        _parse_options(options, "page.md: ::: loopdoc x.py")


# ---------------------------------------------------------------- Sphinx


def test_sphinx_build(builds: dict[str, Build]) -> None:
    b = builds["sphinx"]
    assert b.returncode == 0, b.output
    assert "build succeeded" in b.output
    assert "does not declare if it is safe for parallel" not in b.output
    page = b.page("_build/loop.html")
    _one_document(page)
    for section in ('<section id="phase-create">', '<section id="phase-fit">', '<section id="phase-fit-epoch-train">',
                    '<section id="callbacks">'):
        assert section in page
    # below max_heading_depth (3): an admonition titled with the phase, not a section
    assert re.search(r'<div class="loopdoc-phase admonition" id="phase-fit-epoch-train-batch">\s*<p class="admonition-title">batch</p>', page)
    assert re.search(r'<h2>fit<a class="headerlink" href="#phase-fit"', page)  # nested below the page title (h1)
    assert re.search(r'call <code class="docutils literal notranslate"><span class="pre">fine_tune\(2\)</span></code>', page)
    assert "TrainEvalCallback" in page
    toctree = b.page("_build/index.html")
    for anchor in ("loop.html#phase-fit", "loop.html#phase-fit-epoch-validate", "loop.html#callbacks", "saved.html#phase-fit"):
        assert f'href="{anchor}"' in toctree
    assert 'href="loop.html#phase-fit-epoch-validate-batch"' not in toctree
    # lenient: a warning at the directive's line, and a warning box in the page
    assert re.search(r"loop\.rst:11: WARNING: loopdoc \S*broken_learner\.py: .*RuntimeError: boom in the learner", b.output), b.output
    assert '<div class="admonition warning">' in page and "loopdoc could not document" in page


def test_sphinx_learner_is_a_dependency(builds: dict[str, Build]) -> None:
    """Touching an embedded file re-reads the page that embeds it, and only that page (no fastai import)."""
    b = builds["sphinx"]
    saved = b.folder.parent / "saved.json"
    os.utime(saved, ns=(time.time_ns(), time.time_ns() + 10**9))
    proc = subprocess.run([sys.executable, "-m", "sphinx", "-b", "html", ".", "_build"], cwd=b.folder, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "NO_COLOR": "1"})
    assert proc.returncode == 0, proc.stderr
    reading = [line for line in proc.stdout.splitlines() if line.startswith("reading sources")]
    assert reading and all(line.endswith("saved") for line in reading), proc.stdout


def test_sphinx_failing_learner_fails_the_build(builds: dict[str, Build]) -> None:
    b = builds["sphinx-failing"]
    assert b.returncode == 1, b.output
    for i in range(6):
        assert re.search(rf"bad{i}\.rst:4: ERROR: loopdoc broken_learner\.py: broken_learner\.py:1: RuntimeError: boom", b.output), b.output
    assert "loopdoc: 6 learner(s) failed to load in bad0, bad1, bad2, bad3, bad4, bad5" in b.output
    assert "build finished with problems" in b.output


def test_sphinx_setup_metadata() -> None:
    from loopdoc import sphinx

    class App:
        def __getattr__(self, name: str):
            return lambda *args, **kwargs: None

    meta = sphinx.setup(App())
    assert meta["parallel_read_safe"] is True and meta["parallel_write_safe"] is True


# ---------------------------------------------------------------- model card, end to end


def test_card_with_call(builds: dict[str, Build]) -> None:
    b = builds["card"]
    assert b.returncode == 0, b.output
    assert "README.md: loopdoc section inserted" in b.output
    content = Path(b.cmd[5]).read_text(encoding="utf-8")
    assert content.startswith("---\nlicense: mit\n---\n\n# Model\n\n## Training procedure\n\nText.\n\n"
                              '<!-- loopdoc:start call="fine_tune(2)" mode="compact" title="Training loop" -->')  # the options used
    assert "### Training loop" in content and "call `fine_tune(2)`" in content
    # compact: the callbacks, the matrix (both fits' columns) and the loop folded
    # (inside <details> as raw-HTML-safe text: python-markdown passes the block through unparsed)
    assert "1. `TrainEvalCallback` (order -10; run_valid=False)" in content and "| <strong>fit2</strong> |" in content
    assert content.count("<details>") == 2 and content.count("\n- <strong>fit</strong>\n") == 2  # fine_tune: two fits


# ---------------------------------------------------------------- the cache, notebooks


def test_cache_loads_once_per_spec_and_refuses_a_call_on_a_saved_model(tmp_path: Path) -> None:
    loaded = []
    cache = LoopCache(on_load=lambda spec, seconds: loaded.append(spec))
    model = tmp_path / "m.json"
    model.write_bytes((GOLDEN / "synth.json").read_bytes())
    first = cache.get("m.json", None, tmp_path)
    assert cache.get("m.json", None, tmp_path) is first and cache.loads == 1 and loaded == ["m.json"]
    assert cache.files() == [model]
    with pytest.raises(UsageError, match="call needs a learner"):
        cache.get("m.json", "fine_tune(2)", tmp_path)
    cache.clear()
    cache.get("m.json", None, tmp_path)
    assert cache.loads == 2
    with pytest.raises(Exception, match="nope.json: no such file"):
        cache.get("nope.json", None, tmp_path)
