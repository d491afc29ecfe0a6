"""Every Markdown output is inert under any CommonMark renderer with raw HTML on, and under python-markdown (issue 10, item 2).


The corpus: the hostile learner (``tests/fixtures/hostile/callbacks.py``), a saved loop whose every text
field is hostile (``tests/hostile_corpus.py``; through ``render`` and through ``loopdoc render x.json -o
x.md --title …``), a model card section, a diff (in-process and ``loopdoc diff a.json b.json -o x.md``) and a
trace. Each document is rendered to HTML by python-markdown (mkdocs' renderer, ``markdown.markdown``) and
by markdown-it-py in CommonMark mode with raw HTML on; html5lib parses the result. Each is compared with
the same document made from harmless text: the hostile one may have no element, attribute or comment the
harmless one lacks, beyond the formatting Markdown text itself may use (emphasis, code, lists, headings,
quotes, rules, line breaks). And the hostile markup must still be there, as text.
"""

from __future__ import annotations

import os

import html5lib
import markdown
import pytest
from helpers import ROOT
from hostile_corpus import HOSTILE, HOSTILE_LINE, Harmless, diff_pair, golden, hostile_id, hostile_text, loop_pair, rewrite, trace_of
from markdown_it import MarkdownIt

from loopdoc.analysis.diff import diff_loops
from loopdoc.card import update_card
from loopdoc.cli import main
from loopdoc.model import Loop
from loopdoc.rendering.documents import render, render_diff
from loopdoc.rendering.markdown import markdown_code, markdown_safe, markdown_text

pytestmark = [pytest.mark.fastai, pytest.mark.subprocess]

RENDERERS = {"python-markdown": markdown.markdown, "markdown-it": MarkdownIt("commonmark", {"html": True}).render}
# What Markdown text may make by itself (docstrings are Markdown): no attribute, no request, no script.
FORMATTING = {"em", "strong", "code", "pre", "p", "ul", "ol", "li", "blockquote", "hr", "br", "h1", "h2", "h3", "h4", "h5", "h6"}
CARD = "---\nlicense: mit\n---\n# Model\n\n## Training procedure\n\nTrained for a while.\n\n## Evaluation\n\nGood.\n"


def structure(html: str) -> tuple[set[str], set[tuple[str, str]], int, str]:
    """``(element names, (element, attribute) pairs, number of comments, all text)`` of an HTML document."""
    doc = html5lib.parse(html, namespaceHTMLElements=False)
    tags, attrs, comments = set(), set(), 0
    for el in doc.iter():
        if not isinstance(el.tag, str):
            comments += 1
            continue
        tags.add(el.tag)
        attrs |= {(el.tag, name) for name in el.attrib}
    return tags, attrs, comments, "".join(doc.itertext())


@pytest.fixture(scope="module")
def hostile_learner_loop() -> Loop:
    """The hostile fixture learner's loop, its megabyte docstrings cut (their size is tested elsewhere)."""
    from loopdoc import loop as extract
    from loopdoc.load import load

    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        loaded = load("tests/fixtures/hostile/callbacks.py")
        data = extract(loaded.learner, loaded_from=loaded.loaded_from).to_dict()
    finally:
        os.chdir(cwd)

    def cut(node):
        if isinstance(node, dict):
            return {k: (v[:2000] if k == "doc" and isinstance(v, str) else cut(v)) for k, v in node.items()}
        if isinstance(node, list):
            return [cut(v) for v in node]
        return node

    return Loop.from_dict(cut(data))


@pytest.fixture(scope="module")
def documents(hostile_learner_loop, tmp_path_factory) -> dict[str, tuple[str, str]]:
    """``{name: (hostile Markdown, harmless Markdown)}`` for every Markdown output loopdoc writes."""
    tmp = tmp_path_factory.mktemp("md")
    docs: dict[str, tuple[str, str]] = {}
    learner = hostile_learner_loop
    harmless = Harmless()
    tame = rewrite(learner.to_dict(), harmless, harmless)
    tame["framework"] = learner.to_dict()["framework"]  # the same wording for both
    docs["learner"] = (render(learner, "md"), render(Loop.from_dict(tame), "md"))

    hostile, plain = loop_pair()
    docs["saved loop"] = (render(hostile, "md", title=HOSTILE), render(plain, "md", title="A title"))
    docs["saved loop, verbose"] = (render(hostile, "md", verbose=True), render(plain, "md", verbose=True))
    docs["card"] = (update_card(CARD, hostile, title=HOSTILE).text, update_card(CARD, plain, title="A title").text)

    pages = []
    for loop, title in ((hostile, HOSTILE), (plain, "A title")):
        source, out = tmp / f"{len(pages)}.json", tmp / f"{len(pages)}.md"
        source.write_text(loop.to_json(), encoding="utf-8")
        assert main(["render", str(source), "-o", str(out), "--title", title]) == 0
        pages.append(out.read_text(encoding="utf-8"))
    docs["loopdoc render x.json -o x.md"] = (pages[0], pages[1])

    (h_old, h_new), (p_old, p_new) = diff_pair()
    docs["diff"] = (render_diff(diff_loops(h_old, h_new, set()), "md"), render_diff(diff_loops(p_old, p_new, set()), "md"))
    outs = []
    for old, new in ((h_old, h_new), (p_old, p_new)):
        a, b, out = tmp / f"a{len(outs)}.json", tmp / f"b{len(outs)}.json", tmp / f"d{len(outs)}.md"
        a.write_text(old.to_json(), encoding="utf-8")
        b.write_text(new.to_json(), encoding="utf-8")
        assert main(["diff", str(a), str(b), "-o", str(out)]) == 1
        outs.append(out.read_text(encoding="utf-8"))
    docs["loopdoc diff a.json b.json -o x.md"] = (outs[0], outs[1])

    plain_words = Harmless()
    plain_loop = Loop.from_dict(rewrite(golden(), plain_words, plain_words))
    docs["trace"] = (render(trace_of(hostile, hostile_text, hostile_id), "md", show_differences=True),
                     render(trace_of(plain_loop, plain_words, plain_words), "md", show_differences=True))
    return docs


