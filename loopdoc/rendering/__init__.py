"""Rendering, split by job: ``documents`` (whole documents: ``render``, ``render_diff``), ``fragment`` (HTML
fragments and Markdown sections for docs sites and model cards), ``environment`` (the Jinja environment and
template errors), ``markdown``, ``links`` (the source-URL policy), ``anchors``, ``text`` (printable model
text), ``values`` (values in a diff), ``output`` (formats and atomic writes), ``notebook`` (Jupyter views).

Reads only the model and the adapters' ``Wording``; imports no framework.
"""
