"""The process that runs the user's code: load a spec, answer requests for its loop or trace, hand back JSON.

``loopdoc.resolve`` starts ``python -m loopdoc.worker REQUEST`` for every learner file it
documents (the command line, the docs-site plugins, ``loopdoc.load_loop``), so that nothing
the user's code does can reach the caller's process: not its prints (the worker's stdout is
the caller's stderr), not ``atexit`` hooks or threads that print after the document, not
``os._exit``, a crash or a timer it cancels, not the modules it imports (a second learner,
or the same one after an edit, is imported afresh). Documents travel on a pipe of loopdoc's
own, one JSON line per answer, and the worker ends with ``os._exit`` as soon as the caller
closes its request pipe, before any ``atexit`` hook of the user's could run.

``perform`` is the one function from a spec to a document; the worker calls it, and so does
``loopdoc.resolve`` in-process (``isolated=False``, for tests and a live trainer), so both
paths run the same code. The worker writes no ``__pycache__`` into the user's folders.

Request (``sys.argv[1]``, JSON): ``spec``, ``trust`` (allow pickles), ``timeout`` (seconds or
``null``; covers the load and the first operation), ``debug`` (tracebacks on stderr),
``op`` (the first operation), ``requests`` and ``answers`` (the pipe's file descriptors),
``progress`` (report what it is doing). An operation: ``{"what": "loop" | "trace", "call":
str | null, "batches": int, "verbose": bool}``. An answer: ``{"ok": true, "kind": "loop" | "trace", "document":
{...}, "files": [...]}`` or ``{"ok": false, "error": "LoadError", "message": "...", "files": [...]}``. With
``progress``, lines ``{"progress": "importing fastai"}`` (at the first import of an adapter's
framework module, which is what makes loading slow) and ``{"progress": "running fit(1)"}``
(a trace's run) may come before the first answer (``loopdoc.progress`` shows them).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import sys
import traceback
import warnings
from typing import Any

from .analysis.compare import differences
from .analysis.lint import lint_loop
from .errors import LoopdocError
from .limits import time_limit


def quiet_framework_warnings() -> None:
    """Hide the import-time ``FutureWarning``/``DeprecationWarning``/``UserWarning`` of every adapter's framework modules.

    They are the frameworks' own deprecations, not the user's concern (``--debug`` shows them).
    """
    from .adapters.registry import adapters

    for adapter in adapters():
        for category in (FutureWarning, DeprecationWarning, UserWarning):
            warnings.filterwarnings("ignore", category=category, module=adapter.warning_modules)


def perform(loaded: Any, op: dict[str, Any]) -> Any:
    """Run one operation on a loaded trainer.

    Args:
        loaded: a ``loopdoc.load.Loaded``.
        op: ``{"what": "loop", "call": CALL}`` (the static model of ``CALL``; ``None`` for the
            framework's default; with ``findings`` from ``loopdoc check``'s rules) or ``{"what": "trace", "call": CALL,
            "batches": N, "verbose": V}`` (the static model, then a real run of at most ``N`` batches per loop,
            compared with the static model: ``loopdoc.analysis.compare.differences``). What the run
            prints (progress bars, a checkpoint callback's "Better model found") goes to stderr
            with ``V`` true and is discarded otherwise; it never reaches stdout, which may be the
            document.

    Returns:
        A ``Loop`` or a ``Trace``.

    Raises:
        LoopdocError: a bad call, or the call failed.
    """
    adapter = loaded.adapter
    if op["what"] == "trace":
        call = op.get("call") or adapter.trace_call  # None: the adapter chooses from the loaded objects
        static = _linted(loaded, call)
        quiet = None if op.get("verbose") else open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 - closed below
        try:
            with contextlib.redirect_stdout(quiet or sys.stderr), contextlib.redirect_stderr(quiet or sys.stderr):
                trace = adapter.trace(loaded.trainer, static, call, loaded.namespace, int(op.get("batches", 3)))
        finally:
            if quiet is not None:
                quiet.close()
        return dataclasses.replace(trace, differences=tuple(differences(trace, adapter.wording)))
    return _linted(loaded, op.get("call"))


def _linted(loaded: Any, call: str | None) -> Any:
    """The adapter's ``Loop`` of ``call`` with ``findings`` set by ``loopdoc check``'s rules (``loopdoc.analysis.lint``).

    The rules run here, where the live trainer is, for every loop (also ``--call`` loops and a trace's static
    model), so that every output carries the findings.
    """
    loop = loaded.adapter.loop(loaded.trainer, loaded_from=loaded.loaded_from, call=call, namespace=loaded.namespace,
                               observation=loaded.observation)
    return lint_loop(loop, loaded.adapter, loaded.trainer, loaded.namespace, loaded.observation)


def answer(document: Any, files: tuple[str, ...] = ()) -> dict[str, Any]:
    """The answer for a document (``Loop`` or ``Trace``) and the user's files it was read from."""
    return {"ok": True, "kind": getattr(document, "kind", "loop"), "document": document.to_dict(), "files": list(files)}


def failure(error: BaseException, debug: bool) -> dict[str, Any]:
    """The answer for an error: a loopdoc error by class name and message, anything else as an internal error."""
    if debug:
        traceback.print_exception(error)
    if isinstance(error, LoopdocError):
        return {"ok": False, "error": type(error).__name__, "message": str(error), "files": list(error.files)}
    try:
        text = " ".join(str(error).split())
    except Exception:
        text = ""
    hint = "" if debug else "; rerun with --debug for the traceback"
    return {"ok": False, "error": "InternalError",
            "message": f"internal error: {type(error).__name__}: {text or '(no message)'}{hint}"}


class FrameworkImports:
    """A ``sys.meta_path`` finder that finds nothing: it reports the first import of a framework an adapter knows.

    The framework is known only once the user's code imports it (directly, through a sibling
    module, or by unpickling); reading the learner file's own imports would miss the last two.
    ``find_spec`` is called only for modules not yet imported, and returns ``None`` so that the
    real finders import the module as they would have.
    """

    def __init__(self, report: Any) -> None:
        """Args:
            report: called once with ``"importing NAME"`` (``NAME``: the adapter's framework name).
        """
        from .adapters.registry import adapters

        self._names = {module: adapter.name for adapter in adapters() for module in adapter.modules}
        self._report = report
        self.seen: str | None = None

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> None:
        """Note ``fullname`` if it is the first module of a known framework; never finds it (returns ``None``)."""
        name = self._names.get(fullname.partition(".")[0])
        if name is not None and self.seen is None:
            self.seen = name
            self._report(f"importing {name}")
        return None


def main() -> None:
    """Serve one spec: load it, answer the first operation, then each request line, until the pipe closes.

    Ends the process with ``os._exit`` (0; 130 when interrupted), never returning. ``SIGINT``
    is ignored: the caller started this process with it blocked and stops it on Ctrl-C itself.
    """
    if hasattr(signal, "pthread_sigmask"):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    request = json.loads(sys.argv[1])
    answers = os.fdopen(request["answers"], "w", encoding="utf-8")
    requests = os.fdopen(request["requests"], "r", encoding="utf-8")
    debug = bool(request.get("debug"))

    def send(payload: dict[str, Any]) -> None:
        answers.write(json.dumps(payload, ensure_ascii=False) + "\n")
        answers.flush()

    try:
        doing = "running" if request["op"]["what"] == "trace" else "loading"
        loaded = None
        try:
            if not debug:
                quiet_framework_warnings()
            sys.dont_write_bytecode = True  # no __pycache__ in the user's folders
            from .load import load

            watcher = FrameworkImports(lambda text: send({"progress": text})) if request.get("progress") else None
            if watcher is not None:
                sys.meta_path.insert(0, watcher)
            try:
                with time_limit(request.get("timeout"), request["spec"], doing=doing):
                    loaded = load(request["spec"], trust=bool(request.get("trust")))
                    if watcher is not None and request["op"]["what"] == "trace":
                        send({"progress": f"running {request['op'].get('call') or loaded.adapter.trace_call or 'the run'}"})
                    document = perform(loaded, request["op"])
            finally:
                if watcher is not None and watcher in sys.meta_path:
                    sys.meta_path.remove(watcher)
            send(answer(document, loaded.files))
        except KeyboardInterrupt:
            raise
        except BaseException as e:  # noqa: BLE001 - every failure goes back to the caller as one answer
            send(failure(e, debug))
            loaded = None
        for line in requests:
            if loaded is None:
                break
            try:
                send(answer(perform(loaded, json.loads(line))))
            except KeyboardInterrupt:
                raise
            except BaseException as e:  # noqa: BLE001
                send(failure(e, debug))
    except KeyboardInterrupt:
        _end(130)
    except BrokenPipeError:  # the caller went away
        _end(1)
    _end(0)


def _end(code: int) -> None:
    """Flush what the user's code printed and end the process now: no ``atexit`` hook, no waiting for threads."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - a closed or replaced stream
            pass
    os._exit(code)


if __name__ == "__main__":
    main()
