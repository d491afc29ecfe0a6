"""Compare loopdoc's static model of a ``Trainer`` call with what the oracle recorded in a real run.

    report = verify(built, timeline)   # built: loopdoc.adapters.transformers.extract.build(...)
    report["problems"] == []           # static == observed

The static phase tree is read as a grammar: a phase with ``loop`` repeats (each repetition non-empty),
a phase with ``condition`` is optional, a phase with a ``Rules.span`` is bracketed by the oracle's
enter/exit markers of that ``Trainer`` method, a step with a ``Rules.marks`` entry is the oracle's mark
of that method (a marked step whose method is a span is an enter/exit pair with nothing inside),
other steps are not observable. The observed timeline must parse completely; the parse gives every
observed event its place. Then, for every occurrence:

* handlers: the callback functions that ran at an event equal the event's handlers, in order
  (a prefix, when an exception stopped the event);
* conditions: a conditional phase is present exactly when its ``Rules.when`` predicate holds at the
  loop position (``None``: run-time data, not checked);
* loop counts: repetitions equal ``Rules.count`` (at most, when ``Rules.exact`` is False);
* data flow: every control flag a callback changed is set, at that event, by that callback in the
  model's ``flows``; every flag ``CallbackHandler`` reset before dispatching is in ``flows.RESETS``.
"""

from __future__ import annotations

import sys
from typing import Any

from loopdoc.adapters.transformers.flows import RESETS
from loopdoc.model.loop import Event, Phase, Step

FLAGS = ("should_training_stop", "should_epoch_stop", "should_save", "should_evaluate", "should_log")
# The Trainer methods the oracle records as spans (enter and exit), the others as single marks.
SPAN_METHODS = {"__init__", "train", "_run_epoch", "_maybe_log_save_evaluate", "evaluate", "predict", "_finalize_training"}
INDEX = {"epoch": "epoch_index", "step": "step_index", "micro_batch": "micro_index", "batch": "batch_index",
         "dataset": "dataset_index"}


# The matcher recurses once per token; set here, at import, not while a test (or hypothesis) runs.
sys.setrecursionlimit(max(sys.getrecursionlimit(), 20000))


class _Budget(Exception):
    pass


class _Matcher:
    def __init__(self, toks: list[dict], rules: Any, budget: int = 3_000_000):
        self.toks, self.rules, self.budget = toks, rules, budget
        self.spans = SPAN_METHODS
        self.furthest: tuple[int, list[str]] = (-1, [])

    def _tok(self, pos: int) -> dict | None:
        self.budget -= 1
        if self.budget < 0:
            raise _Budget()
        return self.toks[pos] if pos < len(self.toks) else None

    def _fail(self, pos: int, want: str) -> None:
        if pos > self.furthest[0]:
            self.furthest = (pos, [want])
        elif pos == self.furthest[0] and want not in self.furthest[1]:
            self.furthest[1].append(want)

    def _is(self, pos: int, kind: str, name: str) -> bool:
        t = self._tok(pos)
        ok = t is not None and t["kind"] == kind and t.get("event" if kind == "event" else "name") == name
        if not ok:
            self._fail(pos, f"{kind} {name}")
        return ok

    def one(self, node: Any, path: tuple[str, ...], pos: int):
        if isinstance(node, Event):
            if self._is(pos, "event", node.name):
                yield pos + 1, {"node": node, "tok": pos, "start": pos, "end": pos + 1}
        elif isinstance(node, Step):
            mark = self.rules.marks.get((path, node.name))
            if mark is None:
                yield pos, {"node": node, "tok": None, "start": pos, "end": pos}
            elif mark in self.spans:
                if self._is(pos, "enter", mark) and self._is(pos + 1, "exit", mark):
                    yield pos + 2, {"node": node, "tok": pos, "start": pos, "end": pos + 2}
            elif self._is(pos, "mark", mark):
                yield pos + 1, {"node": node, "tok": pos, "start": pos, "end": pos + 1}
        else:
            here = (*path, node.name)
            span = self.rules.span.get(here)
            start = pos
            if span:
                if not self._is(pos, "enter", span):
                    return
                pos += 1
            for end, kids in self.seq(node.children, 0, pos, here):
                if span:
                    if not self._is(end, "exit", span):
                        continue
                    yield end + 1, {"node": node, "start": start, "end": end + 1, "kids": kids}
                else:
                    yield end, {"node": node, "start": start, "end": end, "kids": kids}

    def occ(self, node: Any, path: tuple[str, ...], pos: int):
        if isinstance(node, Phase) and node.loop:
            def rep(p):
                for end, o in self.one(node, path, p):
                    if end == p:
                        continue
                    for end2, rest in rep(end):
                        yield end2, [o, *rest]
                yield p, []
            yield from rep(pos)
        elif (isinstance(node, Phase) or (isinstance(node, Step) and (path, node.name) in self.rules.marks)) \
                and node.condition is not None:  # a conditional phase, or a Trainer method that runs only sometimes
            for end, o in self.one(node, path, pos):
                yield end, [o]
            yield pos, []
        else:
            for end, o in self.one(node, path, pos):
                yield end, [o]

    def seq(self, children: tuple, i: int, pos: int, path: tuple[str, ...]):
        if i == len(children):
            yield pos, []
            return
        if path in self.rules.open_tail and i > 0 and getattr(children[i - 1], "name", None) == "micro_batch":
            yield pos, [None for _ in children[i:]]  # a stop flag ended the update step after its micro-batches
        for end, found in self.occ(children[i], path, pos):
            for end2, rest in self.seq(children, i + 1, end, path):
                yield end2, [found, *rest]


