"""Privacy on BreastMNIST: the memorisation audit of every family, and the cost of DP training.

Part 1, audit (``--audit``): every generator of the fidelity benchmark (`train_breastmnist.py`: VAE,
GAN, diffusion with their default configurations, trained on the train split for ``--minutes`` of
CPU time each) generates as many images as the train split, at its class ratio, and is audited
against train (members) and test (non-members) with `genrad.evaluation.privacy` (pixel, embedding
and radiomics spaces). Pass ``--runs NAME=PATH ...`` (run directories or synthetic .npz files) to
audit existing generators instead of training. Anchors in the same run: a planted memoriser (train
images with noise 0.02, flips and shifts; must be caught) and the real val split (real unseen
images; only its duplicates of train images may be flagged).

Part 0, the flag itself (``--accept``): on the phantom (400 images, 28 px), a planted memoriser, new
patients (an independent phantom draw) and the same new patients blurred (a smooth generator), with
the default audit and with the raw-pixel rule (``smooth=0``); on BreastMNIST, planted memorisers and
the val images that are not duplicates of a training image. Pixel space only.

Part 2, DP (``--dp``): the VAE is trained twice with the same configuration and number of steps,
without and with DP-SGD (``--epsilon``), then compared on fidelity (FRD v1 of frd-score to the test
split, anchored by the real train-vs-test FRD, as in `train_breastmnist.py`), utility
(`genrad.evaluation.utility.run_protocol`: a classifier trained on synthetic images only, TSTR, and
on real + synthetic, tested on the real test split, over ``--utility-seeds`` seeds) and the audit.

Usage::

    .venv/bin/python benchmarks/privacy.py [--accept] [--audit] [--dp] [--minutes 10] [--runs vae=runs/vae ...]
        [--epsilon 10] [--dp-steps 1000] [--work bench_privacy] [--threads 1] [--out results.json]
    # train the families in parallel first (each into --work/runs/NAME), then audit them all:
    .venv/bin/python benchmarks/privacy.py --train-only --families gan --minutes 10

Prints one JSON object (also written to ``--out``). Run directories are kept under ``--work``.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

import genrad.models
from genrad.core import make_generator
from genrad.data import Split, load
from genrad.evaluation.privacy import PrivacyAudit, planted_memoriser
from genrad.evaluation.utility import run_protocol
from genrad.models.vae import VAE
from genrad.provenance import versions
from genrad.training.dp import fit_private

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_breastmnist import CpuBudget, class_ratio_labels, frd_v1, write_pngs

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "breastmnist.npz"
DP_VAE = {"channels": [16, 32, 64, 128], "batch_size": 64, "kl_warmup_steps": 200, **VAE.private_settings}


def summary(result: dict[str, Any]) -> dict[str, Any]:
    """The audit's headline figures, per space."""
    spaces = {
        name: {key: round(space[key]["value"], 4) for key in ("near_copy_rate", "dcr_ratio", "mia_auc")}
        for name, space in result["spaces"].items()
    }
    return {
        "near_copy_rate": round(result["near_copy_rate"]["value"], 4),
        "near_copy_rate_ci": [round(v, 4) for v in result["near_copy_rate"]["ci"]],
        "mia_auc": round(result["mia_auc"]["value"], 4),
        "mia_auc_ci": [round(v, 4) for v in result["mia_auc"]["ci"]],
        "dcr_ratio": round(result["dcr_ratio"]["value"], 4),
        "spaces": spaces,
    }


def sample_like_train(model: Any, split: Split, seed: int) -> Split:
    labels = class_ratio_labels(split, len(split))
    images = model.sample(len(labels), labels=labels, generator=make_generator(seed, "benchmark-sample"))
    return Split(images.numpy(), labels.numpy())


def synthetic_from(path: Path, split: Split, seed: int) -> Split:
    if path.suffix == ".npz":
        return load(path).train
    return sample_like_train(genrad.models.load(path), split, seed)


def audited(reference: PrivacyAudit, synthetic: Any) -> dict[str, Any]:
    """Audit one synthetic set against the fitted reference (train / test)."""
    reference.reset()
    images = np.asarray(getattr(synthetic, "images", synthetic))
    for start in range(0, len(images), 512):
        reference.update(images[start : start + 512])
    return summary(reference.compute())


