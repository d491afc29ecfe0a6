"""Which Lightning call to document: ``--call "fit(model, datamodule=dm)"`` parsed, or the one the module's objects imply.

A Lightning ``Trainer`` runs a loop only when called with a LightningModule and data:
``trainer.fit(model, train_dataloaders, val_dataloaders, datamodule=...)``,
``validate``/``test(model, dataloaders, datamodule=...)``, ``predict(model, dataloaders, ...)``
(``pytorch_lightning/trainer/trainer.py``, 2.6). ``--call`` names one of them as the user's
own script would, with names from the user's module; without ``--call``, ``default_call``
builds ``fit`` from the module's one LightningModule and its one DataModule or its
DataLoaders, and says what to write when that is ambiguous. Nothing here runs a loop.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass, field
from typing import Any

from ...calls import bind_call, call_arguments, call_expression, call_method, check_owner
from ...errors import CallError, LearnerNotFound
from ..introspect import safe_repr
from .lib import PACKAGES, Lightning, package_of

CALLS = ("fit", "validate", "test", "predict")
"""The Trainer methods that run a loop (``--call`` may name only these)."""


@dataclass(frozen=True)
class Call:
    """One call of a Trainer method, with its arguments resolved as Lightning resolves them.

    Attributes:
        method: ``"fit"``, ``"validate"``, ``"test"`` or ``"predict"``.
        text: the call as shown in the model, e.g. ``"fit(model, datamodule=dm)"``.
        model: the LightningModule.
        datamodule: the LightningDataModule, or ``None``.
        train: ``fit``'s ``train_dataloaders``, or ``None``.
        val: ``fit``'s ``val_dataloaders``, or ``None``.
        loaders: ``validate``/``test``/``predict``'s ``dataloaders``, or ``None``.
        kwargs: the keyword arguments to pass for a real run (``trace``), as ``Trainer.<method>`` takes them.
        given: the ``--call`` as the user gave it; ``None`` for the default call (``default_call``).
    """

    method: str
    text: str
    model: Any
    datamodule: Any = None
    train: Any = None
    val: Any = None
    loaders: Any = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    given: str | None = None

    @property
    def label(self) -> str:
        """How an error names the call: ``"--call 'test(model, val_dl)'"``, or ``"the default call 'fit(model)'"``
        when no ``--call`` was given (``CallError``'s ``SPEC: --call 'TEXT': PROBLEM``, for either)."""
        return f"--call {self.given!r}" if self.given is not None else f"the default call {self.text!r}"

    @property
    def evaluation_loaders(self) -> Any:
        """The loaders of the call's evaluation loop: ``val`` for ``fit``, else ``loaders``."""
        return self.val if self.method == "fit" else self.loaders


def parse_call(text: str, trainer: Any, namespace: dict[str, Any], given: bool = True) -> Call:
    """Parse and bind ``"fit(model, train_dl, val_dl)"`` (or ``"trainer.fit(...)"``) as ``Trainer.<method>`` would.

    A method written with an owner (``trainer.fit(…)``) must be called on ``trainer`` itself
    (``loopdoc.calls.check_owner``). Arguments are evaluated in ``namespace`` (the user's module globals) and bound to the method's
    signature as Python would bind them (``loopdoc.calls.bind_call``); a DataModule passed as
    ``train_dataloaders`` or ``dataloaders`` becomes ``datamodule``, as ``Trainer._fit_impl`` /
    ``_validate_impl`` do (2.6).

    Args:
        text: the call.
        trainer: the ``Trainer``.
        namespace: names the arguments may use.
        given: ``text`` is the user's ``--call``; ``False``: the default call (``default_call``), which
            errors name as ``the default call 'fit(…)'``.

    Returns:
        The ``Call``.

    Raises:
        CallError: not a call, a method that runs no loop, ``*args``/``**kwargs``, a method called on something
            other than ``trainer`` (``model.fit(model, dl)``: ``loopdoc.calls.check_owner``), an argument that fails to
            evaluate or does not fit the signature, no LightningModule, one of the other Lightning package,
            both loaders and a DataModule, or ``ckpt_path`` (resuming is not modelled).
    """
    node = call_expression(text, "'fit(model, datamodule=dm)'")
    name = call_method(node)
    if name not in CALLS:
        raise CallError(f"--call {text!r}: {name!r} does not run a loop; use one of {', '.join(CALLS)}")
    if any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords):
        raise CallError(f"--call {text!r}: *args and **kwargs are not supported")
    check_owner(node, text, namespace, trainer)

    args, kwargs = call_arguments(node, text, namespace)
    bound = bind_call(text, getattr(trainer, name), args, kwargs, f"{type(trainer).__name__}.{name}")
    arguments = dict(bound.arguments) if bound is not None else dict(kwargs)
    shown = name + "(" + ", ".join([ast.unparse(a) for a in node.args] + [f"{k.arg}={ast.unparse(k.value)}" for k in node.keywords]) + ")"
    return _resolve(name, arguments, trainer, shown, text if given else None)


