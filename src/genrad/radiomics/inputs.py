"""Turn what a user passes to `extract` into radiomics-ready arrays on the 0..255 scale.

Radiomic features are computed on the 0..255 scale that MedMNIST / PNG data have (frd-score reads
PNGs): a `genrad.data.Split` or a float array in [0, 1] is multiplied by 255 (no rounding); a uint8
array is used as is. Accepted shapes: ``(N, H, W)``, ``(N, 1, H, W)`` (2D) and ``(N, D, H, W)``,
``(N, 1, D, H, W)`` (3D); a 4D array whose second axis has length 1 is read as a channel axis.

Colour images (a 2D `Split` with 3 or 4 channels, or an ``(N, 3, H, W)`` array: 3 slices are too few for a volume)
are reduced to their luminance, ``0.299 R + 0.587 G + 0.114 B`` (ITU-R BT.601, what PIL's ``convert("L")`` gives a
PNG), alpha dropped: radiomic features are defined on one intensity channel (`LUMINANCE`, recorded as ``colour``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from genrad.errors import InputError
from genrad.provenance import hash_arrays

MIN_SIDE = 4
LUMINANCE = (0.299, 0.587, 0.114)
"""ITU-R BT.601 luma weights of R, G, B."""
_FLOAT_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Volumes:
    """Images as float64 on the 0..255 scale, ``(N, H, W)`` or ``(N, D, H, W)``; masks bool, same shape."""

    images: np.ndarray
    masks: np.ndarray
    spacing: tuple[float, ...]  # per array axis (D, H, W) or (H, W), in mm
    default_mask: bool
    source: np.ndarray  # the images as given (before scaling): hashed for provenance and the cache
    colour: str | None = None  # "luminance" when colour images were reduced to one channel

    def content_hash(self) -> str:
        """SHA-256 of the images as given (and of the masks when given)."""
        return hash_arrays(self.source) if self.default_mask else hash_arrays(self.source, self.masks)

    @property
    def spatial_dims(self) -> int:
        return self.images.ndim - 1

    def __len__(self) -> int:
        return int(self.images.shape[0])


def as_volumes(images: Any, masks: Any = None, spacing: Sequence[float] | None = None) -> Volumes:
    """Validate `images` (Split or array), optional `masks` and `spacing`; see the module docstring."""
    from genrad.data import Split

    colour = None
    if isinstance(images, Split):
        array = np.asarray(images.images)
        if images.spatial_dims == 2 and array.shape[1] in (3, 4):
            array, colour = _luminance(array), "luminance"
        array = _drop_channel(array, images.spatial_dims + 2, "Split images")
        scaled = array.astype(np.float64) * 255.0
    else:
        array = _to_numpy(images, "images")
        if array.ndim == 4 and array.shape[1] == 3:
            array, colour = _luminance(array), "luminance"
        array = _drop_channel(array, array.ndim, "images")
        scaled = _scale(array)
    if scaled.shape[0] == 0:
        raise InputError("at least one image", "an empty array", "pass one or more images", source="images")
    if min(scaled.shape[1:]) < MIN_SIDE:
        raise InputError(
            f"images at least {MIN_SIDE} pixels along every axis",
            f"shape {scaled.shape}",
            "pass (N, H, W), (N, 1, H, W), (N, D, H, W) or (N, 1, D, H, W) images",
            source="images",
        )
    if not np.isfinite(scaled).all():
        raise InputError("finite intensities", "NaN or infinite values", "fix or drop those images", source="images")
    spatial_dims = scaled.ndim - 1
    return Volumes(
        images=scaled,
        masks=_masks(masks, scaled.shape),
        spacing=_spacing(spacing, spatial_dims),
        default_mask=masks is None,
        source=array,
        colour=colour,
    )


def whole_image_mask(shape: tuple[int, ...]) -> np.ndarray:
    """The whole image as region of interest, minus the first voxel, exactly as frd-score builds it.

    frd-score zeroes the corner voxel to avoid a pyradiomics failure on masks that fill the image
    (pyradiomics issue 765); its features depend on this, so genrad does the same.
    """
    mask = np.ones(shape, dtype=bool)
    mask[(slice(None),) + (0,) * (len(shape) - 1)] = False
    return mask


def _luminance(images: np.ndarray) -> np.ndarray:
    """``(N, 3 or 4, H, W)`` colour images as ``(N, H, W)`` luminance (`LUMINANCE`), in their own dtype's scale."""
    weights = np.asarray(LUMINANCE, dtype=np.float64).reshape(1, 3, 1, 1)
    luma = (images[:, :3].astype(np.float64) * weights).sum(axis=1)
    return np.rint(luma).astype(np.uint8) if images.dtype == np.uint8 else luma.astype(images.dtype)


