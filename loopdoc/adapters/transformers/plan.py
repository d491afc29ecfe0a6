"""The numbers of a ``train()`` and where ``DefaultFlowCallback`` makes it log, evaluate, save and stop, without running it.

Computed from ``len(dataset)`` and the ``TrainingArguments`` exactly as transformers 5.24 does
(``trainer.py``: ``Trainer.set_initial_training_values``, ``_inner_training_loop``, ``_run_epoch``,
``_maybe_log_save_evaluate``; ``trainer_callback.py``: ``TrainerState.compute_steps``,
``DefaultFlowCallback.on_step_end`` / ``on_epoch_end``). No dataloader is built: the Trainer's
``get_train_dataloader`` calls ``accelerator.prepare``, which registers the loader (a change to the
trainer), and its length is ``ceil(len(dataset) / batch size)`` (``floor`` with ``dataloader_drop_last``)
on one process.

``schedule`` replays ``DefaultFlowCallback``'s decisions step by step (``TrainerState.global_step``
and ``state.epoch`` as the Trainer computes them), so the steps and epochs at which each part of
``_maybe_log_save_evaluate`` runs are known when no other callback writes a control flag; the
extractor states them in words and the tests check them against real runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Numbers:
    """How a ``train()`` of this Trainer is cut into epochs, update steps and micro-batches.

    Attributes:
        ga: ``gradient_accumulation_steps``: micro-batches per update step.
        batch_size: the train batch size (``Trainer._train_batch_size``).
        examples: ``len(train_dataset)``, or ``None`` when it has no length.
        batches: batches per epoch (``steps_in_epoch``: the train dataloader's length; ``max_steps * ga``
            when the dataset has no length).
        steps_per_epoch: update steps per epoch, ``max(batches // ga + (batches % ga > 0), 1)``.
        max_steps: the run's last ``global_step``: ``args.max_steps`` if > 0, else
            ``ceil(num_train_epochs * steps_per_epoch)``.
        epochs: epochs the loop is set up for: ``ceil(max_steps / steps_per_epoch)`` when ``max_steps`` is
            given, else ``ceil(num_train_epochs)``; 1 when the dataset has no length (the Trainer uses
            ``sys.maxsize`` and relies on ``max_steps``).
        last_window: micro-batches of an epoch's last update step: ``batches % ga``, or ``ga`` when that is 0.
        logging_steps, eval_steps, save_steps: as ``TrainerState.compute_steps`` resolves them (a value below 1
            is a fraction of ``max_steps``, rounded up), or ``None``.
        sized: whether the train dataset has a length.
    """

    ga: int
    batch_size: int
    examples: int | None
    batches: int
    steps_per_epoch: int
    max_steps: int
    epochs: int
    last_window: int
    logging_steps: float | None
    eval_steps: float | None
    save_steps: float | None
    sized: bool

    def steps_in(self, epoch: int, stops_at_max: bool = True) -> int:
        """Update steps epoch ``epoch`` (0-based) runs: all of them, or up to ``max_steps`` (``DefaultFlowCallback`` stops there)."""
        if not stops_at_max:
            return self.steps_per_epoch
        return max(0, min(self.steps_per_epoch, self.max_steps - epoch * self.steps_per_epoch))

    def window(self, step: int) -> int:
        """Micro-batches of update step ``step`` (0-based, within its epoch): ``ga``, or ``last_window`` for the epoch's last."""
        return self.last_window if step == self.steps_per_epoch - 1 else self.ga


def length(obj: Any) -> int | None:
    """``len(obj)``, or ``None`` when it has none or raises (an ``IterableDataset``, a broken ``__len__``)."""
    try:
        n = len(obj)
    except Exception:
        return None
    return n if isinstance(n, int) and n >= 0 else None


def batches(n: int | None, batch_size: int, drop_last: bool) -> int | None:
    """The length of a ``DataLoader`` over ``n`` examples (``None`` for ``None``)."""
    if n is None:
        return None
    if batch_size <= 0:
        return n
    return n // batch_size if drop_last else math.ceil(n / batch_size)


def numbers(trainer: Any) -> Numbers | None:
    """The ``Numbers`` of ``trainer.train()``, or ``None`` when it has no ``train_dataset`` (``train()`` would raise).

    Args:
        trainer: a built ``transformers.Trainer`` (read only).

    Returns:
        The numbers; ``None`` also when the dataset has no length and ``max_steps`` is not set (``train()``
        raises ``ValueError: args.max_steps must be set to a positive value if dataloader does not have a length``).
    """
    args = trainer.args
    if getattr(trainer, "train_dataset", None) is None:
        return None
    ga = max(int(args.gradient_accumulation_steps), 1)
    bs = int(getattr(trainer, "_train_batch_size", None) or args.train_batch_size)
    examples = length(trainer.train_dataset)
    n_batches = batches(examples, bs, bool(args.dataloader_drop_last))
    if n_batches is not None:
        per_epoch = max(n_batches // ga + int(n_batches % ga > 0), 1)
        max_steps = args.max_steps if args.max_steps > 0 else math.ceil(args.num_train_epochs * per_epoch)
        if args.max_steps > 0:
            epochs = max_steps // per_epoch + int(max_steps % per_epoch > 0)
        else:
            epochs = math.ceil(args.num_train_epochs)
        sized = True
    elif args.max_steps > 0:
        max_steps = per_epoch = args.max_steps
        n_batches, epochs, sized = max_steps * ga, 1, False
    else:
        return None
    remainder = n_batches % ga or ga
    steps = {}
    for kind in ("logging", "eval", "save"):
        value = getattr(args, f"{kind}_steps")
        if value is not None and value < 1:
            value = math.ceil(max_steps * value)
        steps[kind] = value
    return Numbers(ga, bs, examples, n_batches, per_epoch, int(max_steps), int(epochs), remainder,
                   steps["logging"], steps["eval"], steps["save"], sized)


@dataclass(frozen=True)
class Schedule:
    """Where ``DefaultFlowCallback``'s flags make ``_maybe_log_save_evaluate`` act, in a run no other callback steers.

    Attributes:
        steps: update steps per epoch, in order (what ``_run_epoch`` runs; the last epoch is cut at ``max_steps``).
        step_log, step_eval, step_save: the ``global_step`` values whose block after ``on_step_end`` logs,
            evaluates, saves.
        epoch_log, epoch_eval, epoch_save: the 0-based epochs whose block after ``on_epoch_end`` does.
        epoch_at_end: ``state.epoch`` at each ``on_epoch_end`` (a float, ``epoch + (step + 1) / steps_in_epoch``).
    """

    steps: tuple[int, ...]
    step_log: frozenset[int]
    step_eval: frozenset[int]
    step_save: frozenset[int]
    epoch_log: frozenset[int]
    epoch_eval: frozenset[int]
    epoch_save: frozenset[int]
    epoch_at_end: tuple[float, ...]


def schedule(args: Any, n: Numbers, default_flow: bool = True) -> Schedule:
    """Replay ``DefaultFlowCallback`` (5.24) over the run: which blocks log, evaluate and save.

    ``save_strategy="best"`` saves depend on metric values: ``step_save``/``epoch_save`` stay empty for it
    (the extractor states it as run-time data). Without ``DefaultFlowCallback`` (``default_flow=False``)
    nothing sets a flag, and every epoch runs all its update steps (``max_steps`` is not enforced inside an epoch).

    Args:
        args: the ``TrainingArguments``.
        n: the run's ``Numbers``.
        default_flow: whether ``DefaultFlowCallback``'s own ``on_step_end``/``on_epoch_end`` run.

    Returns:
        The ``Schedule``.
    """
    logging, evaluation, saving = _value(args.logging_strategy), _value(args.eval_strategy), _value(args.save_strategy)
    steps: list[int] = []
    log, ev, sv, elog, eev, esv, at_end = set(), set(), set(), set(), set(), set(), []
    gs = last_logged = 0
    for epoch in range(n.epochs):
        count = n.steps_in(epoch, stops_at_max=default_flow)
        steps.append(count)
        stop = False
        for _ in range(count):
            gs += 1
            if not default_flow:
                continue
            if (gs == 1 and args.logging_first_step) or (logging == "steps" and gs % n.logging_steps == 0):
                log.add(gs)
                last_logged = gs
            if evaluation == "steps" and args.eval_delay <= gs and (gs % n.eval_steps == 0 or gs >= n.max_steps):
                ev.add(gs)
            if saving == "steps" and ((n.save_steps > 0 and gs % n.save_steps == 0) or gs >= n.max_steps):
                sv.add(gs)
            if gs >= n.max_steps:
                stop = True
                break
        micro = sum(n.window(s) for s in range(count))
        state_epoch = epoch + micro / n.batches  # as _run_epoch: epoch + (step + 1) / steps_in_epoch
        at_end.append(state_epoch)
        if default_flow:
            if logging == "epoch" and gs > last_logged:
                elog.add(epoch)
                last_logged = gs
            if evaluation == "epoch" and args.eval_delay <= state_epoch:
                eev.add(epoch)
            if saving == "epoch":
                esv.add(epoch)
        if stop:
            break
    return Schedule(tuple(steps), frozenset(log), frozenset(ev), frozenset(sv), frozenset(elog), frozenset(eev),
                    frozenset(esv), tuple(at_end))


def _value(strategy: Any) -> str:
    """An ``IntervalStrategy``/``SaveStrategy`` (or its string) as its value: ``"steps"``."""
    return str(getattr(strategy, "value", strategy))


def arg(value: Any) -> str:
    """An argument value as written in Python: ``'steps'`` for a strategy, ``500`` for a number, ``0.25``."""
    if hasattr(value, "value"):
        value = value.value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value)


def steps_text(kind: str, value: Any, resolved: float | None, max_steps: int) -> str:
    """``"every 50 steps (eval_strategy='steps', eval_steps=50)"``, fractions resolved: ``"every 3 steps (… logging_steps=0.25 of max_steps=10)"``.

    Args:
        kind: ``"logging"``, ``"eval"`` or ``"save"``.
        value: the argument as given (``args.<kind>_steps``).
        resolved: as ``TrainerState.compute_steps`` resolves it.
        max_steps: the run's ``max_steps``.
    """
    strategy = "eval_strategy" if kind == "eval" else f"{kind}_strategy"
    shown = arg(value) + (f" of max_steps={max_steps}, rounded up" if value is not None and value < 1 else "")
    every = "every step" if resolved == 1 else f"every {arg(resolved) if resolved is not None else '?'} steps"
    return f"{every} ({strategy}='steps', {kind}_steps={shown})"


def listing(values: frozenset[int] | set[int], noun: str, total: int, first: int = 1) -> str:
    """``"global_step 2, 4 and 5"``, ``"never"``, or ``"10 times: global_step 50, 100, …, 500"``.

    Args:
        values: the positions (``global_step`` values, or 0-based epochs shown from ``first``).
        noun: ``"global_step"`` or ``"epoch"``.
        total: how many positions there are (``max_steps``, or the number of epochs).
        first: added to each value when shown (1 shows 0-based epochs 1-based).
    """
    shown = [str(v + first - 1) if noun == "epoch" else str(v) for v in sorted(values)]
    if not shown:
        return "never"
    if len(shown) == total and total > 1:
        return f"every {noun} (all {total})" if noun == "epoch" else f"at every step (all {total})"
    if len(shown) > 8:
        return f"{len(shown)} times: {noun} {', '.join(shown[:3])}, …, {shown[-1]}"
    joined = shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]
    return f"{noun} {joined}"
