"""Property: for generated sets of callbacks and LightningModule hooks, the static model is what a real run executes.

Hypothesis generates callback classes overriding random hooks (some subclassing an earlier one and
inheriting its hooks, some a ``LambdaCallback`` with an instance attribute, some with a removed 1.x
hook name), their order in ``callbacks=``, an EarlyStopping (one that never stops, or one that stops
at its first check) and a ModelCheckpoint at random places (or the default one, or none), module
hooks overridden with ``super()`` calls, ``configure_callbacks``, ``accumulate_grad_batches``, the
sanity check on or off, ``val_check_interval``, manual optimisation, and either Lightning package.
Each Trainer is modelled (``extract.plan``) and its ``fit`` run under ``observe_lightning``; they must
agree hook by hook (``lightning_compare.compare``).
"""

from __future__ import annotations

import importlib
import logging
import os
import tempfile

import lightning_compare as cmp
import lightning_setups as setups
import observe_lightning as oracle
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loopdoc.adapters.lightning.extract import plan

pytestmark = pytest.mark.lightning

CALLBACK_HOOKS = ["setup", "teardown", "on_fit_start", "on_fit_end", "on_sanity_check_start", "on_sanity_check_end",
                  "on_train_start", "on_train_end", "on_train_epoch_start", "on_train_epoch_end", "on_train_batch_start",
                  "on_train_batch_end", "on_validation_start", "on_validation_end", "on_validation_epoch_start",
                  "on_validation_epoch_end", "on_validation_batch_start", "on_validation_batch_end", "on_before_zero_grad",
                  "on_before_backward", "on_after_backward", "on_before_optimizer_step", "on_save_checkpoint", "state_dict"]
MODULE_HOOKS = ["setup", "teardown", "prepare_data", "configure_model", "on_fit_start", "on_fit_end", "on_train_start", "on_train_end",
                "on_train_epoch_start", "on_train_epoch_end", "on_train_batch_start", "on_train_batch_end", "on_validation_start",
                "on_validation_end", "on_validation_epoch_start", "on_validation_epoch_end", "on_validation_batch_start",
                "on_validation_batch_end", "on_validation_model_eval", "on_validation_model_train", "on_validation_model_zero_grad",
                "on_before_zero_grad", "on_before_backward", "on_after_backward", "on_before_optimizer_step",
                "on_before_batch_transfer", "transfer_batch_to_device", "on_after_batch_transfer", "backward",
                "on_save_checkpoint", "optimizer_step", "optimizer_zero_grad", "configure_gradient_clipping"]
AUTOMATIC_ONLY = {"optimizer_step", "optimizer_zero_grad", "configure_gradient_clipping"}

callback_spec = st.fixed_dictionaries({
    "kind": st.sampled_from(["class", "class", "subclass", "lambda"]),
    "hooks": st.lists(st.sampled_from(CALLBACK_HOOKS), max_size=5, unique=True),
    "legacy": st.booleans(),
})

setup_spec = st.fixed_dictionaries({
    "package": st.sampled_from(["pytorch_lightning", "lightning.pytorch"]),
    "callbacks": st.lists(callback_spec, max_size=4),
    "early_stopping": st.sampled_from([None, "patient", "stops"]),
    "es_at": st.integers(0, 4),
    "checkpoint": st.sampled_from([None, "default", "plain", "monitor", "last"]),
    "ckpt_at": st.integers(0, 4),
    "module_hooks": st.lists(st.sampled_from(MODULE_HOOKS), max_size=8, unique=True),
    "configure_callbacks": st.sampled_from([None, "new", "early_stopping"]),
    "accumulate": st.sampled_from([1, 1, 2, 3]),
    "sanity": st.sampled_from([0, 1]),
    "val_check_interval": st.sampled_from([1.0, 1.0, 0.5]),
    "manual": st.booleans(),
    "epochs": st.sampled_from([1, 2]),
    "train_batches": st.sampled_from([2, 3, 4]),
})


