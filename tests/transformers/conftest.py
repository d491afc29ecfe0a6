"""Fixtures of the Hugging Face tests."""

from __future__ import annotations

import os

import pytest


@pytest.fixture
def out(tmp_path, monkeypatch):
    """output_dir in a temp folder; the working directory an empty temp folder that must stay empty
    (``Trainer(...)`` creates a relative ``output_dir`` in the working directory)."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    yield str(tmp_path / "out")
    assert os.listdir(cwd) == [], f"written to the working directory: {os.listdir(cwd)}"
