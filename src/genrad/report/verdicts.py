"""Plain-language verdicts next to the numbers.

Feature verdicts compare per-class means of radiomic features between real and synthetic images with
the standardised mean difference (Cohen's d with the real standard deviation) and say, in words,
which image property the generator gets wrong, e.g. "synthetic malignant images are too smooth:
original glcm Contrast 30% lower than real".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

# (name fragment, property, words when synthetic is lower, words when synthetic is higher)
_PROPERTIES: tuple[tuple[str, str, str, str], ...] = (
    ("glcm_Contrast", "local contrast", "too smooth", "too grainy"),
    ("ngtdm_Contrast", "local contrast", "too smooth", "too grainy"),
    ("glcm_DifferenceAverage", "local contrast", "too smooth", "too grainy"),
    ("glcm_Idm", "homogeneity", "too grainy", "too smooth"),
    ("glcm_Id", "homogeneity", "too grainy", "too smooth"),
    ("ngtdm_Coarseness", "coarseness", "too fine-grained", "too coarse"),
    ("ngtdm_Busyness", "busyness", "too calm", "too busy"),
    ("glszm_LargeAreaEmphasis", "structure size", "too fragmented", "too blobby"),
    ("glszm_ZoneEntropy", "texture complexity", "too regular", "too irregular"),
    ("glrlm_ShortRunEmphasis", "fine texture", "too coarse", "too fine-grained"),
    ("glrlm_LongRunEmphasis", "long runs", "too fine-grained", "too streaky"),
    ("firstorder_Mean", "brightness", "too dark", "too bright"),
    ("firstorder_Median", "brightness", "too dark", "too bright"),
    ("firstorder_Variance", "intensity spread", "too uniform", "too heterogeneous"),
    ("firstorder_Range", "intensity range", "too flat", "too extreme"),
    ("firstorder_Entropy", "intensity entropy", "too simple", "too noisy"),
    ("firstorder_Skewness", "intensity skew", "skewed dark", "skewed bright"),
    ("firstorder_Kurtosis", "tailedness", "too light-tailed", "too heavy-tailed"),
)

_LOWER_IS_BETTER = {"frd", "kid", "c2st_auc"}


def describe(feature: str) -> tuple[str, str, str]:
    """(property, words if synthetic is lower, words if higher) for a pyradiomics feature name."""
    for fragment, prop, lower, higher in _PROPERTIES:
        if feature.endswith(fragment):
            return prop, lower, higher
    return "texture", "different", "different"


def readable(feature: str) -> str:
    """'wavelet-LH_glcm_Contrast' -> 'wavelet-LH glcm Contrast'."""
    return feature.replace("_", " ")


def feature_verdicts(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    real_labels: np.ndarray,
    synthetic_labels: np.ndarray,
    class_names: Sequence[str],
    *,
    top: int = 5,
    min_effect: float = 0.5,
) -> list[dict[str, Any]]:
    """The `top` (class, feature) pairs with the largest |standardised mean difference| above `min_effect`."""
    columns = [c for c in real.columns if c in synthetic.columns and np.issubdtype(real[c].dtype, np.number)]
    findings = []
    for label, name in enumerate(class_names):
        real_rows = real.loc[np.asarray(real_labels) == label, columns]
        synthetic_rows = synthetic.loc[np.asarray(synthetic_labels) == label, columns]
        if len(real_rows) < 2 or len(synthetic_rows) < 2:
            continue
        real_mean, synthetic_mean = real_rows.mean(), synthetic_rows.mean()
        scale = real_rows.std().replace(0.0, np.nan)
        effect = ((synthetic_mean - real_mean) / scale).dropna()
        for feature, d in effect.items():
            if abs(d) >= min_effect:
                findings.append((abs(float(d)), name, feature, float(d), float(real_mean[feature]), float(synthetic_mean[feature])))
    findings.sort(key=lambda item: -item[0])
    return [_sentence(*item[1:]) for item in findings[:top]]


def _sentence(class_name: str, feature: str, effect: float, real_mean: float, synthetic_mean: float) -> dict[str, Any]:
    prop, lower, higher = describe(feature)
    words = higher if effect > 0 else lower
    change = (synthetic_mean - real_mean) / abs(real_mean) * 100 if real_mean else float("nan")
    direction = "higher" if effect > 0 else "lower"
    amount = f"{abs(change):.0f}% {direction}" if np.isfinite(change) else direction
    if words == "different":
        text = f"synthetic {class_name} images differ in {readable(feature)}: {amount} than real (d = {effect:+.2f})"
    else:
        text = f"synthetic {class_name} images are {words} ({prop}): {readable(feature)} {amount} than real (d = {effect:+.2f})"
    return {"class": class_name, "feature": feature, "effect_size": effect, "relative_change_pct": change, "text": text}


def metric_rows(fidelity: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Table rows (name, value, ci, real floor, verdict) for every scalar metric in fidelity.json."""
    rows = []
    for name, entry in fidelity.items():
        if name in ("features", "frd_per_class", "provenance") or entry is None:
            continue
        if isinstance(entry, Mapping) and "value" in entry:
            value, ci, floor = entry["value"], entry.get("ci"), entry.get("real_floor")
        elif isinstance(entry, (int, float)):
            value, ci, floor = entry, None, None
        else:
            continue
        rows.append({"name": name, "value": value, "ci": ci, "real_floor": floor, "verdict": metric_verdict(name, value, floor)})
    return rows


def metric_verdict(name: str, value: float, floor: float | None) -> str:
    """Compare a metric with its real floor (the same metric between two real sets)."""
    if floor is None or value is None or not np.isfinite(value) or not np.isfinite(floor):
        return ""
    if name == "c2st_auc":
        gap, floor_gap = abs(value - 0.5), abs(floor - 0.5)
        if gap <= floor_gap + 0.05:
            return "indistinguishable from real, like two real sets"
        return "a classifier tells synthetic from real" if value > 0.75 else "partly distinguishable from real"
    if name in _LOWER_IS_BETTER:
        if floor <= 0:  # unbiased estimators (KID) can be <= 0 between real sets: no ratio then
            return "as close to real as two real sets" if value <= 0 else f"worse than two real sets (floor {floor:.3g})"
        ratio = value / floor
        if ratio <= 1.15:
            return f"as close to real as two real sets ({ratio:.2f}x the floor)"
        return f"{ratio:.2f}x the real floor: synthetic images differ from real"
    if value >= 0.9 * floor:
        return "on par with two real sets"
    return f"below the real floor ({value:.2f} vs {floor:.2f})"
