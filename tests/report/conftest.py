"""A run directory with every stage's outputs, written from the phantom (no training needed)."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from genrad.data import Cohort
from genrad.data.phantom import make_phantom
from genrad.synthesis.layout import RunLayout


def _features(images: np.ndarray, labels: np.ndarray, contrast_scale: float) -> pd.DataFrame:
    flat = images.reshape(len(images), -1)
    gradient = np.abs(np.diff(images[:, 0], axis=-1)).mean(axis=(1, 2))
    return pd.DataFrame(
        {
            "original_firstorder_Mean": flat.mean(axis=1) * 255,
            "original_glcm_Contrast": gradient * 100 * contrast_scale,
            "label": labels,
        }
    )


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("run")
    layout = RunLayout(root)
    cohort = make_phantom(n=240, size=28, seed=0)
    data_path = root / "phantom.npz"
    cohort.save(str(data_path))
    other = make_phantom(n=240, size=28, seed=1).train
    smooth = other.images.copy()
    smooth[:, :, 1:-1, 1:-1] = (smooth[:, :, :-2, 1:-1] + smooth[:, :, 2:, 1:-1] + smooth[:, :, 1:-1, 1:-1]) / 3
    synthetic = Cohort(splits={"train": type(other)(smooth, other.labels, name="train")}, class_names=cohort.class_names)
    layout.synthetic_dir.mkdir(parents=True)
    synthetic.save(str(layout.synthetic_npz))
    layout.run_json.write_text(json.dumps({"genrad_version": "0.1.0", "config": {"data": {"path": str(data_path)}}, "seed": 0,
                                               "data_hash": "abc", "model_choice": {"family": None, "preset": "diffusion",
                                                                                    "reason": "a 15-minute budget allows it"}}))
    layout.fidelity_dir.mkdir()
    fidelity = {
        "frd": {"value": 9.0, "ci": [8.0, 10.0], "real_floor": 3.5},
        "c2st_auc": {"value": 0.91, "ci": [0.88, 0.94], "real_floor": 0.52},
        "precision": {"value": 0.7, "ci": [0.6, 0.8], "real_floor": 0.8},
        "frd_per_class": {"0": {"value": 8.0, "ci": [7.0, 9.0], "real_floor": 3.0}},
        "features": [],
    }
    layout.fidelity_json.write_text(json.dumps(fidelity))
    _features(cohort.test.images, cohort.test.labels, 1.0).to_parquet(layout.features_real)
    _features(smooth, other.labels, 0.6).to_parquet(layout.features_synthetic)
    scores = np.linspace(0, 1, len(other))
    pd.DataFrame({"index": np.arange(len(other)), "qa_score": scores, "qa_flag": scores > 0.95}).to_parquet(layout.samples_parquet)
    layout.privacy_dir.mkdir()
    layout.privacy_json.write_text(json.dumps({"near_copy_rate": {"value": 0.01, "ci": [0.0, 0.02]}, "mia_auc": 0.51}))
    for path in (layout.pairs_png, layout.scaling_png):
        path.parent.mkdir(exist_ok=True)
        figure, axis = plt.subplots(figsize=(2, 2))
        axis.plot([0, 1], [0, 1])
        figure.savefig(path)
        plt.close(figure)
    auc = {"mean": 0.8, "ci": [0.75, 0.85]}
    arms = [
        {"name": "real", "auc": auc, "balanced_accuracy": auc, "recall_per_class": {"2": auc}, "delta_vs_real": None},
        {"name": "real+trivialaugment", "auc": auc, "balanced_accuracy": auc, "recall_per_class": {"2": auc},
         "delta_vs_real": {"auc": {"mean": 0.02, "ci": [0.0, 0.04]}}},
        {"name": "real+synthetic@1x", "auc": auc, "balanced_accuracy": auc, "recall_per_class": {"2": auc},
         "delta_vs_real": {"auc": {"mean": 0.03, "ci": [0.01, 0.05]}},
         "delta_vs_best_classical": {"auc": {"mean": 0.011, "ci": [-0.005, 0.027]}}},
        {"name": "real+synthetic@1x+augment", "auc": auc, "balanced_accuracy": auc, "recall_per_class": {"2": auc},
         "delta_vs_real": {"auc": {"mean": 0.04, "ci": [0.02, 0.06]}}, "delta_vs_augment": {"auc": {"mean": 0.004, "ci": [-0.01, 0.02]}}},
    ]
    strategy = {"name": "mix", "arm": "real+synthetic@1x", "augmented_arm": "real+synthetic@1x+augment",
                "description": "1x the real training set in synthetic images, mixed in"}
    layout.utility_json.write_text(json.dumps({"arms": arms, "seeds": [0, 1, 2, 3, 4], "strategy": strategy,
                                               "best_classical": {"name": "real+trivialaugment"}}))
    layout.model_dir.mkdir()
    pd.DataFrame({"step": [1, 2, 3], "loss": [1.0, 0.5, 0.3]}).to_csv(layout.model_dir / "history.csv", index=False)
    return root
