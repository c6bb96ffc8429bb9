"""The utility protocol's statistics: metrics per arm over seeds x test images, paired differences, the scaling figure.

Each metric is the mean over seeds with a 95% interval from a paired bootstrap that resamples seeds and test images
(stratified by class), so the interval covers both training randomness and the finite test set; differences between
arms are paired on the same seeds and resampled test images.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from genrad.core import derive_seed
from genrad.evaluation.stats import (
    bootstrap_ci,
    bootstrap_p_value,
    stratified_bootstrap_index,
    t_interval,
)
from genrad.evaluation.utility.arms import ARM_MODIFIERS, Arm, count_matched_control
from genrad.evaluation.utility.metrics import resampled_metrics

CONFIDENCE = 0.95
SCALAR_METRICS = ("auc", "accuracy", "balanced_accuracy", "ece")
N_BOOTSTRAP = 2000


def plot_scaling(payload: Mapping[str, Any], path: str | Path) -> Path:
    """Save the scaling curve: AUC, balanced accuracy and rare-class recall vs synthetic multiple."""
    from matplotlib.figure import Figure

    from genrad.provenance import atomic_path

    rare = payload["rare_class"]
    panels = (("auc", "AUC"), ("balanced_accuracy", "balanced accuracy"),
              ("rare_class_recall", f"recall, class {payload['class_names'][rare]} (rare)"))
    arms = payload["arms"]
    figure = Figure(figsize=(15, 4.4), layout="constrained")
    for axis, (metric, title) in zip(figure.subplots(1, len(panels)), panels):
        for name, colour in (("real", "black"), ("real+reweight", "tab:gray"), ("real+augment", "tab:brown")):
            arm = next((a for a in arms if a["name"] == name), None)
            if arm is not None:
                axis.axhline(arm[metric]["mean"], color=colour, linestyle="--", label=name)
                if arm[metric]["ci"] is not None and name == "real":
                    axis.axhspan(*arm[metric]["ci"], color=colour, alpha=0.08)
        series: dict[str, list[Mapping[str, Any]]] = {}
        for arm in arms:
            if arm["synthetic_multiple"] > 0 and arm["real_fraction"] in (0.0, 1.0) and not (arm["reweight"] or arm["augment"]):
                label = re.sub(r"@[0-9.]+x", "", arm["name"])  # one series per recipe: real+synthetic+pretrain, ...
                series.setdefault(label, []).append(arm)
        for label, members in sorted(series.items()):
            members = sorted(members, key=lambda a: a["synthetic_multiple"])
            x = np.array([a["synthetic_multiple"] for a in members])
            y = np.array([a[metric]["mean"] for a in members])
            ci = np.array([a[metric]["ci"] or [a[metric]["mean"]] * 2 for a in members])
            axis.errorbar(x, y, yerr=np.abs(ci.T - y), marker="o" if label.startswith("real") else "x", capsize=3, label=label)
        axis.set_xscale("log")
        multiples = sorted({a["synthetic_multiple"] for a in arms if a["synthetic_multiple"] > 0})
        axis.set_xticks(multiples, [f"{m:g}x" for m in multiples], minor=False)
        axis.set_xticks([], minor=True)
        axis.set_xlabel("synthetic images (multiple of the real training set)")
        axis.set_title(title)
    axis.legend(fontsize=7, loc="best")
    with atomic_path(path) as temp:
        figure.savefig(temp, format="png", dpi=120)
    return Path(path)


def summarise_arms(runs: Mapping[Arm, Sequence[Mapping[str, Any]]], counts: Mapping[Arm, Mapping[str, np.ndarray]],
                   labels: np.ndarray, rare: int, *, best_classical: Arm | None = None) -> list[dict[str, Any]]:
    """Each arm's `utility.json` entry from its runs' test probabilities (`labels`: the images they scored); with
    `best_classical`, every synthetic arm's paired difference to it (``delta_vs_best_classical``; its
    ``rare_recall_at_real_specificity`` is then the rare-class recall at the best classical arm's specificity)."""
    design = resampling(labels, len(runs[Arm()]))
    tables = {arm: metric_tables(arm_runs, runs[Arm()], labels, rare, design) for arm, arm_runs in runs.items()}
    against_best = {}
    if best_classical is not None:
        against_best = {arm: metric_tables(runs[arm], runs[best_classical], labels, rare, design)
                        for arm in runs if arm.uses_synthetic or arm == best_classical}
    entries = []
    for arm in runs:
        summary = _summarise(tables[arm], runs[arm], rare, design)
        summary["delta_vs_real"] = None if arm == Arm() else _paired(tables[arm], tables[Arm()], rare, design)
        if arm.uses_synthetic and best_classical is not None:
            summary["delta_vs_best_classical"] = _paired(against_best[arm], against_best[best_classical], rare, design)
        control = count_matched_control(arm)
        if control in tables:
            summary["delta_vs_oversampling"] = _paired(tables[arm], tables[control], rare, design)
        augmented_real = Arm(real_fraction=arm.real_fraction, augment=True, reweight=arm.reweight) if arm.real_fraction else None
        if arm.augment and arm.uses_synthetic and augmented_real in tables:
            summary["delta_vs_augment"] = _paired(tables[arm], tables[augmented_real], rare, design)
        spec = {key: getattr(arm, key) for key in ("real_fraction", "synthetic_multiple", *ARM_MODIFIERS)}
        n_train = {part: values.tolist() for part, values in counts[arm].items()}
        entries.append({"name": arm.name, **spec, "n_train": n_train, **summary})
    return entries


