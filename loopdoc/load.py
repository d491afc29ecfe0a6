"""Load the user's ``Learner`` from ``learner.py[:ATTR]`` or ``package.module[:ATTR]``.

Loading runs the user's module exactly as ``python learner.py`` would (its folder
first on ``sys.path`` while it runs) and touches nothing else: loopdoc imports no
fastai module before the user's code runs, because some of them change
``fastai.learner.defaults.callbacks`` on import (``fastai.callback.progress``
appends ``ProgressCallback``) and so the callbacks a learner gets.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from .errors import LearnerNotFound, LoadError, UsageError
from .paths import display_path


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

        A target is a path when it ends in ``.py`` or contains a path separator.

        Raises:
            UsageError: empty target or empty ``ATTR``.
        """
        target, sep, attr = text.rpartition(":") if ":" in text else (text, "", "")
        if not target or (sep and not attr):
            raise UsageError(f"{text}: expected PATH.py[:ATTR] or package.module[:ATTR]")
        is_file = target.endswith(".py") or "/" in target or "\\" in target
        return cls(target, attr or None, is_file)


@dataclass(frozen=True)
class Loaded:
    """A learner and where it came from.

    Attributes:
        learner: the ``fastai.learner.Learner``.
        loaded_from: ``"<display path or module>:<attr>"``, e.g. ``"examples/synth.py:learn"``.
    """

    learner: Any
    loaded_from: str


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
        LearnerNotFound: no ``Learner``, several, or ``ATTR`` missing or not a
            ``Learner`` (the message lists what was found).
    """
    spec = Spec.parse(text)
    if spec.is_file:
        module = _exec_file(Path(spec.target))
        where = display_path(spec.target)
    else:
        module = _import_module(spec.target)
        where = spec.target
    if spec.attr is not None:
        return Loaded(_from_attr(module, spec.attr, where), f"{where}:{spec.attr}")
    name, learner = _only_learner(module, where)
    return Loaded(learner, f"{where}:{name}")


def _exec_file(path: Path) -> ModuleType:
    if not path.is_file():
        raise LoadError(f"{path}: no such file")
    name = path.stem if path.stem.isidentifier() else "learner_module"
    existing = sys.modules.get(name)
    if existing is not None and getattr(existing, "__file__", None) != str(path.resolve()):
        name = f"_loopdoc_{name}"
    spec = importlib.util.spec_from_file_location(name, path.resolve())
    if spec is None or spec.loader is None:
        raise LoadError(f"{path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    folder = str(path.resolve().parent)
    sys.path.insert(0, folder)
    sys.modules[name] = module
    try:
        _run_user_code(lambda: spec.loader.exec_module(module), str(path), path)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    finally:
        sys.path.remove(folder)
    return module


def _import_module(name: str) -> ModuleType:
    if importlib.util.find_spec(name.split(".")[0]) is None:
        raise LoadError(f"{name}: no such module (not importable from {display_path('.')})")
    return _run_user_code(lambda: importlib.import_module(name), name, None)


def _run_user_code(fn: Any, where: str, path: Path | None) -> Any:
    """Call ``fn``; turn any failure of the user's code into a one-line ``LoadError``."""
    try:
        return fn()
    except SyntaxError as e:
        line = f":{e.lineno}" if e.lineno else ""
        raise LoadError(f"{display_path(e.filename) if e.filename else where}{line}: syntax error: {e.msg}") from e
    except SystemExit as e:
        raise LoadError(f"{where}: called sys.exit({e.code!r}) while loading") from e
    except Exception as e:
        raise LoadError(f"{_user_frame(e, where, path)}: {type(e).__name__}: {_first_line(e)}") from e


def _user_frame(exc: BaseException, where: str, path: Path | None) -> str:
    """``file:line`` of the innermost traceback frame in the user's file, else ``where``."""
    if path is None:
        return where
    target = str(path.resolve())
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == target]
    return f"{where}:{frames[-1].lineno}" if frames else where


def _first_line(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:  # a broken __str__ must not hide the real error
        text = ""
    lines = text.strip().splitlines()
    return lines[0] if lines else "(no message)"


def _learner_class() -> type | None:
    """``fastai.learner.Learner`` if the user's code imported it, else ``None`` (never imports fastai)."""
    module = sys.modules.get("fastai.learner")
    return getattr(module, "Learner", None)


def _from_attr(module: ModuleType, attr: str, where: str) -> Any:
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise LearnerNotFound(f"{where}: has no attribute {attr!r}{_found_hint(module, where)}")
        obj = getattr(obj, part)
    learner_cls = _learner_class()
    if learner_cls is not None and isinstance(obj, learner_cls):
        return obj
    if not callable(obj):
        raise LearnerNotFound(f"{where}:{attr} is a {type(obj).__name__}, not a Learner or a callable returning one")
    made = _run_user_code(obj, f"{where}:{attr}", None)
    learner_cls = _learner_class()
    if learner_cls is None or not isinstance(made, learner_cls):
        raise LearnerNotFound(f"{where}:{attr}() returned a {type(made).__name__}, not a Learner")
    return made


def _only_learner(module: ModuleType, where: str) -> tuple[str, Any]:
    learner_cls = _learner_class()
    found: dict[int, list[str]] = {}
    objects: dict[int, Any] = {}
    if learner_cls is not None:
        for name, value in vars(module).items():
            if isinstance(value, learner_cls) and not name.startswith("_"):
                found.setdefault(id(value), []).append(name)
                objects[id(value)] = value
    if len(found) == 1:
        ((key, names),) = found.items()
        return names[0], objects[key]
    if not found:
        raise LearnerNotFound(f"{where}: defines no Learner at module level{_found_hint(module, where)}")
    listed = ", ".join(" = ".join(names) for names in found.values())
    raise LearnerNotFound(f"{where}: defines {len(found)} Learners ({listed}); name one as {where}:ATTR")


def _found_hint(module: ModuleType, where: str) -> str:
    """List the module's own public functions, which may build a learner."""
    funcs = [
        name
        for name, value in vars(module).items()
        if callable(value) and getattr(value, "__module__", None) == module.__name__ and not name.startswith("_")
        and not isinstance(value, type)
    ]
    return f"; its functions: {', '.join(funcs)} (name one as {where}:ATTR)" if funcs else ""
