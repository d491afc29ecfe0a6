"""``TransformersAdapter``: Hugging Face ``transformers.Trainer`` (5.x) behind loopdoc's adapter protocol.

Importing this module imports no transformers (nor torch) module: each method imports what it
needs when called, after the user's code has built its ``Trainer``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import weakref
from typing import Any

from ...errors import UsageError
from ...model.loop import Loop
from ...model.trace import Trace
from ..base import LintFacts, Rule
from .calls import CALLS
from .creation import watch_creation
from .rules import RULES
from .wording import WORDING


class TransformersAdapter:
    """transformers' ``Trainer``: extraction (``extract``), ``--call`` parsing (``calls``), the trace recorder
    (``recorder``), ``on_init_end`` observation and the ``output_dir`` guard while loading (``creation``).

    Attributes:
        name: ``"transformers"``.
        wording: ``loopdoc.adapters.transformers.wording.WORDING``.
        calls: the ``Trainer`` methods ``--call`` may name: ``train``, ``evaluate``, ``predict``.
        trace_call: what ``loopdoc trace`` runs without ``--call``: ``None``, so the adapter decides from the
            trainer: ``train()``, or ``evaluate()`` for a trainer without a train dataset.
        modules: ``("transformers",)``.
        suffixes: ``()``: a Trainer is never loaded from a file of its own.
        warning_modules: transformers, accelerate, torch, huggingface_hub and tqdm, whose import-time warnings
            are not the user's concern.
        rules: the Trainer's own ``loopdoc check`` rules (``rules.RULES``; the neutral ones are ``loopdoc.analysis.lint``'s).
    """

    name = "transformers"
    wording = WORDING
    calls = CALLS
    trace_call = None
    modules = ("transformers",)
    suffixes: tuple[str, ...] = ()
    warning_modules = r"(transformers|accelerate|torch|huggingface_hub|tqdm|safetensors)(\.|$)"
    rules: tuple[Rule, ...] = RULES

    def is_trainer(self, obj: Any) -> bool:
        """Whether ``obj`` is a ``transformers.Trainer`` (``False`` when the user's code never imported ``transformers.trainer``).

        Args:
            obj: any object.

        Returns:
            The answer; transformers is not imported to find it.
        """
        module = sys.modules.get("transformers.trainer")
        cls = getattr(module, "Trainer", None) if module is not None else None
        return isinstance(cls, type) and isinstance(obj, cls)

    def watch(self) -> contextlib.AbstractContextManager[dict[int, Any]]:
        """``creation.watch_creation()``: the callbacks each ``Trainer.__init__`` fired ``on_init_end`` for, and no
        ``os.makedirs(output_dir)`` while the user's module runs.

        Returns:
            A context manager yielding ``{id(trainer): (id(callback), ...)}``.
        """
        return watch_creation()

    def loop(self, trainer: Any, *, loaded_from: str, call: str | None, namespace: dict[str, Any],
             observation: Any = None, extra_callbacks: Any = None) -> Loop:
        """The ``Loop`` of ``call`` on the trainer (``extract.build``), without running it or changing it.

        Args:
            trainer: a built ``transformers.Trainer``.
            loaded_from: the spec it came from.
            call: ``"train()"``, ``"evaluate()"``, ``"evaluate(eval_dataset=ds)"``, ``"predict(ds)"``; ``None``: ``train()``
                (``evaluate()`` for a trainer without a train dataset).
            namespace: names the call's arguments may use.
            observation: ``id()`` of the callbacks that received ``on_init_end``, or ``None`` (guessed).
            extra_callbacks: must be ``None``: a Trainer's calls take no callbacks.

        Returns:
            The model.

        Raises:
            CallError: a bad ``call`` (``calls.parse_call``), or a call the trainer cannot make.
            UsageError: ``extra_callbacks``.
        """
        from .calls import parse_call
        from .extract import build

        if extra_callbacks is not None:
            raise UsageError("a Trainer's train(), evaluate() and predict() take no callbacks; add them with "
                             "Trainer(callbacks=...) or trainer.add_callback(...)")
        parsed = parse_call(call, namespace, trainer) if call is not None else None
        if observation is not None:
            with contextlib.suppress(TypeError):  # a trainer that cannot be weakly referenced
                _OBSERVED[trainer] = observation
        return build(trainer, loaded_from=loaded_from, call=parsed, at_init=observation).loop

    def trace(self, trainer: Any, static: Loop, call: str | None, namespace: dict[str, Any], batches: int) -> Trace:
        """Run ``call`` for real, capped (``recorder.run_trace``), its output sent to stderr.

        Args:
            trainer: the ``Trainer`` (it is trained; its arguments and datasets are restored afterwards).
            static: the static model of the same call (replaced by the model of the capped run, see ``run_trace``).
            call: e.g. ``"train()"``; ``None``: as for ``loop``.
            namespace: names the call's arguments may use.
            batches: at most this many update steps, and batches per evaluation or prediction loop.

        Returns:
            The ``Trace``.

        Raises:
            CallError, UsageError, RunError: a bad call, a bad ``batches`` or ``push_to_hub``, or the call raised
                while running.
        """
        from .recorder import run_trace

        with contextlib.redirect_stdout(sys.stderr):  # PrinterCallback prints; stdout may be the output
            trace = run_trace(trainer, call, namespace, batches, loaded_from=static.learner.loaded_from,
                              at_init=_observed(trainer))
        # the capped run's model keeps the static model's check findings (the same callbacks and arguments)
        return dataclasses.replace(trace, loop=dataclasses.replace(trace.loop, findings=static.findings))

    def facts(self, trainer: Any, loop: Loop, namespace: dict[str, Any], observation: Any = None) -> LintFacts:
        """The ``LintFacts`` of ``loop`` for ``loopdoc check`` (``facts.lint_facts``).

        Args:
            trainer: the live ``Trainer``.
            loop: its model, from ``loop``.
            namespace: the trainer module's globals.
            observation: the ``creation.Observed`` seen while the trainer was built, or ``None``.

        Returns:
            The facts: TrainerCallback's events, the names other frameworks use, each callback's members,
            where the user's code built the trainer or added a callback, and the arguments the rules read.
        """
        from .facts import lint_facts

        return lint_facts(trainer, loop, namespace, observation if observation is not None else _observed(trainer))

    def load_file(self, path: str, where: str, *, trust: bool) -> Any:
        """Never called: ``suffixes`` is empty.

        Raises:
            UsageError: always.
        """
        raise UsageError(f"{where}: loopdoc loads a Trainer from the Python file that builds it")

    def patch_trainer(self, name: str, method: Any) -> None:
        """Set ``method`` as ``transformers.Trainer.<name>`` (a notebook helper); imports transformers.

        Args:
            name: the method name.
            method: the function.
        """
        from transformers import Trainer

        setattr(Trainer, name, method)


# What ``watch`` saw of each trainer, kept from ``loop`` for ``trace`` (which ``loopdoc.worker.perform`` calls after it).
_OBSERVED: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def _observed(trainer: Any) -> Any:
    try:
        return _OBSERVED.get(trainer)
    except TypeError:
        return None


ADAPTER = TransformersAdapter()
