"""The loop at a glance: who runs where, as a matrix of callbacks (rows, in run order) by events (columns).

Computed from the model alone, for any framework: the templates ``matrix.html.jinja`` (the
page), ``matrix.svg.jinja`` (``-o loop.svg`` and ``--assets``) and ``matrix.md.jinja``
(Markdown and model cards) draw it. Columns are the loop's events in loop order, grouped:

- an event inside a phase with a ``stage`` (``train``, ``validate``…) belongs to that stage's
  group, with everything nested in it (fastai: ``before_train``, the training batch loop with
  its backward and step phases, ``after_train``);
- any other event belongs to the group of the phase it sits in (``create``, ``fit``, ``epoch``);
- every cancel event (``Event.cancel``) goes to one last group, the cancel branches, headed by the prefix
  their names share (``after_cancel_…``) so that the columns need only the rest (``batch (train)``).

Groups come in the order of their first event. A mark sits where a callback's own code
runs: one per ``Handler``.
"""

from __future__ import annotations

import os
from typing import NamedTuple

from ..model.loop import Callback, Event, Handler, Loop, Phase

CANCEL_GROUP = "cancel"


class MatrixColumn(NamedTuple):
    """One event at one place: a column of the matrix.

    Attributes:
        anchor: the event's path anchor on the page (``fit-epoch-train-batch-before_batch``).
        event: the event's name.
        path: the keyed phase path above it (``("fit", "epoch", "train", "batch")``).
        place: where it is, for people: the path joined by `` › ``.
        stage: the stage of its phase (inherited from the enclosing phases), or ``None``.
        filter: the flag that filters callbacks there (``Event.filter``), or ``None``.
        cancel: the exception that leads to it when it is a cancel event, else ``None``.
        home: the label of the group it belongs to by its phase (for a cancel event, the group it would be in).
        label: the column's heading: the event name. For a cancel event, without the prefix all cancel events
            share (``after_cancel_``, which the group's label shows), and, when its name occurs more than once
            among them, with its group's label (or ``home``, if that is not enough) in parentheses: ``batch (train)``.
        quiet: no callback runs there.
    """

    anchor: str
    event: str
    path: tuple[str, ...]
    place: str
    stage: str | None
    filter: str | None
    cancel: str | None
    home: str
    label: str
    quiet: bool


class MatrixGroup(NamedTuple):
    """Consecutive columns under one heading.

    Attributes:
        key: ``"cancel"`` for the cancel branches, else the phase path joined by ``-``
            (the group's phase has the anchor ``phase-<key>``).
        label: the heading (``"train"``; ``"fit2 › train"`` when a top-level phase repeats); for the cancel
            branches the prefix their events share (``"after_cancel_…"``), else ``"cancel branches"``.
        stage: the group's stage, or ``None`` (always ``None`` for the cancel branches).
        start: index of its first column in ``Matrix.columns``.
        columns: the group's columns.
    """

    key: str
    label: str
    stage: str | None
    start: int
    columns: tuple[MatrixColumn, ...]

    @property
    def cancel(self) -> bool:
        """``True`` for the group of cancel branches."""
        return self.key == CANCEL_GROUP


class MatrixMark(NamedTuple):
    """A callback's code running at one column.

    Attributes:
        function: ``Handler.function``.
        via: ``Handler.via``: ``"method"``, ``"instance"`` or ``"dispatch"``.
        kind: which glyph: ``"own"`` (a method of its class), ``"inherited"`` (of a base class),
            ``"dispatch"`` (its own dispatch method, which receives every event) or ``"instance"``.
    """

    function: str
    via: str
    kind: str


class MatrixRow(NamedTuple):
    """One callback: a row of the matrix.

    Attributes:
        callback: the callback.
        number: its position in run order, from 1.
        marks: one entry per column of ``Matrix.columns``: a ``MatrixMark``, or ``None`` where it does not run.
        off: the callback's flags that are off (``"run_valid=False"``), in the framework's order.
    """

    callback: Callback
    number: int
    marks: tuple[MatrixMark | None, ...]
    off: tuple[str, ...]

    @property
    def count(self) -> int:
        """How many columns have a mark."""
        return sum(m is not None for m in self.marks)


class Matrix(NamedTuple):
    """The whole matrix.

    Attributes:
        columns: every event place, grouped (the order of ``groups``).
        groups: the column groups in order.
        rows: one per callback, in run order.
        kinds: the mark kinds that occur, in legend order (``MARKS`` order).
    """

    columns: tuple[MatrixColumn, ...]
    groups: tuple[MatrixGroup, ...]
    rows: tuple[MatrixRow, ...]
    kinds: tuple[str, ...]


