"""Scenario augmentation: does training on simulated acquisition conditions make a classifier robust to them?

Two classifiers with the same recipe and seed are trained with early stopping on the clean real
validation split:

1. ``real``: on the real training split;
2. ``real+scenarios``: on the real training split plus `copies` perturbed copies of a pool (synthetic
   images, or the real training images). Each pool image of each copy gets one grid cell
   (perturbation, severity) drawn uniformly, seeded by ``derive_seed(seed, "augment", copy)``.

Both are then swept over the same grid on the real test split (`genrad.scenarios.stress.evaluate_grid`,
with test perturbations seeded by `seed` itself, independent of the training draws), and the AUC drop
from clean images is compared per cell with a paired bootstrap (``drop_reduction`` > 0: the augmented
model loses less).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from genrad.core import derive_seed
from genrad.data.cohort import Cohort, Split
from genrad.errors import InputError
from genrad.provenance import atomic_path, hash_arrays, versions, write_json
from genrad.scenarios.grid import Grid
from genrad.scenarios.perturbations import perturb
from genrad.scenarios.stress import (
    CLEAN,
    N_BOOTSTRAP,
    N_BOOTSTRAP_QUICK,
    CellCache,
    content_key,
    evaluate_grid,
    write_stress_outputs,
)

BASELINE, AUGMENTED = "real", "real+scenarios"
QUICK_RECIPE: dict[str, Any] = {"channels": (8, 16, 32, 64), "max_steps": 120, "eval_every": 20, "patience": 3}
FINGERPRINT_FILE = "fingerprint.txt"


def perturbed_pool(pool: Split, grid: Grid, *, seed: int, copies: int = 1) -> Split:
    """`copies` perturbed versions of every pool image, each with a uniformly drawn grid cell.

    Labels (and clinical rows) follow their images; the same seed gives the same bytes.
    """
    if copies < 1:
        raise InputError("copies >= 1", repr(copies), "use --copies 1 or more")
    cells = grid.cells()
    images, indices = [], []
    for copy in range(copies):
        assignment = np.random.default_rng(derive_seed(seed, "augment", copy)).integers(len(cells), size=len(pool))
        for j, (name, severity) in enumerate(cells):
            members = np.flatnonzero(assignment == j)
            if len(members):
                images.append(perturb(pool.images[members], name, severity, seed=derive_seed(seed, "augment", copy, j)))
                indices.append(members)
    order = np.concatenate(indices)
    return Split(np.concatenate(images), pool.labels[order], name="scenarios")


def concatenate(first: Split, second: Split, *, name: str = "train") -> Split:
    """Images and labels of two splits, one after the other (tables are dropped)."""
    return Split(np.concatenate([first.images, second.images]), np.concatenate([first.labels, second.labels]), name=name)


def _fit_or_load(recipe: dict[str, Any], train: Split, val: Split, seed: int, directory: Path):
    """Train a `Classifier` and save it in `directory`, or load it when it was trained with the same inputs."""
    from genrad.evaluation.utility.classifier import Classifier

    fingerprint = content_key(recipe, train.content_hash(), val.content_hash(), seed)
    marker = directory / FINGERPRINT_FILE
    if marker.exists() and marker.read_text(encoding="utf-8").strip() == fingerprint:
        return Classifier.load(directory), fingerprint
    classifier = Classifier(**recipe).fit(train, val, seed=seed)
    classifier.save(directory)
    with atomic_path(marker) as temp:
        temp.write_text(fingerprint + "\n", encoding="utf-8")
    return classifier, fingerprint


def augment(
    data: Cohort,
    grid: Grid,
    out: str | Path,
    *,
    pool: Split | None = None,
    copies: int = 1,
    seed: int = 0,
    quick: bool = False,
    recipe: dict[str, Any] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train ``real`` and ``real+scenarios`` classifiers and compare their robustness over `grid`.

    `pool` is the set to perturb (synthetic images; default: the real training split). `quick`
    uses a short training recipe, the lowest and highest severity of each perturbation and fewer
    bootstrap resamples. Writes ``augment.json`` and, per model, the stress outputs in
    ``OUT/real/`` and ``OUT/real+scenarios/``; trained classifiers are kept in ``OUT/classifiers/``
    so that a rerun resumes. Returns the ``augment.json`` payload.
    """
    out = Path(out)
    grid = grid.quick() if quick else grid
    recipe = {**(QUICK_RECIPE if quick else {}), **(recipe or {})}
    recipe.update(spatial_dims=data.spatial_dims, in_channels=data.image_shape[0], num_classes=data.num_classes)
    pool = data.train if pool is None else pool
    if pool.image_shape != data.image_shape:
        raise InputError(
            f"pool images shaped {data.image_shape} like the real data",
            str(pool.image_shape),
            "generate the synthetic set at the real data's size and channels",
            source="pool",
        )
    n_bootstrap = N_BOOTSTRAP_QUICK if quick else N_BOOTSTRAP
    augmented_train = concatenate(data.train, perturbed_pool(pool, grid, seed=seed, copies=copies))
    models, fingerprints = {}, {}
    for name, train in ((BASELINE, data.train), (AUGMENTED, augmented_train)):
        models[name], fingerprints[name] = _fit_or_load(recipe, train, data.val, seed, out / "classifiers" / name)
    cache = CellCache(out / ".cells", content_key(fingerprints, data.test.content_hash(), seed, n_bootstrap))
    results = evaluate_grid(models, data.test, grid, seed=seed, n_bootstrap=n_bootstrap, progress=progress, cache=cache)
    provenance = {
        "versions": versions(), "command": "augment", "grid": grid.model_dump(), "seed": seed, "quick": quick,
        "n_bootstrap": n_bootstrap, "copies": copies, "recipe": recipe, "data": data.source, "data_hash": data.content_hash(),
        "pool": "real train" if pool is data.train else "given pool", "pool_hash": hash_arrays(pool.images, pool.labels),
        "classifiers": fingerprints,
    }
    for name, cells in results.items():
        write_stress_outputs(cells, out / name, provenance, title=f"{name}: ")
    payload = {
        "cells": [_compare(b, a) for b, a in zip(results[BASELINE], results[AUGMENTED], strict=True)],
        "summary": summarise(results[BASELINE], results[AUGMENTED]),
        "provenance": provenance,
    }
    write_json(out / "augment.json", payload)
    return payload


