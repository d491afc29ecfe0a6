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
        Relative to the longest ``sys.path`` entry holding it, when that entry is not the
        working directory or one of its parents (so an installed package shows as
        ``fastai/learner.py`` even from a virtualenv inside the project); else relative to
        the working directory when it lies under it and that is not ``/`` (your own files:
        ``examples/synth.py``); else absolute. Always with ``/`` separators. Raises nothing.
    """
    path = Path(os.path.abspath(filename))
    cwd = Path.cwd()
    entries = {Path(os.path.abspath(p)) for p in sys.path if p}
    installed = sorted((e for e in entries if not cwd.is_relative_to(e)), key=lambda e: -len(e.parts))
    for root in installed:
        if path.is_relative_to(root):
            return path.relative_to(root).as_posix()
    if cwd != Path(cwd.anchor) and path.is_relative_to(cwd):
        return path.relative_to(cwd).as_posix()
    return path.as_posix()
