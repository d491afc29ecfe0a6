"""Introspection every framework adapter shares: what a callable really is, its docstring and source, safe reprs.

Nothing here knows a framework; each function works on any Python object and never
raises on a user's broken object (a property that raises, a ``__repr__`` that raises, a
class without a file). Source locations are shown as ``loopdoc.paths.display_path`` shows them.
"""

from __future__ import annotations

import ast
import functools
import importlib.abc
import importlib.util
import inspect
import linecache
import math
import numbers
import re
import sys
from collections.abc import Callable
from types import CodeType, MethodType, ModuleType
from typing import Any

from ..model.loop import Handler, SourceLocation
from ..paths import display_path
from .base import Member

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def exc_text(exc: BaseException, limit: int = 120) -> str:
    """An exception's message on one line, at most ``limit`` characters; ``"(no message)"`` when empty or unprintable.

    Args:
        exc: any exception (its ``__str__`` may raise).
        limit: maximum length in characters; longer text ends in ``…``.

    Returns:
        The text.
    """
    try:
        text = " ".join(str(exc).split())
    except Exception:
        text = ""
    text = text or "(no message)"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def safe_repr(value: Any, limit: int = 60) -> str:
    """``repr(value)`` without memory addresses, on one line, shortened to ``limit`` characters.

    Args:
        value: any object; a raising ``__repr__`` gives ``<Type object>``.
        limit: maximum length in characters.

    Returns:
        The text.
    """
    try:
        text = _ADDRESS.sub("", repr(value))
    except Exception:
        text = f"<{type(value).__qualname__} object>"
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def get(obj: Any, name: str) -> Any:
    """``getattr(obj, name, None)``, also ``None`` when the attribute raises anything (a user's broken property).

    Args:
        obj: any object.
        name: the attribute.

    Returns:
        The value, or ``None``.
    """
    try:
        return getattr(obj, name, None)
    except Exception:
        return None


def has(obj: Any, name: str) -> bool:
    """``hasattr(obj, name)``, ``False`` when looking it up raises anything but ``AttributeError`` too.

    Args:
        obj: any object.
        name: the attribute.

    Returns:
        Whether the attribute can be read.
    """
    try:
        return hasattr(obj, name)
    except Exception:
        return False


def underlying(attr: Any) -> Any:
    """The function that actually runs: through bound methods, ``functools.partial`` and ``functools.wraps``.

    Args:
        attr: a callable (or anything; a non-callable is returned as it is).

    Returns:
        The innermost function, or ``attr`` when there is nothing to unwrap.
    """
    fn = attr
    for _ in range(32):
        if isinstance(fn, MethodType):
            fn = fn.__func__
        elif isinstance(fn, functools.partial):
            fn = fn.func
        else:
            break
    if not callable(fn):
        return fn
    try:
        return inspect.unwrap(fn)
    except Exception:  # a cycle of __wrapped__, or a __wrapped__ that raises
        return fn


def clean_doc(doc: Any) -> str | None:
    """A docstring cleaned by ``inspect.cleandoc``, or ``None`` when it is not a non-blank string.

    Args:
        doc: a ``__doc__`` value (anything: a user may set it to a number).

    Returns:
        The text, or ``None``.
    """
    return inspect.cleandoc(doc) if isinstance(doc, str) and doc.strip() else None


def location(filename: str, line: int | None) -> SourceLocation | None:
    """A ``SourceLocation`` for a code object's file and line, or ``None`` for ``<string>``-like or empty names.

    Args:
        filename: ``co_filename`` or a module's ``__file__``.
        line: 1-based line, or ``None``.

    Returns:
        The location, its file as ``display_path`` shows it.
    """
    if not filename or filename.startswith("<"):
        return None
    return SourceLocation(display_path(filename), line)


def qualified(cls: type) -> str:
    """``module.QualifiedName`` of a class (or function).

    Args:
        cls: a class or function.

    Returns:
        e.g. ``"fastai.learner.Recorder"``.
    """
    return f"{cls.__module__}.{cls.__qualname__}"


