"""What a ``Loop`` shows in Jupyter: an HTML fragment (themed by the notebook) and the Markdown format.

Reached from the model lazily (``loopdoc.model.loop._notebook``), the model layer's one back-edge.
"""

from __future__ import annotations

import hashlib

from ..model.loop import Loop


def notebook_view(kind: str, loop: Loop) -> str:
    """The notebook view ``kind`` of ``loop``.

    Args:
        kind: ``"html"``: ``loopdoc.rendering.fragment.render_fragment`` (a fragment, not a page),
            titled, verbose, its anchors prefixed with a hash of the model so that two different
            loops in one notebook do not share ids; ``"md"``: ``render(loop, "md")``.
        loop: the model.

    Returns:
        The text.

    Raises:
        ValueError: an unknown ``kind``.
    """
    if kind == "html":
        from .fragment import render_fragment

        prefix = "loopdoc-" + hashlib.sha256(loop.to_json().encode("utf-8")).hexdigest()[:8] + "-"
        return render_fragment(loop, verbose=True, heading_level=2, title=f"Training loop of {loop.learner.loaded_from}",
                               id_prefix=prefix)
    if kind == "md":
        from .documents import render

        return render(loop, "md")
    raise ValueError(f"unknown notebook view {kind!r}")
