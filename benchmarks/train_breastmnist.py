"""Train genrad's VAE, GAN and Diffusion and a plain MONAI diffusion baseline on BreastMNIST, same budget.

Each model trains on the train split (546 images, 28x28) until it has used ``--minutes`` of CPU time
(process time, so that other load on a shared machine does not change the budget). Then it generates
546 images at the train class ratio, and the Fréchet Radiomic Distance (frd-score, v1 definition) to
the real ``--reference`` split (test by default; use val when tuning) is computed. The anchor, in the
same run, is the FRD of the real train split to the same reference (3.55 for test on this file).

frd-score's v1 z-scores both sets with the statistics of the *first* set. ``frd`` passes the compared
set (generated, or real train for the floor) first, the order behind the 3.55 quoted in issue 3;
``frd_real_reference`` passes the real reference first, the reading of frd-score's documentation
("the first (reference) distribution") and the order `genrad.evaluation.fidelity.frd` uses. The first order
divides by the generated set's own spread, so it punishes a set whose heavy-tailed features (large
dark zones) have a thin tail and varies more between sample seeds. A second anchor, the real train
split blurred by a Gaussian of ``--blur`` pixels, shows how much FRD a slight loss of sharpness costs.

The baseline is what a MONAI user would write from the MONAI tutorials: a class-conditional
``DiffusionModelUNet`` with channels (32, 64, 64), DDPM with 1000 linear-beta steps and epsilon
prediction, Adam, no EMA, no guidance, DDIM sampling in 50 steps.

Usage::

    .venv/bin/python benchmarks/train_breastmnist.py [--minutes 15] [--families vae,gan,diffusion,baseline]
        [--reference test|val] [--threads 1] [--seed 0] [--keep runs/] [--out results.json]
    .venv/bin/python benchmarks/train_breastmnist.py --rescore runs/
        # score the genrad models kept by an earlier run again (same samples unless the sampler changed)

Prints one JSON object (also written to ``--out``). On a shared machine the models can be trained in
parallel processes (``--families gan --skip-floor --out gan.json`` ...) and combined with
``--merge baseline.json gan.json ...``: the budget is CPU time per process, so this changes no figure.
Runs of one family with different ``--seed`` values merge into its mean over training seeds and draws.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

import genrad.models
from genrad.core import make_generator, seeded_init
from genrad.data import Split, load
from genrad.provenance import versions

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "breastmnist.npz"


class CpuBudget:
    """Callback: stop when this process has used `minutes` of CPU time since `start`."""

    def __init__(self, minutes: float) -> None:
        self.seconds = 60.0 * minutes
        self.start = time.process_time()

    def spent(self) -> float:
        return time.process_time() - self.start

    def __call__(self, info: Any = None) -> bool:
        return self.spent() >= self.seconds


class MonaiBaseline:
    """The tutorial-style MONAI class-conditional DDPM (see the module docstring)."""

    batch_size = 32

    def __init__(self, num_classes: int, seed: int) -> None:
        from monai.networks.nets import DiffusionModelUNet
        from monai.networks.schedulers import DDPMScheduler

        with seeded_init(seed, "baseline"):
            self.unet = DiffusionModelUNet(spatial_dims=2, in_channels=1, out_channels=1, channels=(32, 64, 64),
                                           attention_levels=(False, True, True), num_res_blocks=1, num_head_channels=64,
                                           num_class_embeds=num_classes)
        self.scheduler = DDPMScheduler(num_train_timesteps=1000)
        self.optimizer = torch.optim.Adam(self.unet.parameters(), lr=1e-4)
        self.generator = make_generator(seed, "baseline-noise")
        self.steps = 0

    def fit(self, split: Split, budget: CpuBudget) -> None:
        images = torch.from_numpy(split.images) * 2 - 1
        labels = torch.from_numpy(split.labels)
        while not budget():
            order = torch.randperm(len(labels), generator=self.generator)
            for start in range(0, len(order) - self.batch_size + 1, self.batch_size):
                index = order[start : start + self.batch_size]
                x0, y = images[index], labels[index]
                noise = torch.randn(x0.shape, generator=self.generator)
                t = torch.randint(0, 1000, (len(x0),), generator=self.generator)
                loss = F.mse_loss(self.unet(self.scheduler.add_noise(x0, noise, t), t, class_labels=y), noise)
                self.optimizer.zero_grad()
                loss.backward()
                self.optimizer.step()
                self.steps += 1
                if budget():
                    break

    @torch.no_grad()
    def sample(self, n: int, *, labels: torch.Tensor, generator: torch.Generator, batch_size: int = 256) -> torch.Tensor:
        from monai.networks.schedulers import DDIMScheduler

        self.unet.eval()
        sampler = DDIMScheduler(num_train_timesteps=1000)
        sampler.set_timesteps(50)
        out = []
        for start in range(0, n, batch_size):
            y = labels[start : start + batch_size]
            x = torch.randn((len(y), 1, 28, 28), generator=generator)
            for t in sampler.timesteps:
                x, _ = sampler.step(self.unet(x, torch.full((len(y),), int(t)), class_labels=y), int(t), x)
            out.append(x)
        return ((torch.cat(out).clamp(-1, 1) + 1) / 2).float()


def write_pngs(images: np.ndarray, folder: Path) -> Path:
    """Write float [0, 1] or uint8 images (N, 1, H, W) as 8-bit PNGs."""
    folder.mkdir(parents=True, exist_ok=True)
    pixels = images if images.dtype == np.uint8 else np.rint(np.clip(images, 0, 1) * 255).astype(np.uint8)
    for index, image in enumerate(pixels):
        Image.fromarray(image.reshape(image.shape[-2:])).save(folder / f"{index:05d}.png")
    return folder


def frd_v1(folder_a: Path, folder_b: Path) -> float:
    """frd-score's v1 Fréchet Radiomic Distance between two PNG folders."""
    from frd_score import frd

    return float(frd.compute_frd([str(folder_a), str(folder_b)], frd_version="v1", num_workers=1))


