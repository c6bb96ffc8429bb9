"""Shared statistics for the evaluation metrics: running moments, reference z-scoring, a reservoir
sample for bounded-memory streaming, the rank (Mann-Whitney) AUC, and percentile bootstrap intervals.

Everything is float64 and seeded through an explicit ``numpy.random.Generator``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy.stats import rankdata
from scipy.stats import t as student_t

from genrad.errors import InputError

# A reference standard deviation at or below this fraction of |mean| counts as a constant feature.
_CONSTANT_RTOL = 1e-9


def as_matrix(features: np.ndarray, *, name: str = "features") -> np.ndarray:
    """A 2-D float64 feature matrix ``(n_samples, n_features)``; raise `InputError` otherwise."""
    matrix = np.asarray(features, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] == 0 or matrix.shape[1] == 0:
        raise InputError(
            "a non-empty 2-D feature matrix (n_samples, n_features)",
            f"an array of shape {matrix.shape}",
            "pass one row of radiomic features per image (genrad.radiomics.extract)",
            source=name,
        )
    return matrix


def drop_nan_rows(features: np.ndarray) -> np.ndarray:
    """Rows without NaN (images whose extraction failed are left out, as frd-score does)."""
    return features[~np.isnan(features).any(axis=1)]


class Moments:
    """Running count, mean and scatter matrix of feature rows in float64.

    Batches are merged with the pairwise update of Chan, Golub & LeVeque (1979), so memory is
    ``O(d^2)`` whatever the number of rows and no large sums of squares cancel.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget every row seen."""
        self.n = 0
        self.mean: np.ndarray | None = None
        self.scatter: np.ndarray | None = None

    def update(self, batch: np.ndarray) -> Moments:
        """Add rows ``(n, d)``; returns self."""
        batch = np.asarray(batch, dtype=np.float64)
        if batch.shape[0] == 0:
            return self
        batch_mean = batch.mean(axis=0)
        centred = batch - batch_mean
        batch_scatter = centred.T @ centred
        if self.mean is None or self.scatter is None:
            self.n, self.mean, self.scatter = batch.shape[0], batch_mean, batch_scatter
            return self
        if batch.shape[1] != self.mean.shape[0]:
            raise InputError(
                f"{self.mean.shape[0]} features per row",
                f"{batch.shape[1]}",
                "extract every batch with the same feature set",
            )
        n_a, n_b = self.n, batch.shape[0]
        total = n_a + n_b
        delta = batch_mean - self.mean
        self.mean = self.mean + delta * (n_b / total)
        self.scatter = self.scatter + batch_scatter + np.outer(delta, delta) * (n_a * n_b / total)
        self.n = total
        return self

    @classmethod
    def of(cls, features: np.ndarray) -> Moments:
        """Moments of a whole matrix."""
        return cls().update(features)

    def cov(self) -> np.ndarray:
        """Unbiased covariance (ddof=1), as `numpy.cov`."""
        assert self.scatter is not None
        return self.scatter / max(self.n - 1, 1)

    def std(self) -> np.ndarray:
        """Population standard deviation (ddof=0), as `numpy.std`."""
        assert self.scatter is not None
        return np.sqrt(np.clip(np.diag(self.scatter) / max(self.n, 1), 0.0, None))


class Standardizer:
    """z-score features with a reference set's mean and (population) standard deviation.

    Features that are constant or non-finite in the reference are dropped (``keep_``), as frd-score
    v1 drops the columns its reference normalisation turns into NaN / inf (Konz et al. 2026, eq. 3).
    """

    def fit(self, reference: np.ndarray | Moments) -> Standardizer:
        moments = reference if isinstance(reference, Moments) else Moments.of(drop_nan_rows(as_matrix(reference)))
        if moments.mean is None:
            raise InputError("at least one reference row without NaN", "none", "check the feature extraction")
        mean, std = moments.mean, moments.std()
        self.mean_ = mean
        self.scale_ = np.where(std > 0, std, 1.0)
        self.keep_ = np.isfinite(mean) & np.isfinite(std) & (std > _CONSTANT_RTOL * np.abs(mean))
        return self

    def fit_transform(self, reference: np.ndarray) -> np.ndarray:
        """Fit on `reference` (rows with NaN dropped) and return its z-scores."""
        real = drop_nan_rows(as_matrix(reference, name="reference"))
        return self.fit(real).transform(real)

    def transform(self, features: np.ndarray) -> np.ndarray:
        """z-scores of the kept features, ``(n, keep_.sum())``."""
        features = np.asarray(features, dtype=np.float64)
        return (features[:, self.keep_] - self.mean_[self.keep_]) / self.scale_[self.keep_]


def clean_pair(real: np.ndarray, synthetic: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both matrices as float64 without NaN rows; raise `InputError` when their widths differ."""
    real = drop_nan_rows(as_matrix(real, name="real"))
    synthetic = drop_nan_rows(as_matrix(synthetic, name="synthetic"))
    if real.shape[1] != synthetic.shape[1]:
        raise InputError(
            f"the same features in both sets ({real.shape[1]} real columns)",
            f"{synthetic.shape[1]} synthetic columns",
            "extract both sets with the same feature set and engine",
        )
    return real, synthetic


