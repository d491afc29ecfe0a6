"""The mkdocs plugin: one line in a page embeds the training loop of a learner.

``mkdocs.yml``::

    plugins:
      - search
      - loopdoc:
          working_dir: .        # learner paths start here (default: the folder of mkdocs.yml)
          verbose: false        # steps and docstrings
          callbacks: true       # the Callbacks table
          heading_level: null   # level of the loop's top headings (default: one below the heading above)
          max_heading_depth: 3  # heading levels the phases use; deeper phases are nested <details> blocks
          source_url: null      # e.g. https://github.com/ORG/REPO/blob/main/{path}#L{line}
          lenient: false        # a learner that fails to load: a warning box instead of a failed build

A page::

    ::: loopdoc examples/synth.py:learn
        call: fine_tune(2)
        verbose: true

Each option of the plugin can be set for one block in the indented YAML below the line,
and so can ``call`` and ``title``. The loop becomes real headings (in the page's table
of contents, with the theme's permalinks) down to ``max_heading_depth`` levels, deeper phases
nested ``<details open>`` blocks (mkdocs-material styles them as collapsible admonitions), and
theme-styled HTML between them (``loopdoc.fragment``): model text is escaped, docstrings lose
any raw HTML. One small stylesheet (``assets/loopdoc/loopdoc.css``, added to ``extra_css``)
keeps identifiers in the tables whole and marks the nesting of those blocks where the theme
does not style ``<details>``.

A learner is imported once per build however many pages embed it; under ``mkdocs serve``
its file and every module of the user's it imports are watched, and an edit rebuilds the
site with the learner imported afresh. What the learner's code prints, and the frameworks'
warnings, are logged at debug level (``mkdocs build --verbose`` shows them). A learner that
fails to load fails the build (``PluginError`` naming the page, the spec and the error)
unless ``lenient``.
"""

from __future__ import annotations

import os
import re
import textwrap
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as etree

import yaml
from markdown import Markdown
from markdown.blockparser import BlockParser
from markdown.blockprocessors import BlockProcessor
from markdown.extensions import Extension
from markdown.util import AtomicString
from mkdocs.config import base
from mkdocs.config import config_options as c
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.plugins import BasePlugin, get_plugin_logger
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

from .errors import LoopdocError
from .publish import HOST_CSS, FailureBox, LoopCache, PublishOptions, failure_box, warnings_logged
from .rendering.fragment import FragmentPart, fragment_parts

log = get_plugin_logger(__name__)

STYLESHEET = "assets/loopdoc/loopdoc.css"
"""Where the plugin's stylesheet goes in the site (added to ``extra_css``)."""



class LoopdocConfig(base.Config):
    """The plugin's options in ``mkdocs.yml`` (all optional): ``working_dir`` and the site-wide
    ``loopdoc.publish.PublishOptions``.

    Attributes:
        working_dir: the folder learner specs are relative to, and the working directory
            while they load (so source paths are shown relative to it). Relative to
            ``mkdocs.yml``; default: the folder of ``mkdocs.yml``.
        verbose: add the steps and the docstrings (default ``false``).
        callbacks: add the Callbacks table (default ``true``).
        heading_level: level (1–6) of the loop's top headings; default: one below the
            last heading above the block (2 when there is none).
        max_heading_depth: how many heading levels the phases use (1–6, default 3); deeper
            phases are nested ``<details open>`` blocks.
        source_url: link source locations, e.g.
            ``https://github.com/ORG/REPO/blob/main/{path}#L{line}`` (see ``loopdoc render --source-url``).
        lenient: when a learner fails to load, show a warning box in the page and log a
            warning instead of failing the build (default ``false``).
    """

    working_dir = c.Optional(c.Dir(exists=True))
    verbose = c.Type(bool, default=False)
    callbacks = c.Type(bool, default=True)
    heading_level = c.Optional(c.Type(int))
    max_heading_depth = c.Type(int, default=3)
    source_url = c.Optional(c.Type(str))
    lenient = c.Type(bool, default=False)


