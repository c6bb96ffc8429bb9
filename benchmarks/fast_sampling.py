"""Few-step sampling on one trained diffusion model: DPM-Solver++ against DDIM, float32 against bfloat16.

Trains the demo's diffusion model on the demo's phantom (`genrad.pipeline.demo`: 600 images, 28 px, a fixed
number of steps) once, then samples the same images (same labels, same seeds) with each sampler and scores
them as the demo's fidelity stage does: the fast radiomic feature set, the synthetic set at the test split's
class mix, the test split as reference and the train split for the real floor. The anchor, in the same run, is
MONAI's DDIM at 50 steps in float32 (what the diffusion preset sampled with before): ``speedup`` is each
sampler's images/s over the anchor's, timed on one thread as a shard samples.

    python benchmarks/fast_sampling.py [--steps 1200] [--n 800] [--seed 0] [--out results.json]
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

import numpy as np

SAMPLERS = {
    "ddim-50 fp32 (anchor)": {"solver": "ddim", "num_inference_steps": 50},
    "ddim-10 fp32": {"solver": "ddim", "num_inference_steps": 10},
    "ddim-20 fp32": {"solver": "ddim", "num_inference_steps": 20},
    "dpm++2m-10 fp32": {"solver": "dpm++2m", "num_inference_steps": 10},
    "dpm++2m-20 fp32": {"solver": "dpm++2m", "num_inference_steps": 20},
    "dpm++2m-20 bf16": {"solver": "dpm++2m", "num_inference_steps": 20, "sampling_precision": "bf16"},
}


def score(model: Any, cohort: Any, settings: dict[str, Any], counts: list[int]) -> dict[str, Any]:
    import torch

    from genrad.evaluation.fidelity import fidelity
    from genrad.synthesis.shards import one_thread

    model.with_sampling(**{"sampling_precision": "fp32", **settings})
    start = time.perf_counter()
    with one_thread():
        images = torch.cat([model.sample(n, labels=c, generator=torch.Generator().manual_seed(c)) for c, n in enumerate(counts)])
    seconds = time.perf_counter() - start
    labels = np.repeat(np.arange(len(counts)), counts)
    report = fidelity(cohort.test, SimpleNamespace(images=images.numpy(), labels=labels), feature_set="fast",
                      floor_real=cohort.train, n_bootstrap=0, seed=0)
    return {"settings": settings, "images_per_s": len(images) / seconds,
            **{name: report[name]["value"] for name in ("frd", "precision", "recall", "coverage")},
            "floor": {name: report[name]["real_floor"] for name in ("frd", "precision", "recall", "coverage")}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1200, help="training steps of the diffusion model")
    parser.add_argument("--n", type=int, default=800, help="synthetic images per sampler, at the test class mix")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path)
    options = parser.parse_args()

    from genrad.core import default_device, native_bf16
    from genrad.data import load
    from genrad.data.phantom import make_phantom
    from genrad.models import build
    from genrad.pipeline.demo import DEMO_PHANTOM, demo_options
    from genrad.training import train

    with tempfile.TemporaryDirectory() as folder:
        path = str(Path(folder) / "phantom.npz")
        make_phantom(seed=options.seed, **DEMO_PHANTOM).save(path)
        cohort = load(path)
        precision = demo_options(native_bf16=native_bf16(default_device())).get("precision", "fp32")
        model = build("diffusion", num_classes=cohort.num_classes, spatial_dims=2, guidance_scale=1.0, precision=precision)
        start = time.perf_counter()
        train(model, cohort.train, max_steps=options.steps, seed=options.seed, progress=False)
        training_seconds = time.perf_counter() - start
    shares = np.bincount(cohort.test.labels, minlength=cohort.num_classes) / len(cohort.test)
    counts = [round(options.n * share) for share in shares]
    rows = {name: score(model, cohort, settings, counts) for name, settings in SAMPLERS.items()}
    anchor = rows["ddim-50 fp32 (anchor)"]["images_per_s"]
    for row in rows.values():
        row["speedup"] = row["images_per_s"] / anchor
        row["frd_x_floor"] = row["frd"] / row["floor"]["frd"]
    result = {
        "benchmark": "fast_sampling",
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "native_bf16": native_bf16(model.device_)},
        "model": {"steps": options.steps, "training_seconds": training_seconds, "precision": model.precision, "seed": options.seed},
        "counts": counts,
        "samplers": rows,
    }
    text = json.dumps(result, indent=2)
    if options.out:
        options.out.write_text(text + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
