"""Fixtures: a tiny real cohort and a tiny conditional VAE (genrad's fastest family) saved as a run dir."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from genrad.data import Cohort, Split


@pytest.fixture(scope="session")
def tiny_cohort() -> Cohort:
    """40 random 28x28 images, class 0 rare (12 vs 28), with an 'age' covariate that differs by class."""
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], [12, 28]).astype(np.int64)
    images = rng.random((40, 1, 28, 28), dtype=np.float32)
    clinical = pd.DataFrame({"age": 40.0 + 20 * labels + rng.integers(0, 10, size=40)})
    return Cohort(splits={"train": Split(images, labels, clinical=clinical)}, class_names=("malignant", "benign"), source="tiny")


@pytest.fixture(scope="session")
def tiny_cohort_path(tmp_path_factory: pytest.TempPathFactory, tiny_cohort: Cohort) -> Path:
    return Path(tiny_cohort.save(str(tmp_path_factory.mktemp("data") / "tiny.npz")))


@pytest.fixture(scope="session")
def vae_run_dir(tmp_path_factory: pytest.TempPathFactory, tiny_cohort: Cohort) -> Path:
    """A small VAE conditioned on class and age, trained for two steps and saved (weights are real, quality is not)."""
    from genrad.models import VAE

    run_dir = tmp_path_factory.mktemp("vae_run")
    model = VAE(num_classes=2, covariates=("age",), channels=(8, 16), latent_dim=8, batch_size=8)
    model.fit(tiny_cohort.train, max_steps=2, seed=0, progress=False).save(run_dir)
    return run_dir
