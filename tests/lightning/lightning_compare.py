"""Compare loopdoc's static Lightning model (a ``Loop`` and its ``Meta`` per node) with a run recorded by ``observe_lightning``.

``compare(loop, meta, rec)`` returns a list of problems, ``[]`` when they agree. Per phase
occurrence of the run, the model's phase at the same place is expanded for that occurrence:
every child whose ``Meta.when`` holds for the occurrence's context (its own and its ancestors':
``batch_idx``, ``is_last``, ``epoch`` …) is expected, ``"?"`` children may or may not occur; steps
are not hooks, except that the steps standing for Lightning's defaults (``Meta.default``) must be
exactly the base functions that did work at the hook before them. Repeated occurrences of one child
phase in a row (batches, epochs) fall onto the one static place and each is compared with it,
recursively; a phase the user's own code starts (``Meta.user``: manual optimisation) is compared
wherever it occurs. A phase run inside a hook (``Meta.within``: a checkpoint inside
``ModelCheckpoint.on_validation_end``) must be inside that hook of that object in the run too.
Per hook: the handlers (kind, object, function) must be equal, in order.
"""

from __future__ import annotations

import os
from typing import Any

import observe_lightning as oracle

from loopdoc.model.loop import Event, Loop, Phase, Step

SAFE = {"max": max, "int": int, "min": min, "abs": abs}


def _eval(expr: str, ctx: dict) -> bool:
    return bool(eval(expr, {"__builtins__": {}, **SAFE}, dict(ctx)))  # noqa: S307 - the adapter's own expressions


def compare(loop: Loop, meta: dict[int, Any], rec: dict) -> list[str]:
    """Problems where the model and the recorded run disagree (see the module docstring).

    Args:
        loop: the static model.
        meta: ``{id(node): Meta}`` from ``loopdoc.adapters.lightning.extract.plan``.
        rec: ``observe_lightning.recording``'s record.

    Returns:
        One sentence per problem, ``[]`` when they agree.
    """
    kinds = {cb.id: cb.kind for cb in loop.callbacks}
    problems: list[str] = []
    tops = [it for it in rec["tree"]["items"] if "phase" in it]
    if [p.name for p in loop.phases] != [t["phase"] for t in tops]:
        return [f"top-level phases: static {[p.name for p in loop.phases]} vs run {[t['phase'] for t in tops]}"]
    for phase, it in zip(loop.phases, tops, strict=True):
        _match(phase, it["occurrence"], {}, meta, kinds, problems)
    return problems


def _expected(phase: Phase, ctx: dict, meta: dict[int, Any], kinds: dict[str, str], where: str,
              problems: list[str]) -> tuple[list[tuple], dict[str, Phase]]:
    """The items ``phase`` expects in an occurrence with context ``ctx``: hooks and child phases, and its user phases."""
    out: list[tuple] = []
    user: dict[str, Phase] = {}
    children = list(phase.children)
    for i, child in enumerate(children):
        m = meta.get(id(child))
        if isinstance(child, Step):
            continue
        when = m.when if m else None
        optional = when == "?"
        if when not in (None, "?"):
            try:
                if not _eval(when, ctx):
                    continue
            except NameError as e:
                problems.append(f"{where}: cannot evaluate when={when!r} for {child.name}: {e} (context {ctx})")
                continue
        if isinstance(child, Event):
            defaults = []
            for nxt in children[i + 1:]:
                nm = meta.get(id(nxt))
                if not isinstance(nxt, Step) or nm is None or nm.default is None:
                    break
                defaults.append(nm.default)
            handlers = [(kinds.get(h.callback, "?"), h.callback, h.function) for h in child.handlers]
            out.append(("hook", child.name, handlers, defaults, optional))
        elif m is not None and m.user:
            user[child.name] = child
        else:
            out.append(("phase", child.name, m.within if m else None, optional, child))
    return _merge(out), user


def _merge(items: list[tuple]) -> list[tuple]:
    """Adjacent non-optional places of one hook are one dispatch site (callbacks then the module, e.g.)."""
    out: list[tuple] = []
    for it in items:
        if out and it[0] == "hook" and out[-1][0] == "hook" and out[-1][1] == it[1] and not it[4] and not out[-1][4]:
            prev = out[-1]
            out[-1] = ("hook", it[1], prev[2] + it[2], prev[3] + it[3], False)
        else:
            out.append(it)
    return out


def _within(w: dict | None) -> tuple[str, str] | None:
    return None if w is None else (w["hook"], w["name"])


