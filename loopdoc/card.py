"""``loopdoc card``: write or update the "Training loop" section of a model card.

A model card is any Markdown file, typically a Hugging Face ``README.md`` that starts with
YAML front matter. The section lives between two marker lines::

    <!-- loopdoc:start -->
    …
    <!-- loopdoc:end -->

Only the lines from one marker to the other (included) are ever rewritten; every other byte
of the file, the front matter included, is kept. Without markers the section is added at the
end of the "Training procedure" section (before the next heading of the same or a higher
level) when the card has such a heading, with its heading one level below it; else at the end
of the file, as a level-2 section. Markers and headings inside code blocks do not count, so a
card may show the markers in an example. Running it again with an unchanged loop changes
nothing; the section's heading keeps the level it has in the card.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from markdown_it import MarkdownIt

from .errors import CardError
from .model.loop import Loop

START = "<!-- loopdoc:start -->"
END = "<!-- loopdoc:end -->"
NOTE = "<!-- Written by `loopdoc card`: edits between the loopdoc markers are overwritten. -->"
_PROCEDURE = re.compile(r"training\s+procedures?\s*:?", re.IGNORECASE)
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\n|\r)|[^\r\n]+\Z")


@dataclass(frozen=True)
class CardUpdate:
    """What ``update_card`` did.

    Attributes:
        text: the whole new file content.
        action: ``"inserted"`` (no markers before), ``"updated"`` (the section changed) or
            ``"unchanged"`` (``text`` is the old content).
    """

    text: str
    action: str

    @property
    def changed(self) -> bool:
        """``True`` unless ``action`` is ``"unchanged"``."""
        return self.action != "unchanged"


def update_card(text: str, loop: Loop, *, where: str = "card", title: str = "Training loop",
                source_url: str | None = None) -> CardUpdate:
    """Return ``text`` with its loopdoc section written for ``loop``.

    Args:
        text: the card's content (a UTF-8 byte order mark, ``\\r\\n`` line ends and YAML
            front matter are kept as they are; the section uses the card's line ends).
        loop: the model.
        where: the card's name, for error messages.
        title: the section's heading text.
        source_url: see ``loopdoc.rendering.documents.render``.

    Returns:
        The ``CardUpdate``.

    Raises:
        CardError: a marker without its partner, markers in the wrong order, or more than one pair.
        UsageError: a bad ``source_url``.
    """
    from .rendering.fragment import render_markdown_section

    body_start, front_lines = _front_matter(text)
    head, body = text[:body_start], text[body_start:]
    lines = _LINE.findall(body)
    newline = _newline(text)
    code, headings = _structure(lines)
    starts = [i for i, line in enumerate(lines) if i not in code and line.strip() == START]
    ends = [i for i, line in enumerate(lines) if i not in code and line.strip() == END]
    _check_markers(starts, ends, where, front_lines)

    if starts:
        first, last = starts[0], ends[0]
        inside = [level for row, level, _ in headings if first < row < last]
        level = inside[0] if inside else 2
    else:
        first, last, level = _placement(lines, headings)
        _check_not_in_code(lines, first, where, front_lines)
    section = render_markdown_section(loop, heading_level=level, title=title, source_url=source_url)
    block = newline.join([START, NOTE, "", *section.rstrip("\n").split("\n"), "", END])

    if starts:
        ending = lines[last][len(lines[last].rstrip("\r\n")):]
        new_body = "".join(lines[:first]) + block + ending + "".join(lines[last + 1:])
        action = "unchanged" if new_body == body else "updated"
        return CardUpdate(head + new_body if action == "updated" else text, action)

    before, after = lines[:first], lines[first:]
    lead = ""
    if before and not before[-1].endswith(("\n", "\r")):
        lead = newline  # end the last line first
    if (before and before[-1].strip()) or (not before and head):
        lead += newline  # a blank line between the section and what precedes it
    tail = newline + (newline if after and after[0].strip() else "")
    return CardUpdate(head + "".join(before) + lead + block + tail + "".join(after), "inserted")


def _newline(text: str) -> str:
    """The card's line end: ``\\r\\n`` if it has one, else ``\\r`` if it has one (an old Mac file), else ``\\n``."""
    if "\r\n" in text:
        return "\r\n"
    return "\r" if "\r" in text else "\n"


