"""Masks as data: BUSI-style and MSD-style folders, a CSV mask column, npz round trips and the geometry rules."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from genrad.data import load
from genrad.data.npz import load_npz
from genrad.data.splits import split_cohort
from genrad.errors import InputError

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


def _busi(root: Path, *, sizes: tuple[int, ...] = (20, 24)) -> Path:
    """Two lesion classes and a normal one; every image with a 0/255 mask, one with a second region, normals empty."""
    rng = np.random.default_rng(0)
    for label in ("benign", "malignant", "normal"):
        folder = root / "Dataset" / label
        folder.mkdir(parents=True)
        for k in range(4):
            side = sizes[k % len(sizes)]
            Image.fromarray(rng.integers(0, 255, (side, side + 2), dtype=np.uint8)).save(folder / f"{label} ({k}).png")
            mask = np.zeros((side, side + 2), np.uint8)
            if label != "normal":
                mask[4:10, 5:12] = 255
            Image.fromarray(mask).save(folder / f"{label} ({k})_mask.png")
        if label == "benign":
            second = np.zeros((sizes[0], sizes[0] + 2), np.uint8)
            second[12:16, 2:6] = 255
            Image.fromarray(second).save(folder / f"{label} (0)_mask_1.png")
    return root


def test_a_busi_style_folder_loads_its_masks_through_the_archive_folder(tmp_path: Path) -> None:
    cohort = load(_busi(tmp_path, sizes=(20,)))
    split = cohort.train
    assert cohort.class_names == ("benign", "malignant", "normal") and len(split) == 12
    assert split.masks is not None and split.masks.shape == (12, 1, 20, 22) and split.masks.dtype == np.uint8
    assert set(np.unique(split.masks)) == {0, 1}  # 0/255 mapped to 0/1
    record = cohort.preprocessing["masks"]
    assert record["empty_per_class"] == {"benign": 0, "malignant": 0, "normal": 4} and record["mapped_0_255_to_0_1"] == 8
    first = split.masks[0, 0]
    assert first[4:10, 5:12].all() and first[12:16, 2:6].all() and first.sum() == 42 + 16  # both regions merged


def test_regions_kept_as_labels(tmp_path: Path) -> None:
    cohort = load(_busi(tmp_path, sizes=(20,)), mask_regions="labels")
    first = cohort.train.masks[0, 0]
    assert (first[4:10, 5:12] == 1).all() and (first[12:16, 2:6] == 2).all()
    assert cohort.preprocessing["masks"]["labels"] == [1, 2]


def test_resizing_keeps_masks_binary_and_aligned(tmp_path: Path) -> None:
    cohort = load(_busi(tmp_path), size=40)
    masks, images = cohort.train.masks, cohort.train.images
    assert masks.shape == (12, 1, 40, 40) and set(np.unique(masks)) == {0, 1}
    assert cohort.preprocessing["resize"]["masks"] == "nearest neighbour"
    assert cohort.preprocessing["resize"]["original_size"] == {"min": [20, 22], "median": [22.0, 24.0], "max": [24, 26]}
    assert images.shape == (12, 1, 40, 40)


def test_masks_survive_the_npz_round_trip(tmp_path: Path) -> None:
    cohort = load(_busi(tmp_path, sizes=(20,)))
    again = load_npz(cohort.save(str(tmp_path / "busi.npz")))
    assert np.array_equal(again.train.masks, cohort.train.masks) and again.content_hash() == cohort.content_hash()
    assert again.summary()["splits"]["train"]["masks"] == {"labels": [1], "empty": 4}


def test_masks_follow_their_images_through_subsets_and_splits(tmp_path: Path) -> None:
    cohort = split_cohort(load(_busi(tmp_path, sizes=(20,))), (0.5, 0.25, 0.25), seed=0)
    assert set(cohort.splits) == {"train", "val", "test"} and cohort.preprocessing["split"]["seed"] == 0
    for split in cohort.splits.values():
        normal = split.labels == 2
        assert not split.masks[normal].any() and split.masks[~normal].reshape((~normal).sum(), -1).any(axis=1).all()
    with pytest.raises(InputError, match="without its own split"):
        split_cohort(cohort, (0.5, 0.25, 0.25), seed=0)


@pytest.mark.parametrize(("edit", "phrase"), [
    (lambda f: (f / "normal (0)_mask.png").unlink(), "without one"),
    (lambda f: Image.fromarray(np.zeros((9, 9), np.uint8)).save(f / "normal (1)_mask.png"), "mask of its image's size"),
    (lambda f: Image.fromarray(np.zeros((20, 22), np.uint8)).save(f / "lonely_mask.png"), "without its image"),
    (lambda f: Image.fromarray((np.zeros((20, 22, 3)) + [0, 9, 0]).astype(np.uint8)).save(f / "normal (2)_mask.png"), "one-channel"),
])
def test_broken_masks_end_in_one_line(tmp_path: Path, edit, phrase: str) -> None:
    root = _busi(tmp_path, sizes=(20,))
    edit(root / "Dataset" / "normal")
    with pytest.raises(InputError, match=phrase) as raised:
        load(root)
    assert "\n" not in str(raised.value)


def _msd(root: Path, labels: dict[str, str] | None = None) -> Path:
    import SimpleITK as sitk

    rng = np.random.default_rng(1)
    for folder in ("imagesTr", "labelsTr"):
        (root / folder).mkdir(parents=True)
    for k, shape in enumerate(((8, 10, 9), (9, 10, 8), (8, 10, 9))):
        image = sitk.GetImageFromArray(rng.normal(100, 20, shape).astype(np.float32))
        label = np.zeros(shape, np.uint8)
        label[2:5, 3:6, 2:4], label[5:7, 3:6, 4:6] = 1, 2
        mask = sitk.GetImageFromArray(label)
        for item in (image, mask):
            item.SetSpacing((1.0, 1.0, 1.0))
        sitk.WriteImage(image, str(root / "imagesTr" / f"case_{k:03d}.nii.gz"))
        sitk.WriteImage(mask, str(root / "labelsTr" / f"case_{k:03d}.nii.gz"))
    if labels is not None:
        (root / "dataset.json").write_text(json.dumps({"name": "toy", "labels": labels}))
    return root


def test_an_msd_task_loads_as_one_class_with_label_maps(tmp_path: Path) -> None:
    cohort = load(_msd(tmp_path, {"0": "background", "1": "anterior", "2": "posterior"}), size=8, intensity="minmax")
    assert cohort.class_names == ("all",) and cohort.train.images.shape == (3, 1, 8, 8, 8)
    assert cohort.train.masks.shape == (3, 1, 8, 8, 8) and set(np.unique(cohort.train.masks)) == {0, 1, 2}


def test_an_msd_label_beyond_the_declared_ones_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="label 2"):
        load(_msd(tmp_path, {"0": "background", "1": "hippocampus"}), size=8)


def test_an_msd_image_without_its_label_map_is_refused(tmp_path: Path) -> None:
    root = _msd(tmp_path)
    (root / "labelsTr" / "case_001.nii.gz").unlink()
    with pytest.raises(InputError, match="without its label map"):
        load(root, size=8)


def test_a_mask_on_another_spacing_is_refused(tmp_path: Path) -> None:
    import SimpleITK as sitk

    root = _msd(tmp_path)
    mask = sitk.ReadImage(str(root / "labelsTr" / "case_000.nii.gz"))
    mask.SetSpacing((2.0, 1.0, 1.0))
    sitk.WriteImage(mask, str(root / "labelsTr" / "case_000.nii.gz"))
    with pytest.raises(InputError, match="spacing"):
        load(root, size=8)


def test_a_csv_names_each_image_s_mask(tmp_path: Path) -> None:
    for k in range(4):
        Image.fromarray(np.full((12, 12), 30 * k, np.uint8)).save(tmp_path / f"{k}.png")
        mask = np.zeros((12, 12), np.uint8)
        mask[k : k + 3, 2:5] = 1
        Image.fromarray(mask).save(tmp_path / f"{k}-roi.png")
    (tmp_path / "labels.csv").write_text("filename,label,mask\n" + "".join(f"{k}.png,{k % 2},{k}-roi.png\n" for k in range(4)))
    cohort = load(tmp_path)
    assert [int(m.sum()) for m in cohort.train.masks] == [9, 9, 9, 9]
    assert "mapped_0_255_to_0_1" not in cohort.preprocessing["masks"]


def test_folder_options_are_refused_for_an_npz(tmp_path: Path) -> None:
    path = load(_busi(tmp_path, sizes=(20,))).save(str(tmp_path / "b.npz"))
    with pytest.raises(InputError, match="size"):
        load(path, size=64)


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED / "busi").is_dir(), reason="BUSI is not in ../shared/data")
def test_busi_loads_every_image_with_its_masks_at_128_px() -> None:
    cohort = load(SHARED / "busi", size=128, mask_regions="labels")
    masks, labels = cohort.train.masks, cohort.train.labels
    assert len(cohort.train) == 780 and masks.shape == (780, 1, 128, 128)
    assert int((masks.reshape(780, -1).max(axis=1) >= 2).sum()) == 17  # the images with a second region
    assert cohort.preprocessing["masks"]["empty_per_class"] == {"benign": 0, "malignant": 0, "normal": 133}
    assert np.bincount(labels).tolist() == [437, 210, 133]


def test_a_run_plans_a_mixed_size_folder_without_a_split(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`genrad run --size`: the folder is resized (masks nearest-neighbour) and, having no split of its own, split
    0.7 / 0.1 / 0.2 by class with the run's seed, all in the plan before any work."""
    from genrad.cli.main import main

    root = _busi(tmp_path / "data")
    with pytest.raises(SystemExit) as stopped:
        main(["run", "--data", str(root), "--size", "32", "--model", "vae", "--print-plan", "--out", str(tmp_path / "out")])
    assert stopped.value.code == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["data"]["size"] == 32 and not (tmp_path / "out").exists()
    with pytest.raises(SystemExit) as stopped:
        main(["run", "--data", str(root), "--model", "vae", "--print-plan"])
    assert stopped.value.code == 2 and "--size N" in capsys.readouterr().err


def test_data_prepare_writes_one_npz_with_masks_and_a_split(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from genrad.cli.main import main

    out = tmp_path / "busi.npz"
    with pytest.raises(SystemExit) as stopped:
        main(["data", "prepare", str(_busi(tmp_path / "data")), "--size", "32", "--split-fractions", "0.5,0.25,0.25",
              "--out", str(out)])
    assert stopped.value.code == 0, capsys.readouterr().err
    cohort = load_npz(out)
    assert set(cohort.splits) == {"train", "val", "test"} and sum(len(s) for s in cohort.splits.values()) == 12
    assert all(split.masks is not None and split.masks.shape[2:] == (32, 32) for split in cohort.splits.values())
