"""Multi-modal fidelity: clinical records and images generated together (`genrad.synthesis.clinical`).

`multimodal_fidelity` covers the table (SDMetrics quality report: column shapes,
KS / TV complement, and column-pair trends, correlation / contingency similarity), the images
(FRD and per-feature distances on radiomic features) and the *cross-modal link*: the correlation
between a covariate and a radiomic feature in the generated pairs must match the real one
(`cross_modal_link`: inside the real bootstrap interval, and a difference whose bootstrap
interval contains 0). A shuffled-pairs control (covariates permuted within class) shows the
check has power: it must fail where a link exists.

Correlations are computed within class (Spearman 1904 by default), then combined over classes on
Fisher's z scale with the real class shares as weights: a generator which gets the class right but
ignores the covariates does not pass on the strength of class differences alone, and a synthetic set
with another class ratio (e.g. balanced) is compared on the real set's footing.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from genrad.core import derive_seed
from genrad.data.cohort import Split
from genrad.errors import InputError, require_extra
from genrad.evaluation.stats import percentile_interval
from genrad.synthesis.clinical import LABEL_COLUMN, column_types

N_BOOTSTRAP = 1000
CONFIDENCE = 0.95
METHODS = ("spearman", "pearson")


class RetrievalGenerator:
    """A reference "generator" for calibrating the cross-modal check: for each requested class and
    covariate row it returns an image of that class from `pool` drawn among the `k` whose covariates
    are nearest (standardised Euclidean distance), or any image of the class when `use_covariates`
    is False (a class-only generator that ignores the records).

    With a large pool from the same source as the real data (e.g. an independent phantom draw) it
    is a truth-conditioned generator: its pairs should pass the check and the class-only variant
    should fail it. Keep the pool much larger than the request and `k` > 1: repeated images inflate
    correlations.
    """

    def __init__(self, pool: Split, covariates: Sequence[str], *, k: int = 20, use_covariates: bool = True) -> None:
        self.pool = pool
        self.covariates = tuple(covariates)
        self.k = k
        self.use_covariates = use_covariates

    def sample(self, n: int, *, labels: Any, covariates: pd.DataFrame, generator: Any) -> Any:
        import torch

        if self.pool.clinical is None:
            raise InputError("a pool with a clinical table", "none", "use a pool split with clinical columns", source="pool")
        values = self.pool.clinical[list(self.covariates)].to_numpy(np.float64)
        centre, scale = values.mean(axis=0), values.std(axis=0)
        scale = np.where(scale > 0, scale, 1.0)
        pool_z = (values - centre) / scale
        wanted = (covariates[list(self.covariates)].to_numpy(np.float64) - centre) / scale
        picks = torch.randint(0, 2**31 - 1, (n,), generator=generator).numpy()
        images = []
        for label, row, pick in zip(np.asarray(labels), wanted, picks, strict=True):
            members = np.flatnonzero(self.pool.labels == label)
            if self.use_covariates:
                distance = ((pool_z[members] - row) ** 2).sum(axis=1)
                members = members[np.argsort(distance, kind="stable")[: self.k]]
            images.append(self.pool.images[members[pick % len(members)]])
        return torch.from_numpy(np.stack(images))


def _row_correlation(x: np.ndarray, y: np.ndarray, method: str) -> np.ndarray:
    """Correlation of each row pair of ``(B, n)`` arrays: Pearson, or Pearson of the ranks (Spearman)."""
    if method == "spearman":
        x, y = rankdata(x, axis=1), rankdata(y, axis=1)
    x = x - x.mean(axis=1, keepdims=True)
    y = y - y.mean(axis=1, keepdims=True)
    denominator = np.sqrt((x * x).sum(axis=1) * (y * y).sum(axis=1))
    return np.where(denominator > 0, (x * y).sum(axis=1) / np.where(denominator > 0, denominator, 1.0), np.nan)


def _combine(per_class: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted mean of per-class correlations ``(K, B)`` on Fisher's z scale (Fisher 1921): tanh(sum w atanh r)."""
    z = np.arctanh(np.clip(per_class, -1 + 1e-12, 1 - 1e-12))
    return np.tanh(np.einsum("k,kb->b", weights, z))


