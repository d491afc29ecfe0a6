"""fastai's loop read into the model: the full event list, the values of the examples, the notebook patch, and
extraction and loading without side effects.

The examples' models are written by the real command line (the session's ``cli_models``);
the schema and the JSON round trip of saved models are in ``tests/model``.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys

import pytest
from helpers import FASTAI_EXAMPLES, ROOT, by_id, md_outline, md_tokens, parse_html, run_python

import loopdoc
from loopdoc.model import Loop
from loopdoc.render import render
from loopdoc.resolve import resolve

pytestmark = pytest.mark.fastai


def run_py(code: str) -> subprocess.CompletedProcess:
    return run_python(code)


@pytest.fixture(scope="module")
def models(cli_models) -> dict[str, dict]:
    """Each example's model as JSON, written by the real CLI in its own process."""
    return {spec: json.loads(cli_models[spec].read_text()) for spec in FASTAI_EXAMPLES}


@pytest.mark.subprocess
def test_loading_keeps_fastai_defaults_and_callbacks():
    # the learner gets exactly the callbacks it gets under plain `python synth.py`
    proc = run_py(
        "from loopdoc.load import load\n"
        "learn = load('examples/synth.py').learner\n"
        "from fastai.learner import defaults\n"
        "print([type(c).__name__ for c in learn.cbs], [c.__name__ for c in defaults.callbacks])"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "['TrainEvalCallback', 'Recorder', 'CastToTensor'] ['TrainEvalCallback', 'Recorder', 'CastToTensor']"


@pytest.mark.parametrize("spec", FASTAI_EXAMPLES)
def test_every_fastai_event_is_in_the_tree(models, spec):
    from fastai.callback.core import _events

    loop = Loop.from_dict(models[spec])
    names = {ev.name for _, ev in loop.iter_events()}
    assert names == set(_events)
    assert loop.framework.name == "fastai" and loop.versions["fastai"] == loop.framework.version


def test_synth_model_values(models):
    loop = Loop.from_dict(models["examples/synth.py"])
    events = {("/".join(p), e.name): e for p, e in loop.iter_events()}
    assert [cb.id for cb in loop.callbacks] == ["TrainEvalCallback", "CastToTensor", "Recorder"]
    assert [(cb.order, cb.flags) for cb in loop.callbacks] == [
        (-10, {"run": True, "run_train": True, "run_valid": False}),
        (9, {"run": True, "run_train": True, "run_valid": True}),
        (50, {"run": True, "run_train": True, "run_valid": True}),
    ]
    assert loop.learner.loaded_from == "examples/synth.py:learn"
    assert loop.learner.model == "fastai.test_utils.RegModel"
    assert loop.learner.opt_func == "partial(SGD, mom=0.9)"
    assert loop.filtered_events == ("before_batch", "after_pred", "after_loss", "before_backward", "after_cancel_backward",
                                    "after_backward", "before_step", "after_step", "after_cancel_batch", "after_batch")
    train_after = events["fit/epoch/train/batch", "after_batch"]
    valid_after = events["fit/epoch/validate/batch", "after_batch"]
    assert [h.callback for h in train_after.handlers] == ["TrainEvalCallback", "Recorder"]
    assert [h.callback for h in valid_after.handlers] == ["Recorder"]
    assert (train_after.filter, valid_after.filter) == ("run_train", "run_valid")
    assert events["fit/epoch/validate", "before_validate"].filter is None
    # the validation batch loop has no backward or step phase
    assert not any(k.startswith("fit/epoch/validate/batch/") for k, _ in events)
    h = train_after.handlers[0]
    assert (h.function, h.via, h.defined_by, h.doc) == (
        "TrainEvalCallback.after_batch", "method", "fastai.callback.core.TrainEvalCallback", "Update the iter counter (in training mode)")
    assert h.source.file == "fastai/callback/core.py" and h.source.line > 0
    cancel = events["fit/epoch/train/batch", "after_cancel_batch"].cancel
    assert (cancel.exception, cancel.next) == ("CancelBatchException", "after_batch")
    assert events["create", "after_create"].handlers[0].function == "TrainEvalCallback.after_create"


def test_inherited_and_instance_handlers(models):
    loop = Loop.from_dict(models["examples/custom_callbacks.py"])
    handlers = {(("/".join(p)), e.name, h.callback): h for p, e in loop.iter_events() for h in e.handlers}
    inherited = handlers["fit/epoch/train/batch", "after_batch", "LogTrainBatch"]
    assert (inherited.function, inherited.defined_by) == ("LogBatch.after_batch", "custom_callbacks.LogBatch")
    assert inherited.source.file == "examples/custom_callbacks.py"
    instance = handlers["fit/epoch/train/batch", "before_batch", "Callback"]
    assert (instance.function, instance.via, instance.defined_by) == ("scale_inputs", "instance", None)
    assert instance.doc.startswith("Scale the inputs by 1.0")
    dispatch = handlers["fit", "after_fit", "Tracer"]
    assert (dispatch.function, dispatch.via) == ("Tracer.__call__", "dispatch")
    assert not any("`Muted`" in n for n in loop.notes), "run=False is a finding (LD302), not a note"
    assert [f.code for f in loop.findings if f.callback == "Muted"] == ["LD302"]
    tracer = next(cb for cb in loop.callbacks if cb.id == "Tracer")
    assert tracer.receives_all and tracer.doc == "Overrides `__call__`, so it receives every event, whatever it defines."


def test_model_attribute_note():
    loop = resolve("tests/fixtures/learners/model_after_fit.py", isolated=False).document
    assert [n for n in loop.notes if "learn.model" in n and "`after_fit`" in n]


def test_extraction_leaves_the_learner_unchanged():
    from fastai.callback.core import Callback
    from fastai.test_utils import synth_learner

    class Extra(Callback):
        order = 0

        def after_batch(self):
            "extra"

    learn = synth_learner()
    cbs_before = list(learn.cbs)
    state_before = [copy.copy(vars(cb)) for cb in learn.cbs]
    attrs_before = dict(vars(learn))
    weights = {k: v.clone() for k, v in learn.model.state_dict().items()}
    loop = loopdoc.loop(learn, cbs=[Extra, Extra()])
    assert [cb.id for cb in loop.callbacks] == ["TrainEvalCallback", "Extra", "Extra-2", "CastToTensor", "Recorder"]
    create = next(e for p, e in loop.iter_events() if e.name == "after_create")
    assert [h.callback for h in create.handlers] == ["TrainEvalCallback"]  # fit-time callbacks never get after_create
    assert list(learn.cbs) == cbs_before and all(a is b for a, b in zip(learn.cbs, cbs_before, strict=True))
    assert [vars(cb) for cb in learn.cbs] == state_before
    assert vars(learn).keys() == attrs_before.keys() and all(vars(learn)[k] is v for k, v in attrs_before.items())
    assert learn.opt is None
    assert all((learn.model.state_dict()[k] == v).all() for k, v in weights.items())


def test_show_training_loop_is_corrected(capsys):
    from fastai.callback.core import Callback
    from fastai.test_utils import synth_learner

    import loopdoc.fastai  # noqa: F401

    class Boom(Callback):
        @property
        def run_train(self):
            raise RuntimeError("flag broke")

    learn = synth_learner()
    own = list(learn.cbs)
    learn.show_training_loop()
    text = capsys.readouterr().out
    for event in ("after_create", "after_backward", "after_cancel_backward", "after_cancel_step"):
        assert f"- {event} " in text
    valid_batch = text[text.index("    validate"):]
    assert "after_batch" in valid_batch and "TrainEvalCallback, Recorder" not in valid_batch.split("after_batch")[1].split("\n")[0]
    learn.show_training_loop(verbose=True, cbs=Boom)
    assert "Set the iter and epoch counters to 0" in capsys.readouterr().out
    with pytest.raises(TypeError):
        learn.show_training_loop(cbs=[42])
    assert list(learn.cbs) == own and learn.recorder is own[1]


def test_a_callback_added_after_the_learner_was_built_never_gets_after_create(capsys):
    """As in a notebook: ``import loopdoc.fastai``, build a learner, ``learn.add_cb``: fastai fired ``after_create``
    before the callback was there, so neither ``show_training_loop`` nor ``loopdoc.loop`` lists it there."""
    from fastai.callback.core import Callback
    from fastai.test_utils import synth_learner

    import loopdoc.fastai  # noqa: F401

    class Late(Callback):
        def after_create(self):
            "Never runs."

        def before_fit(self):
            "Runs."

    learn = synth_learner(n_trn=8, n_val=4)
    learn.add_cb(Late())
    loop = loopdoc.loop(learn)
    handlers = {e.name: [h.callback for h in e.handlers] for _, e in loop.iter_events() if e.name in ("after_create", "before_fit")}
    assert handlers == {"after_create": ["TrainEvalCallback"], "before_fit": ["TrainEvalCallback", "Late", "Recorder"]}
    learn.show_training_loop()
    assert render(loop, "txt").replace("Training loop of <learner>", "Training loop of learn") == capsys.readouterr().out


@pytest.mark.subprocess
def test_same_input_same_bytes(tmp_path):
    """Two fresh processes (different hash seeds, different memory addresses) give byte-identical outputs."""
    code = (
        "import sys, loopdoc\n"
        "loop = loopdoc.load_loop('examples/custom_callbacks.py')\n"
        "for fmt in ('html', 'md', 'json', 'txt'):\n"
        "    open(sys.argv[1] + '.' + fmt, 'w', encoding='utf-8').write(loopdoc.render(loop, fmt))\n"
    )
    outs = []
    for i, seed in enumerate(("1", "2")):
        proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / str(i))], cwd=ROOT, capture_output=True, text=True,
                              timeout=600, env={**os.environ, "PYTHONHASHSEED": seed})
        assert proc.returncode == 0, proc.stderr
        outs.append([(tmp_path / f"{i}.{fmt}").read_bytes() for fmt in ("html", "md", "json", "txt")])
    assert outs[0] == outs[1]
    assert b" at 0x" not in b"".join(outs[0])


@pytest.mark.subprocess
@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_real_example_renders():
    pytest.importorskip("fastai")
    from loopdoc import load_loop

    loop = load_loop(str(ROOT / "examples" / "custom_callbacks.py"))
    html = render(loop, "html")
    ids = by_id(parse_html(html))
    assert all("-".join(p + (e.name,)) in ids for p, e in loop.iter_events())
    assert all("cb-" + cb.id in ids for cb in loop.callbacks)
    outline = md_outline(md_tokens(render(loop, "md")))
    names = [name for _, name, _ in outline]
    assert names[:3] == ["Training loop of " + loop.learner.loaded_from, "create", "fit"]
    assert sum(kind == "event" for _, _, items in outline for kind, _, _ in items) == len(loop.iter_events())
