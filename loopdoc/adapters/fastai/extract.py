"""Read a fastai 2.8 ``Learner`` into a ``loopdoc.model.Loop`` without running it.

Facts encoded here, each from fastai 2.8.12's source:

- the event names: ``fastai.callback.core._events`` (read at run time);
- the events ``run_train`` / ``run_valid`` filter: ``fastai.callback.core._inner_loop``
  (read at run time), decided in ``Callback.__call__``;
- the phase tree and the place of every event: ``Learner._with_events`` and its
  callers ``fit``, ``_do_fit``, ``_do_epoch``, ``_do_epoch_train``,
  ``_do_epoch_validate``, ``all_batches``, ``one_batch``, ``_do_one_batch``,
  ``_do_grad_opt`` (``fastai/learner.py``); ``after_create`` from ``Learner.__init__``;
- the run order: ``Learner._call_one`` runs ``self.cbs.sorted('order')`` (stable);
- which callbacks respond: ``Callback.__call__`` calls ``getcallable(self, event)``
  when ``run`` is set and the flag for the phase allows it.

Nothing here imports fastai at module import time: ``extract`` imports it only
after the user's code has built the learner.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ...model.loop import (
    Callback,
    Cancel,
    Event,
    Framework,
    Handler,
    LearnerSummary,
    Loop,
    Node,
    Phase,
    Step,
)
from ..introspect import (
    callback_ids,
    class_source,
    clean_doc,
    definer,
    describe,
    exc_text,
    handler_for,
    has,
    is_number,
    qualified,
    safe_repr,
    underlying,
)
from .calls import Fired, record_call
from .wording import CANCELS, EVENT_DESCRIPTIONS

FLAGS = ("run", "run_train", "run_valid")

TRAINING_ONLY = "only when training and the batch has targets (`len(self.yb) > 0`)"


def extract(learn: Any, *, loaded_from: str, extra_cbs: Iterable[Any] = (), call: str | None = None,
            namespace: dict[str, Any] | None = None, at_create: Iterable[int] | None = None) -> Loop:
    """Build the ``Loop`` of a call on ``learn`` without training it or changing it.

    Args:
        learn: a ``fastai.learner.Learner``.
        loaded_from: where it was loaded from, for ``LearnerSummary.loaded_from``.
        extra_cbs: ``Callback`` instances to list as if passed to ``fit(cbs=...)``:
            they follow the learner's callbacks of equal ``order`` and never
            receive ``after_create``. Ignored when ``call`` is given.
        call: a loop call such as ``"fit_one_cycle(3, 1e-3)"`` or ``"get_preds()"``
            (see ``fastai_call.CALLS``), found by running fastai's own code for it on
            a copy that trains nothing (``fastai_call.record_call``). ``None``: the
            learner's callbacks under one ``fit``.
        namespace: names the call's arguments may use (the learner module's globals).
        at_create: ``id()`` of the callbacks that received ``after_create`` (observed by
            ``loopdoc.creation.watch_creation`` while loading); ``None``: all of the
            learner's own callbacks, which is wrong only for callbacks added after
            ``Learner(...)`` (``learn.add_cb``).

    Returns:
        The ``Loop``: phase ``create``, then the phases the call runs (one ``fit``
        per fit, or a validation-only tree for ``validate``/``get_preds``), every
        event of ``fastai.callback.core._events`` in the place fastai fires it.

    Raises:
        ImportError: fastai is not installed.
        CallError: a bad ``call`` (see ``fastai_call.record_call``).
    """
    import fastai
    from fastai.callback import core

    own = list(learn.cbs)
    own_ids = {id(cb) for cb in own}
    added_by = "listed as passed to `fit(cbs=...)`" if call is None else f"added by `{_method(call)}`"
    received = None if at_create is None else set(at_create)
    created = [cb for cb in own if received is None or id(cb) in received]
    if call is None:
        # fit(cbs=...) appends even an instance already attached, and fastai then runs it twice
        fired = [Fired("phase", "fit", tuple(own + list(extra_cbs)))]
    else:
        fired = record_call(learn, call, namespace or {})
    every: list[Any] = []
    seen: set[int] = set()  # ids: a callback's __eq__/__hash__ may be anything
    for cb in own + [cb for f in fired for cb in f.cbs]:
        if id(cb) not in seen:
            seen.add(id(cb))
            every.append(cb)
    ordered = run_order(every)
    ids = callback_ids(ordered)
    inner = set(core._inner_loop)

    def reader(cbs: Iterable[Any], reset: frozenset[int] = frozenset()) -> _Reader:
        run = run_order(list(cbs))
        return _Reader(run, ids, core.Callback, inner, created, _training(learn, run, core), reset)

    training = _training(learn, ordered, core)
    fits = sum(1 for f in fired if f.kind == "phase" and f.name == "fit")
    phases = (reader(own).create_phase(), *_from_fired(fired, reader, call or "fit", fits))
    loop = Loop(
        framework=Framework("fastai", fastai.__version__),
        versions=_versions(),
        learner=_summary(learn, loaded_from),
        call=call.strip() if call else "fit",
        filtered_events=tuple(core._inner_loop),
        callbacks=tuple(_callback(cb, ids[id(cb)], core.Callback, None if id(cb) in own_ids else added_by) for cb in ordered),
        phases=phases,
        notes=tuple(_notes(learn, ordered, core, training) + _broken_notes(ordered, training, core.Callback)),
    )
    _LAST[:] = [Extracted(loop, learn, {ids[id(cb)]: cb for cb in ordered}, _groups(fired, ids))]
    return loop


@dataclass(frozen=True)
class Extracted:
    """What ``extract`` read besides the model: the live objects behind it, for ``loopdoc check``'s facts.

    Attributes:
        loop: the model built.
        learn: the learner it was built from.
        objects: ``{Callback.id: callback object}`` for every callback of ``loop.callbacks``.
        groups: the callback ids attached together, one tuple per phase the call fired (per ``fit``, or
            the one validation pass), in ``learn.cbs`` order, an object attached twice listed twice;
            repeats of the same tuple in a row are kept once.
    """

    loop: Loop
    learn: Any
    objects: dict[str, Any]
    groups: tuple[tuple[str, ...], ...]


_LAST: list[Extracted] = []  # the last extraction only: a worker answers one request at a time


def extracted(loop: Loop) -> Extracted | None:
    """The live objects behind ``loop`` when it is the model ``extract`` built last (the same object), else ``None``."""
    return _LAST[0] if _LAST and _LAST[0].loop is loop else None


def _groups(fired: list[Fired], ids: dict[int, str]) -> tuple[tuple[str, ...], ...]:
    """The callbacks attached together per phase fired, as ids (see ``Extracted.groups``)."""
    out: list[tuple[str, ...]] = []
    for f in fired:
        group = tuple(ids[id(cb)] for cb in f.cbs if id(cb) in ids)
        if f.kind == "phase" and (not out or out[-1] != group):
            out.append(group)
    return tuple(out)


def _from_fired(fired: list[Fired], reader: Any, call: str, fits: int) -> list[Phase]:
    """Nest what a call fired into phases.

    A ``"phase"`` entry becomes that ``_with_events`` type's whole subtree. After an
    ``after_fit``, ``Callback.__call__`` has set ``run = True`` on every callback it
    reached, so a later fit runs callbacks that were off in the first. Events fired
    directly nest by name (``before_X`` opens phase X, ``after_X`` closes it), as
    ``Learner.validation_context`` fires ``before_fit``/``before_epoch`` around ``validate``.
    """
    stack: list[list[Node]] = [[]]
    opened: list[str] = []
    n_fit = 0
    reset: set[int] = set()  # callbacks whose `run` fastai has set back to True at an after_fit
    for f in fired:
        r = reader(f.cbs, frozenset(reset))
        if (f.kind, f.name) in (("phase", "fit"), ("event", "after_fit")):
            reset.update(id(cb) for cb in f.cbs)
        if f.kind == "phase":
            if f.name == "fit":
                n_fit += 1
            stack[-1].append(r.phase_for(f.name, f"fit {n_fit} of {fits} in `{call}`" if fits > 1 else None))
            continue
        event = r.event(f.name)
        kind = f.name.split("_", 1)[1] if "_" in f.name else f.name
        if f.name.startswith("before_"):
            opened.append(kind)
            stack.append([event])
        elif f.name.startswith("after_") and opened and opened[-1] == kind:
            children = stack.pop() + [event]
            stack[-1].append(Phase(opened.pop(), OUTER_PHASES.get(kind, f"`{kind}`, fired directly by `{call}`."), tuple(children)))
        else:
            stack[-1].append(event)
    while opened:  # a before_X without its after_X: keep what was fired
        children = stack.pop()
        stack[-1].append(Phase(opened.pop(), "Left open: the call fired no matching `after_` event.", tuple(children)))
    top = stack[0]
    if all(isinstance(n, Phase) for n in top):
        return top  # type: ignore[return-value]
    return [Phase("call", f"`{call}`", tuple(top))]


# Phases that `Learner.validation_context` opens itself with events, outside `_with_events`.
OUTER_PHASES = {
    "fit": "`Learner.validation_context`: fires `before_fit` and `before_epoch` on entry, `after_epoch` and `after_fit` "
    "on exit. Not a `_with_events` phase: no `after_cancel_*` event, and a cancel exception raised here is not caught.",
    "epoch": "The single validation pass, bracketed by `before_epoch`/`after_epoch` from `Learner.validation_context`.",
}


class _Reader:
    """Builds phases; knows the callbacks in run order and how fastai dispatches to them."""

    def __init__(self, ordered: list[Any], ids: dict[int, str], base: type, inner: set[str], created: list[Any],
                 training: dict[str, bool], reset: frozenset[int] = frozenset()):
        self.ordered, self.ids, self.base, self.inner, self.training = ordered, ids, base, inner, training
        self.reset = reset
        self.at_create = {id(cb) for cb in created}
        self.base_classes = set(base.__mro__)

    # -- events ------------------------------------------------------------
    def event(self, name: str, training: bool | None = None, cancel_of: str | None = None) -> Event:
        """The event ``name`` at one place; ``training`` is ``learn.training`` there (None outside batch loops)."""
        flag = None
        if name in self.inner and training is not None:
            flag = "run_train" if training else "run_valid"
        handlers = []
        for cb in self.ordered:
            if name == "after_create" and id(cb) not in self.at_create:
                continue
            handlers.extend(self.handlers(cb, name, flag))
        cancel = None
        if cancel_of is not None:
            exc, text = CANCELS[cancel_of]
            cancel = Cancel(exception=exc, next=f"after_{cancel_of}", description=text)
        return Event(name, EVENT_DESCRIPTIONS[name], tuple(handlers), flag, cancel)

    def handlers(self, cb: Any, event: str, flag: str | None) -> list[Handler]:
        """What of ``cb`` runs at ``event``, in order; ``[]`` when nothing does.

        ``Learner._call_one`` calls ``cb(event)``. A callback overriding ``__call__`` gets
        every event there; when that method's code calls ``super()`` (its code names
        ``super``, as fastai's ``VerboseCallback`` does), ``Callback.__call__`` then runs
        the event method as usual, after it.
        """
        dispatch = _own_dispatch(type(cb), self.base)
        if dispatch is None:
            method = self.handler(cb, event, flag)
            return [method] if method is not None else []
        out = [handler_for(self.ids[id(cb)], dispatch, "dispatch", qualified(definer(type(cb), "__call__")))]
        if isinstance(cb, self.base) and "super" in getattr(getattr(underlying(dispatch), "__code__", None), "co_names", ()):
            method = self.handler(cb, event, flag)
            out += [method] if method is not None else []
        return out

    def handler(self, cb: Any, event: str, flag: str | None) -> Handler | None:
        """The event method ``Callback.__call__`` runs for ``cb`` at ``event`` (fastai 2.8), or ``None``."""
        cb_id = self.ids[id(cb)]
        running = id(cb) in self.reset or _flag(cb, "run", True)
        if not running or (flag is not None and not _flag(cb, flag, True)):
            return None
        attr = vars(cb).get(event)
        if attr is not None and callable(attr):
            return handler_for(cb_id, attr, "instance", None)
        for klass in type(cb).__mro__:
            if klass in self.base_classes or event not in vars(klass):
                continue
            attr = vars(klass)[event]
            if isinstance(attr, (staticmethod, classmethod)):
                attr = attr.__func__
            return handler_for(cb_id, attr, "method", qualified(klass)) if callable(attr) else None
        return None

    # -- phases (fastai/learner.py, fastai 2.8) ----------------------------
    def bracket(self, kind: str, body: list[Node], training: bool | None = None) -> list[Node]:
        """``Learner._with_events``: before_X, body, after_cancel_X (on CancelXException), after_X."""
        return [
            self.event(f"before_{kind}", training),
            *body,
            self.event(f"after_cancel_{kind}", training, cancel_of=kind),
            self.event(f"after_{kind}", training),
        ]

    def phase_for(self, kind: str, label: str | None = None) -> Phase:
        """The subtree of one ``_with_events`` type as a call runs it; ``label`` adds to a fit's description."""
        if kind == "fit":
            return self.fit_phase(label)
        if kind == "epoch":
            return self.epoch_phase()
        if kind in ("train", "validate"):
            return self.stage_phase(kind)
        raise ValueError(f"no phase model for _with_events type {kind!r}")

    def create_phase(self) -> Phase:
        return Phase(
            "create",
            "`Learner.__init__`: builds the learner and fires `after_create` once.",
            (
                Step(
                    "init",
                    "self.add_cbs(L(defaults.callbacks)); self.add_cbs(cbs)",
                    "Store `dls`, `model`, `loss_func`, `opt_func`, `metrics`; add `defaults.callbacks` "
                    "(unless `default_cbs=False`), then `cbs`.",
                ),
                self.event("after_create"),
            ),
        )

    def fit_phase(self, label: str | None = None) -> Phase:
        setup = Step(
            "setup",
            "self.create_opt(); self.opt.set_hypers(lr=..., wd=...); self.n_epoch = n_epoch",
            "Create the optimizer if there is none (or `reset_opt=True`), set its hyper-parameters.",
        )
        cleanup = Step("cleanup", "self._end_cleanup()", "Clear `dl`, `xb`, `yb`, `pred` and `loss`.")
        return Phase(
            "fit",
            "`Learner.fit(n_epoch)`: the whole training run" + (f" ({label})." if label else "."),
            (setup, *self.bracket("fit", [self.epoch_phase()]), cleanup),
        )

    def epoch_phase(self) -> Phase:
        body = [
            Step("dl", "self.dl = self.dls.train", "Select the training `DataLoader`."),
            self.stage_phase("train"),
            Step("dl", "self.dl = self.dls[ds_idx]", "Select the validation `DataLoader` (`dls.valid`)."),
            self.stage_phase("validate"),
        ]
        return Phase(
            "epoch",
            "One epoch: a pass over the training set, then one over the validation set.",
            tuple(self.bracket("epoch", body)),
            loop="for epoch in range(n_epoch)",
        )

    def stage_phase(self, kind: str) -> Phase:
        training = self.training[kind]
        return Phase(
            kind,
            "Training: every batch of `dls.train`, with backward pass and optimizer step."
            if kind == "train"
            else "Validation: every batch of `dls.valid`, forward pass and loss only.",
            tuple(self.bracket(kind, [self.batch_phase(kind, training)])),
            context=None if kind == "train" else "torch.no_grad()",
            stage=kind,
        )

    def batch_phase(self, stage: str, training: bool) -> Phase:
        """One batch as ``Learner.one_batch``/``_do_one_batch`` run it; ``training`` is ``learn.training`` there."""
        grad = []
        if training:
            grad = [
                self.grad_phase("backward", "self.loss_grad.backward()", "Compute gradients."),
                self.grad_phase("step", "self.opt.step()", "Update the parameters."),
                Step("zero_grad", "self.opt.zero_grad()", "Reset the gradients.", condition=TRAINING_ONLY),
            ]
        body = [
            Step("forward", "self.pred = self.model(*self.xb)", "Run the model on the inputs."),
            self.event("after_pred", training),
            Step(
                "loss",
                "self.loss_grad = self.loss_func(self.pred, *self.yb); self.loss = self.loss_grad.clone()",
                "Compute the loss.",
                condition="only if the batch has targets (`len(self.yb) > 0`)",
            ),
            self.event("after_loss", training),
            *grad,
        ]
        split = Step("split", "self.xb, self.yb = b[:n_inp], b[n_inp:]", "Move the batch to the device and split it.")
        source = "dls.train" if stage == "train" else "dls.valid"
        return Phase(
            "batch",
            "One batch: forward pass and loss" + ("; backward pass and optimizer step." if training else "."),
            (split, *self.bracket("batch", body, training)),
            loop=f"for each batch of self.dl ({source})",
        )

    def grad_phase(self, kind: str, code: str, text: str) -> Phase:
        body = [Step(kind, code, text)]
        return Phase(kind, text, tuple(self.bracket(kind, body, True)), condition=TRAINING_ONLY)


