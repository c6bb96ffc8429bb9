"""Utility on BreastMNIST: does genrad's synthetic data improve a classifier tested on real data?

The full protocol of `genrad.evaluation.utility` (every arm over ``--seeds`` seeds, tested on the real
test split, early stopping on the real val split): real only, class re-weighting, classical
augmentation, real + synthetic at each ``--multiples`` (plain, balanced toward the rare class, and
filtered by the per-sample QA), synthetic only, and the real-fraction ablation. The anchor is the
real-only arm of the same run: every arm is quoted as a paired difference to it and as a ratio; the
real-only arm itself is compared with the published MedMNIST v2 ResNet-18 (28 px) figures.

Synthetic images come from, in order of preference: ``--synthetic`` (a ``synthetic.npz`` or the
folder `genrad generate` wrote), ``--run-dir`` (a trained genrad model), or a ``--family`` model
trained here for ``--train-minutes`` of CPU time. The pool is sized for the largest arm (x ``--pool-margin`` for
the QA filter). Training, generation, QA scores and every arm-seed are cached under ``--out``, so an
interrupted run resumes: run it in the background, outside the repository::

    nohup .venv/bin/python benchmarks/utility_breastmnist.py --out /tmp/genrad-utility [--family diffusion]
        [--train-minutes 30] [--synthetic PATH | --run-dir DIR] [--seeds 5] [--multiples 0.5,1,2,5,10]
        [--no-ablation] [--no-qa] [--threads 1] [--quick] > utility.json &

Prints one JSON object (also written to ``OUT/benchmark.json``); ``OUT/utility/utility.json`` and
``OUT/utility/scaling.png`` are the protocol's own outputs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

import genrad.models
from genrad.cli.evaluate import synthetic_file
from genrad.data import load
from genrad.evaluation.stats import t_interval
from genrad.evaluation.utility import (
    MULTIPLES,
    QUICK,
    Arm,
    default_arms,
    evaluate_utility,
    feasible_arms,
    keep_mask_from_manifest,
    synthetic_needed,
)
from genrad.provenance import versions, write_json

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_breastmnist import CpuBudget

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "breastmnist.npz"
# MedMNIST v2 (Yang et al., Scientific Data 2023), Table: BreastMNIST, ResNet-18 (28), test split.
PUBLISHED = {"model": "ResNet-18 (28)", "auc": 0.901, "accuracy": 0.863}
PUBLISHED_RANGE_28PX = {"auc": (0.836, 0.919), "accuracy": (0.803, 0.863)}  # all six v2 baselines at 28 px


def synthesise(args: argparse.Namespace, cohort: Any, per_class: dict[int, int]) -> tuple[Path, dict[str, Any]]:
    """The synthetic pool's npz path and how it was made (trained / loaded / given)."""
    if args.synthetic is not None:
        path = synthetic_file(args.synthetic)
        return path, {"source": str(path)}
    from genrad.synthesis import generate

    if args.run_dir is not None:
        model, origin = genrad.models.load(args.run_dir), {"run_dir": str(args.run_dir)}
    else:
        run_dir = args.out / "model" / args.family
        options = json.loads(args.family_config)
        if (run_dir / "config.json").exists():
            model = genrad.models.load(run_dir)
        else:
            family = genrad.models.Generator.registry[args.family]
            model = family(spatial_dims=2, num_classes=cohort.num_classes, **options)
            model.fit(cohort.train, max_steps=10**9, seed=args.seed, callbacks=[CpuBudget(args.train_minutes)])
            model.save(run_dir)
        origin = {"family": args.family, "options": options, "train_cpu_minutes": args.train_minutes, "run_dir": str(run_dir)}
    synthetic = generate(
        model, per_class=per_class, out=args.out / "synthetic", seed=args.seed, workers=args.workers, progress=True
    )
    return synthetic.npz_path, {**origin, "per_class": per_class, "source": str(synthetic.npz_path)}


def qa_keep(cohort: Any, npz_path: Path) -> np.ndarray:
    """QA keep mask of the pool: from its manifest, or scored here (SampleQA fitted on real train,
    calibrated on real val) and merged into the manifest so that a re-run reuses it."""
    keep = keep_mask_from_manifest(npz_path)
    if keep is not None:
        return keep
    from genrad.evaluation.qa import SampleQA
    from genrad.synthesis.dataset import SyntheticSet

    synthetic = SyntheticSet(npz_path.parent)
    scores = SampleQA().fit(cohort.train, cohort.val).score(synthetic.split)
    synthetic.add_scores(scores[["qa_score", "qa_flag", "qa_reason"]])
    return keep_mask_from_manifest(npz_path)


