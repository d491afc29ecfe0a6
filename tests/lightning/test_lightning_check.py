"""``loopdoc check``'s Lightning rules: the exact findings of ``tests/fixtures/check/lightning_setups.py`` (one of each
kind), each claim proved by a real capped run (CPU, ``limit_train_batches=2``, ``max_epochs=1``, ``logger=False``, no
checkpoints, ``default_root_dir`` under ``tmp_path``), and the findings in the rendered outputs.

The fixture loads in this process (``loopdoc.load.load`` + ``loopdoc.worker.perform``, the worker's own code); each of
its classes then runs in a Trainer of its own, and the fixture's ``CALLS`` list says which of its methods ran.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import types
import warnings

import pytest
from helpers import ROOT

from loopdoc.model.check import Checked, CheckReport
from loopdoc.model.loop import Finding
from loopdoc.render import render
from loopdoc.rendering.check import render_check

pytestmark = pytest.mark.lightning

SPEC = "tests/fixtures/check/lightning_setups.py"
F = SPEC

MASKED = ("; then Lightning calls `on_exception` on `NotACallback`, which has none, so the {} reaches you as the context "
          "of an AttributeError (LD201)")
EXPECTED = [
    f"{F}:42:5: LD101 `Legacy.on_epoch_end` is never called: Lightning 2.6 has no event `on_epoch_end` (did you mean "
    "`on_train_epoch_end`? Lightning 1.8.0 removed `on_epoch_end` (#14834); or `on_validation_epoch_end`, `on_test_epoch_end`)",
    f"{F}:45:5: LD101 `Legacy.on_init_start` is never called: Lightning 2.6 has no event `on_init_start` (Lightning 1.8.0 "
    "removed it; nothing replaces it: there is no hook during Trainer.__init__ (#14867))",
    f"{F}:48:5: LD102 `Legacy.on_train_epoch_ends` is never called: Lightning 2.6 has no event `on_train_epoch_ends` "
    "(did you mean `on_train_epoch_end`?)",
    f"{F}:51:5: LD103 `Legacy.on_after_everything` is never called: Lightning 2.6 has no event `on_after_everything` and "
    "none is near; only a training loop changed to fire `on_after_everything` would call it",
    f"{F}:61:5: LD105 `Misplaced.training_step` is never called: `training_step` is a hook of the LightningModule (or "
    "DataModule), and Lightning 2.6 calls a Callback only at the hooks of `Callback`",
    f"{F}:64:5: LD105 `Misplaced.configure_optimizers` is never called: `configure_optimizers` is a hook of the "
    "LightningModule (or DataModule), and Lightning 2.6 calls a Callback only at the hooks of `Callback`",
    f"{F}:71:5: LD107 `OldSignature.on_train_epoch_end` needs `outputs`, which Lightning does not pass: Lightning 2.6 calls "
    "`on_train_epoch_end(trainer, pl_module)` on a Callback, so `fit` raises TypeError the first time it reaches "
    "`on_train_epoch_end` (Lightning 2.0 removed its `outputs` argument)" + MASKED.format("TypeError"),
    f"{F}:75:1: LD201 `NotACallback` is not a Lightning `Callback`: `Trainer(callbacks=...)` accepts it, and Lightning calls "
    "`getattr(callback, hook)(trainer, pl_module, ...)` on every object of `trainer.callbacks` at every hook, so `fit` "
    "raises AttributeError at `setup`, the first Callback hook of the call: `NotACallback` has no `setup`, and the same at "
    "`on_exception`, which Lightning calls on it when the call fails",
    f"{F}:85:5: LD106 `fit` raises NotImplementedError before any `setup` hook runs: `Checked` defines `training_epoch_end`, "
    "which Lightning 2.0 removed, and Lightning 2.6's `trainer/configuration_validator.py` rejects a LightningModule that "
    "has it (use `on_train_epoch_end` and keep the outputs yourself, #16520)" + MASKED.format("NotImplementedError"),
    f"{F}:88:5: LD105 `Checked.on_sanity_check_start` is never called: `on_sanity_check_start` is a Callback hook, and "
    "Lightning 2.6 does not call it on the LightningModule",
    f"{F}:91:5: LD107 `Checked.on_train_start` needs `trainer`, `pl_module`, which Lightning does not pass: Lightning 2.6 "
    "calls `on_train_start()` on a LightningModule, so `fit` raises TypeError the first time it reaches `on_train_start` "
    "(`(trainer, pl_module)` are a Callback's arguments)" + MASKED.format("TypeError"),
]


@contextlib.contextmanager
def quiet_in_root():
    """From the repository root (paths in findings relative to it), Lightning's output swallowed."""
    cwd = os.getcwd()
    os.chdir(ROOT)
    level = logging.getLogger("pytorch_lightning").level
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.getLogger("pytorch_lightning").setLevel(level)
        os.chdir(cwd)