def _training(learn: Any, ordered: list[Any], core: Any) -> dict[str, bool]:
    """``learn.training`` during the train and validate batch loops.

    ``TrainEvalCallback`` sets it to True in ``before_train`` and False in
    ``before_validate``; without one it keeps its value (``Learner.__init__``
    sets False), and ``_do_one_batch`` then skips backward and step.
    """
    if any(isinstance(cb, core.TrainEvalCallback) for cb in ordered):
        return {"train": True, "validate": False}
    now = bool(getattr(learn, "training", False))
    return {"train": now, "validate": now}


def _own_dispatch(cls: type, base: type) -> Any:
    """The ``__call__`` a callback class overrides fastai's with, or ``None``."""
    call = cls.__call__  # every class has one (from `object` at worst)
    return None if call is base.__call__ else call


def _flag(cb: Any, name: str, default: bool) -> bool:
    """``bool(cb.<name>)``, or ``default`` when reading it raises (``_broken_notes`` says what fastai does then)."""
    try:
        return bool(getattr(cb, name, default))
    except Exception:
        return default


def _order(cb: Any) -> tuple[Any, str | None]:
    """fastai's sort key for ``cb`` and, when reading it raises, why.

    fastcore's ``sorted_ex(cbs, key="order")`` (behind ``L.sorted('order')``, fastcore 1.8+/2.x)
    sorts by ``getattr(cb, 'order', 0)``: an ``AttributeError`` counts as 0, any other
    exception propagates out of fastai's dispatch.

    Returns:
        ``(key, None)``, or ``(0, "raises ValueError: boom")``.
    """
    try:
        return getattr(cb, "order", 0), None
    except Exception as e:
        return 0, f"raises {type(e).__name__}: {exc_text(e)}"


