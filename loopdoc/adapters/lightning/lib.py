"""Which Lightning package an object belongs to, that package's classes, and whose code a hook runs.

PyTorch Lightning 2.6 ships the same code twice: ``pytorch_lightning`` (PyPI
``pytorch-lightning``) and ``lightning.pytorch`` (PyPI ``lightning``). The classes are
distinct (``pytorch_lightning.Trainer is not lightning.pytorch.Trainer``; a
``pytorch_lightning`` ``EarlyStopping`` is not an ``EarlyStopping`` to a ``lightning.pytorch``
Trainer), so everything here is read from the package of the object at hand, as Lightning's
own ``isinstance`` checks are (``trainer/call.py``, ``trainer/connectors/callback_connector.py``, 2.6).

Nothing here imports Lightning at module import time: ``package_of`` reads ``type(obj).__module__``,
and ``Lightning(pkg)`` imports the package only when an object of it already exists.
"""

from __future__ import annotations

import functools
import importlib
import sys
from typing import Any

PACKAGES = ("pytorch_lightning", "lightning.pytorch")
"""The two import names of PyTorch Lightning 2.x (same code, distinct classes)."""

TRAINER_MODULES = tuple(f"{p}.trainer.trainer" for p in PACKAGES)
"""The modules that define ``Trainer`` (``pytorch_lightning/trainer/trainer.py``, 2.6)."""


def package_of(obj: Any) -> str | None:
    """The Lightning package whose class ``obj`` is an instance of (looking through its MRO), or ``None``.

    Args:
        obj: any object (a Trainer, a user's ``LightningModule`` subclass instance, a callback…).

    Returns:
        ``"pytorch_lightning"`` or ``"lightning.pytorch"``; ``None`` for objects of neither. Never imports anything.
    """
    try:
        mro = type(obj).__mro__
    except Exception:  # a user's object with a broken __class__
        return None
    for cls in mro:
        module = getattr(cls, "__module__", "") or ""
        for pkg in PACKAGES:
            if module == pkg or module.startswith(pkg + "."):
                return pkg
    return None


def imported_packages() -> list[str]:
    """The Lightning packages already imported in this process (an object of the other cannot exist otherwise).

    Returns:
        A sub-list of ``PACKAGES``; nothing is imported to find it.
    """
    return [p for p in PACKAGES if p in sys.modules]


def trainer_class(pkg: str) -> type | None:
    """``Trainer`` of an already imported package, or ``None`` when ``pkg.trainer.trainer`` is not imported.

    Args:
        pkg: one of ``PACKAGES``.

    Returns:
        The class; never imports Lightning.
    """
    module = sys.modules.get(f"{pkg}.trainer.trainer")
    return getattr(module, "Trainer", None) if module is not None else None


