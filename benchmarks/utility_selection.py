"""Choosing genrad's utility recipe on BreastMNIST inside the training split, then testing the frozen recipe once.

Selection (``genrad.evaluation.selection``; the test split is never read):

1. The train split is cut into the two stratified halves of `cross_validation_folds`; on each half the
   diffusion preset trains for ``--generator-minutes`` of CPU time (seed 0), so no held-out image can leak
   into that fold's synthetic images.
2. Stage 1, the generator's sampling: one pool per entry of `POOLS` (the preset's guidance 1.75, guidance 1.0,
   guidance 1.0 with DDIM's stochastic sampler) per fold, each scored with `STAGE_ONE_ARMS`.
3. Stage 2, the recipe: the best stage-1 pool (mean held-out AUC) with every arm of `STAGE_TWO_ARMS`: the amount
   (1x-5x, rare class topped up first), a loss weight on synthetic images, pre-training on synthetic images then
   fine-tuning on real ones, keeping only images a real-data classifier agrees with, augmenting every image.
4. The frozen choice (the best candidate of both stages) is written to ``OUT/selection.json`` with the whole table.

Test (``--test``; refused until ``selection.json`` exists, so the recipe is frozen before the test split is read):
the preset trains on the whole train split for ``--final-minutes``, samples the frozen pool, and the utility
protocol runs the frozen arm, the same arm with augmentation, real, real + augment and synthetic only over
``--seeds`` classifier seeds, scored on the full test split and on its deduplicated part (test images with no
pixel-NCC >= 0.97 twin in train, `genrad.evaluation.privacy.PrivacyAudit`).

Data-scarce (``--scarce 0.25``; also only after the selection is frozen): the preset trains for ``--final-minutes``
on the fixed stratified fraction of the train split alone (`real_fraction_indices`, the images the real@P% arms
use), and the frozen recipe runs on that fraction, its synthetic amount scaled to it (5x of the fraction), with
and without augmentation, against the fraction alone, the fraction with augmentation and the whole train split.
``gap_recovered`` is (recipe - fraction) / (whole train - fraction) in mean test AUC.

    python benchmarks/utility_selection.py --out /tmp/genrad-select               # selection only
    python benchmarks/utility_selection.py --out /tmp/genrad-select --test         # then the frozen test
    python benchmarks/utility_selection.py --out /tmp/genrad-select --fold A      # one fold's generator
    python benchmarks/utility_selection.py --out /tmp/genrad-select --scarce 0.25  # the frozen recipe at 25% real

Everything is cached under ``--out`` (generators, pools, each classifier run), so a run resumes where it stopped
and two ``--fold`` processes can train the fold generators in parallel. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

import genrad.models
from genrad.data import load
from genrad.data.cohort import Cohort, Split
from genrad.evaluation.selection import FOLDS, cross_validation_folds, select_recipe
from genrad.evaluation.utility import QUICK, Arm, real_fraction_indices, run_protocol, synthetic_needed
from genrad.provenance import versions, write_json

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_breastmnist import DEFAULT_DATA, CpuBudget  # noqa: E402

POOLS: dict[str, dict[str, Any]] = {
    "guidance1.75": {},
    "guidance1.0": {"guidance_scale": 1.0},
    "guidance1.0-stochastic": {"guidance_scale": 1.0, "solver": "ddim", "sampling_eta": 1.0, "num_inference_steps": 50},
}
"""Sampling settings of each candidate pool (overrides of the preset's; the preset samples with guidance 1.75)."""
STAGE_ONE_ARMS = ("real+synthetic@1x", "real+synthetic@2x+balanced")
STAGE_TWO_ARMS = (
    "real+synthetic@1x", "real+synthetic@2x+balanced", "real+synthetic@5x+balanced", "real+synthetic@2x+balanced+weight0.3",
    "real+synthetic@5x+pretrain", "real+synthetic@2x+balanced+agree0.6", "real+synthetic@2x+augment+balanced",
)
POOL_MARGIN = 1.5
"""Pool size over the largest arm's need per class: room for the ``+agree`` filter."""


def train_generator(train: Split, num_classes: int, minutes: float, path: Path, seed: int) -> Any:
    """The diffusion preset trained on `train` for `minutes` of CPU time (or loaded from `path`)."""
    if (path / "config.json").exists():
        return genrad.models.load(path)
    model = genrad.models.build(preset="diffusion", num_classes=num_classes, spatial_dims=2)
    model.fit(train, max_steps=10**9, seed=seed, callbacks=[CpuBudget(minutes)])
    model.save(path)
    return model


def counts(split: Split, num_classes: int) -> np.ndarray:
    return np.bincount(split.labels, minlength=num_classes)


def pool_counts(arms: list[str], real_counts: np.ndarray) -> dict[int, int]:
    """Synthetic images per class that the arms need, times `POOL_MARGIN` when an arm filters."""
    margin = POOL_MARGIN if any(Arm.parse(arm).agreement is not None for arm in arms) else 1.0
    return dict(enumerate(synthetic_needed(arms, real_counts, margin=margin).tolist()))


def sample_pool(model: Any, name: str, per_class: dict[int, int], root: Path, seed: int, workers: int = 1) -> Split:
    """The pool `name` (`POOLS`) of `model`: `per_class` images per class, cached under `root`."""
    from genrad.synthesis import generate

    tag = "-".join(str(per_class[k]) for k in sorted(per_class))
    out = root / f"{name}-{tag}"
    if not (out / "synthetic.npz").exists():
        generate(model, per_class=per_class, out=out, seed=seed, sampling=POOLS[name], student=False,
                 workers=workers, progress=True)
    return load(out / "synthetic.npz").train


def select(train: Split, val: Split, class_names: tuple[str, ...], args: argparse.Namespace) -> dict[str, Any]:
    """Both selection stages on `train` and `val` only; the frozen candidate and every candidate's scores."""
    folds = cross_validation_folds(train, val, class_names=class_names)
    num_classes = len(class_names)
    generators = {
        fold: train_generator(folds[fold].train, num_classes, args.generator_minutes, args.out / f"fold-{fold}" / "generator",
                              args.seed)
        for fold in FOLDS
    }

    def pools(names: list[str], arms: list[str]) -> dict[str, dict[str, Split]]:
        return {name: {fold: sample_pool(generators[fold], name, pool_counts(arms, counts(folds[fold].train, num_classes)),
                                         args.out / f"fold-{fold}" / "pools", args.seed) for fold in FOLDS}
                for name in names}

    common = {"seeds": args.select_seeds, "cache_dir": args.out / "selection-runs", "recipe": args.recipe, "workers": args.workers,
              "progress": True}
    stage_one = select_recipe(folds, pools(list(POOLS), list(STAGE_ONE_ARMS)), STAGE_ONE_ARMS, **common)
    pool_scores = {name: np.mean([row["cv_auc"] for row in stage_one["table"] if row["pool"] == name]) for name in POOLS}
    best_pool = max(pool_scores, key=pool_scores.get)
    stage_two = select_recipe(folds, pools([best_pool], list(STAGE_TWO_ARMS)), STAGE_TWO_ARMS, **common)
    table = [{**row, "stage": 1} for row in stage_one["table"]] + [{**row, "stage": 2} for row in stage_two["table"]]
    frozen = max((row for row in table if row["pool"] is not None), key=lambda row: row["cv_auc"])
    return {
        "frozen": {"pool": frozen["pool"], "sampling": POOLS[frozen["pool"]], "arm": frozen["arm"], "cv_auc": frozen["cv_auc"]},
        "pool_scores": {name: float(score) for name, score in pool_scores.items()},
        "table": sorted(table, key=lambda row: -row["cv_auc"]),
        "folds": stage_two["folds"],
        "criterion": stage_two["criterion"],
        "generators": {fold: {"train_steps": int(model.step_), "cpu_minutes": args.generator_minutes} for fold, model in generators.items()},
        "select_seeds": args.select_seeds,
    }


def test_arms(frozen_arm: str) -> list[str]:
    """The arms the frozen recipe is tested with: itself, itself with augmentation, the baselines, synthetic only."""
    arm = Arm.parse(frozen_arm)
    return list(dict.fromkeys(["real", "real+augment", arm.name, replace(arm, augment=True).name, "synthetic@1x"]))


def test(cohort: Cohort, selection: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """The frozen recipe on the test split, full and deduplicated: the one read of the test split."""
    from genrad.evaluation.privacy import PrivacyAudit

    frozen = selection["frozen"]
    model = train_generator(cohort.train, cohort.num_classes, args.final_minutes, args.out / "final" / "generator", args.seed)
    arms = test_arms(frozen["arm"])
    synthetic_arms = [arm for arm in arms if Arm.parse(arm).uses_synthetic]
    pool = sample_pool(model, frozen["pool"], pool_counts(synthetic_arms, counts(cohort.train, cohort.num_classes)),
                       args.out / "final" / "pools", args.seed, workers=args.workers)
    duplicates = PrivacyAudit(features=()).fit(cohort.train, cohort.test).duplicates_
    payload = run_protocol(cohort, pool, arms=arms, seeds=args.seeds, cache_dir=args.out / "test-runs", recipe=args.recipe,
                           workers=args.workers, test_subsets={"dedup": ~duplicates}, progress=True)
    return {"payload": payload, "generator": {"train_steps": int(model.step_), "cpu_minutes": args.final_minutes},
            "dedup_test_images": int((~duplicates).sum()), "test_images": len(duplicates)}


def scarce(cohort: Cohort, selection: dict[str, Any], fraction: float, args: argparse.Namespace) -> dict[str, Any]:
    """The frozen recipe when only `fraction` of the train split exists, its generator trained on that fraction alone."""
    from genrad.evaluation.privacy import PrivacyAudit

    frozen = selection["frozen"]
    index = real_fraction_indices(cohort.train.labels, fraction, cohort.num_classes)
    root = args.out / f"scarce-{fraction * 100:g}"
    model = train_generator(cohort.train.subset(index), cohort.num_classes, args.final_minutes, root / "generator", args.seed)
    arm = Arm.parse(frozen["arm"])
    recipe = replace(arm, real_fraction=fraction, synthetic_multiple=arm.synthetic_multiple * fraction)
    few = Arm(real_fraction=fraction)
    arms = list(dict.fromkeys(["real", few.name, replace(few, augment=True).name, recipe.name, replace(recipe, augment=True).name]))
    synthetic_arms = [name for name in arms if Arm.parse(name).uses_synthetic]
    pool = sample_pool(model, frozen["pool"], pool_counts(synthetic_arms, counts(cohort.train, cohort.num_classes)),
                       root / "pools", args.seed, workers=args.workers)
    duplicates = PrivacyAudit(features=()).fit(cohort.train, cohort.test).duplicates_
    payload = run_protocol(cohort, pool, arms=arms, seeds=args.seeds, cache_dir=root / "runs", recipe=args.recipe,
                           workers=args.workers, test_subsets={"dedup": ~duplicates}, progress=True)
    auc = {row["name"]: row["auc"]["mean"] for row in payload["arms"]}
    gap = auc["real"] - auc[few.name]
    return {"fraction": fraction, "train_images": len(index), "recipe_arm": recipe.name,
            "generator": {"train_steps": int(model.step_), "cpu_minutes": args.final_minutes},
            "gap_recovered": {name: (auc[name] - auc[few.name]) / gap if gap > 0 else None for name in arms if name != "real"},
            "arms": brief(payload["arms"]), "dedup_arms": brief(payload["subsets"]["dedup"]["arms"])}


def brief(arms: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The `utility.json` view of each arm: name, AUC and its paired difference to real (mean and interval)."""
    def pick(summary: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if summary is None else {"mean": round(summary["mean"], 4), "ci": [round(v, 4) for v in summary["ci"]]}

    return [{"name": arm["name"], "auc": pick(arm["auc"]), "delta_vs_real": pick(arm["delta_vs_real"] and arm["delta_vs_real"]["auc"]),
             "rare_recall_at_real_specificity": pick(arm["rare_recall_at_real_specificity"]),
             "delta_rare_recall_at_real_specificity": pick(arm["delta_vs_real"] and arm["delta_vs_real"]["rare_recall_at_real_specificity"])}
            for arm in arms]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=Path("/tmp/genrad-utility-selection"))
    parser.add_argument("--generator-minutes", type=float, default=10.0, help="CPU minutes of each fold's generator")
    parser.add_argument("--final-minutes", type=float, default=14.0, help="CPU minutes of the test stage's generator")
    parser.add_argument("--select-seeds", type=int, default=2, help="classifier seeds per fold in the selection")
    parser.add_argument("--seeds", type=int, default=10, help="classifier seeds in the test stage")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generators' training and sampling")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2, help="classifiers trained at a time (one thread each)")
    parser.add_argument("--fold", choices=FOLDS, default=None, help="only train this fold's generator, then stop")
    parser.add_argument("--test", action="store_true", help="after the selection, test the frozen recipe once")
    parser.add_argument("--scarce", type=float, default=None, help="test the frozen recipe on this fraction of train")
    parser.add_argument("--quick", action="store_true", help="the quick classifier recipe: a smoke test of the pipeline")
    args = parser.parse_args()
    args.recipe = QUICK["recipe"] if args.quick else None
    if args.scarce is not None and not 0 < args.scarce < 1:
        parser.error(f"--scarce takes a fraction in (0, 1), e.g. 0.25; found {args.scarce}")
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    cohort = load(args.data)
    if args.fold is not None:
        folds = cross_validation_folds(cohort.train, cohort.val, class_names=cohort.class_names)
        model = train_generator(folds[args.fold].train, cohort.num_classes, args.generator_minutes,
                                args.out / f"fold-{args.fold}" / "generator", args.seed)
        print(json.dumps({"fold": args.fold, "train_steps": int(model.step_)}))
        return
    selection_path = args.out / "selection.json"
    if selection_path.exists():
        selection = json.loads(selection_path.read_text(encoding="utf-8"))
    else:
        selection = select(cohort.train, cohort.val, cohort.class_names, args)
        write_json(selection_path, selection)
    result: dict[str, Any] = {"benchmark": "utility_selection", "command": " ".join(["python", *sys.argv]),
                              "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                              "machine": {"platform": platform.platform(), "threads": args.threads}, "versions": versions(),
                              "selection": selection, "frozen_arm": selection["frozen"]["arm"]}
    if args.scarce is not None:
        result["scarce"] = scarce(cohort, selection, args.scarce, args)
    if args.test:
        tested = test(cohort, selection, args)
        payload = tested.pop("payload")
        result.update(tested, arms=brief(payload["arms"]), dedup_arms=brief(payload["subsets"]["dedup"]["arms"]),
                      seeds=payload["seeds"], recipe=payload["config"]["recipe"])
    result["wall_seconds"] = round(time.perf_counter() - started, 1)
    write_json(args.out / "benchmark.json", result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
