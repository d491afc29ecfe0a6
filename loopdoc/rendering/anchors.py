"""Page anchors and the callback index's links: stable ids for phases, events and callbacks, from the model alone."""

from __future__ import annotations

import re

from ..model.loop import Loop

# Ids the page itself uses: an event name equal to one of them gets no short anchor.
PAGE_IDS = frozenset({"loop", "callbacks", "notes", "ld-controls", "ld-q", "ld-names", "ld-quiet", "ld-desc",
                      "ld-open", "ld-close", "ld-status", "ld-hl",
                      "matrix", "matrix-h", "toc", "trace", "trace-h", "chart", "flows", "flows-h", "ld-show-quiet",
                      "ld-theme-auto", "ld-theme-light", "ld-theme-dark"})

def event_aliases(loop: Loop) -> dict[str, str]:
    """Short anchors: the first place (in document order) of each event name also answers to ``#<name>``.

    Event names repeat across phases (``before_batch`` is in the training and the
    validation batch loop), so every event keeps its path anchor
    (``fit-epoch-train-batch-before_batch``) and the first one also gets ``#before_batch``.
    A name that is empty, contains whitespace, or equals another anchor of the page
    (a path anchor, ``phase-…``, ``cb-…`` or one of ``PAGE_IDS``) gets no alias.

    Args:
        loop: the model.

    Returns:
        ``{path anchor: alias}`` for the events that get an alias.
    """
    taken = set(PAGE_IDS) | {"cb-" + cb.id for cb in loop.callbacks}
    events = loop.iter_events(keyed=True)
    taken |= {"-".join(path + (event.name,)) for path, event in events}
    for path, _ in events:
        taken |= {"phase-" + "-".join(path[:i]) for i in range(1, len(path) + 1)}
    out: dict[str, str] = {}
    for path, event in events:
        name = event.name
        if name and not re.search(r"\s", name) and name not in taken:
            out["-".join(path + (name,))] = name
            taken.add(name)
    return out

def event_places(loop: Loop) -> dict[str, list[tuple[str, list[tuple[str, str]]]]]:
    """Where each callback runs: for the callback index's links into the tree.

    Args:
        loop: the model.

    Returns:
        ``{callback id: [(event name, [(path anchor, label), ...]), ...]}``, event names in loop
        order, once each; the places in loop order. ``label`` names the phases that tell the
        places of one event name apart (``"train"`` and ``"validate"`` for ``before_batch``),
        or is ``""`` when the name occurs once in the loop.
    """
    events = loop.iter_events(keyed=True)
    paths: dict[str, list[tuple[str, ...]]] = {}
    for path, event in events:
        paths.setdefault(event.name, []).append(path)
    out: dict[str, dict[str, list[tuple[str, str]]]] = {cb.id: {} for cb in loop.callbacks}
    for path, event in events:
        for h in event.handlers:
            places = out.setdefault(h.callback, {}).setdefault(event.name, [])
            anchor = "-".join(path + (event.name,))
            if all(a != anchor for a, _ in places):
                places.append((anchor, _place_label(path, paths[event.name])))
    return {cb: list(names.items()) for cb, names in out.items()}

def _place_label(path: tuple[str, ...], others: list[tuple[str, ...]]) -> str:
    """The part of ``path`` that differs among ``others`` (all paths of one event name), joined by " › "."""
    if len(others) < 2:
        return ""
    start = 0
    while all(len(p) > start for p in others) and len({p[start] for p in others}) == 1:
        start += 1
    end = 0
    while all(len(p) - end > start for p in others) and len({p[len(p) - 1 - end] for p in others}) == 1:
        end += 1
    return " › ".join(path[start:len(path) - end] or path)

def handled_events(loop: Loop) -> dict[str, list[str]]:
    """Map each ``Callback.id`` to the event names it handles anywhere in ``loop``, in loop order, once each."""
    out: dict[str, list[str]] = {cb.id: [] for cb in loop.callbacks}
    for _, event in loop.iter_events():
        for h in event.handlers:
            if event.name not in out[h.callback]:
                out[h.callback].append(event.name)
    return out
