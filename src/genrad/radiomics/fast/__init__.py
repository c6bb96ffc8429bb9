"""The fast radiomics engine: pyradiomics' features for a whole batch of same-sized images at once.

The pipeline is pyradiomics' (``RadiomicsFeatureExtractor.execute``), step by step, vectorised over
the batch axis:

1. read intensities as float32 (frd-score reads images with SimpleITK as float32);
2. normalise each image (z-score x ``normalizeScale``) and resample it with a cubic B-spline to the
   target spacing on the grid pyradiomics chooses from the mask's bounding box (`preprocess`);
3. filter: Original, LoG, Wavelet (`filters`);
4. per filtered image: discretise with a fixed bin width, then compute firstorder (`firstorder`)
   and GLCM / GLRLM / GLSZM / NGTDM features (`texture`) inside the resampled mask.

Images whose masks give different resampling grids are processed in groups of equal grids.
2D images are handled as one-slice volumes with in-plane neighbourhoods (pyradiomics' ``force2D``).
Numbers match pyradiomics 3.0.1 to floating-point rounding (see tests/radiomics/test_fast.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from scipy import ndimage

from genrad.errors import InputError
from genrad.radiomics.fast.filters import laplacian_of_gaussian, wavelet
from genrad.radiomics.fast.firstorder import FIRSTORDER_FEATURES, firstorder
from genrad.radiomics.fast.preprocess import (
    Grid,
    apply_separable,
    bspline_operator,
    crop_grid,
    normalize,
    resample_grid,
    sample_nearest,
)
from genrad.radiomics.fast.texture import (
    GLCM_FEATURES,
    GLRLM_FEATURES,
    GLSZM_FEATURES,
    NGTDM_FEATURES,
    glcm,
    glrlm,
    glszm,
    ngtdm,
)
from genrad.radiomics.featuresets import FeatureSet

ALL_FEATURES = {
    "firstorder": FIRSTORDER_FEATURES,
    "glcm": tuple(name for name in GLCM_FEATURES if name != "MCC"),
    "glrlm": GLRLM_FEATURES,
    "glszm": GLSZM_FEATURES,
    "ngtdm": NGTDM_FEATURES,
}
SUPPORTED_SETTINGS = {
    "normalize", "normalizeScale", "interpolator", "resampledPixelSpacing", "padDistance", "preCrop", "force2D",
    "force2Ddimension", "binWidth", "voxelArrayShift", "label", "correctMask", "minimumROIDimensions",
    "additionalInfo",
}  # fmt: skip
_UNLIMITED_PAD = 1 << 30
# Texture counting is fastest on batches of about this many resampled voxels (arrays stay in cache).
VOXELS_PER_BATCH = 1 << 16
MAX_BATCH = 64


def extract_batch(
    images: np.ndarray, masks: np.ndarray, feature_set: FeatureSet, spacing: tuple[float, ...]
) -> tuple[list[str], np.ndarray]:
    """Column names and ``(N, F)`` values for images ``(N, H, W)`` / ``(N, D, H, W)`` on the 0..255 scale.

    Images pyradiomics fails on get a row of NaN: constant images (they cannot be z-scored) and masks
    that keep a single voxel or too few axes after resampling. If every image fails, names are empty.
    """
    spatial_dims = images.ndim - 1
    settings = feature_set.settings(spatial_dims)
    _check_supported(feature_set, settings)
    if spatial_dims == 2:
        images, masks, spacing = images[:, None], masks[:, None], (1.0, *spacing)
    original = images.astype(np.float32).astype(np.float64)
    prepared = normalize(original, float(settings.get("normalizeScale", 1))) if settings.get("normalize") else original
    usable = np.isfinite(prepared.reshape(len(prepared), -1)).all(axis=1)
    names: list[str] = []
    values = np.empty((0, 0))
    if usable.any():
        names, values = _extract_volumes(original[usable], prepared[usable], masks[usable], spacing, feature_set, settings)
    table = np.full((len(images), len(names)), np.nan)
    table[usable] = values
    return names, table


def _extract_volumes(
    original: np.ndarray,
    prepared: np.ndarray,
    masks: np.ndarray,
    spacing: tuple[float, ...],
    feature_set: FeatureSet,
    settings: dict[str, Any],
) -> tuple[list[str], np.ndarray]:
    """Features of volumes ``(N, Z, Y, X)``: `original` as read, `prepared` normalised."""
    low, size = bounding_boxes(masks)
    boxes, box_of_image = np.unique(np.concatenate([low, size], axis=1), axis=0, return_inverse=True)
    groups: dict[tuple[Grid, ...], list[int]] = {}
    for box, members in zip(boxes, _members(box_of_image.ravel(), len(boxes))):
        grid = _grid(masks.shape[1:], spacing, box[:3], box[3:], settings)
        groups.setdefault(grid, []).extend(members)

    names: list[str] = []
    table = np.empty((len(prepared), 0))
    for grid, members in groups.items():
        chosen = np.sort(np.asarray(members))
        resampled = any(g.new_spacing != g.spacing for g in grid)
        image_ops = tuple(bspline_operator(length, g) for length, g in zip(prepared.shape[1:], grid))
        new_spacing = tuple(g.new_spacing for g in grid)
        batch = int(np.clip(VOXELS_PER_BATCH // np.prod([g.size for g in grid]), 1, MAX_BATCH))
        for start in range(0, len(chosen), batch):
            part = chosen[start : start + batch]
            roi = sample_nearest(masks[part], grid)
            ok = _roi_ok(roi, settings)  # pyradiomics fails on the others: they keep a row of NaN
            part, roi = part[ok], roi[ok]
            if not len(part):
                continue
            volume = apply_separable(prepared[part], image_ops)
            columns: dict[str, np.ndarray] = {}
            if feature_set.diagnostics:
                columns.update(_diagnostics(original[part], masks[part], volume if resampled else None, roi))
            columns.update(_features(volume, roi, new_spacing, feature_set, settings))
            if not names:
                names = list(columns)
                table = np.full((len(prepared), len(names)), np.nan)
            elif list(columns) != names:
                raise InputError(
                    "masks whose resampled regions give the same feature columns",
                    "masks giving different columns (e.g. resampled for some images only, or LoG skipped on small crops)",
                    "extract those groups of images separately",
                    source="masks",
                )
            table[part] = np.stack([columns[name] for name in names], axis=1)
    return names, table


def _check_supported(feature_set: FeatureSet, settings: dict[str, Any]) -> None:
    unsupported = sorted(set(settings) - SUPPORTED_SETTINGS)
    unsupported += [f"imageType {name}" for name in feature_set.image_types if name not in ("Original", "LoG", "Wavelet")]
    unsupported += [f"featureClass {name}" for name in feature_set.feature_classes if name not in ALL_FEATURES]
    for name, features in feature_set.feature_classes.items():
        unsupported += [f"{name} {f}" for f in features or () if name in ALL_FEATURES and f not in ALL_FEATURES[name]]
    wavelet_args = feature_set.image_types.get("Wavelet", {})
    if wavelet_args.get("level", 1) != 1 or wavelet_args.get("start_level", 0) != 0:
        unsupported.append("Wavelet level/start_level")
    if settings.get("interpolator", "sitkBSpline") != "sitkBSpline" or settings.get("force2Ddimension", 0) != 0:
        unsupported.append("interpolator / force2Ddimension")
    if unsupported:
        raise InputError(
            "a feature set the fast engine implements",
            f"unsupported {', '.join(unsupported)} in feature set {feature_set.name!r}",
            "use engine='pyradiomics' for this feature set",
            source="feature_set",
        )


def bounding_boxes(masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First index and extent of each mask along each spatial axis: two ``(N, 3)`` int arrays."""
    lows, sizes = [], []
    for axis in range(1, masks.ndim):
        projection = masks.any(axis=tuple(a for a in range(1, masks.ndim) if a != axis))
        first = projection.argmax(axis=1)
        last = projection.shape[1] - 1 - projection[:, ::-1].argmax(axis=1)
        lows.append(first)
        sizes.append(last - first + 1)
    return np.stack(lows, axis=1), np.stack(sizes, axis=1)


