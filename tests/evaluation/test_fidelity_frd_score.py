"""FRD agrees with the frd-score package (FRDv1 defaults) on the same BreastMNIST images.

frd-score reads PNG folders written here and extracts its own features with pyradiomics; genrad
extracts features from the same uint8 arrays (`genrad.radiomics.extract`) and computes FRD with
`genrad.evaluation.fidelity.frd.frd` (`benchmarks/frd_agreement.py` runs both). The default suite compares
small subsets; the slow test compares the full train vs test and malignant vs benign sets
(BreastMNIST README: 3.55 and 5.05).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("frd_score")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from frd_agreement import compare


def test_frd_agrees_with_frd_score_on_breastmnist_subsets(breastmnist_path: Path, tmp_path: Path) -> None:
    for name, entry in compare(breastmnist_path, tmp_path, n=16, engines=("fast",)).items():
        assert entry["genrad_fast"] == pytest.approx(entry["frd_score"], rel=0.01), name


@pytest.mark.slow
def test_frd_agrees_with_frd_score_on_full_breastmnist(breastmnist_path: Path, tmp_path: Path) -> None:
    results = compare(breastmnist_path, tmp_path, n=None, engines=("pyradiomics", "fast"))
    for name, entry in results.items():
        for engine in ("pyradiomics", "fast"):
            assert entry[f"genrad_{engine}"] == pytest.approx(entry["frd_score"], rel=0.01), (name, engine)
    assert results["train_vs_test"]["frd_score"] == pytest.approx(3.55, abs=0.01)
    assert results["malignant_vs_benign"]["frd_score"] == pytest.approx(5.05, abs=0.01)
