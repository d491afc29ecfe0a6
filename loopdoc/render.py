"""The public rendering API, re-exported from ``loopdoc.rendering``: ``render``, ``render_diff``, formats and output."""

from .rendering.documents import render, render_diff
from .rendering.output import FORMATS, check_output, format_for, write_output

__all__ = ["FORMATS", "check_output", "format_for", "render", "render_diff", "write_output"]