def bootstrap_correlation(
    x: np.ndarray,
    y: np.ndarray,
    *,
    labels: np.ndarray | None = None,
    weights: Mapping[int, float] | None = None,
    method: str = "spearman",
    n_bootstrap: int = N_BOOTSTRAP,
    seed: int = 0,
) -> tuple[float, np.ndarray]:
    """Correlation of `x` and `y`, within class when `labels` are given, and its `n_bootstrap` bootstrap replicates.

    Within class: the correlation of each class (3 pairs or more) is computed separately and the
    classes are combined on Fisher's z scale with `weights` (default: each class's share of the
    pairs). Fixing the weights (e.g. to the real class shares) makes sets with different class
    ratios comparable. Replicates resample pairs with replacement within each class (Efron &
    Tibshirani 1993), seeded by ``derive_seed(seed, "correlation")``.
    """
    if method not in METHODS:
        raise InputError(f"a method in {METHODS}", repr(method), "use 'spearman' or 'pearson'")
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    labels = np.zeros(len(x), dtype=np.int64) if labels is None else np.asarray(labels)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y, labels = x[keep], y[keep], labels[keep]
    classes = [int(k) for k in np.unique(labels) if (labels == k).sum() >= 3]
    if weights is not None:
        classes = [k for k in classes if weights.get(k, 0) > 0]
    if not classes:
        raise InputError("at least 3 finite pairs in a weighted class", f"{len(x)} pairs", "correlate larger sets")
    members = [np.flatnonzero(labels == k) for k in classes]
    w = np.array([len(m) if weights is None else weights[k] for k, m in zip(classes, members, strict=True)], dtype=np.float64)
    w /= w.sum()
    r = float(_combine(np.array([_row_correlation(x[m][None], y[m][None], method) for m in members]), w)[0])
    rng = np.random.default_rng(derive_seed(seed, "correlation"))
    per_class = []
    for m in members:
        boot = rng.choice(m, (n_bootstrap, len(m)))
        per_class.append(_row_correlation(x[boot], y[boot], method))
    return r, _combine(np.array(per_class), w) if n_bootstrap else np.empty(0)


def correlation(x: np.ndarray, y: np.ndarray, **options: Any) -> tuple[float, list[float | None]]:
    """`bootstrap_correlation` (same options) as the estimate and its percentile interval ([None, None] when
    ``n_bootstrap == 0``)."""
    r, values = bootstrap_correlation(x, y, **options)
    return r, percentile_interval(values, CONFIDENCE)


def covariate_feature_correlations(
    covariates: pd.DataFrame,
    features: pd.DataFrame,
    pairs: Sequence[tuple[str, str]],
    *,
    labels: np.ndarray | None = None,
    weights: Mapping[int, float] | None = None,
    method: str = "spearman",
    n_bootstrap: int = N_BOOTSTRAP,
    seed: int = 0,
) -> pd.DataFrame:
    """For each (covariate, feature) pair: ``r`` and its bootstrap interval ``ci_low`` / ``ci_high``.

    Rows of `covariates` and `features` are the same images in the same order; with `labels` the
    correlation is within class (see `correlation`).
    """
    if len(covariates) != len(features):
        raise InputError(
            "one covariate row per feature row", f"{len(covariates)} and {len(features)} rows",
            "pass the clinical table and the radiomic features of the same images, in the same order",
        )
    rows = []
    for covariate, feature in pairs:
        for name, table in ((covariate, covariates), (feature, features)):
            if name not in table.columns:
                raise InputError(f"a column named {name!r}", f"columns {list(table.columns)[:8]}...", "fix the pair names")
        r, ci = correlation(
            covariates[covariate].to_numpy(float), features[feature].to_numpy(float),
            labels=labels, weights=weights, method=method, n_bootstrap=n_bootstrap, seed=seed,
        )
        low, high = (np.nan if bound is None else bound for bound in ci)
        rows.append({"covariate": covariate, "feature": feature, "r": r, "ci_low": low, "ci_high": high, "n": len(covariates)})
    return pd.DataFrame(rows, columns=["covariate", "feature", "r", "ci_low", "ci_high", "n"])


