"""``loopdoc card``: write or update the "Training loop" section of a model card.

A model card is any Markdown file, typically a Hugging Face ``README.md`` that starts with
YAML front matter. The section lives between two marker lines::

    <!-- loopdoc:start call="fine_tune(2)" mode="compact" title="Training loop" -->
    …
    <!-- loopdoc:end -->

The start marker records the options the section was written with (``CardOptions``: the call, the
mode, the title, and the source URL and assets folder when given), so that ``loopdoc card --check``
checks what was written without repeating them; a bare ``<!-- loopdoc:start -->`` means the defaults.
The compact mode (the default) is a short list of the callbacks, the matrix and the whole loop inside
``<details>`` (``templates/card.md.jinja``); the full mode is the Markdown format (``loop.md.jinja``).
Versions are compared without local build tags (``torch 2.14.1+cu130`` equals ``torch 2.14.1+cpu``),
so a card written on a CUDA workstation is current on a CPU runner.

Only the lines from one marker to the other (included) are ever rewritten; every other byte
of the file, the front matter included, is kept. Without markers the section is added at the
end of the "Training procedure" section (before the next heading of the same or a higher
level) when the card has such a heading, with its heading one level below it; else at the end
of the file, as a level-2 section. Markers and headings inside code blocks do not count, so a
card may show the markers in an example. Running it again with an unchanged loop changes
nothing; the section's heading keeps the level it has in the card.
"""

from __future__ import annotations

import html
import os
import re
from dataclasses import dataclass, fields, replace
from pathlib import Path

from markdown_it import MarkdownIt

from .errors import CardError, UsageError
from .model.loop import Loop

START = "<!-- loopdoc:start -->"
"""The start marker without options (as messages name it); with options it is ``CardOptions.marker()``."""
END = "<!-- loopdoc:end -->"
MODES = ("compact", "full")
_START_LINE = re.compile(r"<!--\s*loopdoc:start(?=\s|-->)")
_START_FULL = re.compile(r"<!--\s*loopdoc:start((?:\s+[A-Za-z][\w-]*=\"[^\"]*\")*)\s*-->")
_ATTRIBUTE = re.compile(r"\s+([A-Za-z][\w-]*)=\"([^\"]*)\"")
_ESCAPES = {"&": "&amp;", '"': "&quot;", "<": "&lt;", ">": "&gt;", "\n": "&#10;", "\r": "&#13;"}
NOTE = "<!-- Written by `loopdoc card`: edits between the loopdoc markers are overwritten. -->"
_PROCEDURE = re.compile(r"training\s+procedures?\s*:?", re.IGNORECASE)
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\n|\r)|[^\r\n]+\Z")


