"""alpha-precision, beta-recall and authenticity (Alaa, van Breugel, Saveliev & van der Schaar, "How
Faithful is your Synthetic Data? Sample-level Metrics for Evaluating and Auditing Generative Models",
ICML 2022, sec. 3), in reference-z-scored radiomic feature space.

- The real alpha-support is the ball around the real mean holding a fraction alpha of the real rows;
  ``P_alpha`` is the fraction of synthetic rows inside it. The synthetic beta-support is the ball around
  the synthetic mean holding a fraction beta of the synthetic rows; ``R_beta`` is the fraction of real
  rows whose k-NN ball (within the real set) holds a synthetic row of the beta-support.
- Summaries (eq. 6): ``IP_alpha = 1 - 2 int_0^1 |P_alpha - alpha| d alpha`` and likewise ``IR_beta``,
  integrated with the trapezoid rule over ``n_steps`` levels.
- Authenticity: the fraction of synthetic rows that are *not* closer to their nearest real row
  ``x_i*`` than ``x_i*``'s own nearest real neighbour is.

Differences from the reference implementation (``synthcity`` ``AlphaPrecision``), on purpose:

- its authenticity indexes the real-to-real nearest-neighbour distances with the synthetic indices
  returned by a search from the real rows (``real_to_real[real_to_synth_args]``), mixing two index
  spaces; here each synthetic row is matched to its own nearest real row, and the comparison uses that
  real row's distance to its nearest real neighbour. The sets may therefore differ in size;
- the beta-support radius is a quantile of the distances of *all* synthetic rows to the synthetic mean
  (the paper's definition), not of the distances of only those synthetic rows that are some real
  row's nearest neighbour; a real row counts for ``R_beta`` when any synthetic row of the beta-support
  lies in its k-NN ball (equivalently: the nearest such row does).
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass, field

import numpy as np

from genrad.evaluation.fidelity.prdc import chunked_distances, knn_radii
from genrad.evaluation.stats import (
    Reservoir,
    Standardizer,
    as_matrix,
    normalise_pair,
)

METRICS = ("alpha_precision", "beta_recall", "authenticity")


def levels(distances: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """Index of the smallest support radius holding each distance (``len(radii)`` when none does)."""
    return np.searchsorted(radii, distances, side="left")


def curve(level: np.ndarray, n_steps: int) -> np.ndarray:
    """``P[s] = fraction of rows whose level is <= s`` for every step s."""
    return (level[:, None] <= np.arange(n_steps)[None, :]).mean(axis=0)


def integrated(values: np.ndarray, grid: np.ndarray) -> float:
    """``1 - 2 * int |values - grid| d grid`` (Alaa et al. 2022, eq. 6)."""
    gaps = np.abs(values - grid)
    return float(1.0 - 2.0 * np.sum((gaps[1:] + gaps[:-1]) / 2.0 * np.diff(grid)))


class _RealSide:
    """What the metrics need from the (normalised) real set: alpha radii and k-NN radii."""

    def __init__(self, real: np.ndarray, grid: np.ndarray, k: int) -> None:
        self.real = real
        self.center = real.mean(axis=0)
        self.alpha_radii = np.quantile(np.linalg.norm(real - self.center, axis=1), grid)
        self.knn_radii = knn_radii(real, k)
        self.nn1_radii = self.knn_radii if k == 1 else knn_radii(real, 1)

    def synthetic_terms(self, synthetic: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per synthetic row: its alpha level and whether it is authentic."""
        alpha_level = levels(np.linalg.norm(synthetic - self.center, axis=1), self.alpha_radii)
        authentic = np.empty(synthetic.shape[0], dtype=bool)
        for rows, distances in chunked_distances(synthetic, self.real):
            nearest = distances.argmin(axis=1)
            authentic[rows] = distances[np.arange(distances.shape[0]), nearest] > self.nn1_radii[nearest]
        return alpha_level, authentic

    def recall_levels(self, synthetic: np.ndarray, grid: np.ndarray) -> np.ndarray:
        """Per real row: the smallest beta level of a synthetic row inside its k-NN ball."""
        centred = np.linalg.norm(synthetic - synthetic.mean(axis=0), axis=1)
        beta_level = levels(centred, np.quantile(centred, grid))
        result = np.empty(self.real.shape[0], dtype=np.int64)
        for rows, distances in chunked_distances(self.real, synthetic):
            inside = distances <= self.knn_radii[rows, None]
            result[rows] = np.where(inside, beta_level[None, :], grid.size).min(axis=1)
        return result


