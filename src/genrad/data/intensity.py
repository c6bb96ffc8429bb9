"""Explicit intensity normalisation to the cohort convention, float32 in [0, 1].

Methods (the choice and its parameters are recorded in ``Cohort.preprocessing``):

- ``"auto"``: ``"uint8"`` for uint8 data, ``"none"`` for float data already in [0, 1] (what genrad
  saves), ``"minmax"`` otherwise;
- ``"uint8"``: divide by 255 (MedMNIST, PNG);
- ``"minmax"``: map the smallest / largest value over all splits to 0 / 1;
- ``"percentile"``: like ``"minmax"`` between the 0.5th and 99.5th percentiles, clipped (CT/MRI);
- ``"none"``: keep values, which must already lie in [0, 1].
"""

from __future__ import annotations

from typing import Any

import numpy as np

from genrad.errors import InputError

METHODS = ("auto", "uint8", "minmax", "percentile", "none")


def normalise_intensity(
    splits: dict[str, np.ndarray], *, method: str = "auto", source: str | None = None
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Map every split's raw pixels to float32 in [0, 1] with one shared transform."""
    if method not in METHODS:
        raise InputError(f"intensity one of {METHODS}", repr(method), "choose a listed method", source=source)
    dtypes = {str(a.dtype) for a in splits.values()}
    for name, array in splits.items():
        if array.dtype.kind not in "biuf":
            raise InputError(
                "numeric pixel arrays", f"{array.dtype} pixels in split {name!r}", "store pixels as numbers", source=source
            )
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise InputError(
                "finite pixel values",
                f"NaN or inf pixels in split {name!r}",
                "replace or drop the images with non-finite values",
                source=source,
            )
    if method == "auto":
        if dtypes == {"uint8"}:
            method = "uint8"
        else:
            lo, hi = _range(splits, 0.0, 100.0)
            method = "none" if all(a.dtype.kind == "f" for a in splits.values()) and 0 <= lo and hi <= 1 else "minmax"
    record: dict[str, Any] = {"intensity": method, "source_dtype": sorted(dtypes)}
    if method == "uint8":
        if dtypes != {"uint8"}:
            raise InputError("uint8 pixels", f"{sorted(dtypes)}", "use intensity='minmax' for other dtypes", source=source)
        return {k: (v.astype(np.float32) / np.float32(255.0)) for k, v in splits.items()}, record
    if method == "none":
        lo, hi = _range(splits, 0.0, 100.0)
        if lo < 0 or hi > 1:
            raise InputError(
                "pixels in [0, 1] with intensity='none'", f"range [{lo:g}, {hi:g}]", "use intensity='minmax'", source=source
            )
        return {k: v.astype(np.float32) for k, v in splits.items()}, record
    lo, hi = _range(splits, *((0.5, 99.5) if method == "percentile" else (0.0, 100.0)))
    record.update(low=lo, high=hi)
    scale = (hi - lo) or 1.0
    normalised = {k: np.clip((v.astype(np.float64) - lo) / scale, 0.0, 1.0).astype(np.float32) for k, v in splits.items()}
    return normalised, record


def _range(splits: dict[str, np.ndarray], low_pct: float, high_pct: float) -> tuple[float, float]:
    values = np.concatenate([v.reshape(-1) for v in splits.values()])
    if low_pct == 0.0 and high_pct == 100.0:
        return float(values.min()), float(values.max())
    lo, hi = np.percentile(values, [low_pct, high_pct])
    return float(lo), float(hi)


def display_floor(images: np.ndarray, *, min_fraction: float = 0.005, spike_ratio: float = 2.0,
                  lowest_levels: int = 4) -> float | None:
    """The clipped display floor of `images`, or None: the first of the `lowest_levels` smallest distinct
    values that holds at least `min_fraction` of the pixels and `spike_ratio` times the next value's count.

    Scanners and display pipelines clip dark signal (B-mode ultrasound shadows, air after windowing) to
    one value, which shows as a spike at the bottom of the histogram; pass the value as a generator's
    ``black_level``. On BreastMNIST: 1/255 (1.4% of the training pixels, 2.3x the count at 2/255).
    """
    values, counts = _lowest_levels(np.asarray(images).ravel(), lowest_levels + 1)
    for index in range(min(lowest_levels, len(values) - 1)):
        if counts[index] >= min_fraction * images.size and counts[index] >= spike_ratio * counts[index + 1]:
            return float(values[index])
    return None


def _lowest_levels(values: np.ndarray, how_many: int) -> tuple[list[float], list[int]]:
    """The `how_many` smallest distinct `values` (NaN ignored) and their counts, in O(how_many x N) rather than
    a full sort."""
    values = values[~np.isnan(values)]
    levels, counts = [], []
    while values.size and len(levels) < how_many:
        lowest = values.min()
        at_lowest = values == lowest
        levels.append(float(lowest))
        counts.append(int(at_lowest.sum()))
        values = values[~at_lowest]
    return levels, counts