def normalise_pair(real: np.ndarray, synthetic: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Drop NaN rows, z-score both sets with the real set's statistics and keep the features that are
    finite in both: returns ``(real_z, synthetic_z, kept_feature_mask)``."""
    real, synthetic = clean_pair(real, synthetic)
    if real.shape[0] < 2 or synthetic.shape[0] < 2:
        raise InputError(
            "at least 2 images without NaN features in each set",
            f"{real.shape[0]} real and {synthetic.shape[0]} synthetic",
            "compare larger sets",
        )
    scaler = Standardizer().fit(real)
    keep = scaler.keep_ & np.isfinite(synthetic).all(axis=0)
    scaler.keep_ = keep
    return scaler.transform(real), scaler.transform(synthetic), keep


class Reservoir:
    """A uniform random sample of at most ``capacity`` rows from a stream (Vitter 1985, algorithm R)."""

    def __init__(self, capacity: int, seed: int = 0) -> None:
        self.capacity = capacity
        self.seed = seed
        self.reset()

    def reset(self) -> None:
        self.seen = 0
        self._rows: np.ndarray | None = None
        self._rng = np.random.default_rng(self.seed)

    def update(self, batch: np.ndarray) -> Reservoir:
        batch = np.asarray(batch, dtype=np.float64)
        if self._rows is None:
            self._rows = np.empty((0, batch.shape[1]))
        free = min(self.capacity - self._rows.shape[0], batch.shape[0])
        if free > 0:
            self._rows = np.concatenate([self._rows, batch[:free]])
        rest = batch[free:]
        if rest.shape[0]:
            stream_index = self.seen + free + np.arange(rest.shape[0])
            slots = self._rng.integers(0, stream_index + 1)
            chosen = slots < self.capacity
            self._rows[slots[chosen]] = rest[chosen]
        self.seen += batch.shape[0]
        return self

    @property
    def rows(self) -> np.ndarray:
        """The sampled rows (all rows while fewer than ``capacity`` were seen)."""
        if self._rows is None:
            raise InputError("at least one update", "an empty stream", "call update(features) before compute()")
        return self._rows


class ReservoirMetric:
    """Base of the streaming metrics that compare a fixed reference with synthetic rows kept in a uniform
    `Reservoir` of ``max_samples`` rows (bounded memory): `update` with batches, `compute` (subclass), `reset`."""

    def __init__(self, reference: np.ndarray, *, max_samples: int = 10_000, seed: int = 0) -> None:
        self.reference = drop_nan_rows(as_matrix(reference, name="reference"))
        self.max_samples = max_samples
        self.seed = seed
        self.reset()

    def reset(self) -> None:
        self.reservoir = Reservoir(self.max_samples, seed=self.seed)

    def update(self, features: np.ndarray) -> ReservoirMetric:
        self.reservoir.update(drop_nan_rows(as_matrix(features, name="synthetic")))
        return self


def subsample(features: np.ndarray, size: int | None, rng: np.random.Generator) -> np.ndarray:
    """At most ``size`` rows drawn without replacement (all rows, in order, when there are fewer)."""
    if size is None or features.shape[0] <= size:
        return features
    return features[np.sort(rng.choice(features.shape[0], size=size, replace=False))]


def rank_auc(scores: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """Row-wise ROC AUC by the Mann-Whitney U statistic, ``(U = rank sum of positives - n1 (n1 + 1) / 2) / (n1 n0)``
    (Hanley & McNeil 1982; average ranks for ties, the ROC's 1/2 credit): ``scores`` and boolean ``positive`` of
    shape ``(rows, n)`` or ``(n,)`` (then a scalar array). The one rank AUC of genrad's metrics."""
    scores, positive = np.asarray(scores), np.asarray(positive, dtype=bool)
    ranks = rankdata(scores, axis=-1)
    n_pos = positive.sum(axis=-1)
    n_neg = positive.shape[-1] - n_pos
    return ((ranks * positive).sum(axis=-1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def bootstrap_ci(estimate: float, replicates: np.ndarray, level: float = 0.95, *, recentre: bool = True,
                 bounds: tuple[float, float] = (-np.inf, np.inf)) -> list[float | None]:
    """Percentile interval of bootstrap replicates (Efron & Tibshirani 1993, sec. 13.3).

    With `recentre`, the replicates are first shifted by the bootstrap bias ``mean(replicates) - estimate``
    (sec. 10.6): resampling with replacement biases sample-size-sensitive statistics such as FRD (duplicates
    shrink the effective sample); the shift keeps the interval's width but puts it around the estimate.
    Without it the interval stays inside the statistic's range (an AUC's [0, 1]); with it, the shifted interval
    is clipped to that range, `bounds`. Non-finite replicates are ignored; ``[None, None]`` without any."""
    values = np.asarray(replicates, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0 or not np.isfinite(estimate):
        return [None, None]
    shift = values.mean() - estimate if recentre else 0.0
    low, high = percentile_interval(values - shift, level)
    if low is None or high is None:  # no finite replicate
        return [None, None]
    return [float(np.clip(low, *bounds)), float(np.clip(high, *bounds))]


def percentile_interval(replicates: np.ndarray, level: float = 0.95) -> list[float | None]:
    """The central `level` share of the finite replicates (Efron & Tibshirani 1993, sec. 13.3);
    ``[None, None]`` without any."""
    values = np.asarray(replicates, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return [None, None]
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(values, [tail, 1.0 - tail])
    return [float(low), float(high)]


def bootstrap_p_value(replicates: np.ndarray) -> float:
    """Two-sided bootstrap p-value of "the statistic is 0": twice the smaller tail share beyond 0, at most 1."""
    values = np.asarray(replicates, dtype=np.float64)
    return min(1.0, 2.0 * min(float(np.mean(values <= 0.0)), float(np.mean(values >= 0.0))))


def stratified_bootstrap_index(labels: np.ndarray, n_bootstrap: int, rng: np.random.Generator) -> np.ndarray:
    """``(n_bootstrap, N)`` resamples of ``arange(N)``, each drawn with replacement within every class of
    `labels`, so every resample keeps the class counts (and every class-dependent metric stays defined)."""
    labels = np.asarray(labels)
    index = np.empty((n_bootstrap, len(labels)), dtype=np.int64)
    start = 0
    for k in np.unique(labels):
        members = np.flatnonzero(labels == k)
        index[:, start : start + len(members)] = members[rng.integers(0, len(members), size=(n_bootstrap, len(members)))]
        start += len(members)
    return index


def bootstrap_means(indicators: np.ndarray, n_bootstrap: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap replicates of column means: resample rows of ``indicators`` ``(n,)`` or ``(n, m)``."""
    n = indicators.shape[0]
    index = rng.integers(0, n, size=(n_bootstrap, n))
    return indicators[index].mean(axis=1)


def bootstrap_pairs(
    statistic: Callable[[np.ndarray, np.ndarray], float],
    real: np.ndarray,
    synthetic: np.ndarray,
    n_bootstrap: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Replicates of ``statistic(real*, synthetic*)`` with both sets resampled with replacement."""
    replicates = np.empty(n_bootstrap)
    for b in range(n_bootstrap):
        real_b = real[rng.integers(0, real.shape[0], real.shape[0])]
        synthetic_b = synthetic[rng.integers(0, synthetic.shape[0], synthetic.shape[0])]
        replicates[b] = statistic(real_b, synthetic_b)
    return replicates


def t_interval(values: Sequence[float] | np.ndarray, level: float = 0.95) -> dict[str, Any]:
    """Mean and Student-t confidence interval at `level` ``mean +- t_(n-1) s / sqrt(n)`` (None for one value)."""
    array = np.asarray(values, dtype=np.float64)
    mean = float(array.mean())
    if len(array) < 2:
        return {"mean": mean, "ci": None, "values": array.tolist()}
    half = float(student_t.ppf(0.5 + level / 2, len(array) - 1) * array.std(ddof=1) / np.sqrt(len(array)))
    return {"mean": mean, "ci": [mean - half, mean + half], "values": array.tolist()}