def tokens(rules: Any, timeline: list[dict]) -> list[dict]:
    """The timeline entries the static tree can name: events, and the marks and spans its rules use."""
    spans = set(rules.span.values()) | {m for m in rules.marks.values() if m in SPAN_METHODS}
    marks = set(rules.marks.values()) - SPAN_METHODS
    return [t for t in timeline if t["kind"] == "event" or (t["kind"] == "mark" and t["name"] in marks)
            or (t["kind"] in ("enter", "exit") and t["name"] in spans)]


def _anchor(occ: dict, toks: list[dict]) -> dict:
    for i in range(occ["start"], occ["end"]):
        c = toks[i].get("ctx", {})
        if c.get("global_step") is not None:
            return {"global_step": c["global_step"], "epoch": c["epoch"], "max_steps": c["max_steps"]}
    return {}


def verify(built: Any, timeline: list[dict]) -> dict[str, Any]:
    """Compare ``built`` (``extract.Built``) with an oracle timeline; see the module doc.

    Returns:
        ``{"problems": [...], "events": n observed, "places": {path: [observed child sequences]},
        "unexercised": [paths of phases and events that never occurred]}``.
    """
    loop, rules = built.loop, built.rules
    toks = tokens(rules, timeline)
    m = _Matcher(toks, rules)
    report: dict[str, Any] = {"problems": [], "events": sum(t["kind"] == "event" for t in toks), "places": {},
                              "unexercised": []}
    tree = None
    try:
        for end, kids in m.seq(loop.phases, 0, 0, ()):
            if end == len(toks):
                tree = kids
                break
            m._fail(end, "end of run")
    except _Budget:
        report["problems"].append("matcher budget exhausted")
        return report
    if tree is None:
        pos, want = m.furthest
        t = toks[pos] if 0 <= pos < len(toks) else None
        got = "end of run" if t is None else f"{t['kind']} {t.get('event') or t.get('name')} gs={t.get('ctx', {}).get('global_step')}"
        report["problems"].append(f"the run does not fit the static tree: at token #{pos} ({got}) expected one of {want}")
        return report
    setters = {f.flag.removeprefix("control."): {(s.callback, s.event) for s in f.set_by} for f in loop.flows}
    seen: set[tuple[str, ...]] = set()
    problems = report["problems"]

    def name(n: Any) -> str:
        return n.name if not isinstance(n, Step) else f"<{n.name}>"

    def phase(occ: dict, path: tuple[str, ...], env: dict) -> None:
        node = occ["node"]
        here = (*path, node.name)
        seen.add(here)
        env = {**env, **_anchor(occ, toks)}
        order = []
        for child, found in zip(node.children, occ["kids"], strict=True):
            if found is None:  # after an open tail was cut
                continue
            check(child, found, here, env)
            if found and not (isinstance(child, Step) and (here, child.name) not in rules.marks):
                order.append(name(child) + ("*" if isinstance(child, Phase) and child.loop else ""))
            var = INDEX.get(child.name) if isinstance(child, Phase) and child.loop else None
            for i, o in enumerate(found):
                sub = {**env, var: i} if var else env
                if isinstance(child, Phase):
                    phase(o, here, sub)
                elif isinstance(child, Event):
                    seen.add((*here, child.name))
                    event(child, toks[o["tok"]], here)
        places = report["places"].setdefault("/".join(here), [])
        if order not in places:
            places.append(order)

    def check(child: Any, found: list, here: tuple[str, ...], env: dict) -> None:
        where = "/".join(here) + " @ " + ", ".join(f"{k}={env[k]}" for k in ("epoch_index", "step_index", "micro_index",
                                                                              "global_step") if k in env)
        if isinstance(child, Step):
            return
        sub = (*here, child.name)
        if isinstance(child, Phase) and child.loop:
            if sub not in rules.count:
                problems.append(f"{where}: loop {child.name} has no count rule")
                return
            want = rules.count[sub](env)
            if want < 0:
                return
            if rules.exact.get(sub, True) and len(found) != want:
                problems.append(f"{where}: loop {child.name} ran {len(found)} times, the model says {want} ({child.loop})")
            elif not rules.exact.get(sub, True) and len(found) > want:
                problems.append(f"{where}: loop {child.name} ran {len(found)} times, more than the bound {want}")
            return
        if isinstance(child, Phase) and child.condition is not None:
            if sub not in rules.when:
                problems.append(f"{where}: conditional {child.name} has no rule")
                return
            when = rules.when[sub]
            if when is None:
                return
            if bool(found) != bool(when(env)):
                problems.append(f"{where}: {child.name} {'ran' if found else 'did not run'} but its condition is "
                                f"{bool(when(env))} ({child.condition})")
            return
        if len(found) != 1:
            problems.append(f"{where}: {name(child)} occurred {len(found)} times; the model has it once")

    def event(node: Event, tok: dict, here: tuple[str, ...]) -> None:
        want = [(h.callback, h.function) for h in node.handlers]
        ran = [(r["callback"], r["function"]) for r in tok["ran"]]
        key = "/".join(here) + ":" + node.name
        ok = ran == want[: len(ran)] if tok["raised"] else ran == want
        if not ok:
            problems.append(f"{key} (gs={tok['ctx'].get('global_step')}): the model has {want} but {ran} ran")
        before, after = tok.get("flags_in"), tok.get("flags_dispatch")
        if before and after:
            for f in FLAGS:
                if before[f] != after[f] and f not in RESETS.get(node.name, ()):
                    problems.append(f"{key}: CallbackHandler changed {f} {before[f]} -> {after[f]}, not in RESETS")
        for r in tok["ran"]:
            if r.get("replaced") and not any((r["callback"], node.name) in s for s in setters.values()):
                problems.append(f"{key}: {r['callback']} returned a new control object; the flows do not say so")
            if r.get("flags_in") and r.get("flags_out"):
                for f in FLAGS:
                    if r["flags_in"][f] != r["flags_out"][f] and (r["callback"], node.name) not in setters.get(f, set()):
                        problems.append(f"{key}: {r['callback']} changed {f} {r['flags_in'][f]} -> {r['flags_out'][f]}; "
                                        "the flows do not list it")

    for top, found in zip(loop.phases, tree, strict=True):
        if len(found) != 1:
            problems.append(f"top-level {top.name} occurred {len(found)} times")
        for o in found:
            phase(o, (), {"max_steps": None})

    def walk(node: Any, path: tuple[str, ...]) -> None:
        if isinstance(node, Phase):
            here = (*path, node.name)
            if here not in seen:
                report["unexercised"].append("/".join(here))
            for c in node.children:
                walk(c, here)
        elif isinstance(node, Event) and (*path, node.name) not in seen:
            report["unexercised"].append("/".join(path) + ":" + node.name)

    for p in loop.phases:
        walk(p, ())
    return report
