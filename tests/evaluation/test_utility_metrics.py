"""Classification metrics of the utility protocol, checked against scikit-learn and known values."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score, recall_score, roc_auc_score

from genrad.errors import InputError
from genrad.evaluation.utility.metrics import (
    ClassificationMetrics,
    classification_metrics,
    expected_calibration_error,
    roc_auc,
)


def _probabilities(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    logits = rng.normal(size=(n, k))
    return np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)


@pytest.mark.parametrize("k", [2, 4])
def test_metrics_match_scikit_learn(k: int) -> None:
    rng = np.random.default_rng(k)
    labels = rng.integers(0, k, size=300)
    probabilities = _probabilities(rng, 300, k)
    probabilities[np.arange(300), labels] += 0.3  # informative scores
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    metrics = classification_metrics(labels, probabilities)
    expected_auc = (
        roc_auc_score(labels, probabilities[:, 1]) if k == 2 else roc_auc_score(labels, probabilities, multi_class="ovr")
    )
    predictions = probabilities.argmax(axis=1)
    assert metrics["auc"] == pytest.approx(expected_auc, abs=1e-12)
    assert metrics["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(labels, predictions))
    assert metrics["recall_per_class"] == pytest.approx(recall_score(labels, predictions, average=None).tolist())
    assert metrics["accuracy"] == pytest.approx(np.mean(predictions == labels))


def test_ece_is_small_when_calibrated_and_large_when_overconfident() -> None:
    rng = np.random.default_rng(0)
    confidence = rng.uniform(0.5, 1.0, size=20000)
    labels = (rng.uniform(size=20000) < confidence).astype(np.int64)  # P(label 1) = confidence
    calibrated = np.stack([1 - confidence, confidence], axis=1)
    overconfident = np.stack([np.full(20000, 0.01), np.full(20000, 0.99)], axis=1)
    assert expected_calibration_error(labels, calibrated) < 0.02
    # Always 99% sure of class 1, right 75% of the time on average: ECE = 0.99 - 0.75.
    assert expected_calibration_error(labels, overconfident) == pytest.approx(0.99 - labels.mean(), abs=1e-12)


def test_ece_hand_computed() -> None:
    labels = np.array([0, 1, 1, 1])
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.5, 0.5]])
    # Two bins: (0.5, 1] holds confidences 0.9 (right), 0.8 (right), 0.6 (wrong): |2 - 2.3|;
    # (0, 0.5] holds 0.5 (predicts 0, wrong): |0 - 0.5|. ECE = (0.3 + 0.5) / 4.
    assert expected_calibration_error(labels, probabilities, n_bins=2) == pytest.approx(0.2)


def test_streaming_equals_one_shot() -> None:
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, size=250)
    probabilities = _probabilities(rng, 250, 3)
    stream = ClassificationMetrics(3)
    for start in range(0, 250, 64):
        stream.update(labels[start : start + 64], probabilities[start : start + 64])
    assert stream.compute() == classification_metrics(labels, probabilities, num_classes=3)
    stream.reset()
    with pytest.raises(InputError, match="at least one update"):
        stream.compute()


def test_bad_inputs_are_named() -> None:
    with pytest.raises(InputError, match="one row of class probabilities per label"):
        roc_auc(np.zeros(3, dtype=np.int64), np.full((4, 2), 0.5))
    with pytest.raises(InputError, match="at least two classes"):
        roc_auc(np.zeros(4, dtype=np.int64), np.full((4, 2), 0.5))
    with pytest.raises(InputError, match=r"labels in 0..1"):
        classification_metrics(np.array([0, 2]), np.full((2, 2), 0.5))


def test_the_one_rank_auc_is_sklearns_roc_auc_with_ties_row_by_row() -> None:
    from genrad.evaluation.stats import rank_auc

    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, size=(6, 40)).astype(float)  # many ties
    positive = rng.uniform(size=(6, 40)) < 0.3
    expected = [roc_auc_score(row_positive, row) for row, row_positive in zip(scores, positive, strict=True)]
    np.testing.assert_allclose(rank_auc(scores, positive), expected, rtol=1e-12)
    assert float(rank_auc(scores[0], positive[0])) == pytest.approx(expected[0])
