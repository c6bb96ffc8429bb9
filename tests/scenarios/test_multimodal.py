"""Multi-modal synthesis: seeded class-conditional records, within-class correlations with bootstrap CIs,
table fidelity, and the cross-modal link on the phantom (generated pairs pass, shuffled pairs fail)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from genrad.data.phantom import make_phantom
from genrad.errors import InputError, NotFittedError
from genrad.scenarios.multimodal import (
    CovariateFeatureCorrelations,
    RetrievalGenerator,
    correlation,
    covariate_feature_correlations,
    multimodal_fidelity,
    table_fidelity,
)
from genrad.synthesis.clinical import (
    ClinicalSynthesizer,
    generate_pairs,
    records_for_plan,
    sample_clinical,
)


@pytest.fixture(scope="module")
def phantom():
    return make_phantom(n=2000, seed=0)


def test_records_are_seeded_and_class_conditional(phantom):
    train = phantom.train
    counts = {0: 300, 1: 300, 2: 120}
    first = sample_clinical(train.clinical, train.labels, counts, seed=0)
    assert first.equals(sample_clinical(train.clinical, train.labels, counts, seed=0))
    assert not first.equals(sample_clinical(train.clinical, train.labels, counts, seed=1))
    assert list(first.columns) == ["label", *train.clinical.columns]
    assert first["label"].value_counts().to_dict() == counts
    assert first.dtypes.drop("label").equals(train.clinical.dtypes)
    assert set(first["sex"]) <= {"F", "M"}
    for k in counts:
        real = train.clinical[train.labels == k]["lesion_diameter_mm"]
        synthetic = first[first["label"] == k]["lesion_diameter_mm"]
        assert synthetic.median() == pytest.approx(real.median(), rel=0.1)
        assert real.min() <= synthetic.min() and synthetic.max() <= real.max()


def test_records_follow_the_requested_labels(phantom):
    synthesizer = ClinicalSynthesizer()
    with pytest.raises(NotFittedError):
        synthesizer.sample(np.array([0]), seed=0)
    synthesizer.fit(phantom.train.clinical, phantom.train.labels)
    labels = np.array([2, 0, 2, 1, 0], dtype=np.int64)
    records = synthesizer.sample(labels, seed=0)
    alone = synthesizer.sample(np.array([2, 2]), seed=0)  # class 2's stream does not depend on the others
    assert records.iloc[[0, 2]].reset_index(drop=True).equals(alone)
    with pytest.raises(InputError, match="fitted classes"):
        synthesizer.sample(np.array([5]), seed=0)
    with pytest.raises(InputError, match="rows per class"):
        ClinicalSynthesizer().fit(phantom.train.clinical.iloc[:20], np.r_[np.zeros(18), np.ones(2)].astype(int))


def test_table_fidelity_scores_good_records_above_broken_ones(phantom):
    train, test = phantom.train, phantom.test
    real = test.clinical.assign(label=test.labels.astype(str))
    good = sample_clinical(train.clinical, train.labels, test.class_counts(), seed=0)
    good = good[list(test.clinical.columns)].assign(label=good["label"].astype(str))
    broken = good.assign(label=np.random.default_rng(0).permutation(good["label"].to_numpy()))  # class link cut
    scores_good, scores_broken = table_fidelity(real, good), table_fidelity(real, broken)
    assert scores_good["column_shapes"] > 0.85
    assert scores_good["column_pair_trends"] > scores_broken["column_pair_trends"] + 0.05
    assert set(scores_good["columns"]) == set(real.columns)


def test_correlation_matches_scipy_and_numpy():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(200)
    y = 0.6 * x + rng.standard_normal(200)
    assert correlation(x, y, n_bootstrap=0)[0] == pytest.approx(spearmanr(x, y)[0], abs=1e-12)
    assert correlation(x, y, method="pearson", n_bootstrap=0)[0] == pytest.approx(np.corrcoef(x, y)[0, 1], abs=1e-12)


def test_within_class_correlation_removes_class_confounding():
    rng = np.random.default_rng(1)
    labels = np.repeat([0, 1, 2], 200)
    x = labels + 0.3 * rng.standard_normal(600)  # both follow the class, independent within it
    y = labels + 0.3 * rng.standard_normal(600)
    pooled, _ = correlation(x, y, n_bootstrap=0)
    within, interval = correlation(x, y, labels=labels, n_bootstrap=300, seed=0)
    assert pooled > 0.8
    assert abs(within) < 0.15 and interval[1] - interval[0] < 0.3


def test_bootstrap_interval_covers_the_truth_and_is_seeded():
    rng = np.random.default_rng(2)
    xy = rng.multivariate_normal([0, 0], [[1, 0.5], [0.5, 1]], 400)
    r, interval = correlation(xy[:, 0], xy[:, 1], method="pearson", n_bootstrap=500, seed=3)
    assert interval[0] < 0.5 < interval[1] and interval[1] - interval[0] < 0.2
    assert correlation(xy[:, 0], xy[:, 1], method="pearson", n_bootstrap=500, seed=3) == (r, interval)
    frame = pd.DataFrame(xy, columns=["c", "f"])
    table = covariate_feature_correlations(frame[["c"]], frame[["f"]], [("c", "f")], method="pearson", n_bootstrap=500, seed=3)
    assert table.loc[0, "r"] == r and [table.loc[0, "ci_low"], table.loc[0, "ci_high"]] == interval
    streaming = CovariateFeatureCorrelations([("c", "f")], method="pearson", n_bootstrap=500, seed=3)
    streaming.update(frame.iloc[:150][["c"]], frame.iloc[:150][["f"]]).update(frame.iloc[150:][["c"]], frame.iloc[150:][["f"]])
    pd.testing.assert_frame_equal(streaming.compute(), table)


def _pairs(phantom, generator_model, seed=0):
    synthesizer = ClinicalSynthesizer().fit(phantom.train.clinical, phantom.train.labels)
    return generate_pairs(generator_model, synthesizer, phantom.train.class_counts(), seed=seed)


def test_cross_modal_link_on_the_phantom(phantom):
    """Covariate-driven pairs reproduce the real diameter-feature correlation; shuffled pairs do not.

    The image generator is truth-conditioned: phantom images of the requested class and (nearest)
    lesion diameter from a large, independent phantom draw."""
    pool = make_phantom(n=12000, seed=7).train
    synthetic = _pairs(phantom, RetrievalGenerator(pool, ["lesion_diameter_mm"]))
    assert synthetic.images.shape == phantom.train.images.shape
    assert list(synthetic.clinical.columns) == list(phantom.train.clinical.columns)
    result = multimodal_fidelity(phantom.train, synthetic, select_on=phantom.val, feature_set="fast", n_bootstrap=500)
    (link,) = result["cross_modal"]
    assert link["covariate"] == "lesion_diameter_mm" and abs(link["r"]) > 0.3
    assert link["reproduced"], link  # the difference CI contains 0 (see cross_modal_link)
    assert not link["control_reproduced"] and abs(link["r_shuffled"]) < 0.1, link
    assert result["table"]["column_shapes"] > 0.85 and np.isfinite(result["images"]["frd"])

    # A generator that gets the class right but ignores the covariates fails the same check.
    class_only = _pairs(phantom, RetrievalGenerator(pool, ["lesion_diameter_mm"], use_covariates=False))
    blind = multimodal_fidelity(phantom.train, class_only, pairs=[(link["covariate"], link["feature"])], feature_set="fast",
                                n_bootstrap=500)
    assert not blind["cross_modal"][0]["reproduced"]


def test_records_for_a_sampling_plan(phantom):
    from genrad.synthesis.plan import SamplingPlan

    drawn = pd.DataFrame({"lesion_diameter_mm": np.full(7, 99.0)})
    plan = SamplingPlan(((2, 3), (0, 4)), drawn, "real")
    new_plan, records = records_for_plan(plan, phantom, seed=0)
    assert len(records) == 7 and list(records.columns) == list(phantom.train.clinical.columns)
    assert np.array_equal(new_plan.labels, plan.labels)
    assert np.array_equal(new_plan.covariates["lesion_diameter_mm"], records["lesion_diameter_mm"].astype(float))
    malignant, cyst = records["lesion_diameter_mm"][:3], records["lesion_diameter_mm"][3:]
    assert malignant.mean() > cyst.mean()  # records follow the planned classes
    with pytest.raises(InputError, match="clinical table"):
        records_for_plan(plan, None, seed=0)


def test_pairs_need_a_covariate_conditioned_model(phantom):
    class Unconditioned:
        covariates = ()

    synthesizer = ClinicalSynthesizer().fit(phantom.train.clinical, phantom.train.labels)
    with pytest.raises(InputError, match="conditioned on clinical columns"):
        generate_pairs(Unconditioned(), synthesizer, {0: 2}, seed=0)


def test_generate_with_clinical_writes_the_records(tmp_path, capsys):
    """`genrad generate --with-clinical`: one record per image, in the manifest and the npz, images conditioned on it."""
    from genrad.cli.main import main
    from genrad.data import load
    from genrad.models import VAE
    from genrad.synthesis import SyntheticSet

    cohort = make_phantom(n=200, seed=2)
    cohort.save(str(tmp_path / "real.npz"))
    model = VAE(num_classes=3, covariates=("lesion_diameter_mm",), channels=(8, 16), latent_dim=8)
    model.fit(cohort.train, max_steps=2, seed=0, progress=False).save(tmp_path / "run")
    args = ["generate", str(tmp_path / "run"), "--per-class", "0=6,1=6,2=4", "--data", str(tmp_path / "real.npz"),
            "--seed", "3", "--with-clinical"]
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--out", str(tmp_path / "a")])
    assert exit_info.value.code in (0, None), capsys.readouterr().err
    synthetic = SyntheticSet(tmp_path / "a")
    manifest = synthetic.manifest
    columns = list(cohort.train.clinical.columns)
    assert set(columns) <= set(manifest.columns) and manifest["synthetic"].all()
    clinical = load(str(tmp_path / "a" / "synthetic.npz")).train.clinical
    assert sorted(clinical.columns) == sorted(columns)
    assert set(clinical["sex"]) <= {"F", "M"}
    assert np.array_equal(clinical["lesion_diameter_mm"], manifest["lesion_diameter_mm"])
    assert np.array_equal(clinical["age"], manifest["age"])
    malignant = manifest.loc[manifest["label"] == 2, "lesion_diameter_mm"].mean()
    assert malignant > manifest.loc[manifest["label"] == 0, "lesion_diameter_mm"].mean()
    with pytest.raises(SystemExit):
        main([*args, "--out", str(tmp_path / "b")])
    assert (tmp_path / "a" / "synthetic.npz").read_bytes() == (tmp_path / "b" / "synthetic.npz").read_bytes()
    assert synthetic.record["generation"]["plan"]["covariate_source"] == "sdv-gaussian-copula-per-class"

    # The pairs' fidelity from the command line.
    with pytest.raises(SystemExit) as exit_info:
        main(["scenarios", "multimodal", "--data", str(tmp_path / "real.npz"),
              "--synthetic", str(tmp_path / "a" / "synthetic.npz"), "--out", str(tmp_path / "fidelity")])
    assert exit_info.value.code in (0, None)
    report = json.loads((tmp_path / "fidelity" / "multimodal.json").read_text())
    assert report["cross_modal"][0]["covariate"] == "lesion_diameter_mm"
    assert 0 <= report["table"]["column_shapes"] <= 1 and report["provenance"]["data_hash"] == cohort.content_hash()