def _resolve(method: str, arguments: dict[str, Any], trainer: Any, shown: str, given: str | None) -> Call:
    """A ``Call`` from bound arguments, with Lightning's own argument fix-ups (``trainer.py`` ``_fit_impl`` & co, 2.6).

    ``given``: the ``--call`` as given, ``None`` for the default call (see ``Call.label``)."""
    lib = Lightning.of(package_of(trainer) or PACKAGES[0])
    label = f"--call {given!r}" if given is not None else f"the default call {shown!r}"
    if arguments.get("ckpt_path") is not None:
        raise CallError(f"{label}: ckpt_path is not modelled (resuming adds the checkpoint-loading hooks); "
                         "document the call without it")
    model = arguments.get("model")
    if model is None:
        model = trainer.lightning_module
    if model is None:
        raise CallError(f"{label}: no LightningModule; pass one, e.g. '{method}(model)'")
    if not isinstance(model, lib.LightningModule):
        other = package_of(model)
        why = f"a {other} LightningModule; this Trainer is {lib.pkg}'s" if other else f"{safe_repr(model)}, not a LightningModule"
        raise CallError(f"{label}: the model is {why} (Trainer.{method} would raise TypeError)")
    datamodule = arguments.get("datamodule")
    first = "train_dataloaders" if method == "fit" else "dataloaders"
    loaders = arguments.get(first)
    if isinstance(loaders, lib.LightningDataModule):
        datamodule, loaders = loaders, None
    val = arguments.get("val_dataloaders") if method == "fit" else None
    if datamodule is not None and not isinstance(datamodule, lib.LightningDataModule):
        raise CallError(f"{label}: datamodule is {safe_repr(datamodule)}, not a {lib.pkg} LightningDataModule")
    if datamodule is not None and (loaders is not None or val is not None):
        raise CallError(f"{label}: pass either dataloaders or a datamodule, not both (Lightning raises "
                         "MisconfigurationException)")
    kwargs = {k: v for k, v in arguments.items() if k not in ("model", first, "val_dataloaders", "datamodule")}
    run = {"model": model, **({first: loaders} if loaders is not None else {}),
           **({"val_dataloaders": val} if val is not None else {}),
           **({"datamodule": datamodule} if datamodule is not None else {}), **kwargs}
    return Call(method, shown, model, datamodule, loaders if method == "fit" else None, val,
                None if method == "fit" else loaders, run, given)


