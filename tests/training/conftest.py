"""Fixtures for the training-engine tests."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="module")
def on_one_torch_thread(one_torch_thread: None) -> None:
    """Every module here runs on one torch thread (the shared `one_torch_thread`)."""
