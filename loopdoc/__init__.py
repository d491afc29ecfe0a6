"""loopdoc: make a callback-driven training loop legible and publishable.

Importing this package imports neither torch nor any framework (``loopdoc.fastai`` does,
on purpose). Public API:

- ``loop(trainer)``: the ``Loop`` model of a live trainer (a fastai ``Learner``);
- ``load_loop(spec)``: the ``Loop`` of ``learner.py[:ATTR]``, ``package.module[:ATTR]``
  or a saved ``loop.json`` (the user's code runs in a worker process: ``loopdoc.resolve``);
- ``render(loop, fmt)``: the model (or a trace) as ``html``, ``md``, ``txt`` or ``json`` text;
- ``trace_learner(spec, call)``: run the call for real (capped) and record it (a ``Trace``).

The package is typed (``py.typed``): ``loop`` takes a ``fastai.learner.Learner`` (``Trainer``),
``trace_learner`` returns a ``Trace``, ``load_json`` a ``Loop | Trace``.
"""

from __future__ import annotations

import sys


def _started_as_command() -> bool:
    """Whether this process is the ``loopdoc`` command (``loopdoc …``, ``python -m loopdoc …``) or its worker."""
    argv = list(getattr(sys, "orig_argv", ()) or ())
    if "-m" in argv[1:]:
        module = argv[argv.index("-m", 1) + 1] if argv.index("-m", 1) + 1 < len(argv) else ""
        return module.split(".")[0] == "loopdoc"
    return bool(sys.argv) and sys.argv[0].replace("\\", "/").rsplit("/", 1)[-1] in ("loopdoc", "loopdoc.exe")


def _interrupted_while_starting() -> None:
    """Called on ``KeyboardInterrupt`` during an import: for the command, ``Error: interrupted`` and exit 130.

    Returns (for the caller to re-raise) when this process is not the command: a library user
    gets the interrupt as Python gives it.

    Raises:
        SystemExit: code 130, in the command.
    """
    if not _started_as_command():
        return
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    print("Error: interrupted", file=sys.stderr)
    raise SystemExit(130) from None


try:  # importing takes ~0.1 s: a Ctrl-C then must not print a traceback from the command line either
    from collections.abc import Iterable
    from types import FrameType
    from typing import TYPE_CHECKING, Any, TypeAlias, cast

    from .errors import LoopdocError
    from .model import SCHEMA_VERSION, Loop, load_json
    from .model.trace import Trace
    from .render import render
except KeyboardInterrupt:
    _interrupted_while_starting()
    raise

if TYPE_CHECKING:  # for type checkers only: importing loopdoc imports no framework
    from fastai.callback.core import Callback as FastaiCallback
    from fastai.learner import Learner

    Trainer: TypeAlias = Learner
    """The trainers of loopdoc's own adapters (a Lightning or Hugging Face ``Trainer`` joins as its adapter does).
    At run time ``loop`` takes the trainer of any installed adapter, a third party's too."""
    ExtraCallbacks: TypeAlias = FastaiCallback | type[FastaiCallback] | Iterable[FastaiCallback | type[FastaiCallback]]
else:  # what typing.get_type_hints sees at run time
    Trainer = ExtraCallbacks = Any

__version__ = "0.1.0"
__all__ = ["SCHEMA_VERSION", "Loop", "LoopdocError", "Trace", "load_json", "load_loop", "loop", "render", "trace_learner"]


