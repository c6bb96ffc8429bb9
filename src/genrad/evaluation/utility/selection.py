"""Choosing a utility recipe without the test split: two-fold cross-validation inside the training split.

BreastMNIST-sized validation splits are too small to choose between recipes (78 images, many with a
near-twin in train), so the recipes are compared on held-out *training* images instead:

1. `cross_validation_folds` splits the training split in two stratified halves, A (the fixed
   ``real@50%`` fraction of `genrad.evaluation.utility.real_fraction_indices`) and B (the rest). Fold A
   trains on A and is scored on B, fold B the reverse; both stop early on the real validation split.
2. Each fold's synthetic pools must come from generators trained on that fold's training half only,
   so no held-out image can leak into the synthetic images (the caller trains them; see
   benchmarks/utility_breastmnist.py).
3. `select_recipe` runs the utility protocol on each fold for every (pool, arm) candidate and ranks the
   candidates by their mean held-out AUC over folds and seeds, paired against the fold's ``real`` arm.

Neither function receives the cohort's test split: a fold's "test" split is the other training half.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from genrad.data.cohort import Cohort, Split
from genrad.errors import InputError
from genrad.evaluation.stats import t_interval
from genrad.evaluation.utility.arms import Arm
from genrad.evaluation.utility.counts import real_fraction_indices
from genrad.evaluation.utility.protocol import run_protocol

FOLDS = ("A", "B")


def fold_indices(train: Split, num_classes: int) -> dict[str, np.ndarray]:
    """Training-split indices of the two halves: ``A`` = the fixed stratified 50% fraction, ``B`` = the rest."""
    half = real_fraction_indices(train.labels, 0.5, num_classes)
    return {"A": half, "B": np.setdiff1d(np.arange(len(train)), half)}


def cross_validation_folds(train: Split, val: Split, *, class_names: Sequence[str]) -> dict[str, Cohort]:
    """Fold name -> a cohort that trains on that half of `train`, stops early on `val` and is scored on the
    other half (its ``test`` split). Only the training and validation splits go in."""
    halves = fold_indices(train, len(class_names))
    folds = {}
    for name, other in zip(FOLDS, reversed(FOLDS), strict=True):
        splits = {"train": train.subset(halves[name]), "val": val, "test": train.subset(halves[other])}
        folds[name] = Cohort(splits=splits, class_names=tuple(class_names), source=f"training fold {name}")
    return folds


def select_recipe(
    folds: Mapping[str, Cohort],
    pools: Mapping[str, Mapping[str, Split]],
    arms: Sequence[Arm | str],
    *,
    seeds: int | Sequence[int] = 3,
    recipe: Mapping[str, Any] | None = None,
    baselines: Sequence[Arm | str] = ("real", "real+augment"),
    keeps: Mapping[str, Mapping[str, np.ndarray]] | None = None,
    cache_dir: str | Path | None = None,
    workers: int = 1,
    progress: bool = False,
) -> dict[str, Any]:
    """Cross-validated score of every (pool, arm) candidate; the best is the one to freeze.

    `pools` maps a pool name (a generator configuration) to its synthetic split per fold, each drawn from
    a generator trained on that fold's training half. Every synthetic arm runs on every pool; the
    `baselines` (no synthetic images) run once per fold. A candidate's score is its mean held-out AUC over
    folds and seeds; ``delta_vs_real`` is the mean of the per-fold, per-seed paired differences to the
    fold's ``real`` arm (Student-t interval over those differences). `keeps` gives the ``+filtered`` arms a pool's
    per-sample QA keep mask per fold (fitted on that fold's training half). Returns the selection table, best first.
    """
    if set(folds) != set(FOLDS):
        raise InputError(f"folds {FOLDS}", f"{sorted(folds)}", "build them with cross_validation_folds")
    for name, per_fold in pools.items():
        if set(per_fold) != set(FOLDS):
            raise InputError(f"pool {name!r} with one synthetic split per fold {FOLDS}", f"{sorted(per_fold)}",
                             "sample each fold's pool from a generator trained on that fold")
    arm_list = [Arm.parse(arm) for arm in arms]
    base_list = [Arm.parse(arm) for arm in baselines]
    if Arm() not in base_list:
        base_list.insert(0, Arm())
    synthetic_arms = [arm for arm in arm_list if arm.uses_synthetic]
    rows: list[dict[str, Any]] = []
    per_fold: dict[tuple[str | None, str], dict[str, dict[str, Any]]] = {}
    for fold, cohort in folds.items():
        root = Path(cache_dir) / f"fold-{fold}" if cache_dir is not None else None  # one cache: real runs are shared
        payload = run_protocol(cohort, None, arms=base_list, seeds=seeds, recipe=recipe, cache_dir=root, workers=workers, progress=progress)
        for arm in payload["arms"]:
            per_fold.setdefault((None, arm["name"]), {})[fold] = arm
        for pool_name, pool in pools.items():
            if not synthetic_arms:
                continue
            keep = (keeps or {}).get(pool_name, {}).get(fold)
            payload = run_protocol(cohort, pool[fold], arms=[Arm(), *synthetic_arms], seeds=seeds, recipe=recipe, keep=keep,
                                   cache_dir=root, workers=workers, progress=progress)
            for arm in payload["arms"][1:]:
                per_fold.setdefault((pool_name, arm["name"]), {})[fold] = arm
    for (pool_name, arm_name), results in per_fold.items():
        aucs = np.concatenate([results[fold]["auc"]["values"] for fold in FOLDS])
        deltas = np.concatenate([results[fold]["delta_vs_real"]["auc"]["values"] if results[fold]["delta_vs_real"]
                                 else np.zeros(len(results[fold]["auc"]["values"])) for fold in FOLDS])
        rows.append({
            "pool": pool_name,
            "arm": arm_name,
            "cv_auc": float(aucs.mean()),
            "cv_delta_auc_vs_real": {k: v for k, v in t_interval(deltas).items() if k != "values"},
            "per_fold_auc": {fold: results[fold]["auc"]["mean"] for fold in FOLDS},
            "cv_rare_recall": float(np.mean([results[fold]["rare_class_recall"]["mean"] for fold in FOLDS])),
        })
    rows.sort(key=lambda row: -row["cv_auc"])
    candidates = [row for row in rows if row["pool"] is not None]
    return {
        "table": rows,
        "best": candidates[0] if candidates else None,
        "folds": {fold: {"train": len(cohort.train), "heldout": len(cohort.test)} for fold, cohort in folds.items()},
        "criterion": "mean held-out AUC over folds and seeds (the test split is never read)",
    }
