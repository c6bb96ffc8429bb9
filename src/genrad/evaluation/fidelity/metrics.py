"""`fidelity(real, synthetic)`: every set-level fidelity metric, each with a bootstrap confidence
interval and its *real floor*, the same metric between two disjoint real sets of matching sizes.

A number is never shown without its reference: an FRD of 3.2 means little, an FRD of 3.2 against a
real floor of 3.1 says the synthetic set is about as far from the reference as other real images are.

Metrics (all on radiomic features; ``real`` is the reference whose statistics z-score everything):
FRD v1 and FRD per class (`genrad.evaluation.fidelity.frd`), KID (`kid`), precision / recall / density /
coverage (`prdc`), alpha-precision / beta-recall / authenticity (`alpha`), the classifier two-sample
AUC (`c2st`) and per-feature distances (`distances`).

Confidence intervals are percentile bootstraps (``n_bootstrap`` replicates). Every random draw comes from its own
stream, ``derive_seed(seed, "fidelity", role, name)`` (the class mix, the subsample, the real floor and each metric's
bootstrap), so computing one more metric, or one fewer, leaves every other metric's numbers unchanged:

- FRD, KID and the mean per-feature distance resample both sets;
- PRDC and alpha / beta resample their per-sample terms with the k-NN manifolds held fixed
  (resampling the manifolds themselves would put duplicates at distance 0 and bias every ball);
- the C2ST AUC resamples the out-of-fold classifier scores within each class.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from genrad.core import derive_seed
from genrad.errors import InputError
from genrad.evaluation.fidelity.features import FeatureTable, aligned, describe, feature_table
from genrad.provenance import versions

METRICS = (
    "frd",
    "kid",
    "precision",
    "recall",
    "density",
    "coverage",
    "alpha_precision",
    "beta_recall",
    "authenticity",
    "c2st_auc",
)
UNIT_RANGE = ("precision", "recall", "coverage", "alpha_precision", "beta_recall", "authenticity", "c2st_auc")
"""Metrics that are shares or AUCs: their intervals stay inside [0, 1] (density and the distances are only >= 0
or unbounded)."""
ALPHA_STEPS = 30
CLASS_MIXES = ("reference", "as_given")


@dataclass(frozen=True)
class _PairResult:
    """Every metric between two sets: values, bootstrap replicates, the per-feature table."""

    values: dict[str, float]
    replicates: dict[str, np.ndarray]
    table: pd.DataFrame
    dropped: list[str]


def check_settings(*, n_bootstrap: int = 100, confidence: float = 0.95, k: int = 5, max_samples: int = 5000) -> None:
    """Refuse `fidelity` settings out of range (callers check before they extract any feature)."""
    if n_bootstrap < 0 or not 0.0 < confidence < 1.0 or k < 1 or max_samples < 2:
        raise InputError(
            "n_bootstrap >= 0, 0 < confidence < 1, k >= 1 and max_samples >= 2",
            f"n_bootstrap={n_bootstrap}, confidence={confidence}, k={k}, max_samples={max_samples}",
            "pass valid settings",
            source="fidelity",
        )


def fidelity(
    real: Any,
    synthetic: Any,
    *,
    feature_set: str = "frd_v1",
    engine: str | None = None,
    seed: int = 0,
    n_bootstrap: int = 100,
    floor_real: Any = None,
    k: int = 5,
    max_samples: int = 5000,
    confidence: float = 0.95,
    class_names: Sequence[str] | None = None,
    workers: int = 1,
    class_mix: str = "reference",
    metrics: Sequence[str] = METRICS,
) -> dict[str, Any]:
    """Set-level fidelity of ``synthetic`` against the real reference ``real``.

    Args:
        real, synthetic, floor_real: image sets or features (see `feature_table`).
        feature_set, engine, workers: radiomic extraction (`genrad.radiomics.extract`).
        seed: seeds every subsample, bootstrap and classifier (same seed, same numbers).
        n_bootstrap: replicates per confidence interval (0: no intervals).
        floor_real: real images disjoint from ``real`` (e.g. the training split when ``real`` is the
            test split); the real floor compares ``real`` with a subsample of it of the synthetic
            set's size. Without it, ``real`` is split into two disjoint halves.
        k: neighbours for precision / recall / density / coverage (Naeem et al. 2020 use 5).
        max_samples: synthetic rows used by the neighbour, kernel and classifier metrics (a seeded
            subsample); FRD uses every row.
        confidence: level of the intervals.
        class_names: names for the per-class keys (default: the label values).
        class_mix: "reference": when both sets are labelled, the set-level metrics use a seeded per-class subsample
            of ``synthetic`` in the reference's class proportions (as many images as its classes allow), so that a
            class-balanced synthetic set is not scored as far from an imbalanced reference for its balance alone;
            "as_given": every synthetic image as it comes. FRD per class always uses every synthetic image.
        metrics: the set-level metrics to compute (a subset of `METRICS`); FRD per class and the per-feature
            distances always come.

    Returns:
        A JSON-ready dict: ``frd``, ``frd_per_class``, ``kid``, ``precision``, ``recall``, ``density``,
        ``coverage``, ``alpha_precision``, ``beta_recall``, ``authenticity``, ``c2st_auc``, each
        ``{"value", "ci", "real_floor"}``; ``features`` (per-feature table, worst first); and
        ``provenance``.
    """
    check_settings(n_bootstrap=n_bootstrap, confidence=confidence, k=k, max_samples=max_samples)
    if class_mix not in CLASS_MIXES:
        raise InputError(f"class_mix one of {CLASS_MIXES}", repr(class_mix), 'pass "reference" or "as_given"', source="fidelity")
    unknown = sorted(set(metrics) - set(METRICS))
    if unknown:
        raise InputError(f"metrics among {METRICS}", f"{unknown}", "drop them", source="fidelity")
    metrics = tuple(name for name in METRICS if name in metrics)
    options: dict[str, Any] = {"feature_set": feature_set, "engine": engine, "workers": workers}
    real_t = feature_table(real, name="real", **options)
    synthetic_t = aligned(feature_table(synthetic, name="synthetic", **options), real_t.names, "synthetic")
    floor_t = None if floor_real is None else aligned(feature_table(floor_real, name="floor_real", **options), real_t.names, "floor_real")
    settings: dict[str, Any] = {"k": k, "max_samples": max_samples, "seed": seed, "metrics": metrics}

    compared = matched_class_mix(synthetic_t, real_t.labels, stream(seed, "class_mix")) if class_mix == "reference" else synthetic_t
    n_compared = min(len(compared), max_samples)
    floor_reference, floor_other, floor_method = _floor_pair(
        real_t.values, None if floor_t is None else floor_t.values, n_compared, stream(seed, "floor"))
    main = _pair_metrics(real_t.values, compared.values, real_t.names, n_bootstrap=n_bootstrap, role="synthetic", **settings)
    floor = _pair_metrics(floor_reference, floor_other, real_t.names, n_bootstrap=0, role="floor", **settings)

    result: dict[str, Any] = {
        name: _entry(main.values[name], main.replicates[name], floor.values[name], confidence,
                     bounds=(0.0, 1.0) if name in UNIT_RANGE else (0.0, np.inf) if name == "density" else (-np.inf, np.inf))
        for name in metrics
    }
    result["frd_per_class"] = _frd_per_class(
        real_t, synthetic_t, floor_t, n_bootstrap=n_bootstrap, seed=seed, confidence=confidence,
        max_samples=max_samples, class_names=class_names
    )
    result["features"] = _features_entry(main, floor, confidence)
    result["provenance"] = {
        "versions": versions(),
        "seed": seed,
        "config": {
            "feature_set": feature_set,
            "engine": engine,
            "n_bootstrap": n_bootstrap,
            "confidence": confidence,
            "k": k,
            "max_samples": max_samples,
            "class_mix": class_mix,
            "metrics": list(metrics),
            "alpha_beta_steps": ALPHA_STEPS,
            "c2st": "quadratic logistic regression, 5-fold out-of-fold AUC, balanced sets",
            "normalisation": "z-score with the real reference's mean and population SD (frd-score v1, norm_ref='d1')",
            "ci": "percentile bootstrap re-centred on the estimate; FRD, KID, features: both sets resampled; "
            "PRDC, alpha/beta: per-sample terms resampled with the k-NN manifolds fixed; C2ST: out-of-fold scores",
        },
        "data": {
            "real": describe(real_t),
            "synthetic": {**describe(synthetic_t), "n_in_class_mix": len(compared), "n_used_by_neighbour_metrics": n_compared},
            "floor_real": None if floor_t is None else describe(floor_t),
        },
        "real_floor": {"method": floor_method, "n_reference": len(floor_reference), "n_compared": len(floor_other)},
        "features": {"n_columns": len(real_t.names), "n_used": len(main.table), "dropped": main.dropped},
    }
    return result


def stream(seed: int, *tags: object) -> np.random.Generator:
    """The random stream of one draw of `fidelity` (see the module docstring)."""
    return np.random.default_rng(derive_seed(seed, "fidelity", *tags))


def matched_class_mix(synthetic: FeatureTable, reference_labels: np.ndarray | None, rng: np.random.Generator) -> FeatureTable:
    """The largest seeded per-class subsample of `synthetic` whose class proportions are the reference's (within
    rounding); `synthetic` itself when either set is unlabelled or a reference class has no synthetic image."""
    if synthetic.labels is None or reference_labels is None:
        return synthetic
    classes, counts = np.unique(reference_labels, return_counts=True)
    available = np.array([int((synthetic.labels == c).sum()) for c in classes])
    if (available == 0).any():
        return synthetic
    shares = counts / counts.sum()
    total = float(np.min(available / shares))
    keep = np.zeros(len(synthetic), dtype=bool)
    for label, share, n_available in zip(classes, shares, available, strict=True):
        rows = np.flatnonzero(synthetic.labels == label)
        keep[rng.choice(rows, size=min(n_available, max(1, round(total * share))), replace=False)] = True
    return FeatureTable(synthetic.values[keep], synthetic.names, synthetic.labels[keep], synthetic.data_hash)


def _pair_metrics(
    real: np.ndarray,
    synthetic: np.ndarray,
    names: Sequence[str],
    *,
    metrics: Sequence[str],
    k: int,
    max_samples: int,
    seed: int,
    n_bootstrap: int,
    role: str,
) -> _PairResult:
    """The `metrics` and the per-feature distances between two raw feature matrices, with ``n_bootstrap`` replicates
    each, every bootstrap from its own stream ``(seed, role, metric)``."""
    from sklearn.metrics import roc_auc_score

    from genrad.evaluation.fidelity import alpha, c2st, prdc
    from genrad.evaluation.fidelity.distances import feature_distances, wasserstein_columns
    from genrad.evaluation.fidelity.frd import frd
    from genrad.evaluation.fidelity.kid import kid, kid_bootstrap
    from genrad.evaluation.stats import bootstrap_means, bootstrap_pairs, clean_pair, normalise_pair, subsample

    def rng(name: str) -> np.random.Generator:
        return stream(seed, role, name)

    real, synthetic = clean_pair(real, synthetic)
    capped = subsample(synthetic, max_samples, rng("subsample"))
    real_z, synthetic_z, kept = normalise_pair(real, capped)
    values: dict[str, float] = {}
    replicates: dict[str, np.ndarray] = {}
    if "frd" in metrics:
        values["frd"] = frd(real, synthetic)
        replicates["frd"] = bootstrap_pairs(frd, real, capped, n_bootstrap, rng("frd"))
    if "kid" in metrics:
        values["kid"] = kid(real_z, synthetic_z, normalise=False, seed=seed)
        replicates["kid"] = kid_bootstrap(real_z, synthetic_z, n_bootstrap, rng("kid"))
    if set(prdc.METRICS) & set(metrics):
        for name, terms in prdc.prdc_indicators(real_z, synthetic_z, k=k).items():
            values[name] = float(terms.mean())
            replicates[name] = bootstrap_means(terms.astype(np.float64), n_bootstrap, rng(name))
    if set(alpha.METRICS) & set(metrics):
        ab = alpha.alpha_beta_indicators(real_z, synthetic_z, n_steps=ALPHA_STEPS)
        alpha_rng = rng("alpha")
        summaries = [alpha.summarise(_resampled(ab, alpha_rng), ALPHA_STEPS) for _ in range(n_bootstrap)]
        for name, value in alpha.summarise(ab, ALPHA_STEPS).items():
            values[name] = value
            replicates[name] = np.array([summary[name] for summary in summaries])
    if "c2st_auc" in metrics:
        target, scores = c2st.c2st_scores(real_z, synthetic_z, seed=seed)
        values["c2st_auc"] = float(roc_auc_score(target, scores))
        replicates["c2st_auc"] = c2st.bootstrap_auc(target, scores, n_bootstrap, rng("c2st_auc"))

    kept_names = [name for name, keep in zip(names, kept, strict=True) if keep]
    table = feature_distances(real_z, synthetic_z, kept_names, normalise=False)
    values["features"] = float(table["wasserstein"].mean())
    features_rng = rng("features")
    replicates["features"] = np.array([
        wasserstein_columns(real_z[features_rng.integers(0, len(real_z), len(real_z))],
                            synthetic_z[features_rng.integers(0, len(synthetic_z), len(synthetic_z))]).mean()
        for _ in range(n_bootstrap)
    ])
    dropped = [name for name, keep in zip(names, kept, strict=True) if not keep]
    return _PairResult(values, replicates, table, dropped)


def _resampled(terms: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """alpha / beta terms with synthetic-side and real-side rows resampled independently."""
    synthetic_index = rng.integers(0, len(terms["alpha_level"]), len(terms["alpha_level"]))
    real_index = rng.integers(0, len(terms["recall_level"]), len(terms["recall_level"]))
    return {
        "alpha_level": terms["alpha_level"][synthetic_index],
        "authentic": terms["authentic"][synthetic_index],
        "recall_level": terms["recall_level"][real_index],
    }


def _floor_pair(
    real: np.ndarray, floor: np.ndarray | None, n_compared: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, str]:
    """Two disjoint real sets standing in for (reference, synthetic)."""
    from genrad.evaluation.stats import subsample

    if floor is not None:
        return real, subsample(floor, n_compared, rng), "the real reference against an independent real set (floor_real)"
    order = rng.permutation(len(real))
    half = len(real) // 2
    if half < 2:
        raise InputError(
            "at least 4 real images (the real floor splits them in two)",
            f"{len(real)}",
            "pass more real images or an independent real set as floor_real",
            source="real",
        )
    reference, other = real[np.sort(order[half:])], real[np.sort(order[:half])]
    return reference, subsample(other, n_compared, rng), "two disjoint halves of the real reference"


def _frd_per_class(
    real: FeatureTable,
    synthetic: FeatureTable,
    floor: FeatureTable | None,
    *,
    n_bootstrap: int,
    seed: int,
    confidence: float,
    max_samples: int,
    class_names: Sequence[str] | None,
) -> dict[str, Any]:
    """FRD between the real and synthetic images of each class present in both, z-scored with that
    class's real statistics (what frd-score gives on per-class folders)."""
    from genrad.evaluation.fidelity.frd import frd
    from genrad.evaluation.stats import bootstrap_pairs, clean_pair, subsample

    if real.labels is None or synthetic.labels is None:
        return {}
    per_class = {}
    for label in sorted(set(real.labels.tolist()) & set(synthetic.labels.tolist())):
        real_c, synthetic_c = clean_pair(real.rows(real.labels == label), synthetic.rows(synthetic.labels == label))
        floor_c = None if floor is None or floor.labels is None else floor.rows(floor.labels == label)
        if len(real_c) < 4 or len(synthetic_c) < 2 or (floor_c is not None and len(floor_c) < 2):
            continue
        reference, other, _ = _floor_pair(real_c, floor_c, min(len(synthetic_c), max_samples),
                                          stream(seed, "frd_per_class", label, "floor"))
        rng = stream(seed, "frd_per_class", label)
        replicates = bootstrap_pairs(frd, real_c, subsample(synthetic_c, max_samples, rng), n_bootstrap, rng)
        key = class_names[label] if class_names is not None and label < len(class_names) else str(label)
        per_class[key] = {
            **_entry(frd(real_c, synthetic_c), replicates, frd(reference, other), confidence),
            "n_real": len(real_c),
            "n_synthetic": len(synthetic_c),
        }
    return per_class


