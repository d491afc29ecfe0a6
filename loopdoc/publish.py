"""What the docs-site integrations share: loading each learner once per build.

The mkdocs plugin (``loopdoc.mkdocs``) and the Sphinx extension (``loopdoc.sphinx``) read
specs relative to a working directory (the folder of ``mkdocs.yml``, Sphinx's ``confdir``,
or their ``working_dir`` option) and may embed one learner on many pages, or with several
calls. ``LoopCache`` imports each learner once, keeps its loops by call, and reloads it when
its file's modification time changes.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import LoopdocError, UsageError
from .model import Loop


@contextlib.contextmanager
def working_directory(path: str | os.PathLike[str]) -> Iterator[None]:
    """Run the body with ``path`` as the working directory, restoring the previous one afterwards.

    Args:
        path: an existing folder.

    Raises:
        OSError: ``path`` cannot be entered.
    """
    before = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def spec_file(spec: str, working_dir: str | os.PathLike[str]) -> Path | None:
    """The file a spec names, resolved against ``working_dir``, without loading anything.

    Args:
        spec: ``PATH.py[:ATTR]``, ``package.module[:ATTR]`` or ``PATH.json``.
        working_dir: the folder relative paths start from.

    Returns:
        The absolute path of the ``.py`` or ``.json`` file (which may not exist), or
        ``None`` for a module name (its file is known only once it is imported).

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


def _mtime(path: Path | None) -> int | None:
    try:
        return None if path is None else path.stat().st_mtime_ns
    except OSError:
        return None


@dataclass
class _Learner:
    """One loaded spec: the learner (or saved loop) and the error, if loading failed."""

    file: Path | None
    mtime: int | None
    loaded: Any = None
    saved: Loop | None = None
    error: LoopdocError | None = None
    loops: dict[str | None, Loop] = field(default_factory=dict)


class LoopCache:
    """Loops by ``(working_dir, spec, call)``; each learner is imported once while its file is unchanged.

    Attributes:
        loads: how many times a learner or saved model was actually loaded (for logs and tests).
    """

    def __init__(self, on_load: Callable[[str, float], None] | None = None) -> None:
        """Create an empty cache.

        Args:
            on_load: called as ``on_load(spec, seconds)`` after each real load (not after a cache hit).
        """
        self._entries: dict[tuple[str, str], _Learner] = {}
        self._on_load = on_load
        self.loads = 0

    def clear(self) -> None:
        """Forget every learner and loop (at the start of a build)."""
        self._entries.clear()

    def files(self) -> list[Path]:
        """The learner and model files loaded so far (failed ones included), sorted: to watch or to depend on."""
        return sorted({e.file for e in self._entries.values() if e.file is not None})

    def file(self, spec: str, working_dir: str | os.PathLike[str]) -> Path | None:
        """The file of a spec loaded (or tried) before: its ``.py`` or ``.json``, or a module's file.

        Args:
            spec: as given to ``get``.
            working_dir: as given to ``get``.

        Returns:
            The absolute path, or ``None`` when the spec was not tried or names no file.
        """
        entry = self._entries.get((str(Path(os.path.abspath(working_dir))), spec))
        return None if entry is None else entry.file

    def get(self, spec: str, call: str | None, working_dir: str | os.PathLike[str]) -> Loop:
        """The loop of ``call`` on the learner ``spec`` names, loading it only when needed.

        Loading runs with ``working_dir`` as the working directory, so that relative paths
        in the spec and the source locations shown in the loop are relative to it. A learner
        whose file changed since it was loaded (its modification time) is loaded again; a
        failure is remembered the same way, so a broken learner is tried once per change.

        Args:
            spec: as for ``loopdoc.load_loop``.
            call: the call to document, e.g. ``"fine_tune(2)"``, or ``None`` for ``fit``.
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
        if entry is not None and entry.mtime != _mtime(entry.file):
            entry = None
        if entry is None:
            entry = self._load(spec, folder)
            self._entries[key] = entry
        if entry.error is not None:
            raise entry.error
        if call not in entry.loops:
            with working_directory(folder):
                entry.loops[call] = self._loop(entry, spec, call)
        return entry.loops[call]

    def _load(self, spec: str, folder: Path) -> _Learner:
        try:
            file = spec_file(spec, folder)
        except LoopdocError as e:
            return _Learner(None, None, error=e)
        entry = _Learner(file, _mtime(file))
        start = time.perf_counter()
        try:
            with working_directory(folder):
                if spec.lower().endswith(".json"):
                    from .model import load_json

                    entry.saved = load_json(spec)
                else:
                    from .load import load

                    entry.loaded = load(spec)
                    if file is None and entry.loaded.namespace.get("__file__"):  # a module: now its file is known
                        entry.file = Path(os.path.abspath(entry.loaded.namespace["__file__"]))
                        entry.mtime = _mtime(entry.file)
        except LoopdocError as e:
            entry.error = e
        self.loads += 1
        if self._on_load is not None and entry.error is None:
            self._on_load(spec, time.perf_counter() - start)
        return entry

    @staticmethod
    def _loop(entry: _Learner, spec: str, call: str | None) -> Loop:
        if entry.saved is not None:
            if call is not None:
                raise UsageError(f"{spec}: call needs a learner; a saved model already holds the loop of one call")
            return entry.saved
        from . import loop

        loaded = entry.loaded
        return loop(loaded.learner, loaded_from=loaded.loaded_from, call=call, namespace=loaded.namespace)
