"""Classifier two-sample test (Lopez-Paz & Oquab, "Revisiting Classifier Two-Sample Tests", ICLR 2017):
a classifier learns to tell real from synthetic radiomic feature rows; its cross-validated ROC AUC is
0.5 when the sets are indistinguishable and 1.0 when every synthetic image is recognisable.

The sets are balanced (the larger one is subsampled, seeded) and every row is scored out of fold.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import ClassifierMixin, clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from genrad.evaluation.stats import (
    ReservoirMetric,
    normalise_pair,
    rank_auc,
    stratified_bootstrap_index,
    subsample,
)


def with_squares(features: np.ndarray) -> np.ndarray:
    """``[x, x^2]``: lets a linear classifier see changes of spread as well as of location."""
    return np.concatenate([features, features * features], axis=1)


def default_classifier(seed: int = 0) -> Pipeline:
    """Quadratic logistic regression (features and their squares, standardised, strong L2 penalty for
    many features and few images). Single-threaded and fast; tree ensembles such as
    `HistGradientBoostingClassifier` can be passed as ``classifier`` instead."""
    return make_pipeline(
        FunctionTransformer(with_squares),
        StandardScaler(),
        LogisticRegression(C=0.01, max_iter=2000, random_state=seed),
    )


def c2st_scores(
    real: np.ndarray,
    synthetic: np.ndarray,
    *,
    n_folds: int = 5,
    seed: int = 0,
    classifier: ClassifierMixin | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold ``(is_synthetic, P(synthetic))`` for a balanced sample of the two sets."""
    rng = np.random.default_rng(seed)
    size = min(real.shape[0], synthetic.shape[0])
    features = np.concatenate([subsample(real, size, rng), subsample(synthetic, size, rng)])
    target = np.repeat([0, 1], size)
    folds = StratifiedKFold(n_splits=min(n_folds, size), shuffle=True, random_state=seed)
    model = clone(classifier) if classifier is not None else default_classifier(seed)
    scores = cross_val_predict(model, features, target, cv=folds, method="predict_proba")[:, 1]
    return target, scores


def c2st_auc(
    real: np.ndarray,
    synthetic: np.ndarray,
    *,
    n_folds: int = 5,
    seed: int = 0,
    classifier: ClassifierMixin | None = None,
    normalise: bool = True,
) -> float:
    """Cross-validated real-vs-synthetic ROC AUC (0.5 = indistinguishable)."""
    if normalise:
        real, synthetic, _ = normalise_pair(real, synthetic)
    target, scores = c2st_scores(real, synthetic, n_folds=n_folds, seed=seed, classifier=classifier)
    return float(roc_auc_score(target, scores))


def bootstrap_auc(target: np.ndarray, scores: np.ndarray, n_bootstrap: int, rng: np.random.Generator) -> np.ndarray:
    """AUC replicates with rows resampled within each class (the classifier's scores held fixed)."""
    index = stratified_bootstrap_index(target, n_bootstrap, rng)
    return np.asarray(rank_auc(scores[index], target[index] == 1), dtype=np.float64).reshape(n_bootstrap)


class C2ST(ReservoirMetric):
    """Streaming C2ST: synthetic rows go through a reservoir of ``max_samples`` rows; `compute` runs the
    test against the reference (balanced, so at most ``len(reference)`` synthetic rows are used)."""

    def __init__(
        self,
        reference: np.ndarray,
        *,
        n_folds: int = 5,
        max_samples: int = 10_000,
        seed: int = 0,
        classifier: ClassifierMixin | None = None,
    ) -> None:
        self.n_folds = n_folds
        self.classifier = classifier
        super().__init__(reference, max_samples=max_samples, seed=seed)

    def compute(self) -> float:
        return c2st_auc(
            self.reference, self.reservoir.rows, n_folds=self.n_folds, seed=self.seed, classifier=self.classifier
        )
