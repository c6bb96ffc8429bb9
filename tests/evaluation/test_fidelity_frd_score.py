"""FRD agrees with the frd-score package (FRDv1 defaults) on the same BreastMNIST images.

frd-score reads PNG folders written here and extracts its own features with pyradiomics; genrad
extracts features from the same uint8 arrays (`genrad.radiomics.extract`) and computes FRD with
`genrad.evaluation.frd.frd`. The default suite compares small subsets; the slow test compares the
full train vs test and malignant vs benign sets (BreastMNIST README: 3.55 and 5.05).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from genrad.evaluation.frd import frd
from genrad.radiomics import extract

frd_score = pytest.importorskip("frd_score.frd")


def _png_folder(images: np.ndarray, folder: Path) -> str:
    folder.mkdir(parents=True)
    for index, image in enumerate(images):
        Image.fromarray(image).save(folder / f"{index:04d}.png")
    return str(folder)


def _pairs(path: Path, n: int | None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    data = np.load(path)
    train, test = data["train_images"], data["test_images"]
    labels = data["train_labels"].reshape(-1)
    malignant, benign = train[labels == 0], train[labels == 1]
    return {"train_vs_test": (train[:n], test[:n]), "malignant_vs_benign": (malignant[:n], benign[:n])}


def _compare(path: Path, tmp_path: Path, n: int | None, engine: str) -> dict[str, tuple[float, float]]:
    results = {}
    for name, (first, second) in _pairs(path, n).items():
        folders = [_png_folder(images, tmp_path / name / side) for side, images in (("d1", first), ("d2", second))]
        reference = float(frd_score.compute_frd(folders, frd_version="v1", num_workers=1))
        ours = frd(*(extract(images, feature_set="frd_v1", engine=engine, progress=False).to_numpy() for images in (first, second)))
        results[name] = (ours, reference)
    return results


def test_frd_agrees_with_frd_score_on_breastmnist_subsets(breastmnist_path: Path, tmp_path: Path) -> None:
    for name, (ours, reference) in _compare(breastmnist_path, tmp_path, n=16, engine="fast").items():
        assert ours == pytest.approx(reference, rel=0.01), name


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["pyradiomics", "fast"])
def test_frd_agrees_with_frd_score_on_full_breastmnist(breastmnist_path: Path, tmp_path: Path, engine: str) -> None:
    results = _compare(breastmnist_path, tmp_path, n=None, engine=engine)
    for name, (ours, reference) in results.items():
        assert ours == pytest.approx(reference, rel=0.01), name
    assert results["train_vs_test"][1] == pytest.approx(3.55, abs=0.01)
    assert results["malignant_vs_benign"][1] == pytest.approx(5.05, abs=0.01)