def order_problems(cbs: list[Any]) -> dict[int, str]:
    """The callbacks whose ``order`` makes fastai's sort fail, and why.

    An ``order`` that raises fails the sort (fastcore's ``sorted_ex`` reads
    ``getattr(cb, 'order', 0)``); so do keys that do not compare with each other
    (``"late"`` among numbers, ``None``), and then each callback whose ``order`` is not a
    real number is blamed.

    Args:
        cbs: the callbacks sorted together (fastai sorts ``learn.cbs`` at every event).

    Returns:
        ``{id(cb): phrase}``, e.g. ``"raises ValueError: boom"``; ``{}`` when fastai can sort them.
    """
    problems: dict[int, str] = {}
    keys = []
    for cb in cbs:
        key, problem = _order(cb)
        if problem is not None:
            problems[id(cb)] = problem
        keys.append((cb, key))
    try:
        sorted(key for cb, key in keys if id(cb) not in problems)
    except Exception:
        for cb, key in keys:
            if id(cb) not in problems and not is_number(key):
                problems[id(cb)] = f"is {safe_repr(key)} ({type(key).__name__}), which fastai cannot compare with the other callbacks' `order`"
    return problems


def run_order(cbs: list[Any]) -> list[Any]:
    """``cbs`` in fastai's run order: ``Learner._call_one`` iterates ``self.cbs.sorted('order')`` (a stable sort).

    When fastai's own sort would fail (see ``order_problems``), the callbacks it would fail
    on are placed as if their ``order`` were 0 and the others by theirs, still stably;
    ``_broken_notes`` adds a note that a real run fails.

    Args:
        cbs: callbacks in ``learn.cbs`` order (the learner's own, then those a call adds).

    Returns:
        A new list.
    """
    problems = order_problems(cbs)
    if not problems:
        try:
            return sorted(cbs, key=lambda cb: getattr(cb, "order", 0))
        except Exception:  # an `order` that raises only on a second read, or numbers that do not compare
            problems = {id(cb): "" for cb in cbs}
    keys = [0 if id(cb) in problems else _order(cb)[0] for cb in cbs]
    try:
        return [cb for _, cb in sorted(zip(keys, cbs, strict=True), key=lambda pair: pair[0])]
    except Exception:
        return list(cbs)


