"""Type-checked, never run (``make typecheck``, ``tests/integration/test_typing.py``): the public API's types as a user's checker sees them.

Every ``assert_type`` must hold, and every ``# type: ignore[...]`` must be needed (mypy runs with
``warn_unused_ignores``): a wrong argument type is an error for a user's type checker too.
"""

from __future__ import annotations

from fastai.learner import Learner
from typing_extensions import assert_type

import loopdoc
import loopdoc.fastai
from loopdoc import Loop, LoopdocError, Trace
from loopdoc.diff import LoopDiff, diff_loops
from loopdoc.render import render_diff


def public_api(learn: Learner) -> None:
    loop = loopdoc.loop(learn, call="fine_tune(2)", cbs=None, namespace={"x": 1})
    assert_type(loop, Loop)
    assert_type(loopdoc.load_loop("examples/synth.py", "fit(1)", timeout=10.0), Loop)
    assert_type(loopdoc.trace_learner("examples/synth.py", "fit(1)", batches=2), Trace)
    assert_type(loopdoc.render(loop, "html", verbose=True, title="T"), str)
    assert_type(loopdoc.render(loopdoc.trace_learner("x.py"), "txt", show_differences=True), str)
    assert_type(loopdoc.load_json("loop.json"), Loop | Trace)
    assert_type(repr(loop), str)
    assert_type(loop.headline(), str)
    diff = diff_loops(loop, loop, {"docstrings"}, strict_source=True)
    assert_type(diff, LoopDiff)
    assert_type(render_diff(diff, "md"), str)
    assert_type(loopdoc.fastai.show_training_loop(learn, verbose=True), None)
    error: LoopdocError = LoopdocError("x")
    assert_type(error.exit_code, int)


def wrong_arguments(learn: Learner, loop: Loop) -> None:
    loopdoc.loop(42)  # type: ignore[arg-type]  # not a Learner
    loopdoc.loop(learn, call=3)  # type: ignore[arg-type]
    loopdoc.render(learn, "html")  # type: ignore[arg-type]  # a Learner is not a loop model
    loopdoc.trace_learner(learn)  # type: ignore[arg-type]  # a spec (str), not a Learner
    diff_loops(loop, loop, strict_source="yes")  # type: ignore[arg-type]
