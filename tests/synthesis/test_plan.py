"""Sampling plans: the three requests, rare classes first, seeded class-conditional covariates, bad plans."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from synthesis_toys import ToyGenerator

from genrad.data import Cohort, Split
from genrad.errors import InputError
from genrad.synthesis import make_plan, parse_per_class


def _cohort(counts: tuple[int, ...] = (30, 60, 10)) -> Cohort:
    """A tiny cohort whose 'age' covariate separates the classes (class k: ages 20k .. 20k + 9)."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(len(counts)), counts).astype(np.int64)
    ages = 20.0 * labels + rng.integers(0, 10, size=labels.size)
    images = rng.random((labels.size, 1, 8, 8), dtype=np.float32)
    train = Split(images, labels, clinical=pd.DataFrame({"age": ages, "site": "A"}))
    return Cohort(splits={"train": train}, class_names=tuple(f"c{k}" for k in range(len(counts))), source="tiny")


def test_per_class_counts_come_rare_class_first() -> None:
    plan = make_plan(ToyGenerator(class_counts=(147, 399)), per_class={1: 10, 0: 30})
    assert plan.counts == ((0, 30), (1, 10))
    assert plan.labels.tolist() == [0] * 30 + [1] * 10
    assert plan.labels.dtype == np.int64


def test_balance_tops_every_class_up_to_the_largest() -> None:
    real = (50, 200, 10)
    plan = make_plan(ToyGenerator(num_classes=3, class_counts=real), balance=True)
    assert plan.counts == ((2, 190), (0, 150))  # rarest first; the largest class gets nothing
    totals = np.bincount(plan.labels, minlength=3) + np.asarray(real)
    assert set(totals.tolist()) == {200}


def test_multiple_keeps_the_real_class_ratio() -> None:
    plan = make_plan(ToyGenerator(num_classes=3, class_counts=(50, 200, 10)), multiple=3)
    assert dict(plan.counts) == {0: 150, 1: 600, 2: 30}
    assert [k for k, _ in plan.counts] == [2, 0, 1]
    assert len(make_plan(ToyGenerator(class_counts=(147, 399)), multiple=0.5)) == 74 + 200


def test_real_counts_come_from_the_data_when_the_model_has_none() -> None:
    plan = make_plan(ToyGenerator(num_classes=3, class_counts=None), balance=True, data=_cohort((30, 60, 10)))
    assert plan.counts == ((2, 50), (0, 30))


def test_covariates_are_drawn_from_the_real_rows_of_each_class_with_the_seed() -> None:
    model = ToyGenerator(num_classes=3, covariates=("age",), class_counts=(30, 60, 10))
    cohort = _cohort()
    plan = make_plan(model, per_class={0: 40, 2: 25}, data=cohort, seed=3)
    assert plan.covariate_names == ["age"]
    ages = plan.covariates["age"].to_numpy()
    for label in (0, 2):
        real = set(cohort.train.clinical["age"][cohort.train.labels == label])
        assert set(ages[plan.labels == label]) <= real
    again = make_plan(model, per_class={0: 40, 2: 25}, data=cohort, seed=3)
    other = make_plan(model, per_class={0: 40, 2: 25}, data=cohort, seed=4)
    np.testing.assert_array_equal(again.covariates, plan.covariates)
    assert not np.array_equal(other.covariates, plan.covariates)


def test_a_covariate_table_with_or_without_labels(tmp_path) -> None:
    model = ToyGenerator(covariates=("age",))
    path = tmp_path / "covariates.csv"
    pd.DataFrame({"age": [30.0, 70.0], "label": [0, 1]}).to_csv(path, index=False)
    plan = make_plan(model, per_class={0: 5, 1: 5}, covariates=path)
    assert plan.covariates["age"].tolist() == [30.0] * 5 + [70.0] * 5
    plan = make_plan(model, per_class={0: 5, 1: 5}, covariates=pd.DataFrame({"age": [55.0]}))
    assert plan.covariates["age"].tolist() == [55.0] * 10


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        ({"per_class": {5: 10}}, "class 5"),
        ({"per_class": {0: -1}}, "-1 for class 0"),
        ({"per_class": {0: 2.5}}, "2.5 for class 0"),
        ({"per_class": {0: 0, 1: 0}}, "zero images"),
        ({"per_class": "0=5,zero=1"}, "'zero=1'"),
        ({"balance": True, "multiple": 2}, "balance, multiple"),
        ({}, "none"),
        ({"multiple": -2}, "-2"),
    ],
)
def test_bad_plans_name_the_problem(request_: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        make_plan(ToyGenerator(), **request_)


def test_balance_of_balanced_data_is_an_empty_plan() -> None:
    with pytest.raises(InputError, match="zero images"):
        make_plan(ToyGenerator(class_counts=(10, 10)), balance=True)


def test_balance_needs_real_counts() -> None:
    with pytest.raises(InputError, match="--data"):
        make_plan(ToyGenerator(class_counts=None), balance=True)


def test_covariates_the_model_was_not_trained_on_are_refused() -> None:
    table = pd.DataFrame({"age": [50.0], "bmi": [22.0]})
    with pytest.raises(InputError, match=r"\['bmi'\] the model was not trained on"):
        make_plan(ToyGenerator(covariates=("age",)), per_class={0: 1}, covariates=table)
    with pytest.raises(InputError, match="trained without any"):
        make_plan(ToyGenerator(), per_class={0: 1}, covariates=table)


def test_missing_covariate_sources_and_values_are_refused() -> None:
    model = ToyGenerator(covariates=("age",))
    with pytest.raises(InputError, match="--covariates CSV"):
        make_plan(model, per_class={0: 1})
    with pytest.raises(InputError, match="missing or non-numeric"):
        make_plan(model, per_class={0: 1}, covariates=pd.DataFrame({"age": [np.nan]}))
    with pytest.raises(InputError, match="covariate rows for class 1"):
        make_plan(model, per_class={1: 1}, covariates=pd.DataFrame({"age": [50.0], "label": [0]}))


def test_parse_per_class() -> None:
    assert parse_per_class("0=5000, 1=1000") == {0: 5000, 1: 1000}
    with pytest.raises(InputError, match="twice"):
        parse_per_class("0=1,0=2")
    with pytest.raises(InputError, match="CLASS=COUNT"):
        parse_per_class("0:5")