def _flag_problem(cb: Any, name: str) -> str | None:
    """Why fastai's ``Callback.__call__`` cannot read ``self.<name>`` as a truth value, or ``None``.

    fastai reads the flags as plain attributes (``self.run and _run``), so an ``AttributeError``
    from a property fails too (after ``GetAttr`` finds nothing to delegate to).
    """
    try:
        bool(getattr(cb, name))
    except Exception as e:
        return f"raises {type(e).__name__}: {exc_text(e)}"
    return None


def _broken_notes(ordered: list[Any], training: dict[str, bool], base: type) -> list[str]:
    """Notes on callbacks that make a real ``fit`` fail, where and why; the model shows them as if harmless.

    From fastai 2.8.12: ``Learner._call_one`` sorts by ``order`` before every event, whatever
    the objects are; ``Callback.__call__`` computes ``_run`` from ``run_train`` (and, when that
    is false or ``training`` is, ``run_valid``) for the events of ``_inner_loop``, then reads
    ``run`` at every event. So the flag notes are only for objects whose dispatch is
    ``Callback.__call__`` (``_reads_flags``): an object that is not a ``Callback`` (a ``Transform``
    passed in ``cbs`` by mistake) or a ``Callback`` whose own ``__call__`` never calls ``super()``
    reads no flag, and a real ``fit`` does not fail on one it lacks.
    """
    notes = []
    problems = order_problems(ordered)
    for cb in ordered:
        name = type(cb).__name__
        if problems.get(id(cb)):
            notes.append(
                f"`{name}.order` {problems[id(cb)]}: fastai sorts the callbacks by `order` before every event "
                "(`Learner._call_one`: `self.cbs.sorted('order')`), so a real `fit` fails at its first event. "
                f"loopdoc places `{name}` as if its `order` were 0."
            )
        if not _reads_flags(cb, base):
            continue
        for flag in FLAGS:
            problem = _flag_problem(cb, flag)
            if problem is None:
                continue
            if flag == "run":
                where = "at the first event that reaches it"
            elif flag == "run_train":
                where = "at its first `before_batch`"
            elif training["train"] and _flag_problem(cb, "run_train") is None and _flag(cb, "run_train", True):
                where = "at its first validation `before_batch`"
            else:
                where = "at its first `before_batch`"
            notes.append(
                f"`{name}.{flag}` {problem}: fastai's `Callback.__call__` reads `{flag}` to decide whether to call the "
                f"callback, so a real `fit` fails {where}. loopdoc shows `{flag}` as True."
            )
    return notes


