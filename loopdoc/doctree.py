"""docutils nodes from loopdoc's HTML fragment, for the Sphinx extension (``loopdoc.sphinx``).

The fragment (``loopdoc.rendering.fragment``, template ``fragment.html.jinja``) uses a small,
known vocabulary: paragraphs, bullet and numbered lists, tables, definition lists, admonitions
(``<div class="admonition note|warning">``), ``<details class="loopdoc-phase">`` blocks for
deeply nested phases, and inline ``code``, ``a``, ``strong``, ``em``; docstrings add what
markdown-it renders from Markdown (code blocks, quotes, strikethrough). ``fragment_nodes``
turns each into the docutils node a theme styles (``literal``, ``table``, ``bullet_list``,
``note``, ``admonition``, …; lists and tables get the classes ``loopdoc-list`` and
``loopdoc-table`` for ``loopdoc.publish.HOST_CSS``), so every Sphinx builder gets real nodes (HTML themes style them,
``text`` and ``latex`` write them) and no raw HTML reaches the page.

Only text ever becomes ``Text`` nodes, so model text stays text: the fragment escapes it, the
parser unescapes it, docutils escapes it again on output. Elements outside the vocabulary keep
their text and lose their markup; ``<hr>`` is dropped (a transition is not allowed there).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

from docutils import nodes

_VOID = {"br", "hr", "img", "input", "wbr", "col", "meta", "link"}
_INLINE = {"a", "code", "strong", "b", "em", "i", "s", "del", "span", "sub", "sup", "br", "kbd", "samp", "var", "small", "mark"}
_SPACE = re.compile(r"\s+")
_SAFE_URI = re.compile(r"^(?:https?:|file:|mailto:|[^:/?#]*(?:[/?#]|$))", re.IGNORECASE)
_LANGUAGE = re.compile(r"^language-([\w.+-]+)$")
_WRAP_COLUMN, _MAX_COLUMN = 24, 40  # a table column's width for non-HTML builders: text wraps past 24, a word up to 40


@dataclass
class _Element:
    """One element of the parsed fragment."""

    tag: str
    attrs: dict[str, str]
    children: list[_Element | str] = field(default_factory=list)

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def classes(self) -> list[str]:
        return self.attrs.get("class", "").split()


class _Parser(HTMLParser):
    """The fragment as a tree of ``_Element`` (end tags close the nearest open element of their name)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = _Element("root", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = _Element(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(element)
        if tag not in _VOID:
            self.stack.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(_Element(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def fragment_nodes(html: str, document: nodes.document | None = None) -> list[nodes.Node]:
    """The docutils body nodes of an HTML part of loopdoc's fragment (``FragmentPart.html``).

    Args:
        html: HTML as ``loopdoc.rendering.fragment`` makes it (no headings: the host makes sections).
        document: the document the nodes go into: ``id`` attributes (anchors of events,
            callbacks and nested phases) become node ids registered there, unless already taken.
            ``None``: ids are set on the nodes without registering.

    Returns:
        Body elements (paragraphs, lists, tables, admonitions, containers, literal blocks).
    """
    parser = _Parser()
    parser.feed(html)
    parser.close()
    return _Converter(document).blocks(parser.root.children)


class _Converter:
    def __init__(self, document: nodes.document | None) -> None:
        self.document = document

    # -- ids ---------------------------------------------------------------
    def identify(self, node: nodes.Element, element: _Element) -> nodes.Element:
        anchor = element.attrs.get("id")
        if not anchor:
            return node
        if self.document is None:
            node["ids"].append(anchor)
        elif anchor not in self.document.ids:
            node["ids"].append(anchor)
            self.document.ids[anchor] = node
        return node

    # -- block level -------------------------------------------------------
    def blocks(self, children: list[_Element | str]) -> list[nodes.Node]:
        """Body elements of a block's children: runs of text and inline elements become paragraphs; ``<br>`` starts a new one."""
        out: list[nodes.Node] = []
        run: list[_Element | str] = []

        def flush() -> None:
            paragraph = self.paragraph(run)
            if paragraph is not None:
                out.append(paragraph)
            run.clear()

        for child in children:
            if isinstance(child, str) or (child.tag in _INLINE and child.tag != "br"):
                run.append(child)
            elif child.tag == "br":
                flush()
            else:
                flush()
                out.extend(self.block(child))
        flush()
        return out

    def paragraph(self, children: list[_Element | str]) -> nodes.paragraph | None:
        inline = _trim(self.inline(children))
        if not inline:
            return None
        return nodes.paragraph("", "", *inline)

    def block(self, el: _Element) -> list[nodes.Node]:
        tag, classes = el.tag, el.classes()
        if tag == "p":
            return self.blocks(el.children)
        if tag in ("ul", "ol"):
            lst = (nodes.bullet_list(bullet="*", classes=["loopdoc-list"]) if tag == "ul"
                   else nodes.enumerated_list(enumtype="arabic", prefix="", suffix=".", classes=["loopdoc-list"]))
            for child in el.children:
                if isinstance(child, _Element) and child.tag == "li":
                    item = self.identify(nodes.list_item(), child)
                    item += self.blocks(child.children)
                    lst += item
            return [lst] if lst.children else []
        if tag == "table":
            return [self.table(el, [])]
        if tag == "dl":
            return self.definition_list(el)
        if tag == "pre":
            return [self.literal_block(el)]
        if tag == "blockquote":
            quote = nodes.block_quote()
            quote += self.blocks(el.children)
            return [quote]
        if tag == "details":
            return [self.details(el)]
        if tag == "div" and "admonition" in classes:
            return [self.admonition(el, classes)]
        if tag == "div" and "loopdoc-table" in classes:  # the table it holds gets the class (the host's CSS)
            out: list[nodes.Node] = []
            rest: list[_Element | str] = []
            for child in el.children:
                if isinstance(child, _Element) and child.tag == "table":
                    out += self.blocks(rest)
                    rest = []
                    out.append(self.table(child, ["loopdoc-table"]))
                else:
                    rest.append(child)
            return out + self.blocks(rest)
        if tag == "div" and "loopdoc-doc" in classes:
            box = nodes.container(classes=["loopdoc-doc"])
            box += self.blocks(el.children)
            return [box] if box.children else []
        if tag == "hr":
            return []
        if re.fullmatch(r"h[1-6]", tag):  # not in the fragment's HTML parts; kept as a bold paragraph
            inline = _trim(self.inline(el.children))
            return [nodes.paragraph("", "", nodes.strong("", "", *inline))] if inline else []
        return self.blocks(el.children)  # div, section, anything else: its content

    def admonition(self, el: _Element, classes: list[str]) -> nodes.Element:
        kind = "warning" if "warning" in classes else "note"
        children = list(el.children)
        title_el = next((c for c in children if isinstance(c, _Element) and "admonition-title" in c.classes()), None)
        if title_el is not None:
            children.remove(title_el)
        title = _SPACE.sub(" ", title_el.text()).strip() if title_el is not None else ""
        body = self.blocks(children)
        if title.lower() in ("", kind):
            node: nodes.Element = nodes.note() if kind == "note" else nodes.warning()
        else:
            node = nodes.admonition(classes=[kind])
            node += nodes.title(title, title)
        node += body
        return self.identify(node, el)

    def details(self, el: _Element) -> nodes.Element:
        """A nested phase: an admonition titled with the phase name, holding the phase and its own nested phases."""
        summary = next((c for c in el.children if isinstance(c, _Element) and c.tag == "summary"), None)
        title = _SPACE.sub(" ", summary.text()).strip() if summary is not None else ""
        node = self.identify(nodes.admonition(classes=[*el.classes()]), el)
        node += nodes.title(title, title)
        body = nodes.container(classes=["loopdoc-phase-body"])  # the text builder runs paragraphs of an admonition together
        body += self.blocks([c for c in el.children if c is not summary])
        node += body
        return node

    def table(self, el: _Element, classes: list[str]) -> nodes.table:
        head: list[_Element] = []
        body: list[_Element] = []
        for section in el.children:
            if not isinstance(section, _Element):
                continue
            if section.tag == "tr":
                body.append(section)
            elif section.tag in ("thead", "tbody", "tfoot"):
                rows = [r for r in section.children if isinstance(r, _Element) and r.tag == "tr"]
                (head if section.tag == "thead" else body).extend(rows)
        width = max((len(self.cells(r)) for r in head + body), default=1) or 1
        head_rows = [self.row(r, width) for r in head]
        body_rows = [self.row(r, width) for r in body]
        table = nodes.table(classes=["colwidths-auto", *classes])  # HTML: the browser sizes the columns
        group = nodes.tgroup(cols=width)
        table += group
        for i in range(width):  # text and LaTeX builders: columns as wide as their text, within limits
            texts = [row.children[i].astext() for row in head_rows + body_rows]
            longest_word = max((len(w) for text in texts for w in text.split()), default=1)
            longest = max((len(line) for text in texts for line in text.splitlines()), default=1)
            # + 2: the text builder quotes literals ("x")
            group += nodes.colspec(colwidth=min(_MAX_COLUMN, max(longest_word, min(longest, _WRAP_COLUMN))) + 2)
        if head_rows:
            thead = nodes.thead()
            thead += head_rows
            group += thead
        tbody = nodes.tbody()
        tbody += body_rows
        group += tbody
        return table

    @staticmethod
    def cells(row: _Element) -> list[_Element]:
        return [c for c in row.children if isinstance(c, _Element) and c.tag in ("td", "th")]

    def row(self, el: _Element, width: int) -> nodes.row:
        row = self.identify(nodes.row(), el)
        cells = self.cells(el)
        for i in range(width):
            entry = nodes.entry()
            if i < len(cells):
                entry += self.blocks(cells[i].children)
            row += entry
        return row

    def definition_list(self, el: _Element) -> list[nodes.Node]:
        dl = nodes.definition_list()
        item: nodes.definition_list_item | None = None
        for child in el.children:
            if not isinstance(child, _Element):
                continue
            if child.tag == "dt":
                item = nodes.definition_list_item()
                item += nodes.term("", "", *_trim(self.inline(child.children)))
                dl += item
            elif child.tag == "dd":
                if item is None or any(isinstance(c, nodes.definition) for c in item.children):
                    item = nodes.definition_list_item()
                    item += nodes.term("", "")
                    dl += item
                definition = nodes.definition()
                definition += self.blocks(child.children)
                item += definition
        for each in dl.children:  # a term without a definition is not valid docutils
            if not any(isinstance(c, nodes.definition) for c in each.children):
                each += nodes.definition()
        return [dl] if dl.children else []

    def literal_block(self, el: _Element) -> nodes.literal_block:
        text = el.text()
        if text.endswith("\n"):
            text = text[:-1]
        node = nodes.literal_block(text, text)
        code = next((c for c in el.children if isinstance(c, _Element) and c.tag == "code"), None)
        language = next((m.group(1) for c in (code.classes() if code else []) if (m := _LANGUAGE.match(c))), None)
        node["language"] = language if language and _known_lexer(language) else "none"
        return node

    # -- inline ------------------------------------------------------------
    def inline(self, children: list[_Element | str]) -> list[nodes.Node]:
        out: list[nodes.Node] = []
        for child in children:
            if isinstance(child, str):
                text = _SPACE.sub(" ", child)
                if text:
                    out.append(nodes.Text(text))
                continue
            tag = child.tag
            if tag == "code":
                text = child.text()
                out.append(nodes.literal(text, text))
            elif tag == "a":
                href = child.attrs.get("href", "")
                inner = self.inline(child.children)
                if href.startswith("#") and len(href) > 1:
                    out.append(nodes.reference("", "", *inner, refid=href[1:], internal=True))
                elif href and _SAFE_URI.match(href):
                    out.append(nodes.reference("", "", *inner, refuri=href))
                else:
                    out.extend(inner)
            elif tag in ("strong", "b"):
                out.append(nodes.strong("", "", *self.inline(child.children)))
            elif tag in ("em", "i"):
                out.append(nodes.emphasis("", "", *self.inline(child.children)))
            elif tag == "sub":
                out.append(nodes.subscript("", "", *self.inline(child.children)))
            elif tag == "sup":
                out.append(nodes.superscript("", "", *self.inline(child.children)))
            elif tag in ("s", "del"):
                out.append(nodes.inline("", "", *self.inline(child.children), classes=["strike"]))
            elif tag == "br":
                out.append(nodes.Text(" "))
            else:
                out.extend(self.inline(child.children))
        return out


def _trim(inline: list[nodes.Node]) -> list[nodes.Node]:
    """Inline nodes without the white space at their two ends (and none at all when there is only white space)."""
    out = list(inline)
    while out and isinstance(out[0], nodes.Text) and not out[0].strip():
        out.pop(0)
    while out and isinstance(out[-1], nodes.Text) and not out[-1].strip():
        out.pop()
    if out and isinstance(out[0], nodes.Text):
        out[0] = nodes.Text(out[0].lstrip())
    if out and isinstance(out[-1], nodes.Text):
        out[-1] = nodes.Text(out[-1].rstrip())
    return out


def _known_lexer(name: str) -> bool:
    try:
        from pygments.lexers import get_lexer_by_name
        from pygments.util import ClassNotFound
    except ImportError:  # pragma: no cover - Sphinx depends on Pygments
        return False
    try:
        get_lexer_by_name(name)
    except ClassNotFound:
        return False
    return True