# The glyph and the legend text of each mark kind, in legend order.
MARKS = {
    "own": ("\u25cf", "method of its class"),
    "inherited": ("\u25cb", "inherited method"),
    "dispatch": ("\u25c6", "own dispatch: every event"),
    "instance": ("\u25b2", "instance attribute"),
}


def loop_matrix(loop: Loop) -> Matrix:
    """The matrix of ``loop``: see the module docstring for how columns are grouped.

    Args:
        loop: the model.

    Returns:
        The ``Matrix``; the same model gives the same matrix.
    """
    places: list[tuple[tuple[str, ...], Event, str | None, tuple[str, ...]]] = []  # path, event, stage, group path

    def walk(phase: Phase, path: tuple[str, ...], stage: str | None, group: tuple[str, ...] | None) -> None:
        stage = phase.stage or stage
        if group is None and phase.stage is not None:
            group = path
        for child in phase.children:
            if isinstance(child, Phase):
                walk(child, path + (child.name,), stage, group)
            elif isinstance(child, Event):
                places.append((path, child, stage, group or path))

    for key, phase in zip(loop.top_keys(), loop.phases, strict=True):
        walk(phase, (key,), None, None)

    group_paths = list(dict.fromkeys(g for _, _, _, g in places))
    labels = _group_labels(group_paths)
    stages = {g: s for _, _, s, g in reversed(places)}
    order = {g: i for i, g in enumerate(group_paths)}
    main = [p for p in places if p[1].cancel is None]
    main.sort(key=lambda p: order[p[3]])  # stable: loop order within a group
    cancels = [p for p in places if p[1].cancel is not None]
    cancel_names = [p[1].name for p in cancels]
    prefix = _common_prefix(cancel_names)

    def column(path: tuple[str, ...], event: Event, stage: str | None, group: tuple[str, ...]) -> MatrixColumn:
        home = " \u203a ".join([labels[group], *path[len(group):]])
        label = event.name
        if event.cancel is not None:
            label = event.name[len(prefix):]
            if cancel_names.count(event.name) > 1:
                same = [g for _, e, _, g in cancels if e.name == event.name and labels[g] == labels[group]]
                label = f"{label} ({labels[group] if len(same) == 1 else home})"
        return MatrixColumn(anchor="-".join(path + (event.name,)), event=event.name, path=path,
                            place=" \u203a ".join(path), stage=stage, filter=event.filter,
                            cancel=event.cancel.exception if event.cancel else None, home=home, label=label,
                            quiet=not event.handlers)

    columns: list[MatrixColumn] = []
    groups: list[MatrixGroup] = []
    events: list[Event] = []
    for g in group_paths:
        members = [column(*p) for p in main if p[3] == g]
        if members:
            groups.append(MatrixGroup("-".join(g), labels[g], stages[g], len(columns), tuple(members)))
            columns.extend(members)
            events.extend(p[1] for p in main if p[3] == g)
    if cancels:
        members = [column(*p) for p in cancels]
        groups.append(MatrixGroup(CANCEL_GROUP, f"{prefix}\u2026" if prefix else "cancel branches", None, len(columns),
                                  tuple(members)))
        columns.extend(members)
        events.extend(p[1] for p in cancels)

    rows = []
    used: set[str] = set()
    for number, cb in enumerate(loop.callbacks, 1):
        marks: list[MatrixMark | None] = []
        for event in events:
            handler = next((h for h in event.handlers if h.callback == cb.id), None)
            mark = None if handler is None else _mark(handler, cb)
            if mark is not None:
                used.add(mark.kind)
            marks.append(mark)
        off = tuple(f"{name}=False" for name, on in cb.flags.items() if not on)
        rows.append(MatrixRow(cb, number, tuple(marks), off))
    return Matrix(tuple(columns), tuple(groups), tuple(rows), tuple(k for k in MARKS if k in used))


def _common_prefix(names: list[str]) -> str:
    """The prefix every name shares, up to and including an ``_`` (``"after_cancel_"``), when all are longer; else ``""``."""
    if len(names) < 2:
        return ""
    shared = os.path.commonprefix(names)
    cut = shared.rfind("_") + 1
    return shared[:cut] if cut >= 3 and all(len(n) > cut for n in names) else ""


def _mark(handler: Handler, cb: Callback) -> MatrixMark:
    if handler.via == "dispatch":
        kind = "dispatch"
    elif handler.via == "instance":
        kind = "instance"
    elif handler.defined_by is not None and handler.defined_by != cb.qualname:
        kind = "inherited"
    else:
        kind = "own"
    return MatrixMark(handler.function, handler.via, kind)


