"""The pixel-level components of the per-sample QA (`genrad.evaluation.qa`): spectral, flatness, noise, edge,
self-similarity and speckle measures of one image, each aimed at one kind of hallucination."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view
from scipy.ndimage import gaussian_filter, uniform_filter, uniform_filter1d
from threadpoolctl import threadpool_limits

from genrad.errors import InputError, NotFittedError

# Component -> which tail is abnormal.
DIRECTIONS = {
    "knn_distance": "upper",
    "dark_fraction": "upper",
    "bright_fraction": "upper",
    "flat_fraction": "upper",
    "high_frequency": "upper",
    "blur": "lower",
    "spectral_peak": "upper",
    "local_noise": "upper",
    "straight_edge": "upper",
    "self_similarity": "upper",
    "template_correlation": "lower",
    "speckle_correlation": "lower",
}
SPECTRAL = ("spectral_peak", "blur", "high_frequency")
"""Whole-spectrum components: named as an image's reason before the local checks when they fire."""
_LEVEL = 1.0 / 255.0  # one grey level of 8-bit data
_TINY = _LEVEL**2


class PixelChecks:
    """Image-domain checks (every component of the table except ``knn_distance``).

    `fit` keeps the real images' mean image and mean normalised power spectrum; `measure` returns one
    row per image.
    """

    def fit(self, images: np.ndarray) -> PixelChecks:
        slices = _slices(images)
        self.template_ = slices.mean(axis=0)
        self.spectrum_ = _power(slices).mean(axis=0) + 1e-12
        flat_values = slices[_flat(slices)]
        self.flat_level_ = float(np.quantile(flat_values, 0.99)) if flat_values.size else -1.0
        return self

    def measure(self, images: np.ndarray) -> pd.DataFrame:
        if not hasattr(self, "template_"):
            raise NotFittedError(self)
        slices = _slices(images)
        if slices.shape[1:] != self.template_.shape:
            raise InputError(
                f"images of the real reference's shape {self.template_.shape}",
                f"{slices.shape[1:]}",
                "score images of the size the QA was fitted on",
                source="images",
            )
        per_slice = {
            "dark_fraction": (slices <= 0.5 * _LEVEL).mean(axis=(1, 2)),
            "bright_fraction": (slices >= 1.0 - 0.5 * _LEVEL).mean(axis=(1, 2)),
            "flat_fraction": (_flat(slices) & (slices > self.flat_level_)).mean(axis=(1, 2)),
            **self._spectral(slices),
            "local_noise": _local_noise(slices),
            "straight_edge": _straight_edge(slices),
            "self_similarity": _batch_self_similarity(slices),
            "template_correlation": _correlation(slices, self.template_),
            "speckle_correlation": _speckle_correlation(slices),
        }
        table = pd.DataFrame(per_slice)
        depth = len(slices) // len(images)
        if depth == 1:
            return table
        table["image"] = np.repeat(np.arange(len(images)), depth)
        worst = {name: "min" if DIRECTIONS[name] == "lower" else "max" for name in per_slice}
        return table.groupby("image").agg(worst).reset_index(drop=True)

    def _spectral(self, slices: np.ndarray) -> dict[str, np.ndarray]:
        power = _power(slices)
        fy = np.abs(np.fft.fftfreq(slices.shape[1]))[:, None]
        fx = np.abs(np.fft.rfftfreq(slices.shape[2]))[None, :]
        fine = np.broadcast_to(np.maximum(fx, fy) >= 0.25, power.shape[1:])
        away_from_dc = np.broadcast_to(np.hypot(fx, fy) >= 0.1, power.shape[1:])
        ratio = np.log(power + 1e-12) - np.log(self.spectrum_)
        # A peak rises above the median of its 5 x 5 neighbourhood (frequencies wrap along the full axis, fy, and
        # mirror at 0 and Nyquist along the half axis, fx) and above the real mean power: a smooth tilt of the
        # spectrum (blur) is no peak, nor is the quantisation noise left where blur removed the signal.
        padded = np.pad(np.pad(ratio, ((0, 0), (2, 2), (0, 0)), mode="wrap"), ((0, 0), (0, 0), (2, 2)), mode="reflect")
        local = np.median(sliding_window_view(padded, (5, 5), axis=(1, 2)), axis=(-2, -1))
        coarse = np.broadcast_to((np.maximum(fx, fy) >= 0.05) & (np.maximum(fx, fy) < 0.15), power.shape[1:])
        fine_ratio = ratio[:, fine].mean(axis=1) - ratio[:, coarse].mean(axis=1)  # a tilt, not a contrast change
        return {
            "high_frequency": fine_ratio,  # upper tail: excess fine texture (noise)
            "blur": fine_ratio,  # lower tail of the same value: missing fine texture
            "spectral_peak": np.minimum(ratio - local, ratio)[:, away_from_dc].max(axis=1),
        }


def _slices(images: np.ndarray) -> np.ndarray:
    """2D slices ``(N * C * D, H, W)`` as float64."""
    return np.asarray(images, dtype=np.float64).reshape(-1, *images.shape[-2:])


def _power(slices: np.ndarray) -> np.ndarray:
    """Power spectrum of each mean-removed slice, normalised to sum 1 (``rfft2`` half plane)."""
    centred = slices - slices.mean(axis=(1, 2), keepdims=True)
    power = np.abs(np.fft.rfft2(centred)) ** 2
    return power / (power.sum(axis=(1, 2), keepdims=True) + 1e-12)


