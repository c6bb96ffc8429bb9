"""`display_floor`: the clipped bottom of the histogram that a generator's ``black_level`` should be."""

from __future__ import annotations

import numpy as np
import pytest

from genrad.data import load
from genrad.data.intensity import _lowest_levels, display_floor, normalise_intensity


def speckle(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).gamma(2.0, 30.0, (40, 28, 28))


def test_a_clipped_floor_is_found_and_an_unclipped_histogram_is_not() -> None:
    signal = speckle()
    assert display_floor(np.rint(np.clip(signal, 0, 255)) / 255) is None  # a smooth histogram: no spike
    clipped = np.rint(np.clip(signal, 20, 255)) / 255  # everything darker than 20 shows as 20
    assert display_floor(clipped) == pytest.approx(20 / 255)
    rare_zeros = clipped.copy()
    rare_zeros[0, 0, :3] = 0.0  # a few stray darker pixels below the floor do not hide it
    assert display_floor(rare_zeros) == pytest.approx(20 / 255)
    assert display_floor(np.full((2, 4, 4), 0.5)) is None  # one value: nothing to compare with


def test_the_lowest_levels_match_a_full_sort() -> None:
    values = np.random.default_rng(1).integers(0, 9, 5000).astype(np.float32) / 8
    for subset in (values, values[:4]):  # more levels than asked for; fewer
        levels, counts = np.unique(subset, return_counts=True)
        assert _lowest_levels(subset, 5) == (levels[:5].tolist(), counts[:5].tolist())
    assert _lowest_levels(np.array([np.nan, 0.5, 0.25, 0.5]), 5) == ([0.25, 0.5], [1, 2])  # NaN: skipped, not a level


def test_breastmnist_is_clipped_at_one_gray_level(breastmnist_path) -> None:
    summary = load(str(breastmnist_path)).summary()
    assert summary["splits"]["train"]["display_floor"] == pytest.approx(1 / 255)
    assert load("phantom").summary()["splits"]["train"]["display_floor"] is None


def test_image_percentile_maps_each_image_by_its_own_range() -> None:
    """Two copies of one volume at scales 1 and 1000 (as MRI scanners give) become the same image."""
    rng = np.random.default_rng(0)
    base = rng.normal(100, 20, (1, 1, 8, 8, 8))
    raw = np.concatenate([base, 1000 * base + 7])
    images, record = normalise_intensity({"train": raw}, method="image-percentile")
    out = images["train"]
    assert record["intensity"] == "image-percentile" and record["percentiles"] == [0.5, 99.5]
    np.testing.assert_allclose(out[0], out[1], atol=1e-6)
    assert out.dtype == np.float32 and out.min() == 0.0 and out.max() == 1.0
