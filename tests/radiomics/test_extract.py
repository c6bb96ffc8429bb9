"""`extract`: provenance, worker processes, content-hash cache and resume after an interruption."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import genrad.radiomics.extraction as extract_module
from genrad.errors import InputError
from genrad.radiomics import extract


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    """Smooth random 2D textures (uint8), different per image."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(0)
    noise = gaussian_filter(rng.normal(size=(6, 32, 32)), sigma=(0, 1.5, 1.5))
    return np.clip(128 + 400 * noise, 0, 255).astype(np.uint8)


def test_columns_and_provenance(images: np.ndarray) -> None:
    table = extract(images, feature_set="fast", engine="pyradiomics", progress=False)
    assert table.shape == (6, 40)
    assert table.columns[0] == "original_firstorder_10Percentile"
    assert "original_glcm_Contrast" in table.columns
    assert {"feature_set", "engine", "settings", "versions", "data_hash", "cache_key"} <= set(table.attrs)
    assert table.attrs["engine"] == "pyradiomics" and table.attrs["settings"]["setting"]["binWidth"] == 5
    assert table.notna().all().all()
    assert table["original_firstorder_Mean"].nunique() == 6  # one row per image, not a broadcast


def test_workers_give_the_same_table(images: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(extract_module.CHUNK_SIZE, "pyradiomics", 2)
    one = extract(images, feature_set="fast", engine="pyradiomics", workers=1, progress=False)
    two = extract(images, feature_set="fast", engine="pyradiomics", workers=2, progress=False)
    np.testing.assert_array_equal(one.to_numpy(), two.to_numpy())


def test_cache_returns_the_stored_table_and_resumes(images: np.ndarray, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(extract_module.CHUNK_SIZE, "pyradiomics", 2)
    real_chunk = extract_module.extract_chunk
    calls: list[int] = []

    def interrupted(engine, chunk, *args):
        calls.append(len(chunk))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_chunk(engine, chunk, *args)

    monkeypatch.setattr(extract_module, "extract_chunk", interrupted)
    with pytest.raises(KeyboardInterrupt):
        extract(images, feature_set="fast", engine="pyradiomics", cache_dir=tmp_path, progress=False)
    assert not list(tmp_path.glob("*.parquet"))  # no partial output under the final name

    def counted(engine, chunk, *args):
        calls.append(len(chunk))
        return real_chunk(engine, chunk, *args)

    calls.clear()
    monkeypatch.setattr(extract_module, "extract_chunk", counted)
    resumed = extract(images, feature_set="fast", engine="pyradiomics", cache_dir=tmp_path, progress=False)
    assert calls == [2, 2]  # the first chunk came from the cache
    assert len(list(tmp_path.glob("*.parquet"))) == 1

    calls.clear()
    again = extract(images, feature_set="fast", engine="pyradiomics", cache_dir=tmp_path, progress=False)
    assert calls == []
    np.testing.assert_array_equal(again.to_numpy(), resumed.to_numpy())
    assert again.attrs["cache_key"] == resumed.attrs["cache_key"]
    fresh = extract(images, feature_set="fast", engine="pyradiomics", progress=False)
    np.testing.assert_array_equal(fresh.to_numpy(), resumed.to_numpy())

    other = extract(images[:3], feature_set="fast", engine="pyradiomics", cache_dir=tmp_path, progress=False)
    assert other.attrs["cache_key"] != resumed.attrs["cache_key"] and len(other) == 3


def test_masks_change_the_features(images: np.ndarray) -> None:
    masks = np.zeros(images.shape, dtype=bool)
    masks[:, 8:24, 8:24] = True
    whole = extract(images[:2], feature_set="fast", engine="pyradiomics", progress=False)
    inner = extract(images[:2], feature_set="fast", engine="pyradiomics", masks=masks[:2], progress=False)
    assert inner.attrs["mask"] == "given"
    assert not np.allclose(whole["original_firstorder_Mean"], inner["original_firstorder_Mean"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"engine": "gpu"}, "engine"), ({"workers": 0}, "workers >= 1"), ({"feature_set": "all"}, "feature set")],
)
def test_bad_arguments(images: np.ndarray, kwargs: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        extract(images, progress=False, **kwargs)


def test_colour_images_are_read_as_their_luminance() -> None:
    """RGB images (a 2D Split of 3 channels, or an (N, 3, H, W) array) give the features of their ITU-R BT.601
    luminance, and the table records it; alpha is dropped."""
    from genrad.data import Split
    from genrad.data.phantom import make_phantom

    grey = make_phantom(n=60, size=28, seed=0).train
    rgb = np.concatenate([grey.images, grey.images * 0.8, grey.images * 0.5], axis=1).astype(np.float32)
    weights = np.array([0.299, 0.587, 0.114]).reshape(1, 3, 1, 1)
    luma = (rgb.astype(np.float64) * weights).sum(axis=1, keepdims=True).astype(np.float32)
    expected = extract(Split(luma, grey.labels), feature_set="fast", progress=False)
    from_split = extract(Split(rgb, grey.labels), feature_set="fast", progress=False)
    rgba = np.concatenate([rgb, np.ones_like(rgb[:, :1])], axis=1)
    for table in (from_split, extract(rgb, feature_set="fast", progress=False),
                  extract(Split(rgba, grey.labels), feature_set="fast", progress=False)):
        np.testing.assert_allclose(table.to_numpy(), expected.to_numpy(), rtol=1e-5, atol=1e-8)
    assert from_split.attrs["colour"] == "luminance (ITU-R BT.601)" and "colour" not in expected.attrs


def test_a_split_with_masks_is_measured_inside_its_regions() -> None:
    """`extract_split`: inside each mask by default (the lesion, as pyradiomics computes it), the whole image on
    request, and a row of NaN for an image without a region (a normal image's empty mask)."""
    from dataclasses import replace

    from genrad.data.phantom import make_phantom
    from genrad.radiomics.extraction import extract_split

    split = make_phantom(n=40, size=28, seed=1).train.subset(range(6))
    masks = split.masks.copy()
    masks[2] = 0
    split = replace(split, masks=masks)
    roi = extract_split(split, feature_set="fast", progress=False)
    whole = extract_split(split, "whole", feature_set="fast", progress=False)
    assert roi.attrs["region"] == "masks (label > 0)" and roi.attrs["no_region"] == [2] and whole.attrs["region"] == "whole image"
    assert roi.iloc[2].isna().all() and not roi.drop(index=2).isna().any().any()
    keep = [0, 1, 3, 4, 5]
    direct = extract(split.images[keep], masks=split.masks[keep], feature_set="fast", progress=False)
    np.testing.assert_array_equal(roi.iloc[keep].to_numpy(), direct.to_numpy())
    mean = "original_firstorder_Mean"
    assert not np.allclose(roi[mean].iloc[keep], whole[mean].iloc[keep])
    with pytest.raises(InputError, match="region"):
        extract_split(replace(split, masks=None), "roi", feature_set="fast", progress=False)
