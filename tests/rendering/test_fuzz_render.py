"""Fuzz the template layer: hypothesis-made names and docstrings through every output format.

Loops are ``tests/golden/synth.json``'s model with text fields replaced (no fastai needed).
Text is any Unicode (lone surrogates and control characters included) mixed with fragments
that mean something to HTML, Markdown, Jinja or a terminal. What must hold:

- HTML parses as HTML5 (html5lib, strict); its only ``<script>`` is loopdoc's own (the same
  text as in the unfuzzed page); no ``on*`` attribute; no ``javascript:`` (or ``vbscript:``,
  ``data:``) URL; Jinja syntax from the input is never evaluated;
- JSON reads back (through the file, the schema and ``Loop.from_dict``) to the same model;
- Markdown: fields shown in code spans or as one-line paragraphs (names, descriptions, code)
  leave the block structure exactly as in the unfuzzed rendering; docstrings and notes (which
  are Markdown) may add blocks only inside their own list item or quote: the top-level blocks
  stay the same;
- text has no control character (a terminal would act on ESC) and names every event.
"""

from __future__ import annotations

import copy
import json
import re

import html5lib
from helpers import ROOT
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from loopdoc.model import Loop, load_json
from loopdoc.render import render, write_output
from loopdoc.rendering.text import printable_text

BASE = json.loads((ROOT / "tests" / "golden" / "synth.json").read_text(encoding="utf-8"))
NOT_TEXT = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
FRAGMENTS = [
    "<script>alert(1)</script>", "</script>", "<img src=x onerror=alert(1)>", "<a href='javascript:alert(1)'>x</a>",
    "[x](javascript:alert(1))", "[x](JaVaScRiPt:alert(1))", "[x](java&#9;script:alert(1))", "[x](vbscript:x)",
    "[x](data:text/html,<script>alert(1)</script>)", "<javascript:alert(1)>", "![i](http://example.com/i.png)",
    "<http://example.com>", "<!--", "-->", "]]>", "<![CDATA[", "<div>", "</div>", "<details open>", "<style>", "<?php",
    "{{ 12345679*9 }}", "{% for x in y %}", "{% endfor %}", "{# c #}", "{%", "%}", "{{", "}}", "{% raw %}",
    "`", "``", "```", "~~~", "\n```python\n", "\n# ", "\n## H\n", "\n===\n", "\n---\n", "\n***\n", "\n- ", "\n1. ", "\n> ",
    "\n    ", "\n\n", "\n", "\r", "\r\n", "\t", "|", "\\", "\\`", "*", "**", "_", "__", "~~", "&", "&amp;", "&#0;", "&lt;",
    "\x00", "\x1b[2J", "\x1b]0;owned\x07", "\x7f", "\x85", "\u2028", "\u2029", "\ufeff", "\ufffe", "\udcff", "\ud800", "é", "—", "𝕏",
    "javascript:alert(1)", "'", '"', "<", ">", "=", "#", "[", "]", "(", ")", "!",
]
anything = st.characters(exclude_categories=())  # every code point, surrogates included
text = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(anything, max_size=8)), max_size=10).map("".join)
nonempty = text.filter(bool)
visible = text.filter(lambda s: printable_text(s).strip())  # an empty description is left out, not broken

# The fields shown in code spans or one-line paragraphs ("inline"), and those that are Markdown.
INLINE = ("cb_name", "cb_qualname", "cb_file", "h_function", "h_defined_by", "h_file", "loaded_from", "model", "loss", "opt",
          "metric", "call", "event_description", "phase_description", "step_code", "step_condition", "title")
MARKDOWN = ("cb_doc", "h_doc", "note")


def _events(data: dict) -> list[dict]:
    out, stack = [], list(data["phases"])
    while stack:
        node = stack.pop(0)
        if node["kind"] == "phase":
            stack[:0] = node["children"]
        elif node["kind"] == "event":
            out.append(node)
    return out


def _first(data: dict, kind: str) -> dict:
    stack = list(data["phases"])
    while stack:
        node = stack.pop(0)
        if node["kind"] == kind:
            return node
        if node["kind"] == "phase":
            stack[:0] = node["children"]
    raise AssertionError(kind)


def fuzzed(values: dict[str, str]) -> tuple[Loop, str | None]:
    """The synth model with the fields in ``values`` replaced; returns ``(loop, title)``.

    Callback and handler fields change on every callback and handler; the event, phase and
    step fields on the first of each.
    """
    data = copy.deepcopy(BASE)
    for cb in data["callbacks"]:
        cb["name"] = values.get("cb_name", cb["name"])
        cb["qualname"] = values.get("cb_qualname", cb["qualname"])
        cb["doc"] = values.get("cb_doc", cb["doc"])
        if cb["source"] and "cb_file" in values:
            cb["source"]["file"] = values["cb_file"]
    for event in _events(data):
        for h in event["handlers"]:
            h["function"] = values.get("h_function", h["function"])
            h["defined_by"] = values.get("h_defined_by", h["defined_by"])
            h["doc"] = values.get("h_doc", h["doc"])
            if h["source"] and "h_file" in values:
                h["source"]["file"] = values["h_file"]
    learner = data["learner"]
    learner["loaded_from"] = values.get("loaded_from", learner["loaded_from"])
    learner["model"] = values.get("model", learner["model"])
    learner["loss_func"] = values.get("loss", learner["loss_func"])
    learner["opt_func"] = values.get("opt", learner["opt_func"])
    if "metric" in values:
        learner["metrics"] = [values["metric"], "accuracy"]
    data["call"] = values.get("call", data["call"])
    if "note" in values:
        data["notes"] = [values["note"], "A second note."]
    _first(data, "event")["description"] = values.get("event_description", _first(data, "event")["description"])
    phase = data["phases"][1]
    phase["description"] = values.get("phase_description", phase["description"])
    step = _first(data, "step")
    step["code"] = values.get("step_code", step["code"])
    step["condition"] = values.get("step_condition", step["condition"])
    return Loop.from_dict(data), values.get("title")


