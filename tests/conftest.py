"""Shared fixtures: the repository root and the shipped example learners."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "examples").glob("*.py"))


@pytest.fixture
def in_root(monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run the test from the repository root, so paths in outputs are relative to it."""
    monkeypatch.chdir(ROOT)
    return ROOT


@pytest.fixture(autouse=True)
def _fastai_defaults_unchanged():
    """Undo a test's import of ``fastai.callback.progress``, which appends ``ProgressCallback`` to
    ``fastai.learner.defaults.callbacks`` for the rest of the process: without this, which callbacks a
    learner built in a later test gets would depend on the order tests run in."""
    import sys

    had_progress = "fastai.callback.progress" in sys.modules
    learner = sys.modules.get("fastai.learner")
    saved = list(learner.defaults.callbacks) if learner is not None else None
    yield
    learner = sys.modules.get("fastai.learner")
    if learner is None:
        return
    if saved is not None:
        learner.defaults.callbacks[:] = saved
    elif not had_progress and "fastai.callback.progress" in sys.modules:
        progress = sys.modules["fastai.callback.progress"].ProgressCallback
        learner.defaults.callbacks[:] = [cb for cb in learner.defaults.callbacks if cb is not progress]