@pytest.fixture(scope="module")
def setups() -> types.SimpleNamespace:
    """The fixture loaded and modelled as the worker does: its module namespace and the loop with its findings."""
    from loopdoc.load import load
    from loopdoc.worker import perform

    with quiet_in_root():
        loaded = load(SPEC)
        loop = perform(loaded, {"what": "loop", "call": None})
    return types.SimpleNamespace(ns=loaded.namespace, loop=loop, trainer=loaded.trainer)


def shown(findings: tuple[Finding, ...]) -> list[str]:
    return render_check(CheckReport((Checked("x", findings=findings),)), "text").splitlines()


def run(ns: dict, tmp_path, module=None, callbacks=(), call: str = "fit", **options) -> BaseException | None:
    """A real capped call of a fresh Trainer (CPU, 2 batches, 1 epoch, no logger, no checkpoints, files under
    ``tmp_path``); ``ns["CALLS"]`` is emptied first. Returns what it raised, or ``None``."""
    import pytorch_lightning as pl

    ns["CALLS"].clear()
    settings = dict(max_epochs=1, limit_train_batches=2, limit_val_batches=2, logger=False, enable_checkpointing=False,
                    enable_progress_bar=False, enable_model_summary=False, accelerator="cpu", default_root_dir=str(tmp_path))
    with quiet_in_root():
        trainer = pl.Trainer(callbacks=list(callbacks), **{**settings, **options})
        model = module if module is not None else ns["Clean"]()
        try:
            if call == "fit":
                trainer.fit(model, ns["loader"](), ns["loader"](8, 1))
            else:
                getattr(trainer, call)(model, ns["loader"](8, 1))
        except Exception as exc:  # the claims below say which
            return exc
    return None


def test_findings_of_each_kind(setups):
    assert shown(setups.loop.findings) == EXPECTED
    levels = {f.code: f.level for f in setups.loop.findings}
    assert levels == {"LD101": "warning", "LD102": "warning", "LD103": "warning", "LD105": "warning", "LD106": "error",
                      "LD107": "error", "LD201": "error"}


def test_never_called_is_true_of_a_real_run(setups, tmp_path):
    """LD101, LD102, LD103, LD105 on a Callback: a real fit (with sanity check and validation) and a validate call run
    none of those methods, while ``Legacy``'s real hook runs (the callback is attached)."""
    ns = setups.ns
    assert run(ns, tmp_path, callbacks=[ns["Legacy"](), ns["Misplaced"]()]) is None
    assert ns["CALLS"] == ["Legacy.on_train_epoch_start"]
    assert run(ns, tmp_path, callbacks=[ns["Legacy"](), ns["Misplaced"]()], call="validate") is None
    assert ns["CALLS"] == []


def test_callback_hook_on_the_module_is_never_called(setups, tmp_path):
    """LD105 on the LightningModule: with a sanity check that really runs (a Callback's ``on_sanity_check_start`` does),
    the module's is not called. Its other findings are taken out of the class for this run."""
    import pytorch_lightning as pl

    ns = setups.ns
    Module = type("OnlySanity", (ns["Clean"],), {"on_sanity_check_start": vars(ns["Checked"])["on_sanity_check_start"]})
    probe = type("Probe", (pl.Callback,), {"on_sanity_check_start": lambda self, t, m: ns["CALLS"].append("Probe")})
    assert run(ns, tmp_path, module=Module(), callbacks=[probe()]) is None
    assert ns["CALLS"] == ["Probe"]


