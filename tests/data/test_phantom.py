"""The built-in phantom: determinism, class balance, visible classes, covariates that drive images."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from scipy.ndimage import gaussian_filter
from scipy.stats import spearmanr
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from genrad.data import load, load_npz, save_npz
from genrad.data.phantom import CLASS_NAMES, FIELD_OF_VIEW_MM, make_phantom
from genrad.errors import InputError


@pytest.fixture(scope="module")
def phantom():
    return make_phantom(seed=0)


def radiomic_stats(images: np.ndarray) -> np.ndarray:
    """Per image: intensity mean and std, edge energy, bright and dark lesion-area fractions."""
    n, dims = len(images), images.ndim - 2
    smooth = gaussian_filter(images[:, 0].astype(np.float64), (0,) + (1.0,) * dims)
    gradients = np.gradient(smooth, axis=tuple(range(1, dims + 1)))
    edge_energy = sum(g**2 for g in gradients).reshape(n, -1).mean(1)
    deviation = smooth.reshape(n, -1) - np.median(smooth.reshape(n, -1), 1, keepdims=True)
    flat = images.reshape(n, -1)
    return np.stack([flat.mean(1), flat.std(1), edge_energy, (deviation > 0.08).mean(1), (deviation < -0.08).mean(1)], 1)


def test_same_seed_same_bytes_and_different_seed_differs(phantom):
    again = make_phantom(seed=0)
    assert again.content_hash() == phantom.content_hash()
    for name in ("train", "val", "test"):
        assert again[name].images.tobytes() == phantom[name].images.tobytes()
        pd.testing.assert_frame_equal(again[name].truth, phantom[name].truth)
    other = make_phantom(seed=1)
    assert other.content_hash() != phantom.content_hash()
    assert not np.array_equal(other.train.images, phantom.train.images)


def test_conventions_and_provenance(phantom):
    assert phantom.class_names == CLASS_NAMES == ("cyst", "benign", "malignant")
    assert phantom.source == "phantom"
    assert phantom.preprocessing["phantom"] | {"n": 600, "size": 28, "dims": 2, "seed": 0} == phantom.preprocessing["phantom"]
    assert phantom.spacing == pytest.approx((FIELD_OF_VIEW_MM / 28,) * 2)
    for split in phantom.splits.values():
        assert split.images.dtype == np.float32 and split.images.shape[1:] == (1, 28, 28)
        assert split.images.min() >= 0.0 and split.images.max() <= 1.0
        # quantised to 8-bit levels, like MedMNIST
        assert np.array_equal(np.rint(split.images * 255) / np.float32(255), split.images)
        assert list(split.clinical.columns) == ["age", "sex", "lesion_diameter_mm", "tumor_marker_u_ml"]
        assert set(split.clinical["sex"]) <= {"F", "M"}


def test_rare_class_and_stratified_splits(phantom):
    labels = np.concatenate([s.labels for s in phantom.splits.values()])
    share = np.bincount(labels, minlength=3) / len(labels)
    assert len(labels) == 600
    assert share[2] <= 0.10 and share[2] < share[0] and share[2] < share[1]
    sizes = {name: len(s) for name, s in phantom.splits.items()}
    assert sizes["train"] / 600 == pytest.approx(0.7, abs=0.02)
    assert sizes["val"] / 600 == pytest.approx(0.1, abs=0.02)
    assert sizes["test"] / 600 == pytest.approx(0.2, abs=0.02)
    for split in phantom.splits.values():
        assert min(split.class_counts(3).values()) >= 1


def test_classes_are_visible_to_radiomic_statistics(phantom):
    """Measured: balanced accuracy 0.75 on the test split (chance 1/3); shuffled labels stay near chance."""
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, class_weight="balanced"))
    train_x, test_x = radiomic_stats(phantom.train.images), radiomic_stats(phantom.test.images)
    accuracy = balanced_accuracy_score(phantom.test.labels, model.fit(train_x, phantom.train.labels).predict(test_x))
    shuffled = np.random.default_rng(0).permutation(phantom.train.labels)
    control = balanced_accuracy_score(phantom.test.labels, model.fit(train_x, shuffled).predict(test_x))
    assert accuracy > 0.6
    assert control < 0.5
    assert accuracy - control > 0.2


def test_clinical_covariates_drive_the_images(phantom):
    train = phantom.train
    stats = radiomic_stats(train.images)
    diameter = train.clinical["lesion_diameter_mm"].to_numpy()
    # lesion_diameter_mm is the drawn diameter, and a measured lesion area follows it (measured rho 0.61)
    np.testing.assert_allclose(train.truth["radius_px"] * 2 * phantom.spacing[0], diameter, rtol=1e-9)
    assert spearmanr(diameter, stats[:, 3] + stats[:, 4]).statistic > 0.4
    # age sets the tissue level: older patients, darker background (measured rho -0.76)
    background = np.median(train.images.reshape(len(train), -1), axis=1)
    assert spearmanr(train.clinical["age"], background).statistic < -0.5
    # covariates follow the class: malignant patients are older, with higher marker and larger lesions
    by_class = train.clinical.groupby(train.labels)[["age", "lesion_diameter_mm", "tumor_marker_u_ml"]].median()
    assert (by_class.loc[2] > by_class.loc[[0, 1]].max()).all()
    assert by_class.loc[2, "tumor_marker_u_ml"] > 2 * by_class.loc[[0, 1], "tumor_marker_u_ml"].max()


def test_truth_records_the_generating_parameters(phantom):
    truth = pd.concat([s.truth for s in phantom.splits.values()])
    labels = np.concatenate([s.labels for s in phantom.splits.values()])
    assert set(truth["shape"][labels == 0]) == {"round"}
    assert (truth["shape"][labels == 2] == "spiculated").mean() > 0.6
    assert (truth["contrast"][labels == 0] < 0).all() and (truth["contrast"][labels == 2] > 0).all()
    assert truth.groupby(labels)["texture_strength"].median().is_monotonic_increasing
    assert truth.groupby(labels)["margin_mm"].median().is_monotonic_increasing
    assert {"center_y", "center_x", "n_lobes", "background_level", "gradient_amplitude"} <= set(truth.columns)


def test_diameter_scale_shifts_the_images():
    base, shifted = make_phantom(n=120, seed=3), make_phantom(n=120, seed=3, diameter_scale=1.5)
    area = [(radiomic_stats(c.train.images)[:, 3:]).sum(1).mean() for c in (base, shifted)]
    assert area[1] > 1.15 * area[0]  # measured 1.30 (noise adds a floor to the area proxy)
    assert shifted.train.clinical["lesion_diameter_mm"].mean() > 1.3 * base.train.clinical["lesion_diameter_mm"].mean()


@pytest.mark.parametrize(("size", "dims", "n"), [(64, 2, 40), (128, 2, 40), (32, 3, 40)])
def test_sizes_and_3d_variant(size, dims, n):
    cohort = make_phantom(n=n, size=size, dims=dims, seed=0)
    assert cohort.image_shape == (1,) + (size,) * dims
    assert cohort.spatial_dims == dims and len(cohort.spacing) == dims
    assert sum(len(s) for s in cohort.splits.values()) == n
    assert "center_z" in cohort.train.truth.columns if dims == 3 else "center_z" not in cohort.train.truth.columns


def test_default_size_is_fast():
    start = time.perf_counter()
    make_phantom(n=600, size=28)
    assert time.perf_counter() - start < 2.0


@pytest.mark.parametrize(("dims", "size"), [(2, 28), (3, 32)])
def test_save_load_round_trip(tmp_path, dims, size):
    cohort = make_phantom(n=60, size=size, dims=dims, seed=5)
    loaded = load_npz(save_npz(cohort, tmp_path / "phantom.npz"))
    assert loaded.content_hash() == cohort.content_hash()
    assert loaded.class_names == cohort.class_names and loaded.spacing == pytest.approx(cohort.spacing)
    assert loaded.preprocessing["saved"]["phantom"]["seed"] == 5
    for name, split in cohort.splits.items():
        assert np.array_equal(loaded[name].images, split.images) and loaded[name].images.dtype == np.float32
        assert np.array_equal(loaded[name].labels, split.labels)
        pd.testing.assert_frame_equal(loaded[name].clinical, split.clinical)
        pd.testing.assert_frame_equal(loaded[name].truth, split.truth)


def test_load_phantom_by_name():
    assert load("phantom", n=40).image_shape == (1, 28, 28)
    assert load("phantom:3d", n=40, size=32).image_shape == (1, 32, 32, 32)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": 20}, "--n 38"),
        ({"size": 30}, "size"),
        ({"dims": 4}, "dims 2 or 3"),
        ({"dims": 3, "size": 128}, "3D phantom size"),
        ({"rare_fraction": 0.5}, "rare-class fraction"),
        ({"seed": -1}, "seed"),
        ({"diameter_scale": 0.0}, "diameter_scale"),
    ],
)
def test_bad_arguments_raise_input_error(kwargs, message):
    with pytest.raises(InputError, match=message) as caught:
        make_phantom(**kwargs)
    assert "\n" not in str(caught.value) and str(caught.value).startswith("phantom:")


@pytest.mark.parametrize("dims", [2, 3])
def test_the_lesion_masks_match_the_drawn_diameters(dims: int) -> None:
    """Each ground-truth mask is the drawn lesion: its area (volume) is that of the core diameter's disc (ball), within
    the spread the lobes add, and the mask covers the lesion centre."""
    cohort = make_phantom(n=60, size=28 if dims == 2 else 32, dims=dims, seed=3)
    split = cohort.train
    assert split.masks is not None and split.masks.shape == split.images.shape and split.masks.dtype == np.uint8
    radius = split.truth["radius_px"].to_numpy()
    expected = np.pi * radius**2 if dims == 2 else 4 / 3 * np.pi * radius**3
    found = split.masks.reshape(len(split), -1).sum(axis=1)
    ratio = found / expected  # lobes and spicules only add to the core disc
    assert 1.0 <= np.median(ratio) <= 1.35 and np.percentile(ratio, 5) >= 0.9
    assert np.all(found > 0)
