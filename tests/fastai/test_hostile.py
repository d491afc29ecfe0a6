"""Hostile learners: loopdoc documents them correctly or fails with one line, and never crashes.

``tests/fixtures/hostile/callbacks.py`` packs every hostile callback Python allows into one
learner (loaded in-process, once): 1 MB, binary and markup-laden docstrings, properties that
raise, non-numeric ``order``, classes without source, ``partial``/lambda/callable-object
handlers, a Latin-1 source file. Where fastai itself would fail on a callback the model says
so in a note; the callbacks fastai can run are checked against a real ``fit``
(``tests/observe.py``). Also here: 300 callbacks, classes in a ``__main__`` without a file,
``learn.export()`` pickles, and one subprocess with a learner that prints megabytes and
leaves a thread running (``tests/fixtures/hostile/noisy.py``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import html5lib
import pytest
from helpers import ROOT
from markdown_it import MarkdownIt

import loopdoc
from loopdoc.cli import main
from loopdoc.model import Loop, load_json
from loopdoc.render import render, write_output

pytestmark = pytest.mark.fastai

HOSTILE = "tests/fixtures/hostile/callbacks.py"
NOT_TEXT = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


@pytest.fixture(scope="module")
def hostile() -> tuple[types.SimpleNamespace, Loop]:
    """The hostile fixture module's names and its loop, loaded once from the repository root."""
    from loopdoc.load import load

    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        loaded = load(HOSTILE)
        loop = loopdoc.loop(loaded.learner, loaded_from=loaded.loaded_from)
    finally:
        os.chdir(cwd)
    return types.SimpleNamespace(**loaded.namespace), loop


def by_id(loop: Loop) -> dict[str, loopdoc.model.Callback]:
    return {cb.id: cb for cb in loop.callbacks}


def handlers(loop: Loop, path: str, event: str) -> list[tuple[str, str]]:
    """``[(callback id, function)]`` at one place, ``path`` like ``"fit/epoch/train/batch"``."""
    for where, ev in loop.iter_events():
        if "/".join(where) == path and ev.name == event:
            return [(h.callback, h.function) for h in ev.handlers]
    raise AssertionError(f"no {event} at {path}")


# --- the model ------------------------------------------------------------------------------------------------------


def test_hostile_model_says_where_fastai_would_fail(hostile):
    _, loop = hostile
    notes = "\n".join(loop.notes)
    assert "`BadRunTrain.run_train` raises ValueError: run_train is broken" in notes
    assert "fails at its first `before_batch`" in notes
    assert "`BadRunValid.run_valid` raises ValueError" in notes and "its first validation `before_batch`" in notes
    assert "`RunAttributeError.run` raises AttributeError" in notes
    assert "`BadOrder.order` raises ValueError: order is broken" in notes
    assert "`WordOrder.order` is 'late' (str), which fastai cannot compare" in notes
    assert "BadRepr" not in notes and "BadName" not in notes, "fastai's dispatch reads neither __repr__ nor name"


