"""Does synthetic data beat the classical remedies where data are rare or scarce? PneumoniaMNIST, three scenarios.

Each scenario cuts the training and validation splits by one rule (the test split stays whole, 234 normal / 390
pneumonia) and trains every generator on its own training images only:

- ``rare``: every normal image and 5% of the pneumonia ones (the disease is the rare class, ~12.6% prevalence);
- ``scarce``: a stratified 10% of each split;
- ``full``: the whole splits.

Per scenario, in this order (each step cached under ``OUT/<scenario>``, so a stopped run continues where it was):

1. **Generators**: the diffusion preset trains for ``--generator-minutes`` of CPU time on each half of the
   scenario's training split (`genrad.evaluation.utility.selection.cross_validation_folds`) and for ``--final-minutes``
   on all of it; each is distilled into its guidance student (`genrad.training.distill_guidance`,
   ``--distill-share`` of the teacher's minutes). ``--generators-only F`` trains one of them (``A``, ``B``,
   ``final``) and stops, so three processes can train them side by side.
2. **Selection** (one run; the test split is never read): on the two folds, the classical arms `CLASSICAL`
   (class weights, classical augmentation, TrivialAugment, their combinations, oversampling of the rare class at
   every amount) and, stage 1, the sampling `POOLS` (the distilled student, the teacher with its guidance,
   unguided stochastic DDIM) on `STAGE_ONE_ARMS`; stage 2, every amount of `AMOUNTS` (x the rare class, balanced
   top-up) with keep rule all or real-classifier agreement on the best pool. The best classical arm and the
   recipe with the best mean held-out AUC (folds x ``--select-seeds``) are frozen in ``selection.json``.
3. **Power** (before the test split is read): the paired interval half-width of recipe - best classical on the
   folds, scaled to the test split's class counts (``power.json``; see `expected_half_width`).
4. **Test** (``--test``; the one read of the test split): the final generator samples the frozen pool; the arms
   real, the count-matched oversampling control, class weights, classical augmentation, TrivialAugment, the best
   classical arm, the recipe and the recipe with the best classical remedies run over ``--seeds`` classifier
   seeds; paired bootstrap over test images x seeds (`genrad.evaluation.utility.run_protocol`).

``--merge`` gathers every finished scenario into one JSON (``docs/results/utility_pneumoniamnist.json``)::

    python benchmarks/utility_pneumoniamnist.py --scenario rare --out /tmp/pneu --generators-only A &   # three
    python benchmarks/utility_pneumoniamnist.py --scenario rare --out /tmp/pneu --generators-only B &   # processes
    python benchmarks/utility_pneumoniamnist.py --scenario rare --out /tmp/pneu --generators-only final &
    python benchmarks/utility_pneumoniamnist.py --scenario rare --out /tmp/pneu --test --workers 2
    python benchmarks/utility_pneumoniamnist.py --out /tmp/pneu --merge > docs/results/utility_pneumoniamnist.json

Prints one JSON object.
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
from scipy import stats

import genrad.models
from genrad.core import derive_seed
from genrad.data import load
from genrad.data.cohort import Cohort, Split
from genrad.evaluation.utility import (
    CLASSICAL_MODIFIERS,
    QUICK,
    UNGUIDED_SAMPLING,
    Arm,
    control_arms,
    fraction_counts,
    run_protocol,
    synthetic_needed,
)
from genrad.evaluation.utility.selection import FOLDS, cross_validation_folds, select_recipe
from genrad.provenance import versions, write_json

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_breastmnist import CpuBudget

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "pneumoniamnist.npz"
SCENARIOS = ("rare", "scarce", "full")
DISEASE = 1
"""PneumoniaMNIST's label of pneumonia (0: normal)."""
RARE_FRACTION = 0.05
SCARCE_FRACTION = 0.10
AMOUNTS = (0.5, 1.0, 2.0, 4.0)
"""Synthetic images as a multiple of the rare class's real count, topped up rare class first (``@Mxrare+balanced``)."""
AGREEMENT = 0.6
POOLS: dict[str, dict[str, Any]] = {
    "student": {"student": True, "sampling": None},
    "teacher": {"student": False, "sampling": None},
    "unguided-stochastic": {"student": False, "sampling": UNGUIDED_SAMPLING["diffusion"]},
}
"""The sampling candidates: the distilled student (the preset's guidance, 10 steps), the teacher with the preset's
guidance, and the teacher without guidance with stochastic DDIM-50 (genrad's former utility sampling)."""
STAGE_ONE_ARMS = ("real+synthetic@1xrare+balanced", "real+synthetic@4xrare+balanced")
RECIPES = tuple(f"real+synthetic@{m:g}xrare+balanced{keep}" for keep in ("", f"+agree{AGREEMENT:g}") for m in AMOUNTS)
CLASSICAL = ("real", "real+reweight", "real+augment", "real+trivialaugment", "real+reweight+augment",
             "real+reweight+trivialaugment", *(f"real+oversample@{m:g}xrare+balanced" for m in AMOUNTS))