def _features_entry(main: _PairResult, floor: _PairResult, confidence: float) -> dict[str, Any]:
    floor_w = floor.table.set_index("feature")["wasserstein"].rename("real_floor_wasserstein")
    merged = main.table.join(floor_w, on="feature")
    by_property = merged.groupby("property")[["wasserstein", "real_floor_wasserstein"]].mean().sort_values("wasserstein", ascending=False)
    return {
        **_entry(main.values["features"], main.replicates["features"], floor.values["features"], confidence),
        "unit": "mean 1-Wasserstein distance over features, in real standard deviations",
        "by_property": {name: _clean_record(row) for name, row in by_property.to_dict("index").items()},
        "per_feature": [_clean_record(row) for row in merged.to_dict("records")],
    }


def _entry(value: float, replicates: np.ndarray, real_floor: float, confidence: float,
           bounds: tuple[float, float] = (-np.inf, np.inf)) -> dict[str, Any]:
    from genrad.evaluation.stats import bootstrap_ci

    return {"value": _finite(value), "ci": bootstrap_ci(value, replicates, confidence, bounds=bounds),
            "real_floor": _finite(real_floor)}


def _finite(value: Any) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def _clean_record(record: dict[str, Any]) -> dict[str, Any]:
    return {key: value if isinstance(value, str) else _finite(value) for key, value in record.items()}


