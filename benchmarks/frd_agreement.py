"""FRD of genrad vs the frd-score package (the anchor, FRDv1 defaults) on the same BreastMNIST images.

frd-score reads PNG folders written here and extracts its own pyradiomics features; genrad extracts
features from the same uint8 arrays with each engine and computes `genrad.evaluation.fidelity.frd.frd`.
Pairs: train vs test, and malignant-train vs benign-train (BreastMNIST README: 3.55 and 5.05).
Prints JSON with both values, the ratio genrad / frd-score and the seconds each took.

    python benchmarks/frd_agreement.py [--data ../shared/data/breastmnist.npz] [--n N] [--engines fast pyradiomics]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "breastmnist.npz"


def image_pairs(path: Path, n: int | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The two comparisons, each cut to its first ``n`` images per side (all when None)."""
    data = np.load(path)
    train, test = data["train_images"], data["test_images"]
    labels = data["train_labels"].reshape(-1)
    return {
        "train_vs_test": (train[:n], test[:n]),
        "malignant_vs_benign": (train[labels == 0][:n], train[labels == 1][:n]),
    }


def compare(path: Path, folder: Path, n: int | None, engines: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """frd-score and genrad FRD (one value per engine) for each pair; PNGs are written under ``folder``."""
    import frd_score.frd as frd_score
    from PIL import Image

    from genrad.evaluation.fidelity.frd import frd
    from genrad.radiomics import extract

    results: dict[str, dict[str, Any]] = {}
    for name, sides in image_pairs(path, n).items():
        folders = []
        for side, images in zip(("d1", "d2"), sides, strict=True):
            target = folder / name / side
            target.mkdir(parents=True)
            for index, image in enumerate(images):
                Image.fromarray(image).save(target / f"{index:04d}.png")
            folders.append(str(target))
        start = time.perf_counter()
        with contextlib.redirect_stdout(sys.stderr):  # frd-score prints its result; stdout is JSON only
            anchor = float(frd_score.compute_frd(folders, frd_version="v1", num_workers=1))
        entry: dict[str, Any] = {"n": [len(s) for s in sides], "frd_score": anchor, "frd_score_seconds": time.perf_counter() - start}
        for engine in engines:
            start = time.perf_counter()
            ours = frd(*(extract(images, feature_set="frd_v1", engine=engine, progress=False).to_numpy() for images in sides))
            entry[f"genrad_{engine}"] = ours
            entry[f"genrad_{engine}_ratio"] = ours / anchor
            entry[f"genrad_{engine}_seconds"] = time.perf_counter() - start
        results[name] = entry
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--n", type=int, default=None, help="images per side (default: all)")
    parser.add_argument("--engines", nargs="+", default=["fast", "pyradiomics"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        print(json.dumps(compare(args.data, Path(folder), args.n, tuple(args.engines)), indent=2))


if __name__ == "__main__":
    main()
