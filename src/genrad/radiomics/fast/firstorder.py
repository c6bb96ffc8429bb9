"""First-order (intensity histogram) features for a batch, as pyradiomics' ``radiomics/firstorder.py``.

Statistics use the region's voxel values X (after filtering, before binning); Entropy and Uniformity
use the discretised histogram p(i). Percentiles interpolate linearly (numpy's default).
"""

from __future__ import annotations

import numpy as np

from genrad.radiomics.fast.texture import EPS, pyradiomics_order

FIRSTORDER_FEATURES = pyradiomics_order((
    "10Percentile", "90Percentile", "Energy", "Entropy", "InterquartileRange", "Kurtosis", "Maximum", "Mean",
    "MeanAbsoluteDeviation", "Median", "Minimum", "Range", "RobustMeanAbsoluteDeviation", "RootMeanSquared",
    "Skewness", "TotalEnergy", "Uniformity", "Variance",
))  # fmt: skip


def firstorder(
    values: np.ndarray, mask: np.ndarray, levels: np.ndarray, voxel_volume: float, shift: float
) -> dict[str, np.ndarray]:
    """Features of `values` inside `mask` (both ``(N, ...)``); `levels` are the discretised values."""
    n = len(values)
    x = np.where(mask, values, np.nan).reshape(n, -1)
    ordered = np.sort(x, axis=1)  # NaN last
    count = mask.reshape(n, -1).sum(axis=1)

    def percentile(q: float) -> np.ndarray:
        position = (count - 1) * (q / 100.0)
        below = np.floor(position).astype(np.int64)
        above = np.minimum(below + 1, count - 1)
        low = np.take_along_axis(ordered, below[:, None], axis=1)[:, 0]
        high = np.take_along_axis(ordered, above[:, None], axis=1)[:, 0]
        return low + (high - low) * (position - below)

    inside = np.where(np.isnan(x), 0.0, x)
    mean = inside.sum(axis=1) / count
    centred = np.where(np.isnan(x), 0.0, x - mean[:, None])
    m2 = (centred**2).sum(axis=1) / count
    m3 = (centred**3).sum(axis=1) / count
    m4 = (centred**4).sum(axis=1) / count
    m2_safe = np.where(m2 == 0, 1.0, m2)
    p10, p90 = percentile(10), percentile(90)
    robust = np.where((x >= p10[:, None]) & (x <= p90[:, None]), x, np.nan)
    robust_count = (~np.isnan(robust)).sum(axis=1)
    robust_mean = np.where(np.isnan(robust), 0.0, robust).sum(axis=1) / robust_count
    energy = (np.where(np.isnan(x), 0.0, x + shift) ** 2).sum(axis=1)

    width = int(levels.max()) + 1
    key = np.broadcast_to(np.arange(n).reshape((-1,) + (1,) * (levels.ndim - 1)), levels.shape)[mask] * width
    histogram = np.bincount(key + levels[mask], minlength=n * width).reshape(n, width) / count[:, None]
    minimum, maximum = ordered[:, 0], np.nanmax(x, axis=1)
    return {
        "10Percentile": p10,
        "90Percentile": p90,
        "Energy": energy,
        "Entropy": -(histogram * np.log2(histogram + EPS)).sum(axis=1),
        "InterquartileRange": percentile(75) - percentile(25),
        "Kurtosis": m4 / m2_safe**2,
        "Maximum": maximum,
        "Mean": mean,
        "MeanAbsoluteDeviation": np.abs(centred).sum(axis=1) / count,
        "Median": percentile(50),
        "Minimum": minimum,
        "Range": maximum - minimum,
        "RobustMeanAbsoluteDeviation": np.nansum(np.abs(robust - robust_mean[:, None]), axis=1) / robust_count,
        "RootMeanSquared": np.sqrt(energy / count),
        "Skewness": m3 / m2_safe**1.5,
        "TotalEnergy": energy * voxel_volume,
        "Uniformity": (histogram**2).sum(axis=1),
        "Variance": np.sqrt(m2) ** 2,
    }
