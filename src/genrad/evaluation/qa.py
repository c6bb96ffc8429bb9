"""Per-sample QA: a score and a flag for every synthetic image, calibrated on real images.

Each image is measured by several *components*, each aimed at one kind of hallucination:

=====================  ===========================================================  ============
component              what it measures                                             catches
=====================  ===========================================================  ============
knn_distance           mean distance to the k nearest real images in z-scored       off-manifold
                       radiomic feature space (``frd_v1``)                          texture,
                                                                                    intensity
dark_fraction,         share of pixels at the ends of the range                     clipping,
bright_fraction                                                                     saturation
flat_fraction          share of pixels in constant 3x3 neighbourhoods, brighter     blank regions
                       than where real images are ever flat (e.g. black shadows)
high_frequency         mean log ratio of the image's power spectrum to the real     noise,
                       images' mean spectrum at high frequencies (an excess)        checkerboard
blur                   the same mean log ratio as a deficit (low is abnormal)       blur, missing
                                                                                    fine texture
spectral_peak          largest log ratio of the image's power spectrum to the real  grids, ringing
                       mean spectrum that is also above its local median (5 x 5
                       frequency bins), so a smooth tilt (blur) is no peak
local_noise            peak / median local energy of the high-pass residual         noise bursts
straight_edge          strongest long straight intensity step, over the typical    cuts, pasted
                       gradient                                                     patches
self_similarity        how close two distinct textured patches are (copy-move)     duplicated
                                                                                    lesions
template_correlation   correlation with the mean real image                         implausible
                                                                                    layout
speckle_correlation    correlation of local mean and local SD (speckle is           inversions
                       multiplicative: brighter tissue is noisier)
=====================  ===========================================================  ============

Every component becomes a p-value against its distribution over the real reference (empirical,
with an exponential tail beyond the largest real value, as in peaks-over-threshold); the QA score is
``-log10`` of the smallest p-value, so any one strongly abnormal component raises it. Its reason is the
most abnormal whole-spectrum check over the threshold (blur, a periodic pattern or noise alter every local
statistic as well), else the most abnormal component, an image-domain check over the threshold being named
before the k-NN distance. The flag
threshold is an order statistic of the scores of real images (the reference images scored
leave-one-out, plus the calibration images) chosen so that, with probability ``guarantee`` over the
calibration sample, at most ``false_flag_rate`` of clean real images are flagged (training-conditional
conformal calibration: the threshold's coverage is Beta-distributed; Vovk 2012, "Conditional validity
of inductive conformal predictors", prop. 2a). ``guarantee=0.5`` gives the median.

3D volumes are measured slice by slice along the first spatial axis and the most abnormal slice
value is kept.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view
from scipy.ndimage import gaussian_filter, uniform_filter, uniform_filter1d
from scipy.stats import beta
from threadpoolctl import threadpool_limits

from genrad.errors import InputError, NotFittedError
from genrad.evaluation.fidelity.prdc import chunked_distances
from genrad.evaluation.stats import Standardizer, subsample

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


def calibration_rank(n: int, false_flag_rate: float, guarantee: float) -> int:
    """Smallest rank ``r`` (1-based) such that thresholding at the ``r``-th smallest of ``n`` real
    scores flags at most ``false_flag_rate`` of real images with probability ``guarantee``: the
    threshold's coverage ``F(S_(r))`` is ``Beta(r, n - r + 1)``. ``n`` when no rank qualifies."""
    ranks = np.arange(1, n + 1)
    ok = beta.cdf(1.0 - false_flag_rate, ranks, n - ranks + 1) <= 1.0 - guarantee
    return int(ranks[ok][0]) if ok.any() else n


