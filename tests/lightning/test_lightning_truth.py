"""The static Lightning model against real runs: what Lightning calls is the ground truth.

Each case builds a Trainer, takes loopdoc's static model of the call (``extract.plan``: the
``Loop`` and, per node, its conditions as expressions), proves that reading it changed nothing,
then runs the call for real (capped, CPU) under ``observe_lightning.recording`` — an oracle that
shares no code with the adapter — and compares them hook by hook, per phase occurrence
(``lightning_compare.compare``): the hooks in order, each hook's handlers (object, function) in
order, Lightning's defaults, the conditions of every conditional part, the hook a phase runs inside.
Every case runs for ``pytorch_lightning`` and ``lightning.pytorch``. The working directory is an
empty folder that must stay empty; what a run writes goes under pytest's ``tmp_path``.
"""

from __future__ import annotations

import dataclasses
import importlib
import os

import lightning_compare as cmp
import lightning_setups as setups
import observe_lightning as oracle
import pytest
from helpers import LIGHTNING_EXAMPLES, ROOT

from loopdoc.adapters.lightning.extract import Meta, plan
from loopdoc.model.loop import Event, Phase

pytestmark = [pytest.mark.lightning, pytest.mark.usefixtures("user_folder")]
PACKAGES = ("pytorch_lightning", "lightning.pytorch")


def call_text(call: str, kwargs: dict) -> str:
    return call + "(model" + "".join(f", {k}={k}" for k in kwargs) + ")"


def run_setup(name: str, package: str, out) -> dict:
    """Build setup ``name``, model it (nothing may change), run it under the oracle; the comparison's problems."""
    P = importlib.import_module(package)
    out.mkdir(exist_ok=True)
    trainer, model, call, kwargs = setups.build(name, P, str(out))
    dm = kwargs.get("datamodule")
    before, files = cmp.snapshot(trainer, model, dm), cmp.listing(str(out))
    loop, meta = plan(trainer, loaded_from=f"{name}.py:trainer", call=call_text(call, kwargs), namespace={"model": model, **kwargs})
    problems = [f"reading the model changed {d}" for d in cmp.same_snapshot(before, cmp.snapshot(trainer, model, dm))]
    if cmp.listing(str(out)) != files:
        problems.append("reading the model wrote files")
    with oracle.recording(trainer) as rec:
        getattr(trainer, call)(model, **kwargs)
    problems += cmp.compare(loop, meta, rec) + oracle.profiler_mismatches(rec, trainer)
    ran = [type(c).__name__ for c in trainer.callbacks]
    listed = [c.name for c in loop.callbacks if c.kind == "callback"]
    if ran != listed:
        problems.append(f"callbacks: the model lists {listed}, the run had {ran}")
    return {"problems": problems, "loop": loop, "meta": meta, "rec": rec, "trainer": trainer}


@pytest.mark.parametrize("package", PACKAGES)
@pytest.mark.parametrize("name", setups.SETUPS)
def test_static_model_equals_a_real_run(name, package, tmp_path):
    r = run_setup(name, package, tmp_path / "out")
    assert r["problems"] == [], "\n".join(r["problems"])


@pytest.mark.parametrize("spec", LIGHTNING_EXAMPLES)
def test_examples_equal_a_real_run(spec, tmp_path, monkeypatch):
    """The shipped examples, loaded as loopdoc loads them, modelled with the default call, then that call run for real."""
    from loopdoc.load import load

    monkeypatch.chdir(ROOT)
    loaded = load(spec)
    trainer, ns = loaded.trainer, loaded.namespace
    loop, meta = plan(trainer, loaded_from=loaded.loaded_from, call=None, namespace=ns, observation=loaded.observation)
    assert loop.call in ("fit(model, train_dl, val_dl)", "fit(model, datamodule=dm)")
    before = cmp.listing(str(ROOT))
    with oracle.redirect_outputs(trainer, str(tmp_path / "out")), oracle.recording(trainer) as rec:
        eval("trainer." + loop.call, {**ns, "trainer": trainer})  # noqa: S307 - the example's own call, as its script makes it
    problems = cmp.compare(loop, meta, rec) + oracle.profiler_mismatches(rec, trainer)
    assert problems == [], "\n".join(problems)
    assert cmp.listing(str(ROOT)) == before
    counts = cmp.counts(rec)
    assert counts["fit#1/train/epoch/batch"] >= 8 and counts.get("fit#1/train/epoch/checkpoint", 0) >= 1
    origins = {c.id: c.origin for c in loop.callbacks}
    if "datamodule" in spec:
        assert origins["EarlyStopping"] == origins["BatchCounter"] == "configure_callbacks()"
        assert origins["ModelCheckpoint"] == origins["RichModelSummary"] == "Lightning default"
        assert counts["fit#1/train/epoch/batch/closure"] >= 4  # accumulate_grad_batches=2: every other batch accumulates
    else:
        assert origins["ModelCheckpoint"] == ("Lightning default" if "defaults" in spec else None)