"""The classical candidates for the best classical arm."""
POOL_MARGIN = 1.5
"""Pool size over the largest arm's need per class: room for the ``+agree`` arms."""


def log(message: str) -> None:
    """One plain progress line on stderr (the JSON result goes to stdout)."""
    print(f"{datetime.now(UTC).isoformat(timespec='seconds')} {message}", file=sys.stderr, flush=True)


def scenario_indices(labels: np.ndarray, scenario: str, num_classes: int) -> np.ndarray:
    """The images of a split that `scenario` keeps: a fixed, seeded choice (tag ``scenario``), so the rule cuts the
    training and validation splits alike and every run sees the same images."""
    counts = np.bincount(labels, minlength=num_classes)
    if scenario == "full":
        return np.arange(len(labels))
    if scenario == "rare":
        wanted = counts.copy()
        wanted[DISEASE] = max(1, round(RARE_FRACTION * counts[DISEASE]))
    else:
        wanted = fraction_counts(counts, SCARCE_FRACTION)
    chosen = [np.random.default_rng(derive_seed(0, "scenario", scenario, k)).permutation(np.flatnonzero(labels == k))[:n]
              for k, n in enumerate(wanted)]
    return np.sort(np.concatenate(chosen))


def scenario_cohort(cohort: Cohort, scenario: str) -> Cohort:
    splits = {name: cohort.splits[name].subset(scenario_indices(cohort.splits[name].labels, scenario, cohort.num_classes))
              for name in ("train", "val")}
    return Cohort(splits={**splits, "test": cohort.test}, class_names=cohort.class_names,
                  source=f"{cohort.source} ({scenario} scenario)")


def counts(split: Split, num_classes: int) -> np.ndarray:
    return np.bincount(split.labels, minlength=num_classes)


def train_generator(train: Split, num_classes: int, minutes: float, distill_share: float, path: Path, seed: int) -> Any:
    """The diffusion preset trained on `train` for `minutes` of CPU time and its distilled student (saved under
    ``path/student``, where `genrad.synthesis.generate` finds it); loaded when already there."""
    from genrad.models.factory import STUDENT
    from genrad.training.distill import distill_guidance

    if (path / "config.json").exists():
        model = genrad.models.load(path)
    else:
        log(f"training {path} on {len(train)} images for {minutes:g} CPU minutes")
        model = genrad.models.build(preset="diffusion", num_classes=num_classes, spatial_dims=2)
        model.fit(train, max_steps=10**9, seed=seed, callbacks=[CpuBudget(minutes)], progress=False)
        model.save(path)
    if not (path / STUDENT / "config.json").exists():
        log(f"distilling {path} for {distill_share * minutes:g} CPU minutes")
        student = distill_guidance(model, train, max_steps=10**9, seed=seed, callbacks=[CpuBudget(distill_share * minutes)],
                                   progress=False)
        student.save(path / STUDENT)
    return model