DOCUMENTS = ["learner", "saved loop", "saved loop, verbose", "card", "loopdoc render x.json -o x.md", "diff",
             "loopdoc diff a.json b.json -o x.md", "trace"]


@pytest.mark.parametrize("renderer", list(RENDERERS))
@pytest.mark.parametrize("name", DOCUMENTS)
def test_markdown_output_is_inert(documents, name, renderer):
    hostile_md, harmless_md = documents[name]
    render_html = RENDERERS[renderer]
    tags, attrs, comments, text = structure(render_html(hostile_md))
    plain_tags, plain_attrs, plain_comments, _ = structure(render_html(harmless_md))
    assert tags - plain_tags - FORMATTING == set(), f"elements made from model text: {sorted(tags - plain_tags - FORMATTING)}"
    assert attrs - plain_attrs == set(), f"attributes made from model text: {sorted(attrs - plain_attrs)}"
    assert comments <= plain_comments, "a comment made from model text (it could hide the rest of the page)"
    # The markup is shown, not dropped.
    assert "onerror=alert(1)" in text
    if name != "learner":
        assert "<iframe src=javascript:alert(7)></iframe>" in text or "&lt;iframe src=javascript:alert(7)&gt;&lt;/iframe&gt;" in text


def test_the_corpus_would_run_script_unescaped():
    """The check above can fail: the same hostile text, put into Markdown raw, makes the elements it forbids."""
    raw = f"- {HOSTILE_LINE}\n\n{HOSTILE}\n"
    for render_html in RENDERERS.values():
        tags, attrs, _, _ = structure(render_html(raw))
        assert {"img", "script", "a"} <= tags or ("img", "onerror") in attrs


def test_code_spans_are_fenced_past_every_backtick_run():
    assert markdown_code("plain") == "`plain`"
    assert markdown_code("a`b") == "`` a`b ``"
    assert markdown_code("x``y`") == "``` x``y` ```"
    assert markdown_code("`````") == "`````` ````` ``````"
    assert markdown_code("") == "" and markdown_code(None) == ""
    for text in ("<b>`x`</b>", "`` <img src=x onerror=y> ``", "```"):
        html = MarkdownIt("commonmark", {"html": True}).renderInline(markdown_code(text))
        assert html == f"<code>{text.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')}</code>", html


def test_literal_text_and_markdown_text():
    """What each filter does to the characters that matter, and what it leaves alone (so goldens keep their bytes)."""
    assert markdown_text("examples/custom_callbacks.py") == "examples/custom_callbacks.py"
    assert markdown_text("<b>&_x_*[y]`{") == "&lt;b&gt;&amp;\\_x\\_\\*\\[y\\]\\`&#123;"
    assert markdown_safe("only when (`len(self.yb) > 0`)") == "only when (`len(self.yb) > 0`)"
    assert markdown_safe("a < b `c < d` e") == "a &lt; b `c < d` e"
    assert markdown_safe("`open\n<div>` close") == "\\`open\n&lt;div&gt;\\` close", "no code span across lines"
    assert markdown_safe("\\<b> \\& \\*") == "&lt;b&gt; &amp; \\*", "\\< is no escape in python-markdown"
    assert markdown_safe("> quoted <i>") == "> quoted &lt;i&gt;"
    assert markdown_safe("> quoted", block=False) == "&gt; quoted"
    assert markdown_safe("```python\nx = a<b`c`\n```") == "```python\nx = a&lt;b&#96;c&#96;\n```"
    assert markdown_safe("```py <b>\nx\n```") == "```py\nx\n```".replace("```py", "```"), "an info string with markup is dropped"
    assert markdown_safe("ends with \\") == "ends with \\\\"
