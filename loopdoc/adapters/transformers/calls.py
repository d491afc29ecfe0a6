"""The ``--call`` a ``Trainer`` loop is documented for: ``train()``, ``evaluate()``, ``evaluate(eval_dataset=ds)``, ``predict(ds)``.

A call is parsed (``ast``) and its arguments evaluated in the user's module namespace; the call
itself is never made (nothing is trained, evaluated or predicted: ``extract`` reads the loop from
the ``Trainer``'s arguments and datasets). Only these three methods run a callback loop and write
nothing but checkpoints. The arguments are bound to the trainer's own method (a subclass's signature
is the one bound) as Python binds them, so what the real call would refuse as a ``TypeError`` is refused
here; the parameters accepted are the ones that do not change what runs before the loop (``train``'s
``resume_from_checkpoint`` and ``trial`` do, and are refused unless ``None``).
Signatures from transformers 5.24, ``trainer.py``: ``train(resume_from_checkpoint=None, trial=None,
ignore_keys_for_eval=None)``, ``evaluate(eval_dataset=None, ignore_keys=None, metric_key_prefix="eval")``,
``predict(test_dataset, ignore_keys=None, metric_key_prefix="test")``.
"""

from __future__ import annotations

import ast
import types
from dataclasses import dataclass, field
from typing import Any

from ...calls import bind_call, call_arguments, call_expression, call_method, check_owner
from ...errors import CallError

CALLS = ("train", "evaluate", "predict")

# Per method: the parameters loopdoc accepts. The others of transformers' own signature change what
# train() does before its loop; a Trainer subclass's own parameters are not modelled either.
_ACCEPTED = {
    "train": ("ignore_keys_for_eval",),
    "evaluate": ("eval_dataset", "ignore_keys", "metric_key_prefix"),
    "predict": ("test_dataset", "ignore_keys", "metric_key_prefix"),
}
_REFUSED = {"resume_from_checkpoint": "loading a checkpoint", "trial": "a hyper-parameter trial"}


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


def parse_call(text: str, namespace: dict[str, Any], trainer: Any = None) -> Call:
    """Parse ``"train()"``, ``"trainer.evaluate(eval_dataset=valid)"``, ``"predict(test)"``.

    A method written with an owner (``trainer.evaluate()``) must be called on ``trainer`` itself
    (``loopdoc.calls.check_owner``: ``trainer.model.train()`` only sets the module's training mode, and is
    refused). The arguments are evaluated in ``namespace`` and bound to the trainer's own method as Python
    binds them (``loopdoc.calls.bind_call``: too many, a missing ``predict`` dataset, an unknown
    keyword, one given twice are refused as ``Trainer.<method>`` would refuse them).

    Args:
        text: a Python call expression naming one of ``CALLS``.
        namespace: the names its arguments may use (the trainer module's globals).
        trainer: the ``Trainer`` whose method the arguments are bound to (a subclass may override it), and that
            an owner must be; ``None``: ``transformers.Trainer``'s (imports transformers), the owner not checked.

    Returns:
        The ``Call``, its arguments evaluated, by parameter name.

    Raises:
        CallError: not a call, another method, ``*args``/``**kwargs``, a method called on something other than
            ``trainer`` (``loopdoc.calls.check_owner``), an argument that fails to evaluate,
            arguments that do not bind, a parameter loopdoc does not model (``resume_from_checkpoint`` other than
            ``None``/``False``, ``trial`` other than ``None``, a subclass's own), or a ``None`` ``predict`` dataset
            (the message names the call and the problem).
    """
    node = call_expression(text, "'train()', 'evaluate()' or 'predict(test_dataset)'")
    name = call_method(node)
    if name not in CALLS:
        raise CallError(f"--call {text!r}: {name!r} does not run a Trainer loop; use one of {', '.join(c + '()' for c in CALLS)}")
    if any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords):
        raise CallError(f"--call {text!r}: *args and **kwargs are not supported")
    if trainer is not None:
        check_owner(node, text, namespace, trainer)
    args, kwargs = call_arguments(node, text, namespace)
    method = getattr(trainer, name) if trainer is not None else _unbound(name)
    bound = bind_call(text, method, args, kwargs, f"{type(trainer).__name__ if trainer is not None else 'Trainer'}.{name}")
    arguments = dict(bound.arguments) if bound is not None else dict(kwargs)
    for param in list(arguments):
        value = arguments[param]
        if param in _REFUSED and (value is None or (param == "resume_from_checkpoint" and value is False)):
            # the default (False: Trainer.train turns it into None): train() does nothing more
            del arguments[param]
            continue
        if param in _REFUSED:
            raise CallError(f"--call {text!r}: {param} is not supported: it changes what train() does before its loop "
                            f"({_REFUSED[param]}), which loopdoc does not model")
        if param not in _ACCEPTED[name]:
            raise CallError(f"--call {text!r}: {param} is not modelled (loopdoc models "
                            f"{', '.join(_ACCEPTED[name])} of Trainer.{name})")
    if name == "predict" and arguments.get("test_dataset") is None:
        raise CallError(f"--call {text!r}: predict needs a dataset, e.g. 'predict(test_dataset)' with a name from the module")
    return Call(name, arguments, text.strip())


def _unbound(name: str) -> Any:
    """``transformers.Trainer.<name>`` bound to a stand-in instance: only its signature is read, it is never called."""
    from transformers import Trainer

    return types.MethodType(getattr(Trainer, name), object())
