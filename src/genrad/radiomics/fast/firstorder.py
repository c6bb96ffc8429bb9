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
    flat, inside = values.reshape(n, -1), mask.reshape(n, -1)
    count = inside.sum(axis=1)
    full = bool(inside.all())
    x = flat if full else np.where(inside, flat, np.nan)
    wanted = (10, 25, 50, 75, 90)
    positions = (count[:, None] - 1) * (np.array(wanted) / 100.0)
    below = np.floor(positions).astype(np.int64)
    above = np.minimum(below + 1, count[:, None] - 1)
    if full:  # order statistics by partial sorting around the needed ranks (and the extremes)
        ranks = np.concatenate([below.ravel(), above.ravel(), [0, flat.shape[1] - 1]])
        ordered = np.partition(x, np.unique(ranks), axis=1)
        minimum, maximum = ordered[:, 0], ordered[:, -1]
    else:
        ordered = np.sort(x, axis=1)  # NaN last
        minimum = ordered[:, 0]
        maximum = np.take_along_axis(ordered, count[:, None] - 1, axis=1)[:, 0]
    low, high = np.take_along_axis(ordered, below, axis=1), np.take_along_axis(ordered, above, axis=1)
    p10, p25, p50, p75, p90 = (low + (high - low) * (positions - below)).T

    zeroed = flat if full else np.where(inside, flat, 0.0)
    mean = zeroed.sum(axis=1) / count
    centred = flat - mean[:, None]
    if not full:
        centred = np.where(inside, centred, 0.0)
    c2 = centred * centred
    m2 = c2.sum(axis=1) / count
    m3 = (c2 * centred).sum(axis=1) / count
    m4 = (c2 * c2).sum(axis=1) / count
    m2_safe = np.where(m2 == 0, 1.0, m2)
    in_range = (x >= p10[:, None]) & (x <= p90[:, None])
    robust_count = in_range.sum(axis=1)
    robust_mean = np.where(in_range, flat, 0.0).sum(axis=1) / robust_count
    robust_deviation = np.where(in_range, np.abs(flat - robust_mean[:, None]), 0.0).sum(axis=1) / robust_count
    shifted = zeroed + shift
    if not full:
        shifted = np.where(inside, shifted, 0.0)
    energy = (shifted * shifted).sum(axis=1)

    width = int(levels.max()) + 1
    key = np.arange(n)[:, None] * width + levels.reshape(n, -1)
    histogram = np.bincount(key.ravel() if full else key[inside], minlength=n * width).reshape(n, width) / count[:, None]
    return {
        "10Percentile": p10,
        "90Percentile": p90,
        "Energy": energy,
        "Entropy": -(histogram * np.log2(histogram + EPS)).sum(axis=1),
        "InterquartileRange": p75 - p25,
        "Kurtosis": m4 / m2_safe**2,
        "Maximum": maximum,
        "Mean": mean,
        "MeanAbsoluteDeviation": np.abs(centred).sum(axis=1) / count,
        "Median": p50,
        "Minimum": minimum,
        "Range": maximum - minimum,
        "RobustMeanAbsoluteDeviation": robust_deviation,
        "RootMeanSquared": np.sqrt(energy / count),
        "Skewness": m3 / m2_safe**1.5,
        "TotalEnergy": energy * voxel_volume,
        "Uniformity": (histogram**2).sum(axis=1),
        "Variance": np.sqrt(m2) ** 2,
    }
