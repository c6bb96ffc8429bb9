"""Fixtures for the scenario tests: small phantom images, one torch thread (the machine is shared)."""

from __future__ import annotations

import numpy as np
import pytest

from genrad.data.phantom import make_phantom


@pytest.fixture(autouse=True, scope="module")
def on_one_torch_thread(one_torch_thread: None) -> None:
    """Tiny FFTs and convolutions are much faster on one thread than on two busy ones (the shared `one_torch_thread`)."""


@pytest.fixture(scope="module")
def phantom_images() -> np.ndarray:
    """Twelve 2D phantom images (1, 28, 28) in [0, 1]."""
    return make_phantom(n=60, seed=3).train.images[:12]


@pytest.fixture(scope="module")
def phantom_volumes() -> np.ndarray:
    """Two 3D phantom volumes (1, 28, 28, 28) in [0, 1]."""
    return make_phantom(n=40, size=28, dims=3, seed=3).train.images[:2]