def test_hostile_model_values(hostile):
    _, loop = hostile
    cbs = by_id(loop)
    # Run order: fastai's stable sort by order; an order fastai cannot sort by counts as 0 here.
    assert [cb.id for cb in loop.callbacks] == [
        "TrainEvalCallback", "HugeDoc", "Binary", "BytesDoc", "Markup", "_b_Evil__b____x_____tick_", "Dynamic", "BadRepr",
        "BadRunTrain", "BadRunValid", "FromExec", "NoFile", "Callback", "Callback-2", "Callback-3", "Callback-4",
        "BadName", "RunAttributeError", "BadOrder", "WordOrder", "BoolOrder", "Latin1", "CastToTensor", "Recorder"]
    assert cbs["BadOrder"].order is None and cbs["WordOrder"].order is None
    assert cbs["BoolOrder"].order == 1 and type(cbs["BoolOrder"].order) is int
    assert cbs["BadRunTrain"].flags == {"run": True, "run_train": True, "run_valid": True}
    # Text is kept exactly in the model (JSON keeps it; the other formats clean it).
    assert len(cbs["HugeDoc"].doc) > 1_000_000
    assert "\x00\x01" in cbs["Binary"].doc and "\x1b[2J" in cbs["Binary"].doc
    assert cbs["BytesDoc"].doc is None
    assert cbs["_b_Evil__b____x_____tick_"].name == "<b>Evil</b>{{ x }}|`tick`"
    assert cbs["Latin1"].doc == "Café crème: défini dans un fichier Latin-1."
    # Sources: found where there is one, None (never an error) where there is none.
    assert cbs["HugeDoc"].source.file == HOSTILE
    assert cbs["Latin1"].source.file == "tests/fixtures/hostile/latin1_callbacks.py" and cbs["Latin1"].source.line == 7
    for name in ("_b_Evil__b____x_____tick_", "Dynamic", "FromExec", "NoFile"):
        assert cbs[name].source is None, name
    # Handlers that are not plain methods.
    assert handlers(loop, "fit/epoch", "before_epoch")[0] == ("Callback", "_with_x")
    assert ("Callback-2", "<lambda>") in handlers(loop, "fit/epoch", "after_epoch")
    assert ("Callback-3", "CallableObject.__call__") in handlers(loop, "fit/epoch/train", "after_train")
    assert ("Callback-4", "_cycle") in handlers(loop, "fit/epoch/train", "before_train")
    assert ("NoFile", "NoFile.after_cancel_fit") in handlers(loop, "fit", "after_cancel_fit")


def test_hostile_model_matches_a_real_run(hostile):
    """The callbacks fastai can run (all but the five the notes warn about), in a real ``fit(1)``."""
    from fastai.callback.core import Callback
    from fastai.test_utils import synth_dbunch, synth_learner
    from observe import mismatches, model_events, recording

    module, _ = hostile
    runnable = [module.HugeDoc(), module.Binary(), module.BytesDoc(), module.Markup(), module.Evil(), module.Dynamic(),
                module.BadRepr(), module.BoolOrder(), module.Latin1(), module.NAMESPACE["FromExec"](), module.NO_FILE.NoFile(),
                Callback(before_epoch=module.functools.partial(module._with_x, x=1)), Callback(after_epoch=lambda self: None),
                Callback(after_train=module.CallableObject()), Callback(before_train=module._cycle)]
    with recording() as seen, contextlib.redirect_stdout(io.StringIO()):
        learn = synth_learner(data=synth_dbunch(n_train=8, n_valid=4, bs=4), cbs=runnable)
        learn.cbs.append(module.BadName())
        loop = loopdoc.loop(learn)
        learn.fit(1)
    assert not loop.notes
    for fired in seen["observed"]:  # the oracle names callbacks by class name; loopdoc's ids make it URL-safe
        for ran in fired["ran"]:
            ran["callback"] = ran["callback"].replace("<b>Evil</b>{{ x }}|`tick`", "_b_Evil__b____x_____tick_")
    assert mismatches(model_events(loop), seen["observed"]) == []


@pytest.mark.subprocess
def test_tracing_the_hostile_learner_fails_as_fastai_does(tmp_path, monkeypatch, capsys):
    """A real run stops where fastai stops (sorting by a broken ``order``): one line, exit 4, no output."""
    monkeypatch.chdir(ROOT)
    out = tmp_path / "trace.txt"
    assert main(["trace", HOSTILE, "-o", str(out)]) == 4
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("Error")]
    assert err == [f"Error: {HOSTILE}: --call 'fit(1)': raised ValueError while running: order is broken"]
    assert not out.exists()


# --- rendering ------------------------------------------------------------------------------------------------------


