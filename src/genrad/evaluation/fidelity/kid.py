"""Kernel Inception Distance on radiomic features: the unbiased squared MMD with the cubic polynomial
kernel ``k(x, y) = (x.y / d + 1)^3`` (Bińkowski et al., "Demystifying MMD GANs", ICLR 2018, eq. 4),
averaged over random subsets, on the same reference-z-scored features as FRD.
"""

from __future__ import annotations

import numpy as np

from genrad.evaluation.stats import (
    ReservoirMetric,
    normalise_pair,
    subsample,
)


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``(x.y / d + 1)^3`` for every pair of rows."""
    base = x @ y.T / x.shape[1] + 1.0
    return base * base * base


def mmd2_unbiased(k_xx: np.ndarray, k_yy: np.ndarray, k_xy: np.ndarray) -> float:
    """Unbiased MMD^2 from kernel matrices (Gretton et al. 2012, eq. 3): diagonals left out."""
    m, n = k_xx.shape[0], k_yy.shape[0]
    within_x = (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
    within_y = (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
    return float(within_x + within_y - 2.0 * k_xy.mean())


def kid(
    real: np.ndarray,
    synthetic: np.ndarray,
    *,
    subset_size: int = 1000,
    n_subsets: int = 50,
    seed: int = 0,
    normalise: bool = True,
) -> float:
    """KID: unbiased MMD^2 between the sets; when either has more than ``subset_size`` rows, the mean
    over ``n_subsets`` random subsets of at most ``subset_size`` rows of each (as Bińkowski et al.).
    With ``normalise`` both matrices are first z-scored with the real set's statistics."""
    if normalise:
        real, synthetic, _ = normalise_pair(real, synthetic)
    if max(real.shape[0], synthetic.shape[0]) <= subset_size:
        n_subsets = 1
    rng = np.random.default_rng(seed)
    estimates = []
    for _ in range(n_subsets):
        x = subsample(real, subset_size, rng)
        y = subsample(synthetic, subset_size, rng)
        estimates.append(mmd2_unbiased(polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)))
    return float(np.mean(estimates))


def kid_bootstrap(
    real: np.ndarray, synthetic: np.ndarray, n_bootstrap: int, rng: np.random.Generator, *, subset_size: int = 1000
) -> np.ndarray:
    """Bootstrap replicates of the unbiased MMD^2 between (at most ``subset_size`` rows of) two
    normalised sets. A resample is a vector of multiplicities ``c``; the within-set terms leave out
    every pair of copies of the same row, ``(c'Kc - sum_i c_i^2 K_ii) / (m^2 - sum_i c_i^2)``, so a
    duplicate never counts as its own neighbour (which would inflate the replicates)."""
    if n_bootstrap == 0:
        return np.empty(0)
    x, y = subsample(real, subset_size, rng), subsample(synthetic, subset_size, rng)
    m, n = len(x), len(y)
    counts_x = rng.multinomial(m, np.full(m, 1.0 / m), size=n_bootstrap).astype(np.float64)
    counts_y = rng.multinomial(n, np.full(n, 1.0 / n), size=n_bootstrap).astype(np.float64)

    def within(kernel: np.ndarray, counts: np.ndarray) -> np.ndarray:
        total = ((counts @ kernel) * counts).sum(axis=1) - (counts**2 * np.diag(kernel)).sum(axis=1)
        return total / (counts.shape[1] ** 2 - (counts**2).sum(axis=1))

    cross = ((counts_x @ polynomial_kernel(x, y)) * counts_y).sum(axis=1) / (m * n)
    return within(polynomial_kernel(x, x), counts_x) + within(polynomial_kernel(y, y), counts_y) - 2.0 * cross


class KID(ReservoirMetric):
    """Streaming KID: synthetic rows go through a uniform reservoir of ``max_samples`` rows (bounded
    memory); `compute` evaluates `kid` on the reservoir against the full reference."""

    def __init__(
        self, reference: np.ndarray, *, subset_size: int = 1000, n_subsets: int = 50, max_samples: int = 10_000, seed: int = 0
    ) -> None:
        self.subset_size = subset_size
        self.n_subsets = n_subsets
        super().__init__(reference, max_samples=max_samples, seed=seed)

    def compute(self) -> float:
        return kid(self.reference, self.reservoir.rows, subset_size=self.subset_size, n_subsets=self.n_subsets, seed=self.seed)
