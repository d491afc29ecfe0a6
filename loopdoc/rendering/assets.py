"""Files written next to a document: the matrix as an SVG image that a Markdown document or a model card shows.

``--assets DIR`` puts ``DIR/<document stem>-matrix.svg`` beside the document, and the document references it
by a relative URL. Neutral: knows neither a framework nor a template; writes through ``write_output`` (atomic).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from ..errors import OutputError, UsageError
from .output import check_output, write_output


@dataclass(frozen=True)
class Asset:
    """Where the matrix image of one document goes.

    Attributes:
        path: the SVG file to write.
        url: how the document refers to it: relative to the document's folder, POSIX separators, percent-encoded.
    """

    path: Path
    url: str


def matrix_asset(document: str, folder: str | os.PathLike[str], *, inputs: tuple[str, ...] = ()) -> Asset:
    """Check and name the matrix image of ``document`` in ``folder``, writing nothing.

    Args:
        document: the Markdown file the image goes with, or ``"-"`` (stdout: relative to the working directory).
        folder: the assets folder; it may not exist yet (``write_asset`` makes it).
        inputs: files that must not be overwritten (the spec read, the document itself).

    Returns:
        The ``Asset``: ``folder/<stem of document>-matrix.svg`` (``loop-matrix.svg`` for stdout).

    Raises:
        UsageError: the image would be one of ``inputs`` or the document.
        OutputError: ``folder`` is a file, or the image could not be written there (see ``check_output``).
    """
    base = Path(folder)
    if base.exists() and not base.is_dir():
        raise OutputError(f"{folder}: is not a folder (--assets)")
    stem = "loop" if document == "-" else Path(document).stem
    path = base / f"{stem}-matrix.svg"
    for other in (*inputs, document):
        if other and other != "-" and _same_file(path, Path(other)):
            raise UsageError(f"{path}: the matrix image would overwrite {other}; choose another --assets folder")
    if base.is_dir():
        check_output(str(path))
    start = Path.cwd() if document == "-" else Path(document).resolve().parent
    relative = os.path.relpath(path.resolve(), start)
    return Asset(path, quote(Path(relative).as_posix(), safe="/._-~"))


def write_asset(text: str, asset: Asset) -> None:
    """Write the image atomically, making its folder first if needed.

    Args:
        text: the SVG (``render(loop, "svg")``).
        asset: from ``matrix_asset``.

    Raises:
        OutputError: the folder could not be made or the file written.
    """
    try:
        asset.path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"{asset.path.parent}: cannot make the folder: {e.strerror or e}") from e
    write_output(text, str(asset.path))


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False
