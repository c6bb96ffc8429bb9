"""Build the one-file HTML report of a run directory.

The report reads what the pipeline stages wrote (see `genrad.synthesis.layout`) and embeds every
image as a data URI: no external scripts, styles or fonts, so it opens offline and can be shared.
A stage that has not run is shown as such instead of failing the report.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape

from genrad import __version__
from genrad.errors import InputError
from genrad.limits import read_json
from genrad.provenance import atomic_path
from genrad.report import figures
from genrad.report.verdicts import feature_verdicts, metric_rows
from genrad.synthesis.layout import RunLayout

MAX_FEATURE_PLOTS = 8


def build(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write `out` (default RUN_DIR/report.html) from the outputs found in `run_dir`; return its path."""
    layout = RunLayout(Path(run_dir))
    if not layout.root.is_dir():
        raise InputError("a genrad run directory", "no such folder", "run `genrad run` first", source=str(run_dir))
    run = _read_json(layout.run_json)
    if not isinstance(run, dict) or "genrad_version" not in run:
        found = "no run.json" if run is None else "a run.json that genrad did not write"
        raise InputError("a run directory written by `genrad run` (with its run.json)", found,
                         "point to the --out folder of `genrad run` (train and generate folders have no report)",
                         source=str(run_dir))
    real, synthetic = _load_images(layout, run)
    class_names = list(real.class_names) if real is not None else [str(k) for k in range(_num_classes(synthetic))]
    fidelity = _read_json(layout.fidelity_json)
    sections = [
        _samples_section(real, synthetic, class_names),
        _flagged_section(layout, synthetic),
        _fidelity_section(fidelity, class_names),
        *_features_section(layout, class_names),
        _privacy_section(layout),
        _utility_section(layout, class_names),
        _scenarios_section(layout),
        _training_section(layout, run),
        _provenance_section(run),
    ]
    summary = _summary(fidelity, _read_json(layout.privacy_json), _read_json(layout.utility_json), sections)
    environment = Environment(loader=PackageLoader("genrad.report", "templates"), autoescape=select_autoescape(["html"]))
    html = environment.get_template("report.html").render(
        title=Path(run.get("config", {}).get("data", {}).get("path", layout.root.name)).name,
        subtitle=f"run directory {layout.root.resolve()}",
        summary=summary,
        sections=sections,
        version=__version__,
        generated=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )
    target = Path(out) if out is not None else layout.report_html
    with atomic_path(target) as temp:
        temp.write_text(html, encoding="utf-8")
    return target


def _section(identifier: str, title: str, **content: Any) -> dict[str, Any]:
    section = {"id": identifier, "title": title, "paragraphs": [], "bullets": [], "tables": [], "figures": [], "pre": ""}
    section.update(content)
    return section


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    return read_json(path, fix="rerun the stage that wrote it")


def _load_images(layout: RunLayout, run: Mapping[str, Any]) -> tuple[Any, Any]:
    from genrad.data import load

    data_path = run.get("config", {}).get("data", {}).get("path")
    real = load(data_path) if data_path and (Path(data_path).exists() or data_path in ("phantom", "phantom:3d")) else None
    synthetic = load(layout.synthetic_npz).train if layout.synthetic_npz.exists() else None
    return real, synthetic


def _num_classes(split: Any) -> int:
    return int(split.labels.max()) + 1 if split is not None else 0


def _samples_section(real: Any, synthetic: Any, class_names: Sequence[str]) -> dict[str, Any]:
    section = _section("samples", "Real vs synthetic samples")
    if real is None or synthetic is None:
        section["missing"] = "Needs the real data and a synthetic set (stages: data, generate)."
        return section
    rows = []
    for label, name in enumerate(class_names):
        rows.append((f"real {name}", real.train.images[real.train.labels == label]))
        rows.append((f"synthetic {name}", synthetic.images[synthetic.labels == label]))
    section["figures"] = [{"src": figures.image_grid(rows), "caption": "First images of each class; grey scale [0, 1]."}]
    counts = ", ".join(f"{name}: {int((synthetic.labels == k).sum())}" for k, name in enumerate(class_names))
    section["paragraphs"] = [f"{len(synthetic)} synthetic images ({counts})."]
    return section


