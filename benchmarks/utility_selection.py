"""Choosing genrad's utility recipe on BreastMNIST inside the training split, then testing the frozen recipe once.

Selection (``genrad.evaluation.utility.selection``; the test split is never read):

1. The train split is cut into the two stratified halves of `cross_validation_folds`; on each half every preset of
   `GENERATORS` (diffusion, and the VAE and GAN as controls) trains for ``--generator-minutes`` of CPU time
   (seed 0), so no held-out image can leak into that fold's synthetic images.
2. Stage 1, the generator and its sampling: one pool per entry of `POOLS` (the diffusion preset at its guidance
   1.75, at guidance 1.0, at guidance 1.0 with DDIM's stochastic sampler, at guidance 3; the VAE; the GAN) per
   fold, each scored with `STAGE_ONE_ARMS`; the pool with the best mean held-out AUC goes on.
3. Stage 2, the recipe: every entry of `RECIPES` on that pool, each as it is and with classical augmentation of
   every image (how a practitioner would use it): the amount (0.5x-10x, the rare class topped up first), a loss
   weight on synthetic images (0.1, 0.3), pre-training on synthetic images then fine-tuning on real ones (5x, 10x),
   keeping only images a real-data classifier agrees with (tau 0.6) or that the per-sample QA does not flag
   (`SampleQA` fitted on the fold's training half, calibrated on val).
4. The frozen recipe is the one whose two arms (plain and augmented) have the best mean held-out AUC; it is written
   to ``OUT/selection.json`` with every candidate's scores.

Test (``--test``; it starts from ``selection.json``, written before, so the recipe is frozen before the test split is read):
the frozen pool's generator trains on the whole train split for ``--final-minutes``, samples the frozen pool, and
the utility protocol runs the frozen recipe's arms (`genrad.evaluation.utility.Strategy.arms`: real, real + augment,
the recipe, the recipe with augmentation, synthetic only) over ``--seeds`` classifier seeds, scored on the full test
split and on its deduplicated part (test images with no pixel-NCC >= 0.97 twin in train,
`genrad.evaluation.privacy.PrivacyAudit`).

Data-scarce (``--scarce 0.25``; also only after the selection is frozen): the generator trains for
``--final-minutes`` on the fixed stratified fraction of the train split alone (`real_fraction_indices`, the images
the real@P% arms use), and the frozen recipe runs on that fraction, its synthetic amount scaled to it, with and
without augmentation, against the fraction alone, the fraction with augmentation and the whole train split.
``gap_recovered`` is (arm - fraction) / (whole train - fraction) in mean test AUC.

    python benchmarks/utility_selection.py --out /tmp/genrad-select                 # selection only
    python benchmarks/utility_selection.py --out /tmp/genrad-select --test           # then the frozen test
    python benchmarks/utility_selection.py --out /tmp/genrad-select --fold A        # one fold's generators
    python benchmarks/utility_selection.py --out /tmp/genrad-select --scarce 0.25    # the frozen recipe at 25% real

Everything is cached under ``--out`` (generators, pools, QA masks, each classifier run), so a run resumes where it
stopped and two ``--fold`` processes can train the fold generators in parallel. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

import genrad.models
from genrad.data import load
from genrad.data.cohort import Cohort, Split
from genrad.evaluation.utility import (
    QUICK,
    Arm,
    Strategy,
    feasible_arms,
    real_fraction_indices,
    run_protocol,
    synthetic_needed,
)
from genrad.evaluation.utility.selection import FOLDS, cross_validation_folds, select_recipe
from genrad.provenance import versions, write_json

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_breastmnist import DEFAULT_DATA, CpuBudget

GENERATORS = ("diffusion", "vae", "gan")
"""The presets trained on each fold (`genrad.models.presets`)."""
POOLS: dict[str, dict[str, Any]] = {
    "diffusion": {"preset": "diffusion", "sampling": {}},
    "diffusion-guidance1.0": {"preset": "diffusion", "sampling": {"guidance_scale": 1.0}},
    "diffusion-guidance1.0-stochastic": {"preset": "diffusion", "sampling": {"guidance_scale": 1.0, "solver": "ddim",
                                                                            "sampling_eta": 1.0, "num_inference_steps": 50}},
    "diffusion-guidance3": {"preset": "diffusion", "sampling": {"guidance_scale": 3.0}},
    "vae": {"preset": "vae", "sampling": {}},
    "gan": {"preset": "gan", "sampling": {}},
}
"""Each candidate pool: the preset that samples it and its sampling overrides (the diffusion preset: guidance 1.75)."""
STAGE_ONE_ARMS = ("real+synthetic@1x", "real+synthetic@2x+balanced")
RECIPES = (
    "real+synthetic@0.5x+balanced", "real+synthetic@1x", "real+synthetic@2x+balanced", "real+synthetic@5x+balanced",
    "real+synthetic@2x+balanced+weight0.1", "real+synthetic@2x+balanced+weight0.3",
    "real+synthetic@5x+pretrain", "real+synthetic@10x+pretrain",
    "real+synthetic@2x+balanced+agree0.6", "real+synthetic@2x+balanced+filtered",
)
"""Stage 2's recipes, each tested as it is and with ``+augment``."""
POOL_MARGIN = 1.5
"""Pool size over the largest arm's need per class: room for the ``+agree`` and ``+filtered`` arms."""