def select_best_classical(runs: Mapping[Arm, Sequence[Mapping[str, Any]]]) -> Arm:
    """The arm without synthetic images, on the whole real training set, with the best mean validation AUC over
    its seeds (ties: the first); the validation split only, never the test split."""
    candidates = [arm for arm in runs if arm.is_classical and arm.real_fraction == 1.0]
    return max(candidates, key=lambda arm: float(np.mean([run["val_auc"] for run in runs[arm]])))


def resampling(test_labels: np.ndarray, n_seeds: int, n_bootstrap: int = N_BOOTSTRAP) -> tuple[np.ndarray, np.ndarray]:
    """The protocol's bootstrap design: ``(seeds, images)``, ``(B, n_seeds)`` seed indices and ``(B, N)``
    class-stratified test-image indices, each drawn with replacement (tag ``utility-bootstrap``). Every arm
    is resampled with the same rows, so differences between arms are paired by seed and by test image."""
    rng = np.random.default_rng(derive_seed(0, "utility-bootstrap"))
    images = stratified_bootstrap_index(test_labels, n_bootstrap, rng)
    return rng.integers(0, n_seeds, size=(n_bootstrap, n_seeds)), images


def metric_tables(
    runs: Sequence[Mapping[str, Any]], reference: Sequence[Mapping[str, Any]], labels: np.ndarray, rare: int,
    design: tuple[np.ndarray, np.ndarray],
) -> dict[str, np.ndarray]:
    """Each metric of each run (seed) on the whole test set (column 0) and on every bootstrap resample of its
    images (columns 1..B): ``(n_seeds, B + 1)`` per metric; `reference` (the ``real`` arm's runs, same seeds)
    sets the specificity of ``rare_recall_at_reference_specificity``."""
    index = np.vstack([np.arange(len(labels)), design[1]])
    per_run = [
        resampled_metrics(labels, np.asarray(run["probabilities"]), index, rare=rare,
                          reference=np.asarray(base["probabilities"]))
        for run, base in zip(runs, reference, strict=True)
    ]
    return {key: np.stack([metrics[key] for metrics in per_run]) for key in per_run[0]}


def interval(table: np.ndarray, design: tuple[np.ndarray, np.ndarray], *, paired: bool = False) -> dict[str, Any]:
    """Mean over seeds of a metric (or a paired difference: `paired`) with its 95% bootstrap interval over
    seeds and test images jointly; a paired difference also gets the two-sided bootstrap p-value and the
    Student-t interval over seeds alone (``ci_seeds``: training randomness on this one test set)."""
    seeds = design[0]
    point = float(table[:, 0].mean())
    replicates = table[seeds, np.arange(1, seeds.shape[0] + 1)[:, None]].mean(axis=1)
    summary: dict[str, Any] = {"mean": point, "ci": bootstrap_ci(point, replicates, CONFIDENCE, recentre=False),
                               "values": table[:, 0].tolist()}
    if paired:
        summary["p_value"] = bootstrap_p_value(replicates)
        summary["ci_seeds"] = t_interval(table[:, 0])["ci"]
    return summary


def _summarise(tables: Mapping[str, np.ndarray], runs: Sequence[Mapping[str, Any]], rare: int,
               design: tuple[np.ndarray, np.ndarray]) -> dict[str, Any]:
    summary: dict[str, Any] = {key: interval(tables[key], design) for key in SCALAR_METRICS}
    num_classes = len(runs[0]["metrics"]["recall_per_class"])
    summary["recall_per_class"] = {str(k): interval(tables[f"recall_{k}"], design) for k in range(num_classes)}
    summary["rare_class_recall"] = summary["recall_per_class"][str(rare)]
    summary["rare_recall_at_real_specificity"] = interval(tables["rare_recall_at_reference_specificity"], design)
    summary["best_step"] = [run["best_step"] for run in runs]
    summary["n_train_per_seed"] = [run["n_train"] for run in runs]
    return summary


def _paired(tables: Mapping[str, np.ndarray], reference: Mapping[str, np.ndarray], rare: int,
            design: tuple[np.ndarray, np.ndarray]) -> dict[str, Any]:
    """Arm - reference arm (real, or real + augment), paired by seed and test image: mean, bootstrap interval and
    p-value, per metric."""
    keys = {**{key: key for key in SCALAR_METRICS}, "rare_class_recall": f"recall_{rare}",
            "rare_recall_at_real_specificity": "rare_recall_at_reference_specificity"}
    return {name: interval(tables[key] - reference[key], design, paired=True) for name, key in keys.items()}
