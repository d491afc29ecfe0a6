"""What a ``Loop`` shows in Jupyter: an HTML fragment (themed by the notebook) and the Markdown format.

Reached from the model lazily (``loopdoc.model.loop._notebook``), the model layer's one back-edge.
"""

from __future__ import annotations

import hashlib
import html

from ..model.loop import Loop


def notebook_view(kind: str, loop: Loop) -> str:
    """The notebook view ``kind`` of ``loop``.

    Args:
        kind: ``"html"``: a ``<details>`` (collapsed) whose summary reads "Training loop of
            LOADED_FROM: fastai 2.8.12, ``fit``, 11 callbacks, 24 events", around
            ``loopdoc.rendering.fragment.render_fragment`` (a fragment, not a page; verbose; its top
            headings h3), its anchors prefixed with a hash of the model so that two different loops in
            one notebook do not share ids; ``"md"``: ``render(loop, "md")``.
        loop: the model.

    Returns:
        The text.

    Raises:
        ValueError: an unknown ``kind``.
    """
    if kind == "html":
        from .fragment import render_fragment
        from .text import printable_text

        prefix = "loopdoc-" + hashlib.sha256(loop.to_json().encode("utf-8")).hexdigest()[:8] + "-"
        fragment = render_fragment(loop, verbose=True, heading_level=3, id_prefix=prefix)
        title = html.escape(printable_text(f"Training loop of {loop.learner.loaded_from}"))
        counts = html.escape(printable_text(loop.headline().rpartition(": ")[2]))
        framework = html.escape(printable_text(f"{loop.framework.name} {loop.framework.version}"))
        call = html.escape(printable_text(loop.call))
        return (f'<details class="loopdoc-notebook">\n<summary><strong>{title}</strong>: {framework}, '
                f"<code>{call}</code>, {counts}</summary>\n{fragment}</details>\n")
    if kind == "md":
        from .documents import render

        return render(loop, "md")
    raise ValueError(f"unknown notebook view {kind!r}")