def _flat(slices: np.ndarray) -> np.ndarray:
    """Pixels whose 3x3 neighbourhood is constant (standard deviation below half a grey level)."""
    mean = uniform_filter(slices, size=(1, 3, 3), mode="reflect")
    square = uniform_filter(slices * slices, size=(1, 3, 3), mode="reflect")
    return square - mean * mean < _TINY / 4.0


def _local_noise(slices: np.ndarray) -> np.ndarray:
    residual = slices - gaussian_filter(slices, sigma=(0, 1, 1))
    energy = gaussian_filter(residual * residual, sigma=(0, 2, 2))
    flat = energy.reshape(len(slices), -1)
    return np.log((flat.max(axis=1) + _TINY) / (np.median(flat, axis=1) + _TINY))


def _straight_edge(slices: np.ndarray) -> np.ndarray:
    """``log`` of the largest mean step along a straight run of a quarter of the side, over the
    image's mean step."""
    run = max(4, min(slices.shape[1:]) // 4)
    across_columns = np.abs(np.diff(slices, axis=2))
    across_rows = np.abs(np.diff(slices, axis=1))
    typical = (across_columns.mean(axis=(1, 2)) + across_rows.mean(axis=(1, 2))) / 2.0
    vertical = uniform_filter1d(across_columns, run, axis=1, mode="nearest").max(axis=(1, 2))
    horizontal = uniform_filter1d(across_rows, run, axis=2, mode="nearest").max(axis=(1, 2))
    return np.log((np.maximum(vertical, horizontal) + _LEVEL) / (typical + _LEVEL))


def _batch_self_similarity(slices: np.ndarray) -> np.ndarray:
    # The per-image matrices are small: BLAS threads only add synchronisation cost.
    with threadpool_limits(limits=1, user_api="blas"):
        return np.array([_self_similarity(image) for image in slices])


def _self_similarity(image: np.ndarray) -> float:
    """``-log`` of the smallest normalised distance ``|p - q|^2 / (s^2 (var_p + var_q))`` between two
    non-overlapping textured patches of side ``s`` (copy-move detection, Fridrich et al. 2003: a
    duplicated structure gives two near-identical patches; real tissue does not repeat exactly).
    Query patches lie on a grid of step ``stride``, candidates at every position, so a copy at any
    offset is matched exactly."""
    side, _ = _patch_geometry(image.shape)
    candidates = sliding_window_view(image, (side, side)).reshape(-1, side * side).astype(np.float32)
    variance = candidates.var(axis=1)
    queries = _query_index(image.shape)
    excluded = np.where(variance > 4.0 * _TINY, np.float32(0.0), np.float32(np.inf))  # untextured patches
    if np.isinf(excluded[queries]).all() or np.isfinite(excluded).sum() < 2:
        return 0.0
    squared = (candidates * candidates).sum(axis=1)
    distance = squared[queries, None] + squared[None, :]
    distance -= 2.0 * (candidates[queries] @ candidates.T)
    distance /= side * side * (variance[queries, None] + variance[None, :]) + np.float32(1e-12)
    distance += _overlap_penalty(image.shape)
    distance += excluded[queries, None]
    distance += excluded[None, :]
    return float(-np.log(max(float(distance.min()), 0.0) + 1e-6))


def _patch_geometry(shape: tuple[int, ...]) -> tuple[int, int]:
    """Patch side (a sixth of the image side, at least 4) and query stride (1 up to 63 px)."""
    return max(4, min(shape) // 6), max(1, min(shape) // 32)


def _positions(shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    side, _ = _patch_geometry(shape)
    rows, cols = np.indices((shape[0] - side + 1, shape[1] - side + 1))
    return rows.ravel(), cols.ravel()


@functools.lru_cache(maxsize=8)
def _query_index(shape: tuple[int, ...]) -> np.ndarray:
    """Indices (into all patch positions) of the query patches, on a grid of step ``stride``."""
    _, stride = _patch_geometry(shape)
    rows, cols = _positions(shape)
    return np.flatnonzero((rows % stride == 0) & (cols % stride == 0))


@functools.lru_cache(maxsize=8)
def _overlap_penalty(shape: tuple[int, ...]) -> np.ndarray:
    """``inf`` for (query, candidate) pairs of patches that overlap (no evidence of a copy), else 0."""
    side, _ = _patch_geometry(shape)
    rows, cols = _positions(shape)
    queries = _query_index(shape)
    overlapping = (np.abs(rows[queries, None] - rows[None, :]) < side) & (np.abs(cols[queries, None] - cols[None, :]) < side)
    return np.where(overlapping, np.float32(np.inf), np.float32(0.0))


def _speckle_correlation(slices: np.ndarray, window: int = 5) -> np.ndarray:
    """Correlation, over the image, between local mean and local standard deviation: positive for
    multiplicative speckle (ultrasound; brighter tissue is noisier), negative after an inversion."""
    mean = uniform_filter(slices, size=(1, window, window), mode="reflect")
    spread = np.sqrt(np.clip(uniform_filter(slices * slices, size=(1, window, window), mode="reflect") - mean * mean, 0.0, None))
    return _correlation(mean, spread)


def _correlation(slices: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Pearson correlation of each slice with ``other`` (one image, or one per slice)."""
    a = slices - slices.mean(axis=(1, 2), keepdims=True)
    b = other - other.mean(axis=(-2, -1), keepdims=True)
    return (a * b).sum(axis=(1, 2)) / (np.sqrt((a * a).sum(axis=(1, 2)) * (b * b).sum(axis=(-2, -1))) + 1e-12)