class TailCalibrator:
    """Upper-tail p-values against a sample of real values: ``(1 + #{real >= s}) / (n + 1)`` inside
    the sample's range, decaying as ``exp(-(s - max) / tau)`` beyond it, with ``tau`` the mean excess
    over the 90th percentile (exponential peaks-over-threshold fit)."""

    def fit(self, values: np.ndarray) -> TailCalibrator:
        self.values_ = np.asarray(values, dtype=np.float64)
        self.sorted_ = np.sort(self.values_)
        cut = np.quantile(self.sorted_, 0.9)
        excess = self.sorted_[self.sorted_ > cut] - cut
        spread = float(np.std(self.sorted_))
        self.tau_ = float(excess.mean()) if excess.size and excess.mean() > 0 else max(spread, 1e-12)
        return self

    def pvalue(self, values: np.ndarray) -> np.ndarray:
        n = self.sorted_.size
        at_least = n - np.searchsorted(self.sorted_, values, side="left")
        p = (1.0 + at_least) / (n + 1.0)
        beyond = values > self.sorted_[-1]
        p[beyond] = np.exp(-(values[beyond] - self.sorted_[-1]) / self.tau_) / (n + 1.0)
        return p

    def loo_pvalue(self) -> np.ndarray:
        """p-value of each fitted value against the *other* fitted values (leave-one-out), so that
        the real reference is scored as fresh real images are: a unique maximum lies beyond the rest."""
        n = self.sorted_.size
        at_least_others = n - np.searchsorted(self.sorted_, self.values_, side="left") - 1
        p = (1.0 + at_least_others) / n
        top, second = self.sorted_[-1], self.sorted_[-2]
        if top > second:
            p[self.values_ == top] = np.exp(-(top - second) / self.tau_) / n
        return p