def _reads_flags(cb: Any, base: type) -> bool:
    """Whether fastai's ``Callback.__call__`` runs for ``cb`` at an event, and so reads its flags.

    It does for a ``Callback`` that keeps fastai's ``__call__``, and for one whose own ``__call__``
    calls ``super()`` (its code names ``super``); not for any other object: ``Learner._call_one``
    calls ``cb(event_name)``, whatever ``cb`` is.
    """
    if not isinstance(cb, base):
        return False
    dispatch = _own_dispatch(type(cb), base)
    return dispatch is None or "super" in getattr(getattr(underlying(dispatch), "__code__", None), "co_names", ())


def _method(call: str) -> str:
    """The method a ``--call`` names (``"fit_one_cycle"`` for ``"learn.fit_one_cycle(3)"``); the text itself if it does not parse."""
    import ast

    try:
        node = ast.parse(call.strip(), mode="eval").body
    except SyntaxError:
        return call.strip()
    func = node.func if isinstance(node, ast.Call) else node
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", call.strip())


def _callback(cb: Any, cb_id: str, base: type, origin: str | None = None) -> Callback:
    """The model's ``Callback`` for ``cb``; an object that is not a fastai ``Callback`` has ``kind="object"`` and no flags
    (fastai reads none of it: ``Learner._call_one`` just calls it)."""
    cls = type(cb)
    value, problem = _order(cb)
    order = None if problem else _shown_order(value)
    is_callback = isinstance(cb, base)
    return Callback(
        id=cb_id,
        name=cls.__name__,
        qualname=qualified(cls),
        doc=clean_doc(vars(cls).get("__doc__")),
        source=class_source(cls),
        order=order,
        flags={name: _flag(cb, name, True) for name in FLAGS} if is_callback else {},
        receives_all=_own_dispatch(cls, base) is not None,
        kind="callback" if is_callback else "object",
        origin=origin,
    )


