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
        The path relative to the working directory when it lies under it, else
        relative to the longest ``sys.path`` entry holding it (so installed
        packages show as ``fastai/learner.py``), else absolute; always with
        ``/`` separators. Raises nothing.
    """
    path = Path(os.path.abspath(filename))
    roots = [Path.cwd()] + sorted((Path(os.path.abspath(p)) for p in sys.path if p), key=lambda r: -len(r.parts))
    for root in roots:
        if path.is_relative_to(root):
            return path.relative_to(root).as_posix()
    return path.as_posix()
