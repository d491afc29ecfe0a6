"""The one way from a spec to a loop model (or a trace), for every entry point.

The command line (``render``, ``show``, ``trace``, ``check``, ``card``, both sides of ``diff``),
the mkdocs plugin, the Sphinx directive and ``loopdoc.load_loop`` all call this module; the
notebook, which holds a live trainer, calls ``loopdoc.loop``, which runs the same adapter code.
A spec is:

- ``loop.json``: a saved model, read here (imports neither torch nor any framework);
- ``learner.py[:ATTR]``, ``package.module[:ATTR]``, or a file an adapter reads (a fastai
  ``learn.export()`` pickle): loaded in a worker process (``loopdoc.worker``);
- ``git:REV:PATH.py[:ATTR]`` / ``git:REV:PATH.json``: ``PATH`` as it is at git revision ``REV``
  (``loopdoc.git``), then as above.

A worker is a child process per spec: what the user's code does (prints, ``atexit`` hooks,
threads, ``os._exit``, crashes, a cancelled timer, modules it leaves imported) cannot reach the
caller. Its answers arrive on a pipe of loopdoc's own. With ``timeout``, a worker that has not
answered ``GRACE`` seconds after it is killed. A worker stays up for further calls of the same
learner (``Worker.ask``) until it is closed: the docs-site plugins document several calls of one
learner with one import.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

from . import errors, interrupts
from .errors import InternalError, LoadError, LoopdocError, Terminated, UsageError
from .limits import GRACE, check_timeout
from .model.documents import load_json
from .model.loop import Loop

if TYPE_CHECKING:
    import subprocess

    from .progress import Progress

GIT_PREFIX = "git:"  # as loopdoc.git.GIT_PREFIX, without importing git (and tarfile) for other specs


class Resolved(NamedTuple):
    """A document and what it was read from.

    Attributes:
        document: the ``Loop`` (or, for a trace, the ``loopdoc.model.trace.Trace``).
        files: the user's source files the load read (the learner file, sibling modules it
            imported; the ``.json`` for a saved model), absolute, sorted: what to watch for changes.
    """

    document: Any
    files: tuple[str, ...] = ()


def resolve(spec: str, call: str | None = None, *, trust_pickle: bool = False, timeout: float | None = None,
            debug: bool = False, isolated: bool = True) -> Resolved:
    """The loop model a spec names.

    Args:
        spec: see the module doc.
        call: the call to document (``"fine_tune(2)"``); ``None``: the framework's default
            (fastai: ``fit``). Not allowed for a saved model.
        trust_pickle: allow a pickled trainer (unpickling runs any code the file names).
        timeout: seconds the load and the call may take (``None``: no limit).
        debug: tracebacks of the worker's errors on stderr.
        isolated: load in a worker process (the default); ``False`` loads in this process
            (tests; the module stays imported).

    Returns:
        ``Resolved`` with a ``Loop``.

    Raises:
        LoopdocError: any failure, one line naming the file: ``CallError`` (a bad ``call``, whenever it is
            found: ``SPEC: --call 'TEXT': PROBLEM``), ``UsageError`` (bad spec, a pickle without ``trust_pickle``),
            ``LearnerNotFound``, ``LoadError`` (the user's code failed, crashed, ended the process, or ran out of
            time), ``ModelError``.
    """
    return _resolve(spec, {"what": "loop", "call": call}, trust_pickle, timeout, debug, isolated)


def resolve_trace(spec: str, call: str | None = None, *, batches: int = 3, timeout: float | None = None,
                  debug: bool = False, isolated: bool = True, verbose: bool = False) -> Resolved:
    """A real, capped run of ``call`` on the trainer a spec names (``loopdoc trace``).

    Args:
        spec: a learner file or module (not a saved model).
        call: the call to run; ``None``: the adapter's default (fastai: ``fit(1)``).
        batches: at most this many batches per batch loop (at least 1).
        timeout: seconds the load and the run may take.
        debug: tracebacks on stderr.
        isolated: run in a worker process (the default).
        verbose: let the run's own output through to stderr (progress bars, "Better model
            found" lines); by default it is discarded (``loopdoc.worker.perform``).

    Returns:
        ``Resolved`` with a ``loopdoc.model.trace.Trace``.

    Raises:
        LoopdocError: as ``resolve``; ``UsageError`` for a saved model or ``batches`` < 1.
    """
    if batches < 1:
        raise UsageError(f"--batches {batches}: must be at least 1")
    return _resolve(spec, {"what": "trace", "call": call, "batches": batches, "verbose": verbose}, False, timeout, debug,
                    isolated)


def _resolve(spec: str, op: dict[str, Any], trust: bool, timeout: float | None, debug: bool, isolated: bool) -> Resolved:
    with start(spec, op, trust_pickle=trust, timeout=timeout, debug=debug, isolated=isolated) as pending:
        return pending.result()


def spec_files(spec: str) -> tuple[str, ...]:
    """The files a spec names, found without running anything: what an output must not overwrite before loading.

    A saved model or a learner file is itself; ``git:REV:PATH`` is ``PATH`` in the working tree
    (the revision is read with ``git show``, but the file beside it is the user's); a module
    name (``package.module``) names no file until it is imported: after loading, ``Resolved.files``
    lists every file the load read.

    Args:
        spec: as for ``resolve``.

    Returns:
        Paths as given (relative to the working directory), possibly none.

    Raises:
        UsageError: a malformed spec.
    """
    if spec.startswith(GIT_PREFIX):
        from .git import GitSpec

        return (GitSpec.parse(spec).path,)
    if spec.lower().endswith(".json"):
        return (spec,)
    from .load import Spec

    parsed = Spec.parse(spec)
    return (parsed.target,) if parsed.is_file else ()


def start(spec: str, op: dict[str, Any] | None = None, *, trust_pickle: bool = False, timeout: float | None = None,
          debug: bool = False, isolated: bool = True, cwd: str | None = None,
          output: Callable[[str], None] | None = None) -> Pending:
    """Start resolving a spec without waiting: two learners load at once (``loopdoc diff``).

    Args:
        spec: see the module doc.
        op: the first operation (``{"what": "loop", "call": None}`` when ``None``).
        trust_pickle, timeout, debug, isolated: as for ``resolve``.
        cwd: the working directory to load in (relative paths in ``spec`` start there, and
            source paths in the model are shown relative to it); ``None``: this process's.
        output: ``None``: what the user's code prints (and the frameworks' warnings) goes to this
            process's stderr, as on the command line; else each line of it (without its line end) is
            passed to ``output`` as the worker answers, and nothing reaches stderr (the docs-site
            plugins log it). Not used in-process.

    Returns:
        A ``Pending``; use it as a context manager (it stops its worker and removes a git export on exit).

    Raises:
        LoopdocError: a failure found before any user code runs (a malformed spec, a git error,
            a ``call`` that is no Python call or names a method no installed adapter accepts:
            ``loopdoc.calls.check_call``, a ``CallError`` naming ``spec``; a bad ``timeout``: ``loopdoc.limits.check_timeout``; before any
            worker starts).
    """
    op = op or {"what": "loop", "call": None}
    check_timeout(timeout)  # before a worker starts: a negative limit would be a deadline already passed
    if op.get("call") is not None:
        from .calls import check_call

        try:
            check_call(op["call"])
        except errors.CallError as e:
            raise e.naming(spec) from None
    pending = Pending(spec)
    try:
        with working_directory(cwd):
            pending.begin(op, trust_pickle, timeout, debug, isolated, cwd, output)
    except BaseException:
        pending.close()
        raise
    return pending


class Pending:
    """A spec being resolved: a saved model already read, or a worker loading it (see ``start``)."""

    def __init__(self, spec: str) -> None:
        """Nothing is started until ``begin``.

        Args:
            spec: the spec as given.
        """
        self.spec = spec
        self._stack = contextlib.ExitStack()
        self._done: Resolved | None = None
        self._worker: Worker | None = None
        self._exported: Any = None

    def begin(self, op: dict[str, Any], trust: bool, timeout: float | None, debug: bool, isolated: bool,
              cwd: str | None = None, output: Callable[[str], None] | None = None) -> None:
        """Read a saved model now, or start the worker (see ``start`` for the arguments)."""
        target = self.spec
        if target.startswith(GIT_PREFIX):
            from .git import GitSpec, export_revision, rewrite_loop, rewriting  # git, tarfile: only for git: specs

            git = GitSpec.parse(target)
            folder = self._stack.enter_context(tempfile.TemporaryDirectory(prefix="loopdoc-git-"))
            self._exported = export_revision(git, folder)
            target = str(self._exported.file) + (f":{git.attr}" if git.attr else "")
            if git.is_json:
                with rewriting(self._exported):
                    self._done = Resolved(rewrite_loop(_saved(target, op), self._exported, None))
                return
        elif target.lower().endswith(".json"):
            self._done = Resolved(_saved(target, op), (os.path.abspath(target),))
            return
        self._stack.callback(self._close_worker)  # first, so that an interrupt right after the start still closes it
        self._worker = Worker(target, op, trust=trust, timeout=timeout, debug=debug, isolated=isolated, shown=self.spec,
                              cwd=cwd, output=output)

    def result(self) -> Resolved:
        """Wait for the first operation's answer.

        Returns:
            The ``Resolved`` document (for a git spec: shown as ``git:REV:PATH``).

        Raises:
            LoopdocError: the load or the operation failed (the worker's error, or how it died).
        """
        if self._done is None:
            assert self._worker is not None
            if self._exported is None:
                self._done = self._worker.result()
            else:
                from .git import rewrite_loop, rewriting

                with rewriting(self._exported):
                    resolved = self._worker.result()
                    document = resolved.document
                    if isinstance(document, Loop):
                        document = rewrite_loop(document, self._exported, document.learner.loaded_from.rpartition(":")[2])
                    self._done = Resolved(document, ())
        return self._done

    def _close_worker(self) -> None:
        if self._worker is not None:
            self._worker.close()

    @property
    def worker(self) -> Worker | None:
        """The worker, for further calls (``Worker.ask``), or ``None`` for a saved model."""
        return self._worker

    def close(self) -> None:
        """Stop the worker and remove a git export."""
        self._stack.close()

    def __enter__(self) -> Pending:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _saved(path: str, op: dict[str, Any]) -> Loop:
    if op.get("call") is not None:
        raise UsageError(f"{path}: --call needs a learner; a saved model already holds the loop of one call")
    if op["what"] != "loop":
        raise UsageError(f"{path}: a saved model cannot be run; trace a learner file")
    document = load_json(path)
    if not isinstance(document, Loop):
        raise errors.ModelError(f"{path}: a {type(document).__name__.lower()}, not a loop model")
    return document


_POLL = 0.25  # seconds between checks for a signal noted in loopdoc.interrupts while waiting for a worker

_ERRORS = {cls.__name__: cls for cls in (errors.UsageError, errors.CallError, errors.LearnerNotFound, errors.LoadError,
                                        errors.RunError, errors.ModelError, errors.OutputError, errors.TemplateError,
                                        errors.CardError, InternalError, LoopdocError)}


class Worker:
    """A worker process (``python -m loopdoc.worker``) that has loaded one spec and answers operations.

    In-process (``isolated=False``) the same ``loopdoc.worker.perform`` runs here instead.
    """

    def __init__(self, spec: str, op: dict[str, Any], *, trust: bool = False, timeout: float | None = None,
                 debug: bool = False, isolated: bool = True, shown: str | None = None, cwd: str | None = None,
                 output: Callable[[str], None] | None = None) -> None:
        """Start loading ``spec`` and running ``op``.

        Args:
            spec: a learner spec (not a saved model).
            op: the first operation (see ``loopdoc.worker``).
            trust: allow a pickle.
            timeout: seconds for the load and ``op``; the worker is killed ``GRACE`` seconds after.
            debug: tracebacks on stderr.
            isolated: ``False`` to run in this process.
            shown: the spec as the user gave it, for messages (``git:REV:PATH``).
            cwd: the working directory to load in; ``None``: this process's.
            output: where the worker's stdout and stderr go, line by line (see ``start``); ``None``: this process's stderr.

        Raises:
            UsageError: a negative, NaN or infinite ``timeout`` (before anything starts).
            LoadError: the worker process could not be started (or its output file could not be made).
        """
        check_timeout(timeout)
        self.spec, self.shown, self.timeout = spec, shown or spec, timeout
        self._doing = "running" if op["what"] == "trace" else "loading"
        self._first: dict[str, Any] | None = None
        self._loaded: Any = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._buffer = b""
        self._cwd = cwd
        self._output = output
        self._log: Any = None  # the file the worker's output goes to, read as it grows (output given)
        self._partial = b""
        self._progress: Progress | None = None
        if not isolated:
            with working_directory(cwd):
                self._first = _in_process(spec, op, trust, timeout, debug, self)
            return
        import subprocess  # here, not at module level: reading a saved model starts no process

        from .progress import active

        self._progress = None if output is not None else active()
        sink = self._open_log() if output is not None else 2
        req_r, req_w = os.pipe()
        ans_r, ans_w = os.pipe()
        # The user's prints go to our stderr (file descriptor 2) or to ``output``, never to our stdout; while a
        # progress line is shown, through a pipe that loopdoc.progress relays, so they never land inside the line.
        out_r, out_w = os.pipe() if self._progress is not None else (None, sink)
        request = {"spec": spec, "op": op, "trust": trust, "timeout": timeout, "debug": debug,
                   "requests": req_r, "answers": ans_w, "progress": self._progress is not None}
        try:
            # The worker starts with SIGINT blocked (then ignores it): on Ctrl-C this process stops it and says
            # "interrupted", so the worker never prints a KeyboardInterrupt traceback of its own, not even while it
            # imports. A Ctrl-C while it starts stays pending here and arrives when the block ends: the worker is then killed.
            with _sigint_blocked():
                self._proc = subprocess.Popen([sys.executable, "-m", "loopdoc.worker", json.dumps(request)],
                                              stdin=subprocess.DEVNULL, stdout=out_w, stderr=None if out_w == 2 else out_w,
                                              pass_fds=(req_r, ans_w), cwd=cwd)
            self._started = time.monotonic()
            os.close(req_r)
            req_r = -1
            os.close(ans_w)
            ans_w = -1
            self._requests = os.fdopen(req_w, "w", encoding="utf-8")
            self._answers = ans_r
        except BaseException as e:  # no worker may outlive a failed start (a Ctrl-C right after it started, say)
            if self._proc is not None:
                self._proc.kill()
                self._proc.wait()
                self._proc = None
            for fd in (req_r, req_w, ans_r, ans_w, *((out_r, out_w) if out_r is not None else ())):
                with contextlib.suppress(OSError):
                    if fd >= 0:
                        os.close(fd)
            if isinstance(e, OSError):
                raise LoadError(f"{self.shown}: cannot start {sys.executable}: {e.strerror or e}") from e
            raise
        finally:
            if sink != 2:
                os.close(sink)
        if self._progress is not None:
            assert out_r is not None
            os.close(out_w)
            self._progress.relay(out_r)
            self._progress.begin(self, f"loading {self.shown}")

    def result(self) -> Resolved:
        """The first operation's document.

        Raises:
            LoopdocError: as ``resolve``.
        """
        if self._first is None:
            try:
                self._first = self._read(self._deadline())
            finally:
                self._end_progress()
        return Resolved(_document(self._first, self.shown), tuple(self._first.get("files", ())))

    def ask(self, op: dict[str, Any]) -> Any:
        """Another operation on the loaded trainer (e.g. another ``--call``); no time limit.

        Args:
            op: see ``loopdoc.worker``.

        Returns:
            The ``Loop`` or ``Trace``.

        Raises:
            LoopdocError: the first operation failed (the trainer never loaded), or this one did.
        """
        first = self.result()  # raises if loading failed
        del first
        if self._proc is None:
            from .worker import answer, failure, perform

            try:
                with working_directory(self._cwd):
                    payload = answer(perform(self._loaded, op))
            except BaseException as e:  # noqa: BLE001 - as the worker reports it
                if isinstance(e, KeyboardInterrupt):
                    raise
                payload = failure(e, False)
            return _document(payload, self.shown)
        try:
            self._requests.write(json.dumps(op) + "\n")
            self._requests.flush()
        except OSError as e:  # the worker died
            raise self._death() from e
        return _document(self._read(None), self.shown)

    def close(self) -> None:
        """End the worker (it exits when its request pipe closes; killed if it does not within ``GRACE`` seconds)."""
        self._end_progress()
        if self._proc is None:
            return
        with contextlib.suppress(OSError):
            self._requests.close()
        with contextlib.suppress(OSError):
            os.close(self._answers)
        import subprocess

        try:
            self._proc.wait(timeout=GRACE)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        except BaseException:
            self._proc.kill()
            self._proc.wait()
            raise
        finally:
            self._drain(final=True)
        self._proc = None

    # -- the worker's output, when captured ---------------------------------
    def _open_log(self) -> int:
        """An unlinked temporary file for the worker's stdout and stderr; returns the descriptor the worker writes to.

        The worker writes through its own descriptor opened with ``O_APPEND`` and this process
        reads through another, so reading never moves where the worker writes.
        """
        try:
            fd, path = tempfile.mkstemp(prefix="loopdoc-worker-", suffix=".log")
            try:
                os.close(fd)
                sink = os.open(path, os.O_WRONLY | os.O_APPEND)
                self._log = open(path, "rb")  # noqa: SIM115 - closed in _drain(final=True)
            finally:
                os.unlink(path)
        except OSError as e:
            raise LoadError(f"{self.shown}: cannot make a file for the worker's output: {e.strerror or e}") from e
        return sink

    def _drain(self, final: bool = False) -> None:
        """Pass the complete lines the worker has written since the last call to ``output`` (all of it when ``final``)."""
        if self._log is None or self._output is None:
            return
        data = self._partial + self._log.read()
        lines = data.split(b"\n")
        self._partial = b"" if final else lines.pop()
        if final and lines and not lines[-1]:
            lines.pop()
        for line in lines:
            self._output(line.decode("utf-8", "replace").rstrip("\r"))
        if final:
            self._log.close()
            self._log = None

    # -- internals ---------------------------------------------------------
    def _end_progress(self) -> None:
        if self._progress is not None:
            self._progress.end(self)

    def _deadline(self) -> float | None:
        return None if not self.timeout else self._started + self.timeout + GRACE

    def _read(self, deadline: float | None) -> dict[str, Any]:
        """One answer line from the worker, waiting until ``deadline`` (``time.monotonic``); progress lines
        (``{"progress": TEXT}``) on the way go to the progress line."""
        import select

        assert self._proc is not None
        try:
            while b"\n" not in self._buffer:
                interrupts.raise_if_received()  # a Ctrl-C whose KeyboardInterrupt Python swallowed somewhere
                wait = _POLL if deadline is None else max(0.0, min(_POLL, deadline - time.monotonic()))
                ready, _, _ = select.select([self._answers], [], [], wait)
                if not ready and (deadline is None or time.monotonic() < deadline):
                    continue
                if not ready:
                    self._proc.kill()
                    self._proc.wait()
                    raise LoadError(f"{self.shown}: still {self._doing} after {self.timeout:g} s (--timeout {self.timeout:g}) "
                                    "and did not stop; gave up")
                chunk = os.read(self._answers, 1 << 20)
                if not chunk:
                    raise self._death()
                self._buffer += chunk
        except (KeyboardInterrupt, Terminated):
            self._proc.kill()  # do not leave the worker running
            self._proc.wait()
            raise
        line, _, self._buffer = self._buffer.partition(b"\n")
        self._drain()
        try:
            payload = json.loads(line.decode("utf-8"))
        except ValueError as e:
            raise InternalError(f"{self.shown}: internal error: the worker's answer is not JSON ({e})") from e
        if isinstance(payload, dict) and "progress" in payload:  # what the worker is doing; the answer follows
            if self._progress is not None:
                self._progress.detail(self, str(payload["progress"]))
            return self._read(deadline)
        return payload

    def _death(self) -> LoopdocError:
        """The error for a worker that ended without answering: the user's code ended or crashed the process."""
        assert self._proc is not None
        code = self._proc.wait()
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            return LoadError(f"{self.shown}: the process loading it was killed by {name} (a crash in the learner's code "
                             "or a library it calls)")
        return LoadError(f"{self.shown}: the learner's code ended the process (exit status {code}, e.g. os._exit) "
                         "before loopdoc could read it")


@contextlib.contextmanager
def _sigint_blocked() -> Iterator[None]:
    """``SIGINT`` blocked (held pending, not lost) in the block; a child process started in it inherits the mask."""
    if not hasattr(signal, "pthread_sigmask"):  # Windows
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _in_process(spec: str, op: dict[str, Any], trust: bool, timeout: float | None, debug: bool, worker: Worker) -> dict[str, Any]:
    """What the worker process would answer, computed in this process (``isolated=False``)."""
    from .limits import time_limit
    from .load import load
    from .worker import answer, failure, perform

    try:
        with time_limit(timeout, spec, doing="running" if op["what"] == "trace" else "loading"):
            loaded = load(spec, trust=trust)
            document = perform(loaded, op)
    except KeyboardInterrupt:
        raise
    except BaseException as e:  # noqa: BLE001 - as the worker reports it
        return failure(e, debug)
    worker._loaded = loaded
    return answer(document, loaded.files)


def _document(payload: dict[str, Any], shown: str) -> Any:
    """The document of an answer, or its error raised as the loopdoc error class it names (a ``CallError`` or ``RunError`` names ``shown``)."""
    if not payload.get("ok"):
        cls = _ERRORS.get(str(payload.get("error")), LoopdocError)
        error = cls(str(payload.get("message") or f"{shown}: failed"))
        error.files = tuple(str(f) for f in payload.get("files") or ())
        raise error.naming(shown) if isinstance(error, (errors.CallError, errors.RunError)) else error
    data = payload["document"]
    if payload.get("kind") == "trace":
        from .model.trace import Trace

        return Trace.from_dict(data)
    return Loop.from_dict(data)


@contextlib.contextmanager
def working_directory(path: str | os.PathLike[str] | None) -> Iterator[None]:
    """Run the body with ``path`` as the working directory (``None``: unchanged), restoring the previous one.

    Args:
        path: an existing folder, or ``None``.

    Raises:
        LoadError: ``path`` cannot be entered.
    """
    if path is None:
        yield
        return
    before = os.getcwd()
    try:
        os.chdir(path)
    except OSError as e:
        raise LoadError(f"{path}: cannot use as the working directory: {e.strerror or e}") from e
    try:
        yield
    finally:
        os.chdir(before)
