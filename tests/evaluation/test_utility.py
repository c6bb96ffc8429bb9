"""The utility protocol: arm grammar, deterministic nested draws, intervals, caching, and that it
detects a real effect (phantom truth helps the starved rare class; label-shuffled data does not)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from scipy import stats
from utility_toys import TINY, blob_cohort, blobs

from genrad.data.cohort import Cohort
from genrad.data.phantom import make_phantom
from genrad.errors import InputError
from genrad.evaluation.stats import t_interval
from genrad.evaluation.utility import (
    DEFAULT_STRATEGY,
    MULTIPLES,
    QUICK,
    STRATEGIES,
    Arm,
    agreement_mask,
    arm_counts,
    arm_parts,
    arm_training_set,
    control_arms,
    count_matched_control,
    default_arms,
    evaluate_utility,
    get_strategy,
    keep_mask_from_manifest,
    real_fraction_indices,
    run_protocol,
    synthetic_counts,
    synthetic_needed,
    utility_arms,
)
from genrad.evaluation.utility import classifier as classifier_module


def test_arm_names_round_trip_and_bad_names_fail() -> None:
    arms = default_arms(MULTIPLES, filtered=True, ablation=True)
    names = [arm.name for arm in arms]
    assert names[:3] == ["real", "real+reweight", "real+augment"]
    assert {"real+synthetic@2x", "real+synthetic@2x+balanced", "real+synthetic@0.5x+filtered", "synthetic@1x"} <= set(names)
    assert "real@25%+synthetic@1x+balanced" in names
    assert [Arm.parse(name) for name in names] == arms
    assert Arm.parse("synthetic") == Arm(real_fraction=0.0, synthetic_multiple=1.0)
    for bad, match in (("real+magic", "arm terms"), ("real+balanced", "only with synthetic"), ("augment", "real or synthetic")):
        with pytest.raises(InputError, match=match):
            Arm.parse(bad)


def test_synthetic_counts_keep_the_ratio_or_fill_the_rare_class_first() -> None:
    real = np.array([147, 399])  # BreastMNIST train: malignant, benign
    plain = synthetic_counts(real, real, 2.0, balanced=False)
    assert plain.sum() == 1092 and abs(plain[0] / plain.sum() - 147 / 546) < 1e-3
    half = synthetic_counts(real, real, 0.5, balanced=True)  # 273 images: the rare class first
    assert half.sum() == 273 and np.ptp(real + half) <= 1
    assert (synthetic_counts(real, real, 10.0, balanced=True) + real).tolist() == [3003, 3003]
    assert synthetic_counts(real, np.zeros(2, dtype=np.int64), 1.0, balanced=True).tolist() == [273, 273]


def test_training_sets_are_seeded_nested_and_filtered() -> None:
    real = blobs((30, 10), seed=0)
    pool = blobs((200, 200), seed=1)
    keep = np.random.default_rng(0).uniform(size=len(pool)) < 0.5
    def ids(arm: str, seed: int) -> set[bytes]:
        split = arm_training_set(Arm.parse(arm), real, pool, seed=seed, num_classes=2, keep=keep)
        return {image.tobytes() for image in split.images}
    pool_ids = {image.tobytes(): i for i, image in enumerate(pool.images)}
    one, two = ids("real+synthetic@1x", 0), ids("real+synthetic@2x", 0)
    assert one < two and one == ids("real+synthetic@1x", 0) and one != ids("real+synthetic@1x", 1)
    filtered = ids("real+synthetic@2x+filtered", 0)
    assert all(keep[pool_ids[i]] for i in filtered if i in pool_ids)
    fraction = arm_training_set(Arm.parse("real@50%"), real, None, seed=0, num_classes=2)
    assert fraction.class_counts() == {0: 15, 1: 5}
    assert arm_counts(Arm.parse("real@10%+synthetic@1x+balanced"), np.array([30, 10]))["synthetic"].tolist() == [19, 21]


def test_t_interval_is_the_student_t_interval() -> None:
    values = [0.81, 0.84, 0.86, 0.83, 0.88]
    low, high = stats.t.interval(0.95, 4, loc=np.mean(values), scale=stats.sem(values))
    assert t_interval(values)["ci"] == pytest.approx([low, high])
    assert t_interval([0.5])["ci"] is None


def test_bad_protocol_inputs_fail_before_training(monkeypatch) -> None:
    monkeypatch.setattr(classifier_module.Classifier, "fit", lambda *a, **k: pytest.fail("trained on bad input"))
    cohort = blob_cohort((30, 10))
    with pytest.raises(InputError, match="synthetic images of class 1"):
        run_protocol(cohort, blobs((500, 5), seed=3), arms=["real+synthetic@1x+balanced"])
    with pytest.raises(InputError, match="QA keep mask"):
        run_protocol(cohort, blobs((50, 50), seed=3), arms=["real+synthetic@1x+filtered"])
    with pytest.raises(InputError, match="keep mask of shape"):
        run_protocol(cohort, blobs((50, 50), seed=3), keep=np.ones(3, dtype=bool))
    with pytest.raises(InputError, match="real image shape"):
        run_protocol(cohort, blobs((50, 50), seed=3, size=20), arms=["synthetic@1x"])
    with pytest.raises(InputError, match="recipe keys"):
        run_protocol(cohort, recipe={"augment": True})


def test_payload_cache_and_resume(tmp_path, monkeypatch, one_torch_thread) -> None:
    cohort = blob_cohort((30, 10))
    pool = blobs((80, 80), seed=3)
    arms = ["real", "real+synthetic@1x+filtered", "synthetic@1x"]
    keep = np.arange(len(pool)) % 3 > 0
    recipe = {**TINY, "max_steps": 20}
    first = run_protocol(cohort, pool, arms=arms, seeds=2, keep=keep, recipe=recipe, cache_dir=tmp_path)
    assert [arm["name"] for arm in first["arms"]] == arms
    real, filtered, synthetic_only = first["arms"]
    assert real["delta_vs_real"] is None and filtered["n_train"]["synthetic"] == [30, 10]
    for arm in (filtered, synthetic_only):
        for key in ("auc", "balanced_accuracy", "rare_class_recall"):
            assert len(arm[key]["values"]) == 2 and len(arm[key]["ci"]) == 2
            assert arm["delta_vs_real"][key]["values"] == pytest.approx(
                np.subtract(arm[key]["values"], real[key]["values"]).tolist()
            )
        assert set(arm["recall_per_class"]) == {"0", "1"}
    assert first["rare_class"] == 1 and first["provenance"]["data_hash"]["real"] == cohort.content_hash()
    assert (tmp_path / "classifiers" / "real" / "seed-1" / "model.safetensors").exists()
    monkeypatch.setattr(classifier_module.Classifier, "fit", lambda *a, **k: pytest.fail("cache not reused"))
    again = run_protocol(cohort, pool, arms=arms, seeds=2, keep=keep, recipe=recipe, cache_dir=tmp_path)
    assert json.dumps(again, sort_keys=True) == json.dumps(first, sort_keys=True)


def test_test_subsets_score_the_same_classifiers_on_part_of_the_test_split(tmp_path, one_torch_thread) -> None:
    """A subset (e.g. test images without a train twin) rescores the cached predictions: the whole split gives the
    full figures back, a part gives the metrics of those images alone, and a bad mask fails before training.
    Two worker processes give the same payload as one."""
    from genrad.evaluation.utility.metrics import classification_metrics

    cohort = blob_cohort((30, 10))
    pool = blobs((80, 80), seed=3)
    part = np.arange(len(cohort.test)) % 4 > 0
    arms = ["real", "real+synthetic@1x"]
    payload = run_protocol(cohort, pool, arms=arms, seeds=2, recipe={**TINY, "max_steps": 20}, cache_dir=tmp_path,
                           test_subsets={"all": np.ones(len(cohort.test), dtype=bool), "part": part})
    assert json.dumps(payload["subsets"]["all"]["arms"], sort_keys=True) == json.dumps(payload["arms"], sort_keys=True)
    assert payload["subsets"]["part"]["test_images"] == int(part.sum())
    for arm in payload["subsets"]["part"]["arms"]:
        runs = _runs(tmp_path, arm["name"], payload["seeds"])
        expected = [classification_metrics(cohort.test.labels[part], np.asarray(run["probabilities"])[part], num_classes=2)["auc"]
                    for run in runs]
        assert arm["auc"]["values"] == pytest.approx(expected)
    parallel = run_protocol(cohort, pool, arms=arms, seeds=2, recipe={**TINY, "max_steps": 20}, workers=2,
                            test_subsets={"all": np.ones(len(cohort.test), dtype=bool), "part": part})
    assert json.dumps(parallel, sort_keys=True) == json.dumps(payload, sort_keys=True)
    with pytest.raises(InputError, match="test subset 'none'"):
        run_protocol(cohort, pool, arms=arms, seeds=2, recipe={**TINY, "max_steps": 20}, cache_dir=tmp_path / "fresh",
                     test_subsets={"none": np.zeros(len(cohort.test), dtype=bool)})
    assert not (tmp_path / "fresh").exists()


def test_a_strategy_is_tested_with_and_without_augmentation_and_sizes_its_pool() -> None:
    strategy = get_strategy(DEFAULT_STRATEGY)
    augmented = replace(strategy.arm, augment=True)
    control = count_matched_control(strategy.arm)
    assert control is not None and control.oversample and control.agreement is None
    assert [arm.name for arm in utility_arms(DEFAULT_STRATEGY)] == [
        "real", control.name, "real+reweight", "real+augment", "real+trivialaugment", strategy.arm.name, augmented.name,
        "synthetic@1x"]
    with_curve = [arm.name for arm in utility_arms(strategy, (1.0, 2.0))]
    assert with_curve[:8] == [arm.name for arm in strategy.arms()] and len(with_curve) == len(set(with_curve))
    assert {"real+reweight", "real+synthetic@2x+balanced", "synthetic@2x"} <= set(with_curve)
    assert utility_arms(None) == default_arms(MULTIPLES) and utility_arms(strategy, synthetic=False) == default_arms(synthetic=False)
    real = np.array([147, 399])
    needed = np.maximum(arm_counts(strategy.arm, real)["synthetic"], arm_counts(Arm.parse("synthetic@1x"), real)["synthetic"])
    assert synthetic_needed(utility_arms(strategy), real).tolist() == needed.tolist()
    balanced, plain = (arm_counts(Arm.parse(name), real)["synthetic"] for name in ("real+synthetic@1x+balanced", "real+synthetic@0.5x"))
    assert balanced.tolist() == [399, 147] and plain.tolist() == [74, 199]
    assert synthetic_needed(["real", "real+synthetic@1x+balanced", "real+synthetic@0.5x"], real, margin=1.2).tolist() == [479, 239]
    assert set(STRATEGIES) >= {DEFAULT_STRATEGY} and all(get_strategy(name).name == name for name in STRATEGIES)
    assert get_strategy("default") is STRATEGIES[DEFAULT_STRATEGY]
    with pytest.raises(InputError, match="a utility strategy") as error:
        get_strategy("magic")
    assert "--strategy" in error.value.fix


def test_augmented_synthetic_arms_are_paired_against_real_plus_augment(tmp_path, one_torch_thread) -> None:
    """``delta_vs_augment``: whether synthetic images add to what augmentation gives, paired by seed and test image;
    `evaluate_utility` records the strategy it tested."""
    cohort = blob_cohort((30, 10))
    pool = blobs((80, 80), seed=3)
    strategy = STRATEGIES["mix"]
    payload = evaluate_utility(cohort, pool, out=tmp_path, seeds=2, strategy=strategy, quick=True)
    arms = {arm["name"]: arm for arm in payload["arms"]}
    assert list(arms) == [arm.name for arm in strategy.arms()] and payload["strategy"] == strategy.record()
    augmented = arms["real+synthetic@1x+augment"]
    assert augmented["delta_vs_augment"]["auc"]["values"] == pytest.approx(
        np.subtract(augmented["auc"]["values"], arms["real+augment"]["auc"]["values"]).tolist())
    assert "delta_vs_augment" not in arms["real+synthetic@1x"] and "delta_vs_augment" not in arms["real+augment"]
    assert json.loads((tmp_path / "utility.json").read_text())["strategy"]["arm"] == "real+synthetic@1x"


def test_keep_mask_from_manifest(tmp_path) -> None:
    import pandas as pd

    assert keep_mask_from_manifest(tmp_path / "synthetic.npz") is None
    # As `genrad generate` writes it: image 1 was dropped at generation (row -1), rows in npz order.
    manifest = pd.DataFrame({"id": list("abcd"), "row": [1, -1, 0, 2], "kept": [True, False, True, True]})
    manifest.to_csv(tmp_path / "manifest.csv", index=False)
    assert keep_mask_from_manifest(tmp_path / "synthetic.npz") is None
    manifest.assign(qa_flag=[True, None, False, False]).to_csv(tmp_path / "manifest.csv", index=False)
    assert keep_mask_from_manifest(tmp_path / "synthetic.npz").tolist() == [True, False, True]
    with pytest.raises(InputError, match="boolean column 'id'"):
        keep_mask_from_manifest(tmp_path / "synthetic.npz", "id")


def test_protocol_detects_a_real_effect_on_the_phantom(tmp_path, one_torch_thread) -> None:
    """Starved real set (10 malignant images): phantom-truth images raise rare recall; shuffled labels do not."""
    phantom = make_phantom(n=600, size=28, dims=2, seed=0, rare_fraction=0.2)
    rare = phantom.class_names.index("malignant")
    train = phantom.train
    starved = np.sort(np.concatenate([np.flatnonzero(train.labels != rare)[:200], np.flatnonzero(train.labels == rare)[:10]]))
    real = Cohort(
        splits={"train": train.subset(starved), "val": phantom.val, "test": phantom.test}, class_names=phantom.class_names
    )
    truth = make_phantom(n=900, size=28, dims=2, seed=1, rare_fraction=0.3).train  # fresh images, another seed
    shuffled = replace(truth, labels=np.random.default_rng(1).permutation(truth.labels))
    recipe = {"channels": (8, 16, 32, 64), "stem_stride": 2, "max_steps": 150, "eval_every": 10, "patience": 4}
    arms = ["real", "real+synthetic@1x+balanced"]
    results = {}
    for name, synthetic in (("truth", truth), ("shuffled", shuffled)):
        payload = run_protocol(real, synthetic, arms=arms, seeds=4, recipe=recipe, cache_dir=tmp_path)
        results[name] = payload["arms"][1]["delta_vs_real"]
    assert payload["rare_class"] == rare
    truth, shuffled = results["truth"], results["shuffled"]
    assert truth["rare_class_recall"]["ci"][0] > 0 and truth["rare_class_recall"]["mean"] > 0.3
    assert truth["balanced_accuracy"]["ci"][0] > 0 and truth["auc"]["ci"][0] > 0
    # Shuffled rare labels make the classifier call "rare" more often, which is not a better classifier.
    assert not shuffled["balanced_accuracy"]["ci"][0] > 0 and not shuffled["auc"]["ci"][0] > 0


def test_recipe_terms_round_trip_and_are_checked() -> None:
    names = ["real+synthetic@2x+agree0.6", "real+augment+synthetic@1x+balanced+weight0.3",
             "real+synthetic@5x+augment+pretrain", "real@25%+synthetic@1x+filtered+agree0.5+weight0.1"]
    for name in names:
        arm = Arm.parse(name)
        assert Arm.parse(arm.name) == arm
    assert Arm.parse(names[0]).agreement == 0.6 and Arm.parse(names[1]).synthetic_weight == 0.3
    for bad, match in (("real+agree0.5", "only with synthetic"), ("real+synthetic+agree1.5", "0 < TAU < 1"),
                       ("real+synthetic+weight0", "0 < W <= 10"), ("synthetic@1x+pretrain", "real images to fine-tune"),
                       ("real+synthetic+weight0.5+pretrain", "no \\+weightW")):
        with pytest.raises(InputError, match=match):
            Arm.parse(bad)


def test_real_fractions_are_fixed_and_nested() -> None:
    labels = np.repeat([0, 1], [40, 160])
    fractions = {f: set(real_fraction_indices(labels, f, 2).tolist()) for f in (0.1, 0.25, 0.5)}
    assert fractions[0.1] < fractions[0.25] < fractions[0.5]
    assert np.bincount(labels[sorted(fractions[0.25])]).tolist() == [10, 40]
    real = blobs((40, 160), seed=0)
    a = arm_training_set(Arm.parse("real@25%"), real, None, seed=0, num_classes=2)
    b = arm_training_set(Arm.parse("real@25%"), real, None, seed=7, num_classes=2)
    assert np.array_equal(a.images, b.images)  # the same fraction for every seed: a generator can be trained on it


def test_agreement_keeps_only_images_the_real_classifier_agrees_with() -> None:
    real = blobs((30, 10), seed=0)
    pool = blobs((100, 100), seed=1)
    probabilities = np.random.default_rng(0).dirichlet([1, 1], size=len(pool))
    agree = agreement_mask(probabilities, pool.labels, 0.7)
    assert np.array_equal(agree, probabilities[np.arange(len(pool)), pool.labels] >= 0.7)
    _, synthetic = arm_parts(Arm.parse("real+synthetic@2x+agree0.7"), real, pool, seed=0, num_classes=2, agree=agree)
    pool_rows = {image.tobytes(): i for i, image in enumerate(pool.images)}
    chosen = [pool_rows[image.tobytes()] for image in synthetic.images]
    passing = np.bincount(pool.labels[agree], minlength=2)
    assert agree[chosen].all() and len(chosen) == min(60, passing[0]) + min(20, passing[1])  # 2x at the 30:10 ratio
    with pytest.raises(InputError, match="agreement mask"):
        arm_parts(Arm.parse("real+synthetic@2x+agree0.7"), real, pool, seed=0, num_classes=2)


def test_intervals_are_bootstrap_intervals_inside_the_metric_range(tmp_path, one_torch_thread) -> None:
    cohort = blob_cohort((30, 10))
    pool = blobs((80, 80), seed=3)
    payload = run_protocol(cohort, pool, arms=["real", "real+synthetic@1x+weight0.3", "real+synthetic@1x+pretrain"],
                           seeds=3, recipe={**TINY, "max_steps": 20}, cache_dir=tmp_path)
    for arm in payload["arms"]:
        for key in ("auc", "accuracy", "balanced_accuracy", "rare_class_recall", "rare_recall_at_real_specificity"):
            low, high = arm[key]["ci"]
            assert 0.0 <= low <= high <= 1.0
        assert arm["auc"]["values"] == pytest.approx([run["metrics"]["auc"] for run in
                                                     _runs(tmp_path, arm["name"], payload["seeds"])])
        if arm["delta_vs_real"] is not None:
            delta = arm["delta_vs_real"]["auc"]
            assert -1.0 <= delta["ci"][0] <= delta["ci"][1] <= 1.0 and 0.0 <= delta["p_value"] <= 1.0
            assert len(delta["ci_seeds"]) == 2
    assert "bootstrap over seeds and class-stratified test images" in payload["config"]["interval"]


def _runs(cache, name, seeds):
    found = {}
    for path in (cache / "runs").glob("*.json"):
        record = json.loads(path.read_text())
        if record["arm"] == name:
            found[record["seed"]] = record
    return [found[seed] for seed in seeds]


def test_recipe_selection_never_reads_the_test_split(tmp_path, one_torch_thread) -> None:
    """The selection sees only train and val: a cohort with another test split selects the same recipe."""
    from genrad.evaluation.utility.selection import cross_validation_folds, select_recipe

    cohort = blob_cohort((40, 20))
    poisoned = Cohort(splits={**cohort.splits, "test": replace(blobs((15, 15), seed=99, name="test"),
                                                                    labels=np.repeat([1, 0], 15))},
                      class_names=cohort.class_names)
    tables = []
    for index, source in enumerate((cohort, poisoned)):
        folds = cross_validation_folds(source.train, source.val, class_names=source.class_names)
        assert {name: len(fold.test) for name, fold in folds.items()} == {"A": 30, "B": 30}
        pools = {"good": {"A": blobs((50, 50), seed=5), "B": blobs((50, 50), seed=6)}}
        selection = select_recipe(folds, pools, ["real+synthetic@1x", "real+synthetic@1x+weight0.3"], seeds=2,
                                  recipe={**TINY, "max_steps": 20}, cache_dir=tmp_path / str(index))
        tables.append(selection["table"])
    assert tables[0] == tables[1]
    assert {row["arm"] for row in tables[0]} == {"real", "real+augment", "real+synthetic@1x", "real+synthetic@1x+weight0.3"}
    assert selection["best"]["pool"] == "good"


@pytest.mark.slow
def test_the_quick_recipe_learns_nearly_as_well_as_the_full_one_on_the_demo_phantom() -> None:
    """The demo's utility stage runs the quick recipe: its real-only AUC must be within 0.05 of the full recipe's
    on the same phantom, or the demo's utility section would measure an untrained classifier."""
    cohort = make_phantom(n=600, size=28, seed=0)
    quick = run_protocol(cohort, arms=["real"], seeds=QUICK["seeds"], recipe=QUICK["recipe"])["arms"][0]["auc"]["mean"]
    full = run_protocol(cohort, arms=["real"], seeds=QUICK["seeds"])["arms"][0]["auc"]["mean"]
    assert full - quick <= 0.05, (quick, full)


