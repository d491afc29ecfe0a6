"""Load the user's ``Learner`` from ``learner.py[:ATTR]`` or ``package.module[:ATTR]``.

Loading runs the user's module as ``python learner.py`` (or ``python -m package.module``)
would: while it and ``ATTR`` run, its folder (or the working directory) is first on
``sys.path`` and ``sys.argv`` is ``[learner.py]``; what it prints goes to stderr, so
that loopdoc's stdout carries only the document. Afterwards all three are restored
and nothing else is touched: loopdoc imports no fastai module before the user's
code runs, because some of them change ``fastai.learner.defaults.callbacks`` on
import (``fastai.callback.progress`` appends ``ProgressCallback``) and so the
callbacks a learner gets.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

from .creation import watch_creation
from .errors import LearnerNotFound, LoadError, UsageError
from .paths import display_path

T = TypeVar("T")


@dataclass(frozen=True)
class Spec:
    """A parsed learner spec.

    Attributes:
        target: a ``.py`` path or a dotted module name, as given.
        attr: the dotted attribute after ``:``, or ``None``.
        is_file: ``True`` for a path, ``False`` for a module name.
    """

    target: str
    attr: str | None
    is_file: bool

    @classmethod
    def parse(cls, text: str) -> Spec:
        """Parse ``PATH.py[:ATTR]`` or ``package.module[:ATTR]``.

        The last ``:`` separates ``ATTR`` unless what follows it looks like a
        path (``C:\\x\\learner.py``, ``runs:2024/learner.py``). A target is a
        path when it ends in ``.py``, contains a path separator or names an
        existing file; otherwise it must be a dotted module name.

        Args:
            text: the spec as given on the command line.

        Returns:
            The ``Spec``.

        Raises:
            UsageError: empty target, empty or non-identifier ``ATTR``, or a
                target that is neither a path nor a module name.
        """
        target, attr = text, None
        head, sep, tail = text.rpartition(":")
        if sep and not (tail.endswith(".py") or "/" in tail or "\\" in tail):
            target, attr = head, tail
        usage = "expected PATH.py[:ATTR] or package.module[:ATTR]"
        if not target:
            raise UsageError(f"{text}: no file or module before ':'; {usage}")
        if attr == "":
            raise UsageError(f"{target}: empty ATTR after ':'; {usage}")
        if attr is not None and not _is_dotted_name(attr):
            raise UsageError(f"{target}: ATTR {attr!r} is not a dotted Python name; {usage}")
        is_file = target.endswith(".py") or "/" in target or "\\" in target or _exists(target)
        if not is_file and not _is_dotted_name(target):
            raise UsageError(f"{text}: {target!r} is neither a .py file nor a module name; {usage}")
        return cls(target, attr, is_file)


def _is_dotted_name(text: str) -> bool:
    return all(part.isidentifier() for part in text.split("."))


def _exists(path: str) -> bool:
    try:
        return os.path.isfile(path)
    except (OSError, ValueError):
        return False


@dataclass(frozen=True)
class Loaded:
    """A learner and where it came from.

    Attributes:
        learner: the ``fastai.learner.Learner``.
        loaded_from: ``"<display path or module>:<attr>"``, e.g. ``"examples/synth.py:learn"``.
        namespace: the module's globals, for evaluating a ``--call``'s arguments.
        at_create: ``id()`` of the callbacks the learner had when ``Learner.__init__``
            fired ``after_create`` (``loopdoc.creation``), or ``None`` when not observed.
    """

    learner: Any
    loaded_from: str
    namespace: dict[str, Any]
    at_create: frozenset[int] | None = None


def load(text: str) -> Loaded:
    """Import the module a spec names and return its ``Learner``.

    Args:
        text: ``PATH.py[:ATTR]`` or ``package.module[:ATTR]``. ``ATTR`` (dotted
            allowed) names a ``Learner`` or a zero-argument callable returning
            one; without it the module must define exactly one ``Learner`` at
            module level.

    Returns:
        ``Loaded``.

    Raises:
        UsageError: malformed spec.
        LoadError: missing file or module, a syntax error, an exception or
            ``sys.exit`` while importing or while calling ``ATTR``.
        LearnerNotFound: no ``Learner``, several, or ``ATTR`` missing, not a
            ``Learner``, a callable that needs arguments or returns something
            else (the message lists what was found).
    """
    spec = Spec.parse(text)
    if spec.is_file:
        path = Path(spec.target)
        _check_file(path)
        where, folder, argv0, user = display_path(spec.target), str(path.resolve().parent), str(path), path.resolve()
    else:
        where, folder, argv0 = spec.target, os.getcwd(), spec.target
        user = None
    with _as_script(folder, argv0), watch_creation() as created:
        if spec.is_file:
            module = _exec_file(path, where)
        else:
            module = _import_module(spec.target)
            user = _module_root(spec.target)
        if spec.attr is not None:
            learner = _from_attr(module, spec.attr, where, user)
            return Loaded(learner, f"{where}:{spec.attr}", vars(module), created.get(id(learner)))
    name, learner = _only_learner(module, where)
    return Loaded(learner, f"{where}:{name}", vars(module), created.get(id(learner)))


PICKLE_SUFFIXES = (".pkl", ".pickle")


def is_pickle_spec(text: str) -> bool:
    """Whether a spec names a pickled learner (``learn.export()``, fastai's default name ``export.pkl``).

    Args:
        text: the spec as given: ``PATH.pkl`` or ``PATH.pickle`` (any case), maybe followed by ``:ATTR``.

    Returns:
        ``True`` for a pickle; it is then loaded by ``load_pickle``, which refuses an ``ATTR``.
    """
    target = text.rpartition(":")[0] if ":" in text and not text.lower().endswith(PICKLE_SUFFIXES) else text
    return target.lower().endswith(PICKLE_SUFFIXES)


def load_pickle(text: str, *, trust: bool) -> Loaded:
    """Load a ``Learner`` saved by ``learn.export()``, with ``fastai.learner.load_learner(path, cpu=True)``.

    Unpickling runs whatever code the file names, so this refuses unless ``trust``.
    While unpickling, the file's folder is first on ``sys.path`` (so classes from a
    sibling ``learner.py`` can be found) and prints go to stderr, as for a ``.py``.
    fastai 2.8.12's ``load_learner(fname, cpu=True, pickle_module=pickle)`` calls
    ``torch.load(..., weights_only=False)`` and warns that pickle is insecure; the
    warning is silenced, since ``trust`` says the user has decided. When a class the
    learner was exported with cannot be imported, fastai 2.8.12 hides the ``ImportError``
    (and fails with ``UnboundLocalError``); loopdoc then unpickles once more with the same
    ``torch.load`` call to report it.

    Args:
        text: ``PATH.pkl`` or ``PATH.pickle`` (no ``:ATTR``).
        trust: the user passed ``--trust-pickle``.

    Returns:
        ``Loaded`` with ``loaded_from`` the file as shown and an empty namespace.

    Raises:
        UsageError: ``:ATTR`` given, or ``trust`` is false (the message says why and how).
        LoadError: missing or unreadable file, not a pickle, or unpickling failed
            (e.g. a custom class that cannot be imported).
        LearnerNotFound: the pickle holds something other than a ``Learner``.
    """
    import warnings

    if not text.lower().endswith(PICKLE_SUFFIXES):
        raise UsageError(f"{text}: a pickled learner has no ATTR; give the file alone")
    path = Path(text)
    where = display_path(text)
    _check_file(path, PICKLE_SUFFIXES)
    if not trust:
        raise UsageError(f"{where}: a pickled Learner (learn.export()); unpickling runs any code the file contains, so "
                         "loopdoc loads it only with --trust-pickle: pass it only for a file you trust, or document "
                         "the learner.py that builds the learner instead")
    with _as_script(str(path.resolve().parent), str(path)):
        def unpickle() -> Any:
            from fastai.learner import load_learner

            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*load_learner.*insecure pickle", category=UserWarning)
                try:
                    return load_learner(path, cpu=True)
                except UnboundLocalError:
                    # fastai 2.8.12's load_learner catches an ImportError, re-raises only those naming
                    # fastcore.transform/dispatch, then fails on its unset `res`. Unpickle again with
                    # the same torch.load call to raise the ImportError it hid.
                    import pickle

                    import torch

                    torch.load(path, map_location="cpu", pickle_module=pickle, weights_only=False)
                    raise

        try:
            learner = _run_user_code(unpickle, where, None, "while unpickling")
        except LoadError as e:
            cause = e.__cause__
            if not isinstance(cause, (ImportError, AttributeError)):
                raise
            lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
            raise LoadError(f"{where}: cannot unpickle: {type(cause).__name__}: {_one_line(lines[-1] if lines else '')}; "
                            "the classes and functions the learner was exported with must be importable "
                            "(the pickle's folder is first on sys.path)") from cause
    learner_cls = _learner_class()
    if learner_cls is None or not isinstance(learner, learner_cls):
        raise LearnerNotFound(f"{where}: holds {_a(type(learner).__name__)}, not a Learner")
    return Loaded(learner, where, {})


@contextlib.contextmanager
def _as_script(folder: str, argv0: str) -> Iterator[None]:
    """Run the body as ``python argv0`` would: ``folder`` first on ``sys.path``, ``sys.argv == [argv0]``.

    The user's prints go to stderr: ``sys.stdout`` is ``sys.stderr``, and file descriptor 1
    is a copy of 2, so that ``print(file=sys.__stdout__)``, ``os.write(1, …)``, C
    libraries and child processes cannot write into a document sent to stdout
    (``-o -``) either. All are restored afterwards, and so is the working directory
    (a script may ``os.chdir`` to its data; loopdoc's output paths and the source paths it
    shows stay relative to where it was started); a ``sys.path`` entry the user's code
    added is kept.
    """
    argv = sys.argv
    cwd = _getcwd()
    sys.path.insert(0, folder)
    sys.argv = [argv0]
    saved_fd = _stdout_to_stderr()
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.argv = argv
        if cwd is not None and _getcwd() != cwd:
            with contextlib.suppress(OSError):
                os.chdir(cwd)
        with contextlib.suppress(ValueError):  # the user's code may have removed it
            sys.path.remove(folder)
        if saved_fd is not None:
            _flush(sys.__stdout__)
            with contextlib.suppress(OSError):
                os.dup2(saved_fd, 1)
            os.close(saved_fd)


def _getcwd() -> str | None:
    try:
        return os.getcwd()
    except OSError:  # the working directory was removed
        return None


def _flush(stream: Any) -> None:
    with contextlib.suppress(Exception):  # None, closed, or a broken replacement
        stream.flush()


def _stdout_to_stderr() -> int | None:
    """Point file descriptor 1 at what 2 is; return a copy of the old 1 to restore, or ``None`` when either is unusable."""
    _flush(sys.stdout)
    _flush(sys.__stdout__)
    try:
        saved = os.dup(1)
    except OSError:
        return None
    try:
        os.dup2(2, 1)
    except OSError:
        os.close(saved)
        return None
    return saved


def _check_file(path: Path, suffixes: tuple[str, ...] = (".py",)) -> None:
    kind = "/".join(suffixes)
    try:
        if path.is_dir():
            raise LoadError(f"{path}: is a folder, not a {kind} file")
        if not path.is_file():
            raise LoadError(f"{path}: no such file")
        if path.suffix not in suffixes and not (suffixes != (".py",) and path.suffix.lower() in suffixes):
            raise LoadError(f"{path}: not a .py file (expected PATH.py[:ATTR], package.module[:ATTR] or a saved .json model)")
        path.resolve(strict=True)
    except OSError as e:
        raise LoadError(f"{path}: cannot read: {e.strerror or e}") from e
    except RuntimeError as e:  # symlink loop (Python < 3.13)
        raise LoadError(f"{path}: cannot read: {e}") from e


def _exec_file(path: Path, where: str) -> ModuleType:
    name = path.stem if path.stem.isidentifier() else "learner_module"
    existing = sys.modules.get(name)
    if existing is not None and getattr(existing, "__file__", None) != str(path.resolve()):
        name = f"_loopdoc_{name}"
    spec = importlib.util.spec_from_file_location(name, path.resolve())
    if spec is None or spec.loader is None:
        raise LoadError(f"{where}: cannot be imported as a Python module")
    loader = spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        _run_user_code(lambda: loader.exec_module(module), where, path.resolve())
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def _import_module(name: str) -> ModuleType:
    if importlib.util.find_spec(name.split(".")[0]) is None:
        raise LoadError(f"{name}: no such module (not importable from {display_path('.')} or sys.path)")
    try:
        return _run_user_code(lambda: importlib.import_module(name), name, _module_root(name))
    except LoadError as e:
        missing = e.__cause__
        if isinstance(missing, ModuleNotFoundError) and missing.name and (name + ".").startswith(missing.name + "."):
            raise LoadError(f"{name}: no such module ({missing.name} not found)") from missing
        raise


def _module_root(name: str) -> Path | None:
    """The file or package folder of the top-level package of ``name`` (never runs its code)."""
    try:
        spec = importlib.util.find_spec(name.split(".")[0])
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations))).resolve()
    return Path(spec.origin).resolve() if spec.origin else None


def _run_user_code(fn: Callable[[], T], where: str, user: Path | None, doing: str = "") -> T:
    """Call ``fn``; turn any failure of the user's code into a one-line ``LoadError``.

    Args:
        fn: runs the user's code.
        where: how to name the code when no frame of ``user`` is in the traceback.
        user: the user's file, or the folder of the user's package, whose
            innermost traceback frame locates the error; ``None`` for none.
        doing: what was being done, e.g. ``"while calling make()"``; ``""`` for importing.

    Raises:
        LoadError: ``fn`` raised anything but ``KeyboardInterrupt`` or ``loopdoc.limits.Timeout``
            (``sys.exit`` included).
    """
    from .limits import Timeout

    suffix = f" ({doing})" if doing else ""
    try:
        return fn()
    except (KeyboardInterrupt, Timeout):  # Timeout: --timeout's signal, reported by loopdoc.limits.time_limit
        raise
    except SyntaxError as e:
        line = f":{e.lineno}" if e.lineno else ""
        file = _user_path(e.filename) if e.filename else where
        raise LoadError(f"{file}{line}: syntax error: {_one_line(str(e.msg))}{suffix}") from e
    except SystemExit as e:
        raise LoadError(f"{where}: called sys.exit({_one_line(repr(e.code))}) {doing or 'while loading'}") from e
    except BaseException as e:
        raise LoadError(f"{_user_frame(e, where, user)}: {type(e).__name__}: {_first_line(e)}{suffix}") from e


def _user_frame(exc: BaseException, where: str, user: Path | None) -> str:
    """``file:line`` of the innermost traceback frame in the user's file or package, else ``where``."""
    if user is None:
        return where
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if _within(f.filename, user)]
    return f"{_user_path(frames[-1].filename)}:{frames[-1].lineno}" if frames else where