def _check_not_in_code(lines: list[str], row: int, where: str, offset: int) -> None:
    """Refuse to place a new section at ``row`` when a code fence that is never closed runs past it.

    CommonMark ends such a fence at the end of the document, so the section would be code,
    its markers invisible to the next run, which would add the section again (and again).

    Raises:
        CardError: naming the fence's line.
    """
    for start, end in _open_fences(lines):
        if start <= row and end >= len(lines):
            raise CardError(f"{where}:{offset + start + 1}: this code fence is never closed, so everything after it is "
                            "code and a loopdoc section there would be too; close the fence (or add the loopdoc markers "
                            "before it) and run again")


def _open_fences(lines: list[str]) -> list[tuple[int, int]]:
    """``(first row, end row)`` of each top-level fenced code block without its closing fence."""
    normalized = "".join(line.rstrip("\r\n") + "\n" for line in lines)
    found = []
    for token in MarkdownIt("commonmark").enable("table").parse(normalized):
        if token.type != "fence" or not token.map or token.level != 0:
            continue
        first, end = token.map
        closing = lines[end - 1].rstrip("\r\n").strip() if end - 1 > first else ""
        char = token.markup[0]
        if not (closing.startswith(token.markup) and closing.strip(char) == ""):
            found.append((first, end))
    return found


def _front_matter(text: str) -> tuple[int, int]:
    """Where the Markdown starts: after a BOM and a YAML front matter block (``---`` … ``---`` or ``...``).

    Returns:
        ``(offset, lines)``: the offset of the body and how many lines come before it.
    """
    offset = 1 if text.startswith("\ufeff") else 0
    first = re.match(r"---[ \t]*(?:\r\n|\n|\r)", text[offset:])
    if first is None:
        return 0, 0
    close = re.compile(r"^(?:---|\.\.\.)[ \t]*(?:\r\n|\n|\r|\Z)", re.MULTILINE).search(text, offset + first.end())
    if close is None:
        return 0, 0
    return close.end(), len(_LINE.findall(text[: close.end()]))


def _structure(lines: list[str]) -> tuple[set[int], list[tuple[int, int, str]]]:
    """The rows inside code blocks, and the top-level headings as ``(row, level, text)``."""
    normalized = "".join(line.rstrip("\r\n") + "\n" for line in lines)
    tokens = MarkdownIt("commonmark").enable("table").parse(normalized)
    code: set[int] = set()
    headings: list[tuple[int, int, str]] = []
    for i, token in enumerate(tokens):
        if token.type in ("fence", "code_block") and token.map:
            code.update(range(token.map[0], token.map[1]))
        elif token.type == "heading_open" and token.level == 0 and token.map:
            headings.append((token.map[0], int(token.tag[1]), tokens[i + 1].content.strip()))
    return code, headings


def _check_markers(starts: list[int], ends: list[int], where: str, offset: int) -> None:
    def at(row: int) -> str:
        return f"{where}:{offset + row + 1}"

    if len(starts) > 1:
        raise CardError(f"{at(starts[1])}: a second {START} marker; keep one pair of loopdoc markers")
    if len(ends) > 1:
        raise CardError(f"{at(ends[1])}: a second {END} marker; keep one pair of loopdoc markers")
    if starts and not ends:
        raise CardError(f"{at(starts[0])}: {START} without {END}; add the end marker or remove this one")
    if ends and not starts:
        raise CardError(f"{at(ends[0])}: {END} without {START}; add the start marker or remove this one")
    if starts and ends[0] < starts[0]:
        raise CardError(f"{at(ends[0])}: {END} comes before {START}")


def _placement(lines: list[str], headings: list[tuple[int, int, str]]) -> tuple[int, int, int]:
    """Where a new section goes: ``(row, row, level)``, before ``row``."""
    for n, (_, level, text) in enumerate(headings):
        if _PROCEDURE.fullmatch(text):
            following = [row for row, other, _ in headings[n + 1:] if other <= level]
            row = following[0] if following else len(lines)
            return row, row, min(level + 1, 6)
    return len(lines), len(lines), 2


@dataclass(frozen=True)
class CardResult:
    """What ``card_command`` found or did.

    Attributes:
        action: ``"inserted"``, ``"updated"`` or ``"unchanged"`` (with ``check``: what a write would do).
        checked: ``True`` when nothing was written (``--check``).
        message: one line for the user, e.g. ``"README.md: loopdoc section updated"``.
    """

    action: str
    checked: bool
    message: str

    @property
    def stale(self) -> bool:
        """``True`` when checking found the section missing or out of date."""
        return self.checked and self.action != "unchanged"


