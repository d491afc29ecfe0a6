"""The ``TrainerControl`` flags as data flow: who sets ``control.should_*`` at which event, and what reads it.

Three sources, each from transformers 5.24's ``trainer_callback.py`` and ``trainer.py``:

- ``DefaultFlowCallback.on_step_end`` / ``on_epoch_end``: their documented rules, stated from the
  actual ``TrainingArguments`` (``default_flow_rules``);
- ``EarlyStoppingCallback.on_evaluate``: ``should_training_stop`` after ``early_stopping_patience``
  evaluations without improvement;
- every other callback's own code: an AST scan (``scan``) of the functions that run at each event
  (following ``self.helper(...)`` calls into methods of its class) for ``<x>.should_* = …``,
  ``setattr(<x>, "should_*", …)``, ``control._new_step()``/``_new_epoch()``/``_new_training()`` and
  ``return <anything but the control it got, or None>`` (``CallbackHandler.call_event`` replaces the
  control with any non-``None`` return).

What reads each flag is the Trainer's own code: ``_maybe_log_save_evaluate`` (``should_log``,
``should_evaluate``, ``should_save``, after ``on_step_end`` and again after ``on_epoch_end``), and
``_run_epoch``/``_inner_training_loop`` (the stop flags, after every micro-batch and after each epoch).
``CallbackHandler`` itself sets flags back to False before dispatching some events (``RESETS``).
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from dataclasses import dataclass
from types import CodeType
from typing import Any

from ...model.loop import Flow, FlowSetter, SourceLocation
from ..introspect import get, location, underlying
from .plan import Numbers, arg, steps_text

FLAGS = ("should_log", "should_evaluate", "should_save", "should_epoch_stop", "should_training_stop")
STOP_FLAGS = ("should_epoch_stop", "should_training_stop")

# CallbackHandler.on_<event> (trainer_callback.py, 5.24) sets these to False before it calls any callback.
RESETS = {
    "on_train_begin": ("should_training_stop",),
    "on_epoch_begin": ("should_epoch_stop",),
    "on_step_begin": ("should_log", "should_evaluate", "should_save"),
    "on_evaluate": ("should_evaluate",),
    "on_save": ("should_save",),
    "on_log": ("should_log",),
}

# TrainerControl's helpers (trainer_callback.py): which flags each sets to False.
_NEW = {"_new_training": ("should_training_stop",), "_new_epoch": ("should_epoch_stop",),
        "_new_step": ("should_save", "should_evaluate", "should_log")}


@dataclass(frozen=True)
class Write:
    """One place in a callback's code that may change a control flag, or replace the control object.

    Attributes:
        callback: ``Callback.id`` of the callback whose code it is.
        event: the event at which that code runs.
        flag: the flag (``"should_evaluate"``), or ``"*"``: any flag (the control object is replaced by
            something loopdoc cannot read, or the source is not readable).
        value: the value as written (``"True"``, ``"False"``, ``"state.global_step > 3"``), or ``None`` when unknown.
        kind: ``"assign"``, ``"setattr"``, ``"reset"`` (a ``control._new_*()`` call), ``"replace"`` (a returned
            object other than the control), or ``"unknown"`` (no source).
        code: the statement, unparsed (``"control.should_evaluate = True"``).
        function: ``__qualname__`` of the function that holds it (a helper's, when reached through ``self.helper()``).
        conditions: the tests of the ``if`` statements around it, innermost last (``"not (state.global_step == 1)"`` for an ``else``).
        source: where the statement is, or ``None``.
    """

    callback: str
    event: str
    flag: str
    value: str | None
    kind: str
    code: str
    function: str
    conditions: tuple[str, ...] = ()
    source: SourceLocation | None = None

    def may_set(self, flag: str) -> bool:
        """Whether this may leave ``flag`` True where it was False (a write of anything but a literal ``False``)."""
        return self.flag in (flag, "*") and self.value != "False"

    def may_clear(self, flag: str) -> bool:
        """Whether this may leave ``flag`` False where it was True (anything but a literal ``True``)."""
        return self.flag in (flag, "*") and self.value != "True"

    def phrase(self) -> str:
        """``"`control.should_evaluate = True` in `AskEval._ask`, when `state.global_step == 1`"``."""
        where = f" in `{self.function}`" if not self.function.endswith(f".{self.event}") else ""
        when = f", when `{' and '.join(self.conditions)}`" if self.conditions else ""
        return f"`{self.code}`{where}{when}"


def scan(cb: Any, cb_id: str, event: str, attr: Any, via: str) -> list[Write]:
    """The control-flag writes in the code that runs for ``cb`` at ``event``.

    Args:
        cb: the callback.
        cb_id: its ``Callback.id``.
        event: the event.
        attr: what ``getattr(cb, event)`` finds: a function of its class, an instance attribute, a callable.
        via: ``"method"`` (defined on the class, ``self`` first) or ``"instance"`` (called as it is).

    Returns:
        The writes, in source order; one ``"unknown"`` write of ``"*"`` when the code is Python without readable
        source. A builtin (C) callable writes nothing.
    """
    fn = underlying(attr)
    code = get(fn, "__code__")
    if not isinstance(code, CodeType):
        return []
    offset = 1 if via == "method" or inspect.ismethod(attr) else 0
    return _scan_function(type(cb), cb_id, event, fn, code, offset, (), set())


def _scan_function(cls: type, cb_id: str, event: str, fn: Any, code: CodeType, offset: int, outer: tuple[str, ...],
                   seen: set[CodeType]) -> list[Write]:
    if code in seen:
        return []
    seen.add(code)
    node = _function_node(fn, code)
    qualname = code.co_qualname
    if node is None:
        return [Write(cb_id, event, "*", None, "unknown", "source not available", qualname, outer,
                      location(code.co_filename, code.co_firstlineno))]
    params = [a.arg for a in (*node.args.posonlyargs, *node.args.args)]
    control = "control" if "control" in params else (params[offset + 2] if len(params) > offset + 2 else "control")
    first = code.co_firstlineno - 1
    out: list[Write] = []

    def where(stmt: ast.AST) -> SourceLocation | None:
        return location(code.co_filename, first + getattr(stmt, "lineno", 1))

    def add(flag: str, value: str | None, kind: str, stmt: ast.AST, conds: tuple[str, ...]) -> None:
        out.append(Write(cb_id, event, flag, value, kind, _unparse(stmt), qualname, outer + conds, where(stmt)))

    def visit(stmts: list[ast.stmt], conds: tuple[str, ...]) -> None:
        for stmt in stmts:
            if isinstance(stmt, ast.If):
                test = _unparse(stmt.test)
                visit(stmt.body, conds + (test,))
                visit(stmt.orelse, conds + (f"not ({test})",))
                continue
            expr(stmt, conds)
            for name in ("body", "orelse", "finalbody"):  # loops, with, try, nested functions (which may run here)
                block = getattr(stmt, name, None)
                if isinstance(block, list):
                    visit([b for b in block if isinstance(b, ast.stmt)], conds)
            for part in (*(getattr(stmt, "handlers", None) or ()), *(getattr(stmt, "cases", None) or ())):
                visit(part.body, conds)

    def expr(stmt: ast.AST, conds: tuple[str, ...]) -> None:
        if isinstance(stmt, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            for target in targets:
                for sub in ast.walk(target):
                    if isinstance(sub, ast.Attribute) and sub.attr in FLAGS:
                        value = _unparse(stmt.value) if stmt.value is not None and not isinstance(stmt, ast.AugAssign) else None
                        add(sub.attr, value, "assign", stmt, conds)
        if isinstance(stmt, ast.Return):
            returned = stmt.value
            if returned is None or (isinstance(returned, ast.Constant) and returned.value is None):
                pass
            elif isinstance(returned, ast.Name) and returned.id == control:
                pass
            elif isinstance(returned, ast.Call) and _unparse(returned.func).split(".")[-1] == "TrainerControl":
                given = {k.arg: _unparse(k.value) for k in returned.keywords if k.arg}
                for flag in FLAGS:
                    add(flag, given.get(flag, "False"), "replace", stmt, conds)
            else:
                add("*", None, "replace", stmt, conds)
        for sub in _own_nodes(stmt):
            if not isinstance(sub, ast.Call):
                continue
            func = sub.func
            if isinstance(func, ast.Name) and func.id == "setattr" and len(sub.args) >= 3:
                name = sub.args[1]
                flag = name.value if isinstance(name, ast.Constant) and isinstance(name.value, str) else "*"
                if flag == "*" or flag in FLAGS:
                    add(flag, _unparse(sub.args[2]), "setattr", sub, conds)
            elif isinstance(func, ast.Attribute) and func.attr in _NEW:
                for flag in _NEW[func.attr]:
                    add(flag, "False", "reset", sub, conds)
            elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "self":
                helper = next((vars(k)[func.attr] for k in cls.__mro__ if func.attr in vars(k)), None)
                helper_fn = underlying(helper.__func__ if isinstance(helper, (staticmethod, classmethod)) else helper)
                helper_code = get(helper_fn, "__code__")
                if isinstance(helper_code, CodeType) and not _is_library(helper_code):
                    out.extend(_scan_function(cls, cb_id, event, helper_fn, helper_code,
                                              0 if isinstance(helper, staticmethod) else 1, outer + conds, seen))

    if isinstance(node, ast.Lambda):  # its body is what it returns
        visit([ast.Return(value=node.body, lineno=node.lineno, col_offset=node.col_offset)], ())
    else:
        visit(node.body, ())
    return out


def _own_nodes(stmt: ast.AST) -> list[ast.AST]:
    """The nodes of one statement, not descending into nested statements (those are visited with their conditions)."""
    out = []
    stack = [stmt]
    while stack:
        node = stack.pop()
        out.append(node)
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.stmt, ast.excepthandler)) and child is not stmt:
                continue
            stack.append(child)
    return out


def _function_node(fn: Any, code: CodeType) -> ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | None:
    """The AST of ``fn``'s definition (a ``def`` or the first ``lambda`` of its source lines), or ``None``."""
    try:
        source = textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError):
        return None
    try:
        tree = ast.parse(source)
    except SyntaxError:
        try:  # a lambda in the middle of a larger expression: the source lines alone do not parse
            tree = ast.parse("(" + source.strip().rstrip(",") + ")")
        except SyntaxError:
            return None
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == code.co_name:
            return node
        if isinstance(node, ast.Lambda) and code.co_name == "<lambda>":
            return node
    return None


