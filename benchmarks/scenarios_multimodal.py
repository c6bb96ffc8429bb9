"""Multi-modal synthesis on the phantom: do generated image + clinical pairs keep the covariate-image link?

Real data: the phantom (lesion diameter drives the drawn lesion). Clinical records come from
`genrad.scenarios.multimodal.ClinicalSynthesizer` (SDV Gaussian copula per class), images from:

- ``retrieval``: a truth-conditioned reference, phantom images of the requested class and nearest
  diameter from an independent phantom draw (`RetrievalGenerator`): should pass;
- ``class_only``: the same pool, ignoring the records: should fail;
- ``vae``: a genrad `VAE` trained on the real training split with ``covariates=("lesion_diameter_mm",)``;
- ``diffusion``: a genrad `Diffusion` trained the same way (``--diffusion-steps``), sampled with
  ``--guidance`` (1, the default, is the conditional model alone; classifier-free guidance above 1
  strengthens the covariate's effect: on the phantom 1.5 over-states the real link, 1.25 matches it).

``--load NAME=RUN_DIR`` uses a saved model instead of training one (e.g. a run kept with ``--keep``).

For each generator and seed, `multimodal_fidelity` reports the within-class Spearman correlation of
lesion diameter with the radiomic feature chosen on the real validation split, real vs synthetic, the
difference interval, and the shuffled-pairs control; plus the SDMetrics table score and FRD.

    python benchmarks/scenarios_multimodal.py                        # 5 seeds, VAE 3000 steps
    python benchmarks/scenarios_multimodal.py --seeds 0 --vae-steps 300   # quick
    python benchmarks/scenarios_multimodal.py --vae-steps 0 --diffusion-steps 2500 --keep runs/

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

import genrad.models
from genrad.data.phantom import make_phantom
from genrad.scenarios.multimodal import RetrievalGenerator, multimodal_fidelity
from genrad.synthesis.clinical import ClinicalSynthesizer, generate_pairs

COVARIATE = "lesion_diameter_mm"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="real phantom images (70%% train)")
    parser.add_argument("--pool", type=int, default=12000, help="phantom images behind the retrieval generators")
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--vae-steps", type=int, default=3000, help="0: no VAE")
    parser.add_argument("--diffusion-steps", type=int, default=0, help="0: no diffusion model")
    parser.add_argument("--guidance", type=float, default=1.0, help="classifier-free guidance of the diffusion sampler")
    parser.add_argument("--sampling-steps", type=int, default=None, help="diffusion sampler steps (default: the model's)")
    parser.add_argument("--load", action="append", default=[], metavar="NAME=RUN_DIR",
                        help="use a saved model for NAME (vae or diffusion) instead of training it")
    parser.add_argument("--keep", type=Path, default=None, help="save each trained model to KEEP/NAME")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    loaded = dict(item.split("=", 1) for item in args.load if "=" in item)
    if len(loaded) != len(args.load) or not set(loaded) <= {"vae", "diffusion"}:
        parser.error(f"--load: expected NAME=RUN_DIR with NAME vae or diffusion, found {args.load}")
    torch.set_num_threads(args.threads)
    real = make_phantom(n=args.n, seed=0)
    pool = make_phantom(n=args.pool, seed=7).train
    records = ClinicalSynthesizer().fit(real.train.clinical, real.train.labels)
    start = time.perf_counter()
    generators = {
        "retrieval": RetrievalGenerator(pool, [COVARIATE]),
        "class_only": RetrievalGenerator(pool, [COVARIATE], use_covariates=False),
    }
    for name, steps in (("vae", args.vae_steps), ("diffusion", args.diffusion_steps)):
        if name in loaded:
            generators[name] = genrad.models.load(loaded[name])
        elif steps:
            family = genrad.models.Generator.registry[name]
            generators[name] = family(num_classes=real.num_classes, covariates=(COVARIATE,)).fit(
                real.train, max_steps=steps, seed=0, progress=False
            )
            if args.keep:
                generators[name].save(args.keep / name)
    if "diffusion" in generators:
        generators["diffusion"].guidance_scale = args.guidance
        if args.sampling_steps:
            generators["diffusion"].num_inference_steps = args.sampling_steps
    training_seconds = time.perf_counter() - start
    pairs = None
    results: dict[str, list[dict]] = {name: [] for name in generators}
    for seed in (int(s) for s in args.seeds.split(",")):
        for name, generator in generators.items():
            synthetic = generate_pairs(generator, records, real.train.class_counts(), seed=seed)
            fidelity = multimodal_fidelity(
                real.train, synthetic, pairs=pairs, select_on=real.val, feature_set="fast", n_bootstrap=1000, seed=seed
            )
            link = fidelity["cross_modal"][0]
            pairs = pairs or [(link["covariate"], link["feature"])]  # chosen once, on the validation split
            results[name].append({
                "seed": seed,
                **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in link.items()},
                "table_score": round(fidelity["table"]["score"], 4),
                "frd": round(fidelity["images"]["frd"], 4),
            })
    summary = {
        name: {
            "r_synthetic_mean": float(np.mean([row["r_synthetic"] for row in rows])),
            "within_real_ci": sum(row["within_real_ci"] for row in rows),
            "reproduced": sum(row["reproduced"] for row in rows),
            "control_reproduced": sum(row["control_reproduced"] for row in rows),
            "runs": len(rows),
        }
        for name, rows in results.items()
    }
    print(json.dumps({
        "benchmark": "scenarios_multimodal",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"threads": torch.get_num_threads(), "platform": platform.platform(), "gpu": torch.cuda.is_available()},
        "real": {"n": args.n, "train": len(real.train), "pairs": pairs},
        "vae_steps": args.vae_steps,
        "diffusion_steps": args.diffusion_steps,
        "guidance": args.guidance,
        "sampling_steps": getattr(generators.get("diffusion"), "num_inference_steps", None),
        "loaded": loaded,
        "training_seconds": round(training_seconds, 1),
        "summary": summary,
        "runs": results,
    }, indent=2))


if __name__ == "__main__":
    main()