def card_command(spec: str, card: str, *, call: str | None = None, check: bool = False,
                 title: str = "Training loop", source_url: str | None = None, force: bool = False) -> CardResult:
    """``loopdoc card``: update the card, or with ``check`` only compare.

    Checks the card (a regular file, UTF-8, markers, no code fence that would swallow a new
    section, not one of the learner's files) before loading the learner. A card with more
    than one hard link is rewritten in place, so every link sees the new text
    (``write_output(keep_links=True)``).

    Args:
        spec: the learner (``loopdoc.resolve.resolve``).
        card: the Markdown file; it must exist.
        call: the call to document, e.g. ``"fine_tune(2)"``.
        check: write nothing; report whether the section is current.
        title: the section's heading text.
        source_url: see ``loopdoc.rendering.documents.render``.
        force: allow a card whose name ends in ``.py`` (never one of the learner's files).

    Returns:
        The ``CardResult`` (``stale`` with ``check`` when the section is missing or out of date).

    Raises:
        CardError: the card is missing, not a regular file, not UTF-8, its markers are broken, or
            an unclosed code fence would hold a new section.
        UsageError: the card is the learner's file (or, without ``force``, any ``.py`` file).
        LoopdocError: the learner could not be loaded, or the card could not be written (``OutputError``).
    """
    from .rendering.links import check_source_url
    from .rendering.output import check_output, refuse_overwrite, write_output
    from .resolve import resolve, spec_files

    text = _read(card)
    if source_url is not None:
        check_source_url(source_url)
    _precheck(text, card)
    if not check:
        check_output(card)
        refuse_overwrite(card, spec_files(spec), force=force, what="the card")
    resolved = resolve(spec, call)
    if not check:
        refuse_overwrite(card, resolved.files, force=force, what="the card")
    update = update_card(text, resolved.document, where=card, title=title, source_url=source_url)
    if check:
        if update.action == "inserted":
            return CardResult(update.action, True, f"{card}: no loopdoc section; run loopdoc card {spec} {card}")
        if update.changed:
            return CardResult(update.action, True, f"{card}: the loopdoc section is stale; run loopdoc card {spec} {card}")
        return CardResult(update.action, True, f"{card}: the loopdoc section is current")
    if update.changed:
        write_output(update.text, card, keep_links=True)
    return CardResult(update.action, False, f"{card}: loopdoc section {update.action}")


def _precheck(text: str, card: str) -> None:
    """Every check of ``update_card`` that needs no loop, before the learner is loaded: markers, unclosed fences."""
    body_start, front_lines = _front_matter(text)
    lines = _LINE.findall(text[body_start:])
    _, headings = _structure(lines)
    starts, ends = _marker_rows(text)
    _check_markers(starts, ends, card, front_lines)
    if not starts:
        _check_not_in_code(lines, _placement(lines, headings)[0], card, front_lines)


def _marker_rows(text: str) -> tuple[list[int], list[int]]:
    start, _ = _front_matter(text)
    lines = _LINE.findall(text[start:])
    code, _ = _structure(lines)
    return ([i for i, line in enumerate(lines) if i not in code and line.strip() == START],
            [i for i, line in enumerate(lines) if i not in code and line.strip() == END])


def _read(card: str) -> str:
    """The card's text; only a regular file is read (a FIFO would block, a device never end).

    Raises:
        CardError: missing, a folder or another non-regular file, unreadable, or not UTF-8.
    """
    import stat

    try:
        fd = os.open(card, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # a FIFO opens at once, then fstat says what it is
    except FileNotFoundError as e:
        raise CardError(f"{card}: no such file; loopdoc card updates an existing Markdown file") from e
    except IsADirectoryError as e:
        raise CardError(f"{card}: is a folder; give the model card's Markdown file, e.g. README.md") from e
    except OSError as e:
        raise CardError(f"{card}: cannot read: {e.strerror or e}") from e
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise CardError(f"{card}: is a folder; give the model card's Markdown file, e.g. README.md")
        if not stat.S_ISREG(mode):
            raise CardError(f"{card}: not a regular file (a FIFO, socket or device); loopdoc card edits a Markdown file")
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read()
    except OSError as e:
        raise CardError(f"{card}: cannot read: {e.strerror or e}") from e
    finally:
        os.close(fd)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise CardError(f"{card}: not UTF-8 (byte {e.start}); loopdoc card edits UTF-8 Markdown only") from e
