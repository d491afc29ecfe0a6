"""Load the user's trainer from ``learner.py[:ATTR]``, ``package.module[:ATTR]`` or a file an adapter reads.

Loading runs the user's module as ``python learner.py`` (or ``python -m package.module``)
would (``loopdoc.usercode.as_script``): its folder (or the working directory) first on
``sys.path``, ``sys.argv == [learner.py]``, its prints on stderr. While it runs, every
framework adapter watches what it builds (``Adapter.watch``: fastai's ``after_create``);
nothing else is touched. loopdoc imports no framework module before the user's code runs,
because some change the trainer the user's code builds (``fastai.callback.progress``
appends ``ProgressCallback`` to ``fastai.learner.defaults.callbacks`` on import).

Which object is the trainer is each adapter's ``is_trainer``: the module must define
exactly one at module level, unless ``ATTR`` names it (or a zero-argument function
returning one).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import os
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from .adapters.base import Adapter
from .adapters.registry import adapter_for, adapters
from .errors import LearnerNotFound, LoadError, LoopdocError, UsageError
from .paths import display_path, is_installed
from .usercode import a_an, as_script, check_file, run_user_code


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
    """A trainer, the adapter that knows it, and where it came from.

    Attributes:
        trainer: the framework's trainer object (a fastai ``Learner``, …).
        adapter: the adapter whose ``is_trainer`` it satisfies.
        loaded_from: ``"<display path or module>:<attr>"``, e.g. ``"examples/synth.py:learn"``.
        namespace: the module's globals, for evaluating a ``--call``'s arguments.
        observation: what the adapter's ``watch`` saw of this trainer being built, or ``None``.
        files: the user's own source files the load imported (the learner file and the
            modules beside it, not installed packages), absolute and sorted: what to watch.
    """

    trainer: Any
    adapter: Adapter
    loaded_from: str
    namespace: dict[str, Any]
    observation: Any = None
    files: tuple[str, ...] = field(default=())

    @property
    def learner(self) -> Any:
        """The trainer, by fastai's name for it."""
        return self.trainer


def load(text: str, *, trust: bool = False) -> Loaded:
    """Import the module a spec names and return its trainer.

    Args:
        text: ``PATH.py[:ATTR]`` or ``package.module[:ATTR]``; ``ATTR`` (dotted allowed)
            names a trainer or a zero-argument callable returning one; without it the
            module must define exactly one trainer at module level. Or a file with an
            adapter's own suffix (fastai: a ``learn.export()`` pickle, ``.pkl``).
        trust: allow an adapter's file whose loading runs code from the file itself
            (a pickle); see ``Adapter.load_file``.

    Returns:
        ``Loaded``.

    Raises:
        UsageError: malformed spec (or an adapter's file without ``trust``).
        LoadError: missing file or module, a syntax error, an exception or
            ``sys.exit`` while importing or while calling ``ATTR``.
        LearnerNotFound: no trainer, several, or ``ATTR`` missing, not a trainer, a
            callable that needs arguments or returns something else (the message lists what was found).
    """
    own = _adapter_file(text)
    if own is not None:
        return _load_adapter_file(own, text, trust)
    spec = Spec.parse(text)
    if spec.is_file:
        path = Path(spec.target)
        check_file(path)
        where, folder, argv0, user = display_path(spec.target), str(path.resolve().parent), str(path), path.resolve()
    else:
        where, folder, argv0 = spec.target, os.getcwd(), spec.target
        user = None
    before = set(sys.modules)
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(as_script(folder, argv0))
            stack.enter_context(_no_bytecode())
            watched = [(a, stack.enter_context(a.watch())) for a in adapters()]
            if spec.is_file:
                module = _exec_file(path, where)
            else:
                module = _import_module(spec.target)
                user = _module_root(spec.target)
            if spec.attr is not None:
                name, trainer = spec.attr, _from_attr(module, spec.attr, where, user)
            else:
                name, trainer = _only_trainer(module, where)
    except LoopdocError as e:
        if spec.is_file:
            e.files = _failed_files(e, path.resolve(), set(sys.modules) - before)
        raise
    found = adapter_for(trainer)
    assert found is not None  # _from_attr and _only_trainer return trainers only
    observation = next((seen.get(id(trainer)) for a, seen in watched if a is found), None)
    files = _user_files(module, set(sys.modules) - before, Path(folder) if spec.is_file else user)
    return Loaded(trainer, found, f"{where}:{name}", vars(module), observation, files)