def train_family(name: str, cohort: Any, args: argparse.Namespace) -> Path:
    """Train `name` with its default configuration for ``--minutes`` of CPU time (once: kept under ``--work``)."""
    run_dir = args.work / "runs" / name
    if not (run_dir / "config.json").exists():
        model = genrad.models.Generator.registry[name](num_classes=cohort.num_classes, spatial_dims=2)
        model.fit(cohort.train, max_steps=10**9, seed=args.seed, callbacks=[CpuBudget(args.minutes)], progress=False)
        model.save(run_dir)
    return run_dir


def audit_part(cohort: Any, reference: PrivacyAudit, args: argparse.Namespace) -> dict[str, Any]:
    train = cohort.train
    part: dict[str, Any] = {"anchors": {}, "families": {}}
    started = time.perf_counter()
    part["anchors"]["planted_memoriser"] = audited(reference, planted_memoriser(train.images, seed=args.seed))
    part["anchors"]["real_val"] = audited(reference, cohort.val)
    part["anchors"]["seconds_per_audit"] = round((time.perf_counter() - started) / 2, 1)
    sources = dict(item.split("=", 1) for item in args.runs) if args.runs else dict.fromkeys(args.families.split(","))
    for name, path in sources.items():
        source = Path(path) if path else train_family(name, cohort, args)
        part["families"][name] = {"source": str(source), **audited(reference, synthetic_from(source, train, args.seed))}
        print(json.dumps({name: part["families"][name]}), file=sys.stderr)
    memoriser = part["anchors"]["planted_memoriser"]
    for entry in part["families"].values():
        entry["near_copy_rate_over_memoriser"] = round(entry["near_copy_rate"] / memoriser["near_copy_rate"], 4)
    return part


def dp_part(cohort: Any, reference: PrivacyAudit, args: argparse.Namespace) -> dict[str, Any]:
    train = cohort.train
    work = args.work / "dp"
    arms: dict[str, Any] = {}
    test_pngs = write_pngs(cohort.test.images, work / "png" / "real_test")
    floor = frd_v1(write_pngs(train.images, work / "png" / "real_train"), test_pngs)
    for name in ("non_private", "dp"):
        run_dir = work / "runs" / name
        if (run_dir / "config.json").exists():
            model = genrad.models.load(run_dir)
            seconds = json.loads((run_dir / "benchmark.json").read_text())["train_seconds"]
        else:
            model = genrad.models.VAE(num_classes=cohort.num_classes, **DP_VAE)
            started = time.perf_counter()
            if name == "dp":
                fit_private(model, train, epsilon=args.epsilon, max_steps=args.dp_steps, seed=args.seed, progress=False)
            else:
                model.fit(train, max_steps=args.dp_steps, seed=args.seed, progress=False)
            seconds = time.perf_counter() - started
            model.save(run_dir)
            (run_dir / "benchmark.json").write_text(json.dumps({"train_seconds": seconds}))
        synthetic = sample_like_train(model, train, args.seed)
        frd = frd_v1(write_pngs(synthetic.images, work / "png" / name), test_pngs)
        utility = run_protocol(
            cohort,
            synthetic,
            arms=["real", "synthetic@1x", "real+synthetic@1x"],
            seeds=args.utility_seeds,
            multiples=[1.0],
            cache_dir=work / "utility" / name,
        )
        auc = {arm["name"]: {"mean": round(arm["auc"]["mean"], 4), "ci": [round(v, 4) for v in arm["auc"]["ci"] or []]}
               for arm in utility["arms"] if "auc" in arm}
        arms[name] = {
            "privacy": getattr(model, "privacy_", None),
            "train_seconds": round(seconds, 1),
            "frd": round(frd, 4),
            "frd_over_real_floor": round(frd / floor, 3),
            "utility_test_auc": auc,
            "audit": audited(reference, synthetic),
        }
        print(json.dumps({name: arms[name]}), file=sys.stderr)
    private, plain = arms["dp"], arms["non_private"]
    return {
        "config": {"vae": DP_VAE, "steps": args.dp_steps, "target_epsilon": args.epsilon, "seed": args.seed,
                   "utility_seeds": args.utility_seeds},
        "real_floor_frd": round(floor, 4),
        "arms": arms,
        "cost": {
            "frd_ratio_dp_over_non_private": round(private["frd"] / plain["frd"], 3),
            "tstr_auc_dp_minus_non_private": round(
                private["utility_test_auc"]["synthetic@1x"]["mean"] - plain["utility_test_auc"]["synthetic@1x"]["mean"], 4),
            "train_time_ratio_dp_over_non_private": round(private["train_seconds"] / plain["train_seconds"], 2),
        },
    }


