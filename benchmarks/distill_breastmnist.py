"""Few-step sampling on BreastMNIST: the diffusion preset's guidance-distilled student against the MONAI baseline.

Per training seed, in one process on one thread: the diffusion preset trains on the train split for
``--teacher-minutes`` of CPU time, `genrad.training.distill_guidance` distils it for ``--distill-minutes``, and the
tutorial-style MONAI DDPM of ``train_breastmnist.py`` (DDIM, 50 steps) trains for ``--baseline-minutes`` (its speed,
not its fidelity, is the anchor: sampling time does not depend on training). The student and the teacher (50 solver
steps, its guidance) then each sample ``--draws`` sets of as many images as the train split, at its class ratio,
from different sampling seeds (the first draw's seed is the one of a single-draw run); images/s is CPU time on one
thread. Each set is scored against the ``--reference`` split: FRD is frd-score's v1 in both orders (``frd``: the
compared set first, as in train_breastmnist.py; ``frd_real_first``: the real reference first), the floor is the real
train split's; precision, recall and coverage are genrad's (Naeem et al. 2020, frd_v1 features, k = 5). A model's
figures are the means over its draws (a single draw's scores carry its sampling noise); every draw is recorded, and
the worst draw's FRD beside the mean.

    python benchmarks/distill_breastmnist.py --seed 0 --out seed0.json [--reference test] [--steps 10] [--draws 3]
                                             [--learning-rate 1e-4] [--guidance W]
    python benchmarks/distill_breastmnist.py --merge seed0.json seed1.json seed2.json > docs/results/fast_sampling.json

Seeds can run in parallel processes (the budgets are CPU time per process).
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
from train_breastmnist import DEFAULT_DATA, CpuBudget, MonaiBaseline, class_ratio_labels, frd_both_orders, write_pngs

import genrad.models
from genrad.core import make_generator, native_bf16
from genrad.data import load
from genrad.evaluation.fidelity import fidelity
from genrad.provenance import versions
from genrad.training.distill import DISTILL_LEARNING_RATE, distill_guidance

TEACHER_STEPS = 50


SCORES = ("frd", "frd_real_first", "precision", "recall", "coverage")


def sampling_generator(seed: int, draw: int) -> torch.Generator:
    """The sampling noise of draw `draw` (draw 0: that of a single-draw run)."""
    return make_generator(seed, "benchmark-sample") if draw == 0 else make_generator(seed, "benchmark-sample", draw)


def scores(images: torch.Tensor, labels: torch.Tensor, cohort: Any, reference_split: str, reference: Path,
           folder: Path) -> dict[str, float]:
    """Both FRD orders (frd-score) and genrad's precision, recall and coverage against the reference split."""
    frd = frd_both_orders(write_pngs(images.numpy(), folder), reference)
    synthetic = SimpleNamespace(images=images.numpy(), labels=labels.numpy())
    report = fidelity(cohort[reference_split], synthetic, n_bootstrap=0, floor_real=cohort.train, seed=0)
    return {"frd": frd["frd"], "frd_real_first": frd["frd_real_reference"],
            **{name: round(float(report[name]["value"]), 4) for name in ("precision", "recall", "coverage")}}


def scores_over_draws(model: Any, labels: torch.Tensor, seed: int, draws: int, cohort: Any, reference_split: str,
                      reference: Path, folder: Path) -> dict[str, Any]:
    """`model`'s scores for `draws` sampled sets: the mean of each, every draw, the worst FRD and images/s."""
    per_draw, seconds = [], 0.0
    for draw in range(draws):
        start = time.process_time()
        images = model.sample(len(labels), labels=labels, generator=sampling_generator(seed, draw))
        seconds += time.process_time() - start
        per_draw.append(scores(images, labels, cohort, reference_split, reference, folder / f"draw{draw}"))
    return {**{name: round(sum(d[name] for d in per_draw) / draws, 4) for name in SCORES},
            "frd_worst_draw": max(d["frd"] for d in per_draw), "draws": per_draw,
            "images_per_s": round(draws * len(labels) / seconds, 2)}


