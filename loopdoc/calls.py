"""``--call`` checked before any learner loads: is it a call, and does some installed adapter accept its method?

Loading a learner takes seconds (it imports the framework); a misspelt ``--call`` should not
wait for that. ``check_call`` reads only the call's text and the adapters' ``calls`` (the
registry imports no framework), so ``loopdoc.resolve.start`` runs it before it starts a worker.
The adapter still checks the call in full once the trainer is loaded (its arguments are
evaluated in the learner module's namespace, and the trainer must have the method).
"""

from __future__ import annotations

import ast
import difflib

from .errors import UsageError


def loop_calls() -> tuple[str, ...]:
    """The method names ``--call`` accepts: the union of every installed adapter's ``calls``, in adapter order.

    Returns:
        Names, each once, e.g. ``("fit", "fit_one_cycle", …, "get_preds")`` with only fastai installed.
    """
    from .adapters.registry import adapters

    return tuple(dict.fromkeys(name for adapter in adapters() for name in adapter.calls))


def call_expression(text: str, example: str = "'fit_one_cycle(3, 1e-3)'") -> ast.Call:
    """``--call``'s text parsed as one Python call of a name or an attribute (``fit(1)``, ``learn.fit(1)``), unevaluated.

    Args:
        text: the call as given.
        example: the call the message shows as an example (an adapter's own, e.g. ``"'train()'"``).

    Returns:
        The ``ast.Call`` node; its function is an ``ast.Name`` or an ``ast.Attribute``.

    Raises:
        UsageError: not Python, or not a call of a name or attribute (one line naming ``--call``).
    """
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as e:
        raise UsageError(f"--call {text!r}: not a Python call: {e.msg}") from e
    if not isinstance(node, ast.Call) or not isinstance(node.func, (ast.Name, ast.Attribute)):
        raise UsageError(f"--call {text!r}: expected a call such as {example}")
    return node


def check_call(text: str, accepted: tuple[str, ...] | None = None) -> str:
    """Check a ``--call`` without loading anything: a Python call of an accepted method, no ``*args``/``**kwargs``.

    Args:
        text: the call as given, e.g. ``"fit_one_cycle(3, 1e-3)"`` or ``"learn.fit(1)"``.
        accepted: the accepted method names; ``None``: ``loop_calls()``.

    Returns:
        The method name, e.g. ``"fit_one_cycle"``. The arguments are not evaluated.

    Raises:
        UsageError: one line naming ``--call``: not a Python call, or a method no adapter
            accepts (with the closest accepted name, when one is close, and the accepted names).
    """
    accepted = loop_calls() if accepted is None else accepted
    node = call_expression(text)
    func = node.func
    name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
    if name not in accepted:
        close = difflib.get_close_matches(name, accepted, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ";"
        raise UsageError(f"--call {text!r}: {name!r} is not a loop call{hint} accepted: {', '.join(accepted)}")
    if any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords):
        raise UsageError(f"--call {text!r}: *args and **kwargs are not supported")
    return name