def test_sanity_check_on_and_off(tmp_path):
    off = run_setup("no_sanity", "pytorch_lightning", tmp_path / "a")
    on = run_setup("sanity2", "pytorch_lightning", tmp_path / "b")
    assert off["problems"] == on["problems"] == []
    assert "fit#1/sanity_check" not in cmp.counts(off["rec"])
    assert [p.name for p in off["loop"].phases[0].children if isinstance(p, Phase)] == ["train"]
    assert "No sanity check: num_sanity_val_steps=0." in off["loop"].notes
    assert cmp.counts(on["rec"])["fit#1/sanity_check/validation/batch"] == 2  # min(num_sanity_val_steps=2, limit_val_batches=2)


def _hooks(occ: dict) -> list[str]:
    out: list[str] = []
    for it in occ["items"]:
        out += [it["hook"]] if "hook" in it else [f"<{it['phase']}>"] + _hooks(it["occurrence"])
    return out


def test_accumulation_which_hooks_fire_on_which_batch(tmp_path):
    """accumulate_grad_batches=2, 3 batches: batch 0 accumulates (closure run directly, zero-grad hooks fire); batch 1
    steps without zero_grad; batch 2, the epoch's last, steps and zero-grads (batch_idx % 2 == 0), then validates."""
    r = run_setup("datamodule_accumulate", "pytorch_lightning", tmp_path / "out")
    assert r["problems"] == []
    epoch = next(it["occurrence"] for it in r["rec"]["tree"]["items"][0]["occurrence"]["items"]
                 if it.get("phase") == "train")
    epoch = next(it["occurrence"] for it in epoch["items"] if it.get("phase") == "epoch")
    b0, b1, b2 = (_hooks(it["occurrence"]) for it in epoch["items"] if it.get("phase") == "batch")
    assert "<closure>" in b0 and "<step>" not in b0 and "optimizer_zero_grad" in b0 and "optimizer_step" not in b0
    assert "<step>" in b1 and "optimizer_zero_grad" not in b1 and "on_before_zero_grad" not in b1
    assert "<step>" in b2 and "optimizer_zero_grad" in b2 and "on_validation_model_zero_grad" in b2
    # ... and the model says so in words
    batch = _find(r["loop"].phases[0], "train", "epoch", "batch")
    closure = next(c for c in batch.children if isinstance(c, Phase) and c.name == "closure")
    step = next(c for c in batch.children if isinstance(c, Phase) and c.name == "step")
    assert step.condition == "on every 2nd batch (accumulate_grad_batches=2) and on the epoch's last batch"
    assert closure.condition.startswith("when the batch only accumulates gradients")
    zero = next(c for c in closure.children if isinstance(c, Phase))
    assert zero.name == "zero_grad" and zero.condition == "on the first batch of each window of 2 (batch_idx % 2 == 0)"


def test_manual_optimisation_runs_the_backward_hooks_inside_training_step(tmp_path):
    r = run_setup("manual", "pytorch_lightning", tmp_path / "out")
    assert r["problems"] == []
    batch = _find(r["loop"].phases[0], "train", "epoch", "batch")
    names = [c.name for c in batch.children]
    assert "step" not in names and "closure" not in names
    assert names[names.index("training_step") + 1:][:2] == ["manual_backward", "manual_step"]
    assert cmp.counts(r["rec"])["fit#1/train/epoch/batch/manual_backward"] == 2


def _find(phase: Phase, *names: str) -> Phase:
    for n in names:
        phase = next(c for c in phase.children if isinstance(c, Phase) and c.name == n)
    return phase


def test_configure_callbacks_are_merged_and_marked(tmp_path):
    r = run_setup("datamodule_accumulate", "lightning.pytorch", tmp_path / "out")
    assert r["problems"] == []
    cbs = [(c.id, c.kind, c.origin) for c in r["loop"].callbacks]
    assert cbs == [("Loud", "callback", None), ("RichModelSummary", "callback", None), ("EarlyStopping", "callback", "configure_callbacks()"),
                   ("Counter", "callback", "configure_callbacks()"), ("ModelCheckpoint", "callback", None),
                   ("WithCallbacks", "module", None), ("DM", "datamodule", None)]
    assert any("they replace `EarlyStopping`" in n for n in r["loop"].notes)


# -- the comparison itself catches what is wrong -------------------------------------------------------------------


@pytest.fixture(scope="module")
def custom(tmp_path_factory):
    folder = tmp_path_factory.mktemp("custom")
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        return run_setup("custom", "pytorch_lightning", folder / "out")
    finally:
        os.chdir(cwd)


def _rebuild(node, meta: dict, change):
    """A copy of the tree with ``change(phase_path, phase) -> phase | None`` applied; meta carried over to the copies."""

    def walk(n, path):
        if not isinstance(n, Phase):
            return n
        here = path + (n.name,)
        kids = tuple(walk(c, here) for c in n.children)
        new = n if all(a is b for a, b in zip(kids, n.children, strict=True)) else dataclasses.replace(n, children=kids)
        new = change(here, new) or new
        if new is not n and id(n) in meta:
            meta[id(new)] = meta[id(n)]
        return new

    return walk(node, ())


