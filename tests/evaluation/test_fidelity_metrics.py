"""Fidelity metric kernels on feature matrices: reference implementations, definitions, properties."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import ks_2samp, wasserstein_distance

from genrad.errors import InputError
from genrad.evaluation.fidelity.alpha import (
    AlphaPrecisionBetaRecall,
    alpha_beta_indicators,
    alpha_precision_beta_recall,
)
from genrad.evaluation.fidelity.c2st import c2st_auc
from genrad.evaluation.fidelity.distances import (
    feature_distances,
    ks_columns,
    wasserstein_columns,
)
from genrad.evaluation.fidelity.frd import FRD, frd, frd_from_moments, frechet_distance
from genrad.evaluation.fidelity.kid import KID, kid, kid_bootstrap
from genrad.evaluation.fidelity.prdc import PRDC, prdc
from genrad.evaluation.stats import Moments, Reservoir, bootstrap_ci, normalise_pair


def _gaussian(rng: np.random.Generator, n: int, d: int, shift: float = 0.0, scale: float = 1.0) -> np.ndarray:
    """Features with very different scales per column (as radiomic features have)."""
    columns = np.geomspace(0.01, 1000.0, d)
    return (rng.normal(size=(n, d)) * scale + shift) * columns + 3.0 * columns


def _frd_score_reference(reference: np.ndarray, synthetic: np.ndarray) -> float:
    """frd-score 1.0.1's own v1 pipeline on arrays: float32, z-score on d1 (its `z_score_normalize`),
    NaN/inf column drop, its `calculate_frechet_distance` (scipy sqrtm), log."""
    fs = pytest.importorskip("frd_score.frd")
    a, b = reference.astype(np.float32), synthetic.astype(np.float32)
    normalised = [
        fs.z_score_normalize(x, base_distribution=a, replace_nan=False, handle_std_zero=False) for x in (a, b)
    ]
    keep = ~np.any([~np.isfinite(x).all(axis=0) for x in normalised], axis=0)
    a_n, b_n = (x[:, keep] for x in normalised)
    squared = fs.calculate_frechet_distance(a_n.mean(0), np.cov(a_n, rowvar=False), b_n.mean(0), np.cov(b_n, rowvar=False))
    return float(np.log(squared))


@pytest.mark.parametrize(("n_reference", "n_synthetic", "d"), [(300, 400, 20), (60, 80, 120)])
def test_frd_matches_frd_score_pipeline(n_reference: int, n_synthetic: int, d: int) -> None:
    rng = np.random.default_rng(0)
    reference = _gaussian(rng, n_reference, d)
    synthetic = _gaussian(rng, n_synthetic, d, shift=0.3, scale=1.2)
    reference[:, 3] = 7.0  # a constant reference feature: frd-score drops it (inf after z-scoring)
    expected = _frd_score_reference(reference, synthetic)
    assert frd(reference, synthetic) == pytest.approx(expected, rel=1e-4)


def test_frd_rank_deficient_path_equals_moment_path() -> None:
    rng = np.random.default_rng(1)
    reference, synthetic = _gaussian(rng, 40, 100), _gaussian(rng, 50, 100, shift=0.2)
    assert frd(reference, synthetic) == pytest.approx(frd_from_moments(Moments.of(reference), Moments.of(synthetic)), rel=1e-6)


def test_frechet_distance_of_identical_gaussians_is_zero_and_grows_with_shift() -> None:
    cov = np.diag([1.0, 2.0, 3.0])
    assert frechet_distance(np.zeros(3), cov, np.zeros(3), cov) == pytest.approx(0.0, abs=1e-9)
    assert frechet_distance(np.zeros(3), cov, np.ones(3), cov) == pytest.approx(3.0)


def test_streaming_frd_equals_pure_function_and_resets() -> None:
    rng = np.random.default_rng(2)
    reference, synthetic = _gaussian(rng, 200, 10), _gaussian(rng, 1000, 10, shift=0.1)
    metric = FRD(reference)
    for chunk in np.array_split(synthetic, 7):
        metric.update(chunk)
    assert metric.compute() == pytest.approx(frd(reference, synthetic), rel=1e-9)
    cached = FRD(Moments.of(reference)).update(synthetic)  # reusable reference statistics
    assert cached.compute() == pytest.approx(metric.compute(), rel=1e-12)
    metric.reset()
    assert metric.synthetic_moments.n == 0


def test_moments_merge_matches_numpy_cov_for_large_offsets() -> None:
    rng = np.random.default_rng(3)
    rows = rng.normal(size=(500, 4)) + 1e6  # a large mean must not cancel the variance
    moments = Moments()
    for chunk in np.array_split(rows, 9):
        moments.update(chunk)
    np.testing.assert_allclose(moments.cov(), np.cov(rows, rowvar=False), atol=1e-7)
    np.testing.assert_allclose(moments.mean, rows.mean(axis=0), rtol=1e-12)


def test_frd_rejects_mismatched_features() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(InputError, match="same features"):
        frd(rng.normal(size=(10, 3)), rng.normal(size=(10, 4)))


def test_kid_is_near_zero_for_one_distribution_and_positive_for_a_shift() -> None:
    rng = np.random.default_rng(4)
    reference = _gaussian(rng, 300, 8)
    same, shifted = _gaussian(rng, 300, 8), _gaussian(rng, 300, 8, shift=0.5)
    assert abs(kid(reference, same)) < 0.05
    assert kid(reference, shifted) > 10 * abs(kid(reference, same))
    streaming = KID(reference, max_samples=1000)
    for chunk in np.array_split(shifted, 3):
        streaming.update(chunk)
    assert streaming.compute() == pytest.approx(kid(reference, shifted))


def test_kid_bootstrap_is_centred_on_the_estimate() -> None:
    rng = np.random.default_rng(5)
    real_z, synthetic_z, _ = normalise_pair(_gaussian(rng, 200, 6), _gaussian(rng, 200, 6, shift=0.3))
    estimate = kid(real_z, synthetic_z, normalise=False)
    replicates = kid_bootstrap(real_z, synthetic_z, 200, np.random.default_rng(0))
    assert abs(np.mean(replicates) - estimate) < 2 * np.std(replicates)


def _prdc_by_definition(real: np.ndarray, fake: np.ndarray, k: int) -> dict[str, float]:
    """Naeem et al. 2020, eqs. 1-4, with explicit loops."""

    def radius(points: np.ndarray, i: int) -> float:
        return float(np.sort(np.linalg.norm(points - points[i], axis=1))[k])  # index 0 is the point itself

    real_r = np.array([radius(real, i) for i in range(len(real))])
    fake_r = np.array([radius(fake, j) for j in range(len(fake))])
    d = np.linalg.norm(fake[:, None, :] - real[None, :, :], axis=2)  # (fake, real)
    return {
        "precision": float(np.mean([(d[j] <= real_r).any() for j in range(len(fake))])),
        "recall": float(np.mean([(d[:, i] <= fake_r).any() for i in range(len(real))])),
        "density": float(np.sum(d <= real_r[None, :]) / (k * len(fake))),
        "coverage": float(np.mean([d[:, i].min() <= real_r[i] for i in range(len(real))])),
    }


def test_prdc_matches_the_definition_with_unequal_sizes() -> None:
    rng = np.random.default_rng(6)
    real, fake = rng.normal(size=(60, 5)), rng.normal(0.4, 1.3, size=(45, 5))
    ours = prdc(real, fake, k=5, normalise=False)
    expected = _prdc_by_definition(real, fake, k=5)
    assert ours == pytest.approx(expected)


def test_prdc_separates_a_good_from_a_bad_generator_and_streams() -> None:
    rng = np.random.default_rng(7)
    real = _gaussian(rng, 300, 6)
    good = _gaussian(rng, 300, 6)
    collapsed = _gaussian(rng, 300, 6, scale=0.2)  # realistic but not diverse
    off_support = _gaussian(rng, 300, 6, shift=2.5)  # diverse but unrealistic
    good_scores, collapsed_scores, off_scores = prdc(real, good), prdc(real, collapsed), prdc(real, off_support)
    assert good_scores["precision"] > off_scores["precision"] + 0.3
    assert good_scores["density"] > off_scores["density"] + 0.3
    assert good_scores["coverage"] > collapsed_scores["coverage"] + 0.3
    assert good_scores["recall"] > collapsed_scores["recall"] + 0.3
    streaming = PRDC(real, max_samples=1000)
    for chunk in np.array_split(off_support, 4):
        streaming.update(chunk)
    assert streaming.compute() == pytest.approx(off_scores)


def test_alpha_precision_beta_recall_prefers_the_faithful_generator() -> None:
    rng = np.random.default_rng(8)
    real = rng.normal(size=(400, 4))
    faithful = rng.normal(size=(300, 4))
    collapsed = rng.normal(size=(300, 4)) * 0.2  # mode collapse: only the core of the distribution
    outliers = rng.normal(size=(300, 4)) * 3.0  # samples outside the real support
    faithful_scores = alpha_precision_beta_recall(real, faithful, normalise=False)
    assert faithful_scores["alpha_precision"] > 0.85
    assert faithful_scores["alpha_precision"] > alpha_precision_beta_recall(real, outliers, normalise=False)["alpha_precision"] + 0.3
    assert faithful_scores["beta_recall"] > alpha_precision_beta_recall(real, collapsed, normalise=False)["beta_recall"]


def test_authenticity_catches_a_memorising_generator_with_unequal_sizes() -> None:
    """Copies of real rows are unauthentic. With more real rows than synthetic ones, the reference
    implementation's indexing (`real_to_real[real_to_synth_args]`) mixes index spaces; here each
    synthetic row is compared with its own nearest real row."""
    rng = np.random.default_rng(9)
    real = rng.normal(size=(500, 4))
    copies = real[:120] + rng.normal(scale=1e-4, size=(120, 4))
    fresh = rng.normal(size=(120, 4))
    assert alpha_precision_beta_recall(real, copies, normalise=False)["authenticity"] == 0.0
    assert alpha_precision_beta_recall(real, fresh, normalise=False)["authenticity"] > 0.25
    terms = alpha_beta_indicators(real, copies)
    assert terms["authentic"].shape == (120,) and terms["recall_level"].shape == (500,)


def test_streaming_alpha_beta_equals_pure_function() -> None:
    rng = np.random.default_rng(10)
    real, synthetic = rng.normal(size=(200, 3)), rng.normal(0.3, 1.0, size=(500, 3))
    streaming = AlphaPrecisionBetaRecall(real, max_samples=1000)
    for chunk in np.array_split(synthetic, 5):
        streaming.update(chunk)
    assert streaming.compute() == pytest.approx(alpha_precision_beta_recall(real, synthetic))


def test_c2st_is_chance_for_one_distribution_and_high_for_a_shift() -> None:
    rng = np.random.default_rng(11)
    real = _gaussian(rng, 200, 10)
    assert abs(c2st_auc(real, _gaussian(rng, 200, 10)) - 0.5) < 0.12
    assert c2st_auc(real, _gaussian(rng, 200, 10, shift=0.6)) > 0.8
    assert c2st_auc(real, _gaussian(rng, 200, 10, scale=1.8)) > 0.7  # a change of spread only


def test_feature_distances_put_the_shifted_features_first() -> None:
    rng = np.random.default_rng(12)
    names = [f"original_glcm_F{i}" for i in range(6)] + ["original_firstorder_Mean", "original_shape2D_Area"]
    real = rng.normal(size=(300, 8))
    synthetic = rng.normal(size=(300, 8))
    synthetic[:, 6] += 1.0
    synthetic[:, 7] *= 2.5
    table = feature_distances(real, synthetic, names)
    assert set(table["feature"][:2]) == {"original_firstorder_Mean", "original_shape2D_Area"}
    assert table.set_index("feature").loc["original_firstorder_Mean", "property"] == "intensity"
    assert table.set_index("feature").loc["original_shape2D_Area", "property"] == "shape"
    assert table["wasserstein"].is_monotonic_decreasing


def test_vectorised_wasserstein_and_ks_match_scipy() -> None:
    rng = np.random.default_rng(13)
    a, b = np.round(rng.normal(size=(80, 3)), 1), np.round(rng.normal(0.3, 1.0, size=(50, 3)), 1)  # with ties
    statistic, pvalue = ks_columns(a, b)
    for j in range(3):
        assert wasserstein_columns(a, b)[j] == pytest.approx(wasserstein_distance(a[:, j], b[:, j]))
        reference = ks_2samp(a[:, j], b[:, j], method="asymp")
        assert statistic[j] == pytest.approx(reference.statistic)
        assert pvalue[j] == pytest.approx(reference.pvalue)


def test_reservoir_is_uniform_and_seeded() -> None:
    stream = np.arange(10_000, dtype=np.float64)[:, None]
    counts = np.zeros(10)
    for seed in range(200):
        reservoir = Reservoir(100, seed=seed)
        for chunk in np.array_split(stream, 13):
            reservoir.update(chunk)
        counts += np.bincount((reservoir.rows[:, 0] // 1000).astype(int), minlength=10)
    assert counts.min() > 0.8 * counts.mean()  # every tenth of the stream equally represented
    first = Reservoir(50, seed=1).update(stream).rows
    assert np.array_equal(first, Reservoir(50, seed=1).update(stream).rows)


def test_bootstrap_ci_is_recentred_on_the_estimate() -> None:
    replicates = np.random.default_rng(0).normal(5.0, 1.0, size=2000)  # biased upwards by 3
    low, high = bootstrap_ci(2.0, replicates, 0.9)
    assert low < 2.0 < high
    assert high - low == pytest.approx(2 * 1.645, rel=0.1)
    assert bootstrap_ci(1.0, np.array([np.nan]), 0.9) == [None, None]


def test_a_recentred_interval_is_clipped_to_the_metric_range() -> None:
    replicates = np.random.default_rng(0).uniform(0.0, 0.04, size=500)  # a share near 0, biased upwards
    low, high = bootstrap_ci(0.0, replicates, 0.95, bounds=(0.0, 1.0))
    assert low == 0.0 < high
    assert bootstrap_ci(0.0, replicates, 0.95)[0] < 0.0  # without the bounds the shift leaves the range
