"""Fréchet Radiomic Distance, version 1 (Konz, Osuala et al., "Fréchet Radiomic Distance (FRD): A
Versatile Metric for Comparing Medical Imaging Datasets", Medical Image Analysis 2026, eq. 3).

Computed as the frd-score 1.0.1 package computes FRDv1 from two feature matrices:

1. rows (images) with a NaN feature are dropped;
2. both sets are z-scored with the reference set's mean and population standard deviation
   (``norm_ref="d1"``); features that the reference normalisation makes NaN / inf are dropped;
3. ``d^2 = |mu_r - mu_s|^2 + tr(C_r + C_s - 2 (C_r C_s)^{1/2})`` (Dowson & Landau 1982) between the
   z-scored means and unbiased covariances;
4. ``FRD = log(d^2)`` (frd-score's default convention; the paper's ``log d`` is half of it).

z-scoring is affine, so the z-scored moments follow from the raw ones: the streaming class keeps only
running float64 means and scatter matrices (``O(d^2)`` memory for any number of images).
"""

from __future__ import annotations

import numpy as np

from genrad.errors import InputError
from genrad.evaluation.stats import (
    Moments,
    Standardizer,
    as_matrix,
    clean_pair,
    drop_nan_rows,
)


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """Squared Fréchet distance between N(mu1, cov1) and N(mu2, cov2) (Heusel et al. 2017, eq. 6).

    ``tr((C1 C2)^{1/2})`` is the sum of square roots of the eigenvalues of ``C1^{1/2} C2 C1^{1/2}``,
    which share their spectrum with ``C1 C2``; symmetric eigendecompositions keep it real and stable
    when the covariances are singular (fewer images than features).
    """
    eigenvalues, eigenvectors = np.linalg.eigh(cov1)
    root1 = (eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))) @ eigenvectors.T
    product = root1 @ cov2 @ root1
    trace_root = np.sqrt(np.clip(np.linalg.eigvalsh((product + product.T) / 2.0), 0.0, None)).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * trace_root)


def frd_from_moments(reference: Moments, synthetic: Moments) -> float:
    """FRDv1 from the raw-feature moments of the reference and the synthetic set."""
    _check_sizes(reference.n, synthetic.n)
    assert synthetic.mean is not None
    scaler = Standardizer().fit(reference)
    keep = scaler.keep_ & np.isfinite(synthetic.mean) & np.isfinite(np.diag(synthetic.cov()))
    scale = scaler.scale_[keep]
    mu_syn = (synthetic.mean[keep] - scaler.mean_[keep]) / scale
    cov_ref = reference.cov()[np.ix_(keep, keep)] / np.outer(scale, scale)
    cov_syn = synthetic.cov()[np.ix_(keep, keep)] / np.outer(scale, scale)
    return _log(frechet_distance(np.zeros_like(mu_syn), cov_ref, mu_syn, cov_syn))


def frd(reference: np.ndarray, synthetic: np.ndarray) -> float:
    """FRDv1 between two radiomic feature matrices ``(n, d)``; ``reference`` sets the z-scoring.

    With fewer images than features the covariances are singular; then ``tr((C1 C2)^{1/2})`` is
    computed as the nuclear norm of the small ``n1 x n2`` matrix ``A B^T / sqrt((n1-1)(n2-1))`` of
    centred z-scores (the nonzero spectrum of ``C1 C2`` is that of ``A B^T B A^T``), from the
    eigenvalues of a ``min(n1, n2)``-square Gram matrix instead of a ``d x d`` eigendecomposition.
    """
    reference, synthetic = clean_pair(reference, synthetic)
    _check_sizes(reference.shape[0], synthetic.shape[0])
    scaler = Standardizer().fit(reference)
    scaler.keep_ = scaler.keep_ & np.isfinite(synthetic).all(axis=0)
    a, b = scaler.transform(reference), scaler.transform(synthetic)
    n1, n2 = a.shape[0], b.shape[0]
    if min(n1, n2) >= a.shape[1]:
        return frd_from_moments(Moments.of(reference[:, scaler.keep_]), Moments.of(synthetic[:, scaler.keep_]))
    diff = a.mean(axis=0) - b.mean(axis=0)
    a, b = a - a.mean(axis=0), b - b.mean(axis=0)
    cross = a @ b.T if n1 <= n2 else b @ a.T
    singular_squared = np.linalg.eigvalsh(cross @ cross.T)
    trace_root = np.sqrt(np.clip(singular_squared, 0.0, None)).sum() / np.sqrt((n1 - 1) * (n2 - 1))
    return _log(diff @ diff + (a * a).sum() / (n1 - 1) + (b * b).sum() / (n2 - 1) - 2.0 * trace_root)


class FRD:
    """Streaming FRDv1: ``update(features_batch)`` with synthetic rows, then ``compute()``.

    ``reference`` is a feature matrix or its cached `Moments` (reuse them across generators).
    """

    def __init__(self, reference: np.ndarray | Moments) -> None:
        self.reference = reference
        self.reference_moments = (
            reference
            if isinstance(reference, Moments)
            else Moments.of(drop_nan_rows(as_matrix(reference, name="reference")))
        )
        self.reset()

    def reset(self) -> None:
        self.synthetic_moments = Moments()

    def update(self, features: np.ndarray) -> FRD:
        self.synthetic_moments.update(drop_nan_rows(as_matrix(features, name="synthetic")))
        return self

    def compute(self) -> float:
        return frd_from_moments(self.reference_moments, self.synthetic_moments)


def _check_sizes(n_reference: int, n_synthetic: int) -> None:
    if n_reference < 2 or n_synthetic < 2:
        raise InputError(
            "at least 2 images without NaN features in each set",
            f"{n_reference} reference and {n_synthetic} synthetic",
            "compare larger sets",
        )


def _log(squared: float) -> float:
    """frd-score's v1 convention: ``log(d^2)``, ``-inf`` for a zero distance."""
    return float(np.log(squared)) if squared > 0 else float("-inf")