def alpha_beta_indicators(
    real: np.ndarray, synthetic: np.ndarray, *, n_steps: int = 30, k: int = 1
) -> dict[str, np.ndarray]:
    """Per-sample terms on already-normalised features: ``alpha_level`` and ``authentic`` per synthetic
    row, ``recall_level`` per real row (levels index ``numpy.linspace(0, 1, n_steps)``)."""
    grid = np.linspace(0.0, 1.0, n_steps)
    side = _RealSide(real, grid, k)
    alpha_level, authentic = side.synthetic_terms(synthetic)
    return {"alpha_level": alpha_level, "authentic": authentic, "recall_level": side.recall_levels(synthetic, grid)}


def summarise(terms: dict[str, np.ndarray], n_steps: int) -> dict[str, float]:
    """``alpha_precision`` (IP_alpha), ``beta_recall`` (IR_beta) and ``authenticity`` from the terms."""
    grid = np.linspace(0.0, 1.0, n_steps)
    return {
        "alpha_precision": integrated(curve(terms["alpha_level"], n_steps), grid),
        "beta_recall": integrated(curve(terms["recall_level"], n_steps), grid),
        "authenticity": float(np.mean(terms["authentic"])),
    }


def alpha_precision_beta_recall(
    real: np.ndarray, synthetic: np.ndarray, *, n_steps: int = 30, k: int = 1, normalise: bool = True
) -> dict[str, float]:
    """IP_alpha, IR_beta and authenticity of ``synthetic`` against ``real`` (sizes may differ); with
    ``normalise`` both are first z-scored with the real set's statistics."""
    if normalise:
        real, synthetic, _ = normalise_pair(real, synthetic)
    return summarise(alpha_beta_indicators(real, synthetic, n_steps=n_steps, k=k), n_steps)


@dataclass(eq=False)
class AlphaPrecisionBetaRecall:
    """Streaming version: alpha-precision and authenticity are exact over every synthetic row seen;
    beta-recall needs the synthetic mean and quantiles, so it uses a reservoir of ``max_samples`` rows."""

    reference: np.ndarray = field(repr=False)
    _: KW_ONLY
    n_steps: int = 30
    k: int = 1
    max_samples: int = 10_000
    seed: int = 0

    def __post_init__(self) -> None:
        self.scaler_ = Standardizer()
        real_z = self.scaler_.fit_transform(self.reference)
        self.grid_ = np.linspace(0.0, 1.0, self.n_steps)
        self.real_side_ = _RealSide(real_z, self.grid_, self.k)
        self.reset()

    def reset(self) -> None:
        self.alpha_counts = np.zeros(self.n_steps + 1, dtype=np.int64)
        self.authentic = 0
        self.n_seen = 0
        self.reservoir = Reservoir(self.max_samples, seed=self.seed)

    def update(self, features: np.ndarray) -> AlphaPrecisionBetaRecall:
        synthetic = self.scaler_.transform(as_matrix(features, name="synthetic"))
        synthetic = synthetic[np.isfinite(synthetic).all(axis=1)]
        alpha_level, authentic = self.real_side_.synthetic_terms(synthetic)
        self.alpha_counts += np.bincount(alpha_level, minlength=self.n_steps + 1)
        self.authentic += int(authentic.sum())
        self.n_seen += synthetic.shape[0]
        self.reservoir.update(synthetic)
        return self

    def compute(self) -> dict[str, float]:
        precision_curve = np.cumsum(self.alpha_counts)[: self.n_steps] / self.n_seen
        recall_level = self.real_side_.recall_levels(self.reservoir.rows, self.grid_)
        return {
            "alpha_precision": integrated(precision_curve, self.grid_),
            "beta_recall": integrated(curve(recall_level, self.n_steps), self.grid_),
            "authenticity": self.authentic / self.n_seen,
        }
