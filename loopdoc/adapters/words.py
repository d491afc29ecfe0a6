"""``Wording``: how a framework's loop is talked about. Its own module, so that rendering a saved model
imports it (and each framework's ``wording`` module) without the adapter protocol or the linting facts.

Plain data; imports nothing from loopdoc.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Wording:
    """How a framework's loop is talked about, for templates and for neutral analysis (diff, trace comparison).

    Plain text only (each output format escapes it). A framework without a concept leaves it ``None``
    and the sentence about it is left out.

    Attributes:
        framework: the framework's name, as ``Loop.framework.name``.
        trainer: what its trainer object is called, e.g. ``"Learner"``.
        callback: what its callback objects are called, e.g. ``"callback"``.
        event: what a point of the loop is called, e.g. ``"event"`` (Lightning: ``"hook"``).
        dispatch: the method a callback overrides to receive every event (fastai: ``"__call__"``), or ``None``.
        cancel: the exceptions that take a loop's cancel branches (fastai: ``"Cancel…Exception"``), or ``None``.
        order_key: the callback attribute the run order sorts by (fastai: ``"order"``), or ``None``.
        order_ties: how ties in ``order_key`` are broken, e.g. ``"ties in the order they were added"``.
        tie_decider: what breaks such a tie, as a subject (fastai: ``"the cbs list order"``).
        run_order: the run order in words when there is no ``order_key``.
        flags: the callback flags the framework reads, in the order to show them.
        switch: the flag that switches a callback off at every event (fastai: ``"run"``), or ``None``.
        filters: ``(flag, phase)``: a flag that filters callbacks at the events of that phase's batch loop.
        own_code: the framework's own code, as the subject of a sentence (``"fastai's own code"``).
        never_ran: why a callback listed at an event may not run there in a real run.
        file_kind: what a file with one of the adapter's ``suffixes`` holds (fastai: ``"pickled learner"``).
    """

    framework: str
    trainer: str = "trainer"
    callback: str = "callback"
    event: str = "event"
    dispatch: str | None = None
    cancel: str | None = None
    order_key: str | None = None
    order_ties: str = ""
    tie_decider: str = "the order they were added"
    run_order: str = "in the order the framework calls them"
    flags: tuple[str, ...] = ()
    switch: str | None = None
    filters: tuple[tuple[str, str], ...] = ()
    own_code: str = "the framework's own code"
    never_ran: str = "stopped early, or switched off at run time"
    file_kind: str = "saved trainer"
