"""Folder loader: PNG/JPEG/TIFF with a labels CSV or class folders, NIfTI/NRRD/MHA and DICOM with spacing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from PIL import Image

from genrad.data import load, load_npz, save_npz
from genrad.data.folder import load_folder
from genrad.errors import InputError


def grey(seed: int, shape=(8, 8), dtype=np.uint8) -> np.ndarray:
    high = 256 if dtype == np.uint8 else 4096
    return np.random.default_rng(seed).integers(0, high, shape).astype(dtype)


def write_png(path, pixels: np.ndarray):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


@pytest.fixture
def png_folder(tmp_path):
    """Six grey PNGs, string labels, a split column and two clinical columns."""
    rows = []
    for k in range(6):
        write_png(tmp_path / "img" / f"case{k}.png", grey(k))
        rows.append({"filename": f"img/case{k}.png", "label": ["benign", "malignant"][k % 2],
                     "split": "train" if k < 4 else "test", "age": 40 + k, "sex": "FM"[k % 2]})
    pd.DataFrame(rows).to_csv(tmp_path / "labels.csv", index=False)
    return tmp_path


def test_png_with_labels_csv(png_folder):
    cohort = load_folder(png_folder)
    assert cohort.class_names == ("benign", "malignant")
    assert {name: len(split) for name, split in cohort.splits.items()} == {"train": 4, "test": 2}
    np.testing.assert_array_equal(cohort.train.labels, [0, 1, 0, 1])
    np.testing.assert_array_equal(cohort.test.images[1, 0], grey(5).astype(np.float32) / np.float32(255))
    assert cohort.test.clinical.to_dict("list") == {"age": [44, 45], "sex": ["F", "M"]}
    assert cohort.spacing == () and cohort.image_shape == (1, 8, 8)
    assert cohort.preprocessing["intensity"] == "uint8" and cohort.preprocessing["split"] == "split column"


def test_load_dispatches_folders_and_csv_files(png_folder):
    by_folder, by_csv = load(png_folder), load(png_folder / "labels.csv")
    assert by_folder.content_hash() == by_csv.content_hash() == load_folder(png_folder).content_hash()


def test_class_names_option_orders_labels(png_folder):
    cohort = load_folder(png_folder, class_names=["malignant", "benign"])
    np.testing.assert_array_equal(cohort.train.labels, [1, 0, 1, 0])
    with pytest.raises(InputError, match="label 'malignant'"):
        load_folder(png_folder, class_names=["benign", "cyst"])


def test_without_split_everything_is_train_unless_fractions_are_given(tmp_path):
    rows = []
    for k in range(20):
        write_png(tmp_path / f"{k}.png", grey(k))
        rows.append({"filename": f"{k}.png", "label": k % 2})
    pd.DataFrame(rows).to_csv(tmp_path / "labels.csv", index=False)
    everything = load_folder(tmp_path)
    assert list(everything.splits) == ["train"] and len(everything.train) == 20
    assert everything.class_names == ("0", "1")
    assert "no split" in everything.preprocessing["split"]
    split = load_folder(tmp_path, split_fractions=(0.6, 0.2, 0.2), split_seed=3)
    assert {name: len(s) for name, s in split.splits.items()} == {"train": 12, "val": 4, "test": 4}
    assert all(set(s.labels) == {0, 1} for s in split.splits.values())
    assert split.preprocessing["split"] == {"fractions": [0.6, 0.2, 0.2], "seed": 3, "stratified": True}
    assert load_folder(tmp_path, split_fractions=(0.6, 0.2, 0.2), split_seed=3).content_hash() == split.content_hash()


def test_class_subfolders_under_split_folders(tmp_path):
    for split, count in (("train", 3), ("val", 1), ("test", 2)):
        for label in ("cyst", "benign"):
            for k in range(count):
                write_png(tmp_path / split / label / f"{k}.png", grey(k + len(label)))
    (tmp_path / "train" / "cyst" / ".DS_Store").write_bytes(b"\x00")
    cohort = load(tmp_path)
    assert cohort.class_names == ("benign", "cyst")
    assert {n: s.class_counts() for n, s in cohort.splits.items()} == {
        "train": {0: 3, 1: 3}, "val": {0: 1, 1: 1}, "test": {0: 2, 1: 2}}
    assert cohort.preprocessing["split"] == "split folders" and cohort.train.clinical is None


def test_class_subfolders_mixed_formats(tmp_path):
    write_png(tmp_path / "a" / "one.png", grey(1))
    Image.fromarray(grey(2)).save(tmp_path / "a" / "two.tif")
    write_png(tmp_path / "b" / "three.bmp", grey(3))
    Image.fromarray(np.full((8, 8), 100, np.uint8)).save(tmp_path / "b" / "four.jpg", quality=95)
    cohort = load_folder(tmp_path)
    assert len(cohort.train) == 4 and cohort.class_names == ("a", "b")
    # files are read in sorted order within each class folder: one.png, two.tif, four.jpg, three.bmp
    np.testing.assert_array_equal(cohort.train.images[1, 0] * 255, grey(2))  # TIFF and BMP are lossless
    np.testing.assert_array_equal(cohort.train.images[3, 0] * 255, grey(3))
    assert abs(cohort.train.images[2].mean() * 255 - 100) < 2  # JPEG is lossy


def test_sixteen_bit_tiff_is_min_max_scaled_and_recorded(tmp_path):
    for k in range(2):
        (tmp_path / str(k)).mkdir()
        Image.fromarray(grey(k, dtype=np.uint16)).save(tmp_path / str(k) / "x.tif")
    cohort = load_folder(tmp_path)
    record = cohort.preprocessing
    assert record["intensity"] == "minmax" and record["source_dtype"] == ["uint16"]
    expected = (grey(0, dtype=np.uint16) - record["low"]) / (record["high"] - record["low"])
    np.testing.assert_allclose(cohort.train.images[0, 0], expected, rtol=1e-6)


def test_rgb_and_explicit_channel_conversion(tmp_path):
    rgb = np.stack([grey(1), grey(2), grey(3)], axis=-1)
    for k in range(2):
        write_png(tmp_path / f"c{k}" / "rgb.png", rgb)
    cohort = load_folder(tmp_path)
    assert cohort.image_shape == (3, 8, 8)
    np.testing.assert_array_equal(cohort.train.images[0, 2] * 255, grey(3))
    converted = load_folder(tmp_path, channels=1)
    assert converted.image_shape == (1, 8, 8) and converted.preprocessing["channels"] == 1
    np.testing.assert_array_equal(converted.train.images[0, 0] * 255, np.asarray(Image.fromarray(rgb).convert("L")))


def test_different_sizes_need_explicit_resize(tmp_path):
    write_png(tmp_path / "a" / "small.png", np.full((8, 8), 50, np.uint8))
    write_png(tmp_path / "b" / "large.png", np.full((12, 10), 200, np.uint8))
    with pytest.raises(InputError, match="images of one size") as caught:
        load_folder(tmp_path)
    assert "large.png" in str(caught.value) and "size=" in str(caught.value)
    cohort = load_folder(tmp_path, size=16)
    assert cohort.image_shape == (1, 16, 16)
    assert cohort.preprocessing["resize"] | {"size": [16, 16], "resized": 2} == cohort.preprocessing["resize"]
    np.testing.assert_array_equal(np.unique(cohort.train.images * 255), [50, 200])  # constants stay constant


@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd", ".mha"])
def test_volumes_keep_values_and_spacing(tmp_path, suffix):
    rows = []
    for k in range(2):
        volume = grey(k, shape=(5, 6, 7), dtype=np.int16) - 1000
        image = sitk.GetImageFromArray(volume)
        image.SetSpacing((0.5, 0.75, 2.0))  # x, y, z
        sitk.WriteImage(image, str(tmp_path / f"vol{k}{suffix}"))
        rows.append({"filename": f"vol{k}{suffix}", "label": k, "age": 60 + k})
    pd.DataFrame(rows).to_csv(tmp_path / "labels.csv", index=False)
    cohort = load_folder(tmp_path, intensity="minmax")
    assert cohort.image_shape == (1, 5, 6, 7) and cohort.spatial_dims == 3
    assert cohort.spacing == pytest.approx((2.0, 0.75, 0.5))  # array order z, y, x
    low, high = cohort.preprocessing["low"], cohort.preprocessing["high"]
    expected = (grey(1, shape=(5, 6, 7), dtype=np.int16) - 1000 - low) / (high - low)
    np.testing.assert_allclose(cohort.train.images[1, 0], expected, rtol=1e-6)
    again = load_npz(save_npz(cohort, tmp_path / "out.npz"))
    assert again.spacing == cohort.spacing and again.content_hash() == cohort.content_hash()


def test_2d_nifti_keeps_spacing_and_resize_scales_it(tmp_path):
    for k in range(2):
        image = sitk.GetImageFromArray(grey(k, shape=(8, 10)).astype(np.float32) / 255)
        image.SetSpacing((0.4, 0.8))
        sitk.WriteImage(image, str(tmp_path / f"{k}.nii"))
    pd.DataFrame({"filename": ["0.nii", "1.nii"], "label": ["a", "b"]}).to_csv(tmp_path / "labels.csv", index=False)
    cohort = load_folder(tmp_path)
    assert cohort.image_shape == (1, 8, 10) and cohort.spacing == pytest.approx((0.8, 0.4))
    assert cohort.preprocessing["intensity"] == "none"  # float data already in [0, 1] is kept
    resized = load_folder(tmp_path, size=(4, 5))
    assert resized.image_shape == (1, 4, 5) and resized.spacing == pytest.approx((1.6, 0.8))


def test_volumes_of_different_spacing_or_size(tmp_path):
    volumes = (((5, 6, 7), (1.0, 1.0, 2.0)), ((5, 6, 7), (1.0, 1.0, 3.0)), ((6, 6, 7), (1.0, 1.0, 2.0)))
    for k, (shape, spacing) in enumerate(volumes):
        image = sitk.GetImageFromArray(grey(k, shape=shape, dtype=np.int16))
        image.SetSpacing(spacing)
        sitk.WriteImage(image, str(tmp_path / f"{k}.mha"))
    pd.DataFrame({"filename": ["0.mha", "1.mha"], "label": [0, 1]}).to_csv(tmp_path / "labels.csv", index=False)
    with pytest.raises(InputError, match="one pixel spacing") as caught:
        load_folder(tmp_path)
    assert "1.mha" in str(caught.value) and "resample" in str(caught.value)
    pd.DataFrame({"filename": ["0.mha", "2.mha"], "label": [0, 1]}).to_csv(tmp_path / "labels.csv", index=False)
    resized = load_folder(tmp_path, size=8)
    assert resized.image_shape == (1, 8, 8, 8) and resized.spacing == ()
    assert resized.preprocessing["resize"]["spacing"].startswith("dropped")


def test_dicom_series_with_spacing_and_tags(tmp_path, dicom_series_writer):
    rows = []
    for k, (sex, age) in enumerate((("F", "045Y"), ("M", "061Y"))):
        volume = grey(k, shape=(4, 8, 9), dtype=np.int16)
        dicom_series_writer(tmp_path / f"patient{k}", volume, (0.7, 0.8, 2.5), {"0010|0040": sex, "0010|1010": age})
        rows.append({"filename": f"patient{k}", "label": ["benign", "malignant"][k]})
    pd.DataFrame(rows).to_csv(tmp_path / "labels.csv", index=False)
    cohort = load_folder(tmp_path, dicom_tags=("PatientSex", "PatientAge"))
    assert cohort.image_shape == (1, 4, 8, 9)
    assert cohort.spacing == pytest.approx((2.5, 0.8, 0.7))
    assert cohort.train.clinical.to_dict("list") == {"PatientSex": ["F", "M"], "PatientAge": ["045Y", "061Y"]}
    low, high = cohort.preprocessing["low"], cohort.preprocessing["high"]
    expected = grey(0, shape=(4, 8, 9), dtype=np.int16)
    np.testing.assert_allclose(cohort.train.images[0, 0] * (high - low) + low, expected, atol=1e-3 * high)


def test_dicom_series_in_class_folders(tmp_path, dicom_series_writer):
    for k, label in enumerate(("benign", "malignant", "malignant")):
        dicom_series_writer(tmp_path / label / f"p{k}", grey(k, shape=(4, 6, 6), dtype=np.int16), (1.0, 1.0, 3.0))
    cohort = load_folder(tmp_path)
    assert cohort.train.class_counts() == {0: 1, 1: 2} and cohort.spacing == pytest.approx((3.0, 1.0, 1.0))
