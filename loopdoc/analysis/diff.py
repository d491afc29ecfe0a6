"""Compare two loop models: what a change to callbacks, orders, flags or the learner does to the loop.

``diff_loops(old, new, ignore)`` is pure: it reads two ``Loop`` models (never a live
learner) and returns a ``LoopDiff``, a frozen-dataclass model of the changes that
``loopdoc.rendering.documents.render_diff`` turns into terminal text, Markdown, HTML or JSON.
Neutral: it reads model fields and the framework's ``Wording`` (for the reasons it gives).

What is compared
    - At every event, the callbacks that respond **in run order** (as the framework runs
      them: fastai's stable sort by ``order``), never the order of the learner's ``cbs`` list: a
      callback added, removed or moved (its place among the callbacks present on both
      sides changed), and per callback the function that runs, how dispatch reaches
      it, its docstring and its source file.
    - Per callback: ``order``, the flags (fastai: ``run``, ``run_train``, ``run_valid``),
      ``receives_all``, the class, the docstring and the source file.
    - Source line numbers only with ``strict_source``: code that merely moved down a file
      (a comment added above it) is no change by default; a source that moved to another
      file always is, and is shown with its lines.
    - The learner: ``call``, model class, loss, optimizer, metrics; the framework and
      package versions; the loop's notes.
    - The phase tree only as far as phases and events exist; descriptions and steps
      (loopdoc's and the framework's own text) are not compared, nor is ``loaded_from``.

Keys
    A phase is keyed by its path of names from the top, ``fit/epoch/train/batch``. A
    name that several siblings share (on either side) gets a 0-based occurrence index,
    on every one of them: ``fit[0]/epoch/train/batch`` and ``fit[1]/…`` for a
    ``fine_tune``. Matching uses the index always (a lone ``fit`` is ``fit[0]``), so a
    lone ``fit`` on one side matches the first of two on the other; a name unique on
    both sides is shown without it. Events are keyed the same way within their
    phase, callbacks by ``Callback.id``.

Comparing two learner files
    The module and file of the learner itself differ between ``a.py`` and ``b.py``
    (``a.MyCallback`` vs ``b.MyCallback``), and between ``learner.py`` and the same
    file at a git revision. Classes and sources in the learner's own module or file
    are therefore compared relative to it; shown values stay as they are.

Moves
    Among the callbacks an event has on both sides, the largest set that kept its
    relative order stays put (a longest common subsequence that prefers callbacks
    whose ``order`` did not change); the others are reported as moved, so a
    callback whose ``order`` changed is the one reported, not its neighbours.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..adapters.registry import wording
from ..errors import UsageError
from ..model.diff import CallbackDiff, Change, EventDiff, EventStatus, HandlerDiff, LoopDiff, PhaseDiff, Side
from ..model.loop import Callback, Event, Handler, Loop, Phase, SourceLocation

IGNORABLE: dict[str, str] = {
    "docstrings": "docstrings of callbacks and of the functions that run",
    "source": "source locations (files, and line numbers with --strict-source) of callbacks and functions",
    "versions": "framework and package versions",
    "learner": "model class, loss, optimizer and metrics",
    "notes": "the loop's notes",
}
"""What ``--ignore`` accepts, with what each leaves out of the comparison."""


def parse_ignore(values: Sequence[str]) -> set[str]:
    """Parse ``--ignore`` values: each a category of ``IGNORABLE`` or a comma-separated list of them.

    Args:
        values: as given, e.g. ``["docstrings", "source,versions"]``.

    Returns:
        The set of categories.

    Raises:
        UsageError: an unknown or empty category.
    """
    out: set[str] = set()
    for value in values:
        for part in value.split(","):
            name = part.strip()
            if name not in IGNORABLE:
                raise UsageError(f"--ignore: unknown category {name!r}; choose from {', '.join(IGNORABLE)}")
            out.add(name)
    return out


def diff_loops(old: Loop, new: Loop, ignore: set[str] | frozenset[str] = frozenset(), *,
               strict_source: bool = False) -> LoopDiff:
    """Compare two loops.

    Args:
        old: the loop before the change.
        new: the loop after it.
        ignore: categories of ``IGNORABLE`` to leave out.
        strict_source: also compare source line numbers (``loopdoc diff --strict-source``); by
            default a source location differs only when its file does (code moved down a file is
            no change). Ignored when ``ignore`` has ``"source"``.

    Returns:
        The ``LoopDiff``; ``.same`` is ``True`` when nothing differs. Deterministic:
        the same two models give an equal result.

    Raises:
        UsageError: an unknown category in ``ignore``.
    """
    unknown = sorted(set(ignore) - set(IGNORABLE))
    if unknown:
        raise UsageError(f"unknown ignore categories {', '.join(unknown)}; choose from {', '.join(IGNORABLE)}")
    ctx = _Context(old, new, frozenset(ignore), strict_source)
    return LoopDiff(
        old=_side(old),
        new=_side(new),
        ignored=tuple(sorted(ignore)),
        learner=tuple(_learner_changes(old, new, ctx)),
        callbacks=tuple(_callback_diffs(old, new, ctx)),
        phases=tuple(p for p in _children(old.phases, new.phases, (), ctx) if isinstance(p, PhaseDiff)),
    )


# ---------------------------------------------------------------- context


@dataclass(frozen=True)
class _Origin:
    """The learner's own module names and file on one side, for comparing across renames."""

    modules: tuple[str, ...]
    file: str | None

    def qualname(self, name: str | None) -> str | None:
        if name is None:
            return None
        for module in self.modules:
            if name == module or name.startswith(module + "."):
                return "<learner>" + name[len(module):]
        return name

    def source(self, src: SourceLocation | None) -> tuple[str, int | None] | None:
        if src is None:
            return None
        file = posixpath.normpath(src.file)
        return ("<learner>" if self.file is not None and file == self.file else file, src.line)