def loop(trainer: Trainer, *, loaded_from: str | None = None, cbs: ExtraCallbacks | None = None, call: str | None = None,
         namespace: dict[str, Any] | None = None, at_create: Any = None) -> Loop:
    """Return the ``Loop`` of a call on a live trainer, without training or changing it, with ``loopdoc check``'s findings.

    Args:
        trainer: a fastai ``Learner`` (or any framework's trainer an installed adapter knows).
        loaded_from: how to name its origin in the model (and so the title, "Training loop of …").
            ``None``: the name the caller's code binds ``trainer`` to (``loopdoc.loop(learn)`` in a
            notebook cell gives ``"learn"``: its local names, then its global ones, first bound to this
            very object; names starting with ``_``, such as IPython's ``_``/``_3``, are skipped), else
            ``"<learner>"``. Only the caller's frame is read; nothing is evaluated or changed.
        cbs: callbacks (instances or classes, or a list of them) to list as if the call added
            them (fastai: ``fit(cbs=...)``); classes are instantiated with no arguments.
        call: the call to document, e.g. ``"fine_tune(2)"`` or ``"get_preds()"``;
            ``None`` documents the framework's default (fastai: ``fit``).
        namespace: names the call's arguments may use, e.g. ``globals()``.
        at_create: what the adapter observed while the trainer was built (fastai: ``id()`` of
            the callbacks that received ``after_create``); ``None``: not observed.

    Raises:
        TypeError: ``trainer`` is no trainer an installed adapter knows, or a bad item of ``cbs``.
        LoopdocError: a bad ``call``.
    """
    from .adapters.registry import adapter_for

    adapter = adapter_for(trainer)
    if adapter is None:
        raise TypeError(f"not a trainer loopdoc knows: {type(trainer).__qualname__} (installed adapters: "
                        f"{', '.join(a.name for a in _adapters())})")
    from .analysis.lint import lint_loop

    if loaded_from is None:
        loaded_from = _name_in_caller(trainer, sys._getframe(1)) or "<learner>"
    model = adapter.loop(trainer, loaded_from=loaded_from, call=call, namespace=namespace or {}, observation=at_create,
                         extra_callbacks=cbs)
    return lint_loop(model, adapter, trainer, namespace or {}, at_create)


def _name_in_caller(obj: object, frame: FrameType | None) -> str | None:
    """The first public name ``frame`` binds to ``obj`` itself (by identity): its locals, then its globals; else ``None``.

    Reads the two namespaces only (no attribute of any value is looked up, nothing is evaluated),
    so a user's object cannot run code here. At a notebook cell's top level both are the
    notebook's namespace.
    """
    if frame is None:
        return None
    try:
        for scope in (frame.f_locals, frame.f_globals):
            for name, value in list(scope.items()):
                if value is obj and isinstance(name, str) and name.isidentifier() and not name.startswith("_"):
                    return name
    except Exception:  # a namespace that cannot be read (an exotic frame)
        return None
    finally:
        del frame  # no reference cycle through the frame
    return None


def _adapters() -> Any:
    from .adapters.registry import adapters

    return adapters()


def load_loop(spec: str, call: str | None = None, *, trust_pickle: bool = False, timeout: float | None = None) -> Loop:
    """Return the ``Loop`` a spec names (``loopdoc.resolve.resolve``).

    Args:
        spec: a saved model (``*.json``; needs neither torch nor a framework),
            ``PATH.py[:ATTR]`` / ``package.module[:ATTR]`` naming a trainer, a file an adapter
            reads (a fastai ``learn.export()`` pickle), or ``git:REV:PATH``.
        call: for a learner, the call to document (see ``loop``); its arguments may use the
            learner module's names. Not allowed with a saved model.
        trust_pickle: allow loading a pickle. Unpickling runs any code the file names:
            pass ``True`` only for a file you trust.
        timeout: seconds the load may take.

    Raises:
        LoopdocError: any failure, with a one-line message naming the file.
    """
    from .resolve import resolve

    return cast(Loop, resolve(spec, call, trust_pickle=trust_pickle, timeout=timeout).document)


def trace_learner(spec: str, call: str | None = None, *, batches: int = 3, timeout: float | None = None) -> Trace:
    """Load a trainer, model ``call``, then run it for real and record what happened (``loopdoc.resolve.resolve_trace``).

    Args:
        spec: ``PATH.py[:ATTR]`` or ``package.module[:ATTR]`` naming a trainer.
        call: the call to run, e.g. ``"fit_one_cycle(1)"``; arguments may use the module's names.
            ``None``: the framework's default (fastai: ``fit(1)``).
        batches: at most this many batches per batch loop.
        timeout: seconds the load and the run may take.

    Returns:
        A ``loopdoc.model.trace.Trace``: the static ``Loop`` of the call plus, per event and
        place, how often it fired, which callbacks ran and their wall time.

    Raises:
        LoopdocError: loading failed, a bad call, or the call raised while running.
    """
    from .resolve import resolve_trace

    return cast(Trace, resolve_trace(spec, call, batches=batches, timeout=timeout).document)