def _adapter_file(text: str) -> Adapter | None:
    """The adapter whose own suffix ``text`` (or ``text`` before a ``:ATTR``) ends in, or ``None``."""
    lowered = text.lower()
    head = text.rpartition(":")[0].lower() if ":" in text else lowered
    return next((a for a in adapters() if a.suffixes and (lowered.endswith(a.suffixes) or head.endswith(a.suffixes))), None)


def _load_adapter_file(adapter: Adapter, text: str, trust: bool) -> Loaded:
    if not text.lower().endswith(adapter.suffixes):
        raise UsageError(f"{text}: a {adapter.wording.file_kind} has no ATTR; give the file alone")
    path = Path(text)
    where = display_path(text)
    check_file(path, adapter.suffixes)
    trainer = adapter.load_file(text, where, trust=trust)
    if not adapter.is_trainer(trainer):
        raise LearnerNotFound(f"{where}: holds {a_an(type(trainer).__name__)}, not a {adapter.wording.trainer}")
    return Loaded(trainer, adapter, where, {}, None, (str(path.resolve()),))


def _user_files(module: ModuleType, imported: set[str], root: Path | None) -> tuple[str, ...]:
    """The learner module's file and the files of modules the load imported that are the user's own.

    A module is the user's when its file is under ``root`` (the learner's folder, or the
    package's root) and not part of an installation (site-packages, the Python prefix).
    """
    out = set()
    own = getattr(module, "__file__", None)
    if own:
        out.add(os.path.abspath(own))
    if root is not None:
        top = root if root.is_dir() else root.parent
        for name in imported:
            file = getattr(sys.modules.get(name), "__file__", None)
            if not isinstance(file, str) or not file.endswith(".py") or not os.path.isabs(file):
                continue  # not a file a finder imported: torch.ops and torch.classes are objects whose __file__ is "_ops.py"
            path = Path(os.path.abspath(file))
            if path.is_relative_to(top) and not is_installed(path):
                out.add(str(path))
    return tuple(sorted(out))


def _failed_files(error: BaseException, learner: Path, imported: set[str]) -> tuple[str, ...]:
    """The user's files a failed load of ``learner`` had read: the learner file, the modules beside it it had
    imported, and the user's files in the failure's tracebacks (a sibling module with a syntax error was never imported)."""
    top = learner.parent
    out = {str(learner)}
    candidates = [getattr(sys.modules.get(name), "__file__", None) for name in imported]
    seen: set[int] = set()
    exc: BaseException | None = error
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, SyntaxError):
            candidates.append(exc.filename)
        candidates.extend(frame.filename for frame in traceback.extract_tb(exc.__traceback__))
        exc = exc.__cause__ or exc.__context__
    for file in candidates:
        if not isinstance(file, str) or not file.endswith(".py"):
            continue
        candidate = Path(os.path.abspath(file))
        if candidate.is_relative_to(top) and not is_installed(candidate) and candidate.is_file():
            out.add(str(candidate))
    return tuple(sorted(out))


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
        run_user_code(lambda: loader.exec_module(module), where, path.resolve())
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


@contextlib.contextmanager
def _no_bytecode() -> Iterator[None]:
    """While the user's code is imported, Python writes no ``__pycache__`` beside it (``sys.dont_write_bytecode``):
    loading writes nothing in the user's folders, in a worker (which sets it for good) and in-process (the mkdocs
    and Sphinx plugins, ``resolve(..., isolated=False)``) alike. The previous setting is put back."""
    previous = sys.dont_write_bytecode
    sys.dont_write_bytecode = True
    try:
        yield
    finally:
        sys.dont_write_bytecode = previous


def _import_module(name: str) -> ModuleType:
    if importlib.util.find_spec(name.split(".")[0]) is None:
        raise LoadError(f"{name}: no such module (not importable from {display_path('.')} or sys.path)")
    try:
        return run_user_code(lambda: importlib.import_module(name), name, _module_root(name))
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