def _origin(loaded_from: str) -> _Origin:
    """The learner's own module names and file from ``loaded_from``.

    ``path/x.py:learn`` and ``git:REV:path/x.py:learn`` give modules ``x`` and
    ``_loopdoc_x`` (the name ``loopdoc.load`` falls back to) and file ``path/x.py``;
    ``pkg.mod:learn`` gives module ``pkg.mod`` and no file; anything else nothing.
    """
    text = loaded_from
    if text.startswith("git:"):
        text = text[4:].partition(":")[2]
    head, sep, tail = text.rpartition(":")
    if sep and not (tail.endswith(".py") or "/" in tail or "\\" in tail):
        text = head
    text = text.replace("\\", "/")
    if text.endswith(".py"):
        stem = posixpath.basename(text)[:-3]
        stem = stem if stem.isidentifier() else "learner_module"
        return _Origin((f"_loopdoc_{stem}", stem), posixpath.normpath(text))
    if text and all(part.isidentifier() for part in text.split(".")):
        return _Origin((text,), None)
    return _Origin((), None)


class _Context:
    """Both loops' callbacks and origins, and the ignored categories."""

    def __init__(self, old: Loop, new: Loop, ignore: frozenset[str], strict_source: bool = False) -> None:
        self.old_cbs = {cb.id: cb for cb in old.callbacks}
        self.new_cbs = {cb.id: cb for cb in new.callbacks}
        self.old_origin = _origin(old.learner.loaded_from)
        self.new_origin = _origin(new.learner.loaded_from)
        self.ignore = ignore
        self.strict_source = strict_source
        self.words = wording(new.framework.name)

    def keeps(self, category: str) -> bool:
        return category not in self.ignore

    def source_changed(self, a: SourceLocation | None, b: SourceLocation | None) -> bool:
        """Whether two source locations differ: by file (relative to each side's learner file), and by line with ``strict_source``."""
        if not self.keeps("source"):
            return False
        old, new = self.old_origin.source(a), self.new_origin.source(b)
        if self.strict_source or old is None or new is None:
            return old != new
        return old[0] != new[0]