def test_rare_class_amounts_oversampling_and_trivialaugment_arms_parse_and_count() -> None:
    names = ["real+oversample@2xrare+balanced", "real+synthetic@0.5xrare+balanced", "real+reweight+trivialaugment",
             "real+synthetic@4xrare+trivialaugment+balanced+agree0.6", "real@10%+oversample@1x"]
    assert [Arm.parse(name).name for name in names] == names
    real = np.array([1214, 175])  # PneumoniaMNIST rare-disease scenario: normal, pneumonia
    assert arm_counts(Arm.parse("real+synthetic@2xrare+balanced"), real)["synthetic"].tolist() == [0, 350]
    assert arm_counts(Arm.parse("real+synthetic@8xrare+balanced"), real)["synthetic"].tolist() == [181, 1219]  # level 1394.5
    oversampled = arm_counts(Arm.parse("real+oversample@2xrare+balanced"), real)
    assert oversampled["real"].tolist() == [1214, 525] and oversampled["synthetic"].tolist() == [0, 0]
    assert synthetic_needed(["real+oversample@4x"], real).tolist() == [0, 0]
    assert Arm.parse("real+trivialaugment").augmentation == "trivialaugment" and Arm.parse("real+augment").augmentation == "classical"
    for bad, match in (("real+oversample@1x+agree0.6", "oversample@Mx with real"), ("oversample@1x", "oversample@Mx with real"),
                       ("real+augment+trivialaugment", "one augmentation policy")):
        with pytest.raises(InputError, match=match):
            Arm.parse(bad)


