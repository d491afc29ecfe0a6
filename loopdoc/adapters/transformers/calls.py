"""The ``--call`` a ``Trainer`` loop is documented for: ``train()``, ``evaluate()``, ``evaluate(eval_dataset=ds)``, ``predict(ds)``.

A call is parsed (``ast``) and its arguments evaluated in the user's module namespace; the call
itself is never made (nothing is trained, evaluated or predicted: ``extract`` reads the loop from
the ``Trainer``'s arguments and datasets). Only these three methods run a callback loop and write
nothing but checkpoints; the keyword arguments accepted are the ones that do not change what runs
before the loop (``train``'s ``resume_from_checkpoint`` and ``trial`` do, and are refused).
Signatures from transformers 5.24, ``trainer.py``: ``train(resume_from_checkpoint=None, trial=None,
ignore_keys_for_eval=None)``, ``evaluate(eval_dataset=None, ignore_keys=None, metric_key_prefix="eval")``,
``predict(test_dataset, ignore_keys=None, metric_key_prefix="test")``.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any

from ...calls import call_expression
from ...errors import UsageError

CALLS = ("train", "evaluate", "predict")

# Per method: its parameters in order (positional use allowed), and which of them loopdoc accepts.
_PARAMETERS = {
    "train": ("resume_from_checkpoint", "trial", "ignore_keys_for_eval"),
    "evaluate": ("eval_dataset", "ignore_keys", "metric_key_prefix"),
    "predict": ("test_dataset", "ignore_keys", "metric_key_prefix"),
}
_ACCEPTED = {
    "train": ("ignore_keys_for_eval",),
    "evaluate": ("eval_dataset", "ignore_keys", "metric_key_prefix"),
    "predict": ("test_dataset", "ignore_keys", "metric_key_prefix"),
}


@dataclass(frozen=True)
class Call:
    """A parsed call.

    Attributes:
        method: ``"train"``, ``"evaluate"`` or ``"predict"``.
        kwargs: the arguments by parameter name, evaluated (``{"eval_dataset": <Dataset>}``).
        text: the call as given, stripped (``"evaluate(eval_dataset=valid)"``); ``"train()"`` by default.
    """

    method: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    text: str = "train()"


def parse_call(text: str, namespace: dict[str, Any]) -> Call:
    """Parse ``"train()"``, ``"trainer.evaluate(eval_dataset=valid)"``, ``"predict(test)"``.

    Args:
        text: a Python call expression naming one of ``CALLS``.
        namespace: the names its arguments may use (the trainer module's globals).

    Returns:
        The ``Call``, its arguments evaluated.

    Raises:
        UsageError: not a call, another method, ``*args``/``**kwargs``, an unknown or refused argument, a
            missing ``predict`` dataset, or an argument that fails to evaluate (the message names it).
    """
    node = call_expression(text, "'train()', 'evaluate()' or 'predict(test_dataset)'")
    name = node.func.id if isinstance(node.func, ast.Name) else node.func.attr
    if name not in CALLS:
        raise UsageError(f"--call {text!r}: {name!r} does not run a Trainer loop; use one of {', '.join(c + '()' for c in CALLS)}")
    if any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords):
        raise UsageError(f"--call {text!r}: *args and **kwargs are not supported")
    params = _PARAMETERS[name]
    if len(node.args) > len(params):
        raise UsageError(f"--call {text!r}: Trainer.{name} takes at most {len(params)} arguments")
    named = list(zip(params, node.args, strict=False)) + [(k.arg, k.value) for k in node.keywords if k.arg]
    seen: set[str] = set()
    kwargs: dict[str, Any] = {}
    for param, expr in named:
        if param in seen:
            raise UsageError(f"--call {text!r}: {param} given twice")
        seen.add(param)
        if param not in params:
            raise UsageError(f"--call {text!r}: Trainer.{name} has no parameter {param!r}")
        if param not in _ACCEPTED[name]:
            raise UsageError(f"--call {text!r}: {param} is not supported: it changes what train() does before its loop "
                             "(loading a checkpoint, a hyper-parameter trial), which loopdoc does not model")
        kwargs[param] = _value(expr, text, namespace)
    if name == "predict" and kwargs.get("test_dataset") is None:
        raise UsageError(f"--call {text!r}: predict needs a dataset, e.g. 'predict(test_dataset)' with a name from the module")
    return Call(name, kwargs, text.strip())


def _value(expr: ast.expr, text: str, namespace: dict[str, Any]) -> Any:
    try:
        return eval(compile(ast.Expression(expr), "<--call>", "eval"), dict(namespace))  # noqa: S307 - the user's own call
    except Exception as e:
        raise UsageError(f"--call {text!r}: cannot evaluate {ast.unparse(expr)!r}: {type(e).__name__}: {e}") from e