def _event_edit(path, hook, edit):
    def change(here, phase):
        if here != path:
            return None
        return dataclasses.replace(phase, children=tuple(edit(c) if isinstance(c, Event) and c.name == hook else c for c in phase.children))
    return change


EPOCH = ("fit", "train", "epoch")
BATCH = EPOCH + ("batch",)


def _mutations():
    def drop_handler(ev):
        return dataclasses.replace(ev, handlers=ev.handlers[:-1])

    def reverse(ev):
        return dataclasses.replace(ev, handlers=ev.handlers[::-1])

    def swap(here, phase):
        if here != BATCH:
            return None
        kids = list(phase.children)
        i = next(i for i, c in enumerate(kids) if getattr(c, "name", "") == "on_train_batch_start")
        kids[i - 1], kids[i] = kids[i], kids[i - 1]
        return dataclasses.replace(phase, children=tuple(kids))

    def no_checkpoint(here, phase):
        if here != EPOCH:
            return None
        return dataclasses.replace(phase, children=tuple(c for c in phase.children if getattr(c, "name", "") != "checkpoint"))

    def extra_hook(here, phase):
        if here != ("fit", "train"):
            return None
        return dataclasses.replace(phase, children=(Event("on_train_begin", "never called by 2.x"), *phase.children))

    def no_default(here, phase):
        if here != BATCH + ("step", "closure", "zero_grad"):
            return None
        return dataclasses.replace(phase, children=tuple(c for c in phase.children if getattr(c, "kind", "") != "step"))

    return {
        "drop a handler": ("tree", _event_edit(EPOCH, "on_train_epoch_end", drop_handler)),
        "reorder handlers": ("tree", _event_edit(EPOCH, "on_train_epoch_end", reverse)),
        "swap two hooks": ("tree", swap),
        "missing phase": ("tree", no_checkpoint),
        "extra hook": ("tree", extra_hook),
        "missing default": ("tree", no_default),
        "wrong condition": ("meta", (BATCH + ("validation",), {"when": "batch_idx == 0"})),
        "wrong within": ("meta", (BATCH + ("step", "closure"), {"within": None})),
    }


MUTATIONS = _mutations()


@pytest.mark.parametrize("mutation", MUTATIONS)
def test_the_comparison_catches_a_wrong_model(custom, mutation):
    assert custom["problems"] == []
    loop, meta = custom["loop"], dict(custom["meta"])
    kind, what = MUTATIONS[mutation]
    if kind == "tree":
        top = _rebuild(loop.phases[0], meta, what)
    else:
        path, change = what
        top = loop.phases[0]
        target = _find(top, *path[1:])
        meta[id(target)] = dataclasses.replace(meta.get(id(target)) or Meta(), **change)
    mutated = dataclasses.replace(loop, phases=(top,))
    assert cmp.compare(mutated, meta, custom["rec"]) != []


def test_removed_callback_hooks_are_never_called(custom):
    fired = {f["hook"] for f in custom["rec"]["flat"]}
    assert not fired & {"on_epoch_start", "on_batch_end", "on_init_start", "on_pretrain_routine_start"}
    named = {ev.name for _, ev in custom["loop"].iter_events()}
    assert not named & {"on_epoch_start", "on_batch_end", "on_init_start", "on_pretrain_routine_start"}


@pytest.mark.parametrize("package", PACKAGES)
def test_removed_module_hooks_raise_at_fit(package, tmp_path):
    P = importlib.import_module(package)
    C = setups.classes(P)
    M = type("M", (C["Plain"],), {"training_epoch_end": lambda self, outputs: None})
    t = P.Trainer(default_root_dir=str(tmp_path), max_epochs=1, limit_train_batches=1, logger=False,
                  enable_progress_bar=False, enable_checkpointing=False)
    with pytest.raises(NotImplementedError, match="training_epoch_end"):
        t.fit(M(), setups.data())


def test_mixed_packages(tmp_path):
    """A pytorch_lightning EarlyStopping in a lightning.pytorch Trainer is no 'monitoring' callback there: it runs
    before the module's on_train_epoch_end. The static model says so too."""
    import lightning.pytorch as L
    import pytorch_lightning as pl

    t = L.Trainer(default_root_dir=str(tmp_path), max_epochs=1, limit_train_batches=1, limit_val_batches=1, logger=False,
                  enable_progress_bar=False, callbacks=[pl.callbacks.EarlyStopping(monitor="v", patience=9),
                                                        setups.classes(pl)["Counter"]()])
    m = setups.classes(L)["Hooked"]()
    train, val = setups.data(), setups.data()
    loop, meta = plan(t, loaded_from="x.py:t", call="fit(m, train, val)", namespace={"m": m, "train": train, "val": val})
    with oracle.recording(t) as rec:
        t.fit(m, train, val)
    assert cmp.compare(loop, meta, rec) == []
    order = [f["name"] for f in rec["flat"] if f["hook"] == "on_train_epoch_end" and f["own"]]
    assert order == ["EarlyStopping", "Counter", "Hooked", "ModelCheckpoint"]
