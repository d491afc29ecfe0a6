"""``--call`` checked before any learner loads: is it a call, and does some installed adapter accept its method?

Loading a learner takes seconds (it imports the framework); a misspelt ``--call`` should not
wait for that. ``check_call`` reads only the call's text and the adapters' ``calls`` (the
registry imports no framework), so ``loopdoc.resolve.start`` runs it before it starts a worker.
The adapter still checks the call in full once the trainer is loaded: a method written with an
owner (``learn.fit(1)``) must be called on the trainer itself (``check_owner``, the same rule for
every framework), its arguments are evaluated in the learner module's namespace
(``call_arguments``), and they must bind to the trainer's method as Python would bind them
(``bind_call``).

Every bad call is a ``loopdoc.errors.CallError`` (exit code 2), whichever of these finds it.
"""

from __future__ import annotations

import ast
import difflib
import inspect
import types
from typing import Any

from .errors import CallError


def loop_calls() -> tuple[str, ...]:
    """The method names ``--call`` accepts: the union of every installed adapter's ``calls``, in adapter order.

    Returns:
        Names, each once, e.g. ``("fit", "fit_one_cycle", …, "get_preds")`` with only fastai installed.
    """
    from .adapters.registry import adapters

    return tuple(dict.fromkeys(name for adapter in adapters() for name in adapter.calls))


def call_expression(text: str, example: str = "'fit_one_cycle(3, 1e-3)'") -> ast.Call:
    """``--call``'s text parsed as one Python call of a name or a dotted name (``fit(1)``, ``learn.fit(1)``), unevaluated.

    The text is compiled too, so what the interpreter refuses only when compiling is refused here
    with its own words (``fit(n_epoch=1, n_epoch=2)``: ``keyword argument repeated: n_epoch``).
    The owner of a method (``learn`` in ``learn.fit(1)``) must be a name or a dotted name
    (``self.learn``); anything else (``__import__('os').system('…').fit(1)``, ``fit(1).fit(2)``,
    ``[learn][0].fit(1)``) is refused before any of it is evaluated. Whether the owner is the trainer
    is checked once the trainer is loaded (``check_owner``).

    Args:
        text: the call as given.
        example: the call the message shows as an example (an adapter's own, e.g. ``"'train()'"``).

    Returns:
        The ``ast.Call`` node; its function is an ``ast.Name`` or an ``ast.Attribute`` of a dotted name.

    Raises:
        CallError: not Python (or refused by Python's compiler), not a call of a name or attribute, or a
            method whose owner is not a dotted name (one line naming ``--call``).
    """
    try:
        node = ast.parse(text.strip(), mode="eval").body
        compile(text.strip(), "<--call>", "eval")  # what only the compiler refuses: a repeated keyword argument
    except SyntaxError as e:
        raise CallError(f"--call {text!r}: not a Python call: {e.msg}") from e
    if not isinstance(node, ast.Call) or not isinstance(node.func, (ast.Name, ast.Attribute)):
        raise CallError(f"--call {text!r}: expected a call such as {example}")
    if isinstance(node.func, ast.Attribute) and _dotted(node.func.value) is None:
        raise CallError(f"--call {text!r}: {ast.unparse(node.func.value)!r} is not the trainer: a method's owner must be "
                        f"the trainer's name (or a dotted name); write {_bare(node)!r}")
    return node


def call_method(node: ast.Call) -> str:
    """The method a call names: ``"fit"`` for ``fit(1)`` and for ``learn.fit(1)``.

    Args:
        node: the call (``call_expression``).

    Returns:
        The name.
    """
    return node.func.id if isinstance(node.func, ast.Name) else node.func.attr  # type: ignore[attr-defined]


