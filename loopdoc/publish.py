"""What the docs-site integrations share: their options, their failure box, and loading each learner once per build.

The mkdocs plugin (``loopdoc.mkdocs``) and the Sphinx extension (``loopdoc.sphinx``) take the
same options (``PublishOptions``: site-wide in ``mkdocs.yml`` / ``conf.py``, per block in the
page), show a learner that fails the same way (``failure_box``), and read specs relative to
a working directory (the folder of ``mkdocs.yml``, Sphinx's ``confdir``, or their
``working_dir`` option). ``LoopCache`` resolves each spec through ``loopdoc.resolve`` once per
build: one worker process per learner answers every call the pages ask for, and a learner is
loaded again (in a new process, so its modules are imported afresh) when one of its files changes:
the learner file and every module of the user's it imported (a sibling ``cbs.py``), also after a
failed load. What the learner's code prints, and the frameworks' warnings, do not reach the build's
output: each line goes to the host's log at debug level (``on_output``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import LoopdocError, UsageError
from .model.loop import Loop

HOST_CSS = """\
/* loopdoc: identifiers in its tables stay whole; a wide table scrolls inside its own box, never the page. */
.loopdoc-table td code, .loopdoc-table th code { white-space: nowrap; word-break: normal; overflow-wrap: normal; }
div.loopdoc-table, table.loopdoc-table { max-width: 100%; overflow-x: auto; }
table.loopdoc-table { display: block; }
/* In the phase tree's lists (Sphinx), a path too long for a phone's line may break rather than widen the page. */
.loopdoc-list code { overflow-wrap: anywhere; }
.loopdoc-list code span.pre { white-space: normal; }
/* Phases nested below the headings (<details class="loopdoc-phase">); a theme that styles details wins. */
:where(details.loopdoc-phase) { border-left: 2px solid rgba(127, 127, 127, .45); margin: .6em 0; padding: 0 0 0 .8em; }
:where(details.loopdoc-phase > summary) { cursor: pointer; font-weight: bold; }
"""
"""The one stylesheet the docs-site integrations add (mkdocs: ``extra_css``; Sphinx: ``add_css_file``): inert (no
``url()``, ``@import`` or generated content), scoped to loopdoc's classes, only widths, wrapping and a border."""


@dataclass(frozen=True, kw_only=True)
class PublishOptions:
    """How a docs site shows a loop: the same options for mkdocs (``mkdocs.yml``, ``::: loopdoc`` blocks) and Sphinx
    (``conf.py`` ``loopdoc_*`` values, ``.. loopdoc::`` options).

    Attributes:
        verbose: add the steps and the docstrings.
        callbacks: add the Callbacks table.
        heading_level: level (1–6) of the loop's top headings; ``None``: one below the heading above the block.
        max_heading_depth: how many heading levels the phases use (1–6), the top-level phases being the
            first (default 3: three levels below the block's heading); deeper phases are labelled blocks
            nested in their parent's (mkdocs: ``<details open>``; Sphinx: admonitions). ``None``: headings
            down to h6, blocks below.
        source_url: link source locations (see ``loopdoc render --source-url``), or ``None``.
        lenient: a learner that fails to load gives a warning box and a logged warning, not a failed build.
        call: the call to document (a block's option), or ``None`` for the framework's default.
        title: a heading above the loop (a block's option), or ``None``.
    """

    verbose: bool = False
    callbacks: bool = True
    heading_level: int | None = None
    max_heading_depth: int | None = 3
    source_url: str | None = None
    lenient: bool = False
    call: str | None = None
    title: str | None = None

    SITE = ("verbose", "callbacks", "heading_level", "max_heading_depth", "source_url", "lenient")
    """The options a whole site may set; ``call`` and ``title`` belong to one block."""

    def merged(self, **block: Any) -> PublishOptions:
        """These options with a block's own on top (``None`` values of optional options reset them).

        Args:
            **block: option names and values, checked by ``check``.

        Returns:
            The new options.
        """
        return dataclasses.replace(self, **block)

    @classmethod
    def check(cls, values: dict[str, Any], *, block: bool = True) -> dict[str, Any]:
        """Check option values by name and type.

        Args:
            values: ``{name: value}`` as a site's configuration or a block gives them.
            block: ``call`` and ``title`` are allowed too.

        Returns:
            ``values``.

        Raises:
            UsageError: an unknown option, a value of the wrong type, a ``heading_level`` or
                ``max_heading_depth`` outside 1–6, or a bad ``source_url``.
        """
        names = [f.name for f in dataclasses.fields(cls) if block or f.name in cls.SITE]
        kinds = {"verbose": bool, "callbacks": bool, "lenient": bool, "heading_level": int, "max_heading_depth": int,
                 "source_url": str, "call": str, "title": str}
        for name, value in values.items():
            if name not in names:
                raise UsageError(f"unknown option {name!r}; use {', '.join(sorted(names))}")
            kind = kinds[name]
            if value is None and kind is not bool:
                continue
            if (kind is int and isinstance(value, bool)) or not isinstance(value, kind):
                raise UsageError(f"option {name!r} must be {kind.__name__}, got {value!r}")
            if name in ("heading_level", "max_heading_depth") and not 1 <= value <= 6:
                raise UsageError(f"option {name!r} must be from 1 to 6, got {value}")
            if name == "source_url":
                from .rendering.links import check_source_url

                check_source_url(value)
        return values