def train_generator(train: Split, preset: str, num_classes: int, minutes: float, path: Path, seed: int) -> Any:
    """`preset` trained on `train` for `minutes` of CPU time (or loaded from `path`)."""
    if (path / "config.json").exists():
        return genrad.models.load(path)
    model = genrad.models.build(preset=preset, num_classes=num_classes, spatial_dims=2)
    model.fit(train, max_steps=10**9, seed=seed, callbacks=[CpuBudget(minutes)])
    model.save(path)
    return model


def generator_path(root: Path, preset: str) -> Path:
    return root / ("generator" if preset == "diffusion" else f"generator-{preset}")


def counts(split: Split, num_classes: int) -> np.ndarray:
    return np.bincount(split.labels, minlength=num_classes)


def pool_counts(arms: list[str], real_counts: np.ndarray) -> dict[int, int]:
    """Synthetic images per class that the arms need, times `POOL_MARGIN` when an arm filters."""
    filters = any(Arm.parse(arm).agreement is not None or Arm.parse(arm).filtered for arm in arms)
    return dict(enumerate(synthetic_needed(arms, real_counts, margin=POOL_MARGIN if filters else 1.0).tolist()))


def sample_pool(model: Any, name: str, per_class: dict[int, int], root: Path, seed: int, workers: int = 1) -> Split:
    """The pool `name` (`POOLS`) of `model`: `per_class` images per class, cached under `root`."""
    from genrad.synthesis import generate

    tag = "-".join(str(per_class[k]) for k in sorted(per_class))
    out = root / f"{name}-{tag}"
    if not (out / "synthetic.npz").exists():
        generate(model, per_class=per_class, out=out, seed=seed, sampling=POOLS[name]["sampling"] or None, student=False,
                 workers=workers, progress=True)
    return load(out / "synthetic.npz").train


def qa_keep(train: Split, val: Split, pool: Split, path: Path) -> np.ndarray:
    """The per-sample QA's keep mask over `pool` (fitted on `train`, calibrated on `val`), cached at `path`."""
    from genrad.evaluation.qa import SampleQA

    if not path.exists():
        np.save(path, ~SampleQA().fit(train, val).flag(pool.images))
    return np.load(path)