class CovariateFeatureCorrelations:
    """Streaming `covariate_feature_correlations`: `update` with batches of pairs, `compute`, `reset`.

    Rank correlations need every value, so the rows of the requested columns are kept.
    """

    def __init__(self, pairs: Sequence[tuple[str, str]], *, method: str = "spearman", n_bootstrap: int = N_BOOTSTRAP,
                 seed: int = 0) -> None:
        self.pairs = list(pairs)
        self.method = method
        self.n_bootstrap = n_bootstrap
        self.seed = seed
        self.reset()

    def update(self, covariates: pd.DataFrame, features: pd.DataFrame, labels: np.ndarray | None = None) -> CovariateFeatureCorrelations:
        self._covariates.append(covariates[[c for c, _ in self.pairs]].reset_index(drop=True))
        self._features.append(features[[f for _, f in self.pairs]].reset_index(drop=True))
        self._labels.append(np.zeros(len(covariates), np.int64) if labels is None else np.asarray(labels))
        return self

    def compute(self) -> pd.DataFrame:
        if not self._covariates:
            raise InputError("at least one update", "none", "call update(covariates, features) before compute()")
        return covariate_feature_correlations(
            pd.concat(self._covariates, ignore_index=True), pd.concat(self._features, ignore_index=True), self.pairs,
            labels=np.concatenate(self._labels), method=self.method, n_bootstrap=self.n_bootstrap, seed=self.seed,
        )

    def reset(self) -> None:
        self._covariates: list[pd.DataFrame] = []
        self._features: list[pd.DataFrame] = []
        self._labels: list[np.ndarray] = []


def strongest_pairs(
    covariates: pd.DataFrame, features: pd.DataFrame, columns: Sequence[str], *, labels: np.ndarray | None = None,
    method: str = "spearman",
) -> list[tuple[str, str]]:
    """For each covariate in `columns`, the radiomic feature most correlated with it (largest ``|r|``)."""
    numeric = features.select_dtypes("number")
    numeric = numeric.loc[:, numeric.std() > 0]
    pairs = []
    for covariate in columns:
        values = {
            feature: abs(correlation(covariates[covariate].to_numpy(float), numeric[feature].to_numpy(float),
                                     labels=labels, method=method, n_bootstrap=0)[0])
            for feature in numeric.columns if not feature.startswith("diagnostics_")
        }
        pairs.append((covariate, max(values, key=lambda f: np.nan_to_num(values[f], nan=-1.0))))
    return pairs