def _user_path(filename: str) -> str:
    """A file of the user's, relative to the working directory when under it, else absolute.

    Unlike ``display_path``, never relative to a ``sys.path`` entry: while the
    user's code runs its own folder is on ``sys.path``.
    """
    if filename.startswith("<"):  # "<string>", "<frozen ...>"
        return filename
    path = Path(os.path.abspath(filename))
    return path.relative_to(Path.cwd()).as_posix() if path.is_relative_to(Path.cwd()) else path.as_posix()


def _within(filename: str, user: Path) -> bool:
    try:
        path = Path(filename).resolve()
    except (OSError, RuntimeError):
        return False
    return path == user or (user.is_dir() and path.is_relative_to(user))


def _one_line(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _first_line(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:  # a broken __str__ must not hide the real error
        text = ""
    lines = text.strip().splitlines()
    return _one_line(lines[0]) if lines else "(no message)"


def _learner_class() -> type | None:
    """``fastai.learner.Learner`` if the user's code imported it, else ``None`` (never imports fastai)."""
    module = sys.modules.get("fastai.learner")
    return getattr(module, "Learner", None)


def _a(type_name: str) -> str:
    return f"{'an' if type_name[:1].lower() in 'aeiou' else 'a'} {type_name}"


def _from_attr(module: ModuleType, attr: str, where: str, user: Path | None) -> Any:
    obj: Any = module
    missing = object()
    for part in attr.split("."):
        value = _run_user_code(lambda o=obj, p=part: getattr(o, p, missing), f"{where}:{attr}", user)
        if value is missing:
            raise LearnerNotFound(f"{where}: has no attribute {attr!r}{_found_hint(module, where)}")
        obj = value
    learner_cls = _learner_class()
    if learner_cls is not None and isinstance(obj, learner_cls):
        return obj
    expected = "not a Learner or a zero-argument function returning one"
    if not callable(obj):
        raise LearnerNotFound(f"{where}:{attr} is {_a(type(obj).__name__)}, {expected}")
    owner = getattr(obj, "__self__", None)
    if learner_cls is not None and isinstance(owner, learner_cls):  # learn.lr_find would train: not a builder
        raise LearnerNotFound(f"{where}:{attr} is a method of a Learner, {expected}; "
                              f"name the Learner ({where}:{attr.rsplit('.', 1)[0]}) and pass the call with --call")
    required = _required_params(obj)
    if required:
        raise LearnerNotFound(f"{where}:{attr} needs arguments ({', '.join(required)}); {expected}")
    made = _run_user_code(obj, f"{where}:{attr}", user, f"while calling {attr}()")
    learner_cls = _learner_class()
    if learner_cls is None or not isinstance(made, learner_cls):
        raise LearnerNotFound(f"{where}:{attr}() returned {_a(type(made).__name__)}, not a Learner")
    return made


def _required_params(fn: Any) -> list[str]:
    """Names of the parameters ``fn`` cannot be called without; ``[]`` when unknown."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return []
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [p.name for p in sig.parameters.values() if p.kind in kinds and p.default is inspect.Parameter.empty]


def _learners(module: ModuleType) -> dict[int, tuple[list[str], Any]]:
    """The module's public ``Learner`` objects by ``id``, each with all the names bound to it."""
    learner_cls = _learner_class()
    found: dict[int, tuple[list[str], Any]] = {}
    if learner_cls is not None:
        for name, value in vars(module).items():
            if isinstance(value, learner_cls) and not name.startswith("_"):
                found.setdefault(id(value), ([], value))[0].append(name)
    return found


def _only_learner(module: ModuleType, where: str) -> tuple[str, Any]:
    found = _learners(module)
    if len(found) == 1:
        ((names, learner),) = found.values()
        return names[0], learner
    if not found:
        raise LearnerNotFound(f"{where}: defines no Learner at module level{_found_hint(module, where)}")
    listed = ", ".join(" = ".join(names) for names, _ in found.values())
    raise LearnerNotFound(f"{where}: defines {len(found)} Learners ({listed}); name one as {where}:ATTR")


def _found_hint(module: ModuleType, where: str) -> str:
    """What the module offers instead: its Learners and its own public functions (which may build one)."""
    learners = [" = ".join(names) for names, _ in _learners(module).values()]
    funcs = [
        name
        for name, value in vars(module).items()
        if callable(value) and getattr(value, "__module__", None) == module.__name__ and not name.startswith("_")
        and not isinstance(value, type)
    ]
    if not learners and not funcs:
        return "; it defines no functions either"
    found = ([f"Learners: {', '.join(learners)}"] if learners else []) + ([f"functions: {', '.join(funcs)}"] if funcs else [])
    return f"; found {'; '.join(found)} (name one as {where}:ATTR)"
