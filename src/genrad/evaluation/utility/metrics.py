"""Classification metrics of the downstream task: pure functions plus a streaming class that reuses them.

- AUC: area under the ROC curve (Hanley & McNeil 1982); for more than two classes the one-vs-rest
  macro average (Fawcett 2006), as scikit-learn's ``roc_auc_score(multi_class="ovr")``.
- Balanced accuracy: the mean per-class recall (Brodersen et al. 2010).
- ECE: expected calibration error of the top-label confidence over ``n_bins`` equal-width bins,
  ``sum_b |B_b| / N * |acc(B_b) - conf(B_b)|`` (Guo et al. 2017, eq. 3).
- Recall at a reference specificity: the rare class's recall (sensitivity) at the operating point where
  the classifier's specificity first reaches a reference classifier's specificity, so two classifiers'
  recalls are compared at the same false-positive rate.

`resampled_metrics` computes them all on many resamples of the test images at once (rows of an
index matrix), for bootstrap intervals.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

from genrad.errors import InputError
from genrad.evaluation.stats import rank_auc


def roc_auc(labels: np.ndarray, probabilities: np.ndarray, *, num_classes: int | None = None) -> float:
    """ROC AUC of class probabilities ``(N, K)``; one-vs-rest macro average when ``K > 2``."""
    labels, probabilities = _check(labels, probabilities, num_classes)
    present = np.unique(labels)
    if len(present) < 2:
        raise InputError("labels of at least two classes", f"only class {int(present[0])}", "score on a stratified split")
    if probabilities.shape[1] == 2:
        return float(roc_auc_score(labels, probabilities[:, 1]))
    # One-vs-rest per class present in `labels` (a class absent from the labels has no ROC curve).
    return float(np.mean([roc_auc_score(labels == k, probabilities[:, k]) for k in present]))


def recall_per_class(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """Recall (sensitivity) of each class, ``TP_k / N_k``; NaN for a class absent from `labels`."""
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    hits = np.bincount(labels[predictions == labels], minlength=num_classes).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, hits / counts, np.nan)


def expected_calibration_error(labels: np.ndarray, probabilities: np.ndarray, *, n_bins: int = 15) -> float:
    """ECE of the top-label confidence (Guo et al. 2017, eq. 3), equal-width bins on (0, 1]."""
    labels, probabilities = _check(labels, probabilities, None)
    confidence = probabilities.max(axis=1)
    correct = (probabilities.argmax(axis=1) == labels).astype(np.float64)
    bins = np.clip(np.ceil(confidence * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    sizes = np.bincount(bins, minlength=n_bins)
    gap = np.bincount(bins, weights=correct - confidence, minlength=n_bins)
    return float(np.abs(gap).sum() / max(sizes.sum(), 1))


def classification_metrics(
    labels: np.ndarray, probabilities: np.ndarray, *, num_classes: int | None = None, n_bins: int = 15
) -> dict[str, float | list[float]]:
    """AUC, accuracy, balanced accuracy, per-class recall and ECE of class probabilities ``(N, K)``."""
    labels, probabilities = _check(labels, probabilities, num_classes)
    predictions = probabilities.argmax(axis=1)
    recalls = recall_per_class(labels, predictions, probabilities.shape[1])
    return {
        "auc": roc_auc(labels, probabilities),
        "accuracy": float(np.mean(predictions == labels)),
        "balanced_accuracy": float(np.nanmean(recalls)),
        "recall_per_class": [float(r) for r in recalls],
        "ece": expected_calibration_error(labels, probabilities, n_bins=n_bins),
    }


RESAMPLED = ("auc", "accuracy", "balanced_accuracy", "ece")


def resampled_metrics(
    labels: np.ndarray,
    probabilities: np.ndarray,
    index: np.ndarray,
    *,
    rare: int,
    reference: np.ndarray | None = None,
    n_bins: int = 15,
) -> dict[str, np.ndarray]:
    """`classification_metrics` on each row of `index` ``(B, N)`` (resamples of the images), ``(B,)`` each.

    Every row must hold every class of `labels` (a stratified resample). Keys: `RESAMPLED`, ``recall_<k>``
    per class, and with `reference` (another classifier's probabilities ``(N, K)`` on the same images)
    ``rare_recall_at_reference_specificity``. Row ``index = arange(N)`` gives the metrics of the whole set.
    """
    labels, probabilities = _check(labels, probabilities, None)
    y = labels[index]
    k_classes = probabilities.shape[1]
    present = np.unique(labels)
    scores = probabilities[index]  # (B, N, K)
    if k_classes == 2:
        auc = rank_auc(scores[..., 1], y == 1)
    else:
        auc = np.mean([rank_auc(scores[..., k], y == k) for k in present], axis=0)
    predictions = scores.argmax(axis=2)
    correct = predictions == y
    counts = (y[..., None] == np.arange(k_classes)).sum(axis=1)  # (B, K)
    hits = ((y[..., None] == np.arange(k_classes)) & correct[..., None]).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        recalls = np.where(counts > 0, hits / np.maximum(counts, 1), np.nan)
    result = {
        "auc": auc,
        "accuracy": correct.mean(axis=1),
        "balanced_accuracy": np.nanmean(recalls[:, present], axis=1),
        "ece": _resampled_ece(scores.max(axis=2), correct, n_bins),
        **{f"recall_{k}": recalls[:, k] for k in range(k_classes)},
    }
    if reference is not None:
        reference = _check(labels, reference, k_classes)[1]
        result["rare_recall_at_reference_specificity"] = _recall_at_specificity(
            scores[..., rare], y == rare, reference[index].argmax(axis=2) != rare
        )
    return result


def _resampled_ece(confidence: np.ndarray, correct: np.ndarray, n_bins: int) -> np.ndarray:
    rows, n = confidence.shape
    bins = np.clip(np.ceil(confidence * n_bins).astype(np.int64) - 1, 0, n_bins - 1) + n_bins * np.arange(rows)[:, None]
    gap = np.bincount(bins.ravel(), weights=(correct - confidence).ravel(), minlength=rows * n_bins)
    return np.abs(gap.reshape(rows, n_bins)).sum(axis=1) / n


def _recall_at_specificity(scores: np.ndarray, positive: np.ndarray, reference_negative: np.ndarray) -> np.ndarray:
    """Per row: the recall of ``score > t`` for the smallest threshold ``t`` whose specificity reaches the
    reference's (the share of true negatives the reference predicts negative)."""
    negatives = ~positive
    n_neg = negatives.sum(axis=1)
    specificity = (reference_negative & negatives).sum(axis=1) / n_neg
    needed = np.ceil(specificity * n_neg - 1e-9).astype(np.int64)  # negatives that must score <= t
    negative_scores = np.sort(np.where(negatives, scores, np.inf), axis=1)
    rows = np.arange(len(scores))
    threshold = np.where(needed > 0, negative_scores[rows, np.maximum(needed - 1, 0)], -np.inf)
    return ((scores > threshold[:, None]) & positive).sum(axis=1) / positive.sum(axis=1)


class ClassificationMetrics:
    """Streaming `classification_metrics`: `update` with batches, `compute` over all of them, `reset`.

    AUC needs every score, so the (N, K) probabilities are kept (8 K bytes per image).
    """

    def __init__(self, num_classes: int, *, n_bins: int = 15) -> None:
        self.num_classes = num_classes
        self.n_bins = n_bins
        self.reset()

    def update(self, labels: np.ndarray, probabilities: np.ndarray) -> None:
        labels, probabilities = _check(labels, probabilities, self.num_classes)
        self._labels.append(labels)
        self._probabilities.append(probabilities)

    def compute(self) -> dict[str, float | list[float]]:
        if not self._labels:
            raise InputError("at least one update", "none", "call update(labels, probabilities) before compute()")
        return classification_metrics(
            np.concatenate(self._labels),
            np.concatenate(self._probabilities),
            num_classes=self.num_classes,
            n_bins=self.n_bins,
        )

    def reset(self) -> None:
        self._labels: list[np.ndarray] = []
        self._probabilities: list[np.ndarray] = []


def _check(labels: np.ndarray, probabilities: np.ndarray, num_classes: int | None) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.ndim != 2 or probabilities.shape[0] != labels.shape[0] or labels.ndim != 1:
        raise InputError(
            "labels (N,) and class probabilities (N, K)",
            f"labels {labels.shape} and probabilities {probabilities.shape}",
            "pass one row of class probabilities per label",
        )
    if num_classes is not None and probabilities.shape[1] != num_classes:
        raise InputError(
            f"{num_classes} probability columns", str(probabilities.shape[1]), "pass one column per class"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= probabilities.shape[1]):
        raise InputError(
            f"labels in 0..{probabilities.shape[1] - 1}", f"labels {labels.min()}..{labels.max()}", "encode classes 0..K-1"
        )
    return labels.astype(np.int64), probabilities