def _method(cls_name: str, hook: str, base: type):
    """An override of ``hook`` that calls ``base``'s (so Lightning keeps working), named ``Cls.hook``."""

    def method(self, *args, **kwargs):
        return getattr(base, hook)(self, *args, **kwargs)

    method.__name__ = hook
    method.__qualname__ = f"{cls_name}.{hook}"
    return method


def build(spec: dict, tmp: str):
    P = importlib.import_module(spec["package"])
    C = setups.classes(P)
    classes: list[type] = []
    callbacks = []
    for i, cb in enumerate(spec["callbacks"]):
        name = f"CB{i}"
        if cb["kind"] == "lambda":
            hook = cb["hooks"][0] if cb["hooks"] else "on_train_epoch_start"
            if hook == "state_dict":
                hook = "on_fit_end"

            def noop(*args, **kwargs):
                return None

            noop.__qualname__ = f"lambda_{i}"
            callbacks.append(P.callbacks.LambdaCallback(**{hook: noop}))
            continue
        base = classes[-1] if cb["kind"] == "subclass" and classes else P.Callback
        methods = {h: _method(name, h, base) for h in cb["hooks"]}
        if cb["legacy"]:
            methods["on_epoch_end"] = lambda self, trainer, pl_module: (_ for _ in ()).throw(AssertionError("removed hook called"))
        cls = type(name, (base,), {**methods, "__qualname__": name})
        classes.append(cls)
        callbacks.append(cls())
    if spec["early_stopping"]:
        es = P.callbacks.EarlyStopping(monitor="v", patience=1000) if spec["early_stopping"] == "patient" else \
            P.callbacks.EarlyStopping(monitor="v", stopping_threshold=1e9)
        callbacks.insert(min(spec["es_at"], len(callbacks)), es)
    ckpt = spec["checkpoint"]
    if ckpt in ("plain", "monitor", "last"):
        mc = P.callbacks.ModelCheckpoint(dirpath=os.path.join(tmp, "ckpt"), monitor="v" if ckpt == "monitor" else None,
                                         save_top_k=-1 if ckpt == "monitor" else 1, save_last=ckpt == "last")
        callbacks.insert(min(spec["ckpt_at"], len(callbacks)), mc)
    manual = spec["manual"]
    hooks = [h for h in spec["module_hooks"] if not (manual and h in AUTOMATIC_ONLY)]
    module_base = C["Manual"] if manual else C["Plain"]
    methods = {h: _method("GenModule", h, module_base) for h in hooks}
    if spec["configure_callbacks"]:
        made = classes[:1]
        if spec["configure_callbacks"] == "early_stopping":
            methods["configure_callbacks"] = lambda self: [P.callbacks.EarlyStopping(monitor="v", patience=1000), *[k() for k in made]]
        else:
            methods["configure_callbacks"] = lambda self: [k() for k in made] or [C["Counter"]()]
        methods["configure_callbacks"].__qualname__ = "GenModule.configure_callbacks"
    module_cls = type("GenModule", (module_base,), {**methods, "__qualname__": "GenModule"})
    trainer = P.Trainer(default_root_dir=tmp, accelerator="cpu", devices=1, max_epochs=spec["epochs"],
                        limit_train_batches=spec["train_batches"], limit_val_batches=1, num_sanity_val_steps=spec["sanity"],
                        accumulate_grad_batches=1 if manual else spec["accumulate"], val_check_interval=spec["val_check_interval"],
                        logger=False, enable_progress_bar=False, enable_model_summary=False, callbacks=callbacks,
                        enable_checkpointing=ckpt is not None)
    return trainer, module_cls()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(setup_spec)
def test_static_model_equals_a_real_run(spec):
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        trainer, model = build(spec, tmp)
        train, val = setups.data(), setups.data(8)
        loop, meta = plan(trainer, loaded_from="gen.py:trainer", call="fit(model, train, val)",
                          namespace={"model": model, "train": train, "val": val})
        with oracle.recording(trainer) as rec:
            trainer.fit(model, train, val)
        problems = cmp.compare(loop, meta, rec) + oracle.profiler_mismatches(rec, trainer)
        assert [type(c).__name__ for c in trainer.callbacks] == [c.name for c in loop.callbacks if c.kind == "callback"]
    assert problems == [], "\n".join(problems)
