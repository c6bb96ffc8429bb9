"""MedMNIST `.npz` loading and saving: layouts, label shapes, clinical columns, lossless round trip."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from genrad.cli.main import main
from genrad.data import Cohort, Split, load, load_npz, save_npz


def write_medmnist(path, images: dict[str, np.ndarray], labels: dict[str, np.ndarray], **extra: np.ndarray):
    arrays = {f"{name}_images": array for name, array in images.items()}
    arrays |= {f"{name}_labels": array for name, array in labels.items()}
    np.savez_compressed(path, **arrays, **extra)
    return path


def medmnist_arrays(shape: tuple[int, ...], seed: int = 0, n: dict[str, int] | None = None):
    rng = np.random.default_rng(seed)
    n = n or {"train": 12, "val": 4, "test": 6}
    images = {name: rng.integers(0, 256, (k, *shape), dtype=np.uint8) for name, k in n.items()}
    labels = {name: np.arange(k, dtype=np.uint8) % 2 for name, k in n.items()}
    return images, labels


def assert_round_trip(cohort: Cohort, tmp_path) -> Cohort:
    again = load_npz(save_npz(cohort, tmp_path / "again.npz"))
    assert again.content_hash() == cohort.content_hash()
    assert again.class_names == cohort.class_names and again.spacing == cohort.spacing
    for name, split in cohort.splits.items():
        assert again[name].images.dtype == np.float32
        assert np.array_equal(again[name].images, split.images)
        assert np.array_equal(again[name].labels, split.labels)
        if split.clinical is not None:
            pd.testing.assert_frame_equal(again[name].clinical, split.clinical)
    return again


@pytest.mark.parametrize(
    ("shape", "expected"),
    [((28, 28), (1, 28, 28)), ((28, 28, 3), (3, 28, 28)), ((16, 16, 16), (1, 16, 16, 16))],
    ids=["2d", "rgb", "3d"],
)
def test_layouts_load_channel_first_and_round_trip(tmp_path, shape, expected):
    images, labels = medmnist_arrays(shape)
    cohort = load_npz(write_medmnist(tmp_path / "data.npz", images, labels))
    assert cohort.image_shape == expected
    assert cohort.spatial_dims == len(expected) - 1
    assert cohort.preprocessing["intensity"] == "uint8"
    train = images["train"]
    channel_first = train[:, None] if expected[0] == 1 else np.moveaxis(train, -1, 1)
    np.testing.assert_array_equal(cohort.train.images, channel_first.astype(np.float32) / np.float32(255))
    assert_round_trip(cohort, tmp_path)


def test_saved_file_is_medmnist_compatible(tmp_path):
    images, labels = medmnist_arrays((28, 28, 3))
    saved = save_npz(load_npz(write_medmnist(tmp_path / "rgb.npz", images, labels)), tmp_path / "saved.npz")
    with np.load(saved) as archive:
        assert archive["train_images"].dtype == np.uint8
        assert archive["train_images"].shape == (12, 28, 28, 3)
        assert archive["train_labels"].shape == (12, 1)
        np.testing.assert_array_equal(archive["train_images"], images["train"])


def test_labels_shaped_n_and_n1_load_alike(tmp_path):
    images, labels = medmnist_arrays((8, 8))
    flat = load_npz(write_medmnist(tmp_path / "flat.npz", images, labels))
    column = load_npz(write_medmnist(tmp_path / "column.npz", images, {k: v[:, None] for k, v in labels.items()}))
    assert flat.content_hash() == column.content_hash()
    assert flat.train.labels.dtype == np.int64 and flat.train.labels.shape == (12,)


def test_clinical_columns_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    splits = {}
    for name, n in (("train", 10), ("test", 4)):
        clinical = pd.DataFrame({
            "age": rng.integers(20, 90, n),
            "sex": np.where(rng.random(n) < 0.5, "F", "M").astype(object),
            "marker": rng.lognormal(2.0, 0.5, n),
            "smoker": np.where(np.arange(n) % 3 == 0, np.nan, np.arange(n) % 2),
        })
        images = rng.random((n, 1, 8, 8), dtype=np.float32)
        splits[name] = Split(images, np.arange(n, dtype=np.int64) % 2, clinical=clinical, name=name)
    cohort = Cohort(splits, ("benign", "malignant"), spacing=(0.5, 0.7), source="memory")
    again = assert_round_trip(cohort, tmp_path)
    # float pixels that are not 8-bit levels are kept as float32 and not rescaled on reload
    assert again.preprocessing["intensity"] == "none"
    assert again.clinical_columns == ["age", "sex", "marker", "smoker"]


def test_float_pixels_outside_unit_range_are_rescaled_and_recorded(tmp_path):
    images = {"train": np.linspace(-100, 300, 4 * 64, dtype=np.float32).reshape(4, 8, 8)}
    cohort = load_npz(write_medmnist(tmp_path / "ct.npz", images, {"train": np.array([0, 1, 0, 1])}))
    assert cohort.train.images.min() == 0.0 and cohort.train.images.max() == 1.0
    assert cohort.preprocessing == {"intensity": "minmax", "source_dtype": ["float32"], "low": -100.0, "high": 300.0}
    percentile = load_npz(tmp_path / "ct.npz", intensity="percentile")
    assert percentile.preprocessing["intensity"] == "percentile"
    assert percentile.preprocessing["low"] > -100.0


def test_split_names_and_class_names_are_kept(tmp_path):
    images, labels = medmnist_arrays((8, 8), n={"train": 6, "holdout": 4})
    path = write_medmnist(tmp_path / "named.npz", images, labels, class_names=np.array(["no", "yes"]))
    cohort = load(path)
    assert list(cohort.splits) == ["train", "holdout"]
    assert cohort.class_names == ("no", "yes")
    assert_round_trip(cohort, tmp_path)


def test_inspect_breastmnist_json(breastmnist_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["data", "inspect", str(breastmnist_path), "--json"])
    assert stopped.value.code in (0, None)
    report = json.loads(capsys.readouterr().out)
    splits = report["splits"]
    assert {name: splits[name]["n"] for name in splits} == {"train": 546, "val": 78, "test": 156}
    assert splits["train"]["classes"] == {"0": 147, "1": 399}
    assert splits["val"]["classes"] == {"0": 21, "1": 57}
    assert splits["test"]["classes"] == {"0": 42, "1": 114}
    assert splits["train"]["shape"] == [1, 28, 28] and splits["train"]["dtype"] == "float32"
    assert report["preprocessing"]["intensity"] == "uint8"


def test_breastmnist_round_trip(breastmnist_path, tmp_path):
    cohort = load(breastmnist_path)
    assert_round_trip(cohort, tmp_path)
    with np.load(breastmnist_path) as original, np.load(tmp_path / "again.npz") as saved:
        np.testing.assert_array_equal(saved["train_images"], original["train_images"])


def test_synthetic_cohort_may_leave_a_class_empty_and_stays_marked(tmp_path) -> None:
    """A balancing plan tops up the smaller classes only: its file must still load, marked synthetic."""
    from genrad.errors import InputError

    split = Split(np.zeros((4, 1, 8, 8), np.float32), np.array([1, 1, 2, 2]), name="train")
    cohort = Cohort(splits={"train": split}, class_names=("a", "b", "c"), synthetic=True)
    loaded = load_npz(save_npz(cohort, tmp_path / "synthetic.npz"))
    assert loaded.synthetic and loaded.train.class_counts(3) == {0: 0, 1: 2, 2: 2}
    with pytest.raises(InputError, match="zero images in class a"):
        Cohort(splits={"train": split}, class_names=("a", "b", "c"))