def _is_trainer(obj: Any) -> bool:
    return adapter_for(obj) is not None


def _noun() -> str:
    """What a trainer is called in messages: the word of the one framework the user's code imported (fastai: ``Learner``),
    else every installed adapter's, named by framework (``trainer (fastai Learner, …)``)."""
    found = adapters()
    imported = [a for a in found if any(m in sys.modules for m in a.modules)]
    if len(imported) == 1:
        return imported[0].wording.trainer
    shown = imported or list(found)
    if len(shown) == 1:
        return shown[0].wording.trainer
    return "trainer (" + ", ".join(f"{a.name} {a.wording.trainer}" for a in shown) + ")"


def _from_attr(module: ModuleType, attr: str, where: str, user: Path | None) -> Any:
    obj: Any = module
    missing = object()
    for part in attr.split("."):
        value = run_user_code(lambda o=obj, p=part: getattr(o, p, missing), f"{where}:{attr}", user)
        if value is missing:
            raise LearnerNotFound(f"{where}: has no attribute {attr!r}{_found_hint(module, where)}")
        obj = value
    if _is_trainer(obj):
        return obj
    noun = _noun()
    expected = f"not a {noun} or a zero-argument function returning one"
    if not callable(obj):
        raise LearnerNotFound(f"{where}:{attr} is {a_an(type(obj).__name__)}, {expected}")
    owner = getattr(obj, "__self__", None)
    if owner is not None and _is_trainer(owner):  # learn.lr_find would train: not a builder
        raise LearnerNotFound(f"{where}:{attr} is a method of {a_an(adapter_for(owner).wording.trainer)}, {expected}; "
                              f"name the {adapter_for(owner).wording.trainer} ({where}:{attr.rsplit('.', 1)[0]}) and pass the call with --call")
    required = _required_params(obj)
    if required:
        raise LearnerNotFound(f"{where}:{attr} needs arguments ({', '.join(required)}); {expected}")
    made = run_user_code(obj, f"{where}:{attr}", user, f"while calling {attr}()")
    if not _is_trainer(made):
        raise LearnerNotFound(f"{where}:{attr}() returned {a_an(type(made).__name__)}, not a {_noun()}")
    return made


def _required_params(fn: Any) -> list[str]:
    """Names of the parameters ``fn`` cannot be called without; ``[]`` when unknown."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return []
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [p.name for p in sig.parameters.values() if p.kind in kinds and p.default is inspect.Parameter.empty]


def _trainers(module: ModuleType) -> dict[int, tuple[list[str], Any]]:
    """The module's public trainers by ``id``, each with all the names bound to it."""
    found: dict[int, tuple[list[str], Any]] = {}
    for name, value in vars(module).items():
        if not name.startswith("_") and _is_trainer(value):
            found.setdefault(id(value), ([], value))[0].append(name)
    return found


def _only_trainer(module: ModuleType, where: str) -> tuple[str, Any]:
    found = _trainers(module)
    if len(found) == 1:
        ((names, trainer),) = found.values()
        return names[0], trainer
    if not found:
        raise LearnerNotFound(f"{where}: defines no {_noun()} at module level{_found_hint(module, where)}")
    listed = ", ".join(" = ".join(names) for names, _ in found.values())
    raise LearnerNotFound(f"{where}: defines {len(found)} {_noun()}s ({listed}); name one as {where}:ATTR")


def _found_hint(module: ModuleType, where: str) -> str:
    """What the module offers instead: its trainers and its own public functions (which may build one)."""
    trainers = [" = ".join(names) for names, _ in _trainers(module).values()]
    funcs = [
        name
        for name, value in vars(module).items()
        if callable(value) and getattr(value, "__module__", None) == module.__name__ and not name.startswith("_")
        and not isinstance(value, type)
    ]
    if not trainers and not funcs:
        return "; it defines no functions either"
    found = ([f"{_noun()}s: {', '.join(trainers)}"] if trainers else []) + ([f"functions: {', '.join(funcs)}"] if funcs else [])
    return f"; found {'; '.join(found)} (name one as {where}:ATTR)"