class SampleQA:
    """Per-sample QA score and flag for synthetic images (see the module docstring).

    Args:
        false_flag_rate: share of clean real images the flag may catch (the calibration target).
        guarantee: probability that the false-flag rate is at most ``false_flag_rate``.
        k: neighbours for ``knn_distance``.
        feature_set, engine, workers: radiomic features (`genrad.radiomics.extract`); the ``fast``
            engine computes the same ``frd_v1`` features as pyradiomics, much faster.
        max_reference: real images kept as the k-NN reference (a seeded subsample beyond it).
        seed: seeds that subsample.
    """

    def __init__(
        self,
        *,
        false_flag_rate: float = 0.05,
        guarantee: float = 0.9,
        k: int = 5,
        feature_set: str = "frd_v1",
        engine: str = "fast",
        workers: int = 1,
        max_reference: int = 5000,
        seed: int = 0,
    ) -> None:
        self.false_flag_rate = false_flag_rate
        self.guarantee = guarantee
        self.k = k
        self.feature_set = feature_set
        self.engine = engine
        self.workers = workers
        self.max_reference = max_reference
        self.seed = seed

    def check_settings(self) -> SampleQA:
        """Refuse invalid settings before any work (`fit` calls it too)."""
        if not 0.0 < self.false_flag_rate < 1.0 or not 0.0 < self.guarantee < 1.0 or self.k < 1:
            raise InputError(
                "0 < false_flag_rate < 1, 0 < guarantee < 1 and k >= 1",
                f"false_flag_rate={self.false_flag_rate}, guarantee={self.guarantee}, k={self.k}",
                "pass valid settings",
                source="SampleQA",
            )
        return self

    def fit(
        self,
        real_reference: Any,
        real_calibration: Any = None,
        *,
        reference_features: np.ndarray | pd.DataFrame | None = None,
        calibration_features: np.ndarray | pd.DataFrame | None = None,
    ) -> SampleQA:
        """Learn the real reference (images, radiomic manifold, component distributions) and the flag
        threshold. Images are `Split`s or float arrays ``(N, C, ...)`` in [0, 1]; precomputed radiomic
        features (one row per image, same order) skip the extraction."""
        self.check_settings()
        images = _images(real_reference, "real_reference")
        features = self._features(images, reference_features, "reference_features", width=None)
        keep = subsample(np.arange(len(images)), self.max_reference, np.random.default_rng(self.seed))
        if len(keep) <= self.k:
            raise InputError(
                f"more than k={self.k} real reference images", f"{len(keep)}", "pass more real images", source="real_reference"
            )
        images, features = images[keep], features[keep]
        self.scaler_ = Standardizer().fit(features)
        self.reference_ = self.scaler_.transform(features)
        self.pixels_ = PixelChecks().fit(images)
        components = self.pixels_.measure(images)
        components.insert(0, "knn_distance", self._knn_distance(self.reference_, leave_one_out=True))
        self.calibrators_ = {
            (name, tail): TailCalibrator().fit(sign * components[name].to_numpy())
            for name, direction in DIRECTIONS.items()
            for tail, sign in (("upper", 1.0), ("lower", -1.0))
            if direction in (tail, "both")
        }
        scores = [self._combine(components, leave_one_out=True)[0]]
        if real_calibration is not None:
            calibration = _images(real_calibration, "real_calibration")
            scores.append(self._combine(self._components(calibration, calibration_features))[0])
        pooled = np.sort(np.concatenate(scores))
        self.threshold_ = float(pooled[calibration_rank(len(pooled), self.false_flag_rate, self.guarantee) - 1])
        self.n_calibration_ = len(pooled)
        return self

    def score(self, images: Any, *, features: np.ndarray | pd.DataFrame | None = None) -> pd.DataFrame:
        """One row per image: every component, ``qa_score`` (``-log10`` of the smallest component
        p-value), ``qa_flag`` (score above the calibrated threshold) and ``qa_reason`` (the component
        with the smallest p-value)."""
        if not hasattr(self, "threshold_"):
            raise NotFittedError(self)
        components = self._components(_images(images, "images"), features)
        score, reason = self._combine(components)
        table = components.add_prefix("qa_")
        table["qa_score"] = score
        table["qa_flag"] = score > self.threshold_
        table["qa_reason"] = self._specific_reason(components, reason)
        return table

    def _specific_reason(self, components: pd.DataFrame, reason: np.ndarray) -> np.ndarray:
        """The reason of each flagged image: its most abnormal component, except that a whole-spectrum check over
        the threshold (`SPECTRAL`: a blur, a periodic pattern or noise changes every local statistic too) is named
        first, and any image-domain check over the threshold before ``knn_distance`` (which catches every departure
        from the real radiomic manifold)."""
        strength = {name: _strength(self._pvalue(name, components[name].to_numpy(), False))
                    for name in DIRECTIONS if name != "knn_distance"}

        def strongest_over_threshold(group: list[str]) -> tuple[np.ndarray, np.ndarray]:
            values = np.column_stack([strength[name] for name in group])
            best = values.argmax(axis=1)
            return np.asarray(group)[best], values[np.arange(len(values)), best] > self.threshold_

        image_name, image_fires = strongest_over_threshold(list(strength))
        spectral_name, spectral_fires = strongest_over_threshold(list(SPECTRAL))
        chosen = np.where((reason == "knn_distance") & image_fires, image_name, reason)
        return np.where(spectral_fires, spectral_name, chosen)

    def flag(self, images: Any, *, features: np.ndarray | pd.DataFrame | None = None) -> np.ndarray:
        """Boolean mask: True for images the QA flags."""
        return self.score(images, features=features)["qa_flag"].to_numpy()

    def fires(self, table: pd.DataFrame, component: str) -> np.ndarray:
        """Whether `component` alone is over the flag threshold in each row of a `score` table."""
        if not hasattr(self, "threshold_"):
            raise NotFittedError(self)
        return _strength(self._pvalue(component, table[f"qa_{component}"].to_numpy(), False)) > self.threshold_

    def as_filter(self) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        """A ``filter(images, labels) -> keep`` callable for `genrad.synthesis.generate` that keeps the
        images the QA does not flag."""
        if not hasattr(self, "threshold_"):
            raise NotFittedError(self)
        return _QAFilter(self)

    def _components(self, images: np.ndarray, features: np.ndarray | pd.DataFrame | None) -> pd.DataFrame:
        components = self.pixels_.measure(images)
        features = self._features(images, features, "features", width=self.scaler_.keep_.size)
        components.insert(0, "knn_distance", self._knn_distance(self.scaler_.transform(features), leave_one_out=False))
        return components

    def _features(
        self, images: np.ndarray, given: np.ndarray | pd.DataFrame | None, name: str, *, width: int | None
    ) -> np.ndarray:
        if given is None:
            from genrad.radiomics import extract

            given = extract(images, feature_set=self.feature_set, engine=self.engine, workers=self.workers, progress=False)
        values = given.to_numpy(np.float64) if isinstance(given, pd.DataFrame) else np.asarray(given, dtype=np.float64)
        expected = values.shape[-1] if width is None else width
        if values.ndim != 2 or values.shape != (len(images), expected):
            raise InputError(
                f"one row of {expected} radiomic features per image ({len(images)} rows)",
                f"shape {values.shape}",
                "extract the features with the same feature set, one row per image in order",
                source=name,
            )
        return np.where(np.isnan(values), 0.0, values)  # a failed feature counts as 0: far from real

    def _knn_distance(self, features: np.ndarray, *, leave_one_out: bool) -> np.ndarray:
        """Mean distance to the k nearest reference rows (leaving each reference row's own out)."""
        features = np.nan_to_num(features, nan=0.0, posinf=1e6, neginf=-1e6)
        offset = 1 if leave_one_out else 0
        result = np.empty(len(features))
        for rows, distances in chunked_distances(features, self.reference_):
            nearest = np.partition(distances, self.k + offset - 1, axis=1)[:, : self.k + offset]
            result[rows] = np.sort(nearest, axis=1)[:, offset:].mean(axis=1)
        return result

    def _combine(self, components: pd.DataFrame, *, leave_one_out: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """QA score (``-log10`` of the smallest component p-value) and that component's name; with
        ``leave_one_out`` the components are the reference's own, each judged against the others."""
        pvalues = np.column_stack([self._pvalue(name, components[name].to_numpy(), leave_one_out) for name in DIRECTIONS])
        smallest = pvalues.argmin(axis=1)
        score = _strength(pvalues[np.arange(len(pvalues)), smallest])
        return score, np.asarray(list(DIRECTIONS))[smallest]

    def _pvalue(self, name: str, values: np.ndarray, leave_one_out: bool) -> np.ndarray:
        def tail(which: str, sign: float) -> np.ndarray:
            calibrator = self.calibrators_[name, which]
            return calibrator.loo_pvalue() if leave_one_out else calibrator.pvalue(sign * values)

        direction = DIRECTIONS[name]
        if direction != "both":
            return tail(direction, 1.0 if direction == "upper" else -1.0)
        return np.minimum(1.0, 2.0 * np.minimum(tail("upper", 1.0), tail("lower", -1.0)))


class _QAFilter:
    """``filter(images, labels) -> keep`` for `genrad.synthesis.generate` (labels are not used)."""

    def __init__(self, qa: SampleQA) -> None:
        self.qa = qa

    def __call__(self, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
        return ~self.qa.flag(images)


def _strength(pvalues: np.ndarray) -> np.ndarray:
    """``-log10`` of p-values (floored at 1e-300): the scale of the QA score and of its flag threshold."""
    return -np.log10(np.clip(pvalues, 1e-300, 1.0))


def _images(data: Any, name: str) -> np.ndarray:
    images = getattr(data, "images", data)
    images = np.asarray(images, dtype=np.float32)
    if images.ndim not in (4, 5) or images.shape[0] == 0:
        raise InputError(
            "images shaped (N, C, H, W) or (N, C, D, H, W)", f"shape {images.shape}", "pass a Split or channel-first images", source=name
        )
    return images


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