def definer(cls: type, name: str) -> type:
    """The first class in ``cls.__mro__`` whose own namespace defines ``name``.

    Args:
        cls: a class.
        name: an attribute name every class has somewhere in its MRO (e.g. ``"__call__"``).

    Returns:
        That class.

    Raises:
        StopIteration: no class in the MRO defines ``name``.
    """
    return next(k for k in cls.__mro__ if name in vars(k))


def is_number(value: Any) -> bool:
    """Whether ``value`` is a real number that compares with others (not ``NaN``).

    Args:
        value: anything.

    Returns:
        ``True`` for ints, finite or infinite floats and other ``numbers.Real``; ``False`` for ``NaN`` and non-numbers.
    """
    return isinstance(value, numbers.Real) and not (isinstance(value, float) and math.isnan(value))


def describe(obj: Any) -> str | None:
    """A stable, readable name for a loss or optimizer function: no memory addresses.

    Args:
        obj: a function, class, ``functools.partial``, any object, or ``None``.

    Returns:
        ``"partial(Adam, lr=0.1)"``, a ``__qualname__``, or the address-free ``repr``; ``None`` for ``None``.
    """
    if obj is None:
        return None
    if isinstance(obj, functools.partial):
        args = [describe(a) or "None" for a in obj.args]
        args += [f"{k}={describe(v)}" for k, v in obj.keywords.items()]
        return f"partial({', '.join([describe(obj.func) or '?', *args])})"
    if inspect.isfunction(obj) or inspect.isclass(obj) or inspect.isbuiltin(obj):
        return obj.__qualname__
    try:
        return _ADDRESS.sub("", repr(obj))
    except Exception:  # a user's broken __repr__
        return type(obj).__qualname__


def handler_for(cb_id: str, attr: Any, via: str, defined_by: str | None) -> Handler:
    """The model's ``Handler`` for the callable ``attr`` that runs for the callback ``cb_id``.

    Args:
        cb_id: ``Callback.id`` of the object it belongs to.
        attr: the callable (a function, bound method, partial, lambda, callable object).
        via: ``"method"``, ``"instance"`` or ``"dispatch"`` (see ``Handler.via``).
        defined_by: ``module.QualifiedName`` of the defining class, or ``None``.

    Returns:
        The ``Handler``: the function's ``__qualname__`` (``Type.__call__`` for a callable object),
        docstring and source; attributes of the user's object that raise or are not text are ignored.
    """
    fn = underlying(attr)
    code = get(fn, "__code__")
    qualname = get(fn, "__qualname__")
    if not isinstance(qualname, str):
        qualname = None
    if isinstance(code, CodeType):
        function = qualname or code.co_name
        source = location(code.co_filename, code.co_firstlineno)
    else:  # a callable object or a builtin
        function = qualname or f"{type(fn).__qualname__}.__call__"
        source = None
    return Handler(cb_id, function, via, defined_by, clean_doc(get(fn, "__doc__")), source)


def class_source(cls: type) -> SourceLocation | None:
    """Where ``cls`` is defined, as ``inspect.getsourcelines(cls)`` finds it, or ``None``.

    Python 3.11's ``inspect.findsource`` parses the class's whole file for every class
    (``ast.parse`` + ``_ClassFinder``): 300 classes in one file took 15 s. This finds the
    same line (the first ``class`` statement, in ``ast`` traversal order, whose qualified
    name matches; its first decorator's line if decorated) but parses each file once
    (``_class_lines``). Anything that fails (no file, a dynamic class, a file that no
    longer parses) gives ``None``, never an error.

    Args:
        cls: a class.

    Returns:
        The location, or ``None``.
    """
    try:
        filename = inspect.getsourcefile(cls)
        if not filename:
            return None
        linecache.checkcache(filename)
        module = inspect.getmodule(cls, filename)
        lines = linecache.getlines(filename, module.__dict__) if module else linecache.getlines(filename)
        if not lines:
            return None
        line = _class_lines(filename, lines).get(cls.__qualname__)
    except Exception:
        return None
    return location(filename, line) if line is not None else None


_CLASS_LINES: dict[str, tuple[list[str], dict[str, int], dict[str, ast.ClassDef]]] = {}