def _is_library(code: CodeType) -> bool:
    """Whether ``code`` is transformers' own (a file inside the imported ``transformers`` package), not the user's
    (whose folders may well be called ``transformers``)."""
    import os
    import sys

    root = get(sys.modules.get("transformers"), "__file__")
    if not isinstance(root, str):
        return False
    try:
        return os.path.abspath(code.co_filename).startswith(os.path.dirname(os.path.abspath(root)) + os.sep)
    except (TypeError, ValueError):
        return False


def _unparse(node: ast.AST) -> str:
    try:
        return " ".join(ast.unparse(node).split())
    except Exception:
        return "?"


# ---------------------------------------------------------------- DefaultFlowCallback, in words


def default_flow_rules(args: Any, n: Numbers | None) -> dict[tuple[str, str], str]:
    """``DefaultFlowCallback``'s rules (trainer_callback.py, 5.24) for these arguments: ``{(flag, event): condition}``.

    Only the rules that can hold are given (``logging_strategy="no"`` gives no ``should_log`` rule).

    Args:
        args: the ``TrainingArguments``.
        n: the train numbers (``None`` when there is no train dataset: the step counts are then ``args``' own).

    Returns:
        e.g. ``{("should_log", "on_step_end"): "every 500 steps (logging_strategy='steps', logging_steps=500)"}``.
    """
    ms = n.max_steps if n is not None else args.max_steps
    resolved = {k: getattr(n, f"{k}_steps") if n is not None else getattr(args, f"{k}_steps") for k in ("logging", "eval", "save")}
    strategy = {k: arg(getattr(args, f"{k}_strategy")).strip("'") for k in ("logging", "eval", "save")}
    rules: dict[tuple[str, str], str] = {}
    log = []
    if strategy["logging"] == "steps":
        log.append(steps_text("logging", args.logging_steps, resolved["logging"], ms))
    if args.logging_first_step:
        log.append("at global_step 1 (logging_first_step=True)")
    if log:
        rules[("should_log", "on_step_end")] = " and ".join(log)
    if strategy["eval"] == "steps":
        text = steps_text("eval", args.eval_steps, resolved["eval"], ms) + f" and at the last step (max_steps={ms})"
        if args.eval_delay:
            text += f", from global_step {arg(args.eval_delay)} on (eval_delay={arg(args.eval_delay)})"
        rules[("should_evaluate", "on_step_end")] = text
    if strategy["save"] == "steps":
        rules[("should_save", "on_step_end")] = (steps_text("save", args.save_steps, resolved["save"], ms)
                                                 + f" and at the last step (max_steps={ms})")
    rules[("should_training_stop", "on_step_end")] = f"when global_step reaches max_steps={ms}"
    if strategy["logging"] == "epoch":
        rules[("should_log", "on_epoch_end")] = "at the end of every epoch (logging_strategy='epoch')"
    if strategy["eval"] == "epoch":
        delay = f" once state.epoch >= {arg(args.eval_delay)} (eval_delay)" if args.eval_delay else ""
        rules[("should_evaluate", "on_epoch_end")] = f"at the end of every epoch{delay} (eval_strategy='epoch')"
    if strategy["save"] == "epoch":
        rules[("should_save", "on_epoch_end")] = "at the end of every epoch (save_strategy='epoch')"
    return rules