def _flagged_section(layout: RunLayout, synthetic: Any) -> dict[str, Any]:
    section = _section("flagged", "Worst-flagged synthetic samples")
    if synthetic is None or not layout.samples_parquet.exists():
        section["missing"] = "Needs per-sample QA scores (stage: fidelity)."
        return section
    samples = pd.read_parquet(layout.samples_parquet)
    score_column = next((c for c in ("qa_score", "score") if c in samples.columns), None)
    if score_column is None:
        section["missing"] = "samples.parquet has no QA score column."
        return section
    worst = samples.sort_values(score_column, ascending=False).head(8)
    index = worst["index"].to_numpy() if "index" in worst.columns else worst.index.to_numpy()
    flagged = int(samples["qa_flag"].sum()) if "qa_flag" in samples.columns else 0
    section["paragraphs"] = [
        f"{flagged} of {len(samples)} synthetic images ({flagged / max(len(samples), 1):.1%}) are flagged by the "
        "per-sample QA (threshold calibrated on held-out real images). Highest scores, worst first:"
    ]
    section["figures"] = [
        {"src": figures.image_grid([("worst", synthetic.images[index])]), "caption": "Highest QA scores (most suspicious)."}
    ]
    return section


def _format(entry: Any) -> str:
    if entry is None:
        return "–"
    if isinstance(entry, Mapping):
        entry = entry.get("value", entry.get("mean"))
    return f"{entry:.4g}" if isinstance(entry, (int, float)) else str(entry)


def _format_ci(ci: Any) -> str:
    return f"[{ci[0]:.4g}, {ci[1]:.4g}]" if isinstance(ci, Sequence) and len(ci) == 2 else "–"


def _fidelity_section(fidelity: Mapping[str, Any] | None, class_names: Sequence[str]) -> dict[str, Any]:
    section = _section("fidelity", "Fidelity metrics")
    if fidelity is None:
        section["missing"] = "Fidelity has not been evaluated (stage: fidelity)."
        return section
    rows = [
        [{"text": row["name"]}, {"text": _format(row["value"]), "num": True}, {"text": _format_ci(row["ci"])},
         {"text": _format(row["real_floor"]), "num": True}, {"text": row["verdict"]}]
        for row in metric_rows(fidelity)
    ]
    section["tables"].append(
        {"caption": "Radiomic fidelity; the real floor is the same metric between two disjoint real sets of the same sizes.",
         "columns": ["metric", "value", "95% CI", "real floor", "verdict"], "rows": rows}
    )
    per_class = fidelity.get("frd_per_class") or {}
    if per_class:
        section["tables"].append(
            {"caption": "FRD per class", "columns": ["class", "FRD", "95% CI", "real floor"],
             "rows": [[{"text": _class_name(k, class_names)}, {"text": _format(v), "num": True},
                       {"text": _format_ci(v.get("ci") if isinstance(v, Mapping) else None)},
                       {"text": _format(v.get("real_floor") if isinstance(v, Mapping) else None), "num": True}]
                      for k, v in per_class.items()]}
        )
    return section


def _class_name(key: Any, class_names: Sequence[str]) -> str:
    return class_names[int(key)] if str(key).isdigit() and int(key) < len(class_names) else str(key)


def _features_section(layout: RunLayout, class_names: Sequence[str]) -> list[dict[str, Any]]:
    section = _section("features", "Radiomic feature distributions")
    if not (layout.features_real.exists() and layout.features_synthetic.exists()):
        section["missing"] = "Needs radiomic feature tables (stage: fidelity)."
        return [section]
    real, synthetic = pd.read_parquet(layout.features_real), pd.read_parquet(layout.features_synthetic)
    verdicts = feature_verdicts(
        real.drop(columns="label"), synthetic.drop(columns="label"), real["label"].to_numpy(),
        synthetic["label"].to_numpy(), class_names,
    )
    section["bullets"] = [v["text"] for v in verdicts] or [
        "No radiomic feature differs by more than half a real standard deviation in any class."]
    features = _most_divergent(real.drop(columns="label"), synthetic.drop(columns="label"))
    section["paragraphs"] = ["Real (blue) vs synthetic (red) distributions of the most divergent features, most divergent first."]
    section["figures"] = [{"src": figures.feature_distributions(real, synthetic, features), "caption": "Top divergent radiomic features."}]
    section["verdicts"] = verdicts
    return [section]


def _most_divergent(real: pd.DataFrame, synthetic: pd.DataFrame) -> list[str]:
    """Features ordered by |mean difference| in units of the real standard deviation."""
    numeric = [c for c in real.columns if c in synthetic.columns and np.issubdtype(real[c].dtype, np.number)]
    scale = real[numeric].std().replace(0.0, np.nan)
    effect = ((synthetic[numeric].mean() - real[numeric].mean()).abs() / scale).dropna()
    return list(effect.sort_values(ascending=False).index[:MAX_FEATURE_PLOTS])