def cross_modal_link(
    real_covariates: pd.DataFrame,
    real_features: pd.DataFrame,
    synthetic_covariates: pd.DataFrame,
    synthetic_features: pd.DataFrame,
    pairs: Sequence[tuple[str, str]],
    *,
    real_labels: np.ndarray | None = None,
    synthetic_labels: np.ndarray | None = None,
    method: str = "spearman",
    n_bootstrap: int = N_BOOTSTRAP,
    seed: int = 0,
) -> pd.DataFrame:
    """Does each covariate-feature correlation of the generated pairs match the real one?

    One row per pair, with bootstrap intervals (real and synthetic sets resampled independently):

    - ``r`` [``ci_low``, ``ci_high``]: the real correlation; ``r_synthetic`` [...]: the synthetic one;
    - ``within_real_ci``: the synthetic r lies inside the real interval;
    - ``difference`` [``difference_ci_low``, ``difference_ci_high``]: synthetic minus real r, whose
      interval accounts for the sampling error of both sets; ``reproduced``: it contains 0;
    - the shuffled-pairs control: synthetic covariates permuted within class (seed-derived), giving
      ``r_shuffled`` and ``control_reproduced`` (same test), which must be False where a link exists.

    With labels, classes are weighted by their share of the real pairs in every correlation.
    """
    weights = None
    if real_labels is not None and synthetic_labels is not None:
        classes, counts = np.unique(real_labels, return_counts=True)
        weights = {int(k): n / counts.sum() for k, n in zip(classes, counts, strict=True)}
    shuffled_covariates = shuffle_within_class(synthetic_covariates, synthetic_labels, seed=seed)
    options: dict[str, Any] = {"weights": weights, "method": method, "n_bootstrap": n_bootstrap}
    rows = []
    for covariate, feature in pairs:
        for name, table in ((covariate, real_covariates), (covariate, synthetic_covariates),
                            (feature, real_features), (feature, synthetic_features)):
            if name not in table.columns:
                raise InputError(f"a column named {name!r}", f"columns {list(table.columns)[:8]}", "fix the pair names")
        real_feature = real_features[feature].to_numpy(float)
        synthetic_feature = synthetic_features[feature].to_numpy(float)
        r, real_boot = bootstrap_correlation(
            real_covariates[covariate].to_numpy(float), real_feature, labels=real_labels, seed=derive_seed(seed, "real"), **options
        )
        r_synthetic, synthetic_boot = bootstrap_correlation(
            synthetic_covariates[covariate].to_numpy(float), synthetic_feature, labels=synthetic_labels,
            seed=derive_seed(seed, "synthetic"), **options,
        )
        r_shuffled, shuffled_boot = bootstrap_correlation(
            shuffled_covariates[covariate].to_numpy(float), synthetic_feature, labels=synthetic_labels,
            seed=derive_seed(seed, "shuffled"), **options,
        )
        real_ci, synthetic_ci = percentile_interval(real_boot, CONFIDENCE), percentile_interval(synthetic_boot, CONFIDENCE)
        difference_ci = percentile_interval(synthetic_boot - real_boot, CONFIDENCE)
        control_ci = percentile_interval(shuffled_boot - real_boot, CONFIDENCE)
        rows.append({
            "covariate": covariate, "feature": feature,
            "r": r, "ci_low": real_ci[0], "ci_high": real_ci[1], "n_real": len(real_feature),
            "r_synthetic": r_synthetic, "synthetic_ci_low": synthetic_ci[0], "synthetic_ci_high": synthetic_ci[1],
            "n_synthetic": len(synthetic_feature),
            "within_real_ci": bool(real_ci[0] <= r_synthetic <= real_ci[1]),
            "difference": r_synthetic - r, "difference_ci_low": difference_ci[0], "difference_ci_high": difference_ci[1],
            "reproduced": bool(difference_ci[0] <= 0 <= difference_ci[1]),
            "r_shuffled": r_shuffled,
            "control_reproduced": bool(control_ci[0] <= 0 <= control_ci[1]),
        })
    return pd.DataFrame(rows)


def shuffle_within_class(table: pd.DataFrame, labels: np.ndarray | None, *, seed: int) -> pd.DataFrame:
    """The rows of `table` permuted within each class (seeded): breaks the pairing, keeps class marginals."""
    labels = np.zeros(len(table), np.int64) if labels is None else np.asarray(labels)
    rng = np.random.default_rng(derive_seed(seed, "shuffle"))
    order = np.arange(len(table))
    for k in np.unique(labels):
        where = np.flatnonzero(labels == k)
        order[where] = rng.permutation(where)
    return table.iloc[order].reset_index(drop=True)


