"""`genrad.evaluation.fidelity`: report structure, real floors, and metric sanity on the phantom, where
the truth is known (a shifted phantom distribution must score worse than a same-distribution sample)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from genrad.data.phantom import make_phantom
from genrad.errors import InputError
from genrad.evaluation import fidelity
from genrad.evaluation.fidelity import METRICS, UNIT_RANGE
from genrad.radiomics import extract

FAST = {"feature_set": "fast", "engine": "fast"}
N_PHANTOM = 400


def _features(split: object) -> pd.DataFrame:
    table = extract(split, progress=False, **FAST)
    table["label"] = split.labels  # type: ignore[attr-defined]
    return table


@pytest.fixture(scope="module")
def phantom_features() -> dict[str, pd.DataFrame]:
    """Radiomic features of a real phantom (test: reference, train: independent real), a same-distribution
    sample, the same sample with larger lesions and stronger texture, and each shift alone."""
    real = make_phantom(n=N_PHANTOM, size=28, seed=0)
    variants = {
        "same": {},
        "shifted": {"diameter_scale": 1.5, "texture_scale": 2.0},
        "texture": {"texture_scale": 3.0},
        "diameter": {"diameter_scale": 1.6},
    }
    tables = {"real": _features(real.test), "real_train": _features(real.train)}
    for name, shift in variants.items():
        tables[name] = _features(make_phantom(n=N_PHANTOM, size=28, seed=1, **shift).train)
    return tables


@pytest.fixture(scope="module")
def reports(phantom_features: dict[str, pd.DataFrame]) -> dict[str, dict]:
    real, floor = phantom_features["real"], phantom_features["real_train"]
    return {
        name: fidelity(real, phantom_features[name], floor_real=floor, n_bootstrap=20, seed=0, class_names=("cyst", "benign", "malignant"))
        for name in ("same", "shifted")
    }


def test_report_has_every_metric_with_interval_and_real_floor(reports: dict[str, dict]) -> None:
    report = reports["same"]
    assert {"frd", "frd_per_class", "kid", "precision", "recall", "density", "coverage", "alpha_precision", "beta_recall", "c2st_auc",
            "features"} <= set(report)
    for name in METRICS:
        entry = report[name]
        assert set(entry) == {"value", "ci", "real_floor"}, name
        assert entry["ci"][0] <= entry["ci"][1], name
    assert set(report["frd_per_class"]) == {"cyst", "benign", "malignant"}
    assert {"value", "ci", "real_floor", "n_real", "n_synthetic"} <= set(report["frd_per_class"]["cyst"])
    assert report["features"]["per_feature"][0]["real_floor_wasserstein"] is not None
    provenance = report["provenance"]
    assert provenance["seed"] == 0 and provenance["real_floor"]["method"].endswith("(floor_real)")
    assert provenance["data"]["real"]["hash"] != provenance["data"]["synthetic"]["hash"]
    json.dumps(report, allow_nan=False)  # strict JSON: no NaN / inf anywhere


def test_every_interval_lies_inside_its_metric_range(reports: dict[str, dict]) -> None:
    """The shifted sample's shares sit near 0 or 1, where a bias-recentred interval would leave [0, 1]."""
    for report in reports.values():
        for name in UNIT_RANGE:
            low, high = report[name]["ci"]
            assert 0.0 <= low <= high <= 1.0, (name, low, high)
        assert report["density"]["ci"][0] >= 0.0


def test_same_seed_gives_the_same_report(phantom_features: dict[str, pd.DataFrame], reports: dict[str, dict]) -> None:
    again = fidelity(phantom_features["real"], phantom_features["same"], floor_real=phantom_features["real_train"], n_bootstrap=20,
                     seed=0, class_names=("cyst", "benign", "malignant"))
    assert json.dumps(again, sort_keys=True) == json.dumps(reports["same"], sort_keys=True)


def test_adding_a_metric_leaves_every_other_metric_byte_identical(phantom_features: dict[str, pd.DataFrame],
                                                                   reports: dict[str, dict]) -> None:
    """Each metric draws from its own stream, so a report computed without a metric differs from the full one only
    by that metric: adding it back (as adding a new metric would) shifts no other number."""
    full = reports["same"]
    for left_out in ("frd", "kid", "precision", "alpha_precision", "c2st_auc"):
        kept = [name for name in METRICS if name != left_out]
        partial = fidelity(phantom_features["real"], phantom_features["same"], floor_real=phantom_features["real_train"],
                           n_bootstrap=20, seed=0, class_names=("cyst", "benign", "malignant"), metrics=kept)
        assert left_out not in partial
        for key in (*kept, "frd_per_class", "features"):
            assert json.dumps(partial[key], sort_keys=True) == json.dumps(full[key], sort_keys=True), (left_out, key)
    with pytest.raises(InputError, match="metrics among"):
        fidelity(phantom_features["real"], phantom_features["same"], metrics=["fid"])


