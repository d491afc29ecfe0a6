"""Hostile documents for the output-safety tests (issue 10): a saved loop, a diff and a trace whose every text field is hostile.

Each document is built twice from the same golden model, once with ``hostile`` text in every text field
and once with ``harmless`` text (``t0``, ``t1`` …), so a test can compare what a renderer makes of the two:
whatever the hostile one has more came from model text. Callback ids follow the schema's pattern
(``^[A-Za-z_][A-Za-z0-9_.-]*$``), so their hostile form uses only what the pattern allows.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loopdoc.model import Loop
from loopdoc.model.trace import Cancellation, EventTrace, HandlerTiming, Trace

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden" / "custom_callbacks.json"

# One line of every kind of markup that could make an element, an attribute, a link or a request.
HOSTILE_LINE = ("<img src=x onerror=alert(1)> <script>alert(2)</script> [link](javascript:alert(3)) "
                "![img](http://e.invalid/x.png) <http://e.invalid/auto> <a href=javascript:alert(4)>a</a> \\<b>b</b> "
                "&lt;i&gt; &#60;u&#62; {: onclick=alert(5) } ``` `` ` x`y <!-- c --> _u_ *e* \\")
# Several lines: blocks that python-markdown or CommonMark read as raw HTML, fences that never close,
# a code span that runs over lines into an HTML tag, link reference definitions.
HOSTILE = (HOSTILE_LINE + "\n\n<div onclick=alert(6)>\n\n```\n<iframe src=javascript:alert(7)></iframe>\n\n"
           "<svg onload=alert(8)>\n```\n`code\n<object data=x>` after\n    <embed src=x>\n"
           "> <details open ontoggle=alert(9)>\n[ref]: javascript:alert(10)\n[ref]\n~~~\n<video src=x>\n"
           "````py <b>\n<marquee>\n````\n- ```\n  <form action=x>\n1. <input autofocus onfocus=alert(11)>\n"
           "`<p`\n<p onmouseover=alert(12)>`x`\u202e\x1b[2J\x07\x9b")
HOSTILE_ID = "_._-__x_"
KEEP = {"kind", "schema_version", "via", "level", "stage", "code"}
ID_KEYS = {"id", "callback"}


def rewrite(node: Any, text: Callable[[str], str], ident: Callable[[str], str], key: str | None = None) -> Any:
    """A model's JSON form with every text value replaced by ``text(value)`` and every callback id by ``ident(id)``.

    Dict keys of ``versions``, ``flags`` and ``filtered_events`` are text too; ``kind``,
    ``schema_version``, ``via``, a finding's ``level`` and ``code`` and a phase's ``stage`` (constants or
    patterns of the schema) are kept.
    """
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k in KEEP:
                out[k] = v
            elif k in ("versions", "flags", "filtered_events") and isinstance(v, dict):
                out[k] = {text(name): rewrite(value, text, ident, k) for name, value in v.items()}
            else:
                out[k] = rewrite(v, text, ident, k)
        return out
    if isinstance(node, list):
        return [rewrite(v, text, ident, key) for v in node]
    if isinstance(node, str):
        return ident(node) if key in ID_KEYS else text(node)
    return node


def hostile_text(value: str) -> str:
    return value + HOSTILE


def hostile_id(value: str) -> str:
    return value + HOSTILE_ID


class Harmless:
    """An injective map from each distinct value to a plain word (``t0``, ``t1`` …), ids and text alike."""

    def __init__(self) -> None:
        self.words: dict[str, str] = {}

    def __call__(self, value: str) -> str:
        return self.words.setdefault(value, f"t{len(self.words)}")


def golden() -> dict[str, Any]:
    """The golden ``custom_callbacks`` model's JSON form, with every text field model 1.1 added filled in: a control
    flag flow (Lightning's and Hugging Face's adapters write them) and a callback's ``origin``."""
    data = json.loads(GOLDEN.read_text(encoding="utf-8"))
    last = data["callbacks"][-1]["id"]  # changed() keeps it
    data["callbacks"][0]["origin"] = "added by the trainer"
    data["flows"] = [{"flag": "control.should_stop", "description": "the loop stops after this step",
                      "set_by": [{"callback": last, "event": "after_batch", "value": "True", "condition": "every 5 steps"}],
                      "read_by": ["after after_batch: the batch loop ends"]}]
    return data