class Lightning:
    """The classes and helpers of one Lightning package that the adapter reads (``Lightning.of(pkg)`` caches one).

    Attributes:
        pkg: ``"pytorch_lightning"`` or ``"lightning.pytorch"``.
        version: its ``__version__``.
        P: the package module.
        Trainer, Callback, LightningModule, LightningDataModule, EarlyStopping, Checkpoint, ModelCheckpoint,
            ProgressBar, ModelSummary, Timer: its classes.
        base: per kind (``"callback"``, ``"module"``, ``"datamodule"``) the Lightning base classes whose functions are
            Lightning's, not the user's: every class of ``Callback.__mro__`` / ``LightningModule.__mro__`` /
            ``LightningDataModule.__mro__`` of this package and of the other one if it is imported (a
            ``pytorch_lightning`` callback may sit in a ``lightning.pytorch`` Trainer and still inherits only no-ops).
    """

    def __init__(self, pkg: str) -> None:
        """Import ``pkg`` and the modules the adapter reads.

        Args:
            pkg: one of ``PACKAGES``.

        Raises:
            ImportError: the package is not installed.
        """
        P = importlib.import_module(pkg)
        self.pkg, self.P, self.version = pkg, P, str(P.__version__)
        cbs = P.callbacks
        self.Trainer, self.Callback = P.Trainer, P.Callback
        self.LightningModule, self.LightningDataModule = P.LightningModule, P.LightningDataModule
        self.EarlyStopping, self.Checkpoint, self.ModelCheckpoint = cbs.EarlyStopping, cbs.Checkpoint, cbs.ModelCheckpoint
        self.ProgressBar, self.ModelSummary, self.Timer = cbs.ProgressBar, cbs.ModelSummary, cbs.Timer
        self.callback_connector = importlib.import_module(f"{pkg}.trainer.connectors.callback_connector")
        self.data_connector = importlib.import_module(f"{pkg}.trainer.connectors.data_connector")
        self.call = importlib.import_module(f"{pkg}.trainer.call")
        self.profilers = importlib.import_module(f"{pkg}.profilers")
        self.optimizer = importlib.import_module(f"{pkg}.core.optimizer")
        self.states = importlib.import_module(f"{pkg}.trainer.states")
        self.model_helpers = importlib.import_module(f"{pkg}.utilities.model_helpers")
        self.base: dict[str, frozenset[type]] = {"callback": frozenset(), "module": frozenset(), "datamodule": frozenset()}
        modules: list[type] = []
        datamodules: list[type] = []
        for other in dict.fromkeys([pkg, *imported_packages()]):
            Q = importlib.import_module(other)
            modules.append(Q.LightningModule)
            datamodules.append(Q.LightningDataModule)
            for kind, cls in (("callback", Q.Callback), ("module", Q.LightningModule), ("datamodule", Q.LightningDataModule)):
                self.base[kind] = self.base[kind] | (set(cls.__mro__) - {object})
        self._modules, self._datamodules = tuple(modules), tuple(datamodules)

    @staticmethod
    @functools.cache
    def of(pkg: str) -> Lightning:
        """The (cached) ``Lightning`` of ``pkg``.

        Args:
            pkg: one of ``PACKAGES``.

        Returns:
            The instance; a second call returns the same one.
        """
        return Lightning(pkg)

    def overridden(self, hook: str, obj: Any) -> bool:
        """Lightning's own ``is_overridden(hook, obj)`` (``utilities/model_helpers.py``, 2.6): the test its conditional
        dispatch uses (``prepare_data``, ``configure_model``, ``on_*_model_train``, the transfer-hook selector of
        ``trainer/connectors/data_connector.py`` ``_DataHookSelector``, ``training_step`` in ``_FitLoop.setup_data``).

        Args:
            hook: the hook's name.
            obj: a LightningModule or LightningDataModule (``None``: ``False``).

        Returns:
            Whether Lightning treats ``obj``'s ``hook`` as the user's (it compares ``__code__`` after unwrapping).
        """
        return obj is not None and bool(self.model_helpers.is_overridden(hook, obj))

    def kind(self, obj: Any) -> str:
        """``"module"``, ``"datamodule"`` or ``"callback"`` for an object hooks are dispatched to.

        Args:
            obj: a LightningModule, LightningDataModule or callback of either package.

        Returns:
            The kind, by the object's package's base classes.
        """
        if isinstance(obj, self._modules):
            return "module"
        if isinstance(obj, self._datamodules):
            return "datamodule"
        return "callback"

    def own(self, obj: Any, hook: str) -> tuple[Any, str, type | None] | None:
        """What of the user's runs when Lightning calls ``getattr(obj, hook)``: the attribute, how it is found, its class.

        Lightning dispatches by ``getattr`` (``trainer/call.py``); the function that runs is the instance's
        attribute if it has one, else the first definition in ``type(obj).__mro__``. That function is the
        object's *own* code unless the class defining it is a Lightning base class (``self.base``): the
        base hooks are no-ops or Lightning's default behaviour. Decided by where the function is found, not
        by comparing code objects: functions decorated with ``@torch.no_grad()`` share one wrapper code object.

        Args:
            obj: a callback, LightningModule or LightningDataModule.
            hook: the hook's name.

        Returns:
            ``(attribute, "instance" | "method", defining class or None)``, or ``None`` when nothing of the user's
            runs (no such attribute, not callable, or defined by a Lightning base class).
        """
        try:
            attr = vars(obj).get(hook)
        except TypeError:  # no __dict__ (slots)
            attr = None
        if attr is not None:
            return (attr, "instance", None) if callable(attr) else None
        base = self.base[self.kind(obj)]
        for cls in type(obj).__mro__:
            if hook not in vars(cls):
                continue
            if cls in base:
                return None
            value = vars(cls)[hook]
            if isinstance(value, (staticmethod, classmethod)):
                value = value.__func__
            return (value, "method", cls) if callable(value) else None
        return None

    def base_function(self, obj: Any, hook: str) -> Any:
        """The Lightning base function that runs for ``hook`` on ``obj`` when ``own`` finds nothing, or ``None``.

        Args:
            obj: a LightningModule or LightningDataModule.
            hook: the hook's name.

        Returns:
            The function (e.g. ``LightningModule.optimizer_step``), or ``None`` when the user's code runs or nothing does.
        """
        if obj is None or self.own(obj, hook) is not None:
            return None
        for cls in type(obj).__mro__:
            if hook in vars(cls):
                return vars(cls)[hook] if callable(vars(cls)[hook]) else None
        return None