def select(train: Split, val: Split, class_names: tuple[str, ...], args: argparse.Namespace) -> dict[str, Any]:
    """Both selection stages on `train` and `val` only; the frozen recipe and every candidate's scores."""
    folds = cross_validation_folds(train, val, class_names=class_names)
    num_classes = len(class_names)
    generators = {
        (fold, preset): train_generator(folds[fold].train, preset, num_classes, args.generator_minutes,
                                        generator_path(args.out / f"fold-{fold}", preset), args.seed)
        for fold in FOLDS for preset in GENERATORS
    }

    def pools(names: list[str], arms: list[str]) -> dict[str, dict[str, Split]]:
        return {name: {fold: sample_pool(generators[fold, POOLS[name]["preset"]], name,
                                         pool_counts(arms, counts(folds[fold].train, num_classes)),
                                         args.out / f"fold-{fold}" / "pools", args.seed, workers=args.workers)
                       for fold in FOLDS}
                for name in names}

    common = {"seeds": args.select_seeds, "cache_dir": args.out / "selection-runs", "recipe": args.recipe, "workers": args.workers,
              "progress": True}
    stage_one = select_recipe(folds, pools(list(POOLS), list(STAGE_ONE_ARMS)), STAGE_ONE_ARMS, **common)
    pool_scores = {name: float(np.mean([row["cv_auc"] for row in stage_one["table"] if row["pool"] == name])) for name in POOLS}
    best_pool = max(pool_scores, key=pool_scores.get)
    recipe_arms = [name for recipe in RECIPES for name in (recipe, replace(Arm.parse(recipe), augment=True).name)]
    chosen = pools([best_pool], recipe_arms)
    keeps = {best_pool: {fold: qa_keep(folds[fold].train, val, chosen[best_pool][fold],
                                       args.out / f"fold-{fold}" / "pools" / f"{best_pool}-qa-keep.npy") for fold in FOLDS}}
    dropped: dict[str, str] = {}
    for fold in FOLDS:  # a recipe runs only where every fold's pool can serve both of its arms
        dropped.update(feasible_arms(recipe_arms, counts(folds[fold].train, num_classes), chosen[best_pool][fold],
                                     keeps[best_pool][fold])[1])
    recipes = [recipe for recipe in RECIPES if not {recipe, replace(Arm.parse(recipe), augment=True).name} & set(dropped)]
    recipe_arms = [name for recipe in recipes for name in (recipe, replace(Arm.parse(recipe), augment=True).name)]
    stage_two = select_recipe(folds, chosen, recipe_arms, keeps=keeps, **common)
    table = [{**row, "stage": 1} for row in stage_one["table"]] + [{**row, "stage": 2} for row in stage_two["table"]]
    scores = {row["arm"]: row["cv_auc"] for row in stage_two["table"] if row["pool"] is not None}
    recipe_scores = {recipe: (scores[recipe] + scores[replace(Arm.parse(recipe), augment=True).name]) / 2 for recipe in recipes}
    frozen = max(recipe_scores, key=recipe_scores.get)
    return {
        "frozen": {"pool": best_pool, "preset": POOLS[best_pool]["preset"], "sampling": POOLS[best_pool]["sampling"],
                   "arm": frozen, "cv_auc": scores[frozen], "cv_auc_augmented": scores[replace(Arm.parse(frozen), augment=True).name],
                   "recipe_score": recipe_scores[frozen]},
        "pool_scores": pool_scores,
        "recipe_scores": dict(sorted(recipe_scores.items(), key=lambda item: -item[1])),
        "qa_kept_fraction": {fold: round(float(keeps[best_pool][fold].mean()), 4) for fold in FOLDS},
        "dropped_arms": dropped,
        "table": sorted(table, key=lambda row: -row["cv_auc"]),
        "folds": stage_two["folds"],
        "criterion": "stage 1: mean held-out AUC of the pool over STAGE_ONE_ARMS; stage 2: mean held-out AUC of a recipe "
                     "and its +augment twin (folds x seeds); the test split is never read",
        "generators": {f"{fold}/{preset}": {"train_steps": int(model.step_), "cpu_minutes": args.generator_minutes}
                       for (fold, preset), model in generators.items()},
        "select_seeds": args.select_seeds,
    }


def frozen_strategy(selection: dict[str, Any], fraction: float = 1.0) -> Strategy:
    """The frozen recipe as a `Strategy`, on `fraction` of the real training set (its synthetic amount scaled alike)."""
    arm = Arm.parse(selection["frozen"]["arm"])
    if fraction < 1.0:
        arm = replace(arm, real_fraction=fraction, synthetic_multiple=arm.synthetic_multiple * fraction)
    return Strategy("frozen", arm, "the recipe frozen by the selection inside the train split")


