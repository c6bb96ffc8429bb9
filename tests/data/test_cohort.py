"""`Cohort` and `Split` invariants: validation, subsets, class counts, content hash."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from genrad.data import Cohort, Split, load_npz
from genrad.errors import InputError


def make_split(n: int = 6, shape=(1, 8, 8), seed: int = 0, name: str = "train", **tables) -> Split:
    rng = np.random.default_rng(seed)
    images = rng.random((n, *shape), dtype=np.float32)
    return Split(images, np.arange(n, dtype=np.int64) % 2, name=name, **tables)


def make_cohort(**overrides) -> Cohort:
    arguments = {"splits": {"train": make_split(), "test": make_split(4, seed=1, name="test")},
                 "class_names": ("benign", "malignant")} | overrides
    return Cohort(**arguments)


@pytest.mark.parametrize(
    ("images", "labels", "message"),
    [
        (np.zeros((4, 1, 8, 8), np.float64), np.zeros(4, np.int64), "float32 images"),
        (np.zeros((4, 8, 8), np.float32), np.zeros(4, np.int64), "float32 images"),
        (np.zeros((4, 1, 8, 8), np.float32), np.zeros((4, 1), np.int64), "int64 labels"),
        (np.zeros((4, 1, 8, 8), np.float32), np.zeros(3, np.int64), "4 images but 3 labels"),
        (np.zeros((0, 1, 8, 8), np.float32), np.zeros(0, np.int64), "empty split"),
        (np.zeros((4, 1, 8, 1), np.float32), np.zeros(4, np.int64), "at least 4 pixels"),
        (np.full((4, 1, 8, 8), np.nan, np.float32), np.zeros(4, np.int64), "NaN or inf"),
        (np.zeros((4, 1, 8, 8), np.float32), np.array([0, 1, -1, 0]), "labels in 0..999"),
    ],
)
def test_split_rejects_bad_arrays(images, labels, message):
    with pytest.raises(InputError, match=message):
        Split(images, labels)


def test_split_tables_need_one_row_per_image():
    with pytest.raises(InputError, match="one clinical row per image"):
        make_split(clinical=pd.DataFrame({"age": [1, 2]}))
    with pytest.raises(InputError, match="one truth row per image"):
        make_split(truth=pd.DataFrame({"radius": [1.0]}))


def test_subset_keeps_images_labels_and_tables_aligned():
    clinical = pd.DataFrame({"age": np.arange(6) * 10, "sex": list("FMFMFM")})
    truth = pd.DataFrame({"radius": np.arange(6, dtype=float)})
    split = make_split(clinical=clinical, truth=truth)
    part = split.subset([4, 1])
    assert len(part) == 2 and part.name == "train"
    np.testing.assert_array_equal(part.images, split.images[[4, 1]])
    np.testing.assert_array_equal(part.labels, [0, 1])
    assert part.clinical.to_dict("list") == {"age": [40, 10], "sex": ["F", "M"]}
    assert list(part.clinical.index) == [0, 1] and part.truth["radius"].tolist() == [4.0, 1.0]
    assert split.subset(np.arange(6)).content_hash() == split.content_hash()
    assert part.content_hash() != split.content_hash()


def test_class_counts_list_empty_classes_when_asked():
    split = make_split()
    assert split.class_counts() == {0: 3, 1: 3}
    assert split.class_counts(num_classes=3) == {0: 3, 1: 3, 2: 0}
    assert split.subset([0, 2]).class_counts(num_classes=2) == {0: 2, 1: 0}


def test_shape_properties():
    assert make_split().spatial_dims == 2 and make_split().image_shape == (1, 8, 8)
    volume = make_split(shape=(1, 4, 5, 6))
    assert volume.spatial_dims == 3 and volume.image_shape == (1, 4, 5, 6)


def test_cohort_accessors_and_summary():
    cohort = make_cohort(spacing=(0.5, 0.5), source="memory")
    assert cohort.train is cohort["train"] and len(cohort.test) == 4
    assert cohort.num_classes == 2 and cohort.spatial_dims == 2 and cohort.image_shape == (1, 8, 8)
    with pytest.raises(InputError, match="split named one of"):
        _ = cohort.val
    summary = cohort.summary()
    assert summary["splits"]["test"]["n"] == 4 and summary["splits"]["train"]["classes"] == {"0": 3, "1": 3}
    assert summary["content_hash"] == cohort.content_hash() and summary["spacing"] == [0.5, 0.5]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"splits": {}}, "at least one split"),
        ({"splits": {"train": make_split(), "test": make_split(shape=(1, 9, 8), name="test")}}, "same image shape"),
        ({"class_names": ("only",)}, "labels in 0..0"),
        ({"class_names": ("a", "b", "c")}, "zero images in class c"),
        ({"spacing": (1.0, 1.0, 1.0)}, "2 spacing values"),
    ],
)
def test_cohort_rejects_inconsistent_parts(overrides, message):
    with pytest.raises(InputError, match=message):
        make_cohort(source="here", **overrides)


def test_content_hash_tracks_every_part():
    base = make_cohort()
    assert make_cohort().content_hash() == base.content_hash()
    relabelled = Split(base.train.images, 1 - base.train.labels)
    with_clinical = make_split(clinical=pd.DataFrame({"age": np.arange(6)}))
    variants = [
        make_cohort(class_names=("no", "yes")),
        make_cohort(spacing=(1.0, 1.0)),
        make_cohort(splits={"train": relabelled, "test": base.test}),
        make_cohort(splits={"train": with_clinical, "test": base.test}),
        make_cohort(splits={"train": base.train}),
    ]
    hashes = {v.content_hash() for v in variants} | {base.content_hash()}
    assert len(hashes) == len(variants) + 1


def test_save_writes_a_loadable_npz(tmp_path):
    cohort = make_cohort(spacing=(0.5, 0.25))
    loaded = load_npz(cohort.save(str(tmp_path / "cohort.npz")))
    assert loaded.content_hash() == cohort.content_hash()
