"""The public diff API: ``diff_loops`` (``loopdoc.analysis.diff``) and its result (``loopdoc.model.diff``)."""

from .analysis.diff import IGNORABLE, diff_loops, parse_ignore
from .model.diff import CallbackDiff, Change, EventDiff, HandlerDiff, LoopDiff, PhaseDiff, Side

__all__ = ["IGNORABLE", "CallbackDiff", "Change", "EventDiff", "HandlerDiff", "LoopDiff", "PhaseDiff", "Side", "diff_loops",
           "parse_ignore"]