def sample_pool(path: Path, name: str, per_class: dict[int, int], root: Path, seed: int, workers: int) -> Split:
    """The pool `name` (`POOLS`) of the generator saved at `path`: `per_class` images per class, cached under `root`."""
    from genrad.synthesis import generate

    tag = "-".join(str(per_class[k]) for k in sorted(per_class))
    out = root / f"{name}-{tag}"
    if not (out / "synthetic.npz").exists():
        log(f"sampling pool {out} ({per_class})")
        pool = POOLS[name]
        generate(path, per_class=per_class, out=out, seed=seed, sampling=pool["sampling"], student=pool["student"],
                 workers=workers, progress=False)
    return load(out / "synthetic.npz").train


def pool_counts(arms: list[str], real_counts: np.ndarray) -> dict[int, int]:
    """Synthetic images per class that the arms need, times `POOL_MARGIN` when an arm filters by agreement."""
    filters = any(Arm.parse(arm).agreement is not None for arm in arms)
    return dict(enumerate(synthetic_needed(arms, real_counts, margin=POOL_MARGIN if filters else 1.0).tolist()))


def with_classical(recipe: str, classical: str) -> str:
    """`recipe` with the classical remedies of the `classical` arm (its reweighting and augmentation; duplicated real
    images are what synthetic images replace, so oversampling is not carried over)."""
    terms = {term: True for term in CLASSICAL_MODIFIERS if getattr(Arm.parse(classical), term)}
    return replace(Arm.parse(recipe), **terms).name


def generator_dirs(root: Path) -> dict[str, Path]:
    return {**{fold: root / f"fold-{fold}" / "generator" for fold in FOLDS}, "final": root / "final" / "generator"}