def _class_lines(filename: str, lines: list[str]) -> dict[str, int]:
    """``{qualified name: 1-based line}`` of every class statement in a file, first occurrence kept.

    Cached per file while ``linecache`` holds the same ``lines`` list (it replaces the
    list when the file changes).

    Raises:
        SyntaxError, ValueError: the text does not parse.
    """
    return _class_table(filename, lines)[1]


def _class_table(filename: str, lines: list[str]) -> tuple[list[str], dict[str, int], dict[str, ast.ClassDef]]:
    """``(lines, {qualified name: line}, {qualified name: ClassDef node})`` of a file; see ``_class_lines``."""
    cached = _CLASS_LINES.get(filename)
    if cached is not None and cached[0] is lines:
        return cached
    table: dict[str, int] = {}
    nodes: dict[str, ast.ClassDef] = {}
    stack: list[str] = []

    class Finder(ast.NodeVisitor):  # the walk of inspect._ClassFinder (Python 3.11), recording every class
        def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
            stack.extend((node.name, "<locals>"))
            self.generic_visit(node)
            del stack[-2:]

        visit_AsyncFunctionDef = visit_FunctionDef

        def visit_ClassDef(self, node: ast.ClassDef) -> None:
            stack.append(node.name)
            name = ".".join(stack)
            if name not in table:
                table[name] = node.decorator_list[0].lineno if node.decorator_list else node.lineno
                nodes[name] = node
            self.generic_visit(node)
            stack.pop()

    Finder().visit(ast.parse("".join(lines)))
    _CLASS_LINES[filename] = (lines, table, nodes)
    return _CLASS_LINES[filename]


def _class_node(cls: type) -> tuple[str, list[str], ast.ClassDef] | None:
    """The file, its lines and the ``class`` statement of ``cls`` (as ``class_source`` finds it), or ``None``."""
    try:
        filename = inspect.getsourcefile(cls)
        if not filename:
            return None
        linecache.checkcache(filename)
        module = inspect.getmodule(cls, filename)
        lines = linecache.getlines(filename, module.__dict__) if module else linecache.getlines(filename)
        if not lines:
            return None
        node = _class_table(filename, lines)[2].get(cls.__qualname__)
    except Exception:
        return None
    return None if node is None else (filename, lines, node)


def _column(lines: list[str], line: int, col_offset: int | None) -> int | None:
    """A 1-based column in characters, from ``ast``'s 0-based UTF-8 byte offset on a 1-based ``line``."""
    if col_offset is None or not 1 <= line <= len(lines):
        return None
    return len(lines[line - 1].encode("utf-8")[:col_offset].decode("utf-8", "replace")) + 1


def class_position(cls: type) -> tuple[SourceLocation, int | None] | None:
    """Where ``cls``'s ``class`` statement is: ``class_source``'s location and the statement's 1-based column.

    Args:
        cls: a class.

    Returns:
        ``(location, column)``, or ``None`` when ``class_source`` finds none. Raises nothing.
    """
    found = _class_node(cls)
    source = class_source(cls)
    if source is None:
        return None
    if found is None:
        return source, None
    _, lines, node = found
    return source, _column(lines, node.lineno, node.col_offset)


def class_members(cls: type) -> dict[str, tuple[SourceLocation, int | None]]:
    """Where each name is bound directly in ``cls``'s body: ``def``, ``async def``, ``name = …``, ``name: T = …``.

    Only statements of the class body itself (not inside an ``if`` or a nested function); a name
    bound twice keeps its last binding, the one Python keeps. ``def`` lines are the ``def`` itself, not a decorator.

    Args:
        cls: a class.

    Returns:
        ``{name: (location, 1-based column)}``; ``{}`` when the class has no source. Raises nothing.
    """
    found = _class_node(cls)
    if found is None:
        return {}
    filename, lines, node = found
    out: dict[str, tuple[SourceLocation, int | None]] = {}

    def put(name: str, at: ast.AST) -> None:
        where = location(filename, at.lineno)
        if where is not None:
            out[name] = (where, _column(lines, at.lineno, at.col_offset))

    for stmt in node.body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            put(stmt.name, stmt)
        elif isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            for target in targets:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name):
                        put(name.id, name)
    return out


