"""Hallucination detection by the per-sample QA: defects injected into real held-out images.

For each dataset the QA (`genrad.evaluation.qa.SampleQA`, false-flag target 5%) is fitted on the real
train split and calibrated on train (leave-one-out) plus val. The clean held-out images are the test
split; each defect of `genrad.evaluation.qa.defects` is injected into every test image. Reported per
defect: ROC AUC of the QA score (defective vs clean test images), the share of defective images
flagged, and the component that flagged them most often; overall: the share of clean test images
flagged (the false-flag rate); and for test images blurred by a Gaussian of 1 px, the share flagged with
the ``blur`` reason and the share on which ``spectral_peak`` fires (against its rate on the periodic defects).
Anchor, same run: the radiomic k-NN distance alone (the ``knn_distance`` component), i.e. a plain
feature-space outlier score; ``auroc_ratio`` = QA AUROC / anchor AUROC.

    python benchmarks/hallucination.py [--data ../shared/data/breastmnist.npz] [--phantom-size 64]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

BLUR_SIGMA = 1.0
"""Gaussian blur (pixels) of the blur check: a loss of sharpness must be flagged as ``blur``, not as a peak."""
DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "breastmnist.npz"


def evaluate(cohort: Any, seed: int) -> dict[str, Any]:
    """Detection figures for one cohort (train: reference, val: calibration, test: clean held-out)."""
    from sklearn.metrics import roc_auc_score

    from genrad.evaluation.qa import SampleQA
    from genrad.evaluation.qa.defects import DEFECTS, inject

    start = time.perf_counter()
    qa = SampleQA(seed=seed).fit(cohort.train, cohort.val)
    clean = qa.score(cohort.test)
    result: dict[str, Any] = {
        "n_reference": len(cohort.train),
        "n_calibration": qa.n_calibration_,
        "n_clean": len(cohort.test),
        "image_shape": list(cohort.test.images.shape[1:]),
        "false_flag_rate": float(clean["qa_flag"].mean()),
        "threshold": qa.threshold_,
        "defects": {},
    }
    for index, kind in enumerate(DEFECTS):
        broken = qa.score(inject(cohort.test.images, kind, seed=seed + index))
        target = np.r_[np.zeros(len(clean)), np.ones(len(broken))]

        def auroc(column: str) -> float:
            return float(roc_auc_score(target, np.r_[clean[column], broken[column]]))  # noqa: B023 - called within this iteration

        qa_auroc, anchor_auroc = auroc("qa_score"), auroc("qa_knn_distance")
        result["defects"][kind] = {
            "auroc": qa_auroc,
            "flagged": float(broken["qa_flag"].mean()),
            "main_reason": str(broken.loc[broken["qa_flag"], "qa_reason"].mode().iat[0]) if broken["qa_flag"].any() else None,
            "anchor_knn_auroc": anchor_auroc,
            "auroc_ratio": qa_auroc / anchor_auroc,
        }
    result["blur"] = blur_check(qa, cohort.test.images, seed=seed + 1)
    aurocs = [d["auroc"] for d in result["defects"].values()]
    result["min_auroc"] = min(aurocs)
    result["mean_auroc"] = float(np.mean(aurocs))
    result["seconds"] = time.perf_counter() - start
    return result


def blur_check(qa: Any, images: np.ndarray, *, seed: int) -> dict[str, float]:
    """`images` (2D, ``(N, C, H, W)``) blurred by `BLUR_SIGMA` and saved in 8 bits: the share flagged, the share
    flagged with the ``blur`` reason and the share on which ``spectral_peak`` fires; and the least share on which
    it fires among the periodic defects (checkerboard, grid) injected with `seed`."""
    from scipy.ndimage import gaussian_filter

    from genrad.evaluation.qa.defects import inject

    blurred = qa.score(np.round(gaussian_filter(images, sigma=(0, 0, BLUR_SIGMA, BLUR_SIGMA)) * 255) / 255)
    periodic = [qa.score(inject(images, kind, seed=seed)) for kind in ("checkerboard", "grid")]
    return {
        "sigma_px": BLUR_SIGMA,
        "flagged": float(blurred["qa_flag"].mean()),
        "flagged_as_blur": float((blurred["qa_flag"] & (blurred["qa_reason"] == "blur")).mean()),
        "spectral_peak_fires": float(qa.fires(blurred, "spectral_peak").mean()),
        "spectral_peak_fires_on_periodic": min(float(qa.fires(table, "spectral_peak").mean()) for table in periodic),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="BreastMNIST .npz (skipped when absent)")
    parser.add_argument("--phantom-n", type=int, default=800)
    parser.add_argument("--phantom-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from genrad.data import load
    from genrad.data.phantom import make_phantom

    results: dict[str, Any] = {"machine": f"{platform.machine()}, {platform.python_version()}", "seed": args.seed}
    if args.data.exists():
        results["breastmnist"] = evaluate(load(args.data), args.seed)
    phantom = make_phantom(n=args.phantom_n, size=args.phantom_size, seed=args.seed)
    results[f"phantom_{args.phantom_size}px"] = evaluate(phantom, args.seed)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
