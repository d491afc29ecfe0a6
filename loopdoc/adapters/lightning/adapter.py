"""``LightningAdapter``: PyTorch Lightning 2.6 behind loopdoc's adapter protocol (``loopdoc.adapters.base.Adapter``).

Both import names of Lightning are supported: ``pytorch_lightning`` and ``lightning.pytorch``
(``lib.PACKAGES``). Importing this module imports no Lightning (nor torch): each method imports
what it needs when called, after the user's code has built its Trainer.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any

from ...errors import UsageError
from ...model.loop import Loop
from ...model.trace import Trace
from .calls import CALLS
from .creation import watch_trainers
from .lib import PACKAGES, trainer_class
from .rules import RULES
from .wording import WORDING


class LightningAdapter:
    """Lightning's ``Trainer``: extraction (``extract``), ``--call`` (``calls``), the trace recorder (``recorder``),
    and which callbacks the Trainer was built with (``creation``).

    Attributes:
        name: ``"lightning"``.
        wording: ``loopdoc.adapters.lightning.wording.WORDING``.
        calls: the Trainer methods ``--call`` may name: ``fit``, ``validate``, ``test``, ``predict``.
        trace_call: ``None``: without ``--call``, ``trace`` runs the call the module's objects imply (``calls.default_call``).
        modules: ``("pytorch_lightning", "lightning")``.
        suffixes: ``()``: no file format of its own.
        warning_modules: torch's and Lightning's modules, whose import-time warnings are not the user's concern.
        rules: ``loopdoc check``'s Lightning rules (``rules.RULES``; ``Linting``).
    """

    name = "lightning"
    wording = WORDING
    rules = RULES
    calls = CALLS
    trace_call = None
    modules = ("pytorch_lightning", "lightning")
    suffixes: tuple[str, ...] = ()
    warning_modules = r"(torch|pytorch_lightning|lightning|lightning_fabric|lightning_utilities|torchmetrics)(\.|$)"

    def is_trainer(self, obj: Any) -> bool:
        """Whether ``obj`` is a ``pytorch_lightning.Trainer`` or ``lightning.pytorch.Trainer``.

        Args:
            obj: any object.

        Returns:
            The answer; reads ``sys.modules`` only (``False`` when the user's code imported neither package).
        """
        for pkg in PACKAGES:
            cls = trainer_class(pkg)
            if cls is not None and isinstance(obj, cls):
                return True
        return False

    def watch(self) -> contextlib.AbstractContextManager[dict[int, Any]]:
        """``creation.watch_trainers()``: the ``callbacks=`` each Trainer was built with.

        Returns:
            A context manager yielding ``{id(trainer): creation.Observed}``.
        """
        return watch_trainers()

    def loop(self, trainer: Any, *, loaded_from: str, call: str | None, namespace: dict[str, Any],
             observation: Any = None, extra_callbacks: Any = None) -> Loop:
        """The ``Loop`` of ``call`` on ``trainer`` (``extract.extract``), without running it or changing anything.

        Args:
            trainer: a Lightning ``Trainer``.
            loaded_from: the spec it came from.
            call: e.g. ``"fit(model, datamodule=dm)"``; ``None``: ``fit`` with the module's objects (``calls.default_call``).
            namespace: names the call may use (the module's globals); empty: the globals of ``__main__`` (in a
                notebook, the notebook's own names, so that ``loopdoc.loop(trainer)`` finds ``model`` and the loaders).
            observation: ``creation.Observed`` for this Trainer, or ``None`` (then no callback is marked a Lightning default).
            extra_callbacks: not supported by Lightning (callbacks belong to the Trainer); must be ``None``.

        Returns:
            The model.

        Raises:
            CallError: a bad call (``calls.parse_call``).
            UsageError: ``extra_callbacks``.
            LearnerNotFound: no call given and the module's objects are ambiguous (the message says what to pass).
        """
        from .extract import extract

        if extra_callbacks is not None:
            raise UsageError("Lightning callbacks belong to the Trainer (Trainer(callbacks=[...])); cbs= is not supported")
        if not namespace:
            main = sys.modules.get("__main__")
            namespace = dict(vars(main)) if main is not None else {}
        return extract(trainer, loaded_from=loaded_from, call=call, namespace=namespace, observation=observation)

    def facts(self, trainer: Any, loop: Loop, namespace: dict[str, Any], observation: Any = None) -> Any:
        """``facts.lint_facts``: the ``LintFacts`` of ``loop`` for ``loopdoc check`` (``Linting``).

        Args:
            trainer: the live Trainer.
            loop: its model, from ``loop``.
            namespace: the module's globals.
            observation: ``creation.Observed`` for this Trainer, or ``None``.

        Returns:
            The facts.
        """
        from .facts import lint_facts

        if not namespace:
            main = sys.modules.get("__main__")
            namespace = dict(vars(main)) if main is not None else {}
        return lint_facts(trainer, loop, namespace, observation)

    def trace(self, trainer: Any, static: Loop, call: str | None, namespace: dict[str, Any], batches: int) -> Trace:
        """Run the call for real (``recorder.run_trace``), capped, writing only under a temporary folder.

        Args:
            trainer: the Trainer (the call trains its LightningModule).
            static: the static model of the same call.
            call: the call; ``None``: the one ``static`` documents (``static.call``).
            namespace: names the call may use.
            batches: at most this many batches per loop, and epochs.

        Returns:
            The ``Trace``.

        Raises:
            CallError, UsageError, RunError: a bad call, a bad ``batches`` or logger, or the call raised while
                running.
        """
        from .recorder import run_trace

        with contextlib.redirect_stdout(sys.stderr):  # the progress bar; stdout may be the output
            return run_trace(trainer, static, call or static.call, namespace, batches)

    def load_file(self, path: str, where: str, *, trust: bool) -> Any:
        """Not used: Lightning has no file format of its own here (``suffixes`` is empty).

        Raises:
            UsageError: always.
        """
        raise UsageError(f"{where}: loopdoc reads no Lightning file format; give the training script")

    def patch_trainer(self, name: str, method: Any) -> None:
        """Set ``method`` as ``Trainer.<name>`` of every imported Lightning package.

        Args:
            name: the method name.
            method: the function.
        """
        for pkg in PACKAGES:
            cls = trainer_class(pkg)
            if cls is not None:
                setattr(cls, name, method)


ADAPTER = LightningAdapter()