def code_names(fn: Any) -> frozenset[str]:
    """Every name the code of ``fn`` (and of the functions, lambdas and comprehensions nested in it) refers to.

    ``co_names`` holds attribute and global names: ``self.before_logging()`` puts ``before_logging`` there.

    Args:
        fn: a function, method, ``staticmethod``/``classmethod``/``property`` or anything else.

    Returns:
        The names; empty for an object without code. Raises nothing.
    """
    if isinstance(fn, (staticmethod, classmethod)):
        fn = fn.__func__
    if isinstance(fn, property):
        return frozenset().union(*(code_names(f) for f in (fn.fget, fn.fset, fn.fdel) if f is not None))
    code = get(underlying(fn), "__code__")
    names: set[str] = set()
    todo = [code] if isinstance(code, CodeType) else []
    while todo:
        c = todo.pop()
        names.update(c.co_names)
        todo.extend(k for k in c.co_consts if isinstance(k, CodeType))
    return frozenset(names)


def user_class(cls: type, framework: tuple[str, ...] = ()) -> bool:
    """Whether ``cls`` is the user's own class: not a built-in, not of the framework, not of an installed package.

    Args:
        cls: a class.
        framework: top-level module names of the framework and the libraries it is built on
            (fastai's adapter passes ``("fastai", "fastcore", "fasttransform", "torch")``).

    Returns:
        ``False`` for ``object``, classes of ``builtins`` and the standard library, of a module in ``framework``,
        or defined in a file under an installation (``loopdoc.paths.is_installed``); ``True`` otherwise,
        also for a class in a module without a file (a notebook's ``__main__``, ``exec``). Raises nothing.
    """
    import sys
    from pathlib import Path

    from ..paths import is_installed

    module = get(cls, "__module__")
    if not isinstance(module, str) or cls is object:
        return False
    top = module.split(".", 1)[0]
    if top in framework or top == "builtins" or top in sys.stdlib_module_names:
        return False
    file = get(sys.modules.get(module), "__file__")
    if not isinstance(file, str):
        return True
    try:
        return not is_installed(Path(file).resolve())
    except (OSError, ValueError):
        return True


