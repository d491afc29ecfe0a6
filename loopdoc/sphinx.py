"""The Sphinx extension: a ``.. loopdoc::`` directive embeds the training loop of a learner.

``conf.py``::

    extensions = ["loopdoc.sphinx"]
    loopdoc_working_dir = ".."   # learner paths start here, relative to conf.py's folder (default: that folder)
    loopdoc_verbose = False      # steps and docstrings
    loopdoc_callbacks = True     # the Callbacks table
    loopdoc_source_url = None    # e.g. "https://github.com/ORG/REPO/blob/main/{path}#L{line}"
    loopdoc_lenient = False      # a learner that fails to load: a warning box, not a failed build

A page::

    .. loopdoc:: examples/synth.py:learn
       :call: fine_tune(2)
       :verbose:

Options: ``:call:``, ``:verbose:``, ``:no-callbacks:``, ``:title:``, ``:source-url:`` and
``:lenient:``. The loop's phases and its Callbacks table become real sections (so they are
in the toctree and the page's local table of contents), each holding HTML for HTML builders
(``loopdoc.fragment``); other builders get the plain-text tree instead.

A learner is imported once per build and process (``parallel_read_safe``), its file is a
dependency of the page (an edit re-reads it), and a learner that fails to load is reported
as an error at the directive's line (``file.rst:LINE: ERROR: …``) and fails the build (exit
status 1, as Sphinx's doctest does), unless lenient: then a warning at that line and a
warning box in the page.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.environment import BuildEnvironment
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

from . import __version__
from .errors import LoopdocError
from .publish import LoopCache, PublishOptions, failure_box, spec_file
from .rendering.fragment import FragmentPart, fragment_parts

logger = logging.getLogger(__name__)
_CACHE = LoopCache(on_load=lambda spec, seconds: logger.info(f"loopdoc: loaded {spec} ({seconds:.1f} s)"))


class LoopdocDirective(SphinxDirective):
    """``.. loopdoc:: SPEC``: the loop of a learner (``learner.py[:ATTR]``, ``package.module[:ATTR]``, ``loop.json``)."""

    required_arguments = 1
    final_argument_whitespace = True
    has_content = False
    option_spec = {
        "call": directives.unchanged_required,
        "verbose": directives.flag,
        "no-callbacks": directives.flag,
        "title": directives.unchanged_required,
        "source-url": directives.unchanged_required,
        "lenient": directives.flag,
    }

    def run(self) -> list[nodes.Node]:
        """Load the loop (cached) and return its nodes.

        Returns:
            An ``only`` node for HTML builders (the summary as raw HTML, then a section per phase
            and one for the callbacks, each with raw HTML) and one for the others (a literal block
            of the text tree); on failure, an error system message (or, when lenient, a warning box).
        """
        spec = self.arguments[0].strip()
        folder = Path(self.config.loopdoc_working_dir)
        settings = self.settings()
        try:
            self._depend(spec_file(spec, folder))
            loop = _CACHE.get(spec, settings.call, folder)
            count = self.env.new_serialno("loopdoc")  # 0, 1, … within this document
            parts = fragment_parts(loop, verbose=settings.verbose, heading_level=1, title=settings.title,
                                   id_prefix="" if count == 0 else f"loop{count + 1}-",
                                   show_callbacks=settings.callbacks, source_url=settings.source_url)
            from .rendering.documents import render

            text = render(loop, "txt", verbose=settings.verbose)
        except LoopdocError as e:
            return self._failure(spec, e, settings)
        finally:
            for path in _CACHE.file_list(spec, folder):
                self._depend(path)
        html = addnodes.only(expr="html")
        html += self._sections(parts)
        other = addnodes.only(expr="not html")
        other += nodes.literal_block(text, text)
        return [html, other]

    def settings(self) -> PublishOptions:
        """The site's ``loopdoc_*`` values with this directive's options on top.

        Returns:
            The ``PublishOptions``.
        """
        config, options = self.config, self.options
        site = PublishOptions(verbose=config.loopdoc_verbose, callbacks=config.loopdoc_callbacks,
                              source_url=config.loopdoc_source_url, lenient=config.loopdoc_lenient)
        block: dict[str, object] = {"call": options.get("call"), "title": options.get("title")}
        if "verbose" in options:
            block["verbose"] = True
        if "no-callbacks" in options:
            block["callbacks"] = False
        if "lenient" in options:
            block["lenient"] = True
        if "source-url" in options:
            block["source_url"] = options["source-url"]
        return site.merged(**block)

    def _depend(self, path: Path | None) -> None:
        if path is not None:
            self.env.note_dependency(str(path))

    def _sections(self, parts: list[FragmentPart]) -> list[nodes.Node]:
        """Nest the parts: a heading opens a section inside the last one of a lower level."""
        document = self.state.document
        top: list[nodes.Node] = []
        stack: list[tuple[int, nodes.section]] = []
        for part in parts:
            if part.level is None:
                node: nodes.Node = nodes.raw("", part.html, format="html")
            else:
                while stack and stack[-1][0] >= part.level:
                    stack.pop()
                node = nodes.section()
                node += nodes.title(part.title, part.title)
                if part.anchor and part.anchor not in document.ids:
                    node["ids"].append(part.anchor)
                    document.ids[part.anchor] = node
                else:
                    document.set_id(node)
            if stack:
                stack[-1][1].append(node)
            else:
                top.append(node)
            if part.level is not None:
                stack.append((part.level, node))
        return top

    def _failure(self, spec: str, error: LoopdocError, settings: PublishOptions) -> list[nodes.Node]:
        message = f"loopdoc {spec}: {error}"
        if settings.lenient:
            logger.warning(message, location=self.get_location())
            failed = failure_box(spec, error)
            box = nodes.warning()
            box += nodes.paragraph(text=failed.title)
            box += nodes.paragraph(text=failed.message)
            return [box]
        _failures(self.env).setdefault(self.env.docname, []).append(message)
        return [self.state.document.reporter.error(message, line=self.lineno)]


def _failures(env: BuildEnvironment) -> dict[str, list[str]]:
    """Learners that failed to load, by document: kept in the environment (pickled, merged after parallel reads)."""
    if not hasattr(env, "loopdoc_failures"):
        env.loopdoc_failures = {}  # type: ignore[attr-defined]
    return env.loopdoc_failures  # type: ignore[attr-defined]


def _config_inited(app: Sphinx, config: Config) -> None:
    config.loopdoc_working_dir = str(Path(app.confdir, config.loopdoc_working_dir or ".").resolve())


def _builder_inited(app: Sphinx) -> None:
    _CACHE.clear()


def _purge_doc(app: Sphinx, env: BuildEnvironment, docname: str) -> None:
    _failures(env).pop(docname, None)


def _merge_info(app: Sphinx, env: BuildEnvironment, docnames: set[str], other: BuildEnvironment) -> None:
    for docname, messages in _failures(other).items():
        if docname in docnames:
            _failures(env)[docname] = messages


def _build_finished(app: Sphinx, exception: Exception | None) -> None:
    _CACHE.clear()  # stop the learners' worker processes
    failures = _failures(app.env)
    if exception is None and failures:
        count = sum(len(m) for m in failures.values())
        logger.error(f"loopdoc: {count} learner(s) failed to load in {', '.join(sorted(failures))}; the build failed "
                     f"(set loopdoc_lenient = True to build anyway)")
        app.statuscode = 1


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the ``loopdoc`` directive and its configuration values.

    Args:
        app: the Sphinx application.

    Returns:
        The extension's metadata: its version, and parallel read and write safety (both true).
    """
    app.add_config_value("loopdoc_working_dir", None, "env", types=(str, type(None)))
    app.add_config_value("loopdoc_verbose", False, "env", types=(bool,))
    app.add_config_value("loopdoc_callbacks", True, "env", types=(bool,))
    app.add_config_value("loopdoc_source_url", None, "env", types=(str, type(None)))
    app.add_config_value("loopdoc_lenient", False, "env", types=(bool,))
    app.add_directive("loopdoc", LoopdocDirective)
    app.connect("config-inited", _config_inited)
    app.connect("builder-inited", _builder_inited)
    app.connect("env-purge-doc", _purge_doc)
    app.connect("env-merge-info", _merge_info)
    app.connect("build-finished", _build_finished)
    return {"version": __version__, "parallel_read_safe": True, "parallel_write_safe": True}