def _group_labels(paths: list[tuple[str, ...]]) -> dict[tuple[str, ...], str]:
    """Each group's heading: its last phase name; when that repeats, the top-level key before it; else the whole path."""
    last = [p[-1] for p in paths]
    out = {}
    for p in paths:
        if last.count(p[-1]) == 1:
            out[p] = p[-1]
            continue
        short = [q[0] + "\u203a" + q[-1] for q in paths if q[-1] == p[-1]]
        parts = [p[0], p[-1]] if len(p) > 1 and short.count(p[0] + "\u203a" + p[-1]) == 1 else list(p)
        out[p] = " \u203a ".join(parts)
    return out


# ---------------------------------------------------------------- the picture, for matrix.svg.jinja

CHAR = 7.3  # advance of one character of the SVG's 12 px monospace font, in px (DejaVu/Liberation Mono: 7.2)
COLUMN = 20
ROW = 20
PAD = 10
GAP = 14


class SvgGroup(NamedTuple):
    """A column group placed in the SVG: ``x``, ``width`` and ``middle`` in px, ``centers`` of its columns."""

    group: MatrixGroup
    x: float
    width: float
    middle: float
    centers: tuple[float, ...]


class SvgLayout(NamedTuple):
    """Where everything of the SVG goes, in whole px (``matrix.svg.jinja`` draws it).

    Attributes:
        width, height: the picture's size.
        name_x, order_x, flags_x: left edges of the name, order and flags text of each row (``order_x`` is its right edge).
        top: the y of the first row's top; ``band`` the y of the group headings' baseline;
            ``label_y`` the y where the column headings start (they read upwards).
        groups: the groups with their places.
        centers: x of each column's centre, in column order.
        row_y: the y of each row's top.
        legend_y: baseline of the legend line.
        right: the right edge of the last column group.
        legend: ``(mark kind, x of the mark, x of its text)`` for each kind in ``Matrix.kinds``.
        swatches: ``(x of the box, x of its text)`` for the train, validate and cancel swatches.
    """

    width: float
    height: float
    name_x: float
    order_x: float
    flags_x: float
    top: float
    band: float
    label_y: float
    groups: tuple[SvgGroup, ...]
    centers: tuple[float, ...]
    row_y: tuple[float, ...]
    legend_y: float
    right: float
    legend: tuple[tuple[str, float, float], ...]
    swatches: tuple[tuple[float, float], ...]


def svg_layout(matrix: Matrix, title: str) -> SvgLayout:
    """Place ``matrix`` for the SVG: text widths are estimated for a monospace font (``CHAR`` px per character).

    Args:
        matrix: from ``loop_matrix``.
        title: the picture's title line (its width counts).

    Returns:
        The ``SvgLayout``; the same matrix gives the same numbers.
    """
    def w(text: str) -> float:
        return len(text) * CHAR

    name_w = max([w(r.callback.id + (f" ({r.callback.kind})" if r.callback.kind != "callback" else "")) for r in matrix.rows]
                 + [w("callback")])
    order_w = max([w(_order(r.callback)) for r in matrix.rows] + [w("order")])
    flags_w = max([w(" ".join(r.off)) for r in matrix.rows] + [0.0])
    name_x = PAD
    order_x = name_x + name_w + GAP + order_w
    flags_x = order_x + GAP
    x = flags_x + (flags_w + GAP if flags_w else 0)
    groups = []
    centers: list[float] = []
    for g in matrix.groups:
        width = max(len(g.columns) * COLUMN, w(g.label) + 8)
        step = width / len(g.columns)
        mine = tuple(round(x + step * (i + 0.5)) for i in range(len(g.columns)))
        groups.append(SvgGroup(g, round(x), round(width), round(x + width / 2), mine))
        centers.extend(mine)
        x += width + 4
    band = 22 + 18  # title line, then the group headings
    label_y = band + 8 + max([w(c.label) for c in matrix.columns] + [0.0])
    top = label_y + 8
    row_y = tuple(round(top + i * ROW) for i in range(len(matrix.rows)))
    legend_y = top + len(matrix.rows) * ROW + 22
    legend, lx = [], PAD + 6.0
    for kind in matrix.kinds:
        legend.append((kind, round(lx), round(lx + 9)))
        lx += 9 + w(MARKS[kind][1]) + 22
    swatches = []
    for name in ("train", "validate", "cancel"):
        swatches.append((round(lx - 6), round(lx + 10)))
        lx += 16 + w(name) + 18
    width = max(x - 4 + PAD, PAD + w(title), lx)
    return SvgLayout(round(width), round(legend_y + PAD), name_x, round(order_x), round(flags_x),
                     round(top), band, round(label_y), tuple(groups), tuple(centers), row_y, round(legend_y), round(x - 4),
                     tuple(legend), tuple(swatches))


def _order(cb: Callback) -> str:
    return "" if cb.order is None else str(cb.order)