def caller_position(skip: tuple[str, ...] = ()) -> tuple[SourceLocation, int | None] | None:
    """Where the user's code is running now: the innermost frame outside installed packages and loopdoc.

    Used while the user's module runs (``Adapter.watch``) to note where a trainer is built or a
    callback added. Python 3.11's ``co_positions`` gives the column of the call being made.

    Args:
        skip: further file names to pass over.

    Returns:
        ``(location, 1-based column or None)``, or ``None`` when no frame is the user's. Raises nothing.
    """
    import sys
    from pathlib import Path

    from ..paths import is_installed

    here = str(Path(__file__).resolve().parent.parent) + "/"
    try:
        frame = sys._getframe(1)
    except ValueError:
        return None
    while frame is not None:
        code = frame.f_code
        filename = code.co_filename
        try:
            mine = not (filename.startswith("<") or filename in skip or is_installed(Path(filename).resolve())
                        or str(Path(filename).resolve()).startswith(here))
        except (OSError, ValueError):
            mine = False
        if mine:
            line, column = frame.f_lineno, None
            try:
                start, _, col, _ = list(code.co_positions())[frame.f_lasti // 2]
                if start is not None:
                    line = start
                lines = linecache.getlines(filename)
                column = _column(lines, line, col) if lines else None
            except Exception:
                pass
            where = location(filename, line)
            return None if where is None else (where, column)
        frame = frame.f_back
    return None


def callback_ids(ordered: list[Any]) -> dict[int, str]:
    """``Callback.id`` per object: its class name, then ``Name-2``, ``Name-3`` … in the given order.

    Names are made safe for a URL fragment (``[A-Za-z0-9_.-]``, starting with a letter or ``_``);
    the same object given twice gets one id; a class literally named ``Name-2`` cannot collide.

    Args:
        ordered: the objects in run order.

    Returns:
        ``{id(obj): callback id}``.
    """
    seen: dict[str, int] = {}
    taken: set[str] = set()
    ids = {}
    for cb in ordered:
        if id(cb) in ids:  # the same instance attached twice (fastai then runs it twice): one id
            continue
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", type(cb).__name__) or "Callback"
        if not (name[0].isalpha() or name[0] == "_"):
            name = "_" + name
        seen[name] = seen.get(name, 0) + 1
        candidate = name if seen[name] == 1 else f"{name}-{seen[name]}"
        while candidate in taken:  # a class literally named "Name-2" (made with type()) must not collide
            seen[name] += 1
            candidate = f"{name}-{seen[name]}"
        taken.add(candidate)
        ids[id(cb)] = candidate
    return ids


# --- what a user's callback defines (loopdoc check) -----------------------------------------------------------------


def user_members(cb: Any, cls: type, users: list[type]) -> tuple[Member, ...]:
    """The attributes ``cb``'s user classes define (the binding Python uses for each name) and its instance attributes.

    ``users`` are the classes of ``cb``'s MRO that ``user_class`` accepts, most derived first.

    Names starting with ``_`` are left out. ``referenced`` is whether another function of those
    classes, or an instance function, names the attribute in its code.
    """
    values: dict[str, tuple[type | None, Any]] = {}
    for klass in users:
        for name, value in list(vars(klass).items()):
            if name.startswith("_") or name in values:
                continue
            if next((k for k in cls.__mro__ if name in vars(k)), None) is klass:  # the binding Python uses
                values[name] = (klass, value)
    own = get(cb, "__dict__")
    for name, value in list(own.items()) if isinstance(own, dict) else []:
        if isinstance(name, str) and not name.startswith("_"):
            values[name] = (None, value)
    codes = {name: code_names(value) for name, (_, value) in values.items() if _has_code(value)}
    members = []
    for name, (klass, value) in sorted(values.items()):
        referenced = any(name in names for other, names in codes.items() if other != name)
        members.append(_member(name, klass, value, cls, referenced))
    return tuple(members)


def _member(name: str, klass: type | None, value: Any, cls: type, referenced: bool) -> Member:
    """One ``Member``: where it is bound (the class body statement, else a function's ``def``) and what it holds."""
    if isinstance(value, (staticmethod, classmethod)):
        is_callable = True
    elif isinstance(value, property):
        is_callable = False
    else:
        try:
            is_callable = callable(value)
        except Exception:
            is_callable = False
    source, column = None, None
    if klass is not None:
        source, column = class_members(klass).get(name, (None, None))
    if source is None and is_callable:
        fn = underlying(value.__func__ if isinstance(value, (staticmethod, classmethod)) else value)
        code = get(fn, "__code__")
        source = location(code.co_filename, code.co_firstlineno) if code is not None and hasattr(code, "co_filename") else None
    plain = value is None or isinstance(value, (bool, int, float, str))
    return Member(
        name=name,
        owner=klass.__qualname__ if klass is not None else cls.__name__,
        defined_by=qualified(klass) if klass is not None else None,
        callable=is_callable,
        source=source,
        column=column,
        referenced=referenced,
        value=safe_repr(value) if plain else None,
    )


def _has_code(value: Any) -> bool:
    """Whether ``value`` is a function-like attribute whose code may name other attributes (not an arbitrary object)."""
    import functools
    import types

    return isinstance(value, (types.FunctionType, types.MethodType, staticmethod, classmethod, property, functools.partial))


# --- import hooks -----------------------------------------------------------------------------------------------


class AfterImport(importlib.abc.MetaPathFinder):
    """An import hook (``sys.meta_path``) that calls ``then(module)`` right after the module ``name`` has been executed by
    its normal loader, once; an adapter uses it to wrap its framework's classes without importing the framework first."""

    def __init__(self, name: str, then: Callable[[ModuleType], None]):
        self.name, self.then = name, then

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        """The module's normal spec, its loader made to call ``then`` after executing it (``None`` for other modules)."""
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)  # once, and not for the lookup below
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        exec_module, then = spec.loader.exec_module, self.then

        def exec_then(module: ModuleType) -> None:
            exec_module(module)
            then(module)

        spec.loader.exec_module = exec_then  # type: ignore[method-assign]
        return spec
