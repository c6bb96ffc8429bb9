"""pyradiomics' preprocessing, batched: z-score normalisation and cubic B-spline resampling.

pyradiomics (`imageoperations.normalizeImage`, `resampleImage`) calls SimpleITK's
``NormalizeImageFilter`` and ``ResampleImageFilter`` with ``BSplineInterpolateImageFunction``
(order 3) one image at a time. Both are linear and separable, so for a batch of same-sized images
they become matrix products: per axis, the B-spline prefilter (Unser, Aldroubi & Eden, "B-spline
signal processing: Part II", IEEE TSP 1993; mirror boundaries and the truncated causal
initialisation that ITK uses) followed by the sampling weights of the cubic B-spline at the new grid
points. Grid placement follows `resampleImage` exactly: the new grid is aligned to the input origin,
cropped to the mask's bounding box plus ``padDistance`` voxels; points outside the input take 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

_POLE = math.sqrt(3.0) - 2.0  # pole of the cubic B-spline prefilter
_PREFILTER_TOLERANCE = 1e-10  # ITK BSplineDecompositionImageFilter default


def normalize(images: np.ndarray, scale: float) -> np.ndarray:
    """``scale * (x - mean) / std`` per image over all its voxels (std with n - 1), as ITK computes it."""
    flat = images.reshape(len(images), -1)
    count = flat.shape[1]
    total = flat.sum(axis=1)
    variance = ((flat * flat).sum(axis=1) - total * total / count) / (count - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = 1.0 / np.sqrt(variance)
        shift = -(total / count)
        expand = (slice(None),) + (None,) * (images.ndim - 1)
        return (images + shift[expand]) * factor[expand] * scale


@dataclass(frozen=True)
class Grid:
    """The resampled grid along one axis: first new index, number of points, input spacing, new spacing."""

    low: int
    size: int
    spacing: float
    new_spacing: float

    @property
    def positions(self) -> np.ndarray:
        """Continuous input indices of the new grid points (pyradiomics' ``newCroppedOriginIndex`` + k * step)."""
        step = self.new_spacing / self.spacing
        origin = 0.5 * (self.new_spacing - self.spacing) / self.spacing + self.low * step
        return origin + np.arange(self.size) * step


def resample_grid(
    shape: tuple[int, ...], spacing: tuple[float, ...], bbox_low: np.ndarray, bbox_size: np.ndarray,
    new_spacing: tuple[float, ...], pad: int,
) -> tuple[Grid, ...] | None:
    """Per-axis grid of `resampleImage` for one mask bounding box; None when no resampling is needed.

    `new_spacing` 0 keeps the input spacing; axes where the region of interest is one voxel thick
    keep their spacing too (pyradiomics' rule).
    """
    in_spacing = np.asarray(spacing, dtype=np.float64)
    target = np.where(np.asarray(new_spacing, dtype=np.float64) == 0, in_spacing, new_spacing)
    target = np.where(bbox_size != 1, target, in_spacing)
    if np.allclose(in_spacing, target):
        return None
    ratio = in_spacing / target
    low = np.floor((bbox_low - 0.5) * ratio - pad)
    high = np.ceil((bbox_low + bbox_size - 0.5) * ratio + pad)
    low = np.where(low < 0, 0, low)
    high = np.minimum(high, np.ceil(np.asarray(shape) * ratio) - 1)
    return tuple(
        Grid(int(lo), int(hi - lo + 1), float(s), float(t)) for lo, hi, s, t in zip(low, high, in_spacing, target)
    )


def crop_grid(shape: tuple[int, ...], spacing: tuple[float, ...], bbox_low: np.ndarray, bbox_size: np.ndarray,
              pad: int) -> tuple[Grid, ...]:
    """The grid of `cropToTumorMask` with padding: no interpolation, a crop around the bounding box."""
    low = np.maximum(bbox_low - pad, 0)
    high = np.minimum(bbox_low + bbox_size - 1 + pad, np.asarray(shape) - 1)
    return tuple(Grid(int(lo), int(hi - lo + 1), float(s), float(s)) for lo, hi, s in zip(low, high, spacing))


@lru_cache(maxsize=256)
def bspline_operator(length: int, grid: Grid) -> np.ndarray:
    """``(grid.size, length)`` matrix: cubic B-spline interpolation of a line at the grid positions."""
    if grid.new_spacing == grid.spacing:
        return nearest_operator(length, grid)
    return _sampling_weights(length, grid.positions) @ _prefilter(length)


@lru_cache(maxsize=256)
def nearest_operator(length: int, grid: Grid) -> np.ndarray:
    """``(grid.size, length)`` 0/1 matrix: nearest-neighbour sampling (ITK rounds half up)."""
    positions = grid.positions
    nearest = np.floor(positions + 0.5).astype(np.int64)
    operator = np.zeros((grid.size, length))
    inside = _inside(positions, length)
    operator[np.flatnonzero(inside), nearest[inside]] = 1.0
    return operator


def apply_separable(volumes: np.ndarray, operators: tuple[np.ndarray, ...]) -> np.ndarray:
    """Apply one matrix per spatial axis to a batch ``(N, *spatial)`` (identity matrices are skipped)."""
    out = volumes
    for axis, operator in enumerate(operators, start=1):
        if operator.shape[0] == operator.shape[1] and np.array_equal(operator, np.eye(len(operator))):
            continue
        out = np.moveaxis(np.tensordot(operator, np.moveaxis(out, axis, 0), axes=(1, 0)), 0, axis)
    return out


def sample_nearest(masks: np.ndarray, grid: tuple[Grid, ...]) -> np.ndarray:
    """Nearest-neighbour resampling of boolean masks ``(N, *spatial)`` onto `grid` (outside: False)."""
    out = masks
    for axis, (length, axis_grid) in enumerate(zip(masks.shape[1:], grid), start=1):
        positions = axis_grid.positions
        nearest = np.clip(np.floor(positions + 0.5).astype(np.int64), 0, length - 1)
        out = np.take(out, nearest, axis=axis)
        outside = ~_inside(positions, length)
        if outside.any():
            index = [slice(None)] * out.ndim
            index[axis] = outside
            out[tuple(index)] = False
    return out


def _inside(positions: np.ndarray, length: int) -> np.ndarray:
    """ITK's IsInsideBuffer: continuous index in [-0.5, length - 0.5)."""
    return (positions >= -0.5) & (positions < length - 0.5)


def _sampling_weights(length: int, positions: np.ndarray) -> np.ndarray:
    """Cubic B-spline weights of the coefficients at `positions`, mirror boundaries (ITK's order)."""
    weights = np.zeros((len(positions), length))
    if length == 1:
        weights[_inside(positions, 1), 0] = 1.0
        return weights
    start = np.floor(positions).astype(np.int64) - 1
    w = positions - (start + 1)
    w3 = w * w * w / 6.0
    w0 = 1.0 / 6.0 + 0.5 * w * (w - 1.0) - w3
    w2 = w + w0 - 2.0 * w3
    w1 = 1.0 - w0 - w2 - w3
    period = 2 * length - 2
    rows = np.flatnonzero(_inside(positions, length))
    for offset, wk in enumerate((w0, w1, w2, w3)):
        index = start + offset
        index = np.where(index < 0, -index - period * ((-index) // period), index)
        index = np.where(index >= length, period - index, index)
        np.add.at(weights, (rows, index[rows]), wk[rows])
    return weights


def _prefilter(length: int) -> np.ndarray:
    """``(length, length)`` matrix of ITK's recursive cubic B-spline prefilter (mirror boundaries)."""
    c = np.eye(length)
    if length == 1:
        return c
    z = _POLE
    c *= (1.0 - z) * (1.0 - 1.0 / z)
    horizon = math.ceil(math.log(_PREFILTER_TOLERANCE) / math.log(abs(z)))
    if horizon < length:
        zn, total = z, c[0].copy()
        for n in range(1, horizon):
            total += zn * c[n]
            zn *= z
        c[0] = total
    else:
        zn, iz = z, 1.0 / z
        z2n = z ** (length - 1)
        total = c[0] + z2n * c[length - 1]
        z2n = z2n * z2n * iz
        for n in range(1, length - 1):
            total += (zn + z2n) * c[n]
            zn *= z
            z2n *= iz
        c[0] = total / (1.0 - zn * zn)
    for n in range(1, length):
        c[n] += z * c[n - 1]
    c[length - 1] = (z / (z * z - 1.0)) * (z * c[length - 2] + c[length - 1])
    for n in range(length - 2, -1, -1):
        c[n] = z * (c[n + 1] - c[n])
    return c