def class_ratio_labels(split: Split, n: int) -> torch.Tensor:
    """`n` labels with the split's class proportions (largest-remainder rounding), sorted by class."""
    counts = np.bincount(split.labels)
    exact = counts / counts.sum() * n
    rounded = np.floor(exact).astype(int)
    rounded[np.argsort(exact - rounded)[::-1][: n - rounded.sum()]] += 1
    return torch.from_numpy(np.repeat(np.arange(len(counts)), rounded))


def frd_both_orders(folder: Path, reference: Path) -> dict[str, float]:
    """FRD with the compared `folder` first (issue 3's order) and with the real `reference` first."""
    return {"frd": round(frd_v1(folder, reference), 4), "frd_real_reference": round(frd_v1(reference, folder), 4)}


def anchors(cohort: Any, reference: Path, work: Path, blur: float) -> dict[str, Any]:
    """The real floor (train vs reference) and the same train images blurred by `blur` pixels."""
    from scipy.ndimage import gaussian_filter

    train = cohort.train.images
    blurred = gaussian_filter(train, sigma=(0, 0, blur, blur))
    return {
        "real_floor": frd_both_orders(write_pngs(train, work / "real_train"), reference),
        "blurred_train": {"sigma_px": blur, **frd_both_orders(write_pngs(blurred, work / "blurred_train"), reference)},
    }


def run_family(name: str, cohort: Any, args: argparse.Namespace, reference: Path, work: Path) -> dict[str, Any]:
    split = cohort.train
    if args.rescore and name != "baseline":
        kept = genrad.models.load(args.rescore / name).with_sampling(**json.loads(args.config).get(name, {}))
        return {**score_samples(kept, split, args.seed, reference, work / name, args.extra_sample_seeds),
                "train_steps": int(kept.step_), "rescored_from": str(args.rescore / name), "config": kept.config}
    budget = CpuBudget(args.minutes)
    wall = time.perf_counter()
    if name == "baseline":
        model: Any = MonaiBaseline(cohort.num_classes, args.seed)
        model.fit(split, budget)
        steps, batch_size, config = model.steps, model.batch_size, {"channels": [32, 64, 64], "ddpm_steps": 1000,
                                                                   "ddim_steps": 50, "learning_rate": 1e-4}
    else:
        options = dict(json.loads(args.config).get(name, {}))
        preset = options.pop("preset", None)
        family = options.pop("family", None if preset else name)
        model = genrad.models.build(family, preset=preset, num_classes=cohort.num_classes, spatial_dims=2, **options)
        model.fit(split, max_steps=10**9, seed=args.seed, callbacks=[budget], progress=False)
        steps, batch_size, config = model.step_, model.batch_size, model.config
        if args.keep:
            model.save(args.keep / name)
    train_cpu, train_wall = budget.spent(), time.perf_counter() - wall
    return {
        **score_samples(model, split, args.seed, reference, work / name, args.extra_sample_seeds),
        "train_steps": int(steps),
        "train_images_per_cpu_second": round(steps * batch_size / train_cpu, 2),
        "train_images_per_second": round(steps * batch_size / train_wall, 2),
        "train_cpu_minutes": round(train_cpu / 60, 2),
        "train_wall_minutes": round(train_wall / 60, 2),
        "config": config,
    }


