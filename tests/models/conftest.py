"""Fixtures for the model tests: a two-class toy split and tiny configurations of every family."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from genrad.data import Split


@pytest.fixture(autouse=True, scope="module")
def on_one_torch_thread(one_torch_thread: None) -> None:
    """Every module here runs on one torch thread (the shared `one_torch_thread`)."""


def toy_split(n: int = 32, size: int = 28, dims: int = 2, seed: int = 0) -> Split:
    """Two clearly different classes: class 0 a dark field with a bright disc, class 1 a bright field
    with a dark square; clinical columns ``age`` (class-dependent) and ``size_mm``."""
    rng = np.random.default_rng(seed)
    labels = (np.arange(n) % 2).astype(np.int64)
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, size)] * dims, indexing="ij"))
    disc = (np.sqrt((grid**2).sum(0)) < 0.5).astype(np.float32)
    square = (np.abs(grid).max(0) < 0.4).astype(np.float32)
    images = np.where(labels.reshape(-1, *[1] * dims) == 0, 0.15 + 0.7 * disc, 0.85 - 0.6 * square)
    images = images + 0.03 * rng.standard_normal(images.shape)
    images = np.clip(images, 0, 1).astype(np.float32)[:, None]
    clinical = pd.DataFrame({"age": 40 + 20 * labels + rng.normal(0, 5, n), "size_mm": rng.uniform(5, 20, n)})
    return Split(images, labels, clinical=clinical)


@pytest.fixture(scope="session")
def toy() -> Split:
    return toy_split()