def run_seed(args: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(1)
    cohort = load(args.data)
    labels = class_ratio_labels(cohort.train, len(cohort.train))
    with tempfile.TemporaryDirectory(prefix="genrad-distill-") as temp:
        work = Path(temp)
        reference = write_pngs(cohort[args.reference].images, work / "reference")
        floor = frd_both_orders(write_pngs(cohort.train.images, work / "train"), reference)

        teacher = genrad.models.build(preset="diffusion", num_classes=cohort.num_classes, spatial_dims=2)
        teacher_budget = CpuBudget(args.teacher_minutes)
        teacher.fit(cohort.train, max_steps=10**9, seed=args.seed, callbacks=[teacher_budget], progress=False)
        teacher_cpu = teacher_budget.spent()
        guidance = teacher.guidance_scale
        teacher.with_sampling(guidance_scale=args.guidance)
        distill_budget = CpuBudget(args.distill_minutes)
        student = distill_guidance(teacher, cohort.train, max_steps=10**9, learning_rate=args.learning_rate,
                                   num_inference_steps=args.steps, seed=args.seed, callbacks=[distill_budget], progress=False)
        distill_cpu = distill_budget.spent()
        teacher.with_sampling(guidance_scale=guidance)
        if args.keep:
            teacher.save(args.keep / f"seed{args.seed}" / "teacher")
            student.save(args.keep / f"seed{args.seed}" / "teacher" / "student")
        baseline = MonaiBaseline(cohort.num_classes, args.seed)
        baseline.fit(cohort.train, CpuBudget(args.baseline_minutes))

        student_scores = scores_over_draws(student, labels, args.seed, args.draws, cohort, args.reference, reference,
                                           work / "student")
        teacher.with_sampling(num_inference_steps=TEACHER_STEPS)
        teacher_scores = scores_over_draws(teacher, labels, args.seed, args.draws, cohort, args.reference, reference,
                                           work / "teacher")
        start = time.process_time()
        images = baseline.sample(len(labels), labels=labels, generator=sampling_generator(args.seed, 0))
        monai_speed = len(labels) / (time.process_time() - start)
        monai_frd = frd_both_orders(write_pngs(images.numpy(), work / "baseline"), reference)
    return {
        "seed": args.seed,
        **{key: student_scores[key] for key in ("frd", "frd_real_first")},
        "floor": floor["frd"], "floor_real_first": floor["frd_real_reference"],
        "frd_over_floor": round(student_scores["frd"] / floor["frd"], 3),
        "frd_real_first_over_floor": round(student_scores["frd_real_first"] / floor["frd_real_reference"], 3),
        "frd_worst_draw": student_scores["frd_worst_draw"],
        "images_per_s": student_scores["images_per_s"], "monai_images_per_s": round(monai_speed, 2),
        "speedup": round(student_scores["images_per_s"] / monai_speed, 2),
        "recall": student_scores["recall"], "teacher_recall": teacher_scores["recall"],
        "coverage": student_scores["coverage"], "teacher_coverage": teacher_scores["coverage"],
        "precision": student_scores["precision"], "teacher_precision": teacher_scores["precision"],
        "teacher": {**{k: teacher_scores[k] for k in ("frd", "frd_real_first", "frd_worst_draw", "images_per_s", "draws")},
                    "train_steps": int(teacher.step_), "solver_steps": TEACHER_STEPS, "guidance": teacher.guidance_scale},
        "student": {"draws": student_scores["draws"], "train_steps": int(student.step_), "solver_steps": student.num_inference_steps,
                    "solver": student.sampling_solver(), "bf16_sampling": student.bf16_sampling(),
                    "distilled_guidance": student.distilled_from["guidance_scale"], "learning_rate": student.learning_rate},
        "monai_baseline": {**monai_frd, "solver_steps": 50, "train_steps": baseline.steps},
        "cpu_minutes": {"teacher": round(teacher_cpu / 60, 2), "distillation": round(distill_cpu / 60, 2),
                        "teacher_plus_distillation": round((teacher_cpu + distill_cpu) / 60, 2)},
    }


def merge(paths: list[Path]) -> dict[str, Any]:
    """The per-seed results as one record, with the acceptance checks per model."""
    models = [json.loads(path.read_text(encoding="utf-8")) for path in paths]
    runs = [model.pop("run") for model in models]
    for model in models:
        model["within_15_percent_of_floor"] = model["frd_over_floor"] <= 1.15
        model["every_draw_within_15_percent_of_floor"] = model["frd_worst_draw"] / model["floor"] <= 1.15
        model["at_least_10x_monai"] = model["speedup"] >= 10
        model["recall_and_coverage_at_least_teacher"] = (model["recall"] >= model["teacher_recall"]
                                                         and model["coverage"] >= model["teacher_coverage"])
    budget = runs[0]["teacher_cpu_minutes"] + runs[0]["distill_cpu_minutes"]
    return {"benchmark": "distill_breastmnist", **runs[0], "seeds": [m["seed"] for m in models], "models": models,
            "teacher_plus_distillation_budget_within_20_cpu_minutes": budget <= 20,
            "all_models_pass": all(m["within_15_percent_of_floor"] and m["at_least_10x_monai"]
                                   and m["recall_and_coverage_at_least_teacher"] for m in models)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--teacher-minutes", type=float, default=14.0, help="CPU minutes of the teacher's training")
    parser.add_argument("--distill-minutes", type=float, default=6.0, help="CPU minutes of the distillation")
    parser.add_argument("--baseline-minutes", type=float, default=2.0, help="CPU minutes of the MONAI baseline's training")
    parser.add_argument("--steps", type=int, default=None, help="the student's solver steps (default: distill_guidance's)")
    parser.add_argument("--learning-rate", type=float, default=DISTILL_LEARNING_RATE, help="the distillation's learning rate")
    parser.add_argument("--guidance", type=float, default=None,
                        help="the guidance weight distilled into the student (default: the teacher's)")
    parser.add_argument("--draws", type=int, default=3, help="sampled sets per model (its figures are their means)")
    parser.add_argument("--reference", default="test", choices=("test", "val"))
    parser.add_argument("--keep", type=Path, default=None, help="save the teacher (and its student inside) to KEEP/seedN")
    parser.add_argument("--merge", type=Path, nargs="+", default=None, help="combine per-seed results and exit")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.draws < 1:
        parser.error(f"--draws expects at least 1 sampled set per model, got {args.draws}")
    if args.merge:
        print(json.dumps(merge(args.merge), indent=2))
        return
    result = run_seed(args)
    result["run"] = {"data": str(args.data), "reference_split": args.reference, "teacher_cpu_minutes": args.teacher_minutes,
                     "distill_cpu_minutes": args.distill_minutes, "baseline_cpu_minutes": args.baseline_minutes,
                     "draws": args.draws,
                     "machine": f"{platform.machine()}, 1 torch thread, native bf16: {native_bf16(torch.device('cpu'))}",
                     "versions": versions()}
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