def test_hostile_html_is_valid_and_inert(hostile, tmp_path):
    _, loop = hostile
    path = tmp_path / "loop.html"
    write_output(render(loop, "html"), str(path))
    text = path.read_text(encoding="utf-8")
    doc = html5lib.HTMLParser(strict=True, namespaceHTMLElements=False).parse(text)  # raises on any parse error
    scripts = [el for el in doc.iter("script")]
    assert len(scripts) == 1 and "alert" not in "".join(scripts[0].itertext())
    for el in doc.iter():
        assert el.tag not in ("img", "iframe", "object", "embed"), el.tag
        for attr, value in el.attrib.items():
            assert not attr.lower().startswith("on"), (el.tag, attr)
            assert "javascript:" not in value.lower(), (el.tag, attr, value)
    body = "".join(doc.find("body").itertext())
    assert "<script>alert(1)</script>" in body and "{{ 7*7 }}" in body and "{% for x in y %}" in body
    assert "<b>Evil</b>{{ x }}|`tick`" in body and "Café crème" in body
    assert "\ufffd" in body, "control characters are shown as U+FFFD"
    assert len(text) > 2_000_000, "both megabyte docstrings are on the page"


def test_hostile_markdown_keeps_its_structure(hostile):
    """Hostile docstrings stay inside their list items: the same headings and top-level blocks as a tame loop."""
    _, loop = hostile
    tame = _tame(loop)
    md_parser = MarkdownIt("commonmark").enable("table")

    def outline(md: str) -> list[str]:
        """The top-level blocks, with the text of each top-level heading."""
        tokens = md_parser.parse(md)
        return [f"{t.type}:{t.tag}:{tokens[i + 1].content if t.type == 'heading_open' else ''}"
                for i, t in enumerate(tokens) if t.level == 0]

    hostile_md, tame_md = render(loop, "md"), render(tame, "md")
    assert not NOT_TEXT.search(hostile_md)
    assert outline(hostile_md) == outline(tame_md)


def _tame(loop: Loop) -> Loop:
    """``loop`` with every docstring, name and note replaced by a plain word (the structure kept)."""
    data = loop.to_dict()

    def walk(node):
        if isinstance(node, dict):
            if node.get("doc"):
                node["doc"] = "Plain."
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(data)
    for cb in data["callbacks"]:
        cb["name"] = "Plain"
    data["notes"] = ["A note."] * len(data["notes"])
    return Loop.from_dict(data)


def test_hostile_text_has_no_control_characters(hostile):
    _, loop = hostile
    for verbose in (False, True):
        text = render(loop, "txt", verbose=verbose)
        assert not NOT_TEXT.search(text), repr(NOT_TEXT.search(text))
    assert "\ufffd[2J" in render(loop, "txt", verbose=True) or "Binary" in render(loop, "txt")


def test_hostile_json_round_trips(hostile, tmp_path):
    """JSON keeps every character (a lone surrogate as an escape) and reads back to the same model."""
    _, loop = hostile
    path = tmp_path / "loop.json"
    write_output(render(loop, "json"), str(path))
    assert load_json(str(path)) == loop


# --- many callbacks, classes without files ---------------------------------------------------------------------------