class LoopdocPlugin(BasePlugin[LoopdocConfig]):
    """``plugins: [loopdoc]``: expands ``::: loopdoc SPEC`` blocks in pages (see the module docstring)."""

    def __init__(self) -> None:
        """Create the plugin; mkdocs keeps one instance across the rebuilds of ``mkdocs serve``."""
        self.cache = LoopCache(on_load=lambda spec, seconds: log.info(f"loaded {spec} ({seconds:.1f} s)"),
                               on_output=lambda spec, line: log.debug(f"{spec}: {line}"))
        self.page: Page | None = None
        self.working_dir = Path.cwd()
        self.site = PublishOptions()
        self.command = "build"
        self._server: Any = None
        self._watched: set[Path] = set()

    def on_startup(self, *, command: str, dirty: bool) -> None:
        """Note the command: under ``mkdocs serve`` the learners stay loaded between rebuilds (until one's files change).

        Args:
            command: ``"build"``, ``"serve"`` or ``"gh-deploy"``.
            dirty: mkdocs' ``--dirty`` flag (not used).
        """
        self.command = command

    def on_shutdown(self) -> None:
        """Stop the learners' worker processes."""
        self.cache.clear()

    def on_config(self, config: MkDocsConfig) -> MkDocsConfig:
        """Check the options, start a new build's cache and register the Markdown extension.

        Args:
            config: the site's configuration.

        Returns:
            ``config``, with the extension appended to ``markdown_extensions`` and the
            stylesheet to ``extra_css``.

        Raises:
            PluginError: a bad ``heading_level``, ``max_heading_depth`` or ``source_url``.
        """
        folder = os.path.dirname(config.config_file_path) if config.config_file_path else os.getcwd()
        self.working_dir = Path(os.path.abspath(self.config.working_dir or folder))
        site = {k: self.config[k] for k in PublishOptions.SITE}
        _check_options(site, "mkdocs.yml: plugins: loopdoc", block=False)
        self.site = PublishOptions(**site)
        config.markdown_extensions.append(_LoopdocExtension(self))
        if STYLESHEET not in config.extra_css:
            config.extra_css.append(STYLESHEET)
        return config

    def on_files(self, files: Files, *, config: MkDocsConfig) -> Files:
        """Add the stylesheet (``STYLESHEET``: ``loopdoc.publish.HOST_CSS``) to the site's files.

        Args:
            files: the site's files.
            config: the site's configuration.

        Returns:
            ``files``, with the stylesheet (unless the site has a file of that name).
        """
        if files.get_file_from_path(STYLESHEET) is None:
            files.append(File.generated(config, STYLESHEET, content=HOST_CSS))
        return files

    def on_page_markdown(self, markdown: str, *, page: Page, config: MkDocsConfig, files: Any) -> str:
        """Note the page being rendered, to name it in errors.

        Args:
            markdown: the page's Markdown, returned unchanged.
            page: the page.
            config: the site's configuration.
            files: the site's files.

        Returns:
            ``markdown``.
        """
        self.page = page
        return markdown

    def on_post_build(self, *, config: MkDocsConfig) -> None:
        """Under ``mkdocs serve``, watch the files the learners read (first used by this build); else stop the workers.

        Args:
            config: the site's configuration.
        """
        self._watch()
        if self.command != "serve":
            self.cache.clear()

    def on_serve(self, server: Any, *, config: MkDocsConfig, builder: Any) -> Any:
        """Watch every learner file the build loaded, so that ``mkdocs serve`` rebuilds when one changes.

        Args:
            server: mkdocs' ``LiveReloadServer``.
            config: the site's configuration.
            builder: the rebuild function (not used).

        Returns:
            ``server``.
        """
        self._server = server
        self._watch()
        return server

    def _watch(self) -> None:
        if self._server is None:
            return
        for path in self.cache.files():
            if path not in self._watched and path.exists():
                self._server.watch(str(path), recursive=False)
                self._watched.add(path)

    def expand(self, spec: str, options: dict[str, Any]) -> tuple[list[FragmentPart] | None, FailureBox | None]:
        """The parts of one block's loop (``loopdoc.fragment.fragment_parts``).

        Args:
            spec: the learner spec of the block.
            options: the block's options (checked; they override the plugin's), plus ``_level``
                (the heading level) and ``_prefix`` (the anchor prefix).

        Returns:
            ``(parts, None)``; or, when loading fails and ``lenient`` is set, ``(None, box)``
            after logging a warning.

        Raises:
            PluginError: the learner or a render failed and ``lenient`` is not set.
        """
        where = self.page.file.src_uri if self.page is not None else "(page)"
        level, prefix = options.pop("_level"), options.pop("_prefix")
        settings = self.site.merged(**options)
        try:
            with warnings_logged(lambda line: log.debug(f"{where}: ::: loopdoc {spec}: {line}")):
                loop = self.cache.get(spec, settings.call, self.working_dir)
                parts = fragment_parts(loop, verbose=settings.verbose, heading_level=level, title=settings.title,
                                       id_prefix=prefix, show_callbacks=settings.callbacks, source_url=settings.source_url,
                                       max_heading_depth=settings.max_heading_depth)
        except LoopdocError as e:
            message = f"{where}: ::: loopdoc {spec}: {e}"
            if not settings.lenient:
                raise PluginError(message) from e
            log.warning(message)
            return None, failure_box(spec, e)
        return parts, None


