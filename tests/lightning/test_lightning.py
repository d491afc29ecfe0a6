"""The Lightning adapter through loopdoc's entry points: loading, --call, the default call, trace, and publishing.

Truth (the static model equals real runs) is ``test_lightning_truth.py`` and ``test_lightning_property.py``;
the goldens of the examples (the CLI's ``render`` in its own process) are ``test_golden.py``. Here: what
the user writes works and says the right thing. Real builds and CLI runs that import Lightning (~10 s of
CPU each) start at once in one module fixture; everything else runs in this process
(``resolve(..., isolated=False)``) or reads the golden models, which need no Lightning.
"""

from __future__ import annotations

import html
import json
import os
import shutil
import subprocess
import sys
import time
import types
from pathlib import Path

import lightning_compare as cmp
import pytest
from helpers import LIGHTNING_EXAMPLES, ROOT, walk_phases

import loopdoc
from loopdoc.errors import CallError, LearnerNotFound, UsageError
from loopdoc.model import load_json
from loopdoc.model.loop import Phase
from loopdoc.render import render
from loopdoc.resolve import resolve, resolve_trace

pytestmark = [pytest.mark.lightning, pytest.mark.subprocess]
GOLDEN = ROOT / "tests" / "golden"
FIXTURES = "tests/fixtures/lightning"


@pytest.fixture(autouse=True)
def at_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def loop_of(spec: str, call: str | None = None):
    return resolve(spec, call, isolated=False).document


def phases(loop) -> list[str]:
    return ["/".join(path) for path, _ in walk_phases(loop)]


# ---------------------------------------------------------------- recognising and loading


