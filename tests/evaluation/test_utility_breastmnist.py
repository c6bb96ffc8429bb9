"""The real-only baseline on BreastMNIST is not a straw man: it lands in the published range (slow)."""

from __future__ import annotations

import pytest

from genrad.data import load
from genrad.evaluation.utility import run_protocol

# MedMNIST v2 (Yang et al., Sci. Data 2023), BreastMNIST test split, the baselines on 28-px images:
# ResNet-18 (28) 0.901 / 0.863, ResNet-50 (28) 0.857 / 0.812, auto-sklearn 0.836 / 0.803,
# AutoKeras 0.871 / 0.831, Google AutoML Vision 0.919 / 0.861 (AUC / ACC).
PUBLISHED_AUC = (0.836, 0.919)
PUBLISHED_ACC = (0.803, 0.863)


@pytest.mark.slow
def test_real_only_arm_is_in_the_published_range(breastmnist_path, tmp_path, one_torch_thread) -> None:
    payload = run_protocol(load(breastmnist_path), arms=["real"], seeds=5, cache_dir=tmp_path)
    real = payload["arms"][0]
    assert PUBLISHED_AUC[0] <= real["auc"]["mean"] <= PUBLISHED_AUC[1], real["auc"]
    assert PUBLISHED_ACC[0] <= real["accuracy"]["mean"], real["accuracy"]
    assert payload["rare_class"] == 0  # malignant
