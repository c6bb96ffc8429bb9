"""Image and mask conversion: shapes, the 0..255 scale, the frd-score whole-image mask, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from genrad.data import Split
from genrad.errors import InputError
from genrad.radiomics.inputs import as_volumes, whole_image_mask


@pytest.mark.parametrize(
    ("shape", "spatial"),
    [((3, 8, 9), (8, 9)), ((3, 1, 8, 9), (8, 9)), ((3, 5, 8, 9), (5, 8, 9)), ((3, 1, 5, 8, 9), (5, 8, 9))],
)
def test_shapes(shape: tuple[int, ...], spatial: tuple[int, ...]) -> None:
    volumes = as_volumes(np.zeros(shape, dtype=np.uint8))
    assert volumes.images.shape == (3, *spatial)
    assert volumes.spatial_dims == len(spatial)
    assert volumes.spacing == (1.0,) * len(spatial)


def test_float_and_split_are_multiplied_by_255_and_uint8_kept() -> None:
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 256, size=(4, 1, 8, 8), dtype=np.uint8)
    as_float = raw.astype(np.float32) / 255
    split = Split(images=as_float, labels=np.zeros(4, dtype=np.int64))
    expected = raw[:, 0].astype(np.float64)
    np.testing.assert_array_equal(as_volumes(raw).images, expected)
    np.testing.assert_allclose(as_volumes(as_float).images, expected, rtol=1e-6)
    np.testing.assert_allclose(as_volumes(split).images, expected, rtol=1e-6)


def test_default_mask_is_the_whole_image_minus_the_first_voxel() -> None:
    volumes = as_volumes(np.zeros((2, 4, 5, 6), dtype=np.uint8))
    assert volumes.default_mask
    assert volumes.masks.sum() == 2 * (4 * 5 * 6 - 1)
    assert not volumes.masks[:, 0, 0, 0].any()
    np.testing.assert_array_equal(volumes.masks, whole_image_mask((2, 4, 5, 6)))


def test_given_masks_are_binarised() -> None:
    masks = np.zeros((2, 1, 8, 8), dtype=np.uint8)
    masks[:, :, 2:5, 2:5] = 255
    volumes = as_volumes(np.zeros((2, 8, 8), dtype=np.uint8), masks=masks, spacing=(0.5, 0.5))
    assert volumes.masks.dtype == bool and volumes.masks.sum() == 18 and not volumes.default_mask
    assert volumes.spacing == (0.5, 0.5)


@pytest.mark.parametrize(
    ("images", "masks", "spacing", "message"),
    [
        (np.full((2, 8, 8), 2.0), None, None, "float images in [0, 1]"),
        (np.zeros((2, 8, 8), dtype=np.int16), None, None, "dtype int16"),
        (np.zeros((2, 3, 4, 8, 8), dtype=np.uint8), None, None, "single-channel"),
        (np.zeros((8, 8), dtype=np.uint8), None, None, "add a leading image axis"),
        (np.zeros((2, 2, 8), dtype=np.uint8), None, None, "at least 4 pixels"),
        (np.full((2, 8, 8), np.nan), None, None, "finite"),
        (np.zeros((0, 8, 8), dtype=np.uint8), None, None, "at least one image"),
        (np.zeros((2, 8, 8), dtype=np.uint8), np.ones((2, 8, 7)), None, "image shape"),
        (np.zeros((2, 8, 8), dtype=np.uint8), np.eye(8)[None].repeat(2, 0) * (np.arange(8) == 0), None, "at least 2"),
        (np.zeros((2, 8, 8), dtype=np.uint8), None, (1.0,), "2 positive spacing"),
    ],
)
def test_bad_input_raises_one_line_input_error(images, masks, spacing, message: str) -> None:
    with pytest.raises(InputError, match=message.replace("[", r"\[").replace("]", r"\]")) as caught:
        as_volumes(images, masks, spacing)
    assert "\n" not in str(caught.value)