def test_nothing_imports_lightning_or_torch_before_the_users_code():
    code = (
        "import sys, loopdoc, loopdoc.cli, loopdoc.resolve, loopdoc.adapters.lightning\n"
        "from loopdoc.adapters.lightning import extract, recorder, calls, outputs, creation, wording, lib\n"
        "from loopdoc.adapters.registry import adapters, adapter_for\n"
        "assert [a.name for a in adapters()][:2] == ['fastai', 'lightning'], adapters()\n"
        "assert adapter_for(object()) is None\n"
        "from loopdoc.model import load_json\n"
        "from loopdoc.render import render\n"
        "render(load_json('tests/golden/lightning_datamodule.json'), 'html')\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'pytorch_lightning', 'lightning', 'lightning_fabric'))\n"
        "assert not bad, bad\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr


def test_is_trainer_knows_both_packages_and_nothing_else():
    import lightning.pytorch as L
    import pytorch_lightning as pl

    from loopdoc.adapters.lightning import ADAPTER

    kw = dict(logger=False, enable_progress_bar=False, enable_checkpointing=False, enable_model_summary=False)
    assert ADAPTER.is_trainer(pl.Trainer(**kw)) and ADAPTER.is_trainer(L.Trainer(**kw))
    assert not ADAPTER.is_trainer(pl.LightningModule()) and not ADAPTER.is_trainer(pl.Trainer)


def test_the_default_call_is_fit_with_the_modules_objects():
    loops = {spec: loop_of(spec) for spec in LIGHTNING_EXAMPLES}
    assert {Path(s).stem: lp.call for s, lp in loops.items()} == {
        "lightning_callbacks": "fit(model, train_dl, val_dl)",
        "lightning_datamodule": "fit(model, datamodule=dm)",
        "lightning_defaults": "fit(model, train_dl, val_dl)",
    }
    assert all(lp.framework.name == "lightning" and lp.phases[0].name == "fit" for lp in loops.values())
    assert loops["examples/lightning_callbacks.py"].versions["lightning.pytorch"] == loops["examples/lightning_callbacks.py"].framework.version
    assert "pytorch_lightning" in loops["examples/lightning_defaults.py"].versions


@pytest.mark.parametrize(("fixture", "words"), [
    ("two_modules.py", ["2 LightningModules (small, large)", "found LightningModules: small, large; DataLoaders: train_dl",
                        "--call 'fit(small, ...)'"]),
    ("three_loaders.py", ["3 DataLoaders (a, b, c)", "cannot tell which one trains",
                          "--call 'fit(model, train_dataloaders=a, val_dataloaders=b)'"]),
    ("no_module.py", ["defines no LightningModule at module level", "--call 'fit(MyModule(), datamodule=dm)'"]),
])
def test_ambiguous_objects_say_what_was_found_and_what_to_write(fixture, words):
    with pytest.raises(LearnerNotFound) as err:
        loop_of(f"{FIXTURES}/{fixture}")
    for w in words:
        assert w in str(err.value)
    assert str(err.value).startswith(f"{FIXTURES}/{fixture}: ")


CALLS = {
    "fit(model, train_dl, val_dl)": ["fit", "fit/sanity_check", "fit/sanity_check/validation", "fit/sanity_check/validation/batch",
                                     "fit/train", "fit/train/epoch", "fit/train/epoch/batch", "fit/train/epoch/batch/step",
                                     "fit/train/epoch/batch/step/closure", "fit/train/epoch/batch/step/closure/zero_grad",
                                     "fit/train/epoch/batch/validation", "fit/train/epoch/batch/validation/batch",
                                     "fit/train/epoch/checkpoint"],
    "trainer.fit(model, train_dataloaders=train_dl)": ["fit", "fit/train", "fit/train/epoch", "fit/train/epoch/batch",
                                                       "fit/train/epoch/batch/step", "fit/train/epoch/batch/step/closure",
                                                       "fit/train/epoch/batch/step/closure/zero_grad", "fit/train/epoch/checkpoint"],
    "validate(model, val_dl)": ["validate", "validate/validation", "validate/validation/batch"],
    "test(model, dataloaders=test_dl)": ["test", "test/testing", "test/testing/batch"],
    "predict(model, test_dl)": ["predict", "predict/prediction", "predict/prediction/batch"],
}


@pytest.mark.parametrize("call", CALLS)
def test_call_names_the_trainer_method_and_objects_of_the_module(call):
    loop = loop_of(f"{FIXTURES}/all_calls.py", call)
    assert phases(loop) == CALLS[call]
    events = {ev.name for _, ev in loop.iter_events()}
    if call.startswith("validate"):
        assert "configure_optimizers" not in events and "on_fit_start" not in events and "on_validation_end" in events
    if call.startswith("predict"):
        assert {"predict_step", "on_predict_batch_end"} <= events and not any(e.startswith("on_validation") for e in events)


@pytest.mark.parametrize(("call", "words"), [
    ("fit_one_cycle(model)", "'fit_one_cycle' does not run a loop; use one of fit, validate, test, predict"),
    ("fit(model, datamodule=train_dl, ckpt_path='x.ckpt')", "ckpt_path is not modelled"),
    ("fit(1)", "the model is 1, not a LightningModule"),
    ("fit(model, nonsense=1)", "got an unexpected keyword argument 'nonsense'"),
    ("fit(missing)", "cannot evaluate 'missing': NameError"),
    ("test(model)", "no test data"),
])
def test_a_bad_call_is_one_call_error(call, words):
    with pytest.raises(CallError, match=None) as err:
        loop_of(f"{FIXTURES}/all_calls.py", call)
    assert str(err.value).startswith(f"{FIXTURES}/all_calls.py: ") and words in str(err.value)


def test_attr_may_name_a_function_that_builds_the_trainer():
    loop = loop_of(f"{FIXTURES}/factory.py:make_trainer")
    assert loop.learner.loaded_from == f"{FIXTURES}/factory.py:make_trainer"
    assert loop.call == "fit(model, train_dl)" and "fit/sanity_check" not in phases(loop)


def test_loading_changes_nothing_and_writes_nothing(tmp_path):
    """Modelling every call of the DataModule example leaves the Trainer, module, DataModule and callbacks as they were."""
    from loopdoc.load import load

    loaded = load("examples/lightning_datamodule.py")
    t, ns = loaded.trainer, loaded.namespace
    before, files = cmp.snapshot(t, ns["model"], ns["dm"]), cmp.listing(str(ROOT))
    for call in (None, "fit(model, datamodule=dm)", "validate(model, datamodule=dm)"):
        loaded.adapter.loop(t, loaded_from=loaded.loaded_from, call=call, namespace=ns, observation=loaded.observation)
    assert cmp.same_snapshot(before, cmp.snapshot(t, ns["model"], ns["dm"])) == []
    assert cmp.listing(str(ROOT)) == files


def test_notebook_display_of_a_live_trainer(monkeypatch):
    from loopdoc.load import load

    loaded = load("examples/lightning_callbacks.py")
    notebook = types.ModuleType("__main__")
    notebook.__dict__.update(loaded.namespace)
    monkeypatch.setitem(sys.modules, "__main__", notebook)  # a notebook's names are __main__'s
    loop = loopdoc.loop(loaded.trainer)
    assert loop.call == "fit(model, train_dl, val_dl)" and loop.learner.loaded_from == "<learner>"
    html, md = loop._repr_html_(), loop._repr_markdown_()
    assert "on_train_epoch_end" in html and "GradNormLogger" in html and "<html" not in html
    assert "on_before_optimizer_step" in md and "EarlyStopping" in md
    with pytest.raises(UsageError, match="belong to the Trainer"):
        loopdoc.loop(loaded.trainer, namespace=loaded.namespace, cbs=[object()])


@pytest.mark.parametrize("fmt", ["html", "md", "txt", "json"])
def test_every_format_renders_a_live_model(fmt):
    loop = loop_of("examples/lightning_datamodule.py", "validate(model, datamodule=dm)")
    text = render(loop, fmt)
    assert "on_validation_batch_end" in text and "RandomData" in text
    if fmt == "json":
        assert loopdoc.Loop.from_dict(json.loads(text)) == loop


def test_the_model_says_what_lightning_does():
    cbs = load_json(str(GOLDEN / "lightning_callbacks.json"))
    events = dict(((path, ev.name), ev) for path, ev in cbs.iter_events())
    epoch_end = events[(("fit", "train", "epoch"), "on_train_epoch_end")]
    assert [h.callback for h in epoch_end.handlers] == ["EpochTimer", "RichProgressBar", "Regressor", "EarlyStopping", "ModelCheckpoint"]
    lam = events[(("fit", "train", "epoch", "batch"), "on_train_batch_start")].handlers[0]
    assert (lam.callback, lam.via, lam.defined_by) == ("LambdaCallback", "instance", None)
    after = events[(("fit", "train", "epoch", "batch", "step", "closure"), "on_after_backward")].handlers[0]
    assert (after.function, after.defined_by) == ("GradientWatcher.on_after_backward", "lightning_callbacks.GradientWatcher")
    assert not any(ev.name == "on_epoch_end" for _, ev in cbs.iter_events())  # LegacyHooks' 1.x hook
    flow = cbs.flows[0]
    assert flow.flag == "trainer.should_stop" and (flow.set_by[0].callback, flow.set_by[0].event) == ("EarlyStopping", "on_train_epoch_end")
    dm = load_json(str(GOLDEN / "lightning_datamodule.json"))
    events = dict(((path, ev.name), ev) for path, ev in dm.iter_events())
    batch = ("fit", "train", "epoch", "batch")
    assert [h.callback for h in events[(batch, "on_before_batch_transfer")].handlers] == ["RandomData"]
    assert [h.callback for h in events[(batch, "on_after_batch_transfer")].handlers] == ["Regressor"]
    assert events[(batch + ("lr_schedulers",), "lr_scheduler_step")].handlers == ()
    train = next(p for p in dm.phases[0].children if isinstance(p, Phase) and p.name == "train")
    epoch = next(p for p in train.children if isinstance(p, Phase))
    steps = {(s.name, s.code) for p in epoch.children if isinstance(p, Phase) for s in _steps(p)}
    assert ("lr_scheduler_step", "scheduler.step()") in steps and ("backward", "loss.backward()") in steps
    assert ("optimizer_zero_grad", "optimizer.zero_grad()") not in steps  # the module defines it


def _steps(phase: Phase):
    for c in phase.children:
        if isinstance(c, Phase):
            yield from _steps(c)
        elif c.kind == "step":
            yield c


# ---------------------------------------------------------------- trace


@pytest.mark.parametrize("spec", LIGHTNING_EXAMPLES)
def test_trace_runs_the_call_and_agrees_with_the_model(spec, tmp_path):
    from loopdoc.load import load

    files = cmp.listing(str(ROOT))
    trace = resolve_trace(spec, batches=3, isolated=False).document
    assert trace.differences == (), trace.differences
    assert cmp.listing(str(ROOT)) == files
    assert trace.call == trace.loop.call and trace.batches == 3 and trace.batch_s > 0
    seen = {(e.path, e.event): e for e in trace.events}
    epochs = seen[(("fit", "train", "epoch"), "on_train_epoch_start")].fired
    assert 1 <= epochs <= 3  # capped at 3 (EarlyStopping may stop sooner)
    assert seen[(("fit", "train", "epoch", "batch"), "on_train_batch_start")].fired == 3 * epochs  # 3 batches per epoch
    step = seen[(("fit", "train", "epoch", "batch", "step", "closure"), "training_step")]
    assert [h.callback for h in step.handlers] == ["Regressor"] and step.handlers[0].calls == step.fired
    for fmt in ("html", "md", "txt"):
        assert "on_train_batch_start" in render(trace, fmt, show_differences=True)
    # the Trainer is as it was: limits, epochs, folders, callbacks
    loaded = load(spec)
    t = loaded.trainer
    before = (t.limit_train_batches, t.fit_loop.max_epochs, t._default_root_dir, [type(c) for c in t.callbacks])
    loaded.adapter.trace(t, trace.loop, None, loaded.namespace, 1)
    assert (t.limit_train_batches, t.fit_loop.max_epochs, t._default_root_dir, [type(c) for c in t.callbacks]) == before
    assert cmp.listing(str(ROOT)) == files


def test_trace_refuses_what_it_cannot_keep_in_a_temporary_folder(tmp_path):
    import pytorch_lightning as pl
    from pytorch_lightning.loggers import Logger

    from loopdoc.adapters.lightning import ADAPTER

    class Remote(Logger):
        name, version = "remote", 0

        def log_metrics(self, metrics, step=None):
            pass

        def log_hyperparams(self, params, *args, **kwargs):
            pass

    from loopdoc.load import load

    loaded = load(f"{FIXTURES}/all_calls.py")
    ns = loaded.namespace
    t = pl.Trainer(logger=Remote(), enable_progress_bar=False, default_root_dir=str(tmp_path))
    static = ADAPTER.loop(t, loaded_from="x", call="fit(model, train_dl)", namespace=ns)
    with pytest.raises(UsageError, match="logger Remote would write outside a temporary folder"):
        ADAPTER.trace(t, static, "fit(model, train_dl)", ns, 2)
    t = pl.Trainer(logger=False, enable_progress_bar=False, default_root_dir=str(tmp_path), val_check_interval=3)
    static = ADAPTER.loop(t, loaded_from="x", call="fit(model, train_dl, val_dl)", namespace=ns)
    with pytest.raises(UsageError, match="pass --batches 3 or more"):
        ADAPTER.trace(t, static, "fit(model, train_dl, val_dl)", ns, 2)
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------- the CLI, diff, card, mkdocs and Sphinx


MKDOCS = """site_name: lightning site
docs_dir: docs
plugins:
  - loopdoc:
      working_dir: {root}
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The runs that need their own process, started at once: a trace from a user's folder, a mkdocs site and a
    Sphinx site of Lightning examples, a model card."""
    tmp = tmp_path_factory.mktemp("lightning-runs")
    user = tmp / "user"
    user.mkdir()
    shutil.copy(ROOT / "examples" / "lightning_datamodule.py", user)
    site = tmp / "mk"
    (site / "docs").mkdir(parents=True)
    (site / "mkdocs.yml").write_text(MKDOCS.format(root=ROOT), encoding="utf-8")
    (site / "docs" / "index.md").write_text("# Lightning\n\n::: loopdoc examples/lightning_datamodule.py:trainer\n\n"
                                            "## Validate\n\n::: loopdoc examples/lightning_datamodule.py:trainer\n"
                                            "    call: validate(model, datamodule=dm)\n", encoding="utf-8")
    sphinx = tmp / "sphinx"
    sphinx.mkdir()
    (sphinx / "conf.py").write_text(f"project = 'lightning'\nextensions = ['loopdoc.sphinx']\nloopdoc_working_dir = {str(ROOT)!r}\n")
    (sphinx / "index.rst").write_text("Home\n====\n\n.. loopdoc:: tests/golden/lightning_callbacks.json\n", encoding="utf-8")
    card = tmp / "card"
    card.mkdir()
    (card / "README.md").write_text("# Model\n\n## Training procedure\n\nText.\n", encoding="utf-8")
    py = sys.executable
    commands = {
        "trace": ([py, "-m", "loopdoc", "trace", "lightning_datamodule.py", "--batches", "3", "--diff-static", "-o", "trace.json"], user),
        "mkdocs": ([py, "-m", "mkdocs", "build", "--site-dir", str(site / "site")], site),
        "sphinx": ([py, "-m", "sphinx", "-b", "html", ".", "_build"], sphinx),
        "card": ([py, "-m", "loopdoc", "card", "tests/golden/lightning_datamodule.json", str(card / "README.md")], ROOT),
    }
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "NO_COLOR": "1"}
    started = {name: subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
               for name, (cmd, cwd) in commands.items()}
    out = {}
    t0 = time.monotonic()
    for name, proc in started.items():
        text, _ = proc.communicate(timeout=max(60, 600 - (time.monotonic() - t0)))
        out[name] = (proc.returncode, text)
    return {"out": out, "user": user, "site": site, "sphinx": sphinx, "card": card}


