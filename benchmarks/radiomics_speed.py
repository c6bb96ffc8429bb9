"""Per-image time of the fast radiomics engine vs pyradiomics (the anchor), FRDv1 features, one core each.

Both engines get one core: one worker process, BLAS and SimpleITK limited to one thread. Images are
BreastMNIST test images (28 px) and the same images upsampled (bilinear) to 64 and 128 px. At every
size pyradiomics extracts the first `--reference` images; the fast engine extracts the same images
(a small batch) and, as it is meant to be used, a batch of `--batch` images that starts with them.
Each time is the best of `--repeats` runs (the machine may be shared). Prints one JSON object with
CPU and wall seconds per image and ratios (pyradiomics time / fast time); CPU time is the process's
own, so other load on the machine does not enter it.

    python benchmarks/radiomics_speed.py [--data ../shared/data/breastmnist.npz]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "breastmnist.npz"
REFERENCE_IMAGES = {28: 48, 64: 16, 128: 8}


def upsample(images: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of uint8 images (N, H, W) to (N, size, size)."""
    from PIL import Image

    return np.stack([np.asarray(Image.fromarray(im).resize((size, size), Image.BILINEAR)) for im in images])


def seconds_per_image(images: np.ndarray, engine: str, repeats: int = 1) -> tuple[float, float]:
    """Best of `repeats` (CPU seconds, wall seconds) per image; CPU time is this process's alone."""
    from genrad.radiomics import extract

    best = (np.inf, np.inf)
    for _ in range(repeats):
        cpu, wall = time.process_time(), time.perf_counter()
        extract(images, feature_set="frd_v1", engine=engine, workers=1, progress=False)
        best = min(best, ((time.process_time() - cpu) / len(images), (time.perf_counter() - wall) / len(images)))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--batch", type=int, default=156, help="images per fast-engine batch run")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the pyradiomics image counts")
    parser.add_argument("--sizes", type=int, nargs="+", default=sorted(REFERENCE_IMAGES), help="image sides to run")
    parser.add_argument("--repeats", type=int, default=3, help="keep the best of this many runs (both engines)")
    args = parser.parse_args()

    import SimpleITK as sitk
    from threadpoolctl import threadpool_limits

    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    base = np.load(args.data)["test_images"][: args.batch]
    results = {}
    with threadpool_limits(limits=1):
        seconds_per_image(base[:2], "fast")  # warm-up: imports and caches
        seconds_per_image(base[:2], "pyradiomics")
        for size in args.sizes:
            count = REFERENCE_IMAGES.get(size, 8)
            images = base if size == 28 else upsample(base, size)
            count = max(2, int(count * args.scale))
            reference = seconds_per_image(images[:count], "pyradiomics", args.repeats)
            same = seconds_per_image(images[:count], "fast", args.repeats)
            batch = seconds_per_image(images, "fast", args.repeats)
            results[f"{size}px"] = {
                "reference_images": count,
                "batch_images": len(images),
                "cpu_s_per_image": {"pyradiomics": reference[0], "fast_same_images": same[0], "fast_batch": batch[0]},
                "wall_s_per_image": {"pyradiomics": reference[1], "fast_same_images": same[1], "fast_batch": batch[1]},
                "ratio_cpu_same_images": reference[0] / same[0],
                "ratio_cpu_batch": reference[0] / batch[0],
                "ratio_wall_same_images": reference[1] / same[1],
                "ratio_wall_batch": reference[1] / batch[1],
            }
    print(json.dumps({
        "benchmark": "radiomics_speed",
        "repeats": args.repeats,
        "feature_set": "frd_v1",
        "cores": "1 per engine (workers=1, 1 BLAS thread, 1 SimpleITK thread)",
        "machine": f"{platform.processor() or platform.machine()}, {platform.system()}",
        "results": results,
        "targets": {"28px": 50, "128px": 20},
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
