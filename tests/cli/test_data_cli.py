"""`genrad data ...` on bad input: one line naming the file and the fix, exit code 2, no traceback, no output."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image


def files_under(folder: Path) -> set[Path]:
    return set(folder.rglob("*"))


def assert_input_error(args: list[str], genrad_cli, folder: Path, *must_contain: str) -> str:
    """Exit 2, a single `error:` line on stderr naming what is given, nothing on stdout, no file written."""
    before = files_under(folder)
    code, out, err = genrad_cli(args)
    assert code == 2, err
    assert out == ""
    line = err.strip()
    assert "\n" not in line and line.startswith("error: ") and "Traceback" not in err
    assert "expected" in line and ";" in line  # expected ...; fix
    for text in must_contain:
        assert text in line, line
    assert files_under(folder) == before
    return line


def medmnist(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)
    return path


def good_arrays(n: int = 6, size: int = 8) -> dict[str, np.ndarray]:
    images = np.random.default_rng(0).integers(0, 256, (n, size, size), dtype=np.uint8)
    return {"train_images": images, "train_labels": np.arange(n) % 2}


def test_missing_file(tmp_path, genrad_cli):
    assert_input_error(["data", "inspect", str(tmp_path / "nope.npz")], genrad_cli, tmp_path, "nope.npz", "check the path")
    assert_input_error(["data", "inspect", str(tmp_path / "nope")], genrad_cli, tmp_path, "nope", "no such file")


def test_corrupt_and_truncated_npz(tmp_path, genrad_cli):
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"this is not a zip archive" * 10)
    assert_input_error(["data", "inspect", str(corrupt)], genrad_cli, tmp_path, "corrupt.npz", "re-save")
    whole = medmnist(tmp_path / "whole.npz", **good_arrays(n=50, size=28)).read_bytes()
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(whole[: len(whole) // 2])
    assert_input_error(["data", "inspect", str(truncated)], genrad_cli, tmp_path, "truncated.npz", "corrupt or truncated")
    flipped = bytearray(whole)
    flipped[len(whole) // 3 : len(whole) // 3 + 64] = bytes(64)
    damaged = tmp_path / "damaged.npz"
    damaged.write_bytes(bytes(flipped))
    assert_input_error(["data", "inspect", str(damaged)], genrad_cli, tmp_path, "damaged.npz", "Bad CRC")
    assert_input_error(["data", "inspect", str(tmp_path)], genrad_cli, tmp_path, "labels.csv or class-named sub-folders")


def test_npz_without_images(tmp_path, genrad_cli):
    path = medmnist(tmp_path / "other.npz", x=np.zeros(3), y=np.ones(3))
    assert_input_error(["data", "inspect", str(path)], genrad_cli, tmp_path, "other.npz", "train_images")


def test_labels_length_differs(tmp_path, genrad_cli):
    arrays = good_arrays() | {"train_labels": np.zeros(5, dtype=np.int64)}
    path = medmnist(tmp_path / "short.npz", **arrays)
    assert_input_error(["data", "inspect", str(path)], genrad_cli, tmp_path, "short.npz", "6 images but 5 labels")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_pixels(tmp_path, genrad_cli, bad):
    images = np.random.default_rng(0).random((4, 8, 8)).astype(np.float32)
    images[2, 3, 3] = bad
    path = medmnist(tmp_path / "nan.npz", train_images=images, train_labels=np.array([0, 1, 0, 1]))
    assert_input_error(["data", "inspect", str(path)], genrad_cli, tmp_path, "nan.npz", "NaN or inf", "'train'")


def test_empty_split(tmp_path, genrad_cli):
    arrays = good_arrays() | {"val_images": np.zeros((0, 8, 8), np.uint8), "val_labels": np.zeros(0, np.int64)}
    path = medmnist(tmp_path / "empty.npz", **arrays)
    assert_input_error(["data", "inspect", str(path)], genrad_cli, tmp_path, "empty.npz", "empty split 'val'")


def test_class_with_zero_images(tmp_path, genrad_cli):
    arrays = good_arrays() | {"class_names": np.array(["benign", "malignant", "cyst"])}
    path = medmnist(tmp_path / "classes.npz", **arrays)
    assert_input_error(["data", "inspect", str(path)], genrad_cli, tmp_path, "classes.npz", "zero images in class cyst")
    folder = tmp_path / "folder"
    for label in ("a", "b"):
        (folder / label).mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(folder / "a" / "0.png")
    assert_input_error(["data", "inspect", str(folder)], genrad_cli, tmp_path, str(folder), "zero images in class b")


def test_one_pixel_image(tmp_path, genrad_cli):
    path = medmnist(tmp_path / "tiny.npz", train_images=np.zeros((3, 1, 1), np.uint8), train_labels=np.arange(3))
    assert_input_error(["data", "inspect", str(path)], genrad_cli, tmp_path, "tiny.npz", "at least 4 pixels")
    folder = tmp_path / "pngs"
    (folder / "a").mkdir(parents=True)
    Image.fromarray(np.zeros((1, 1), np.uint8)).save(folder / "a" / "dot.png")
    assert_input_error(["data", "inspect", str(folder)], genrad_cli, tmp_path, "dot.png", "at least 4 pixels")


def test_csv_naming_a_missing_file(tmp_path, genrad_cli):
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "here.png")
    pd.DataFrame({"filename": ["here.png", "gone.png"], "label": [0, 1]}).to_csv(tmp_path / "labels.csv", index=False)
    line = assert_input_error(["data", "inspect", str(tmp_path)], genrad_cli, tmp_path, "labels.csv", "gone.png", "line 3")
    assert "fix the filename column" in line


def test_unreadable_dicom(tmp_path, genrad_cli):
    (tmp_path / "series").mkdir()
    (tmp_path / "series" / "slice1.dcm").write_bytes(b"DICM?" * 40)
    (tmp_path / "single.dcm").write_bytes(b"\x00" * 300)
    pd.DataFrame({"filename": ["single.dcm"], "label": [0]}).to_csv(tmp_path / "labels.csv", index=False)
    assert_input_error(["data", "inspect", str(tmp_path)], genrad_cli, tmp_path, "single.dcm", "unreadable file")
    pd.DataFrame({"filename": ["series"], "label": [0]}).to_csv(tmp_path / "labels.csv", index=False)
    assert_input_error(["data", "inspect", str(tmp_path)], genrad_cli, tmp_path, "series", "DICOM series")


def test_images_of_different_sizes(tmp_path, genrad_cli):
    for name, shape in (("a", (8, 8)), ("b", (9, 8))):
        (tmp_path / name).mkdir()
        Image.fromarray(np.zeros(shape, np.uint8)).save(tmp_path / name / "x.png")
    assert_input_error(["data", "inspect", str(tmp_path)], genrad_cli, tmp_path, "x.png", "size=")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--n", "10"], "--n 38"),
        (["--size", "30"], "--size 28"),
        (["--dims", "4"], "dims 2 or 3"),
        (["--dims", "3", "--size", "128"], "3D phantom size"),
        (["--seed", "-3"], "seed"),
    ],
)
def test_phantom_bad_arguments_write_nothing(tmp_path, genrad_cli, args, message):
    out = tmp_path / "phantom.npz"
    assert_input_error(["data", "phantom", "--out", str(out), *args], genrad_cli, tmp_path, "phantom", message)
    assert not out.exists()


@pytest.mark.parametrize("name", ["phantom.txt", "folder"])
def test_phantom_bad_output_name_writes_nothing(tmp_path, genrad_cli, name):
    (tmp_path / "folder").mkdir()
    assert_input_error(["data", "phantom", "--out", str(tmp_path / name), "--n", "40"], genrad_cli, tmp_path, name, ".npz")


def test_phantom_then_inspect(tmp_path, genrad_cli):
    out = tmp_path / "phantom.npz"
    code, printed, _ = genrad_cli(["data", "phantom", "--out", str(out), "--n", "60", "--seed", "2"])
    assert code == 0 and printed.strip() == str(out)
    assert [p.name for p in tmp_path.iterdir()] == ["phantom.npz"]  # no temporary file left behind
    code, printed, _ = genrad_cli(["data", "inspect", str(out), "--json"])
    summary = json.loads(printed)
    assert code == 0 and summary["class_names"] == ["cyst", "benign", "malignant"]
    assert sum(split["n"] for split in summary["splits"].values()) == 60
    assert summary["preprocessing"]["saved"]["phantom"]["seed"] == 2
    assert summary["clinical_columns"] == ["age", "sex", "lesion_diameter_mm", "tumor_marker_u_ml"]
    assert summary["intensity_auto"] == {"gamma": 1.0, "black_level": 0.0, "floor_gap": 0.0, "floor_ramp": 0.0}


def test_inspect_reports_a_clipped_display_floor(tmp_path, genrad_cli):
    images = np.clip(np.random.default_rng(0).gamma(2.0, 30.0, (8, 16, 16)), 20, 255).astype(np.uint8)
    path = medmnist(tmp_path / "clipped.npz", train_images=images, train_labels=np.arange(8) % 2)
    code, out, _ = genrad_cli(["data", "inspect", str(path)])
    assert code == 0 and "applies the clipped-ultrasound map gamma=2, black_level=0.07843" in " ".join(out.split())
    code, out, _ = genrad_cli(["data", "inspect", str(path), "--json"])
    summary = json.loads(out)
    assert summary["splits"]["train"]["display_floor"] == pytest.approx(20 / 255)
    assert summary["intensity_auto"] == {"gamma": 2.0, "black_level": 20 / 255, "floor_gap": 0.6, "floor_ramp": 3.0}