def test_cli_trace_writes_only_its_output_in_the_users_folder(runs):
    code, text = runs["out"]["trace"]
    assert code == 0, text
    assert sorted(os.listdir(runs["user"])) == ["lightning_datamodule.py", "trace.json"]
    data = json.loads((runs["user"] / "trace.json").read_text())
    assert data["kind"] == "trace" and data["call"] == "fit(model, datamodule=dm)" and data["differences"] == []


def test_mkdocs_site_of_a_lightning_example(runs):
    code, text = runs["out"]["mkdocs"]
    assert code == 0, text
    assert "ERROR" not in text and "WARNING" not in text, text
    page = (runs["site"] / "site" / "index.html").read_text(encoding="utf-8")
    assert "on_train_batch_end" in page and "BatchCounter" in page and "configure_callbacks()" in page
    assert 'id="loop2-phase-validate"' in page and "Trainer.validate" in page  # the second block: validate(...)


def test_sphinx_site_of_a_lightning_model(runs):
    code, text = runs["out"]["sphinx"]
    assert code == 0, text
    page = (runs["sphinx"] / "_build" / "index.html").read_text(encoding="utf-8")
    assert "GradNormLogger" in page and "on_before_optimizer_step" in page


def test_card_of_a_lightning_model(runs):
    code, text = runs["out"]["card"]
    assert code == 0, text
    readme = (runs["card"] / "README.md").read_text(encoding="utf-8")
    shown = html.unescape(readme)  # raw-HTML-safe Markdown writes `_` as a character reference inside <details>
    assert "<!-- loopdoc:start " in readme and "accumulate_grad_batches=2" in shown and readme.index("Text.") < readme.index("loopdoc:start")


def test_diff_of_two_lightning_loops():
    proc = subprocess.run([sys.executable, "-m", "loopdoc", "diff", "tests/golden/lightning_defaults.json",
                           "tests/golden/lightning_callbacks.json"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr
    for name in ("EarlyStopping", "GradNormLogger", "LambdaCallback"):
        assert name in proc.stdout
    same = subprocess.run([sys.executable, "-m", "loopdoc", "diff", "tests/golden/lightning_datamodule.json",
                           "tests/golden/lightning_datamodule.json"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert same.returncode == 0, same.stdout + same.stderr