def loop_pair(data: dict[str, Any] | None = None) -> tuple[Loop, Loop]:
    """``(hostile, harmless)`` versions of a loop model (the golden ``custom_callbacks`` one by default)."""
    data = data or golden()
    harmless = Harmless()
    return (Loop.from_dict(rewrite(data, hostile_text, hostile_id)), Loop.from_dict(rewrite(data, harmless, harmless)))


def changed(data: dict[str, Any]) -> dict[str, Any]:
    """A second version of a model's JSON form that differs in every way a diff reports.

    Docstrings, orders and flags of every callback change; the first callback is removed and a
    new one is added at every event the last one handles; the learner's settings, versions and
    notes change.
    """
    new = json.loads(json.dumps(data))
    for cb in new["callbacks"]:
        cb["doc"] = (cb["doc"] or "") + "\nchanged"
        cb["order"] = (cb["order"] or 0) + 1
        cb["flags"] = {k: not v for k, v in cb["flags"].items()}
    gone = new["callbacks"].pop(0)["id"]
    extra = dict(new["callbacks"][-1], id="Added", name="Added")
    new["callbacks"].append(extra)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("kind") == "event":
                node["handlers"] = [h for h in node["handlers"] if h["callback"] != gone]
                node["handlers"] += [dict(h, callback="Added") for h in node["handlers"] if h["callback"] == new["callbacks"][-2]["id"]]
                for h in node["handlers"]:
                    h["doc"] = (h["doc"] or "") + "\nchanged"
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(new["phases"])
    new["learner"] = {**new["learner"], "model": "Other", "loss_func": "L1", "opt_func": "Adam", "metrics": ["mae"]}
    new["versions"] = {**new["versions"], "extra": "1.0"}
    new["notes"] = [*new["notes"], "A new note."]
    return new


def diff_pair() -> tuple[tuple[Loop, Loop], tuple[Loop, Loop]]:
    """``((hostile old, hostile new), (harmless old, harmless new))`` for ``diff_loops``."""
    old, new = golden(), changed(golden())
    harmless = Harmless()
    return ((Loop.from_dict(rewrite(old, hostile_text, hostile_id)), Loop.from_dict(rewrite(new, hostile_text, hostile_id))),
            (Loop.from_dict(rewrite(old, harmless, harmless)), Loop.from_dict(rewrite(new, harmless, harmless))))


def trace_of(loop: Loop, text: Callable[[str], str], ident: Callable[[str], str]) -> Trace:
    """A trace of ``loop`` whose every event fired, each handler ran once, and the first event's callback cancelled."""
    events = []
    for n, (path, ev) in enumerate(loop.iter_events(keyed=True)):
        handlers = tuple(HandlerTiming(h.callback, h.function, 1, 0.001, 0.001, 0.001) for h in ev.handlers)
        cancels = (Cancellation(text("CancelFitException"), handlers[0].callback if handlers else None, 1),) if n == 0 else ()
        events.append(EventTrace(path, ev.name, 2, handlers, cancels))
    events.append(EventTrace((text("fit"), text("extra")), text("after_nothing"), 1,
                             (HandlerTiming(ident("Ghost"), text("Ghost.after_nothing"), 1, 0.002, 0.002, 0.002),), ()))
    return Trace(loop, text("fit(1)"), 3, tuple(events), 0.5, 0.1, differences=(text("a difference"),),
                 after_loop=text("IndexError: x"))