def _side(loop: Loop) -> Side:
    return Side(loop.learner.loaded_from, f"{loop.framework.name} {loop.framework.version}", loop.call)


# ---------------------------------------------------------------- learner


def _learner_changes(old: Loop, new: Loop, ctx: _Context) -> list[Change]:
    out: list[Change] = []

    def compare(field: str, a: Any, b: Any) -> None:
        if a != b:
            out.append(Change(field, a, b))

    compare("call", old.call, new.call)
    if ctx.keeps("learner"):
        a, b = old.learner, new.learner
        if ctx.old_origin.qualname(a.model) != ctx.new_origin.qualname(b.model):
            out.append(Change("model", a.model, b.model))
        compare("loss_func", a.loss_func, b.loss_func)
        compare("opt_func", a.opt_func, b.opt_func)
        compare("metrics", list(a.metrics), list(b.metrics))
    if ctx.keeps("versions"):
        compare("framework", f"{old.framework.name} {old.framework.version}", f"{new.framework.name} {new.framework.version}")
        names = list(new.versions) + [k for k in old.versions if k not in new.versions]
        for name in names:
            a_v, b_v = old.versions.get(name), new.versions.get(name)
            if name == new.framework.name == old.framework.name and (a_v, b_v) == (old.framework.version, new.framework.version):
                continue  # already reported as ``framework``
            compare(f"versions.{name}", a_v, b_v)
    if ctx.keeps("notes"):
        out += [Change("note", n, None) for n in old.notes if n not in new.notes]
        out += [Change("note", None, n) for n in new.notes if n not in old.notes]
    return out


# ---------------------------------------------------------------- callbacks


def _callback_diffs(old: Loop, new: Loop, ctx: _Context) -> list[CallbackDiff]:
    old_ids = [cb.id for cb in old.callbacks]
    new_ids = [cb.id for cb in new.callbacks]
    old_events, new_events = _handled(old), _handled(new)
    out: list[CallbackDiff] = []
    for cb_id in _merge(old_ids, new_ids):
        a, b = ctx.old_cbs.get(cb_id), ctx.new_cbs.get(cb_id)
        if a is None:
            assert b is not None
            out.append(CallbackDiff(cb_id, "added", b.qualname, b.order, dict(b.flags), (), tuple(new_events[cb_id])))
        elif b is None:
            out.append(CallbackDiff(cb_id, "removed", a.qualname, a.order, dict(a.flags), (), tuple(old_events[cb_id])))
        else:
            changes = _callback_changes(a, b, ctx)
            if changes:
                out.append(CallbackDiff(cb_id, "changed", b.qualname, b.order, dict(b.flags), tuple(changes), tuple(new_events[cb_id])))
    return out


def _callback_changes(a: Callback, b: Callback, ctx: _Context) -> list[Change]:
    out: list[Change] = []
    if a.order != b.order:
        out.append(Change("order", a.order, b.order))
    for flag in list(b.flags) + [f for f in a.flags if f not in b.flags]:
        if a.flags.get(flag) != b.flags.get(flag):
            out.append(Change(flag, a.flags.get(flag), b.flags.get(flag)))
    if a.receives_all != b.receives_all:
        out.append(Change("receives_all", a.receives_all, b.receives_all))
    if ctx.old_origin.qualname(a.qualname) != ctx.new_origin.qualname(b.qualname):
        out.append(Change("class", a.qualname, b.qualname))
    if ctx.keeps("docstrings") and a.doc != b.doc:
        out.append(Change("doc", a.doc, b.doc))
    if ctx.source_changed(a.source, b.source):
        out.append(Change("source", _loc(a.source), _loc(b.source)))
    return out


def _loc(src: SourceLocation | None) -> str | None:
    if src is None:
        return None
    return src.file if src.line is None else f"{src.file}:{src.line}"


def _handled(loop: Loop) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {cb.id: [] for cb in loop.callbacks}
    for _, event in loop.iter_events():
        for h in event.handlers:
            names = out.setdefault(h.callback, [])
            if event.name not in names:
                names.append(event.name)
    return out


