"""Extractors: read a live trainer into a ``loopdoc.model.Loop``. One module per framework."""