def test_shifted_phantom_scores_clearly_worse(reports: dict[str, dict]) -> None:
    same, shifted = reports["same"], reports["shifted"]
    assert shifted["frd"]["value"] > same["frd"]["value"] + 1.0
    assert shifted["frd"]["ci"][0] > same["frd"]["ci"][1]
    assert shifted["precision"]["value"] < same["precision"]["value"] - 0.1
    assert shifted["c2st_auc"]["value"] > same["c2st_auc"]["value"] + 0.2
    assert shifted["kid"]["value"] > same["kid"]["value"]
    # the same-distribution sample is about as far from the reference as other real images are
    assert abs(same["frd"]["value"] - same["frd"]["real_floor"]) < 0.5
    assert abs(same["c2st_auc"]["value"] - 0.5) < 0.15


@pytest.mark.parametrize("shift", ["texture", "diameter"])
def test_per_feature_table_names_the_shifted_features_first(phantom_features: dict[str, pd.DataFrame], shift: str) -> None:
    """The truly shifted features are found by pairing: the same phantom seed with and without the
    shift differs only through the shifted parameter. The table's ranking must follow that effect."""
    real, base, shifted = phantom_features["real"], phantom_features["same"], phantom_features[shift]
    columns = [c for c in real.columns if c != "label"]
    effect = ((shifted[columns] - base[columns]).mean() / real[columns].std()).abs()
    report = fidelity(real, shifted, n_bootstrap=0)
    ranking = pd.Series({row["feature"]: row["wasserstein"] for row in report["features"]["per_feature"]})
    assert spearmanr(ranking, effect[ranking.index]).statistic > 0.8
    assert (effect.rank(pct=True)[ranking.index[:5]] >= 0.8).all()


def test_real_floor_without_an_independent_set_splits_the_reference(phantom_features: dict[str, pd.DataFrame]) -> None:
    report = fidelity(phantom_features["real"], phantom_features["same"], n_bootstrap=0)
    floor = report["provenance"]["real_floor"]
    assert floor["method"] == "two disjoint halves of the real reference"
    assert floor["n_reference"] + floor["n_compared"] <= len(phantom_features["real"])
    assert report["frd"]["ci"] == [None, None]


def test_bad_input_is_an_input_error(phantom_features: dict[str, pd.DataFrame]) -> None:
    real = phantom_features["real"]
    with pytest.raises(InputError, match="feature columns"):
        fidelity(real, real.drop(columns=[real.columns[0]]), n_bootstrap=0)
    with pytest.raises(InputError, match="cohort\\['test'\\]"):
        fidelity(make_phantom(n=60, size=28, seed=0), real, n_bootstrap=0)
    with pytest.raises(InputError, match="n_bootstrap"):
        fidelity(real, real, n_bootstrap=-1)


def test_split_input_extracts_features_and_keeps_labels() -> None:
    cohort = make_phantom(n=120, size=28, seed=3)
    report = fidelity(cohort.test, cohort.train, n_bootstrap=0, **FAST)
    assert report["provenance"]["data"]["real"]["hash"] == cohort.test.content_hash()
    assert set(report["frd_per_class"]) <= {"0", "1", "2"} and report["frd_per_class"]
    assert np.isfinite(report["frd"]["value"])


def test_a_balanced_synthetic_set_is_compared_at_the_reference_class_mix(phantom_features: dict[str, pd.DataFrame]) -> None:
    """A same-distribution sample with every class equally large differs from the imbalanced reference only in its
    class mix: scored at the reference's mix it sits near the real floor, scored as given it does not."""
    real, same = phantom_features["real"], phantom_features["same"]
    assert real["label"].value_counts().max() > 2 * real["label"].value_counts().min()
    smallest = int(same["label"].value_counts().min())
    balanced = same.groupby("label", group_keys=False).apply(lambda rows: rows.head(smallest)).reset_index(drop=True)
    matched = fidelity(real, balanced, n_bootstrap=0)
    as_given = fidelity(real, balanced, n_bootstrap=0, class_mix="as_given")
    assert matched["frd"]["value"] < 0.7 * as_given["frd"]["value"]
    assert matched["frd"]["value"] < 1.5 * matched["frd"]["real_floor"]
    data = matched["provenance"]["data"]["synthetic"]
    assert data["n"] == len(balanced) > data["n_in_class_mix"]
    assert matched["provenance"]["config"]["class_mix"] == "reference"
    for name, entry in matched["frd_per_class"].items():  # every synthetic image of each class, either way
        assert entry["value"] == as_given["frd_per_class"][name]["value"]
    with pytest.raises(InputError, match="class_mix"):
        fidelity(real, balanced, n_bootstrap=0, class_mix="balanced")