@dataclass(frozen=True)
class CardOptions:
    """The options a card section is written with, kept in its start marker.

    Attributes:
        call: the call documented (``"fine_tune(2)"``), or ``None`` for the framework's default.
        mode: ``"compact"`` (callbacks, matrix, the loop folded) or ``"full"`` (the whole Markdown format).
        title: the section's heading text.
        source_url: the ``--source-url`` template, or ``None``.
        assets: the folder of the matrix image, relative to the card (POSIX), or ``None`` for the inline table.
    """

    call: str | None = None
    mode: str = "compact"
    title: str = "Training loop"
    source_url: str | None = None
    assets: str | None = None

    def marker(self) -> str:
        """The start marker line, e.g. ``<!-- loopdoc:start call="fit(1)" mode="compact" title="Training loop" -->``.

        Values are escaped (``&``, ``"``, ``<``, ``>`` and line breaks as character references), so a value
        cannot end the comment or the attribute; ``parse`` reads them back.
        """
        parts = [f'{_NAMES[f.name]}="{_escape(value)}"' for f in fields(self)
                 if (value := getattr(self, f.name)) is not None]
        return "<!-- loopdoc:start " + " ".join(parts) + " -->"

    @classmethod
    def parse(cls, line: str, where: str) -> CardOptions:
        """Read the options of a start marker line (a bare ``<!-- loopdoc:start -->`` gives the defaults).

        Args:
            line: the marker line (surrounding whitespace allowed).
            where: ``card:LINE``, for messages.

        Returns:
            The options; attributes not given keep their defaults.

        Raises:
            CardError: a malformed marker, an unknown or repeated attribute, or an unknown mode.
        """
        m = _START_FULL.fullmatch(line.strip())
        if m is None:
            raise CardError(f'{where}: malformed start marker; write it as <!-- loopdoc:start name="value" … --> '
                            f"or {START}")
        values: dict[str, str] = {}
        for name, value in _ATTRIBUTE.findall(m.group(1)):
            field_name = _FIELDS.get(name)
            if field_name is None:
                raise CardError(f"{where}: unknown option {name!r} in the start marker; known: {', '.join(_FIELDS)}")
            if field_name in values:
                raise CardError(f"{where}: option {name!r} given twice in the start marker")
            values[field_name] = html.unescape(value)
        options = cls(**values)
        if options.mode not in MODES:
            raise CardError(f"{where}: mode {options.mode!r} in the start marker; choose one of {', '.join(MODES)}")
        return options

    def merged(self, **given: str | None) -> CardOptions:
        """These options with each of ``given`` that is not ``None`` put in (command-line options win over the marker's).

        Args:
            **given: field names (``call``, ``mode``, ``title``, ``source_url``, ``assets``) and values or ``None``.

        Returns:
            A new ``CardOptions``.

        Raises:
            TypeError: a name that is not a field.
        """
        return replace(self, **{k: v for k, v in given.items() if v is not None})


_NAMES = {"call": "call", "mode": "mode", "title": "title", "source_url": "source-url", "assets": "assets"}
_FIELDS = {v: k for k, v in _NAMES.items()}


def _escape(value: str) -> str:
    return "".join(_ESCAPES.get(ch, ch) for ch in value)


def card_options(text: str, where: str = "card") -> CardOptions | None:
    """The options recorded in ``text``'s start marker, or ``None`` when it has no loopdoc section.

    Args:
        text: the card's content.
        where: the card's name, for messages.

    Raises:
        CardError: broken markers (see ``update_card``) or a malformed start marker.
    """
    start, front = _front_matter(text)
    starts, ends = _marker_rows(text)
    _check_markers(starts, ends, where, front)
    if not starts:
        return None
    line = _LINE.findall(text[start:])[starts[0]]
    return CardOptions.parse(line, f"{where}:{front + starts[0] + 1}")


def strip_local_versions(text: str, names: list[str]) -> str:
    """``text`` with the local build tag of each named package's version removed: ``torch 2.14.1+cu130`` → ``torch 2.14.1``.

    Args:
        text: a card section.
        names: package names as the section shows them before their versions (the framework, ``Loop.versions``).

    Returns:
        The text, for comparing sections written on different machines (PEP 440 local versions differ by build).
    """
    for name in sorted(set(names), key=len, reverse=True):
        text = re.sub(rf"(?<![\w.-])({re.escape(name)} \d[\w.!]*)\+[A-Za-z0-9.]+", r"\1", text)
    return text


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