def _members(labels: np.ndarray, count: int) -> list[list[int]]:
    order = np.argsort(labels, kind="stable")
    return [chunk.tolist() for chunk in np.split(order, np.cumsum(np.bincount(labels, minlength=count))[:-1])]


def _grid(
    shape: tuple[int, ...], spacing: tuple[float, ...], low: np.ndarray, size: np.ndarray, settings: dict[str, Any]
) -> tuple[Grid, ...]:
    """Resampling grid for one mask bounding box (a crop when no resampling is configured or needed)."""
    pad = int(settings.get("padDistance", 5))
    target = settings.get("resampledPixelSpacing")
    if target is not None and settings.get("interpolator") is not None:
        grid = resample_grid(shape, spacing, low, size, tuple(target[::-1]), pad)
        if grid is not None:
            return grid
        return crop_grid(shape, spacing, low, size, pad)
    return crop_grid(shape, spacing, low, size, pad if settings.get("preCrop") else _UNLIMITED_PAD)


def _roi_ok(roi: np.ndarray, settings: dict[str, Any]) -> np.ndarray:
    """pyradiomics' `checkMask` on the resampled masks: more than one voxel, enough spanned axes."""
    minimum = max(int(settings.get("minimumROIDimensions", 2)), 1)
    _, extent = bounding_boxes(roi)
    dims = np.where(roi.reshape(len(roi), -1).any(axis=1), (extent > 1).sum(axis=1), 0)
    return dims >= minimum


