"""Shared toys for the utility tests: small labelled image sets and a tiny classifier recipe."""

from __future__ import annotations

import numpy as np

from genrad.data.cohort import Cohort, Split

# A recipe small enough for unit tests (a few CPU seconds per fit).
TINY = {"channels": (8, 16, 16, 16), "stem_stride": 2, "batch_size": 32, "max_steps": 60, "eval_every": 10, "patience": 3}


def blobs(n_per_class: tuple[int, ...], *, seed: int, size: int = 16, dims: int = 2, name: str = "train") -> Split:
    """Class k shows a centred square of brightness 0.2 + 0.25 k on noise: separable, learnable in steps."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(n_per_class)), n_per_class).astype(np.int64)
    shape = (len(labels), 1) + (size,) * dims
    images = rng.normal(0.3, 0.08, size=shape)
    centre = (slice(None), slice(None)) + (slice(size // 4, 3 * size // 4),) * dims
    images[centre] += (0.2 + 0.25 * labels).reshape((-1,) + (1,) * (dims + 1))
    return Split(np.clip(images, 0, 1).astype(np.float32), labels, name=name)


def blob_cohort(n_per_class: tuple[int, ...] = (40, 20), *, seed: int = 0, size: int = 16) -> Cohort:
    """Train / val / test blobs (val and test balanced)."""
    k = len(n_per_class)
    return Cohort(
        splits={
            "train": blobs(n_per_class, seed=seed, size=size),
            "val": blobs((10,) * k, seed=seed + 1, size=size, name="val"),
            "test": blobs((15,) * k, seed=seed + 2, size=size, name="test"),
        },
        class_names=tuple(f"c{i}" for i in range(k)),
    )
