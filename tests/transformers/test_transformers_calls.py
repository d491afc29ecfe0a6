"""``--call`` for a Hugging Face ``Trainer``: arguments bound to the trainer's own method, every bad call one ``CallError``.

Each refusal of arguments that do not bind is checked against the real call on the same trainer: Python raises
``TypeError`` before the method runs. A subclass's own signature is the one bound. Everything runs in this process
on the tiny trainers of ``hf_scenarios`` (``output_dir`` in a temporary folder, the working directory empty).
"""

from __future__ import annotations

import os

import pytest

pytest.importorskip("transformers")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import hf_scenarios as sc  # noqa: E402

import loopdoc  # noqa: E402
from loopdoc.adapters.transformers.calls import parse_call  # noqa: E402
from loopdoc.errors import CallError  # noqa: E402

pytestmark = pytest.mark.transformers


NAMESPACE = {"ds": sc.DictDataset(3)}

REFUSED = {
    "train(None, None, None, 4)": "Trainer.train() too many positional arguments; it takes (resume_from_checkpoint=None, "
                                  "trial=None, ignore_keys_for_eval=None)",
    "train(bogus=1)": "Trainer.train() got an unexpected keyword argument 'bogus'",
    "evaluate(ds, eval_dataset=ds)": "Trainer.evaluate() multiple values for argument 'eval_dataset'",
    "predict()": "Trainer.predict() missing a required argument: 'test_dataset'",
    "predict(ds, metric_key_prefx='x')": "Trainer.predict() got an unexpected keyword argument 'metric_key_prefx'",
}


@pytest.mark.parametrize("call", REFUSED)
def test_arguments_that_do_not_bind_are_refused_as_the_real_call_refuses_them(call, out):
    trainer = sc.make_trainer(out, save_strategy="no")
    with pytest.raises(CallError) as info:
        loopdoc.loop(trainer, call=call, namespace=NAMESPACE)
    message = str(info.value)
    assert message.startswith(f"--call {call!r}: ") and REFUSED[call] in message, message
    assert "\n" not in message and info.value.exit_code == 2
    with pytest.raises(TypeError):
        eval("trainer." + call, {**NAMESPACE, "trainer": trainer})  # noqa: S307 - the test's own call


@pytest.mark.parametrize("call", ["evaluate(ds, None, 'val')", "predict(ds, metric_key_prefix='p')", "train(None)",
                                  "trainer.train(ignore_keys_for_eval=['x'])"])
def test_arguments_that_bind_are_documented(call, out):
    trainer = sc.make_trainer(out, save_strategy="no")
    loop = loopdoc.loop(trainer, call=call, namespace={**NAMESPACE, "trainer": trainer})
    assert loop.call == call


def test_a_subclass_signature_is_the_one_bound(out):
    """A Trainer subclass that renames evaluate's parameter: the name it has is accepted, transformers' is refused."""

    class Renamed(type(sc.make_trainer(out, save_strategy="no"))):
        def evaluate(self, dataset=None, ignore_keys=None, metric_key_prefix="eval"):
            return super().evaluate(dataset, ignore_keys, metric_key_prefix)

    trainer = sc.make_trainer(out, save_strategy="no")
    trainer.__class__ = Renamed
    with pytest.raises(CallError, match=r"Renamed\.evaluate\(\) got an unexpected keyword argument 'eval_dataset'"):
        parse_call("evaluate(eval_dataset=ds)", NAMESPACE, trainer)
    with pytest.raises(TypeError):
        trainer.evaluate(eval_dataset=NAMESPACE["ds"])
    with pytest.raises(CallError, match="dataset is not modelled"):  # the subclass's own parameter: loopdoc cannot tell
        parse_call("evaluate(dataset=ds)", NAMESPACE, trainer)
    assert parse_call("evaluate(eval_dataset=ds)", NAMESPACE).kwargs == {"eval_dataset": NAMESPACE["ds"]}  # transformers'


@pytest.mark.parametrize(("call", "words"), [
    ("train(", "not a Python call"),
    ("evaluate(nope)", "cannot evaluate 'nope': NameError"),
    ("fit(1)", "'fit' does not run a Trainer loop"),
    ("train(resume_from_checkpoint=True)", "resume_from_checkpoint is not supported"),
    ("predict(None)", "predict needs a dataset"),
])
def test_every_bad_call_is_a_call_error(call, words, out):
    trainer = sc.make_trainer(out, save_strategy="no")
    with pytest.raises(CallError) as info:
        loopdoc.loop(trainer, call=call, namespace=NAMESPACE)
    assert str(info.value).startswith(f"--call {call!r}: ") and words in str(info.value), str(info.value)


def test_a_repeated_keyword_is_refused_as_python_refuses_it(out):
    call = "evaluate(eval_dataset=ds, eval_dataset=ds)"
    trainer = sc.make_trainer(out, save_strategy="no")
    with pytest.raises(CallError) as info:
        loopdoc.loop(trainer, call=call, namespace=NAMESPACE)
    assert str(info.value) == f"--call {call!r}: not a Python call: keyword argument repeated: eval_dataset"
    with pytest.raises(SyntaxError, match="keyword argument repeated: eval_dataset"):
        compile("trainer." + call, "<test>", "eval")


def test_a_method_of_another_object_is_refused_and_never_run(out):
    """``trainer.model.train()`` is ``nn.Module.train`` (training mode on), not ``Trainer.train``: refused by ``loop``
    and by ``trace`` (which would have run the training loop), while the real call trains nothing."""
    from loopdoc.adapters.transformers.recorder import run_trace

    call = "trainer.model.train()"
    trainer = sc.make_trainer(out, save_strategy="no")
    namespace = {**NAMESPACE, "trainer": trainer}
    expected = f"--call {call!r}: 'trainer.model' is not the trainer (Trainer): write 'train()' or 'trainer.train()'"
    for make in (lambda: loopdoc.loop(trainer, call=call, namespace=namespace),
                 lambda: run_trace(trainer, call, namespace, batches=1)):
        with pytest.raises(CallError) as info:
            make()
        assert str(info.value) == expected and info.value.exit_code == 2
    assert trainer.state.global_step == 0
    assert eval(call, dict(namespace)) is trainer.model and trainer.state.global_step == 0  # noqa: S307 - the real call
    assert loopdoc.loop(trainer, call="trainer.train()", namespace=namespace).call == "trainer.train()"