def with_close_rate(result: dict[str, Any]) -> dict[str, Any]:
    """`summary`, plus the share of images a distance-only rule would flag (no train/held-out ratio screen)."""
    return {**summary(result), "close_rate": round(result["near_copy_rate"]["close_rate"], 4)}


def accept_part(cohort: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Part 0 (module docstring)."""
    from scipy.ndimage import gaussian_filter

    from genrad.data.phantom import make_phantom

    part: dict[str, Any] = {}
    phantom = make_phantom(n=400, size=28, seed=0)
    fresh = make_phantom(n=400, size=28, seed=1).train.images
    blurred = np.stack([gaussian_filter(image, (0, 2, 2)) for image in fresh]).astype(np.float32)
    for rule, smooth in (("default", 1.0), ("raw_pixels", 0.0)):
        audit = PrivacyAudit(features=(), smooth=smooth, n_bootstrap=args.bootstrap, seed=args.seed).fit(phantom.train, phantom.test)
        sets = {"memoriser_noise0.05": planted_memoriser(phantom.train.images, noise=0.05, seed=args.seed),
                "new_patients": fresh, "new_patients_blurred": blurred}
        for name, images in sets.items():
            audit.reset()
            audit.update(images)
            part[f"phantom/{rule}/{name}"] = with_close_rate(audit.compute())
    audit = PrivacyAudit(features=(), n_bootstrap=args.bootstrap, seed=args.seed).fit(cohort.train, cohort.test)
    part["breastmnist/test_duplicates"] = round(float(audit.duplicates_.mean()), 4)
    for noise in (0.02, 0.03):
        audit.reset()
        audit.update(planted_memoriser(cohort.train.images, noise=noise, seed=args.seed))
        part[f"breastmnist/memoriser_noise{noise}"] = with_close_rate(audit.compute())
    audit.reset()
    audit.update(cohort.val.images)
    unseen = (audit.per_sample()["ncc"] < audit.duplicate_ncc).to_numpy()
    audit.reset()
    audit.update(cohort.val.images[unseen])
    part["breastmnist/val_unseen"] = {"n": int(unseen.sum()), **with_close_rate(audit.compute())}
    return part


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--accept", action="store_true", help="the near-copy flag on planted memorisers and smooth images (part 0)")
    parser.add_argument("--audit", action="store_true", help="audit every family (part 1)")
    parser.add_argument("--dp", action="store_true", help="non-private vs DP VAE (part 2)")
    parser.add_argument("--families", default="vae,gan,diffusion")
    parser.add_argument("--minutes", type=float, default=10.0, help="CPU-time training budget per family")
    parser.add_argument("--runs", nargs="*", default=[], help="NAME=PATH run directories or synthetic .npz to audit")
    parser.add_argument("--train-only", action="store_true", help="only train the --families into --work (to run them in parallel)")
    parser.add_argument("--epsilon", type=float, default=10.0)
    parser.add_argument("--dp-steps", type=int, default=1000)
    parser.add_argument("--utility-seeds", type=int, default=3)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--work", type=Path, default=Path("bench_privacy"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cohort = load(args.data)
    if args.train_only:
        print(json.dumps({name: str(train_family(name, cohort, args)) for name in args.families.split(",")}))
        return
    results: dict[str, Any] = {
        "benchmark": "privacy",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {torch.get_num_threads()} torch thread(s), no GPU",
        "cpu_count": int(subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip() or 0),
        "data": str(args.data),
        "versions": versions(),
    }
    if args.accept:
        results["accept"] = accept_part(cohort, args)
    if args.audit or args.dp or not args.accept:
        started = time.perf_counter()
        reference = PrivacyAudit(n_bootstrap=args.bootstrap, seed=args.seed).fit(cohort.train, cohort.test)
        results["audit_reference_seconds"] = round(time.perf_counter() - started, 1)
        if args.audit or not args.dp:
            results["audit"] = audit_part(cohort, reference, args)
        if args.dp:
            results["dp"] = dp_part(cohort, reference, args)
    text = json.dumps(results, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