def _match(phase: Phase, occ: dict, parent_ctx: dict, meta: dict[int, Any], kinds: dict[str, str], problems: list[str]) -> None:
    ctx = {**parent_ctx, **occ["ctx"]}
    where = "/".join(occ["path"])
    exp, user = _expected(phase, ctx, meta, kinds, where, problems)
    obs: list[list] = []
    for it in occ["items"]:
        if "hook" in it:
            obs.append(["hook", it["hook"], oracle.handlers(it), _defaults(it)])
            continue
        name, within = it["phase"], _within(it["within"])
        if name in user:
            sp = user[name]
            m = meta.get(id(sp))
            if m.within != within:
                problems.append(f"{where}: user phase {name} ran within {within}, the model says {m.within}")
            _match(sp, it["occurrence"], ctx, meta, kinds, problems)
            continue
        if obs and obs[-1][0] == "phase" and obs[-1][1] == name and obs[-1][2] == within:
            obs[-1][3].append(it["occurrence"])
        else:
            obs.append(["phase", name, within, [it["occurrence"]]])
    i = j = 0
    while i < len(exp):
        e = exp[i]
        o = obs[j] if j < len(obs) else None
        if o is not None and o[0] == e[0] and o[1] == e[1] and (e[0] == "hook" or o[2] == e[2]):
            if e[0] == "hook":
                if [(k, n, f) for k, n, f in o[2]] != e[2]:
                    problems.append(f"{where}: {e[1]}: the model lists {e[2]} but {o[2]} ran")
                if o[3] != e[3]:
                    problems.append(f"{where}: {e[1]}: the model shows Lightning's defaults {e[3]}; base code that did work: {o[3]}")
            else:
                for sub in o[3]:
                    _match(e[4], sub, ctx, meta, kinds, problems)
            i += 1
            j += 1
        elif e[4] if e[0] == "hook" else e[3]:  # optional
            i += 1
        else:
            got = f"{o[0]} {o[1]}" + (f" within {o[2]}" if o[0] == "phase" and o[2] else "") if o else "nothing"
            problems.append(f"{where}: the model expects {e[0]} {e[1]} next, the run has {got} "
                            f"(model rest {[x[1] for x in exp[i:]]}, run rest {[x[1] for x in obs[j:]]}; context {ctx})")
            return
    if j < len(obs):
        problems.append(f"{where}: the run has more than the model: {[x[1] for x in obs[j:]]} (context {ctx})")


def _defaults(item: dict) -> list[str]:
    """The LightningModule/DataModule base functions that did work at a recorded hook (Lightning's defaults)."""
    return [r["function"] for r in item["ran"] if not r["own"] and r["works"] and r["kind"] in ("module", "datamodule")]


def counts(rec: dict) -> dict[str, int]:
    """Occurrences per phase path of a record, e.g. ``{"fit#1/train/epoch": 2}``."""
    out: dict[str, int] = {}

    def walk(occ: dict) -> None:
        for it in occ["items"]:
            if "phase" in it:
                sub = it["occurrence"]
                key = "/".join(sub["path"])
                out[key] = out.get(key, 0) + 1
                walk(sub)

    walk(rec["tree"])
    return out


def listing(root: str) -> list[str]:
    """Every file and folder under ``root``, relative, sorted (folders end in ``/``)."""
    out = []
    for r, ds, fs in os.walk(root):
        out += [os.path.relpath(os.path.join(r, f), root) for f in fs]
        out += [os.path.relpath(os.path.join(r, d), root) + "/" for d in ds]
    return sorted(out)


def snapshot(trainer: Any, model: Any, datamodule: Any = None) -> dict:
    """What a static read must leave unchanged: trainer/callback/module/datamodule attributes (by identity, primitives
    by value), the callback list, module parameters, trainer state and loop progress."""
    import torch

    def shallow(obj: Any) -> list:
        out = []
        for k, v in sorted(vars(obj).items()):
            if isinstance(v, (int, float, str, bool, type(None))):
                out.append((k, "=", v))
            else:
                out.append((k, "id", id(v)))
        return out

    snap = {
        "callbacks": [id(c) for c in trainer.callbacks],
        "callback_attrs": [shallow(c) for c in trainer.callbacks],
        "trainer_attrs": shallow(trainer),
        "state": (trainer.state.fn, trainer.state.status, trainer.state.stage),
        "progress": (trainer.global_step, trainer.current_epoch, repr(trainer.fit_loop.state_dict())),
        "strategy_module": id(trainer.strategy._lightning_module) if trainer.strategy._lightning_module is not None else None,
        "module_attrs": shallow(model),
        "module_params": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "module_training": [mod.training for mod in model.modules()],
        "grads": [None if p.grad is None else p.grad.clone() for p in model.parameters()],
    }
    if datamodule is not None:
        snap["datamodule_attrs"] = shallow(datamodule)
    snap["_torch"] = torch
    return snap


def same_snapshot(a: dict, b: dict) -> list[str]:
    """Differences between two snapshots ([] when equal)."""
    torch = a["_torch"]
    diffs = []
    for k in a:
        if k == "_torch":
            continue
        if k == "module_params":
            if a[k].keys() != b[k].keys() or any(not torch.equal(a[k][n], b[k][n]) for n in a[k]):
                diffs.append(k)
        elif k == "grads":
            if len(a[k]) != len(b[k]) or any((x is None) != (y is None) or (x is not None and not torch.equal(x, y))
                                             for x, y in zip(a[k], b[k], strict=True)):
                diffs.append(k)
        elif a[k] != b.get(k):
            diffs.append(k)
    return diffs