def _shown_order(value: Any) -> int | float | None:
    """``order`` as the model holds it: an ``int`` or a finite ``float``; ``None`` for anything else."""
    if isinstance(value, numbers.Integral):
        return int(value)  # bool and numpy integers as plain ints, as fastai compares them
    if is_number(value) and not math.isinf(value):
        return float(value)
    return None


def _summary(learn: Any, loaded_from: str) -> LearnerSummary:
    model = type(learn.model)
    metrics = []
    for m in getattr(learn, "metrics", []) or []:
        try:
            metrics.append(str(m.name))
        except Exception:
            metrics.append(type(m).__qualname__)
    return LearnerSummary(
        loaded_from=loaded_from,
        model=qualified(model),
        loss_func=describe(getattr(learn, "loss_func", None)),
        opt_func=describe(getattr(learn, "opt_func", None)),
        metrics=tuple(metrics),
    )


def _versions() -> dict[str, str]:
    import fastai
    import torch

    return {"fastai": fastai.__version__, "torch": torch.__version__}


def _notes(learn: Any, ordered: list[Any], core: Any, training: dict[str, bool]) -> list[str]:
    """Notes on the whole learner: no ``TrainEvalCallback``, and attributes of ``learn`` or its model named like events.

    A callback with ``run=False`` is a finding of ``loopdoc check`` (``LD302``), not a note.
    """
    notes = []
    if not training["train"]:
        notes.append(
            "No `TrainEvalCallback`: nothing sets `learn.training = True`, so fastai skips the backward pass "
            "and the optimizer step, and filters the training batch loop by `run_valid`."
        )
    for name in core._events:
        if name in vars(learn) or any(name in vars(k) for k in type(learn).__mro__):
            notes.append(_delegation_note("learn", name))
        elif has(learn.model, name):
            notes.append(_delegation_note("learn.model", name))
    return notes


def _delegation_note(owner: str, name: str) -> str:
    return (
        f"`{owner}` has an attribute `{name}`: fastai's `Callback.__call__` finds it through attribute "
        f"delegation (`GetAttr`), so it calls `{owner}.{name}` once for each running callback that does "
        f"not define `{name}` itself. loopdoc does not list those calls as callback handlers."
    )


def as_callbacks(cbs: Any) -> list[Any]:
    """Normalise ``cbs`` (``None``, a ``Callback`` instance or class, or a list of them) to instances.

    Classes are instantiated with no arguments, as ``Learner.add_cb`` does.

    Raises:
        TypeError: an item is neither a ``Callback`` nor a ``Callback`` subclass.
    """
    from fastai.callback.core import Callback as FastaiCallback

    if cbs is None:
        return []
    items = list(cbs) if isinstance(cbs, (list, tuple)) or type(cbs).__name__ == "L" else [cbs]
    out = []
    for item in items:
        if isinstance(item, type) and issubclass(item, FastaiCallback):
            item = item()
        if not isinstance(item, FastaiCallback):
            raise TypeError(f"not a fastai Callback or Callback class: {safe_repr(item)}")
        out.append(item)
    return out