# ---------------------------------------------------------------- the tree

Key = tuple[str, str, int]  # (kind, name, occurrence among same-kind same-name siblings)


def _keyed(nodes: Sequence[Any]) -> dict[Key, Phase | Event]:
    """Phases and events of one side by key, in order (steps dropped)."""
    seen: dict[tuple[str, str], int] = {}
    out: dict[Key, Phase | Event] = {}
    for n in nodes:
        if isinstance(n, (Phase, Event)):
            i = seen.get((n.kind, n.name), 0)
            seen[(n.kind, n.name)] = i + 1
            out[(n.kind, n.name, i)] = n
    return out


def _children(old: Sequence[Any], new: Sequence[Any], path: tuple[str, ...], ctx: _Context) -> list[PhaseDiff | EventDiff]:
    olds, news = _keyed(old), _keyed(new)
    repeated = {(kind, name) for kind, name, i in (*olds, *news) if i > 0}
    out: list[PhaseDiff | EventDiff] = []
    for key in _merge(list(olds), list(news)):
        shown = f"{key[1]}[{key[2]}]" if key[:2] in repeated else key[1]
        a, b = olds.get(key), news.get(key)
        if key[0] == "phase":
            here = path + (shown,)
            kids = _children(a.children if a else (), b.children if b else (), here, ctx)
            if a is None or b is None:
                status = "added" if a is None else "removed"
            else:
                status = "same" if all(k.status == "same" for k in kids) else "changed"
            out.append(PhaseDiff(shown, "/".join(here), status, tuple(kids)))
        else:
            out.append(_event_diff(a, b, "/".join(path), shown, ctx))  # type: ignore[arg-type]
    return out


def _event_diff(a: Event | None, b: Event | None, path: str, shown: str, ctx: _Context) -> EventDiff:
    old_h = list(a.handlers) if a else []
    new_h = list(b.handlers) if b else []
    old_ids, new_ids = [h.callback for h in old_h], [h.callback for h in new_h]
    old_by, new_by = {h.callback: h for h in old_h}, {h.callback: h for h in new_h}
    common_old = [c for c in old_ids if c in new_by]
    common_new = [c for c in new_ids if c in old_by]
    weight = {c: 2 if _order(ctx.old_cbs, c) == _order(ctx.new_cbs, c) else 1 for c in common_old}
    stable = _stable(common_old, common_new, weight)
    event = b or a
    assert event is not None
    whole = "the event is new" if a is None else ("the event is gone" if b is None else None)
    handlers: list[HandlerDiff] = []
    for cb_id in _merge(old_ids, new_ids):
        h_old, h_new = old_by.get(cb_id), new_by.get(cb_id)
        old_index = old_ids.index(cb_id) + 1 if h_old else None
        new_index = new_ids.index(cb_id) + 1 if h_new else None
        after = new_ids[new_index - 2] if new_index and new_index > 1 else None
        if h_old is None:
            assert h_new is not None
            handlers.append(HandlerDiff(cb_id, h_new.function, "added", None, new_index, after,
                                        _membership_reason(cb_id, event, ctx, added=True, membership=whole)))
        elif h_new is None:
            handlers.append(HandlerDiff(cb_id, h_old.function, "removed", old_index, None, None,
                                        _membership_reason(cb_id, event, ctx, added=False, membership=whole)))
        else:
            changes = tuple(_handler_changes(h_old, h_new, ctx))
            if cb_id not in stable:
                reason = _move_reason(cb_id, common_old, common_new, ctx)
                handlers.append(HandlerDiff(cb_id, h_new.function, "moved", old_index, new_index, after, reason, changes))
            else:
                handlers.append(HandlerDiff(cb_id, h_new.function, "changed" if changes else "same", old_index, new_index,
                                            changes=changes))
    status: EventStatus
    if a is None:
        status = "added"
    elif b is None:
        status = "removed"
    elif all(h.status == "same" for h in handlers):
        status = "same"
    elif not old_h:
        status = "gained"
    elif not new_h:
        status = "lost"
    else:
        status = "changed"
    return EventDiff(path, shown, status, event.filter, tuple(old_ids), tuple(new_ids), tuple(handlers))