def test_oversampling_duplicates_real_images_evenly_to_the_synthetic_arms_count() -> None:
    real = blobs((30, 7), seed=0)
    pool = blobs((100, 100), seed=1)
    synthetic = arm_training_set(Arm.parse("real+synthetic@3xrare+balanced"), real, pool, seed=0, num_classes=2)
    control = count_matched_control(Arm.parse("real+synthetic@3xrare+balanced"))
    assert control is not None and control.name == "real+oversample@3xrare+balanced"
    duplicated = arm_training_set(control, real, None, seed=0, num_classes=2)
    assert duplicated.class_counts() == synthetic.class_counts() == {0: 30, 1: 28}
    rare_ids = [image.tobytes() for image, label in zip(duplicated.images, duplicated.labels, strict=True) if label == 1]
    multiplicity = np.unique(rare_ids, return_counts=True)[1]
    assert len(multiplicity) == 7 and multiplicity.tolist() == [4] * 7  # every rare image 4 times: 7 + 21
    other = arm_training_set(control, real, None, seed=1, num_classes=2)
    assert {image.tobytes() for image in other.images} == {image.tobytes() for image in real.images}
    uneven = arm_training_set(Arm.parse("real+oversample@2xrare+balanced"), real, None, seed=0, num_classes=2)
    counts = np.unique([image.tobytes() for image, label in zip(uneven.images, uneven.labels, strict=True) if label == 1],
                       return_counts=True)[1]
    assert counts.sum() == 21 and np.ptp(counts) <= 1
    assert [arm.name for arm in control_arms(Arm.parse("real+synthetic@5x+pretrain"))] == [
        "real+reweight", "real+augment", "real+trivialaugment"]