DESCRIPTIONS = {
    "should_log": "Log the training loss averaged since the last log, `grad_norm` and `learning_rate` (`Trainer.log`, "
    "then `on_log`).",
    "should_evaluate": "Run `evaluate()` on the eval dataset (`on_prediction_step` per batch, `on_log`, `on_evaluate`).",
    "should_save": "Write a checkpoint, `output_dir/checkpoint-<global_step>`, then `on_save`.",
    "should_epoch_stop": "End the current epoch after the current micro-batch, even inside an accumulation window; "
    "`on_epoch_end` and its log/evaluate/save block still run.",
    "should_training_stop": "End training after the current micro-batch (and the epoch loop after the epoch); "
    "`on_epoch_end`, its block, the final `on_log` and `on_train_end` still run.",
}

READS = {
    "should_log": ("after `on_step_end`: `_maybe_log_save_evaluate` logs (phase `log`), if `global_step` passed the last log",
                   "after `on_epoch_end`: `_maybe_log_save_evaluate` again"),
    "should_evaluate": ("after `on_step_end`: `_maybe_log_save_evaluate` runs `evaluate()` (phase `evaluate`)",
                        "after `on_epoch_end`: `_maybe_log_save_evaluate` again"),
    "should_save": ("after `on_step_end`: `_maybe_log_save_evaluate` saves (phase `save`), after the evaluation",
                    "after `on_epoch_end`: `_maybe_log_save_evaluate` again"),
    "should_epoch_stop": ("after every micro-batch: `_run_epoch` leaves the epoch",),
    "should_training_stop": ("after every micro-batch: `_run_epoch` leaves the epoch",
                             "after each epoch: `_inner_training_loop` leaves the epoch loop"),
}