def _privacy_section(layout: RunLayout) -> dict[str, Any]:
    section = _section("privacy", "Privacy: near-copies and membership inference")
    privacy = _read_json(layout.privacy_json)
    if privacy is None:
        section["missing"] = "Privacy has not been audited (stage: privacy)."
        return section
    rows = []
    for name in ("near_copy_rate", "dcr", "dcr_ratio", "mia_auc"):
        entry = privacy.get(name)
        ci = entry.get("ci") if isinstance(entry, Mapping) else None
        rows.append([{"text": name}, {"text": _format(entry), "num": True}, {"text": _format_ci(ci)}])
    section["tables"].append({"caption": "Memorization audit", "columns": ["metric", "value", "95% CI"], "rows": rows})
    section["paragraphs"] = [
        "A near-copy is a synthetic image closer to a training image than real unseen images are (threshold "
        "calibrated on held-out vs train pairs, images lightly smoothed) and closer to the training set than to "
        "the held-out set, relative to unseen images: a blurry image that resembles every patient is not a copy of "
        "one. A membership-inference AUC near 0.5 means an attacker cannot tell training patients from unseen ones "
        "using the synthetic data."
    ]
    if layout.pairs_png.exists():
        section["figures"] = [{"src": figures.file_data_uri(str(layout.pairs_png)), "caption": "Closest synthetic / training pairs."}]
    return section


def _utility_section(layout: RunLayout, class_names: Sequence[str]) -> dict[str, Any]:
    section = _section("utility", "Utility: does synthetic data help a classifier?")
    utility = _read_json(layout.utility_json)
    if utility is None:
        section["missing"] = "Utility has not been measured (stage: utility)."
        return section
    rows = []
    for arm in utility.get("arms", []):
        recall = arm.get("recall_per_class") or {}
        rare = min(recall, key=lambda k: recall[k].get("mean", 1.0) if isinstance(recall[k], Mapping) else 1.0) if recall else None
        deltas = []
        for key in ("delta_vs_real", "delta_vs_best_classical"):
            delta = (arm.get(key) or {}).get("auc") if isinstance(arm.get(key), Mapping) else None
            deltas.append({"text": f"{_format(delta)} {_format_ci(delta.get('ci'))}" if isinstance(delta, Mapping) else "–"})
        rows.append([
            {"text": arm.get("name", "?")},
            {"text": f"{_format(arm.get('auc'))} {_format_ci((arm.get('auc') or {}).get('ci'))}"},
            {"text": f"{_format(arm.get('balanced_accuracy'))} {_format_ci((arm.get('balanced_accuracy') or {}).get('ci'))}"},
            {"text": f"{_class_name(rare, class_names)}: {_format(recall.get(rare))}" if rare is not None else "–"},
            *deltas,
        ])
    best = (utility.get("best_classical") or {}).get("name")
    section["tables"].append({
        "caption": "Real held-out test split; mean over seeds with 95% CI; deltas are paired by seed and test image against "
                   f"real-only and against the best classical arm ({best or 'none'}, chosen by validation AUC).",
        "columns": ["arm", "AUC", "balanced accuracy", "lowest per-class recall", "AUC delta vs real",
                    "AUC delta vs best classical"], "rows": rows,
    })
    strategy = utility.get("strategy")
    if isinstance(strategy, Mapping):
        section["bullets"] = [f"Strategy {strategy.get('name')!r} (genrad's utility recipe): {strategy.get('description')}. "
                              f"Tested as {strategy.get('arm')} and, with classical augmentation, as "
                              f"{strategy.get('augmented_arm')} against real+augment."]
    if layout.scaling_png.exists():
        section["figures"] = [{"src": figures.file_data_uri(str(layout.scaling_png)), "caption": "Scaling curve."}]
    return section


def _scenarios_section(layout: RunLayout) -> dict[str, Any]:
    section = _section("scenarios", "Scenarios: robustness to imaging conditions")
    pngs = sorted(layout.scenarios_dir.glob("*.png")) if layout.scenarios_dir.exists() else []
    if not pngs:
        section["missing"] = "No stress test was run (genrad scenarios stress)."
        return section
    section["figures"] = [{"src": figures.file_data_uri(str(p)), "caption": p.stem} for p in pngs]
    return section


def _training_section(layout: RunLayout, run: Mapping[str, Any]) -> dict[str, Any]:
    section = _section("training", "Training curves")
    choice = run.get("model_choice") or {}
    if choice:
        options = (run.get("config") or {}).get("train", {}).get("options") or {}
        model = f"preset {choice['preset']}" if choice.get("preset") else f"the {choice.get('family')} family"
        given = f" with {', '.join(f'{key}={value}' for key, value in options.items())}" if options else ""
        section["bullets"] = [f"Model: {model}{given} ({choice.get('reason')})."]
    student = _student_bullet(layout.model_dir / "student")
    if student:
        section.setdefault("bullets", []).append(student)
    history_path = next((p for p in (layout.model_dir / "history.csv",) if p.exists()), None)
    if history_path is None:
        section["missing"] = "No training history found (stage: train)."
        return section
    section["figures"] = [{"src": figures.training_curves(pd.read_csv(history_path)), "caption": "Training losses."}]
    return section