def test_rejected_removed_hook_makes_fit_raise(setups, tmp_path):
    """LD106: fit raises NotImplementedError, before any ``setup`` hook (a Callback's ``setup`` never runs), and the
    hook itself never runs; ``predict`` (which the validator does not check for it) runs."""
    import pytorch_lightning as pl

    ns = setups.ns
    Module = type("OnlyRejected", (ns["Clean"],), {"training_epoch_end": vars(ns["Checked"])["training_epoch_end"],
                                                   "predict_step": lambda self, batch, i: self.layer(batch[0])})
    probe = type("Probe", (pl.Callback,), {"setup": lambda self, t, m, stage: ns["CALLS"].append("Probe.setup")})
    raised = run(ns, tmp_path, module=Module(), callbacks=[probe()])
    assert isinstance(raised, NotImplementedError) and "training_epoch_end" in str(raised)
    assert ns["CALLS"] == []
    assert run(ns, tmp_path, module=Module(), call="predict") is None


def test_old_signatures_make_fit_raise(setups, tmp_path):
    """LD107: ``on_train_epoch_end(trainer, pl_module, outputs)`` on a Callback and ``on_train_start(trainer, pl_module)``
    on the module: fit raises TypeError at that hook, the first time it reaches it (the epoch's batches ran before)."""
    import pytorch_lightning as pl

    ns = setups.ns
    probe = type("Probe", (pl.Callback,), {"on_train_batch_end": lambda self, t, m, o, b, i: ns["CALLS"].append("batch")})
    raised = run(ns, tmp_path, callbacks=[probe(), ns["OldSignature"]()])
    assert isinstance(raised, TypeError) and "outputs" in str(raised)
    assert ns["CALLS"] == ["batch", "batch"]  # the whole first epoch ran, then on_train_epoch_end raised
    Module = type("OnlyOldStart", (ns["Clean"],), {"on_train_start": vars(ns["Checked"])["on_train_start"]})
    raised = run(ns, tmp_path, module=Module(), callbacks=[probe()])
    assert isinstance(raised, TypeError) and "trainer" in str(raised)
    assert ns["CALLS"] == []


def test_not_a_callback_makes_fit_raise(setups, tmp_path):
    """LD201: ``Trainer(callbacks=[NotACallback()])`` is accepted; fit raises AttributeError, first for ``setup``
    (the exception handling then fails the same way at ``on_exception``); the object's own method never runs."""
    ns = setups.ns
    raised = run(ns, tmp_path, callbacks=[ns["NotACallback"]()])
    assert isinstance(raised, AttributeError)
    chain = [raised]
    while chain[-1].__context__ is not None:
        chain.append(chain[-1].__context__)
    assert "has no attribute 'setup'" in str(chain[-1]) and "on_exception" in str(raised)
    assert ns["CALLS"] == []
    # With a `setup` of its own, the same object fails at `setup` for `state_key` (the profiler's action name).
    WithSetup = type("WithSetup", (ns["NotACallback"],), {"setup": lambda self, trainer, pl_module, stage: None})
    raised = run(ns, tmp_path, callbacks=[WithSetup()])
    assert "state_key" in str(raised.__context__ or raised)


def test_not_a_callback_with_state_key_and_setup(setups, tmp_path):
    """LD201's second form, checked by the rule itself: an object with ``setup`` but no ``state_key``."""
    from loopdoc.adapters.base import CallbackFacts, LintFacts
    from loopdoc.adapters.lightning.rules import check_not_a_callback

    WithSetup = type("WithSetup", (setups.ns["NotACallback"],), {"setup": lambda self, trainer, pl_module, stage: None})
    facts = LintFacts("Lightning", "2.6", (), callbacks=(CallbackFacts("WithSetup", False, True, extra={"object": WithSetup()}),),
                      extra={"callback_hooks": frozenset({"setup", "on_exception", "on_train_start"}), "call": "fit"})
    (finding,) = check_not_a_callback(setups.loop, facts)
    assert finding.message.endswith("so `fit` raises AttributeError at `setup`, the first Callback hook of the call: `WithSetup` "
                                    "has no `state_key`, which Lightning reads to call its `setup`, and the same at "
                                    "`on_exception`, which Lightning calls on it when the call fails")


def test_the_fixture_trainer_itself_raises_as_stated(setups, tmp_path):
    """The fixture's classes together: ``fit`` stops with NotImplementedError (LD106) before any hook of the callbacks,
    and ``NotACallback`` then fails ``on_exception`` (LD201), so what reaches the caller is that AttributeError."""
    ns = setups.ns
    raised = run(ns, tmp_path, module=ns["Checked"](), callbacks=[type(cb)() for cb in setups.trainer.callbacks])
    assert isinstance(raised, AttributeError) and "on_exception" in str(raised)
    assert isinstance(raised.__context__, NotImplementedError)
    assert ns["CALLS"] == []