def build_flows(args: Any, rules: dict[tuple[str, str], str], default_flow: str | None, early: list[tuple[str, Any]],
                writes: list[Write], order: dict[str, int], best_save: bool) -> tuple[Flow, ...]:
    """The model's ``flows``: one ``Flow`` per ``TrainerControl`` flag, setters in loop order.

    Args:
        args: the ``TrainingArguments``.
        rules: ``default_flow_rules`` (``{}`` when DefaultFlowCallback's own methods do not run).
        default_flow: ``Callback.id`` of the DefaultFlowCallback whose rules apply, or ``None``.
        early: ``(Callback.id, callback)`` of each ``EarlyStoppingCallback``.
        writes: the other callbacks' ``Write``s (from ``scan``).
        order: event name → position in the loop, to sort setters.
        best_save: ``save_strategy="best"`` (the Trainer sets ``should_save`` itself).

    Returns:
        The flows, in ``FLAGS`` order.
    """
    out = []
    for flag in FLAGS:
        setters: list[tuple[int, int, FlowSetter]] = []
        if default_flow is not None:
            for (f, event), text in rules.items():
                if f == flag:
                    setters.append((order.get(event, 99), 0, FlowSetter(default_flow, event, "True", text)))
        if flag == "should_training_stop":
            for cb_id, cb in early:
                metric = args.metric_for_best_model
                text = (f"after {cb.early_stopping_patience} evaluation(s) in a row in which {metric or 'metric_for_best_model'!s} "
                        f"did not improve by more than early_stopping_threshold={cb.early_stopping_threshold}")
                setters.append((order.get("on_evaluate", 99), 1, FlowSetter(cb_id, "on_evaluate", "True", text)))
        for w in writes:
            if w.flag in (flag, "*"):
                value = w.value if w.flag == flag else None
                setters.append((order.get(w.event, 99), 2, FlowSetter(w.callback, w.event, value, w.phrase())))
        resets = [event for event, flags in RESETS.items() if flag in flags]
        description = DESCRIPTIONS[flag] + " `CallbackHandler` sets it to False before it dispatches " + \
            " and ".join(f"`{e}`" for e in sorted(resets, key=lambda e: order.get(e, 99))) + "."
        if flag == "should_save" and best_save:
            description += (f" With save_strategy='best' the Trainer itself sets it after each evaluation of the block, to whether "
                            f"metric_for_best_model={args.metric_for_best_model!r} improved.")
        if flag == "should_training_stop":
            description += " The Trainer sets it itself when an epoch yields no batch at all."
        unique = []
        for _, _, s in sorted(setters, key=lambda t: (t[0], t[1])):
            if s not in unique:
                unique.append(s)
        out.append(Flow(f"control.{flag}", description, tuple(unique), READS[flag]))
    return tuple(out)
