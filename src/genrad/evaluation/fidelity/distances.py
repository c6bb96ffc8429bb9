"""Per-feature distribution distances: which radiomic properties a generator gets wrong.

Each feature is z-scored with the real set's statistics; the table gives the 1-Wasserstein distance
between the real and synthetic marginals (in real standard deviations; Villani 2009, eq. 6.1 in 1-D:
``W1 = int |F_r(t) - F_s(t)| dt``), the two-sample Kolmogorov-Smirnov statistic and p-value, the mean
shift and the standard-deviation ratio, sorted from the worst feature down. ``property`` groups
pyradiomics feature classes into what a user reads: intensity (firstorder), texture (glcm, glrlm,
glszm, gldm, ngtdm), shape, and diagnostics.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.stats import kstwo

from genrad.evaluation.stats import (
    ReservoirMetric,
    normalise_pair,
)

_PROPERTIES = {
    "firstorder": "intensity",
    "glcm": "texture",
    "glrlm": "texture",
    "glszm": "texture",
    "gldm": "texture",
    "ngtdm": "texture",
    "shape": "shape",
    "shape2D": "shape",
}


def radiomic_property(name: str) -> str:
    """``intensity`` / ``texture`` / ``shape`` / ``diagnostics`` / ``other`` for a pyradiomics name
    such as ``wavelet-LH_glcm_Contrast`` or ``original_firstorder_Mean``."""
    if name.startswith("diagnostics"):
        return "diagnostics"
    for part in name.split("_")[:-1]:
        if part in _PROPERTIES:
            return _PROPERTIES[part]
    return "other"


def _cdf_gaps(real: np.ndarray, synthetic: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pooled sorted values per column and ``|F_real - F_synthetic|`` just after each of them."""
    values = np.concatenate([real, synthetic])
    order = np.argsort(values, axis=0, kind="stable")
    ordered = np.take_along_axis(values, order, axis=0)
    from_real = order < real.shape[0]
    gap = np.abs(np.cumsum(from_real, axis=0) / real.shape[0] - np.cumsum(~from_real, axis=0) / synthetic.shape[0])
    return ordered, gap


def wasserstein_columns(real: np.ndarray, synthetic: np.ndarray) -> np.ndarray:
    """1-Wasserstein distance between the two empirical marginals of every column, vectorised."""
    ordered, gap = _cdf_gaps(real, synthetic)
    return (gap[:-1] * np.diff(ordered, axis=0)).sum(axis=0)


def ks_columns(real: np.ndarray, synthetic: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two-sample Kolmogorov-Smirnov statistic ``sup |F_r - F_s|`` per column (ties handled: the
    CDFs are compared after the last of equal values) and its asymptotic p-value (as `scipy.stats.
    ks_2samp` with ``method="asymp"``)."""
    ordered, gap = _cdf_gaps(real, synthetic)
    last_of_ties = np.ones_like(gap, dtype=bool)
    last_of_ties[:-1] = ordered[1:] != ordered[:-1]
    statistic = np.where(last_of_ties, gap, 0.0).max(axis=0)
    m, n = real.shape[0], synthetic.shape[0]
    return statistic, kstwo.sf(statistic, np.round(m * n / (m + n)))


def feature_distances(
    real: np.ndarray, synthetic: np.ndarray, names: Sequence[str] | None = None, *, normalise: bool = True
) -> pd.DataFrame:
    """One row per feature, worst first: ``feature``, ``property``, ``wasserstein``, ``ks``,
    ``ks_pvalue``, ``mean_shift`` (synthetic mean in real SDs) and ``std_ratio``."""
    width = np.asarray(real).shape[1]
    names = list(names) if names is not None else [f"feature_{i}" for i in range(width)]
    kept = np.ones(width, dtype=bool)
    if normalise:
        real, synthetic, kept = normalise_pair(real, synthetic)
    names = [name for name, keep in zip(names, kept, strict=True) if keep]
    ks, ks_pvalue = ks_columns(real, synthetic)
    real_std = real.std(axis=0)
    table = pd.DataFrame(
        {
            "feature": names,
            "property": [radiomic_property(name) for name in names],
            "wasserstein": wasserstein_columns(real, synthetic),
            "ks": ks,
            "ks_pvalue": ks_pvalue,
            "mean_shift": synthetic.mean(axis=0) - real.mean(axis=0),
            "std_ratio": synthetic.std(axis=0) / np.where(real_std > 0, real_std, np.nan),
        }
    )
    return table.sort_values(["wasserstein", "ks"], ascending=False, kind="stable").reset_index(drop=True)


class FeatureDistances(ReservoirMetric):
    """Streaming per-feature distances: synthetic rows go through a reservoir of ``max_samples`` rows."""

    def __init__(
        self, reference: np.ndarray, names: Sequence[str] | None = None, *, max_samples: int = 10_000, seed: int = 0
    ) -> None:
        self.names = names
        super().__init__(reference, max_samples=max_samples, seed=seed)

    def compute(self) -> pd.DataFrame:
        return feature_distances(self.reference, self.reservoir.rows, self.names)