def update_card(text: str, loop: Loop, *, where: str = "card", title: str | None = None,
                source_url: str | None = None, mode: str | None = None, call: str | None = None,
                options: CardOptions | None = None, matrix_image: str | None = None) -> CardUpdate:
    """Return ``text`` with its loopdoc section written for ``loop``.

    Args:
        text: the card's content (a UTF-8 byte order mark, ``\\r\\n`` line ends and YAML
            front matter are kept as they are; the section uses the card's line ends).
        loop: the model.
        where: the card's name, for error messages.
        title: the section's heading text; ``None``: from ``options``.
        source_url: see ``loopdoc.rendering.documents.render``; ``None``: from ``options``.
        mode: ``"compact"`` or ``"full"``; ``None``: from ``options``.
        call: the call ``loop`` is of, to record in the marker; ``None``: from ``options``.
        options: the options to start from; ``None``: those of the card's start marker (defaults without one).
        matrix_image: the URL of the matrix image, relative to the card (``--assets``), or ``None`` for the inline table.

    Returns:
        The ``CardUpdate``. The section is "unchanged" (and ``text`` kept) also when it differs only in
        local build tags of versions (``strip_local_versions``).

    Raises:
        CardError: a marker without its partner, markers in the wrong order, more than one pair, or a malformed start marker.
        UsageError: a bad ``source_url`` or ``mode``.
    """
    from .rendering.fragment import render_markdown_section

    if options is None:
        options = card_options(text, where) or CardOptions()
    options = options.merged(title=title, source_url=source_url, mode=mode, call=call)
    if options.mode not in MODES:
        raise UsageError(f"--mode {options.mode!r}: choose one of {', '.join(MODES)}")
    body_start, front_lines = _front_matter(text)
    head, body = text[:body_start], text[body_start:]
    lines = _LINE.findall(body)
    newline = _newline(text)
    code, headings = _structure(lines)
    starts = [i for i, line in enumerate(lines) if i not in code and _START_LINE.match(line.strip())]
    ends = [i for i, line in enumerate(lines) if i not in code and line.strip() == END]
    _check_markers(starts, ends, where, front_lines)

    if starts:
        first, last = starts[0], ends[0]
        inside = [level for row, level, _ in headings if first < row < last]
        level = inside[0] if inside else 2
    else:
        first, last, level = _placement(lines, headings)
        _check_not_in_code(lines, first, where, front_lines)
    if starts:
        CardOptions.parse(lines[first], f"{where}:{front_lines + first + 1}")  # a malformed marker is an error
    section = render_markdown_section(loop, heading_level=level, title=options.title, source_url=options.source_url,
                                      compact=options.mode == "compact", matrix_image=matrix_image)
    block = newline.join([options.marker(), NOTE, "", *section.rstrip("\n").split("\n"), "", END])

    if starts:
        ending = lines[last][len(lines[last].rstrip("\r\n")):]
        new_body = "".join(lines[:first]) + block + ending + "".join(lines[last + 1:])
        names = [loop.framework.name, *loop.versions]
        same = new_body == body or strip_local_versions(new_body, names) == strip_local_versions(body, names)
        action = "unchanged" if same else "updated"
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


