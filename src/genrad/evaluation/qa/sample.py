"""`SampleQA`: every component of an image scored against its real distribution and combined into one score,
with a flag threshold calibrated on held-out real images (`TailCalibrator`; see `genrad.evaluation.qa`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import beta

from genrad.errors import InputError, NotFittedError
from genrad.evaluation.fidelity.prdc import chunked_distances
from genrad.evaluation.qa.checks import DIRECTIONS, SPECTRAL, PixelChecks
from genrad.evaluation.stats import Standardizer, subsample


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


@dataclass(kw_only=True, eq=False)
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

    false_flag_rate: float = 0.05
    guarantee: float = 0.9
    k: int = 5
    feature_set: str = "frd_v1"
    engine: str = "fast"
    workers: int = 1
    max_reference: int = 5000
    seed: int = 0

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
        features = _zero_failed(self._features(images, reference_features, "reference_features", width=None))
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
        with the smallest p-value); ``qa_failed_features`` counts the radiomic features the extraction could not
        compute (NaN): such an image is flagged for that reason, never scored as if they were 0."""
        if not hasattr(self, "threshold_"):
            raise NotFittedError(self)
        components = self._components(_images(images, "images"), features)
        score, reason = self._combine(components)
        table = components.add_prefix("qa_")
        failed = components["failed_features"].to_numpy() > 0
        table["qa_score"] = score
        table["qa_flag"] = (score > self.threshold_) | failed
        table["qa_reason"] = np.where(failed, "failed_features", self._specific_reason(components, reason))
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
        raw = self._features(images, features, "features", width=self.scaler_.keep_.size)
        components.insert(0, "knn_distance", self._knn_distance(self.scaler_.transform(_zero_failed(raw)), leave_one_out=False))
        components["failed_features"] = np.isnan(raw).sum(axis=1)
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
        return values

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


def _zero_failed(features: np.ndarray) -> np.ndarray:
    """Features with the ones the extraction could not compute (NaN) at 0, for the k-NN distance only: `score`
    counts and flags them (``qa_failed_features``)."""
    return np.where(np.isnan(features), 0.0, features)