def values_for(fields: tuple[str, ...], values: st.SearchStrategy[str] = nonempty) -> st.SearchStrategy[dict[str, str]]:
    """A dict giving some of ``fields`` (at least one) a fuzzed value."""
    return st.dictionaries(st.sampled_from(fields), values, min_size=1, max_size=len(fields))


FUZZ = settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow],
               phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink])  # no slow "explain" phase


def tame(values: dict[str, str]) -> dict[str, str]:
    """The same fields set to a plain word: the rendering to compare a fuzzed one with."""
    return dict.fromkeys(values, "Plain")
SOURCE_URL = "https://example.com/blob/main/{path}#L{line}"


# --- HTML ------------------------------------------------------------------------------------------------------------


def parse_html(page: str):
    """Parse as the browser would get it: the UTF-8 bytes ``write_output`` writes, decoded."""
    data = page.encode("utf-8", errors="backslashreplace").decode("utf-8")
    return html5lib.HTMLParser(strict=True, namespaceHTMLElements=False).parse(data)


def scripts(doc) -> list[str]:
    return ["".join(el.itertext()) for el in doc.iter("script")]


PLAIN_SCRIPTS = scripts(parse_html(render(Loop.from_dict(BASE), "html")))
BAD_URL = re.compile(r"^(javascript|vbscript|data):", re.I)


@FUZZ
@given(values=values_for(INLINE + MARKDOWN), linked=st.booleans())
def test_html_is_valid_and_runs_nothing_from_input(values, linked):
    loop, title = fuzzed(values)
    page = render(loop, "html", title=title, source_url=SOURCE_URL if linked else None)
    doc = parse_html(page)  # raises on any HTML5 parse error
    assert scripts(doc) == PLAIN_SCRIPTS, "the only script is loopdoc's own, unchanged"
    for el in doc.iter():
        assert el.tag not in ("img", "iframe", "object", "embed", "form", "base", "link", "svg", "math"), el.tag
        for attr, value in el.attrib.items():
            assert not attr.lower().startswith("on"), (el.tag, attr, value)
            if attr.lower() in ("href", "src", "action", "formaction", "xlink:href", "srcdoc"):
                assert not BAD_URL.match(re.sub(r"[\x00-\x20]", "", value)), (el.tag, attr, value)
    assert "111111111" not in "".join(doc.find("body").itertext()), "Jinja syntax in the input is never evaluated"


# --- JSON ------------------------------------------------------------------------------------------------------------


@FUZZ
@given(values=values_for(INLINE + MARKDOWN))
def test_json_round_trips_through_the_file(values, tmp_path_factory):
    loop, _ = fuzzed(values)
    text = render(loop, "json")
    assert Loop.from_dict(json.loads(text)) == loop
    path = tmp_path_factory.mktemp("json") / "loop.json"
    write_output(text, str(path))  # lone surrogates become \udcxx escapes, which JSON reads back
    assert load_json(str(path)) == loop


# --- Markdown --------------------------------------------------------------------------------------------------------

MD = MarkdownIt("commonmark").enable(["table", "strikethrough"])


def blocks(md: str, top_only: bool = False) -> list[tuple[str, str, int]]:
    """The block structure: ``(type, tag, level)`` of every block token (inline content left out)."""
    return [(t.type, t.tag, t.level) for t in MD.parse(md) if not top_only or t.level == 0]


@FUZZ
@given(values=values_for(INLINE, visible))
def test_markdown_names_and_descriptions_stay_in_their_place(values):
    """Code spans, table cells and one-line paragraphs: the whole block structure is unchanged."""
    loop, title = fuzzed(values)
    md = render(loop, "md", title=title, source_url=SOURCE_URL)
    plain, plain_title = fuzzed(tame(values))
    assert blocks(md) == blocks(render(plain, "md", title=plain_title, source_url=SOURCE_URL))
    assert not NOT_TEXT.search(md)


@FUZZ
@given(values=values_for(MARKDOWN))
def test_markdown_docstrings_stay_in_their_list_items(values):
    """Docstrings and notes are Markdown: they may hold blocks, but only inside their own item or quote."""
    loop, _ = fuzzed(values)
    md, plain = render(loop, "md"), render(fuzzed(tame(values))[0], "md")
    assert blocks(md, top_only=True) == blocks(plain, top_only=True)
    assert not NOT_TEXT.search(md)


# --- text --------------------------------------------------------------------------------------------------------------

EVENT_NAMES = sorted({e["name"] for e in _events(BASE)})


@FUZZ
@given(values=values_for(INLINE + MARKDOWN), verbose=st.booleans())
def test_text_has_no_control_characters(values, verbose):
    loop, title = fuzzed(values)
    txt = render(loop, "txt", verbose=verbose, title=title)
    assert not NOT_TEXT.search(txt), repr(NOT_TEXT.search(txt))
    assert txt.endswith("\n")
    for name in EVENT_NAMES:
        assert name in txt
