"""Robustness stress tests: a downstream classifier scored on real test images perturbed at every grid cell.

For each cell (perturbation, severity) the test images are perturbed (seeded per cell, see
`genrad.scenarios.perturbations.perturb`) and the classifier's AUC, balanced accuracy and accuracy
are computed with `genrad.evaluation.utility.metrics.classification_metrics`. Uncertainty comes from a
stratified bootstrap over test images (Efron & Tibshirani 1993, percentile intervals) whose resamples
are shared by every cell and model, so that the drop from clean images (``auc_drop``) and the
difference between two models (`augment`) are paired comparisons.

`augment` trains the same classifier recipe twice, on the real training split and on the real
training split plus a scenario-perturbed copy of a pool (synthetic images, or the real training
images), and compares both on the perturbed real test split: does training on simulated acquisition
conditions make the model more robust to them?
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

from genrad.core import derive_seed
from genrad.data.cohort import Cohort, Split
from genrad.errors import InputError
from genrad.evaluation.stats import percentile_interval, rank_auc, stratified_bootstrap_index
from genrad.evaluation.utility.metrics import classification_metrics
from genrad.limits import read_json
from genrad.progress import progress_bar
from genrad.provenance import atomic_path, hash_file, versions, write_json
from genrad.scenarios.grid import Grid
from genrad.scenarios.perturbations import PERTURBATIONS, perturb

METRICS = ("auc", "balanced_accuracy", "accuracy")
CLEAN = "none"
N_BOOTSTRAP = 200
N_BOOTSTRAP_QUICK = 50
CONFIDENCE = 0.95


class Predictor(Protocol):
    """Anything with class probabilities ``(N, K)`` for images ``(N, C, ...)``."""

    def predict_proba(self, images: np.ndarray) -> np.ndarray: ...


def batched_auc(labels: np.ndarray, probabilities: np.ndarray, boot: np.ndarray) -> np.ndarray:
    """ROC AUC on every resample ``boot[b]`` at once: the Mann-Whitney U statistic over ranks
    (Hanley & McNeil 1982), one-vs-rest macro average for more than two classes (the same value as
    `genrad.evaluation.utility.metrics.roc_auc` on ``labels[boot[b]]``)."""
    if len(boot) == 0:
        return np.empty(0)
    k = probabilities.shape[1]
    resampled = labels[boot]
    classes = [1] if k == 2 else [c for c in range(k) if (labels == c).any()]
    aucs = []
    for c in classes:
        aucs.append(rank_auc(probabilities[boot, c], resampled == c))
    return np.mean(aucs, axis=0)


def _score(labels: np.ndarray, probabilities: np.ndarray, boot: np.ndarray) -> tuple[dict[str, float], np.ndarray]:
    """`METRICS` of one model on one cell, and its AUC on every bootstrap resample."""
    metrics = classification_metrics(labels, probabilities, num_classes=probabilities.shape[1])
    return {name: float(metrics[name]) for name in METRICS}, batched_auc(labels, probabilities, boot)


@dataclass(frozen=True)
class CellCache:
    """One JSON file per finished cell under `directory`, valid only for the same `key`.

    `key` identifies everything a cell's numbers depend on (models, data, seed, bootstrap), so an
    interrupted sweep resumes where it stopped and a changed sweep never reads stale cells.
    """

    directory: Path
    key: str

    def path(self, perturbation: str, severity: float) -> Path:
        return self.directory / f"{perturbation}@{severity!r}.json"

    def get(self, perturbation: str, severity: float) -> dict[str, Any] | None:
        path = self.path(perturbation, severity)
        if not path.exists():
            return None
        record = read_json(path)
        return record["cell"] if record.get("key") == self.key else None

    def put(self, perturbation: str, severity: float, cell: dict[str, Any]) -> None:
        write_json(self.path(perturbation, severity), {"key": self.key, "cell": cell})


def evaluate_grid(
    models: Mapping[str, Predictor],
    split: Split,
    grid: Grid,
    *,
    seed: int = 0,
    n_bootstrap: int = N_BOOTSTRAP,
    progress: bool = True,
    cache: CellCache | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Score every model on the clean split and on every perturbed cell of `grid`.

    Returns, per model name, a list of cells (clean first, as perturbation ``"none"``), each with
    ``perturbation``, ``severity``, ``unit``, the metrics (`METRICS`), ``auc_ci``, ``auc_drop`` and
    ``auc_drop_ci``. With two or more models, each later model's cells also have ``auc_delta`` (its
    AUC minus the first model's on the same perturbed images) and ``drop_reduction`` (the first
    model's drop minus its own), with paired intervals. Finished cells are kept in `cache`, so an
    interrupted sweep resumes where it stopped.
    """
    if not models:
        raise InputError("at least one model", "none", "pass {'name': classifier}")
    labels, names = split.labels, list(models)
    boot = stratified_bootstrap_index(labels, n_bootstrap, np.random.default_rng(derive_seed(seed, "bootstrap")))
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    cells = [(CLEAN, 0.0), *grid.cells()]
    columns = [TextColumn("stress {task.description:<16}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with progress_bar(*columns, disable=not progress, transient=True) as bar:
        task = bar.add_task("", total=len(cells))
        for perturbation, severity in cells:
            bar.update(task, description=f"{perturbation} {severity:g}")
            # The clean cell is always recomputed: every other cell's drop is measured against it.
            cell = cache.get(perturbation, severity) if cache is not None and perturbation != CLEAN else None
            if cell is None:
                images = split.images if perturbation == CLEAN else perturb(split.images, perturbation, severity, seed=seed)
                probabilities = {name: np.asarray(models[name].predict_proba(images)) for name in names}
                scores = {name: _score(labels, probabilities[name], boot) for name in names}
                if perturbation == CLEAN:
                    clean = scores
                cell = {name: _cell_entry(perturbation, severity, scores, clean, name, names[0]) for name in names}
                if cache is not None and perturbation != CLEAN:
                    cache.put(perturbation, severity, cell)
            for name in names:
                results[name].append(cell[name])
            bar.advance(task)
    return results


Scores = dict[str, tuple[dict[str, float], np.ndarray]]


def _cell_entry(perturbation: str, severity: float, scores: Scores, clean: Scores, name: str, first: str) -> dict[str, Any]:
    """One model's cell: metrics, AUC interval, paired drop from clean and, for a later model, paired
    differences to the first model (``auc_delta``; ``drop_reduction`` = first model's drop - this drop)."""
    metrics, auc_boot = scores[name]
    clean_metrics, clean_boot = clean[name]
    entry: dict[str, Any] = {"perturbation": perturbation, "severity": severity, "unit": _unit(perturbation), **metrics}
    entry["auc_ci"] = percentile_interval(auc_boot, CONFIDENCE)
    entry["auc_drop"] = clean_metrics["auc"] - metrics["auc"]
    entry["auc_drop_ci"] = percentile_interval(clean_boot - auc_boot, CONFIDENCE)
    if name != first:
        first_metrics, first_boot = scores[first]
        first_clean, first_clean_boot = clean[first]
        entry["auc_delta"] = metrics["auc"] - first_metrics["auc"]
        entry["auc_delta_ci"] = percentile_interval(auc_boot - first_boot, CONFIDENCE)
        entry["drop_reduction"] = (first_clean["auc"] - first_metrics["auc"]) - entry["auc_drop"]
        entry["drop_reduction_ci"] = percentile_interval((first_clean_boot - first_boot) - (clean_boot - auc_boot), CONFIDENCE)
    return entry


def _unit(perturbation: str) -> str:
    return "" if perturbation == CLEAN else PERTURBATIONS[perturbation].unit


def robustness_table(cells: Sequence[Mapping[str, Any]]) -> str:
    """A Markdown table of the cells: perturbation, severity (unit), AUC [CI], drop, balanced accuracy."""
    lines = [
        "| perturbation | severity | unit | AUC | AUC 95% CI | AUC drop | balanced accuracy | accuracy |",
        "| --- | ---: | --- | ---: | --- | ---: | ---: | ---: |",
    ]
    for cell in cells:
        ci = cell.get("auc_ci")
        interval = f"{ci[0]:.3f}..{ci[1]:.3f}" if ci else ""
        lines.append(
            f"| {cell['perturbation']} | {cell['severity']:g} | {cell['unit']} | {cell['auc']:.3f} | {interval} | "
            f"{cell['auc_drop']:+.3f} | {cell['balanced_accuracy']:.3f} | {cell['accuracy']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def write_heatmap(cells: Sequence[Mapping[str, Any]], path: str | Path, *, metric: str = "auc", title: str = "") -> Path:
    """Heatmap PNG: one row per perturbation, one column per severity level, colour = `metric`.

    Each tile shows the metric and its severity; the clean value is the reference in the title.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    clean = next(c for c in cells if c["perturbation"] == CLEAN)
    rows: dict[str, list[Mapping[str, Any]]] = {}
    for cell in cells:
        if cell["perturbation"] != CLEAN:
            rows.setdefault(cell["perturbation"], []).append(cell)
    width = max(len(r) for r in rows.values())
    values = np.full((len(rows), width), np.nan)
    for i, row in enumerate(rows.values()):
        values[i, : len(row)] = [c[metric] for c in row]
    figure, axes = plt.subplots(figsize=(1.6 + 1.3 * width, 0.9 + 0.45 * len(rows)))
    image = axes.imshow(values, cmap="RdYlGn", vmin=min(0.5, np.nanmin(values)), vmax=max(clean[metric], np.nanmax(values)), aspect="auto")
    for i, row in enumerate(rows.values()):
        for j, cell in enumerate(row):
            axes.text(j, i, f"{cell[metric]:.3f}\n@{cell['severity']:g}", ha="center", va="center", fontsize=7)
    axes.set_yticks(range(len(rows)), list(rows))
    axes.set_xticks(range(width), [f"level {j + 1}" for j in range(width)])
    axes.set_title(f"{title}{metric} vs severity (clean {clean[metric]:.3f})", fontsize=9)
    figure.colorbar(image, ax=axes, label=metric)
    figure.tight_layout()
    path = Path(path)
    with atomic_path(path) as temp:
        figure.savefig(temp, format="png", dpi=120)
    plt.close(figure)
    return path


def _classifier_hash(directory: Path) -> str:
    from genrad.evaluation.utility.classifier import WEIGHTS_FILE

    return hash_file(directory / WEIGHTS_FILE)


def _check_compatible(classifier: Any, cohort: Cohort, source: str) -> None:
    expected = (classifier.spatial_dims, classifier.in_channels, classifier.num_classes)
    found = (cohort.spatial_dims, cohort.image_shape[0], cohort.num_classes)
    if expected != found:
        raise InputError(
            f"data with (spatial_dims, channels, classes) = {expected}, as the classifier was trained on",
            f"{found} in {cohort.source or 'the data'}",
            "evaluate the classifier on data of the layout it was trained on",
            source=source,
        )


def write_stress_outputs(cells: list[dict[str, Any]], out: Path, provenance: Mapping[str, Any], title: str = "") -> None:
    """`stress.json` (the list of cells), `robustness.md`, `robustness.csv`, `heatmap.png`, `provenance.json`."""
    import pandas as pd

    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "stress.json", cells)
    with atomic_path(out / "robustness.md") as temp:
        temp.write_text(robustness_table(cells), encoding="utf-8")
    table = pd.DataFrame(cells)
    for column in [c for c in table.columns if c.endswith("_ci")]:
        table[[f"{column}_low", f"{column}_high"]] = [ci if ci else [np.nan, np.nan] for ci in table.pop(column)]
    with atomic_path(out / "robustness.csv") as temp:
        table.to_csv(temp, index=False)
    write_heatmap(cells, out / "heatmap.png", title=title)
    write_json(out / "provenance.json", provenance)


def stress(
    model_dir: str | Path,
    data: str | Path | Cohort,
    grid: Grid,
    out: str | Path,
    *,
    split: str = "test",
    seed: int = 0,
    quick: bool = False,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Evaluate a saved `Classifier` on the `split` images perturbed at every cell of `grid`.

    `quick` keeps each perturbation's lowest and highest severity and uses fewer bootstrap
    resamples. Writes `write_stress_outputs`' files into `out` and returns the cells.
    """
    from genrad.data import load
    from genrad.evaluation.utility.classifier import Classifier

    model_dir, out = Path(model_dir), Path(out)
    grid = grid.quick() if quick else grid
    cohort = data if isinstance(data, Cohort) else load(str(data))
    classifier = Classifier.load(model_dir)
    _check_compatible(classifier, cohort, str(model_dir))
    test = cohort[split]
    n_bootstrap = N_BOOTSTRAP_QUICK if quick else N_BOOTSTRAP
    model_hash = _classifier_hash(model_dir)
    cache = CellCache(out / ".cells", content_key(model_hash, test.content_hash(), seed, n_bootstrap))
    cells = evaluate_grid({"model": classifier}, test, grid, seed=seed, n_bootstrap=n_bootstrap, progress=progress, cache=cache)["model"]
    provenance = {
        "versions": versions(), "command": "stress", "grid": grid.model_dump(), "seed": seed, "quick": quick, "n_bootstrap": n_bootstrap,
        "split": split,
        "model_dir": str(model_dir), "model_hash": model_hash, "data": cohort.source, "data_hash": test.content_hash(),
    }
    write_stress_outputs(cells, out, provenance)
    return cells


def content_key(*parts: Any) -> str:
    """SHA-256 of the JSON of `parts`: identifies the inputs a cached result depends on."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()
