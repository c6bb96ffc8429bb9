"""Per-sample QA: defects injected into real held-out images are flagged, clean ones rarely are."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from genrad.data.phantom import make_phantom
from genrad.errors import InputError, NotFittedError
from genrad.evaluation.qa import DIRECTIONS, SampleQA, TailCalibrator, calibration_rank
from genrad.evaluation.qa.defects import DEFECTS, inject

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from hallucination import blur_check, evaluate


@pytest.fixture(scope="module")
def phantom():
    return make_phantom(n=300, size=64, seed=0)


@pytest.fixture(scope="module")
def fitted(phantom) -> SampleQA:
    return SampleQA(feature_set="fast", seed=0).fit(phantom.train, phantom.val)


@pytest.fixture(scope="module")
def clean_scores(fitted: SampleQA, phantom):
    return fitted.score(phantom.test)


def test_score_table_has_every_component_score_flag_and_reason(clean_scores, phantom) -> None:
    assert len(clean_scores) == len(phantom.test)
    assert {f"qa_{name}" for name in DIRECTIONS} | {"qa_score", "qa_flag", "qa_reason"} <= set(clean_scores.columns)
    assert clean_scores["qa_flag"].dtype == bool
    assert set(clean_scores["qa_reason"]) <= set(DIRECTIONS)


def test_few_clean_held_out_images_are_flagged(clean_scores) -> None:
    assert clean_scores["qa_flag"].mean() <= 0.10  # target 5%; 60 test images leave sampling noise


@pytest.mark.parametrize("kind", ["noise_burst", "checkerboard", "inversion", "duplicated_lesion"])
def test_injected_defects_are_flagged(fitted: SampleQA, phantom, clean_scores, kind: str) -> None:
    broken = fitted.score(inject(phantom.test.images, kind, seed=1))
    target = np.r_[np.zeros(len(clean_scores)), np.ones(len(broken))]
    assert roc_auc_score(target, np.r_[clean_scores["qa_score"], broken["qa_score"]]) >= 0.95
    assert broken["qa_flag"].mean() >= 0.8


def test_filter_keeps_clean_images_and_drops_defects(fitted: SampleQA, phantom) -> None:
    images = np.concatenate([phantom.test.images[:20], inject(phantom.test.images[:20], "checkerboard", seed=2)])
    keep = fitted.as_filter()(images, np.zeros(40, dtype=np.int64))
    assert keep.dtype == bool and keep.shape == (40,)
    assert keep[:20].mean() >= 0.8 and not keep[20:].any()


def test_precomputed_features_give_the_same_scores(fitted: SampleQA, phantom, clean_scores) -> None:
    from genrad.radiomics import extract

    features = extract(phantom.test, feature_set="fast", engine="fast", progress=False)
    assert fitted.score(phantom.test.images, features=features).equals(clean_scores)


def test_an_image_whose_features_failed_is_flagged_for_it_not_scored_as_zeros(fitted: SampleQA, phantom, clean_scores) -> None:
    from genrad.radiomics import extract

    features = extract(phantom.test, feature_set="fast", engine="fast", progress=False).to_numpy(np.float64)
    features[0, :3] = np.nan
    table = fitted.score(phantom.test, features=features)
    assert table["qa_failed_features"].iloc[0] == 3 and table["qa_failed_features"].iloc[1:].eq(0).all()
    assert table["qa_flag"].iloc[0] and table["qa_reason"].iloc[0] == "failed_features"
    pd.testing.assert_frame_equal(table.iloc[1:], clean_scores.iloc[1:])


def test_unfitted_and_mismatched_use_is_refused(phantom, fitted: SampleQA) -> None:
    with pytest.raises(NotFittedError):
        SampleQA().score(phantom.test)
    with pytest.raises(InputError, match="shape"):
        fitted.score(np.zeros((2, 1, 28, 28), dtype=np.float32))
    with pytest.raises(InputError, match="false_flag_rate"):
        SampleQA(false_flag_rate=1.5).fit(phantom.train)


def test_volumes_are_scored_slice_by_slice() -> None:
    cohort = make_phantom(n=30, size=28, dims=3, seed=0, rare_fraction=0.2)
    qa = SampleQA(feature_set="fast").fit(cohort.train)
    scores = qa.score(cohort.test)
    assert len(scores) == len(cohort.test) and np.isfinite(scores["qa_score"]).all()


def test_calibration_rank_bounds_the_false_flag_rate_with_the_requested_probability() -> None:
    rng = np.random.default_rng(0)
    n, rate, guarantee = 400, 0.05, 0.9
    rank = calibration_rank(n, rate, guarantee)
    assert calibration_rank(n, rate, 0.5) < rank <= n
    # real scores ~ U(0, 1): the threshold's false-flag rate is 1 - threshold
    thresholds = np.sort(rng.uniform(size=(4000, n)), axis=1)[:, rank - 1]
    assert np.mean(1.0 - thresholds > rate) <= 1.0 - guarantee + 0.02


def test_tail_calibrator_pvalues_are_uniform_and_decrease_beyond_the_sample() -> None:
    values = np.random.default_rng(1).normal(size=2000)
    calibrator = TailCalibrator().fit(values)
    assert np.mean(calibrator.loo_pvalue() <= 0.05) == pytest.approx(0.05, abs=0.01)
    beyond = calibrator.pvalue(np.array([values.max() + 0.5, values.max() + 2.0]))
    assert 0 < beyond[1] < beyond[0] < 1 / 2001


@pytest.mark.parametrize("kind", sorted(DEFECTS))
def test_defects_change_images_within_range_and_are_seeded(phantom, kind: str) -> None:
    images = phantom.test.images[:4]
    broken = inject(images, kind, seed=3)
    assert broken.shape == images.shape and broken.dtype == np.float32
    assert broken.min() >= 0.0 and broken.max() <= 1.0
    assert np.abs(broken - images).max() > 0.02
    assert np.array_equal(broken, inject(images, kind, seed=3))


def test_bad_defect_arguments_are_input_errors(phantom) -> None:
    with pytest.raises(InputError, match="defect"):
        inject(phantom.test.images, "smudge")
    with pytest.raises(InputError, match="2D images"):
        inject(np.zeros((2, 1, 8, 8, 8), dtype=np.float32), "grid")


@pytest.mark.slow
def test_hallucinations_in_breastmnist_are_detected(breastmnist_path: Path) -> None:
    """The benchmark's figures: AUROC >= 0.95 for every defect while <= 5% of clean images are flagged."""
    from genrad.data import load

    result = evaluate(load(breastmnist_path), seed=0)
    assert result["false_flag_rate"] <= 0.05
    assert result["min_auroc"] >= 0.95


def test_blur_is_flagged_as_blur_not_as_a_spectral_peak(fitted, phantom) -> None:
    """Blur lowers the fine-texture part of the spectrum smoothly: its own reason, and no periodic peak."""
    rates = blur_check(fitted, phantom.test.images, seed=1)
    assert rates["flagged_as_blur"] >= 0.95 and rates["spectral_peak_fires"] < 0.05, rates
    assert rates["spectral_peak_fires_on_periodic"] >= 0.95, rates


@pytest.mark.slow
def test_blur_is_flagged_as_blur_on_breastmnist(breastmnist_path: Path) -> None:
    from genrad.data import load

    cohort = load(breastmnist_path)
    rates = blur_check(SampleQA(seed=0).fit(cohort.train, cohort.val), cohort.test.images, seed=1)
    assert rates["flagged_as_blur"] >= 0.95 and rates["spectral_peak_fires"] < 0.05, rates
    assert rates["spectral_peak_fires_on_periodic"] >= 0.95, rates