class _LoopdocExtension(Extension):
    """Registers the block processor with each page's ``Markdown`` instance."""

    def __init__(self, plugin: LoopdocPlugin) -> None:
        super().__init__()
        self.plugin = plugin

    def extendMarkdown(self, md: Markdown) -> None:  # noqa: N802 (Python-Markdown's name)
        """Add ``_LoopdocProcessor`` before mkdocstrings' ``:::`` processor (priority 75) and after code blocks (80).

        Args:
            md: the page's ``Markdown`` instance.
        """
        md.registerExtension(self)
        md.parser.blockprocessors.register(_LoopdocProcessor(md.parser, self.plugin), "loopdoc", 76)


class _LoopdocProcessor(BlockProcessor):
    """Replaces ``::: loopdoc SPEC`` (and its indented YAML options) with the loop's headings and HTML."""

    RE = re.compile(r"^::: *loopdoc\b[ \t]*(?P<spec>.*?)[ \t]*$", re.MULTILINE)

    def __init__(self, parser: BlockParser, plugin: LoopdocPlugin) -> None:
        super().__init__(parser)
        self.plugin = plugin
        self.count = 0  # loops on this page: the second one's anchors get a prefix

    def test(self, parent: etree.Element, block: str) -> bool:
        return bool(self.RE.search(block))

    def run(self, parent: etree.Element, blocks: list[str]) -> bool:
        block = blocks.pop(0)
        m = self.RE.search(block)
        assert m is not None
        if block[: m.start()].strip():
            self.parser.parseBlocks(parent, [block[: m.start()]])
        lines = block[m.end():].lstrip("\n").split("\n")
        option_lines = []
        while lines and lines[0][:1] in (" ", "\t"):
            option_lines.append(lines.pop(0))
        rest = "\n".join(lines)
        if rest.strip():
            blocks.insert(0, rest)
        where = self.plugin.page.file.src_uri if self.plugin.page is not None else "(page)"
        spec = m.group("spec")
        if not spec:
            raise PluginError(f"{where}: ::: loopdoc needs a learner, e.g. ::: loopdoc path/to/learner.py:learn")
        options = _parse_options("\n".join(option_lines), f"{where}: ::: loopdoc {spec}")
        self.count += 1
        options["_prefix"] = "" if self.count == 1 else f"loop{self.count}-"
        options["_level"] = options.get("heading_level") or self.plugin.site.heading_level or _level_below(self.parser.root)
        parts, failed = self.plugin.expand(spec, options)
        if parts is None:
            assert failed is not None
            box = etree.SubElement(parent, "div", {"class": "admonition warning loopdoc-error"})
            title = etree.SubElement(box, "p", {"class": "admonition-title"})
            title.text = AtomicString(failed.title)
            text = etree.SubElement(box, "p")
            text.text = AtomicString(failed.message)
            return True
        for part in parts:
            if part.level is not None:
                heading = etree.SubElement(parent, f"h{part.level}", {"id": part.anchor})
                heading.text = AtomicString(part.title)
            else:
                holder = etree.SubElement(parent, "p")
                holder.text = self.parser.md.htmlStash.store(part.html)
        return True


def _level_below(root: etree.Element) -> int:
    """One below the last heading so far in the page (2 when there is none), at most 6."""
    levels = [int(el.tag[1]) for el in root.iter() if isinstance(el.tag, str) and re.fullmatch(r"h[1-6]", el.tag)]
    return min(levels[-1] + 1, 6) if levels else 2


def _parse_options(text: str, where: str) -> dict[str, Any]:
    """The block's indented YAML options, checked.

    Raises:
        PluginError: not YAML, not a mapping, an unknown option or a value of the wrong type.
    """
    if not text.strip():
        return {}
    try:
        data = yaml.safe_load(_dedent(text))
    except yaml.YAMLError as e:
        raise PluginError(f"{where}: options are not valid YAML: {' '.join(str(e).split())}") from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise PluginError(f"{where}: options must be 'name: value' lines, got {type(data).__name__}")
    _check_options(data, where)
    return data


def _check_options(options: dict[str, Any], where: str, *, block: bool = True) -> None:
    """``PublishOptions.check``, its error as mkdocs' ``PluginError`` naming where the options are.

    Raises:
        PluginError: an unknown option, a value of the wrong type, a bad ``heading_level``,
            ``max_heading_depth`` or ``source_url``.
    """
    try:
        PublishOptions.check(options, block=block)
    except LoopdocError as e:
        raise PluginError(f"{where}: {e}") from e


def _dedent(text: str) -> str:
    return textwrap.dedent(text.expandtabs(4))
