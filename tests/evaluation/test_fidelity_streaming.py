"""Streaming metrics over 100k synthetic feature rows, fed in chunks, run in bounded memory."""

from __future__ import annotations

import tracemalloc

import numpy as np

from genrad.evaluation.fidelity.alpha import AlphaPrecisionBetaRecall
from genrad.evaluation.fidelity.c2st import C2ST
from genrad.evaluation.fidelity.distances import FeatureDistances
from genrad.evaluation.fidelity.frd import FRD
from genrad.evaluation.fidelity.kid import KID
from genrad.evaluation.fidelity.prdc import PRDC

N_SYNTHETIC, N_FEATURES, CHUNK, MAX_SAMPLES = 100_000, 64, 5_000, 1_000


def _stream(n_rows: int) -> tuple[int, dict, dict]:
    """Feed ``n_rows`` synthetic rows in chunks; returns (peak traced bytes, results, metrics)."""
    rng = np.random.default_rng(0)
    scales = np.geomspace(0.1, 100.0, N_FEATURES)
    reference = rng.normal(size=(500, N_FEATURES)) * scales
    metrics = {
        "frd": FRD(reference),
        "kid": KID(reference, max_samples=MAX_SAMPLES, n_subsets=5),
        "prdc": PRDC(reference, max_samples=MAX_SAMPLES),
        "alpha": AlphaPrecisionBetaRecall(reference, max_samples=MAX_SAMPLES),
        "c2st": C2ST(reference, max_samples=MAX_SAMPLES),
        "features": FeatureDistances(reference, max_samples=MAX_SAMPLES),
    }
    shift = np.where(np.arange(N_FEATURES) < 4, 0.5, 0.0) * scales  # four features off by half an SD
    tracemalloc.start()
    for _ in range(n_rows // CHUNK):
        chunk = rng.normal(size=(CHUNK, N_FEATURES)) * scales + shift
        for metric in metrics.values():
            metric.update(chunk)
        del chunk
    results = {name: metric.compute() for name, metric in metrics.items()}
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak, results, metrics


def test_metrics_over_100k_rows_run_in_bounded_memory() -> None:
    small_peak, _, _ = _stream(4 * CHUNK)
    peak, results, metrics = _stream(N_SYNTHETIC)
    full_matrix = N_SYNTHETIC * N_FEATURES * 8
    assert peak < 1.25 * small_peak, f"memory grows with rows: {peak / 1e6:.1f} MB vs {small_peak / 1e6:.1f} MB"
    assert peak < full_matrix, f"peak {peak / 1e6:.1f} MB vs {full_matrix / 1e6:.1f} MB for all rows"
    assert metrics["frd"].synthetic_moments.n == N_SYNTHETIC
    assert metrics["prdc"].n_seen == N_SYNTHETIC and metrics["prdc"].reservoir.rows.shape == (MAX_SAMPLES, N_FEATURES)
    assert np.isfinite(results["frd"]) and results["kid"] > 0
    assert 0.0 < results["prdc"]["precision"] < 1.0 and results["prdc"]["coverage"] > 0.5
    assert 0.0 < results["alpha"]["alpha_precision"] <= 1.0
    assert results["c2st"] > 0.6
    assert set(results["features"]["feature"][:4]) == {f"feature_{i}" for i in range(4)}
    for metric in metrics.values():
        metric.reset()
    assert metrics["frd"].synthetic_moments.n == 0 and metrics["prdc"].n_seen == 0
