"""Plain-language verdicts name the property the generator gets wrong, with its size."""

from __future__ import annotations

import numpy as np
import pandas as pd

from genrad.report.verdicts import feature_verdicts, metric_verdict


def test_lower_contrast_reads_as_too_smooth_with_the_percentage() -> None:
    rng = np.random.default_rng(0)
    real = pd.DataFrame({"original_glcm_Contrast": rng.normal(10, 1, 200), "original_firstorder_Mean": rng.normal(100, 5, 200)})
    synthetic = pd.DataFrame({"original_glcm_Contrast": rng.normal(7, 1, 200), "original_firstorder_Mean": rng.normal(100, 5, 200)})
    labels = np.repeat([0, 1], 100)
    verdicts = feature_verdicts(real, synthetic, labels, labels, ["benign", "malignant"])
    assert {v["feature"] for v in verdicts} == {"original_glcm_Contrast"}
    text = verdicts[0]["text"]
    assert "too smooth" in text and "lower than real" in text
    assert abs(verdicts[0]["relative_change_pct"] + 30) < 5


def test_matching_distributions_give_no_verdict() -> None:
    rng = np.random.default_rng(1)
    real = pd.DataFrame({"original_glcm_Contrast": rng.normal(10, 1, 300)})
    synthetic = pd.DataFrame({"original_glcm_Contrast": rng.normal(10, 1, 300)})
    labels = np.zeros(300, dtype=int)
    assert feature_verdicts(real, synthetic, labels, labels, ["a"]) == []


def test_metric_verdicts_compare_with_the_real_floor() -> None:
    assert "as close to real" in metric_verdict("frd", 3.6, 3.55)
    assert "x the real floor" in metric_verdict("frd", 8.0, 3.55)
    assert "indistinguishable" in metric_verdict("c2st_auc", 0.53, 0.51)
    assert "tells synthetic from real" in metric_verdict("c2st_auc", 0.95, 0.5)
    assert metric_verdict("frd", 3.0, None) == ""
    assert "worse than two real sets" in metric_verdict("kid", 2.5e4, -0.01)
    assert "as close to real" in metric_verdict("kid", -0.002, -0.01)
