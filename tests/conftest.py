"""Shared fixtures: the repository root, the shipped example learners, and the session's one Chromium."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "examples").glob("*.py"))
CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]


def _unavailable(reason: str) -> None:
    """Skip a browser test, or fail it under ``CI`` (set and not ``0``/``false``)."""
    if os.environ.get("CI", "").lower() not in ("", "0", "false"):
        pytest.fail(f"{reason}; CI is set, so the browser tests must run", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser():
    """One Chromium (``/usr/bin/chromium`` through Playwright's sync API) for the whole session, shared by every module:
    a second sync Playwright in the same thread fails while the first is running."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install -e '.[test]')")
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} not found (apt-get install chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


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