def _compare(baseline: dict[str, Any], augmented: dict[str, Any]) -> dict[str, Any]:
    keys = ("auc", "auc_ci", "auc_drop", "auc_drop_ci", "balanced_accuracy", "accuracy")
    return {
        "perturbation": baseline["perturbation"],
        "severity": baseline["severity"],
        "unit": baseline["unit"],
        BASELINE: {k: baseline[k] for k in keys},
        AUGMENTED: {k: augmented[k] for k in keys},
        **{k: augmented[k] for k in ("auc_delta", "auc_delta_ci", "drop_reduction", "drop_reduction_ci")},
    }


def summarise(baseline: list[dict[str, Any]], augmented: list[dict[str, Any]]) -> dict[str, Any]:
    """Clean AUCs, and per perturbation the AUC and the AUC drop at its highest severity for both models, with means."""
    highest: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    for b, a in zip(baseline, augmented, strict=True):
        if b["perturbation"] != CLEAN:
            highest[b["perturbation"]] = (b, a)  # cells are in increasing severity
    per_perturbation = {
        name: {
            "severity": b["severity"],
            f"{BASELINE}_auc": b["auc"],
            f"{AUGMENTED}_auc": a["auc"],
            f"{BASELINE}_drop": b["auc_drop"],
            f"{AUGMENTED}_drop": a["auc_drop"],
            "drop_reduction": a["drop_reduction"],
            "drop_reduction_ci": a["drop_reduction_ci"],
        }
        for name, (b, a) in highest.items()
    }
    drops = np.array([[v[f"{BASELINE}_drop"], v[f"{AUGMENTED}_drop"]] for v in per_perturbation.values()])
    aucs = np.array([[v[f"{BASELINE}_auc"], v[f"{AUGMENTED}_auc"]] for v in per_perturbation.values()])
    return {
        "clean_auc": {BASELINE: baseline[0]["auc"], AUGMENTED: augmented[0]["auc"]},
        "highest_severity": per_perturbation,
        "mean_auc_at_highest_severity": {BASELINE: float(aucs[:, 0].mean()), AUGMENTED: float(aucs[:, 1].mean())},
        "mean_drop_at_highest_severity": {BASELINE: float(drops[:, 0].mean()), AUGMENTED: float(drops[:, 1].mean())},
        "perturbations_with_smaller_drop": int((drops[:, 1] < drops[:, 0]).sum()),
        "perturbations": len(per_perturbation),
    }

