"""The notebook: ``Loop``'s one-line ``text/plain``, its collapsible HTML view, and the learner's variable name as the title.

The views are read from the golden models (no fastai); the name lookup needs a live learner
(fastai is imported once, in this process), and one test runs real IPython cells.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from pathlib import Path

import html5lib
import pytest

import loopdoc
from loopdoc import Loop, load_json

pytestmark = pytest.mark.fastai

GOLDEN = Path(__file__).resolve().parents[1] / "golden"


@pytest.fixture(scope="module")
def custom() -> Loop:
    return load_json(str(GOLDEN / "custom_callbacks.json"))


def test_text_repr_is_one_short_line():
    synth = load_json(str(GOLDEN / "synth.json"))
    assert repr(synth) == "<Loop fastai 2.8.12 fit of examples/synth.py:learn: 3 callbacks, 24 events>"
    one = dataclasses.replace(synth, callbacks=synth.callbacks[:1], call="get_preds()", learner=dataclasses.replace(
        synth.learner, loaded_from="learn"))
    assert repr(one) == "<Loop fastai 2.8.12 get_preds() of learn: 1 callback, 24 events>"
    assert str(synth) == repr(synth)


def test_html_repr_is_a_collapsed_details_around_the_fragment(custom):
    html = custom._repr_html_()
    head, _, rest = html.partition("\n")
    assert head == '<details class="loopdoc-notebook">'
    summary, _, rest = rest.partition("\n")
    assert summary == ("<summary><strong>Training loop of examples/custom_callbacks.py:learn</strong>: fastai 2.8.12, "
                       "<code>fit</code>, 11 callbacks, 24 events</summary>")
    assert rest.startswith('<div class="loopdoc">') and rest.endswith("</div>\n</details>\n")
    for tag in ("<html", "<head", "<body", "<style", "<script", "<link"):
        assert tag not in html
    assert '<details open class="loopdoc-notebook"' not in html  # collapsed; deep phases inside are open blocks
    html5lib.HTMLParser(strict=True).parseFragment(html)
    ids = re.findall(r'id="([^"]+)"', html)
    assert ids and len(ids) == len(set(ids)) and all(re.fullmatch(r"loopdoc-[0-9a-f]{8}-.+", i) for i in ids)
    assert re.findall(r"<h(\d)", html)[0] == "3"  # the summary is the title; the phases are h3
    assert html == custom._repr_html_()  # deterministic


def test_html_repr_escapes_model_text(custom):
    hostile = dataclasses.replace(custom, learner=dataclasses.replace(custom.learner, loaded_from="<script>x</script>\x1b"),
                                  call="fit(<b>)")
    html = hostile._repr_html_()
    assert "<script>" not in html and "<b>" not in html
    assert "Training loop of &lt;script&gt;x&lt;/script&gt;\ufffd</strong>" in html and "<code>fit(&lt;b&gt;)</code>" in html
    html5lib.HTMLParser(strict=True).parseFragment(html)


def test_every_repr_goes_through_the_one_back_edge(custom, monkeypatch):
    """Each ``_repr_*_`` of ``Loop`` calls ``loopdoc.model.loop._notebook`` (the model layer's only import of the renderer)."""
    import loopdoc.rendering.notebook as notebook

    names = sorted(n for n in dir(Loop) if re.fullmatch(r"_repr_\w+_", n))
    assert names == ["_repr_html_", "_repr_markdown_"]
    for name in names:
        assert "_notebook(" in inspect.getsource(getattr(Loop, name)), name
    seen = []
    monkeypatch.setattr(notebook, "notebook_view", lambda kind, loop: seen.append(kind) or kind)
    assert (custom._repr_html_(), custom._repr_markdown_()) == ("html", "md") and seen == ["html", "md"]


# ---------------------------------------------------------------- the variable's name (a live learner)


@pytest.fixture(scope="module")
def make_learner():
    from fastai.test_utils import synth_learner

    return lambda: synth_learner(n_trn=8, n_val=4)


def test_title_names_the_callers_variable(make_learner):
    learn = make_learner()

    def cell():
        my_learner = learn
        return loopdoc.loop(my_learner)

    assert cell().learner.loaded_from == "my_learner"  # a local name first
    assert loopdoc.loop(learn).learner.loaded_from == "learn"
    namespace = {"loopdoc": loopdoc, "make": make_learner}  # a notebook cell: module level, its globals
    exec("_hidden = make()\nmodel_learner = _hidden\nresult = loopdoc.loop(_hidden)", namespace)
    assert namespace["result"].learner.loaded_from == "model_learner"
    assert loopdoc.loop(make_learner()).learner.loaded_from == "<learner>"  # bound to no name
    exec("_only = make()\nresult = loopdoc.loop(_only)", namespace)  # only a private name: not used
    assert namespace["result"].learner.loaded_from == "<learner>"
    assert loopdoc.loop(learn, loaded_from="given").learner.loaded_from == "given"
    assert "Training loop of learn</strong>" in loopdoc.loop(learn)._repr_html_()


def test_in_real_ipython_cells(make_learner, capsys):
    """Real IPython: cells run in its namespace; its display formatter builds the bundle Jupyter shows."""
    shell_mod = pytest.importorskip("IPython.core.interactiveshell")
    shell = shell_mod.InteractiveShell.instance()
    try:
        shell.user_ns["make"] = make_learner
        result = shell.run_cell("import loopdoc\nlearn = make()\nloop = loopdoc.loop(learn)\nloop", store_history=True)
        assert result.success, result.error_in_exec
        assert result.result.learner.loaded_from == "learn"
        data, _ = shell.display_formatter.format(shell.user_ns["loop"])
        assert data["text/plain"] == "<Loop fastai 2.8.12 fit of learn: 3 callbacks, 24 events>"
        assert data["text/html"].startswith('<details class="loopdoc-notebook">\n<summary><strong>Training loop of learn')
        assert data["text/markdown"].startswith("# Training loop of learn")
        capsys.readouterr()
        result = shell.run_cell("import loopdoc.fastai\nlearner = learn\ndel learn\nlearner.show_training_loop()")
        assert result.success, result.error_in_exec
        assert capsys.readouterr().out.startswith("Training loop of learner\n")
    finally:
        shell_mod.InteractiveShell.clear_instance()
