"""Hugging Face transformers' adapter: the ``Trainer`` read into loopdoc's loop model (transformers 5.x).

``ADAPTER`` is what ``loopdoc.adapters.registry`` finds (entry point ``loopdoc.frameworks``:
``transformers``). Modules: ``extract`` (the static model), ``plan`` (the numbers of a run and
DefaultFlowCallback's schedule), ``flows`` (the control flags as data flow), ``calls`` (``--call``),
``recorder`` (``loopdoc trace``), ``creation`` (``on_init_end`` observed, and ``output_dir`` left
unwritten, while loading), ``wording`` (event descriptions, names that are not events,
EarlyStoppingCallback's failures). Importing this package imports no transformers.
"""

from .adapter import ADAPTER, TransformersAdapter

__all__ = ["ADAPTER", "TransformersAdapter"]