def card_command(spec: str, card: str, *, call: str | None = None, check: bool = False, title: str | None = None,
                 source_url: str | None = None, mode: str | None = None, assets: str | None = None,
                 force: bool = False) -> CardResult:
    """``loopdoc card``: update the card, or with ``check`` only compare.

    Checks the card (a regular file, UTF-8, markers, no code fence that would swallow a new
    section, not one of the learner's files) before loading the learner. Options not given are those
    recorded in the card's start marker (``CardOptions``), else the defaults; the options used are
    recorded again. So ``loopdoc card SPEC README.md --check`` checks a section written with
    ``--call "fine_tune(2)" --mode full`` without repeating them. A card with more than one hard
    link is rewritten in place, so every link sees the new text (``write_output(keep_links=True)``).

    Args:
        spec: the learner (``loopdoc.resolve.resolve``).
        card: the Markdown file; it must exist.
        call: the call to document, e.g. ``"fine_tune(2)"``.
        check: write nothing; report whether the section (and its matrix image, with assets) is current.
        title: the section's heading text.
        source_url: see ``loopdoc.rendering.documents.render``.
        mode: ``"compact"`` (default) or ``"full"``.
        assets: a folder for the matrix image (``<card stem>-matrix.svg``), which the section then shows
            instead of the inline table; relative to the working directory (recorded relative to the card).
        force: allow a card whose name ends in ``.py`` (never one of the learner's files).

    Returns:
        The ``CardResult`` (``stale`` with ``check`` when the section or its image is missing or out of date).

    Raises:
        CardError: the card is missing, not a regular file, not UTF-8, its markers are broken or malformed, or
            an unclosed code fence would hold a new section.
        UsageError: a bad ``mode`` or ``source_url``, an image that would overwrite the learner file or the card,
            or the card is the learner's file (or, without ``force``, any ``.py`` file).
        LoopdocError: the learner could not be loaded, or a file could not be written (``OutputError``).
    """
    import os

    from .rendering.assets import matrix_asset, write_asset
    from .rendering.documents import render
    from .rendering.links import check_source_url
    from .rendering.output import check_output, refuse_overwrite, write_output
    from .resolve import resolve, spec_files

    text = _read(card)
    recorded = card_options(text, card) or CardOptions()
    folder = None
    if assets is not None:
        folder = Path(os.path.relpath(os.path.abspath(assets), os.path.dirname(os.path.abspath(card)))).as_posix()
    options = recorded.merged(call=call, title=title, source_url=source_url, mode=mode, assets=folder)
    if options.mode not in MODES:
        raise UsageError(f"--mode {options.mode!r}: choose one of {', '.join(MODES)}")
    if options.source_url is not None:
        check_source_url(options.source_url)
    _precheck(text, card)
    asset = None
    if options.assets is not None:
        asset = matrix_asset(card, Path(card).parent / options.assets, inputs=(spec, spec.rsplit(":", 1)[0]))
    if not check:
        check_output(card)
        refuse_overwrite(card, spec_files(spec), force=force, what="the card")
    resolved = resolve(spec, options.call)
    if not check:
        refuse_overwrite(card, resolved.files, force=force, what="the card")
    loop = resolved.document
    update = update_card(text, loop, where=card, options=options, matrix_image=asset.url if asset else None)
    image = render(loop, "svg") if asset else None
    names = [loop.framework.name, *loop.versions]
    image_stale = asset is not None and image is not None and not _current_file(asset.path, image, names)
    if check:
        again = _again(spec, card, call=call, title=title, source_url=source_url, mode=mode, assets=assets)
        if update.action == "inserted":
            return CardResult(update.action, True, f"{card}: no loopdoc section; run {again}")
        if update.changed:
            return CardResult(update.action, True, f"{card}: the loopdoc section is stale; run {again}")
        if image_stale and asset is not None:
            return CardResult("updated", True, f"{card}: the matrix image {asset.path} is missing or stale; "
                                               f"run {again}")
        return CardResult(update.action, True, f"{card}: the loopdoc section is current")
    if image_stale and asset is not None and image is not None:
        write_asset(image, asset)  # first: the card never shows an image that is not there
    if update.changed:
        write_output(update.text, card, keep_links=True)
    if image_stale and not update.changed:
        return CardResult("updated", False, f"{card}: loopdoc section unchanged, matrix image {asset.path} written")
    return CardResult(update.action, False, f"{card}: loopdoc section {update.action}")


def _current_file(path: Path, text: str, names: list[str]) -> bool:
    """Whether ``path`` holds ``text`` (local version tags aside), UTF-8."""
    try:
        old = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    return old == text or strip_local_versions(old, names) == strip_local_versions(text, names)


def _again(spec: str, card: str, **given: str | None) -> str:
    """The ``loopdoc card`` command that writes what ``--check`` compared: the spec, the card and the options given on
    the command line (the others come from the card's marker again), quoted for a POSIX shell."""
    import shlex

    words = ["loopdoc", "card", spec, card]
    for name, value in given.items():
        if value is not None:
            words += [f"--{name.replace('_', '-')}", value]
    return " ".join(shlex.quote(w) for w in words)


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
    return ([i for i, line in enumerate(lines) if i not in code and _START_LINE.match(line.strip())],
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
