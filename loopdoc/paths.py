"""Paths as loopdoc shows them to readers: short, POSIX, the same on every machine."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def display_path(filename: str | os.PathLike[str]) -> str:
    """Return ``filename`` as readers should see it.

    Args:
        filename: a path, absolute or relative to the working directory.

    Returns:
        For an installed file (under ``sys.prefix``, ``sys.base_prefix`` or a
        site-packages folder — also a virtualenv inside the project): relative to the
        longest ``sys.path`` entry holding it, e.g. ``fastai/learner.py``. For any other
        file under the working directory (unless that is ``/``): relative to it, e.g.
        ``examples/synth.py``. Else relative to the longest ``sys.path`` entry holding it,
        else absolute. Always with ``/`` separators. Raises nothing.
    """
    path = Path(os.path.abspath(filename))
    cwd = Path.cwd()
    entries = sorted({Path(os.path.abspath(p)) for p in sys.path if p}, key=lambda e: -len(e.parts))
    on_path = next((e for e in entries if path.is_relative_to(e)), None)
    if on_path is not None and is_installed(path):
        return path.relative_to(on_path).as_posix()
    if cwd != Path(cwd.anchor) and path.is_relative_to(cwd):
        return path.relative_to(cwd).as_posix()
    if on_path is not None and on_path != Path(on_path.anchor):
        return path.relative_to(on_path).as_posix()
    return path.as_posix()


def is_installed(path: Path) -> bool:
    """Whether ``path`` belongs to the Python installation or a virtualenv, not to the user's project.

    Args:
        path: an absolute path.

    Returns:
        ``True`` under a ``site-packages``/``dist-packages`` folder or under ``sys.prefix``,
        ``sys.base_prefix`` or ``sys.exec_prefix`` (unless that is ``/``).
    """
    if any(part in ("site-packages", "dist-packages") for part in path.parts):
        return True
    prefixes = {Path(os.path.abspath(p)) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    return any(path.is_relative_to(p) for p in prefixes if p != Path(p.anchor))