def test_masked_signature_error(setups, tmp_path):
    """LD107's addition: with ``NotACallback`` attached, the TypeError of ``OldSignature`` reaches the caller as the
    context of the AttributeError at ``on_exception`` (a subclass given ``state_key`` and every other hook, so that the fit gets there)."""
    ns = setups.ns
    class WithSetup(ns["NotACallback"]):
        state_key = "WithSetup"

        def __getattr__(self, name):  # every hook but on_exception, as a no-op
            if name == "on_exception" or name.startswith("_"):
                raise AttributeError(name)
            return lambda *args, **kwargs: None

    raised = run(ns, tmp_path, callbacks=[ns["OldSignature"](), WithSetup()], num_sanity_val_steps=0)
    assert isinstance(raised, AttributeError) and "on_exception" in str(raised), raised
    assert isinstance(raised.__context__, TypeError) and "outputs" in str(raised.__context__)


@pytest.mark.parametrize("fmt", ["html", "md", "txt", "json"])
def test_findings_in_every_rendered_output(setups, fmt):
    out = render(setups.loop, fmt)
    for f in setups.loop.findings:
        assert f.code in out, (fmt, f.code)
    assert "tests/fixtures/check/lightning_setups.py" in out


def test_why_no_rule_for_two_callbacks_of_one_class(setups, tmp_path):
    """The README's reason for having no duplicate-callback rule: ``Trainer(...)`` raises for two stateful callbacks
    with one ``state_key``, and two ``ModelCheckpoint`` in one folder keep both files (``-v1``)."""
    import pytorch_lightning as pl
    from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint

    folder = tmp_path / "ckpt"
    for twins in ([ModelCheckpoint(dirpath=folder), ModelCheckpoint(dirpath=folder)], [EarlyStopping("v"), EarlyStopping("v")]):
        with pytest.raises(RuntimeError, match="more than one stateful callback"):
            pl.Trainer(callbacks=twins, logger=False, default_root_dir=str(tmp_path))
    both = [ModelCheckpoint(dirpath=folder, monitor="v"), ModelCheckpoint(dirpath=folder)]
    assert run(setups.ns, tmp_path, callbacks=both, enable_checkpointing=True) is None
    assert sorted(p.name for p in folder.iterdir()) == ["epoch=0-step=2-v1.ckpt", "epoch=0-step=2.ckpt"]


def test_signatures_lightning_does_call(setups, tmp_path):
    """No LD107 for signatures that match what Lightning passes although the base has defaults there: a module's
    ``optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)`` and ``configure_gradient_clipping(optimizer,
    gradient_clip_val, gradient_clip_algorithm)``, a callback's ``on_validation_batch_end`` with a required
    ``dataloader_idx`` is not claimed either way; a real fit runs the first two."""
    from loopdoc.adapters.lightning.rules import check_signature

    ns = setups.ns

    def optimizer_step(self, epoch, batch_idx, optimizer, optimizer_closure):
        ns["CALLS"].append("optimizer_step")
        optimizer.step(closure=optimizer_closure)

    def configure_gradient_clipping(self, optimizer, gradient_clip_val, gradient_clip_algorithm):
        ns["CALLS"].append("configure_gradient_clipping")

    Module = type("Stepping", (ns["Clean"],), {"optimizer_step": optimizer_step,
                                               "configure_gradient_clipping": configure_gradient_clipping})
    assert run(ns, tmp_path, module=Module()) is None
    assert ns["CALLS"] == ["optimizer_step", "configure_gradient_clipping"] * 2  # clipping inside the step, after the closure
    import pytorch_lightning as pl

    from loopdoc.adapters.lightning.extract import extract
    from loopdoc.adapters.lightning.facts import lint_facts

    with quiet_in_root():
        trainer = pl.Trainer(max_epochs=1, limit_train_batches=2, logger=False, enable_checkpointing=False,
                             enable_progress_bar=False, enable_model_summary=False, default_root_dir=str(tmp_path))
        names = {"model": Module(), "dl": ns["loader"]()}
        loop = extract(trainer, loaded_from="x.py", call="fit(model, dl)", namespace=names)
        facts = lint_facts(trainer, loop, names)
    assert {"optimizer_step", "configure_gradient_clipping"} <= {e.name for _, e in loop.iter_events() if e.handlers}
    assert list(check_signature(loop, facts)) == []