def select(scenario: Cohort, root: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Best classical arm, pool and recipe on the scenario's training folds (the test split is never read)."""
    num_classes = scenario.num_classes
    folds = cross_validation_folds(scenario.train, scenario.val, class_names=scenario.class_names)
    paths = generator_dirs(root)
    models = {fold: train_generator(folds[fold].train, num_classes, args.generator_minutes, args.distill_share, paths[fold],
                                    args.seed) for fold in FOLDS}

    def pools(names: list[str], arms: list[str]) -> dict[str, dict[str, Split]]:
        return {name: {fold: sample_pool(paths[fold], name, pool_counts(arms, counts(folds[fold].train, num_classes)),
                                         root / f"fold-{fold}" / "pools", args.seed, args.workers) for fold in FOLDS}
                for name in names}

    common = {"seeds": args.select_seeds, "cache_dir": root / "selection-runs", "recipe": args.recipe, "workers": args.workers,
              "progress": False}
    pool_arms = [*STAGE_ONE_ARMS, *RECIPES]  # one pool size for both stages: stage 2 reuses stage 1's images
    log(f"selection stage 1: {len(CLASSICAL)} classical arms, {len(POOLS)} pools x {len(STAGE_ONE_ARMS)} arms")
    stage_one = select_recipe(folds, pools(list(POOLS), pool_arms), STAGE_ONE_ARMS, baselines=CLASSICAL, **common)
    classical = {row["arm"]: row["cv_auc"] for row in stage_one["table"] if row["pool"] is None}
    best_classical = max(classical, key=classical.get)
    pool_scores = {name: float(np.mean([row["cv_auc"] for row in stage_one["table"] if row["pool"] == name])) for name in POOLS}
    best_pool = max(pool_scores, key=pool_scores.get)
    chosen = pools([best_pool], pool_arms)
    log(f"selection stage 2: {len(RECIPES)} recipes on pool {best_pool} (best classical {best_classical})")
    stage_two = select_recipe(folds, chosen, RECIPES, baselines=("real",), **common)
    recipe_scores = {row["arm"]: row["cv_auc"] for row in stage_two["table"] if row["pool"] is not None}
    frozen = max(recipe_scores, key=recipe_scores.get)
    combined = with_classical(frozen, best_classical)
    log(f"frozen {frozen}; power on the folds")
    power = fold_power(folds, chosen[best_pool], [frozen, combined], best_classical, common)
    table = [{**row, "stage": 1} for row in stage_one["table"]] + [{**row, "stage": 2} for row in stage_two["table"]]
    return {
        "best_classical": best_classical, "classical_scores": dict(sorted(classical.items(), key=lambda item: -item[1])),
        "pool": best_pool, "pool_scores": pool_scores, "frozen_arm": frozen, "combined_arm": combined,
        "recipe_scores": dict(sorted(recipe_scores.items(), key=lambda item: -item[1])),
        "power_folds": power, "table": sorted(table, key=lambda row: -row["cv_auc"]), "folds": stage_two["folds"],
        "generators": {fold: {"train_steps": int(models[fold].step_), "cpu_minutes": args.generator_minutes} for fold in FOLDS},
        "select_seeds": args.select_seeds,
        "criterion": "mean held-out AUC over folds x seeds: the classical arm among CLASSICAL; stage 1 the pool over "
                     "STAGE_ONE_ARMS; stage 2 the recipe among RECIPES on that pool; the test split is never read",
    }


def fold_power(folds: dict[str, Cohort], pool: dict[str, Split], arms: list[str], best_classical: str,
               common: dict[str, Any]) -> dict[str, Any]:
    """Per fold, the paired AUC difference of each of `arms` to the best classical arm (bootstrap over held-out images
    x seeds, as on the test split) and the held-out class counts."""
    result: dict[str, Any] = {}
    for fold, cohort in folds.items():
        payload = run_protocol(cohort, pool[fold], arms=["real", best_classical, *arms], best_classical=best_classical,
                               seeds=common["seeds"], recipe=common["recipe"], cache_dir=Path(common["cache_dir"]) / f"fold-{fold}",
                               workers=common["workers"])
        deltas = {row["name"]: row["delta_vs_best_classical"]["auc"] for row in payload["arms"] if "delta_vs_best_classical" in row}
        result[fold] = {"heldout_counts": payload["test_counts"],
                        "delta_auc_vs_best_classical": {name: {"mean": d["mean"], "ci": d["ci"]} for name, d in deltas.items()}}
    return result


def expected_half_width(power_folds: dict[str, Any], test_counts: list[int], arm: str) -> dict[str, Any]:
    """The paired AUC interval half-width expected on the test split, from the folds' half-widths: an AUC's variance
    scales with 1/n_positive + 1/n_negative (Hanley & McNeil 1982), so each fold's half-width is multiplied by
    sqrt((1/p_test + 1/n_test) / (1/p_fold + 1/n_fold)). The smallest effect the protocol detects with 80% power at
    the 5% level is (1.96 + 0.84) / 1.96 x that half-width."""
    def spread(n: list[int]) -> float:
        return sum(1.0 / max(k, 1) for k in n)

    scaled = []
    for fold in power_folds.values():
        ci = fold["delta_auc_vs_best_classical"][arm]["ci"]
        scaled.append((ci[1] - ci[0]) / 2 * np.sqrt(spread(test_counts) / spread(fold["heldout_counts"])))
    half = float(np.mean(scaled))
    detectable = half * (stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) / stats.norm.ppf(0.975)
    return {"arm": arm, "expected_half_width_auc": round(half, 4), "per_fold": [round(float(v), 4) for v in scaled],
            "detectable_effect_auc_80pct_power": round(float(detectable), 4),
            "method": "fold half-widths of the paired bootstrap interval scaled by sqrt((1/p+1/n)_test / (1/p+1/n)_fold)"}


def test_arms(selection: dict[str, Any]) -> list[str]:
    """real, the controls of the frozen recipe (`control_arms`: its count-matched oversampling, class weights, both
    augmentations), the best classical arm, the recipe and the recipe with the best classical remedies."""
    frozen, best = selection["frozen_arm"], selection["best_classical"]
    controls = [arm.name for arm in control_arms(Arm.parse(frozen))]
    return list(dict.fromkeys(["real", *controls, best, frozen, selection["combined_arm"]]))


def test(scenario: Cohort, selection: dict[str, Any], root: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The frozen arms on the test split, once."""
    paths = generator_dirs(root)
    model = train_generator(scenario.train, scenario.num_classes, args.final_minutes, args.distill_share, paths["final"], args.seed)
    arms = test_arms(selection)
    synthetic_arms = [arm for arm in arms if Arm.parse(arm).uses_synthetic]
    pool = sample_pool(paths["final"], selection["pool"], pool_counts(synthetic_arms, counts(scenario.train, scenario.num_classes)),
                       root / "final" / "pools", args.seed, args.workers)
    log(f"test: {len(arms)} arms x {args.seeds} seeds")
    payload = run_protocol(scenario, pool, arms=arms, seeds=args.seeds, cache_dir=root / "test-runs", recipe=args.recipe,
                           workers=args.workers, best_classical=selection["best_classical"])
    return {"generator": {"train_images": len(scenario.train), "train_steps": int(model.step_), "cpu_minutes": args.final_minutes},
            "arms": brief(payload["arms"]), "best_classical": selection["best_classical"], "frozen_arm": selection["frozen_arm"],
            "combined_arm": selection["combined_arm"], "seeds": payload["seeds"], "test_counts": payload["test_counts"],
            "rare_class": payload["rare_class"], "recipe": payload["config"]["recipe"]}


def brief(arms: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each arm as ``utility.json`` writes it, cut to name, AUC and the paired differences (AUC and the rare class's
    recall at the reference arm's specificity)."""
    def pick(summary: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if summary is None else {"mean": round(summary["mean"], 4), "ci": [round(v, 4) for v in summary["ci"]],
                                             **({"p_value": round(summary["p_value"], 4)} if "p_value" in summary else {})}

    entries = []
    for arm in arms:
        entry = {"name": arm["name"], "auc": pick(arm["auc"]), "delta_vs_real": pick((arm["delta_vs_real"] or {}).get("auc")),
                 "rare_recall_at_real_specificity": pick(arm["rare_recall_at_real_specificity"])}
        if "delta_vs_oversampling" in arm:
            entry["delta_vs_oversampling"] = pick(arm["delta_vs_oversampling"]["auc"])
        if "delta_vs_best_classical" in arm:
            delta = arm["delta_vs_best_classical"]
            entry["delta_vs_best_classical"] = pick(delta["auc"])
            entry["delta_rare_recall_at_best_classical_specificity"] = pick(delta["rare_recall_at_real_specificity"])
        entries.append(entry)
    return entries


def run_scenario(cohort: Cohort, name: str, args: argparse.Namespace) -> dict[str, Any]:
    scenario = scenario_cohort(cohort, name)
    root = args.out / name
    if args.generators_only is not None:
        which = args.generators_only
        train = scenario.train if which == "final" else cross_validation_folds(
            scenario.train, scenario.val, class_names=scenario.class_names)[which].train
        minutes = args.final_minutes if which == "final" else args.generator_minutes
        model = train_generator(train, scenario.num_classes, minutes, args.distill_share, generator_dirs(root)[which], args.seed)
        return {"scenario": name, "generator": which, "train_steps": int(model.step_)}
    selection_path = root / "selection.json"
    if selection_path.exists():
        selection = json.loads(selection_path.read_text(encoding="utf-8"))
    else:
        selection = select(scenario, root, args)
        write_json(selection_path, selection)
    power_path = root / "power.json"
    if not power_path.exists():  # written before the test split is read
        test_counts = counts(cohort.test, cohort.num_classes).tolist()
        write_json(power_path, {arm: expected_half_width(selection["power_folds"], test_counts, arm)
                                for arm in (selection["frozen_arm"], selection["combined_arm"])})
    power = json.loads(power_path.read_text(encoding="utf-8"))
    result: dict[str, Any] = {"scenario": name, "train_counts": counts(scenario.train, cohort.num_classes).tolist(),
                              "val_counts": counts(scenario.val, cohort.num_classes).tolist(), "selection": selection, "power": power}
    if args.test:
        result.update(test(scenario, selection, root, args))
        write_json(root / "result.json", result)
    return result


def merge(out: Path) -> dict[str, Any]:
    """Every finished scenario's result under ``scenarios``, with the acceptance checks."""
    scenarios = {}
    for name in SCENARIOS:
        path = out / name / "result.json"
        if path.exists():
            result = json.loads(path.read_text(encoding="utf-8"))
            scenarios[name] = {key: result[key] for key in ("arms", "best_classical", "frozen_arm", "combined_arm", "power", "seeds",
                                                             "train_counts", "val_counts", "test_counts", "rare_class", "generator")}
            scenarios[name]["selection"] = {key: result["selection"][key] for key in (
                "classical_scores", "pool", "pool_scores", "recipe_scores", "generators", "select_seeds", "criterion")}
            scenarios[name]["checks"] = checks(name, scenarios[name])
    return {"benchmark": "utility_pneumoniamnist", "scenarios": scenarios}


def checks(name: str, result: dict[str, Any]) -> dict[str, Any]:
    """The issue's acceptance lines for one scenario, each with the figures it reads."""
    arms = {arm["name"]: arm for arm in result["arms"]}
    frozen, combined = arms[result["frozen_arm"]], arms[result["combined_arm"]]

    def lower(delta: dict[str, Any]) -> float:
        return delta["ci"][0]

    found: dict[str, Any] = {}
    best_synthetic = max((frozen, combined), key=lambda arm: arm["delta_vs_best_classical"]["mean"])
    if name == "rare":
        found["auc_vs_best_classical_ge_0.02"] = (frozen["delta_vs_best_classical"]["mean"] >= 0.02
                                                  and lower(frozen["delta_vs_best_classical"]) > 0)
        sensitivity = frozen["delta_rare_recall_at_best_classical_specificity"]
        found["sensitivity_at_best_classical_specificity_ge_0.05"] = sensitivity["mean"] >= 0.05 and lower(sensitivity) > 0
    elif name == "scarce":
        delta = best_synthetic["delta_vs_best_classical"]
        found["auc_vs_best_classical_ge_0.01"] = delta["mean"] >= 0.01 and lower(delta) > 0
    else:
        found["no_harm_lower_end_ge_-0.01"] = lower(combined["delta_vs_best_classical"]) >= -0.01
    found["beats_count_matched_oversampling"] = lower(frozen["delta_vs_oversampling"]) > 0
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=Path("/tmp/genrad-utility-pneumoniamnist"))
    parser.add_argument("--scenario", choices=SCENARIOS, default="rare")
    parser.add_argument("--generator-minutes", type=float, default=10.0, help="CPU minutes of each fold's teacher")
    parser.add_argument("--final-minutes", type=float, default=14.0, help="CPU minutes of the test stage's teacher")
    parser.add_argument("--distill-share", type=float, default=0.4, help="student minutes as a share of its teacher's")
    parser.add_argument("--select-seeds", type=int, default=3, help="classifier seeds per fold in the selection")
    parser.add_argument("--seeds", type=int, default=10, help="classifier seeds in the test stage")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generators' training and sampling")
    parser.add_argument("--workers", type=int, default=2, help="classifiers trained at a time (one thread each)")
    parser.add_argument("--generators-only", choices=(*FOLDS, "final"), default=None, help="train this generator, then stop")
    parser.add_argument("--test", action="store_true", help="after the selection, test the frozen arms once")
    parser.add_argument("--merge", action="store_true", help="gather the finished scenarios under --out")
    parser.add_argument("--quick", action="store_true", help="the quick classifier recipe: a smoke test of the pipeline")
    args = parser.parse_args()
    if args.merge:
        print(json.dumps(merge(args.out), indent=2))
        return
    args.recipe = QUICK["recipe"] if args.quick else None
    torch.set_num_threads(1)
    started = time.perf_counter()
    result = run_scenario(load(args.data), args.scenario, args)
    result.update(benchmark="utility_pneumoniamnist", command=" ".join(["python", *sys.argv]),
                  date=datetime.now(UTC).isoformat(timespec="seconds"),
                  machine={"platform": platform.platform(), "threads": 1}, versions=versions(),
                  wall_seconds=round(time.perf_counter() - started, 1))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
