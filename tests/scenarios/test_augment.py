"""Scenario augmentation: a seeded perturbed pool, a resumable two-model comparison, and (slow) the BreastMNIST gain."""

from __future__ import annotations

import json

import numpy as np
import pytest

from genrad.core import derive_seed
from genrad.data import load
from genrad.data.phantom import make_phantom
from genrad.errors import InputError
from genrad.scenarios import Grid, default_grid, perturb
from genrad.scenarios.augment import AUGMENTED, BASELINE, augment, perturbed_pool

GRID = Grid(perturbations={"noise": [0.05, 0.2], "blur": [2.0, 4.0]})
TINY = {"channels": (4, 8, 8, 8), "max_steps": 10, "eval_every": 5, "patience": 1}


@pytest.fixture(scope="module")
def cohort():
    return make_phantom(n=200, seed=1)


def test_perturbed_pool_is_seeded_and_keeps_labels(cohort):
    pool = cohort.train
    first = perturbed_pool(pool, GRID, seed=0, copies=2)
    assert len(first) == 2 * len(pool)
    assert first.images.tobytes() == perturbed_pool(pool, GRID, seed=0, copies=2).images.tobytes()
    assert first.images.tobytes() != perturbed_pool(pool, GRID, seed=1, copies=2).images.tobytes()
    assert np.array_equal(np.sort(first.labels), np.sort(np.tile(pool.labels, 2)))
    # Copy 0, cell j: exactly `perturb` of the pool images assigned to it, in order.
    cells = GRID.cells()
    assignment = np.random.default_rng(derive_seed(0, "augment", 0)).integers(len(cells), size=len(pool))
    start = 0
    for j, (name, severity) in enumerate(cells):
        members = np.flatnonzero(assignment == j)
        expected = perturb(pool.images[members], name, severity, seed=derive_seed(0, "augment", 0, j))
        assert np.array_equal(first.images[start : start + len(members)], expected)
        assert np.array_equal(first.labels[start : start + len(members)], pool.labels[members])
        start += len(members)
    with pytest.raises(InputError, match="copies"):
        perturbed_pool(pool, GRID, seed=0, copies=0)


def test_augment_writes_a_paired_comparison_and_resumes(cohort, tmp_path):
    result = augment(cohort, GRID, tmp_path, seed=0, recipe=TINY, progress=False)
    cells = result["cells"]
    assert [c["perturbation"] for c in cells] == ["none", "noise", "noise", "blur", "blur"]
    for cell in cells:
        for model in (BASELINE, AUGMENTED):
            assert 0 <= cell[model]["auc"] <= 1 and len(cell[model]["auc_ci"]) == 2
        assert cell["drop_reduction"] == pytest.approx(cell[BASELINE]["auc_drop"] - cell[AUGMENTED]["auc_drop"])
    summary = result["summary"]
    assert set(summary["highest_severity"]) == {"noise", "blur"}
    assert summary["highest_severity"]["noise"]["severity"] == 0.2
    for model in (BASELINE, AUGMENTED):
        assert (tmp_path / model / "stress.json").exists() and (tmp_path / model / "heatmap.png").exists()
    weights = [tmp_path / "classifiers" / model / "model.safetensors" for model in (BASELINE, AUGMENTED)]
    stamps = [w.stat().st_mtime_ns for w in weights]
    again = augment(cohort, GRID, tmp_path, seed=0, recipe=TINY, progress=False)  # resumes: nothing retrained
    assert [w.stat().st_mtime_ns for w in weights] == stamps
    assert json.dumps(again["cells"]) == json.dumps(cells)


def test_pool_must_match_the_real_images(cohort, tmp_path):
    other = make_phantom(n=60, size=64, seed=0).train
    with pytest.raises(InputError, match="pool images"):
        augment(cohort, GRID, tmp_path, pool=other, recipe=TINY, progress=False)
    assert not (tmp_path / "augment.json").exists()


@pytest.mark.slow
def test_breastmnist_augmentation_reduces_the_drop_at_high_severity(breastmnist_path, tmp_path):
    """Real-only vs real + scenario-perturbed real images (benchmarks/scenarios_breastmnist.py records the numbers)."""
    cohort = load(str(breastmnist_path))
    recipe = {"channels": (8, 16, 32, 64), "max_steps": 300, "eval_every": 25, "patience": 4}
    result = augment(cohort, default_grid(), tmp_path, seed=0, copies=2, recipe=recipe, progress=False)
    drops = result["summary"]["mean_drop_at_highest_severity"]
    assert drops[AUGMENTED] < drops[BASELINE]
    assert result["summary"]["perturbations_with_smaller_drop"] > result["summary"]["perturbations"] / 2


def test_augment_command_rejects_a_bad_grid_before_work(tmp_path, capsys):
    from genrad.cli.main import main

    grid = tmp_path / "grid.yaml"
    grid.write_text("perturbations: {blur: [3, 1]}\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["scenarios", "augment", "--data", str(tmp_path / "absent.npz"), "--grid", str(grid), "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    assert "strictly increasing" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