def score_samples(model: Any, split: Split, seed: int, reference: Path, folder: Path, extra_seeds: int = 0) -> dict[str, Any]:
    """Sample as many images as `split` at its class ratio, time it, and score them in both FRD orders.

    With `extra_seeds`, as many further sample sets (seeds ``seed + 1, ...``) are scored too, to show
    how much each FRD order moves between sample draws of one model.
    """
    labels = class_ratio_labels(split, len(split))
    cpu, wall = time.process_time(), time.perf_counter()
    images = model.sample(len(labels), labels=labels, generator=make_generator(seed, "benchmark-sample"))
    sample_cpu, sample_wall = time.process_time() - cpu, time.perf_counter() - wall
    result = {
        **frd_both_orders(write_pngs(images.numpy(), folder), reference),
        "sample_images_per_cpu_second": round(len(labels) / sample_cpu, 2),
        "sample_images_per_second": round(len(labels) / sample_wall, 2),
    }
    others = []
    for other in range(seed + 1, seed + 1 + extra_seeds):
        images = model.sample(len(labels), labels=labels, generator=make_generator(other, "benchmark-sample"))
        others.append({"seed": other, **frd_both_orders(write_pngs(images.numpy(), folder.with_name(f"{folder.name}-{other}")), reference)})
    if others:
        result["other_sample_seeds"] = others
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--minutes", type=float, default=15.0, help="CPU-time training budget per model")
    parser.add_argument("--families", default="vae,gan,diffusion,baseline")
    parser.add_argument("--reference", default="test", choices=("test", "val"), help="real split to compare with")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--config", default="{}", help='JSON constructor overrides per name; "family" aliases a variant, '
                        'e.g. \'{"rf": {"family": "diffusion", "scheduler": "rflow"}}\'; '
                        '"preset" builds a preset of genrad.models.presets, e.g. \'{"p": {"preset": "diffusion"}}\'')
    parser.add_argument("--skip-floor", action="store_true", help="do not compute the real train-vs-reference FRD")
    parser.add_argument("--merge", type=Path, nargs="+", default=None,
                        help="combine the JSON results of runs made in parallel processes (one family each) and exit")
    parser.add_argument("--keep", type=Path, default=None,
                        help="save each trained genrad model to KEEP/NAME (for benchmarks/privacy.py and utility_breastmnist.py)")
    parser.add_argument("--rescore", type=Path, default=None,
                        help="load the genrad models kept in RESCORE/NAME by an earlier run and score them again without "
                             "training them (the MONAI baseline, which is not kept, still trains)")
    parser.add_argument("--extra-sample-seeds", type=int, default=0,
                        help="also score this many further sample sets of each model (seeds seed+1, ...)")
    parser.add_argument("--blur", type=float, default=0.5, help="Gaussian sigma (pixels) of the blurred-train anchor")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.merge:
        print(json.dumps(merge(args.merge), indent=2))
        return
    torch.set_num_threads(args.threads)
    cohort = load(args.data)
    results: dict[str, Any] = {
        "benchmark": "train_breastmnist",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {platform.processor() or ''} {torch.get_num_threads()} torch thread(s), no GPU".strip(),
        "cpu_count": int(subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip() or 0),
        "data": str(args.data),
        "budget_cpu_minutes": args.minutes,
        "reference_split": args.reference,
        "seed": args.seed,
        "versions": versions(),
        "families": {},
    }
    with tempfile.TemporaryDirectory(prefix="genrad-bench-") as temp:
        work = Path(temp)
        reference = write_pngs(cohort[args.reference].images, work / f"real_{args.reference}")
        if not args.skip_floor:
            results["anchors"] = anchors(cohort, reference, work, args.blur)
        for name in args.families.split(","):
            results["families"][name] = run_family(name, cohort, args, reference, work)
            if "anchors" in results:
                add_floor_ratios(results["families"][name], results["anchors"]["real_floor"])
            if args.out:
                args.out.write_text(json.dumps(results, indent=2) + "\n")
    results["summary"] = summarise(results) if "anchors" in results else {}
    text = json.dumps(results, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)