def test(cohort: Cohort, selection: dict[str, Any], args: argparse.Namespace, *, fraction: float = 1.0) -> dict[str, Any]:
    """The frozen recipe on the test split, full and deduplicated, with its generator trained on `fraction` of the
    train split alone (the real@P% images); the one read of the test split."""
    from genrad.evaluation.privacy import PrivacyAudit

    frozen = selection["frozen"]
    index = real_fraction_indices(cohort.train.labels, fraction, cohort.num_classes)
    root = args.out / ("final" if fraction == 1.0 else f"scarce-{fraction * 100:g}")
    model = train_generator(cohort.train.subset(index), frozen["preset"], cohort.num_classes, args.final_minutes,
                            generator_path(root, frozen["preset"]), args.seed)
    strategy = frozen_strategy(selection, fraction)
    arms = [arm.name for arm in strategy.arms()]
    if fraction < 1.0:
        few = Arm(real_fraction=fraction)
        arms = list(dict.fromkeys(["real", few.name, replace(few, augment=True).name, *arms[2:4]]))
    synthetic_arms = [arm for arm in arms if Arm.parse(arm).uses_synthetic]
    pool = sample_pool(model, frozen["pool"], pool_counts(synthetic_arms, counts(cohort.train, cohort.num_classes)),
                       root / "pools", args.seed, workers=args.workers)
    duplicates = PrivacyAudit(features=()).fit(cohort.train, cohort.test).duplicates_
    payload = run_protocol(cohort, pool, arms=arms, seeds=args.seeds, cache_dir=root / "test-runs", recipe=args.recipe,
                           workers=args.workers, test_subsets={"dedup": ~duplicates}, progress=True)
    result = {"generator": {"preset": frozen["preset"], "train_images": len(index), "train_steps": int(model.step_),
                            "cpu_minutes": args.final_minutes},
              "arms": brief(payload["arms"]), "dedup_arms": brief(payload["subsets"]["dedup"]["arms"]),
              "dedup_test_images": int((~duplicates).sum()), "test_images": len(duplicates), "seeds": payload["seeds"],
              "recipe": payload["config"]["recipe"]}
    if fraction < 1.0:
        auc = {row["name"]: row["auc"]["mean"] for row in payload["arms"]}
        few_auc, gap = auc[Arm(real_fraction=fraction).name], auc["real"] - auc[Arm(real_fraction=fraction).name]
        result.update(fraction=fraction, recipe_arm=strategy.arm.name,
                      gap_recovered={name: (value - few_auc) / gap if gap > 0 else None for name, value in auc.items() if name != "real"})
    return result


def brief(arms: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The `utility.json` view of each arm: name, AUC, its paired differences to real (and, for an augmented
    synthetic arm, to real + augment), malignant recall at the real arm's specificity (mean and interval)."""
    def pick(summary: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if summary is None else {"mean": round(summary["mean"], 4), "ci": [round(v, 4) for v in summary["ci"]]}

    def delta(arm: dict[str, Any], key: str, metric: str) -> dict[str, Any] | None:
        return pick((arm.get(key) or {}).get(metric))

    return [{"name": arm["name"], "auc": pick(arm["auc"]), "delta_vs_real": delta(arm, "delta_vs_real", "auc"),
             "delta_vs_augment": delta(arm, "delta_vs_augment", "auc"),
             "rare_recall_at_real_specificity": pick(arm["rare_recall_at_real_specificity"]),
             "delta_rare_recall_at_real_specificity": delta(arm, "delta_vs_real", "rare_recall_at_real_specificity")}
            for arm in arms]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=Path("/tmp/genrad-utility-selection"))
    parser.add_argument("--generator-minutes", type=float, default=10.0, help="CPU minutes of each fold's generators")
    parser.add_argument("--final-minutes", type=float, default=14.0, help="CPU minutes of the test stage's generator")
    parser.add_argument("--select-seeds", type=int, default=2, help="classifier seeds per fold in the selection")
    parser.add_argument("--seeds", type=int, default=10, help="classifier seeds in the test stage")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generators' training and sampling")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2, help="classifiers trained at a time (one thread each)")
    parser.add_argument("--fold", choices=FOLDS, default=None, help="only train this fold's generators, then stop")
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
        steps = {preset: int(train_generator(folds[args.fold].train, preset, cohort.num_classes, args.generator_minutes,
                                             generator_path(args.out / f"fold-{args.fold}", preset), args.seed).step_)
                 for preset in GENERATORS}
        print(json.dumps({"fold": args.fold, "train_steps": steps}))
        return
    selection_path = args.out / "selection.json"
    if selection_path.exists():
        selection = json.loads(selection_path.read_text(encoding="utf-8"))
    else:
        selection = select(cohort.train, cohort.val, cohort.class_names, args)
        write_json(selection_path, selection)
    result: dict[str, Any] = {"benchmark": "utility_selection", "command": " ".join(["python", *sys.argv]),
                              "date": datetime.now(UTC).isoformat(timespec="seconds"),
                              "machine": {"platform": platform.platform(), "threads": args.threads}, "versions": versions(),
                              "selection": selection, "frozen_arm": selection["frozen"]["arm"]}
    if args.test:
        result.update(test(cohort, selection, args))
    if args.scarce is not None:
        result["scarce"] = test(cohort, selection, args, fraction=args.scarce)
    result["wall_seconds"] = round(time.perf_counter() - started, 1)
    write_json(args.out / "benchmark.json", result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