def _student_bullet(folder: Path) -> str | None:
    """A line on the guidance-distilled student the synthetic images were sampled with, if the run has one."""
    if not (folder / "config.json").exists():
        return None
    config = json.loads((folder / "config.json").read_text(encoding="utf-8")).get("config", {})
    teacher = config.get("distilled_from") or {}
    return (f"Sampled with a guidance-distilled student (genrad.training.distill) of the model "
            f"{str(teacher.get('model_hash', ''))[:12]}: {config.get('num_inference_steps')} network calls per image "
            f"without guidance, where the model itself needs two per step ({teacher.get('guidance_scale')} guidance).")


def _provenance_section(run: Mapping[str, Any]) -> dict[str, Any]:
    section = _section("provenance", "Provenance")
    if not run:
        section["missing"] = "No run.json found."
        return section
    section["pre"] = json.dumps(run, indent=2, sort_keys=True, default=str)
    return section


MIN_SEEDS_TO_CLAIM = 5
"""Classifier seeds a utility run needs before the report states a gain or a loss (the quick protocol runs 2)."""


def _summary(fidelity: Any, privacy: Any, utility: Any, sections: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Headline verdicts, each with a level (good / warn / bad) for colour."""
    items: list[dict[str, str]] = []
    if fidelity:
        for row in metric_rows(fidelity):
            if row["name"] in ("frd", "c2st_auc") and row["verdict"]:
                level = "good" if ("as close" in row["verdict"] or "indistinguishable" in row["verdict"]) else "warn"
                items.append({"level": level, "text": f"{row['name']} = {_format(row['value'])}: {row['verdict']}"})
        features = next((s for s in sections if s["id"] == "features"), None)
        for verdict in (features or {}).get("verdicts", [])[:3]:
            items.append({"level": "warn", "text": verdict["text"]})
    if privacy:
        rate = privacy.get("near_copy_rate")
        value = rate.get("value") if isinstance(rate, Mapping) else rate
        if isinstance(value, (int, float)):
            level = "good" if value <= 0.05 else "bad"
            items.append({"level": level, "text": f"{value:.1%} of synthetic images are near-copies of training images"})
    if utility:
        items.extend(_utility_verdicts(utility))
    return items


def _utility_verdicts(utility: Mapping[str, Any]) -> list[dict[str, str]]:
    """A gain or a loss of AUC by real+synthetic data (against the best classical arm, the count-matched oversampling
    control, real, and for augmented arms against real+augment),
    claimed only when its interval excludes 0 and the protocol ran enough classifier seeds (`MIN_SEEDS_TO_CLAIM`)
    for training randomness not to decide it."""
    seeds = len(utility.get("seeds", [])) or None
    items = []
    for arm in utility.get("arms", []):
        if not arm.get("name", "").startswith("real+synthetic"):
            continue
        best = (utility.get("best_classical") or {}).get("name")
        references = (("delta_vs_best_classical", f" over the best classical arm ({best})"),
                      ("delta_vs_oversampling", " over duplicating real images to the same count"),
                      ("delta_vs_real", ""), ("delta_vs_augment", " over real+augment"))
        for key, reference in references:
            delta = (arm.get(key) or {}).get("auc")
            if not (isinstance(delta, Mapping) and isinstance(delta.get("ci"), Sequence)):
                continue
            (low, high), change = delta["ci"], delta.get("value", delta.get("mean"))
            if seeds is not None and seeds < MIN_SEEDS_TO_CLAIM:
                items.append({"level": "warn", "text": f"{arm['name']} changes AUC by {change:+.3f}{reference}: with {seeds} "
                              f"classifier seeds the protocol cannot show a gain (genrad claims one from {MIN_SEEDS_TO_CLAIM} seeds)"})
            elif low > 0:
                items.append({"level": "good", "text": f"{arm['name']} improves AUC by {change:+.3f}{reference} (CI excludes 0)"})
            elif high < 0:
                items.append({"level": "bad", "text": f"{arm['name']} lowers AUC by {-change:.3f}{reference} (CI below 0)"})
            else:
                items.append({"level": "warn", "text": f"{arm['name']}: no AUC gain{reference} shown ({change:+.3f}, CI contains 0)"})
    return items
