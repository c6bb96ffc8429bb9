"""Robustness stress test on BreastMNIST, and the gain from scenario augmentation.

For each seed, `genrad.scenarios.augment.augment` trains the utility protocol's classifier (MONAI
ResNet-10, `genrad.evaluation.utility.classifier.Classifier` defaults) twice with early stopping on the real
validation split: ``real`` (real training images only) and ``real+scenarios`` (real + `--copies`
perturbed copies of the pool, each with a uniformly drawn cell of the default grid). The pool is the
real training split or, with ``--synthetic PATH``, a genrad synthetic set (its ``synthetic.npz``).
Both are swept over the default grid (11 perturbations x 4 severities) on the real test split.

Reported: the real-only classifier's robustness table (AUC per cell, with the Spearman correlation of
AUC with severity per perturbation), and per seed and on average the AUC drop at each perturbation's
highest severity for both classifiers. The anchor is the real-only classifier of the same seed:
``drop_ratio`` = augmented drop / real-only drop (below 1: augmentation helps).

    python benchmarks/scenarios_breastmnist.py                    # 3 seeds, 2 copies (~30 min on 2 cores)
    python benchmarks/scenarios_breastmnist.py --seeds 0 --quick   # a few minutes
    python benchmarks/scenarios_breastmnist.py --synthetic OUT/synthetic   # perturb synthetic images

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

from genrad.cli.evaluate import synthetic_file
from genrad.data import load
from genrad.scenarios import default_grid
from genrad.scenarios.augment import AUGMENTED, BASELINE, augment

BREASTMNIST = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "breastmnist.npz"


def severity_trend(cells: list[dict]) -> dict[str, dict]:
    """Per perturbation: AUCs from clean to the highest severity and their Spearman rho with severity."""
    clean = cells[0]["auc"]
    trend: dict[str, dict] = {}
    for cell in cells[1:]:
        trend.setdefault(cell["perturbation"], {"severity": [0.0], "auc": [clean]})
        trend[cell["perturbation"]]["severity"].append(cell["severity"])
        trend[cell["perturbation"]]["auc"].append(cell["auc"])
    for row in trend.values():
        row["spearman_rho"] = float(spearmanr(row["severity"], row["auc"])[0])
        row["auc"] = [round(a, 4) for a in row["auc"]]
    return trend


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(BREASTMNIST))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--copies", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="short training recipe, extreme severities only")
    parser.add_argument("--synthetic", default=None, help="synthetic.npz (or its folder) to perturb instead of the real train split")
    parser.add_argument("--pool-size", type=int, default=None, help="a seeded random subset of the synthetic pool (default: all of it)")
    parser.add_argument("--out", default=None, help="keep outputs here (default: a temporary folder)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cohort = load(args.data)
    pool = None
    if args.synthetic:
        pool = load(synthetic_file(Path(args.synthetic))).train
        if args.pool_size is not None and args.pool_size < len(pool):
            pool = pool.subset(np.sort(np.random.default_rng(0).choice(len(pool), args.pool_size, replace=False)))
    seeds = [int(s) for s in args.seeds.split(",")]
    root = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="scenarios_bench_"))
    runs = []
    for seed in seeds:
        start = time.perf_counter()
        result = augment(cohort, default_grid(), root / f"seed{seed}", seed=seed, copies=args.copies, quick=args.quick,
                         pool=pool, progress=False)
        baseline_cells = json.loads((root / f"seed{seed}" / BASELINE / "stress.json").read_text())
        summary = result["summary"]
        highest = summary["highest_severity"]
        runs.append({
            "seed": seed,
            "seconds": round(time.perf_counter() - start, 1),
            "clean_auc": summary["clean_auc"],
            "real_only_trend": severity_trend(baseline_cells),
            "drop_at_highest_severity": {
                name: {"severity": v["severity"], BASELINE: round(v[f"{BASELINE}_drop"], 4),
                       AUGMENTED: round(v[f"{AUGMENTED}_drop"], 4), "reduction_ci": [round(c, 4) for c in v["drop_reduction_ci"]],
                       "auc": {m: round(v[f"{m}_auc"], 4) for m in (BASELINE, AUGMENTED)}}
                for name, v in highest.items()
            },
            "mean_drop_at_highest_severity": summary["mean_drop_at_highest_severity"],
            "mean_auc_at_highest_severity": summary["mean_auc_at_highest_severity"],
            "perturbations_with_smaller_drop": summary["perturbations_with_smaller_drop"],
        })
    mean_drop = {m: float(np.mean([r["mean_drop_at_highest_severity"][m] for r in runs])) for m in (BASELINE, AUGMENTED)}
    per_perturbation = {
        name: {m: round(float(np.mean([r["drop_at_highest_severity"][name][m] for r in runs])), 4) for m in (BASELINE, AUGMENTED)}
        for name in runs[0]["drop_at_highest_severity"]
    }
    report = {
        "benchmark": "scenarios_breastmnist",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"threads": torch.get_num_threads(), "platform": platform.platform(), "gpu": torch.cuda.is_available()},
        "data": args.data,
        "grid": default_grid().model_dump() if not args.quick else default_grid().quick().model_dump(),
        "copies": args.copies,
        "pool": args.synthetic or "real train split",
        "pool_size": len(pool) if pool is not None else len(cohort.train),
        "quick": args.quick,
        "seeds": seeds,
        "runs": runs,
        "mean_over_seeds": {
            "clean_auc": {m: float(np.mean([r["clean_auc"][m] for r in runs])) for m in (BASELINE, AUGMENTED)},
            "mean_drop_at_highest_severity": mean_drop,
            "mean_auc_at_highest_severity": {
                m: float(np.mean([r["mean_auc_at_highest_severity"][m] for r in runs])) for m in (BASELINE, AUGMENTED)
            },
            "drop_ratio": mean_drop[AUGMENTED] / mean_drop[BASELINE],
            "drop_at_highest_severity": per_perturbation,
            "perturbations_with_smaller_drop": [r["perturbations_with_smaller_drop"] for r in runs],
        },
        "outputs": str(root),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