def _components(masks: np.ndarray) -> np.ndarray:
    """Number of 26-connected components of each mask (pyradiomics' ``VolumeNum``)."""
    structure = np.zeros((3, 3, 3, 3), dtype=bool)
    structure[1] = True
    labels, _ = ndimage.label(masks, structure=structure)
    # labels grow in scan order and never join images, so each image holds a contiguous range
    last = np.maximum.accumulate(labels.reshape(len(masks), -1).max(axis=1))
    return np.diff(last, prepend=0).astype(np.float64)


def _diagnostics(
    original: np.ndarray, masks: np.ndarray, resampled: np.ndarray | None, roi: np.ndarray
) -> dict[str, np.ndarray]:
    """The numeric entries of pyradiomics' ``diagnostics_*`` that frd-score keeps."""
    n = len(original)
    flat = original.reshape(n, -1)
    out = {
        "diagnostics_Image-original_Mean": flat.mean(axis=1),
        "diagnostics_Image-original_Minimum": flat.min(axis=1),
        "diagnostics_Image-original_Maximum": flat.max(axis=1),
        "diagnostics_Mask-original_VoxelNum": masks.reshape(n, -1).sum(axis=1).astype(np.float64),
        "diagnostics_Mask-original_VolumeNum": _components(masks),
    }
    if resampled is not None:
        image = resampled.reshape(n, -1)
        inside = roi.reshape(n, -1)
        voxels = inside.sum(axis=1)
        out.update({
            "diagnostics_Image-interpolated_Mean": image.mean(axis=1),
            "diagnostics_Image-interpolated_Minimum": image.min(axis=1),
            "diagnostics_Image-interpolated_Maximum": image.max(axis=1),
            "diagnostics_Mask-interpolated_VoxelNum": voxels.astype(np.float64),
            "diagnostics_Mask-interpolated_VolumeNum": _components(roi),
            "diagnostics_Mask-interpolated_Mean": np.where(inside, image, 0.0).sum(axis=1) / voxels,
            "diagnostics_Mask-interpolated_Minimum": np.where(inside, image, np.inf).min(axis=1),
            "diagnostics_Mask-interpolated_Maximum": np.where(inside, image, -np.inf).max(axis=1),
        })  # fmt: skip
    return out


def _filtered(volume: np.ndarray, spacing: tuple[float, ...], feature_set: FeatureSet, force_2d: bool) -> Iterator[tuple[str, np.ndarray]]:
    for name, args in feature_set.image_types.items():
        if name == "Original":
            yield "original", volume
        elif name == "LoG":
            yield from laplacian_of_gaussian(volume, spacing, args.get("sigma", []))
        else:
            yield from wavelet(volume, force_2d, args.get("wavelet", "coif1"))


def discretise(values: np.ndarray, mask: np.ndarray, bin_width: float) -> np.ndarray:
    """Gray levels 1..Ng inside `mask` (0 outside): pyradiomics' fixed-bin-width ``binImage``.

    Bin edges are ``low + k * delta`` with ``low = min - (min mod w)`` and ``delta = (low + w) - low``,
    exactly as ``numpy.arange(low, max + 2w, w)`` builds them; a value's level is the number of edges
    at or below it (``numpy.digitize``).
    """
    n = len(values)
    flat, inside = values.reshape(n, -1), mask.reshape(n, -1)
    low_value = np.where(inside, flat, np.inf).min(axis=1)
    low = (low_value - np.remainder(low_value, bin_width))[:, None]
    delta = ((low + bin_width) - low)
    k = np.floor((flat - low) / delta)
    k = np.where(flat < low + k * delta, k - 1, k)
    k = np.where(flat >= low + (k + 1) * delta, k + 1, k)
    return np.where(inside, k + 1, 0).astype(np.int32).reshape(values.shape)


def _features(
    volume: np.ndarray, roi: np.ndarray, spacing: tuple[float, ...], feature_set: FeatureSet, settings: dict[str, Any]
) -> dict[str, np.ndarray]:
    force_2d = bool(settings.get("force2D", False))
    bin_width = float(settings.get("binWidth", 25))
    voxel_volume = float(np.prod(spacing))
    shift = float(settings.get("voxelArrayShift", 0))
    columns: dict[str, np.ndarray] = {}
    for type_name, image in _filtered(volume, spacing, feature_set, force_2d):
        levels = discretise(image, roi, bin_width)
        for class_name, wanted in feature_set.feature_classes.items():
            if class_name == "firstorder":
                values = firstorder(image, roi, levels, voxel_volume, shift)
            elif class_name == "glcm":
                values = glcm(levels, levels.reshape(len(levels), -1).max(axis=1), force_2d)
            elif class_name == "glrlm":
                values = glrlm(levels, force_2d)
            elif class_name == "glszm":
                values = glszm(levels, force_2d)
            else:
                values = ngtdm(levels, force_2d)
            for feature in wanted or ALL_FEATURES[class_name]:
                columns[f"{type_name}_{class_name}_{feature}"] = values[feature]
    return columns