def merge(paths: list[Path]) -> dict[str, Any]:
    """One result from several runs (same budget and reference): families, the floor, ratios, summary.

    A family that several runs trained with different ``--seed`` values is pooled by `pool_seeds`, so the
    summary judges it by its mean over training seeds and sample draws rather than by one run.
    """
    runs = [json.loads(path.read_text()) for path in paths]
    merged = {**runs[0], "families": {}, "merged_from": [str(p) for p in paths]}
    by_family: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        if run["budget_cpu_minutes"] != merged["budget_cpu_minutes"] or run["reference_split"] != merged["reference_split"]:
            raise SystemExit(f"cannot merge runs with different budgets or reference splits: {paths}")
        for name, result in run["families"].items():
            by_family.setdefault(name, []).append({**result, "seed": run["seed"]})
        if "anchors" in run:
            merged["anchors"] = run["anchors"]
    for name, results in by_family.items():
        seeds = [result["seed"] for result in results]
        if len(set(seeds)) < len(seeds):
            raise SystemExit(f"cannot merge two runs of {name!r} with the same seed ({seeds}): {paths}")
        merged["families"][name] = results[0] if len(results) == 1 else pool_seeds(results)
    if "anchors" not in merged:
        return merged
    for result in merged["families"].values():
        add_floor_ratios(result, merged["anchors"]["real_floor"])
    merged["summary"] = summarise(merged)
    return merged


def pool_seeds(results: list[dict[str, Any]]) -> dict[str, Any]:
    """One family trained with several seeds: each FRD order averaged over every sample draw of every run.

    The spread between training seeds of one configuration can exceed the spread between sample draws of one
    model (the diffusion preset: single models 3.94-4.22, docs/benchmarks.md), so one run does not measure a
    configuration.
    """
    def draws(result: dict[str, Any], key: str) -> list[float]:
        return [result[key]] + [other[key] for other in result.get("other_sample_seeds", [])]

    pooled: dict[str, Any] = {"seeds": [result["seed"] for result in results], "runs": results}
    for key in ("frd", "frd_real_reference"):
        values = [value for result in results for value in draws(result, key)]
        pooled[key] = round(float(np.mean(values)), 4)
        pooled[f"{key}_per_seed"] = [round(float(np.mean(draws(result, key))), 4) for result in results]
        pooled[f"{key}_draws"] = len(values)
    pooled["sample_images_per_cpu_second"] = round(float(np.mean([r["sample_images_per_cpu_second"] for r in results])), 2)
    return pooled


def add_floor_ratios(result: dict[str, Any], floor: dict[str, float]) -> None:
    """Each FRD order divided by the real floor in the same order."""
    result["frd_over_floor"] = round(result["frd"] / floor["frd"], 3)
    if "frd_real_reference" in result:
        result["frd_real_reference_over_floor"] = round(result["frd_real_reference"] / floor["frd_real_reference"], 3)


def summarise(results: dict[str, Any]) -> dict[str, Any]:
    """Best genrad family, its ratio to the real floor and to the baseline, and the sampling speed-up."""
    families = {k: v for k, v in results["families"].items() if k != "baseline"}
    if not families:
        return {}
    best = min(families, key=lambda k: families[k]["frd"])
    summary: dict[str, Any] = {"best_family": best, "best_frd_over_floor": families[best]["frd_over_floor"],
                               "within_15_percent_of_floor": families[best]["frd_over_floor"] <= 1.15}
    by_real_reference = {k: v["frd_real_reference_over_floor"] for k, v in families.items() if "frd_real_reference_over_floor" in v}
    if by_real_reference:
        best_ref = min(by_real_reference, key=by_real_reference.get)
        summary["best_family_real_reference"] = best_ref
        summary["best_frd_real_reference_over_floor"] = by_real_reference[best_ref]
    baseline = results["families"].get("baseline")
    if baseline:
        summary["best_frd_over_baseline_frd"] = round(families[best]["frd"] / baseline["frd"], 3)
        summary["best_beats_baseline"] = families[best]["frd"] < baseline["frd"]
        faster = {k: round(v["sample_images_per_cpu_second"] / baseline["sample_images_per_cpu_second"], 1)
                  for k, v in families.items()}
        summary["sampling_speedup_over_baseline_cpu"] = faster
        summary["families_10x_faster_at_equal_or_better_frd"] = sorted(
            k for k, v in families.items() if faster[k] >= 10 and v["frd"] <= baseline["frd"])
    return summary


if __name__ == "__main__":
    main()