def default_call(trainer: Any, namespace: dict[str, Any], where: str = "the module") -> Call:
    """The call to document without ``--call``: ``fit`` with the module's one LightningModule and its data.

    The data: the one LightningDataModule (``fit(model, datamodule=dm)``); else no DataLoader
    (``fit(model)``: the module's own ``*_dataloader`` hooks), one (``fit(model, dl)``), or two whose
    names say which is which (one name containing ``train``, the other ``val``: ``fit(model, train_dl,
    val_dl)``). Objects are the module's public globals, each once (by identity), of either Lightning
    package (``torch.utils.data.DataLoader`` for loaders, read only if torch is imported).

    Args:
        trainer: the ``Trainer`` (a LightningModule already attached to it counts if the module has none).
        namespace: the module's globals.
        where: how to name the module in messages (``"train.py"``).

    Returns:
        The ``Call``; its ``text`` names the objects by their names in the module.

    Raises:
        LearnerNotFound: no LightningModule or several, several DataModules, a DataModule and DataLoaders,
            or DataLoaders that cannot be told apart; the message lists what was found and the ``--call`` to write.
    """
    found = _objects(namespace)
    modules, dms, dls = found["module"], found["datamodule"], found["loader"]
    scope = dict(namespace)
    if not modules and trainer.lightning_module is not None:  # attached to the Trainer already: call it `model`
        modules = [("model", trainer.lightning_module)]
        scope["model"] = trainer.lightning_module
    listing = _listing(found)
    if not modules:
        raise LearnerNotFound(f"{where}: defines no LightningModule at module level{listing}; build one there, or pass "
                              "--call 'fit(MyModule(), datamodule=dm)'")
    if len(modules) > 1:
        names = [n for n, _ in modules]
        raise LearnerNotFound(f"{where}: defines {len(modules)} LightningModules ({', '.join(names)}){listing}; "
                              f"say which: --call 'fit({names[0]}, ...)'")
    model_name = modules[0][0]
    if len(dms) > 1 or (dms and dls):
        raise LearnerNotFound(f"{where}: the data to fit with is ambiguous{listing}; say which: --call "
                              f"'fit({model_name}, datamodule={dms[0][0]})'")
    if dms:
        text = f"fit({model_name}, datamodule={dms[0][0]})"
    elif not dls:
        text = f"fit({model_name})"
    elif len(dls) == 1:
        text = f"fit({model_name}, {dls[0][0]})"
    else:
        train = [n for n, _ in dls if "train" in n.lower()]
        val = [n for n, _ in dls if "val" in n.lower() and "train" not in n.lower()]
        if len(dls) != 2 or len(train) != 1 or len(val) != 1:
            names = [n for n, _ in dls]
            raise LearnerNotFound(f"{where}: defines {len(dls)} DataLoaders ({', '.join(names)}) and loopdoc cannot tell "
                                  f"which one trains; say which: --call 'fit({model_name}, train_dataloaders={names[0]}, "
                                  f"val_dataloaders={names[1]})'")
        text = f"fit({model_name}, {train[0]}, {val[0]})"
    return parse_call(text, trainer, scope, given=False)


def _objects(namespace: dict[str, Any]) -> dict[str, list[tuple[str, Any]]]:
    """The module's public LightningModules, DataModules and DataLoaders, each once (first name), in definition order."""
    loader_cls = getattr(sys.modules.get("torch.utils.data"), "DataLoader", None)
    found: dict[str, list[tuple[str, Any]]] = {"module": [], "datamodule": [], "loader": []}
    seen: set[int] = set()
    for name, obj in list(namespace.items()):
        if name.startswith("_") or id(obj) in seen or isinstance(obj, type):
            continue
        if package_of(obj) is not None:
            kind = _kind(obj)
            if kind is not None:
                found[kind].append((name, obj))
                seen.add(id(obj))
        elif loader_cls is not None and _isinstance(obj, loader_cls):
            found["loader"].append((name, obj))
            seen.add(id(obj))
    return found


def _isinstance(obj: Any, cls: type) -> bool:
    try:
        return isinstance(obj, cls)
    except Exception:  # a user's object whose __class__ raises
        return False


def _kind(obj: Any) -> str | None:
    names = {c.__name__ for c in type(obj).__mro__ if (c.__module__ or "").split(".")[0] in ("pytorch_lightning", "lightning")}
    if "LightningModule" in names:
        return "module"
    if "LightningDataModule" in names:
        return "datamodule"
    return None


def _listing(found: dict[str, list[tuple[str, Any]]]) -> str:
    """``"; found LightningModules: a; DataModules: b; DataLoaders: c, d"``, or ``""`` when nothing was found."""
    parts = [f"{label}: {', '.join(n for n, _ in found[key])}" for key, label in
             (("module", "LightningModules"), ("datamodule", "DataModules"), ("loader", "DataLoaders")) if found[key]]
    return f"; found {'; '.join(parts)}" if parts else ""
