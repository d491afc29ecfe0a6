"""fastai's adapter: the ``Learner`` read into loopdoc's loop model (fastai 2.8).

``ADAPTER`` is what ``loopdoc.adapters.registry`` finds (entry point ``loopdoc.frameworks``:
``fastai``). Modules: ``extract`` (the static model), ``calls`` (``--call`` dry runs),
``recorder`` (``loopdoc trace``), ``creation`` (``after_create`` observed while loading),
``pickles`` (``learn.export()`` files), ``wording`` (event descriptions and labels),
``notebook`` (``Learner.show_training_loop``), ``facts`` and ``rules`` (``loopdoc check``'s facts and
fastai's own rules). Importing this package imports no fastai.
"""

from .adapter import ADAPTER, FastaiAdapter

__all__ = ["ADAPTER", "FastaiAdapter"]
