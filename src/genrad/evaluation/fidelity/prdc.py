"""Precision, recall, density and coverage (Naeem et al., "Reliable Fidelity and Diversity Metrics for
Generative Models", ICML 2020, eqs. 1-4; precision / recall after Kynkäänniemi et al. 2019), with k-NN
balls in reference-z-scored radiomic feature space:

- precision ``= 1/M sum_j 1[exists i: |y_j - x_i| <= r_k(x_i)]``;
- recall ``= 1/N sum_i 1[exists j: |x_i - y_j| <= r_k(y_j)]``;
- density ``= 1/(kM) sum_j sum_i 1[|y_j - x_i| <= r_k(x_i)]``;
- coverage ``= 1/N sum_i 1[min_j |x_i - y_j| <= r_k(x_i)]``;

where ``r_k(x)`` is the distance from ``x`` to its k-th nearest neighbour within its own set.
Distances are computed in chunks, so memory is ``O(chunk * N)``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import KW_ONLY, dataclass, field

import numpy as np

from genrad.evaluation.stats import (
    Reservoir,
    Standardizer,
    as_matrix,
    normalise_pair,
)

CHUNK = 1024
METRICS = ("precision", "recall", "density", "coverage")


def pairwise_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances between the rows of ``a`` and ``b``."""
    squared = (a * a).sum(axis=1)[:, None] + (b * b).sum(axis=1)[None, :] - 2.0 * (a @ b.T)
    return np.sqrt(np.clip(squared, 0.0, None))


def chunked_distances(a: np.ndarray, b: np.ndarray, chunk: int = CHUNK) -> Iterator[tuple[slice, np.ndarray]]:
    """``(rows, distances(a[rows], b))`` for consecutive chunks of ``a``."""
    for start in range(0, a.shape[0], chunk):
        rows = slice(start, min(start + chunk, a.shape[0]))
        yield rows, pairwise_distances(a[rows], b)


def knn_radii(x: np.ndarray, k: int) -> np.ndarray:
    """Distance from each row to its k-th nearest other row of ``x``."""
    radii = np.empty(x.shape[0])
    for rows, distances in chunked_distances(x, x):
        distances[np.arange(distances.shape[0]), np.arange(rows.start, rows.stop)] = np.inf
        radii[rows] = np.partition(distances, k - 1, axis=1)[:, k - 1]
    return radii


def synthetic_side(real: np.ndarray, real_radii: np.ndarray, synthetic: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per synthetic row: how many real k-NN balls contain it; per real row: distance to the nearest
    synthetic row. Both are exact over any number of synthetic chunks (counts add, minima take min)."""
    counts = np.empty(synthetic.shape[0], dtype=np.int64)
    nearest = np.full(real.shape[0], np.inf)
    for rows, distances in chunked_distances(synthetic, real):
        counts[rows] = (distances <= real_radii[None, :]).sum(axis=1)
        nearest = np.minimum(nearest, distances.min(axis=0))
    return counts, nearest


def recall_indicators(real: np.ndarray, synthetic: np.ndarray, k: int) -> np.ndarray:
    """Per real row: is it inside some synthetic k-NN ball?"""
    synthetic_radii = knn_radii(synthetic, k)
    inside = np.zeros(real.shape[0], dtype=bool)
    for rows, distances in chunked_distances(real, synthetic):
        inside[rows] = (distances <= synthetic_radii[None, :]).any(axis=1)
    return inside


def prdc_indicators(real: np.ndarray, synthetic: np.ndarray, *, k: int = 5) -> dict[str, np.ndarray]:
    """Per-sample terms whose means are the four metrics (on already-normalised features):
    ``precision`` and ``density`` per synthetic row, ``recall`` and ``coverage`` per real row."""
    real_radii = knn_radii(real, k)
    counts, nearest = synthetic_side(real, real_radii, synthetic)
    return {
        "precision": counts > 0,
        "density": counts / k,
        "recall": recall_indicators(real, synthetic, k),
        "coverage": nearest <= real_radii,
    }


def prdc(real: np.ndarray, synthetic: np.ndarray, *, k: int = 5, normalise: bool = True) -> dict[str, float]:
    """Precision, recall, density and coverage of ``synthetic`` against ``real`` feature matrices;
    with ``normalise`` both are first z-scored with the real set's statistics."""
    if normalise:
        real, synthetic, _ = normalise_pair(real, synthetic)
    return {name: float(values.mean()) for name, values in prdc_indicators(real, synthetic, k=k).items()}


@dataclass(eq=False)
class PRDC:
    """Streaming PRDC against a fixed real reference.

    Precision, density and coverage are exact over every synthetic row seen. Recall needs the synthetic
    set's own k-NN radii, so it is computed on a uniform reservoir of ``max_samples`` synthetic rows.
    """

    reference: np.ndarray = field(repr=False)
    _: KW_ONLY
    k: int = 5
    max_samples: int = 10_000
    seed: int = 0

    def __post_init__(self) -> None:
        self.scaler_ = Standardizer()
        self.real_ = self.scaler_.fit_transform(self.reference)
        self.real_radii_ = knn_radii(self.real_, self.k)
        self.reset()

    def reset(self) -> None:
        self.n_seen = 0
        self.inside_any = 0
        self.inside_total = 0
        self.nearest = np.full(self.real_.shape[0], np.inf)
        self.reservoir = Reservoir(self.max_samples, seed=self.seed)

    def update(self, features: np.ndarray) -> PRDC:
        synthetic = self.scaler_.transform(as_matrix(features, name="synthetic"))
        synthetic = synthetic[np.isfinite(synthetic).all(axis=1)]
        counts, nearest = synthetic_side(self.real_, self.real_radii_, synthetic)
        self.n_seen += synthetic.shape[0]
        self.inside_any += int((counts > 0).sum())
        self.inside_total += int(counts.sum())
        self.nearest = np.minimum(self.nearest, nearest)
        self.reservoir.update(synthetic)
        return self

    def compute(self) -> dict[str, float]:
        return {
            "precision": self.inside_any / self.n_seen,
            "recall": float(recall_indicators(self.real_, self.reservoir.rows, self.k).mean()),
            "density": self.inside_total / (self.k * self.n_seen),
            "coverage": float((self.nearest <= self.real_radii_).mean()),
        }