def check_owner(node: ast.Call, text: str, namespace: dict[str, Any], trainer: Any) -> None:
    """Refuse a method called on something other than the trainer: ``model.fit(…)``, ``trainer.model.train()``, ``os.fit(1)``.

    A bare ``method(…)`` is the trainer's method. ``NAME.method(…)`` (or ``a.b.method(…)``) is accepted
    only when its owner, evaluated in ``namespace`` (a name looked up, then attributes read; nothing is
    called), is the very object ``trainer`` (identity): else the real call would run another object's
    ``method`` (``trainer.model.train()`` only sets the module's training mode), not the trainer's loop.

    Args:
        node: the call (``call_expression``: its owner, if any, is a dotted name).
        text: the call as given, for the message.
        namespace: the learner module's globals; a copy is used.
        trainer: the trainer loopdoc documents.

    Raises:
        CallError: the owner is another object, is not defined, or raised while evaluated; the message says
            what to write (``'trainer.model' is not the trainer (Trainer): write 'train()' or 'trainer.train()'``).
    """
    if not isinstance(node.func, ast.Attribute):
        return
    owner = node.func.value
    try:
        value = eval(compile(ast.Expression(owner), "<--call>", "eval"), dict(namespace))  # noqa: S307 - a dotted name
    except NameError:
        why = " (it is not defined in the learner's module)"
    except Exception as e:  # noqa: BLE001 - a property of the user's that raises: not the trainer either
        why = f" (evaluating it raised {type(e).__name__})"
    else:
        if value is trainer:
            return
        why = ""
    names = [n for n, v in namespace.items() if v is trainer and n.isidentifier() and not n.startswith("_")]
    bare = _bare(node)
    instead = f"{bare!r} or {names[0] + '.' + bare!r}" if names else repr(bare)
    raise CallError(f"--call {text!r}: {ast.unparse(owner)!r} is not the trainer ({type(trainer).__name__}){why}: "
                    f"write {instead}")


def _dotted(expr: ast.expr) -> str | None:
    """``"a.b.c"`` for a name or a chain of attributes of a name, else ``None``."""
    if isinstance(expr, ast.Name):
        return expr.id
    if isinstance(expr, ast.Attribute):
        head = _dotted(expr.value)
        return None if head is None else f"{head}.{expr.attr}"
    return None


def _bare(node: ast.Call) -> str:
    """The call without its owner: ``"fit(1)"`` for ``os.fit(1)``."""
    return ast.unparse(ast.Call(func=ast.Name(id=call_method(node), ctx=ast.Load()), args=node.args, keywords=node.keywords))


