"""Stress tests: seeded, resumable sweeps; on BreastMNIST a real-only classifier degrades with noise and blur severity."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from genrad.data import load
from genrad.data.cohort import Split
from genrad.evaluation.stats import stratified_bootstrap_index
from genrad.evaluation.utility.metrics import roc_auc
from genrad.scenarios import Grid
from genrad.scenarios.stress import (
    CLEAN,
    CellCache,
    batched_auc,
    evaluate_grid,
)

NOISE_AND_BLUR = Grid(name="noise-blur", perturbations={"noise": [0.02, 0.05, 0.1, 0.2], "blur": [1.0, 2.0, 3.0, 4.0]})
RECIPE = {"channels": (8, 16, 32, 64), "max_steps": 300, "eval_every": 25, "patience": 4}


class MeanIntensity:
    """Stand-in classifier: the probability of class 1 grows with mean intensity; counts its calls."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self.calls = 0

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        self.calls += 1
        p = 1 / (1 + np.exp(-40 * (images.mean(axis=(1, 2, 3)) - self.threshold)))
        return np.stack([1 - p, p], axis=1)


@pytest.fixture(scope="module")
def small_split(phantom_images) -> Split:
    images = np.concatenate([phantom_images, np.clip(phantom_images + 0.1, 0, 1)])
    return Split(images, np.repeat([0, 1], len(phantom_images)).astype(np.int64), name="test")


@pytest.mark.parametrize("k", [2, 3])
def test_batched_auc_matches_the_reference_auc(k):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, k, 90)
    probabilities = rng.dirichlet(np.ones(k), 90)
    probabilities[:, 0] = np.round(probabilities[:, 0], 1)  # ties are averaged, as in the reference
    boot = stratified_bootstrap_index(labels, 5, np.random.default_rng(0))
    expected = [roc_auc(labels[b], probabilities[b], num_classes=k) for b in boot]
    assert np.allclose(batched_auc(labels, probabilities, boot), expected, atol=1e-12)


def test_sweep_is_seeded_and_paired(small_split):
    grid = Grid(perturbations={"noise": [0.1], "gamma": [0.5]})
    model = MeanIntensity(float(small_split.images.mean()))
    first = evaluate_grid({"a": model, "b": model}, small_split, grid, seed=3, n_bootstrap=30, progress=False)
    second = evaluate_grid({"a": model, "b": model}, small_split, grid, seed=3, n_bootstrap=30, progress=False)
    assert json.dumps(first) == json.dumps(second)
    assert [c["perturbation"] for c in first["a"]] == [CLEAN, "noise", "gamma"]
    clean = first["a"][0]
    assert clean["auc_drop"] == 0 and clean["auc_drop_ci"] == [0.0, 0.0]
    for cell in first["b"]:  # the same model twice: every paired difference is exactly zero
        assert cell["auc_delta"] == 0 and cell["auc_delta_ci"] == [0.0, 0.0] and cell["drop_reduction"] == 0
    other = evaluate_grid({"a": model}, small_split, grid, seed=4, n_bootstrap=30, progress=False)["a"]
    assert other[1]["auc_ci"] != first["a"][1]["auc_ci"]  # another seed: other noise and resamples


def test_finished_cells_are_read_back(small_split, tmp_path):
    grid = Grid(perturbations={"noise": [0.05, 0.1]})
    model = MeanIntensity(float(small_split.images.mean()))
    cache = CellCache(tmp_path, key="k")
    first = evaluate_grid({"m": model}, small_split, grid, n_bootstrap=10, progress=False, cache=cache)
    calls = model.calls
    second = evaluate_grid({"m": model}, small_split, grid, n_bootstrap=10, progress=False, cache=cache)
    assert model.calls == calls + 1  # only the clean images are scored again
    assert second == first
    evaluate_grid({"m": model}, small_split, grid, n_bootstrap=10, progress=False, cache=CellCache(tmp_path, key="other"))
    assert model.calls == calls + 1 + 3  # another key never reads stale cells


@pytest.fixture(scope="module")
def breastmnist_classifier(breastmnist_path, tmp_path_factory):
    """A real-only MONAI ResNet classifier trained on BreastMNIST (about 30 s on one CPU thread)."""
    from genrad.evaluation.utility.classifier import Classifier

    cohort = load(str(breastmnist_path))
    directory = tmp_path_factory.mktemp("classifier")
    Classifier(**RECIPE).fit(cohort.train, cohort.val, seed=0).save(directory)
    return directory


def test_breastmnist_degradation_grows_with_severity(breastmnist_classifier, breastmnist_path, tmp_path, genrad_cli):
    grid_path = tmp_path / "grid.yaml"
    grid_path.write_text(NOISE_AND_BLUR.to_yaml())
    args = ["scenarios", "stress", "--model", str(breastmnist_classifier), "--data", str(breastmnist_path),
            "--grid", str(grid_path), "--seed", "0"]
    code, out, _ = genrad_cli([*args, "--out", str(tmp_path / "a")])
    assert code == 0, out
    cells = json.loads((tmp_path / "a" / "stress.json").read_text())
    clean = cells[0]
    assert clean["perturbation"] == CLEAN and clean["auc"] > 0.8
    for name in ("noise", "blur"):
        row = [c for c in cells if c["perturbation"] == name]
        aucs = [clean["auc"]] + [c["auc"] for c in row]
        assert all(b <= a + 0.01 for a, b in itertools.pairwise(aucs)), (name, aucs)  # monotone within noise
        assert row[-1]["auc_drop"] > 0.05 and row[-1]["auc_drop_ci"][0] > 0, (name, row[-1])
        assert row[-1]["auc_drop"] > row[0]["auc_drop"]
    for artefact in ("robustness.md", "robustness.csv", "heatmap.png", "provenance.json"):
        assert (tmp_path / "a" / artefact).stat().st_size > 0
    provenance = json.loads((tmp_path / "a" / "provenance.json").read_text())
    assert provenance["seed"] == 0 and provenance["grid"]["name"] == "noise-blur" and provenance["model_hash"]

    # Same seed, fresh folder: the same bytes.
    assert genrad_cli([*args, "--out", str(tmp_path / "b")])[0] == 0
    assert (tmp_path / "a" / "stress.json").read_bytes() == (tmp_path / "b" / "stress.json").read_bytes()


def test_bad_grid_fails_before_work(breastmnist_path, tmp_path, genrad_cli):
    grid_path = tmp_path / "grid.yaml"
    grid_path.write_text("perturbations: {noise: [0.1], sharpen: [1]}\n")
    code, _out, err = genrad_cli([
        "scenarios", "stress", "--model", str(tmp_path / "no-model"), "--data", str(breastmnist_path),
        "--grid", str(grid_path), "--out", str(tmp_path / "out"),
    ])
    assert code == 2
    assert err.count("\n") == 1 and "sharpen" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_classifier_and_data_must_agree(breastmnist_classifier, tmp_path, genrad_cli):
    from genrad.data.phantom import make_phantom

    make_phantom(n=60, seed=0).save(str(tmp_path / "phantom.npz"))  # three classes: the classifier has two
    code, _, err = genrad_cli([
        "scenarios", "stress", "--model", str(breastmnist_classifier), "--data", str(tmp_path / "phantom.npz"),
        "--out", str(tmp_path / "out"), "--quick",
    ])
    assert code == 2 and "classes" in err
    assert not (tmp_path / "out").exists()
