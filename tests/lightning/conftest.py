"""Fixtures of the Lightning tests."""

from __future__ import annotations

import logging
import os

import pytest


@pytest.fixture
def user_folder(tmp_path, monkeypatch):
    """Run in an empty working directory, which must still be empty afterwards; Lightning's info logs off.

    Used by the modules that run real fits (``pytestmark = pytest.mark.usefixtures("user_folder")``): Lightning
    writes ``lightning_logs/`` and checkpoints into the working directory unless told otherwise.
    """
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    user = tmp_path / "user_folder"
    user.mkdir()
    monkeypatch.chdir(user)
    yield user
    assert os.listdir(user) == [], f"the run wrote into the working directory: {os.listdir(user)}"
