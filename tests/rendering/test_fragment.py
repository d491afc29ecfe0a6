"""HTML fragments and sections for docs sites and notebooks (``loopdoc.rendering.fragment``, ``.notebook``), on the
golden models (no framework)."""

from __future__ import annotations

import re

import html5lib
import pytest
from helpers import GOLDEN

from loopdoc.errors import UsageError
from loopdoc.model import Loop, load_json


def test_notebook_views() -> None:
    loop = load_json(str(GOLDEN / "custom_callbacks.json"))
    html = loop._repr_html_()  # a collapsed <details> around the fragment: tests/integration/test_notebook.py
    assert html.startswith('<details class="loopdoc-notebook">') and html.endswith("</div>\n</details>\n")
    for tag in ("<html", "<head", "<body", "<style", "<script", "<link"):
        assert tag not in html
    html5lib.HTMLParser(strict=True).parseFragment(html)
    ids = re.findall(r'id="([^"]+)"', html)
    assert ids and len(ids) == len(set(ids)) and all(re.fullmatch(r"loopdoc-[0-9a-f]{8}-.+", i) for i in ids)
    assert "Training loop of examples/custom_callbacks.py:learn" in html
    assert html == loop._repr_html_()  # deterministic
    from loopdoc.render import render

    assert loop._repr_markdown_() == render(loop, "md")


def test_fragment_parts_cut_at_every_heading() -> None:
    from loopdoc.rendering.fragment import fragment_parts

    loop: Loop = load_json(str(GOLDEN / "synth.json"))
    parts = fragment_parts(loop, heading_level=3, title="T", id_prefix="x-")
    headings = [(p.level, p.anchor, p.title) for p in parts if p.level]
    assert headings[0] == (3, "x-loop", "T")
    assert (4, "x-phase-fit", "fit") in headings and (5, "x-phase-fit-epoch", "epoch") in headings
    assert headings[-1] == (4, "x-callbacks", "Callbacks")
    assert all(p.html.strip() for p in parts) and all("loopdoc-heading" not in p.html for p in parts if p.level is None)
    with pytest.raises(UsageError):
        fragment_parts(loop, heading_level=7)
    with pytest.raises(UsageError):
        fragment_parts(loop, id_prefix='"><script>')


def test_fragment_docstrings_keep_python_names_as_the_page_does() -> None:
    """``__init__`` and ``*args`` written without backticks: the docs-host fragment shows them as loopdoc's page does."""
    from loopdoc.rendering.fragment import markdown_fragment
    from loopdoc.rendering.markdown import markdown_to_html

    text = "Calls __init__ with *args and **kwargs; **bold** stays."
    assert str(markdown_fragment(text)) == str(markdown_to_html(text)) == (
        "<p>Calls __init__ with *args and **kwargs; <strong>bold</strong> stays.</p>\n")
