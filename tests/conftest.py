"""Fixtures every test folder shares. Shared names and functions are in ``tests/helpers.py`` (tests import that, never
this file or each other); this folder is on ``sys.path`` because it holds this ``conftest.py`` and no ``__init__.py``."""

from __future__ import annotations

import os
from pathlib import Path

import helpers
import pytest
from helpers import ARGS, CHROMIUM, ROOT, SPECS

FIXTURE_MARKS = {"cli_models": ("fastai", "subprocess"), "browser": ("browser",)}
"""Session fixtures that need a framework or start processes mark every test that uses them."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        for fixture in set(getattr(item, "fixturenames", ())) & FIXTURE_MARKS.keys():
            for mark in FIXTURE_MARKS[fixture]:
                item.add_marker(mark)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the slow work the selected tests will wait for, in test order (``helpers.background``): the session's
    ``cli_models``, and each test module's ``prefetch(items)`` (given the module's selected tests)."""
    if session.config.option.collectonly:
        return
    seen: set[object] = set()
    for item in session.items:
        if "cli_models" in getattr(item, "fixturenames", ()) and "cli_models" not in seen:
            seen.add("cli_models")
            for spec in SPECS:
                helpers.cli_json(spec)
        module = getattr(item, "module", None)
        if module is not None and module not in seen:
            seen.add(module)
            if callable(getattr(module, "prefetch", None)):
                module.prefetch([other for other in session.items if getattr(other, "module", None) is module])


def pytest_sessionfinish(session: pytest.Session) -> None:
    helpers.shutdown()


@pytest.fixture(scope="session")
def cli_models() -> dict[str, Path]:
    """Every spec of ``helpers.SPECS`` rendered to JSON by the real command line, each in its own process (started
    together in the background: ``helpers.cli_json``)."""
    futures = {spec: helpers.cli_json(spec) for spec in SPECS}
    return {spec: future.result() for spec, future in futures.items()}


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