def table_fidelity(real: pd.DataFrame, synthetic: pd.DataFrame) -> dict[str, Any]:
    """SDMetrics quality report of a synthetic clinical table (Patki et al. 2016).

    ``column_shapes``: mean over columns of the KS complement (numbers) / TV complement (categories);
    ``column_pair_trends``: mean over column pairs of correlation similarity / contingency similarity;
    ``score``: their mean; ``columns`` and ``pairs``: the per-column and per-pair scores.
    """
    QualityReport = require_extra("sdmetrics.reports", "clinical-table fidelity").QualityReport

    missing = sorted(set(real.columns) - set(synthetic.columns))
    if missing:
        raise InputError(
            f"synthetic records with the real clinical columns {list(real.columns)}", f"missing {missing}",
            "generate the records with sample_clinical on the real table",
        )
    synthetic = synthetic[list(real.columns)]
    report = QualityReport()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report.generate(
            {"clinical": real}, {"clinical": synthetic}, {"tables": {"clinical": {"columns": column_types(real)}}}, verbose=False
        )
    properties = report.get_properties().set_index("Property")["Score"]
    shapes = report.get_details("Column Shapes")
    trends = report.get_details("Column Pair Trends")
    return {
        "score": float(report.get_score()),
        "column_shapes": float(properties["Column Shapes"]),
        "column_pair_trends": float(properties["Column Pair Trends"]),
        "columns": {row["Column"]: {"metric": row["Metric"], "score": float(row["Score"])} for _, row in shapes.iterrows()},
        "pairs": [
            {"columns": [row["Column 1"], row["Column 2"]], "metric": row["Metric"], "score": _float(row["Score"])}
            for _, row in trends.iterrows()
        ],
    }


def _float(value: Any) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def multimodal_fidelity(
    real: Split,
    synthetic: Split,
    *,
    pairs: Sequence[tuple[str, str]] | None = None,
    covariates: Sequence[str] = ("lesion_diameter_mm",),
    select_on: Split | None = None,
    feature_set: str = "frd_v1",
    engine: str = "fast",
    method: str = "spearman",
    n_bootstrap: int = N_BOOTSTRAP,
    seed: int = 0,
    progress: bool = False,
) -> dict[str, Any]:
    """Fidelity of image + clinical pairs: the table, the images and the cross-modal link.

    `pairs` (covariate, radiomic feature) default to, for each of `covariates`, the feature most
    correlated with it (`strongest_pairs`) in `select_on`: real pairs held out from `real` (e.g. the
    validation split), so that the choice does not inflate the real correlation it is then tested
    against (winner's curse); without `select_on` the choice is made on `real` itself. Correlations
    are within class.
    """
    from genrad.evaluation.fidelity.distances import feature_distances
    from genrad.evaluation.fidelity.frd import frd
    from genrad.radiomics import extract

    for split, role in ((real, "real"), (synthetic, "synthetic"), (select_on, "select_on")):
        if split is not None and split.clinical is None:
            raise InputError(f"a clinical table with the {role} images", "none",
                             "generate image + clinical pairs (genrad generate --with-clinical --data REAL, or generate_pairs)",
                             source=role)
    real_features = extract(real, feature_set=feature_set, engine=engine, progress=progress)
    synthetic_features = extract(synthetic, feature_set=feature_set, engine=engine, progress=progress)
    if pairs is None:
        chooser = real if select_on is None else select_on
        chooser_features = (real_features if select_on is None
                            else extract(select_on, feature_set=feature_set, engine=engine, progress=progress))
        pairs = strongest_pairs(chooser.clinical, chooser_features, covariates, labels=chooser.labels, method=method)
    link = cross_modal_link(
        real.clinical, real_features, synthetic.clinical, synthetic_features, pairs,
        real_labels=real.labels, synthetic_labels=synthetic.labels, method=method, n_bootstrap=n_bootstrap, seed=seed,
    )
    names = [c for c in real_features.select_dtypes("number").columns if not c.startswith("diagnostics_")]
    real_matrix, synthetic_matrix = real_features[names].to_numpy(float), synthetic_features[names].to_numpy(float)
    distances = feature_distances(real_matrix, synthetic_matrix, names)
    clinical_real = real.clinical.assign(**{LABEL_COLUMN: real.labels.astype(str)})
    clinical_synthetic = synthetic.clinical.assign(**{LABEL_COLUMN: synthetic.labels.astype(str)})
    return {
        "table": table_fidelity(clinical_real, clinical_synthetic),
        "images": {
            "frd": frd(real_matrix, synthetic_matrix),
            "feature_set": feature_set,
            "worst_features": distances.head(10).to_dict(orient="records"),
        },
        "cross_modal": link.to_dict(orient="records"),
        "cross_modal_reproduced": bool(link["reproduced"].all()),
        "method": method,
        "n_bootstrap": n_bootstrap,
        "seed": seed,
    }
