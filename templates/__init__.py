"""loopdoc's built-in Jinja templates, installed as the package ``loopdoc.templates``.

Copy this folder to make a theme; pass it with ``--template-dir`` (this file is not needed there).
"""
