"""Helpers for the overview parts the templates draw besides the matrix: the trace page's time bars, the tree's
folded runs of events without callbacks, and a callback's one-line summary for model cards.

Pure functions of the model (or the trace); the templates only place what these return.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, NamedTuple

from ..model.loop import Event, Node

if TYPE_CHECKING:
    from ..model.trace import Trace


class TimeBar(NamedTuple):
    """One callback's wall time over a traced run, for a horizontal bar chart.

    Attributes:
        callback: ``Callback.id``.
        calls: how many times its methods ran.
        total_s: their total wall time, in seconds.
        mean_s: ``total_s / calls`` (0 when it never ran).
        max_s: its longest single call, in seconds.
        events: the events it ran at, in order of first firing, once each.
        total_pct: ``total_s`` as a percentage of the largest ``total_s`` (0–100, one decimal).
        mean_pct: ``mean_s`` as a percentage of the largest ``mean_s`` (0–100, one decimal).
    """

    callback: str
    calls: int
    total_s: float
    mean_s: float
    max_s: float
    events: tuple[str, ...]
    total_pct: float
    mean_pct: float


class TraceChart(NamedTuple):
    """What the trace page charts.

    Attributes:
        bars: one per callback that ran, most expensive (``total_s``) first.
        batch_s: wall time of all batches.
        callbacks_s: the part of ``batch_s`` spent in callbacks (at most ``batch_s``).
        framework_s: the rest: the framework's own code and the model.
        callbacks_pct: ``callbacks_s`` as a percentage of ``batch_s`` (one decimal; 0 when no batch ran).
    """

    bars: tuple[TimeBar, ...]
    batch_s: float
    callbacks_s: float
    framework_s: float
    callbacks_pct: float


def trace_chart(trace: Trace | None) -> TraceChart | None:
    """The chart data of ``trace``, or ``None`` without a trace.

    Args:
        trace: a ``loopdoc.model.trace.Trace``, or ``None``.

    Returns:
        A ``TraceChart``; the same trace gives the same numbers.
    """
    if trace is None:
        return None
    totals = trace.callback_totals()
    means = [t["total_s"] / t["calls"] if t["calls"] else 0.0 for t in totals]
    top_total = max((t["total_s"] for t in totals), default=0.0)
    top_mean = max(means, default=0.0)
    bars = tuple(TimeBar(t["callback"], t["calls"], t["total_s"], mean, t["max_s"], tuple(t["events"]),
                         _pct(t["total_s"], top_total), _pct(mean, top_mean))
                 for t, mean in zip(totals, means, strict=True))
    batch = max(trace.batch_s, 0.0)
    inside = min(max(trace.callback_batch_s, 0.0), batch)
    return TraceChart(bars, batch, inside, batch - inside, _pct(inside, batch))


def _pct(part: float, whole: float) -> float:
    return round(100 * part / whole, 1) if whole > 0 else 0.0


def quiet_run(children: tuple[Node, ...], index: int) -> list[str] | None:
    """The events without callbacks that start at ``children[index]``, for the page's folded view.

    Args:
        children: a phase's children.
        index: a position in them.

    Returns:
        The names of the run of consecutive events without handlers that starts at ``index``,
        or ``None`` when ``children[index]`` is no such event or the run started earlier.
    """
    def quiet(i: int) -> bool:
        node = children[i]
        return isinstance(node, Event) and not node.handlers

    if not quiet(index) or (index > 0 and quiet(index - 1)):
        return None
    names = []
    while index < len(children) and quiet(index):
        names.append(children[index].name)  # type: ignore[union-attr]
        index += 1
    return names


_SENTENCE_END = re.compile(r"(?<=[.!?])\s")


def what_it_does(doc: str | None, limit: int = 160) -> str:
    """A docstring's first sentence, on one line, for a short list of callbacks.

    Args:
        doc: a cleaned docstring, or ``None``.
        limit: at most this many characters; a longer sentence is cut at a word and ends in ``…``.

    Returns:
        The sentence (its first paragraph's first sentence), or ``""`` without a docstring.
    """
    if not doc:
        return ""
    paragraph = " ".join(doc.strip().split("\n\n")[0].split())
    sentence = _SENTENCE_END.split(paragraph, maxsplit=1)[0]
    if len(sentence) <= limit:
        return sentence
    cut = sentence[:limit].rsplit(" ", 1)[0] if " " in sentence[:limit] else sentence[:limit]
    return cut.rstrip(",;:") + "\u2026"


_CODE = re.compile(r"(`+)(.+?)\1")


def code_segments(text: str) -> list[tuple[bool, str]]:
    """``text`` cut into code spans and the text between them, so that a template can escape each for its format.

    Args:
        text: one line of Markdown-ish text (a docstring's first sentence, a phase's condition).

    Returns:
        ``[(is_code, part), ...]`` in order: the code spans' contents (backticks removed, unchanged otherwise)
        and the text around them; no empty part.
    """
    out: list[tuple[bool, str]] = []
    last = 0
    for m in _CODE.finditer(text):
        if m.start() > last:
            out.append((False, text[last:m.start()]))
        out.append((True, m.group(2).strip() or m.group(2)))
        last = m.end()
    if last < len(text):
        out.append((False, text[last:]))
    return out