def test_synthetic_arms_are_paired_with_the_best_classical_arm_and_their_count_matched_control(tmp_path, one_torch_thread) -> None:
    """Without a given arm, the best classical arm is the one with the best mean validation AUC (never the test split);
    a given arm must be a classical arm of the run; the recipe is also paired with its oversampling control."""
    cohort = blob_cohort((30, 10))
    pool = blobs((80, 80), seed=3)
    arms = ["real", "real+reweight", "real+oversample@1xrare+balanced", "real+synthetic@1xrare+balanced"]
    payload = run_protocol(cohort, pool, arms=arms, seeds=2, recipe={**TINY, "max_steps": 20}, cache_dir=tmp_path)
    val_auc = payload["best_classical"]["val_auc"]
    assert set(val_auc) == set(arms[:3]) and payload["best_classical"]["name"] == max(val_auc, key=val_auc.get)
    rows = {row["name"]: row for row in payload["arms"]}
    recipe, control = rows["real+synthetic@1xrare+balanced"], rows["real+oversample@1xrare+balanced"]
    assert recipe["n_train"]["synthetic"] == [0, 10] and control["n_train"]["real"] == [30, 20]
    assert recipe["delta_vs_oversampling"]["auc"]["values"] == pytest.approx(
        np.subtract(recipe["auc"]["values"], control["auc"]["values"]).tolist())
    best = rows[payload["best_classical"]["name"]]
    assert recipe["delta_vs_best_classical"]["auc"]["values"] == pytest.approx(
        np.subtract(recipe["auc"]["values"], best["auc"]["values"]).tolist())
    assert "delta_vs_best_classical" not in control
    given = run_protocol(cohort, pool, arms=arms, seeds=2, recipe={**TINY, "max_steps": 20}, cache_dir=tmp_path,
                         best_classical="real+reweight")
    assert given["best_classical"]["name"] == "real+reweight" and given["best_classical"]["chosen_by"] == "given"
    with pytest.raises(InputError, match="best_classical"):  # refused before any classifier trains
        run_protocol(cohort, pool, arms=arms, seeds=2, recipe={**TINY, "max_steps": 20}, cache_dir=tmp_path / "fresh",
                     best_classical="real+synthetic@1xrare+balanced")
    assert not (tmp_path / "fresh").exists()


def test_an_input_error_raised_in_a_worker_process_reaches_the_caller_as_itself() -> None:
    import pickle

    error = InputError("a thing", "another", "fix it", source="data.npz", argument="data")
    again = pickle.loads(pickle.dumps(error))
    assert isinstance(again, InputError) and str(again) == str(error) and again.argument == "data"