def summarise(payload: dict[str, Any]) -> dict[str, Any]:
    """Per arm: AUC, balanced accuracy, malignant recall (mean and CI), paired deltas, ratio to real."""
    arms = {arm["name"]: arm for arm in payload["arms"]}
    real, augment = arms["real"], arms.get("real+augment")

    def triple(summary: dict[str, Any]) -> list[float]:
        return [round(summary["mean"], 4), *[round(v, 4) for v in summary["ci"] or []]]

    rows = {}
    for name, arm in arms.items():
        row = {
            "auc": triple(arm["auc"]),
            "balanced_accuracy": triple(arm["balanced_accuracy"]),
            "malignant_recall": triple(arm["rare_class_recall"]),
            "accuracy": triple(arm["accuracy"]),
            "auc_ratio_vs_real": round(arm["auc"]["mean"] / real["auc"]["mean"], 4),
            "n_train": arm["n_train"],
        }
        if arm["delta_vs_real"] is not None:
            for key in ("auc", "balanced_accuracy", "rare_class_recall"):
                delta = arm["delta_vs_real"][key]
                row[f"delta_{key}"] = triple(delta) + [None if delta["p_value"] is None else round(delta["p_value"], 4)]
        if augment is not None and name.startswith("real+synthetic"):
            vs_augment = t_interval(np.subtract(arm["auc"]["values"], augment["auc"]["values"]))
            row["delta_auc_vs_augment"] = triple(vs_augment)
        rows[name] = row
    mixed = {n: r for n, r in rows.items() if n.startswith("real+synthetic")}
    only = {n: r for n, r in rows.items() if n.startswith("synthetic")}
    return {
        "arms": rows,
        "published": {
            **PUBLISHED,
            "range_28px": PUBLISHED_RANGE_28PX,
            "real_auc": rows["real"]["auc"],
            "real_accuracy": rows["real"]["accuracy"],
            "real_auc_ratio_to_published": round(real["auc"]["mean"] / PUBLISHED["auc"], 4),
            "real_accuracy_ratio_to_published": round(real["accuracy"]["mean"] / PUBLISHED["accuracy"], 4),
        },
        "targets": {
            "auc_gain_ge_0.02_ci_excludes_0": [n for n, r in mixed.items() if r["delta_auc"][0] >= 0.02 and r["delta_auc"][1] > 0],
            "beats_augment_ci_excludes_0": [
                n for n, r in mixed.items() if "delta_auc_vs_augment" in r and r["delta_auc_vs_augment"][1] > 0],
            "beats_augment_on_mean": [n for n, r in mixed.items() if r["auc"][0] > rows.get("real+augment", {"auc": [1.0]})["auc"][0]],
            "raises_malignant_recall_ci_excludes_0": [n for n, r in mixed.items() if r["delta_rare_class_recall"][1] > 0],
            "synthetic_only_auc_ge_0.85": [n for n, r in only.items() if r["auc"][0] >= 0.85],
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=Path("/tmp/genrad-utility-breastmnist"))
    parser.add_argument("--synthetic", type=Path, default=None, help="synthetic.npz or a `genrad generate` folder")
    parser.add_argument("--run-dir", type=Path, default=None, help="a trained genrad model to generate from")
    parser.add_argument("--family", choices=("vae", "gan", "diffusion"), default="diffusion")
    parser.add_argument("--family-config", default="{}", help="JSON constructor overrides of the family")
    parser.add_argument("--train-minutes", type=float, default=30.0, help="CPU-time training budget of the family")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--multiples", default=",".join(f"{m:g}" for m in MULTIPLES))
    parser.add_argument("--arms", default=None, help="comma-separated arms instead of the full protocol")
    parser.add_argument("--no-ablation", dest="ablation", action="store_false")
    parser.add_argument("--no-qa", dest="qa", action="store_false")
    parser.add_argument("--pool-margin", type=float, default=1.15, help="extra synthetic images for the QA filter")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generator's training and sampling")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--workers", type=int, default=1, help="generation processes")
    parser.add_argument("--quick", action="store_true", help="2 seeds, 1x, the small recipe: a smoke test")
    parser.add_argument("--prepare-only", action="store_true", help="stop after training, generation and QA")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started, cpu_started = time.perf_counter(), time.process_time()

    cohort = load(args.data)
    multiples = list(QUICK["multiples"]) if args.quick else [float(m) for m in args.multiples.split(",")]
    seeds = QUICK["seeds"] if args.quick else args.seeds
    arms = default_arms(multiples, filtered=args.qa, ablation=args.ablation and not args.quick)
    needed = synthetic_needed(arms, np.bincount(cohort.train.labels, minlength=cohort.num_classes), margin=args.pool_margin)
    per_class = dict(enumerate(needed.tolist()))
    if args.arms is not None:  # a subset first (e.g. the core arms); a later full run reuses their cache
        arms = [Arm.parse(name) for name in args.arms.split(",")]
    npz_path, origin = synthesise(args, cohort, per_class)
    pool = load(npz_path).train
    keep = qa_keep(cohort, npz_path) if args.qa else None
    arms, dropped = feasible_arms(arms, np.bincount(cohort.train.labels, minlength=cohort.num_classes), pool, keep)
    if args.prepare_only:
        print(json.dumps({"synthetic": origin, "pool": len(pool), "qa_kept": None if keep is None else int(keep.sum())}))
        return
    payload = evaluate_utility(
        cohort, pool, out=args.out / "utility", seeds=seeds, multiples=multiples, arms=arms, keep=keep,
        quick=args.quick, synthetic_source=str(npz_path), progress=True,
    )
    payload["config"]["dropped_arms"] = dropped
    result = {
        "benchmark": "utility_breastmnist",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "threads": args.threads, "gpu": torch.cuda.is_available()},
        "versions": versions(),
        "synthetic": {
            **origin,
            "pool_per_class": np.bincount(pool.labels, minlength=cohort.num_classes).tolist(),
            "qa_kept_fraction": None if keep is None else round(float(keep.mean()), 4),
        },
        "seeds": payload["seeds"],
        "dropped_arms": dropped,
        "recipe": payload["config"]["recipe"],
        **summarise(payload),
        "wall_seconds": round(time.perf_counter() - started, 1),
        "cpu_seconds": round(time.process_time() - cpu_started, 1),
    }
    write_json(args.out / "benchmark.json", result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