@dataclass(frozen=True)
class FailureBox:
    """What a page shows in place of a loop whose learner failed (lenient builds), in every host alike.

    Attributes:
        title: ``"loopdoc could not document SPEC"``.
        message: the error, one line.
    """

    title: str
    message: str


def failure_box(spec: str, error: LoopdocError) -> FailureBox:
    """The warning box for a learner that failed to load.

    Args:
        spec: the block's spec.
        error: the failure.

    Returns:
        The ``FailureBox``.
    """
    return FailureBox(f"loopdoc could not document {spec}", str(error))


@contextlib.contextmanager
def warnings_logged(log: Callable[[str], None]) -> Iterator[None]:
    """Run the body with the Python warnings it raises passed to ``log``, one line each, instead of shown.

    In a docs build loopdoc's own work (loading the framework adapters' modules, rendering) runs
    in the host's process, and mkdocs shows every Python warning as an INFO line with a stack
    trace; a host wraps that work in this and logs the lines at debug level.

    Args:
        log: called as ``log("FutureWarning: message (file.py:12)")`` for each warning, after the body.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            for w in caught:
                log(f"{w.category.__name__}: {' '.join(str(w.message).split())} ({w.filename}:{w.lineno})")


def spec_file(spec: str, working_dir: str | os.PathLike[str]) -> Path | None:
    """The file a spec names, resolved against ``working_dir``, without loading anything.

    Args:
        spec: ``PATH.py[:ATTR]``, ``package.module[:ATTR]`` or ``PATH.json``.
        working_dir: the folder relative paths start from.

    Returns:
        The absolute path of the file (which may not exist), or ``None`` for a module name
        (its file is known only once it is imported).

    Raises:
        UsageError: a malformed spec.
    """
    from .load import Spec

    if spec.lower().endswith(".json"):
        target = spec
    else:
        parsed = Spec.parse(spec)
        if not parsed.is_file:
            return None
        target = parsed.target
    return Path(os.path.abspath(Path(working_dir) / target))


def _mtimes(files: tuple[Path, ...]) -> tuple[int | None, ...]:
    out = []
    for path in files:
        try:
            out.append(path.stat().st_mtime_ns)
        except OSError:
            out.append(None)
    return tuple(out)


def _read_mtimes(files: tuple[Path, ...], before: dict[Path, int | None], began_ns: int) -> tuple[int | None, ...]:
    """The modification times a load read its files at: those taken before it started, and for a file first seen
    in the load, its time now, unless it changed after the load began (then ``None``, so the next check reloads)."""
    out = []
    for path, now in zip(files, _mtimes(files), strict=True):
        if path in before:
            out.append(before[path])
        else:
            out.append(now if now is not None and now < began_ns else None)
    return tuple(out)


@dataclass
class _Entry:
    """One spec of the build: its worker (or saved model) and loops by call, or the error it failed with."""

    files: tuple[Path, ...]
    mtimes: tuple[int | None, ...]
    pid: int
    pending: Any = None
    error: LoopdocError | None = None
    loops: dict[str | None, Loop] = field(default_factory=dict)

    def stale(self) -> bool:
        return self.pid != os.getpid() or _mtimes(self.files) != self.mtimes

    def close(self) -> None:
        if self.pending is not None and self.pid == os.getpid():
            self.pending.close()
        self.pending = None


class LoopCache:
    """Loops by ``(working_dir, spec, call)``; each learner is loaded once while its files are unchanged.

    Attributes:
        loads: how many times a learner or saved model was actually loaded (for logs and tests).
    """

    def __init__(self, on_load: Callable[[str, float], None] | None = None,
                 on_output: Callable[[str, str], None] | None = None) -> None:
        """Create an empty cache.

        Args:
            on_load: called as ``on_load(spec, seconds)`` after each successful load (not after a cache hit).
            on_output: called as ``on_output(spec, line)`` for each line the learner's worker wrote to
                its stdout or stderr (prints, warnings), as it answers; ``None``: that output goes to
                this process's stderr.
        """
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._on_load = on_load
        self._on_output = on_output
        self.loads = 0

    def clear(self) -> None:
        """Forget every learner and loop and stop their workers (at the start and the end of a build)."""
        for entry in self._entries.values():
            entry.close()
        self._entries.clear()

    def files(self) -> list[Path]:
        """Every file the loaded learners read (failed ones included), sorted: to watch, or to depend on."""
        return sorted({f for e in self._entries.values() for f in e.files})

    def file_list(self, spec: str, working_dir: str | os.PathLike[str]) -> list[Path]:
        """The files one spec's learner read (its file, and the user's modules it imported), sorted.

        Args:
            spec: as given to ``get``.
            working_dir: as given to ``get``.

        Returns:
            Absolute paths; empty when the spec was not tried or names no file.
        """
        entry = self._entries.get((str(Path(os.path.abspath(working_dir))), spec))
        return [] if entry is None else sorted(entry.files)

    def get(self, spec: str, call: str | None, working_dir: str | os.PathLike[str]) -> Loop:
        """The loop of ``call`` on the learner ``spec`` names, loading it only when needed.

        Loading runs with ``working_dir`` as the working directory, so that relative paths
        in the spec and the source locations shown in the loop are relative to it. A learner
        whose files changed since it was loaded (their modification times) is loaded again; a
        failure is remembered the same way, so a broken learner is tried once per change.

        Args:
            spec: as for ``loopdoc.resolve.resolve``.
            call: the call to document, e.g. ``"fine_tune(2)"``, or ``None`` for the default.
            working_dir: the folder relative paths start from.

        Returns:
            The ``Loop``.

        Raises:
            LoopdocError: the spec is malformed, the learner cannot be loaded, or ``call`` is bad;
                the message is one line naming the file.
        """
        folder = Path(os.path.abspath(working_dir))
        key = (str(folder), spec)
        entry = self._entries.get(key)
        previous: tuple[Path, ...] = ()
        if entry is not None and entry.stale():
            entry.close()
            previous, entry = entry.files, None
        if entry is None:
            entry = self._entries[key] = self._load(spec, call, folder, previous)
        if entry.error is not None:
            raise entry.error
        if call not in entry.loops:
            worker = entry.pending.worker
            if worker is None:  # a saved model
                raise UsageError(f"{spec}: call needs a learner; a saved model already holds the loop of one call")
            entry.loops[call] = worker.ask({"what": "loop", "call": call})
        return entry.loops[call]

    def _load(self, spec: str, call: str | None, folder: Path, previous: tuple[Path, ...] = ()) -> _Entry:
        """Load one spec; a failure keeps watching the files the failed load read and those the last load read."""
        from .resolve import start

        try:
            known = spec_file(spec, folder)
        except LoopdocError as e:
            return _Entry((), (), os.getpid(), error=e)
        files = (known,) if known is not None else ()
        entry = _Entry(files, _mtimes(files), os.getpid())
        before = dict(zip((*files, *previous), _mtimes((*files, *previous)), strict=True))
        began, began_ns = time.perf_counter(), time.time_ns()
        output = None if self._on_output is None else (lambda line, report=self._on_output: report(spec, line))
        try:
            entry.pending = start(spec, {"what": "loop", "call": call}, cwd=str(folder), output=output)
            resolved = entry.pending.result()
        except LoopdocError as e:
            entry.error = e
            entry.close()
            entry.files = tuple(sorted({*files, *previous, *(Path(f) for f in e.files)}))
            entry.mtimes = _read_mtimes(entry.files, before, began_ns)
        else:
            entry.loops[call] = resolved.document
            if resolved.files:
                entry.files = tuple(sorted({*files, *(Path(f) for f in resolved.files)}))
            entry.mtimes = _read_mtimes(entry.files, before, began_ns)
        self.loads += 1
        if self._on_load is not None and entry.error is None:
            self._on_load(spec, time.perf_counter() - began)
        return entry
