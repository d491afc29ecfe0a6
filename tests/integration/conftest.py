"""Fixtures of the integration tests."""

from __future__ import annotations

import pytest
from helpers import ROOT

import loopdoc.resolve


@pytest.fixture
def in_process(monkeypatch):
    """Workers run in this process (``isolated=False``), from the repository root: the command line's whole path,
    fast enough to try many specs and calls."""
    real = loopdoc.resolve.Worker
    monkeypatch.setattr(loopdoc.resolve, "Worker", lambda *a, **k: real(*a, **{**k, "isolated": False}))
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
