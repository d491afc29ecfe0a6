"""``FastaiAdapter``: fastai 2.8 behind loopdoc's adapter protocol (``loopdoc.adapters.base.Adapter``).

Importing this module imports no fastai module: each method imports what it needs when
called, after the user's code has built its learner.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any

from ...model.loop import Loop
from ...model.trace import Trace
from ..base import LintFacts, Rule
from .calls import CALLS
from .creation import at_create_ids, observed, watch_creation
from .pickles import SUFFIXES
from .rules import RULES
from .wording import WORDING


class FastaiAdapter:
    """fastai's ``Learner``: extraction (``extract``), ``--call`` dry runs (``calls``), the trace recorder
    (``recorder``), ``after_create`` observation (``creation``) and ``learn.export()`` pickles (``pickles``).

    Attributes:
        name: ``"fastai"``.
        wording: ``loopdoc.adapters.fastai.wording.WORDING``.
        calls: the ``Learner`` methods ``--call`` may name (``calls.CALLS``).
        trace_call: what ``loopdoc trace`` runs without ``--call``: one epoch, ``fit(1)``.
        modules: ``("fastai",)``.
        suffixes: ``.pkl`` and ``.pickle`` (``learn.export()``).
        warning_modules: torch, fastai, fastcore, fasttransform and plum, whose import-time
            deprecation warnings are not the user's concern.
        rules: fastai's own ``loopdoc check`` rules (``rules.RULES``; the neutral ones are ``loopdoc.analysis.lint``'s).
    """

    name = "fastai"
    wording = WORDING
    calls = CALLS
    trace_call = "fit(1)"
    modules = ("fastai",)
    suffixes = SUFFIXES
    warning_modules = r"(torch|fastai|fastcore|fasttransform|plum)(\.|$)"
    rules: tuple[Rule, ...] = RULES

    def is_trainer(self, obj: Any) -> bool:
        """Whether ``obj`` is a ``fastai.learner.Learner`` (``False`` when the user's code never imported fastai).

        Args:
            obj: any object.

        Returns:
            The answer; fastai is not imported to find it.
        """
        module = sys.modules.get("fastai.learner")
        return module is not None and isinstance(obj, module.Learner)

    def watch(self) -> contextlib.AbstractContextManager[dict[int, Any]]:
        """``creation.watch_creation()``: which callbacks each ``Learner.__init__`` fired ``after_create`` for, and where
        the user's code built each learner and attached each callback.

        Returns:
            A context manager yielding ``{id(learner): creation.Creation}``.
        """
        return watch_creation()

    def loop(self, trainer: Any, *, loaded_from: str, call: str | None, namespace: dict[str, Any],
             observation: Any = None, extra_callbacks: Any = None) -> Loop:
        """The ``Loop`` of ``call`` on the learner (``extract.extract``), without training or changing it.

        Args:
            trainer: a ``Learner``.
            loaded_from: the spec it came from.
            call: e.g. ``"fine_tune(2)"``; ``None`` for ``fit`` with the learner's callbacks.
            namespace: names the call's arguments may use.
            observation: what ``watch`` saw (a ``creation.Creation``), or the ``id()`` set of the callbacks that
                received ``after_create``, or ``None``: then what ``creation.watch_always`` saw, if it was
                watching when the learner was built, else all of them.
            extra_callbacks: callbacks (instances or classes) to list as ``fit(cbs=...)`` would add them.

        Returns:
            The model.

        Raises:
            TypeError: an item of ``extra_callbacks`` is not a ``Callback`` or ``Callback`` class.
            CallError: a bad ``call`` (``calls.record_call``).
        """
        from .extract import as_callbacks, extract

        if observation is None:
            observation = observed(trainer)  # a learner built after `import loopdoc.fastai` (creation.watch_always)
        return extract(trainer, loaded_from=loaded_from, extra_cbs=as_callbacks(extra_callbacks), call=call,
                       namespace=namespace, at_create=at_create_ids(observation))

    def facts(self, trainer: Any, loop: Loop, namespace: dict[str, Any], observation: Any = None) -> LintFacts:
        """The ``LintFacts`` of ``loop`` for ``loopdoc check`` (``facts.lint_facts``).

        Args:
            trainer: the ``Learner`` the model was built from.
            loop: the model (from ``loop``).
            namespace: names a ``--call``'s arguments may use.
            observation: what ``watch`` saw while the learner was built (a ``creation.Creation``), or ``None``: then
                what ``creation.watch_always`` saw (the notebook patch), if anything.

        Returns:
            The facts: fastai's event list and renames, each callback's members and where it was attached.
        """
        from .facts import lint_facts

        if observation is None:
            observation = observed(trainer)  # as in ``loop``: a learner built after `import loopdoc.fastai`
        return lint_facts(trainer, loop, namespace, observation)

    def trace(self, trainer: Any, static: Loop, call: str, namespace: dict[str, Any], batches: int) -> Trace:
        """Run ``call`` for real (``recorder.run_trace``), fastai's progress output sent to stderr.

        The run saves nothing: ``run_trace`` points the learner's ``path`` (and every file
        fastai's callbacks write) at a temporary folder, removed afterwards.

        Args:
            trainer: the ``Learner`` (it is trained).
            static: the static model of the same call.
            call: e.g. ``"fit(1)"``.
            namespace: names the call's arguments may use.
            batches: at most this many batches per batch loop.

        Returns:
            The ``Trace``.

        Raises:
            CallError, UsageError, RunError: a bad call, a bad ``batches``, or the call raised while running.
        """
        from .recorder import run_trace

        with contextlib.redirect_stdout(sys.stderr):  # fastai prints its progress table; stdout may be the output
            return run_trace(trainer, static, call, namespace, batches)

    def load_file(self, path: str, where: str, *, trust: bool) -> Any:
        """A ``learn.export()`` pickle, only with ``trust`` (``pickles.load_pickle``).

        Args:
            path: the ``.pkl``/``.pickle`` file.
            where: the file as shown in messages.
            trust: the user passed ``--trust-pickle``.

        Returns:
            What the pickle holds.

        Raises:
            UsageError: not trusted.
            LoadError: unpickling failed.
        """
        from .pickles import load_pickle

        return load_pickle(path, where, trust=trust)

    def patch_trainer(self, name: str, method: Any) -> None:
        """Set ``method`` as ``Learner.<name>`` (for ``import loopdoc.fastai``); imports ``fastai.learner``.

        Args:
            name: the method name, e.g. ``"show_training_loop"``.
            method: the function.
        """
        from fastai.learner import Learner

        setattr(Learner, name, method)


ADAPTER = FastaiAdapter()
