"""The Sphinx extension: a ``.. loopdoc::`` directive embeds the training loop of a learner.

``conf.py``::

    extensions = ["loopdoc.sphinx"]
    loopdoc_working_dir = ".."   # learner paths start here, relative to conf.py's folder (default: that folder)
    loopdoc_verbose = False      # steps and docstrings
    loopdoc_callbacks = True     # the Callbacks table
    loopdoc_max_heading_depth = 3  # section levels the phases use; deeper phases are nested admonitions
    loopdoc_source_url = None    # e.g. "https://github.com/ORG/REPO/blob/main/{path}#L{line}"
    loopdoc_lenient = False      # a learner that fails to load: a warning box, not a failed build

A page::

    .. loopdoc:: examples/synth.py:learn
       :call: fine_tune(2)
       :verbose:

Options: ``:call:``, ``:verbose:``, ``:no-callbacks:``, ``:title:``, ``:source-url:``,
``:max-heading-depth:`` and ``:lenient:``. The loop's phases and its Callbacks table become
real sections (so they are in the toctree and the page's local table of contents), down to
``max_heading_depth`` levels; deeper phases are admonitions titled with the phase name, nested
in their parent's. The content is docutils nodes (``loopdoc.doctree``): ``literal`` for code,
a ``table`` for the Callbacks table, lists, paragraphs, ``note``/``warning``/``admonition`` for
notes and findings, so the theme styles them (furo, alabaster, the Read the Docs theme) and
every builder (``text``, ``latex``, …) writes them; no raw HTML. One small stylesheet
(``_static/loopdoc.css``: ``loopdoc.publish.HOST_CSS``) lets a wide table scroll inside its box.

A learner is imported once per build and process (``parallel_read_safe``), its file and every
module of the user's it imported are dependencies of the page (an edit of a sibling ``cbs.py``
re-reads it, with the learner imported afresh), what its code prints is logged only with
``-v``, and a learner that fails to load is reported
as an error at the directive's line (``file.rst:LINE: ERROR: …``) and fails the build (exit
status 1, as Sphinx's doctest does), unless lenient: then a warning at that line and a
warning box in the page.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.environment import BuildEnvironment
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

from . import __version__
from .doctree import fragment_nodes
from .errors import LoopdocError
from .publish import HOST_CSS, LoopCache, PublishOptions, failure_box, spec_file, warnings_logged
from .rendering.fragment import FragmentPart, fragment_parts

logger = logging.getLogger(__name__)
_CACHE = LoopCache(on_load=lambda spec, seconds: logger.info(f"loopdoc: loaded {spec} ({seconds:.1f} s)"),
                   on_output=lambda spec, line: logger.verbose(f"loopdoc: {spec}: {line}"))
STYLESHEET = "loopdoc.css"
"""The stylesheet's name in ``_static`` (``HOST_CSS``)."""
ENV_VERSION = 2
"""The layout of loopdoc's nodes in a doctree (1: raw HTML; 2: docutils nodes, nested phases as admonitions)."""


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
        "max-heading-depth": directives.positive_int,
        "lenient": directives.flag,
    }

    def run(self) -> list[nodes.Node]:
        """Load the loop (cached) and return its nodes.

        Returns:
            The summary's nodes, then a section per phase (down to ``max_heading_depth`` levels,
            deeper phases as nested admonitions) and one for the callbacks; on failure, an error
            system message (or, when lenient, a warning box).
        """
        spec = self.arguments[0].strip()
        folder = Path(self.config.loopdoc_working_dir)
        try:
            settings = self.settings()
        except LoopdocError as e:
            return [self.state.document.reporter.error(f"loopdoc {spec}: {e}", line=self.lineno)]
        try:
            self._depend(spec_file(spec, folder))
            with warnings_logged(lambda line: logger.verbose(f"loopdoc {spec}: {line}", location=self.get_location())):
                loop = _CACHE.get(spec, settings.call, folder)
                count = self.env.new_serialno("loopdoc")  # 0, 1, … within this document
                parts = fragment_parts(loop, verbose=settings.verbose, heading_level=1, title=settings.title,
                                       id_prefix="" if count == 0 else f"loop{count + 1}-",
                                       show_callbacks=settings.callbacks, source_url=settings.source_url,
                                       max_heading_depth=settings.max_heading_depth)
        except LoopdocError as e:
            return self._failure(spec, e, settings)
        finally:
            for path in _CACHE.file_list(spec, folder):
                self._depend(path)
        return self._sections(parts)

    def settings(self) -> PublishOptions:
        """The site's ``loopdoc_*`` values with this directive's options on top.

        Returns:
            The ``PublishOptions``.

        Raises:
            LoopdocError: a ``max_heading_depth`` (site or directive) outside 1–6.
        """
        config, options = self.config, self.options
        site = PublishOptions(verbose=config.loopdoc_verbose, callbacks=config.loopdoc_callbacks,
                              source_url=config.loopdoc_source_url, lenient=config.loopdoc_lenient,
                              max_heading_depth=config.loopdoc_max_heading_depth)
        block: dict[str, object] = {"call": options.get("call"), "title": options.get("title")}
        if "verbose" in options:
            block["verbose"] = True
        if "no-callbacks" in options:
            block["callbacks"] = False
        if "lenient" in options:
            block["lenient"] = True
        if "source-url" in options:
            block["source_url"] = options["source-url"]
        if "max-heading-depth" in options:
            block["max_heading_depth"] = options["max-heading-depth"]
        PublishOptions.check({"max_heading_depth": block.get("max_heading_depth", site.max_heading_depth)})
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
                body = fragment_nodes(part.html, document)
                if stack:
                    stack[-1][1].extend(body)
                else:
                    top.extend(body)
                continue
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
    if app.builder.format == "html":  # the stylesheet, in place before any page links it (its checksum)
        static = Path(app.outdir, "_static")
        static.mkdir(parents=True, exist_ok=True)
        target = static / STYLESHEET
        if not target.exists() or target.read_text(encoding="utf-8") != HOST_CSS:
            target.write_text(HOST_CSS, encoding="utf-8")


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
        The extension's metadata: its version, ``env_version`` (the layout of the nodes it puts
        in doctrees: a new one makes Sphinx re-read every page), and parallel read and write safety (both true).
    """
    app.add_config_value("loopdoc_working_dir", None, "env", types=(str, type(None)))
    app.add_config_value("loopdoc_verbose", False, "env", types=(bool,))
    app.add_config_value("loopdoc_callbacks", True, "env", types=(bool,))
    app.add_config_value("loopdoc_source_url", None, "env", types=(str, type(None)))
    app.add_config_value("loopdoc_lenient", False, "env", types=(bool,))
    app.add_config_value("loopdoc_max_heading_depth", 3, "env", types=(int, type(None)))
    app.add_css_file(STYLESHEET)
    app.add_directive("loopdoc", LoopdocDirective)
    app.connect("config-inited", _config_inited)
    app.connect("builder-inited", _builder_inited)
    app.connect("env-purge-doc", _purge_doc)
    app.connect("env-merge-info", _merge_info)
    app.connect("build-finished", _build_finished)
    return {"version": __version__, "env_version": ENV_VERSION, "parallel_read_safe": True, "parallel_write_safe": True}