def _order(cbs: dict[str, Callback], cb_id: str) -> float | int | None:
    cb = cbs.get(cb_id)
    return cb.order if cb else None


def _handler_changes(a: Handler, b: Handler, ctx: _Context) -> list[Change]:
    out: list[Change] = []
    if a.function != b.function:
        out.append(Change("function", a.function, b.function))
    if a.via != b.via:
        out.append(Change("via", a.via, b.via))
    if ctx.old_origin.qualname(a.defined_by) != ctx.new_origin.qualname(b.defined_by):
        out.append(Change("defined_by", a.defined_by, b.defined_by))
    if ctx.keeps("docstrings") and a.doc != b.doc:
        out.append(Change("doc", a.doc, b.doc))
    if ctx.source_changed(a.source, b.source):
        out.append(Change("source", _loc(a.source), _loc(b.source)))
    return out


def _membership_reason(cb_id: str, event: Event, ctx: _Context, *, added: bool, membership: str | None = None) -> str:
    """Why a callback joined (``added``) or left an event; ``membership`` when the event itself exists on one side only."""
    a, b = ctx.old_cbs.get(cb_id), ctx.new_cbs.get(cb_id)
    if membership is not None:
        return membership
    if a is None:
        return "new callback"
    if b is None:
        return "callback removed"
    for flag in (ctx.words.switch, event.filter):
        if flag and a.flags.get(flag) != b.flags.get(flag):
            return f"{flag} {a.flags.get(flag)} → {b.flags.get(flag)}"
    if a.receives_all != b.receives_all:
        dispatch = ctx.words.dispatch or "dispatch"
        return f"now overrides {dispatch}" if b.receives_all else f"no longer overrides {dispatch}"
    return f"now handles {event.name}" if added else f"no longer handles {event.name}"


def _move_reason(cb_id: str, common_old: list[str], common_new: list[str], ctx: _Context) -> str:
    a, b = ctx.old_cbs[cb_id], ctx.new_cbs[cb_id]
    if a.order != b.order:
        return f"order {a.order} → {b.order}"
    flipped = [
        c for c in common_old
        if c != cb_id and _order(ctx.old_cbs, c) == a.order and _order(ctx.new_cbs, c) == b.order
        and (common_old.index(c) < common_old.index(cb_id)) != (common_new.index(c) < common_new.index(cb_id))
    ]
    if flipped:
        return f"same order {b.order} as {', '.join(flipped)}: {ctx.words.tie_decider} decides, and it changed"
    return f"order {b.order} unchanged"


def _stable(old: list[str], new: list[str], weight: dict[str, int]) -> set[str]:
    """The heaviest common subsequence of ``old`` and ``new`` (items unique in each): the callbacks that did not move.

    Ties go to skipping an item of ``old`` first, so the result is deterministic.
    """
    n, m = len(old), len(new)
    best = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            best[i][j] = max(best[i + 1][j], best[i][j + 1])
            if old[i] == new[j]:
                best[i][j] = max(best[i][j], weight[old[i]] + best[i + 1][j + 1])
    keep: set[str] = set()
    i = j = 0
    while i < n and j < m:
        if best[i][j] == best[i + 1][j]:
            i += 1
        elif best[i][j] == best[i][j + 1]:
            j += 1
        else:  # only the match gives best[i][j]
            keep.add(old[i])
            i += 1
            j += 1
    return keep


def _merge(old: list[Any], new: list[Any]) -> list[Any]:
    """``new``, with each item only in ``old`` inserted right after the old item before it (or first)."""
    out = list(new)
    present = set(new)
    placed: set[Any] = set(new)
    for i, item in enumerate(old):
        if item in present:
            continue
        prev = next((old[j] for j in range(i - 1, -1, -1) if old[j] in placed), None)
        out.insert(out.index(prev) + 1 if prev is not None else 0, item)
        placed.add(item)
    return out
