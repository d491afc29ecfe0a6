"""Shared fixtures: the repository root and the shipped example learners."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# fastai's examples; the Hugging Face Trainer's (examples/hf_*.py) are tested in tests/test_transformers.py
EXAMPLES = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "examples").glob("*.py") if not p.name.startswith("hf_"))
HF_EXAMPLES = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "examples").glob("hf_*.py"))


@pytest.fixture
def in_root(monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run the test from the repository root, so paths in outputs are relative to it."""
    monkeypatch.chdir(ROOT)
    return ROOT


@pytest.fixture(autouse=True)
def _fastai_defaults_unchanged():
    """Keep ``fastai.learner.defaults.callbacks`` as fastai sets it, without ``ProgressCallback``.

    Importing ``fastai.callback.progress`` (which ``fastai.callback.tracker``, ``.schedule`` and
    ``fastai.*.all`` do) appends ``ProgressCallback`` for the rest of the process; without this,
    the callbacks a learner built in one test gets would depend on which tests ran before it.
    Learners that should have it are loaded in their own process (the examples, via the CLI).
    """
    _strip_progress()
    yield
    _strip_progress()


def _strip_progress() -> None:
    import sys

    learner, progress = sys.modules.get("fastai.learner"), sys.modules.get("fastai.callback.progress")
    if learner is not None and progress is not None:
        learner.defaults.callbacks[:] = [cb for cb in learner.defaults.callbacks if cb is not progress.ProgressCallback]