def call_arguments(node: ast.Call, text: str, namespace: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    """The call's arguments evaluated in ``namespace`` (the learner module's globals), in the order written.

    Args:
        node: the call (``call_expression``), without ``*args``/``**kwargs`` (the adapter has refused those).
        text: the call as given, for the message.
        namespace: the names the arguments may use; a copy is used, so evaluating cannot change it.

    Returns:
        ``(positional arguments, keyword arguments)``.

    Raises:
        CallError: an argument raised while evaluated (``NameError`` for an unknown name); the message names it.
    """
    def value(expr: ast.expr) -> Any:
        try:
            return eval(compile(ast.Expression(expr), "<--call>", "eval"), dict(namespace))  # noqa: S307 - the user's own call
        except Exception as e:
            raise CallError(f"--call {text!r}: cannot evaluate {ast.unparse(expr)!r}: {type(e).__name__}: {e}") from e

    return [value(a) for a in node.args], {k.arg: value(k.value) for k in node.keywords if k.arg}


def code_signature(method: Any) -> inspect.Signature:
    """The signature Python binds a call of ``method`` with: its code's own, not a declared ``__signature__``.

    ``inspect.signature`` returns a function's ``__signature__`` when it has one, and fastcore's
    ``delegates`` (fastai's ``fine_tune``, ``get_preds``) sets one that lists the keywords it
    forwards instead of its ``**kwargs``; the interpreter binds with the code's parameters. For a
    function (or a method bound to one) the parameters are read from a copy of it that has neither
    ``__signature__`` nor ``__wrapped__``; anything else gets ``inspect.signature``.

    Args:
        method: a function, or a method bound to its instance (its first parameter is then left out).

    Returns:
        The signature.

    Raises:
        ValueError, TypeError: no signature can be read (``inspect.signature``'s own errors).
    """
    function = getattr(method, "__func__", method)
    if not isinstance(function, types.FunctionType):
        return inspect.signature(method)
    bare = types.FunctionType(function.__code__, function.__globals__, function.__name__, function.__defaults__,
                              function.__closure__)
    bare.__kwdefaults__ = function.__kwdefaults__
    signature = inspect.signature(bare)
    if function is not method:  # bound: its first parameter is the instance
        signature = signature.replace(parameters=list(signature.parameters.values())[1:])
    return signature


def bind_call(text: str, method: Any, args: list[Any], kwargs: dict[str, Any], label: str) -> inspect.BoundArguments | None:
    """Bind the evaluated arguments to ``method`` as the real call would (``code_signature``), or refuse them.

    Args:
        text: the call as given, for the message.
        method: the trainer's method, bound (``getattr(trainer, name)``).
        args, kwargs: the evaluated arguments (``call_arguments``).
        label: how the message names the method, e.g. ``"Learner.fit"``.

    Returns:
        The bound arguments (defaults not applied); ``None`` when the method has no readable signature
        (then the call itself decides).

    Raises:
        CallError: the arguments do not bind (too many, a missing one, an unknown keyword, one given
            twice); the message has Python's reason and the method's parameters.
    """
    try:
        signature = code_signature(method)
    except (TypeError, ValueError):
        return None
    try:
        return signature.bind(*args, **kwargs)
    except TypeError as e:
        raise CallError(f"--call {text!r}: {label}() {_reason(e)}; it takes ({_parameters(signature)})") from e


def _reason(error: TypeError) -> str:
    """``inspect``'s binding message, lower-cased at its start: ``"missing a required argument: 'n_epoch'"``."""
    text = str(error)
    return text[:1].lower() + text[1:] if text else "does not accept these arguments"


class _Elided:
    """A default shown as ``…`` (a function, an object: its repr would be long or name an address)."""

    def __repr__(self) -> str:
        return "…"


def _parameters(signature: inspect.Signature) -> str:
    """``"n_epoch, lr=None, wd=None"``: the parameters as written (``*`` and ``/`` too), without annotations."""
    simple = (type(None), bool, int, float, str)
    params = [p.replace(annotation=inspect.Parameter.empty,
                        default=p.default if p.default is p.empty or isinstance(p.default, simple) else _Elided())
              for p in signature.parameters.values()]
    return str(signature.replace(parameters=params, return_annotation=inspect.Signature.empty))[1:-1]


def check_call(text: str, accepted: tuple[str, ...] | None = None) -> str:
    """Check a ``--call`` without loading anything: a Python call of an accepted method, no ``*args``/``**kwargs``.

    Args:
        text: the call as given, e.g. ``"fit_one_cycle(3, 1e-3)"`` or ``"learn.fit(1)"``.
        accepted: the accepted method names; ``None``: ``loop_calls()``.

    Returns:
        The method name, e.g. ``"fit_one_cycle"``. The arguments are not evaluated.

    Raises:
        CallError: one line naming ``--call``: not a Python call (``call_expression``: a repeated keyword, an
            owner that is no dotted name too), or a method no adapter accepts (with the closest accepted
            name, when one is close, and the accepted names).
    """
    accepted = loop_calls() if accepted is None else accepted
    node = call_expression(text)
    name = call_method(node)
    if name not in accepted:
        close = difflib.get_close_matches(name, accepted, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ";"
        raise CallError(f"--call {text!r}: {name!r} is not a loop call{hint} accepted: {', '.join(accepted)}")
    if any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords):
        raise CallError(f"--call {text!r}: *args and **kwargs are not supported")
    return name