def _to_numpy(images: Any, name: str) -> np.ndarray:
    if hasattr(images, "detach"):  # a torch tensor
        images = images.detach().cpu().numpy()
    array = np.asarray(images)
    if array.dtype == object:
        raise InputError("a numeric array", "an object array", "stack the images into one array", source=name)
    return array


def _drop_channel(array: np.ndarray, ndim: int, name: str) -> np.ndarray:
    if ndim == 3:
        return array
    if ndim == 4:
        return array[:, 0] if array.shape[1] == 1 else array
    if ndim == 5:
        if array.shape[1] != 1:
            raise InputError(
                "single-channel volumes (N, 1, D, H, W)",
                f"{array.shape[1]} channels",
                "extract features one channel at a time",
                source=name,
            )
        return array[:, 0]
    raise InputError(
        "images shaped (N, H, W), (N, 1, H, W), (N, D, H, W) or (N, 1, D, H, W)",
        f"shape {array.shape}",
        "add a leading image axis for a single image (array[None])",
        source=name,
    )


def _scale(array: np.ndarray) -> np.ndarray:
    if array.dtype == np.uint8:
        return array.astype(np.float64)
    if np.issubdtype(array.dtype, np.floating):
        low, high = (float(array.min()), float(array.max())) if array.size else (0.0, 0.0)
        if low < -_FLOAT_TOLERANCE or high > 1 + _FLOAT_TOLERANCE:
            raise InputError(
                "float images in [0, 1] (or uint8 images in 0..255)",
                f"values in [{low:.4g}, {high:.4g}]",
                "rescale the images to [0, 1] (genrad.data.load does) or pass uint8",
                source="images",
            )
        return array.astype(np.float64) * 255.0
    raise InputError(
        "uint8 images (0..255) or float images in [0, 1]",
        f"dtype {array.dtype}",
        "cast to uint8 or scale to float in [0, 1]",
        source="images",
    )


def _masks(masks: Any, shape: tuple[int, ...]) -> np.ndarray:
    if masks is None:
        return whole_image_mask(shape)
    array = _to_numpy(masks, "masks")
    array = _drop_channel(array, array.ndim, "masks") != 0
    if array.shape != shape:
        raise InputError(
            f"one mask per image with the image shape {shape}",
            f"masks shaped {array.shape}",
            "pass masks with the same shape as the images (nonzero = region of interest)",
            source="masks",
        )
    counts = array.reshape(len(array), -1).sum(axis=1)
    if (counts < 2).any():
        first = int(np.flatnonzero(counts < 2)[0])
        raise InputError(
            "at least 2 voxels in every mask",
            f"{int(counts[first])} in mask {first}",
            "drop images whose region of interest is empty or a single voxel",
            source="masks",
        )
    return array


def _spacing(spacing: Sequence[float] | None, spatial_dims: int) -> tuple[float, ...]:
    if spacing is None:
        return (1.0,) * spatial_dims
    values = tuple(float(s) for s in spacing)
    if len(values) != spatial_dims or min(values) <= 0:
        raise InputError(
            f"{spatial_dims} positive spacing values (mm, in array axis order)",
            f"{spacing!r}",
            "give one pixel spacing per spatial axis, or leave it out for 1 mm",
            source="spacing",
        )
    return values