def _many_source(n: int) -> str:
    spec = importlib.util.spec_from_file_location("many_callbacks", ROOT / "benchmarks" / "many_callbacks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.learner_source(n)


def test_300_callbacks(tmp_path, monkeypatch):
    """300 callback classes in one file: every one in run order, each with its own source line."""
    from loopdoc.load import load

    learner = tmp_path / "many.py"
    learner.write_text(_many_source(300))
    monkeypatch.chdir(tmp_path)
    loop = loopdoc.loop(load("many.py").learner, loaded_from="many.py")
    ours = [cb for cb in loop.callbacks if cb.name.startswith("CB")]
    assert len(ours) == 300
    assert [cb.order for cb in ours] == sorted(cb.order for cb in ours), "sorted by order"
    assert [int(cb.name[2:]) for cb in ours if cb.order == 3] == [i for i in range(300) if i % 7 == 3], "ties keep cbs order"
    lines = learner.read_text().splitlines()
    for cb in ours:
        assert lines[cb.source.line - 1] == f"class {cb.name}(Callback):", cb
    html = render(loop, "html")
    html5lib.HTMLParser(strict=True).parse(html)
    assert len(html) < 3_000_000


def test_class_lines_match_inspect(tmp_path):
    """``_class_source`` finds the line ``inspect.getsourcelines`` finds, parsing each file once."""
    import inspect

    from loopdoc.adapters.introspect import class_source as _class_source

    (tmp_path / "layout.py").write_text(
        "import functools\n\n"
        "class Outer:\n    class Inner:\n        pass\n\n"
        "def factory():\n    class Local:\n        pass\n    return Local\n\n"
        "@functools.total_ordering\n\nclass Decorated:\n    def __lt__(self, other):\n        return False\n\n"
        "if True:\n    class Twice:\n        pass\nelse:\n    class Twice:\n        pass\n\n"
        "class Twice:  # the last one wins at run time; inspect (and loopdoc) report the first\n    pass\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        layout = importlib.import_module("layout")
        for cls in (layout.Outer, layout.Outer.Inner, layout.factory(), layout.Decorated, layout.Twice):
            assert _class_source(cls).line == inspect.getsourcelines(cls)[1], cls
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("layout", None)


def test_callbacks_defined_in_a_main_without_file(monkeypatch):
    """As in a notebook: ``__main__`` has no ``__file__``; the classes have no source, and the page renders."""
    from fastai.callback.core import Callback
    from fastai.test_utils import synth_learner

    main_module = types.ModuleType("__main__")
    monkeypatch.setitem(sys.modules, "__main__", main_module)
    exec("from fastai.callback.core import Callback\nclass InNotebook(Callback):\n    'Mine.'\n"
         "    def after_batch(self): pass\n", main_module.__dict__)
    in_notebook = main_module.InNotebook
    assert in_notebook.__module__ == "__main__"
    with contextlib.redirect_stdout(io.StringIO()):
        learn = synth_learner(n_trn=8, n_val=4, cbs=[in_notebook(), Callback(before_fit=lambda self: None)])
    loop = loopdoc.loop(learn)
    cb = by_id(loop)["InNotebook"]
    assert cb.source is None and cb.qualname == "__main__.InNotebook" and cb.doc == "Mine."
    html5lib.HTMLParser(strict=True).parse(render(loop, "html"))


def test_a_learner_that_changes_the_working_directory(tmp_path, monkeypatch):
    """``os.chdir`` in the learner file does not move loopdoc's outputs or the paths it shows."""
    from loopdoc.load import load

    (tmp_path / "data").mkdir()
    (tmp_path / "wanders.py").write_text(
        "import os\nfrom fastai.test_utils import synth_learner\nos.chdir('data')\n"
        "learn = synth_learner(n_trn=8, n_val=4)\n")
    monkeypatch.chdir(tmp_path)
    with contextlib.redirect_stdout(io.StringIO()):
        loaded = load("wanders.py")
    assert os.getcwd() == str(tmp_path)
    assert loaded.loaded_from == "wanders.py:learn"


# --- pickles (learn.export()) ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    """``learn.export()`` of a synthetic learner (its ``TensorDataset`` cannot ``new_empty``, so ``dls`` is kept as is)."""
    from fastai.test_utils import synth_learner

    folder = tmp_path_factory.mktemp("pickle")
    with contextlib.redirect_stdout(io.StringIO()):
        learn = synth_learner(n_trn=16, n_val=8)
    learn.path = folder
    learn.dls.new_empty = lambda: learn.dls
    learn.export("export.pkl")
    return folder / "export.pkl"


@pytest.mark.subprocess
def test_pickle_needs_trust(exported, tmp_path, capsys):
    out = tmp_path / "loop.html"
    assert main(["render", str(exported), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("Error: ") and "export.pkl" in err[0]
    assert "--trust-pickle" in err[0] and "runs any code" in err[0]
    assert not out.exists()


@pytest.mark.subprocess
def test_pickle_with_trust_is_the_same_loop(exported, tmp_path, capsys):
    from fastai.test_utils import synth_learner

    out = tmp_path / "loop.json"
    assert main(["render", str(exported), "-o", str(out), "--trust-pickle"]) == 0, capsys.readouterr().err
    assert capsys.readouterr().err == "", "fastai's warning about pickle is silenced: --trust-pickle decided"
    data = json.loads(out.read_text())
    assert data["learner"]["loaded_from"].endswith("export.pkl")
    with contextlib.redirect_stdout(io.StringIO()):
        fresh = loopdoc.loop(synth_learner(n_trn=16, n_val=8), loaded_from=data["learner"]["loaded_from"])
    assert Loop.from_dict(data) == fresh


@pytest.mark.subprocess
def test_pickle_with_a_class_that_is_gone(tmp_path, capsys):
    """A pickle naming a callback class from a module that no longer exists: one line, exit 4."""
    from fastai.test_utils import synth_learner

    (tmp_path / "gone_callbacks.py").write_text(
        "from fastai.callback.core import Callback\nclass Gone(Callback):\n    def after_batch(self): pass\n")
    sys.path.insert(0, str(tmp_path))
    try:
        gone = importlib.import_module("gone_callbacks")
        with contextlib.redirect_stdout(io.StringIO()):
            learn = synth_learner(n_trn=8, n_val=4, cbs=[gone.Gone()])
        learn.path = tmp_path
        learn.dls.new_empty = lambda: learn.dls
        learn.export("gone.pkl")
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("gone_callbacks", None)
    (tmp_path / "gone_callbacks.py").unlink()
    assert main(["show", str(tmp_path / "gone.pkl"), "--trust-pickle"]) == 4
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("Error: ") and "gone.pkl" in err[0] and "gone_callbacks" in err[0], err


# --- a noisy learner with a thread that never ends, in a real process ------------------------------------------------


@pytest.mark.subprocess
def test_noisy_learner_with_a_lingering_thread():  # imports fastai in a subprocess (~4 s)
    """Megabytes printed through ``print``, ``sys.__stdout__``, fd 1 and a child process all go to stderr; the
    JSON on stdout is clean; loopdoc exits (code 0) although the learner's non-daemon thread never ends."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    result = subprocess.run([sys.executable, "-m", "loopdoc", "render", "tests/fixtures/hostile/noisy.py", "-o", "-",
                             "--format", "json"], cwd=ROOT, env=env, capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads(result.stdout)
    assert data["learner"]["loaded_from"] == "tests/fixtures/hostile/noisy.py:learn"
    err = result.stderr.decode()
    for line in ("through sys.__stdout__", "through file descriptor 1", "from a child process", "built the learner"):
        assert line in err, line
    assert len(result.stderr) > 3_000_000


# --- unreadable learner files -----------------------------------------------------------------------------------------


def test_unreadable_learner_file(tmp_path, monkeypatch):
    """A learner file that cannot be read (simulated: root reads any file): one line naming it, exit 4."""
    import importlib.machinery

    from loopdoc.errors import LoadError
    from loopdoc.load import load

    learner = tmp_path / "secret.py"
    learner.write_text("learn = None\n")

    def denied(self, path):
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(importlib.machinery.SourceFileLoader, "get_data", denied)
    with pytest.raises(LoadError, match=r"secret\.py.*Permission denied") as info:
        load(str(learner))
    assert "\n" not in str(info.value)


@pytest.mark.subprocess
@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root can read any file")
def test_unreadable_learner_file_for_real(tmp_path, capsys):
    learner = tmp_path / "secret.py"
    learner.write_text("learn = None\n")
    learner.chmod(0)
    assert main(["render", str(learner), "-o", str(tmp_path / "x.html")]) == 4
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "secret.py" in err[0] and "ermission denied" in err[0]
