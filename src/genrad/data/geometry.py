"""Images of one dataset stacked into one array: channels converted, sizes resized, spacing checked; masks alike.

Every change is an explicit option recorded in the cohort's preprocessing: ``channels`` (1 grey, 3 RGB; grey from
RGB with the ITU-R BT.601 weights, as Pillow's "L"), ``size`` (MONAI ``Resize``: linear with anti-aliasing for images,
nearest neighbour for masks, so labels stay labels). Without ``size``, images of different sizes are an error that
names the option.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from genrad.data.cohort import MIN_SPATIAL_SIZE
from genrad.errors import InputError

LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601 weights, as Pillow's "L" conversion
SIZE_FIX = "pass --size N (or size=N to genrad.data.load) to resize them (recorded)"


def stack_images(
    raws: list[tuple[np.ndarray, tuple[float, ...]]],
    files: list[Path],
    *,
    size: int | Sequence[int] | None,
    channels: int | None,
    masks: list[np.ndarray] | None = None,
) -> tuple[np.ndarray, tuple[float, ...], np.ndarray | None, dict[str, Any]]:
    """One (N, C, *spatial) array, and the masks as one (N, 1, *spatial) uint8 array when given (each already checked
    against its image's size): channel conversion and resizing only when asked, spacing checked."""
    record: dict[str, Any] = {}
    dims = {p.ndim - 1 for p, _ in raws}
    if len(dims) > 1:
        _disagree("all 2D or all 3D images", [p.ndim - 1 for p, _ in raws], files, "split 2D and 3D data into two folders")
    pixels = [p for p, _ in raws]
    if channels is not None:
        pixels = [convert_channels(p, channels, file) for p, file in zip(pixels, files, strict=True)]
        record["channels"] = channels
    _disagree("one channel count", [p.shape[0] for p in pixels], files, "pass --channels 1 (grey) or --channels 3 (RGB)")
    spacings = [s for _, s in raws]
    if size is not None:
        target = target_shape(size, dims.pop())
        spacings = [tuple(s * n / t for s, n, t in zip(sp, p.shape[1:], target)) if sp else () for sp, p in zip(spacings, pixels)]
        changed = [k for k, p in enumerate(pixels) if p.shape[1:] != target]
        sides = np.array([p.shape[1:] for p in pixels])
        record["resize"] = {"size": list(target), "resized": len(changed), "method": "monai.transforms.Resize",
                            "mode": "bilinear" if len(target) == 2 else "trilinear", "anti_aliasing": True,
                            "original_size": {"min": sides.min(axis=0).tolist(), "median": np.median(sides, axis=0).tolist(),
                                              "max": sides.max(axis=0).tolist()}}
        if masks is not None:
            masks = [resize(m, target, nearest=True) if m.shape[1:] != target else m for m in masks]
            record["resize"]["masks"] = "nearest neighbour"
        pixels = [resize(p, target) if p.shape[1:] != target else p for p in pixels]
    _disagree("images of one size", [p.shape[1:] for p in pixels], files, SIZE_FIX)
    stacked_masks = None if masks is None else np.stack(masks).astype(np.uint8)
    rounded = [tuple(np.round(s, 4)) for s in spacings]
    if size is not None and len(set(rounded)) > 1:
        record["resize"]["spacing"] = "dropped: it differs between the resized images"
        return np.stack(pixels), (), stacked_masks, record
    _disagree("one pixel spacing", rounded, files, "resample the volumes to one spacing first (e.g. SimpleITK Resample)")
    return np.stack(pixels), spacings[0], stacked_masks, record


def _disagree(expected: str, values: list[Any], files: list[Path], fix: str) -> None:
    first = values[0]
    other = next((k for k, v in enumerate(values) if v != first), None)
    if other is not None:
        raise InputError(expected, f"{first} in {files[0]} but {values[other]} in {files[other]}", fix,
                         source=str(files[other]))


def convert_channels(pixels: np.ndarray, channels: int, file: Path) -> np.ndarray:
    if channels not in (1, 3) or pixels.shape[0] not in (1, 3):
        raise InputError("channels=1 or 3 and grey or RGB images", f"channels={channels} for {pixels.shape[0]} channels",
                         "pass --channels 1 or --channels 3", source=str(file))
    if pixels.shape[0] == channels:
        return pixels
    if channels == 3:
        return np.repeat(pixels, 3, axis=0)
    grey = np.tensordot(LUMA, pixels.astype(np.float64), axes=1)[None]
    return _like(grey, pixels.dtype)


def target_shape(size: int | Sequence[int], dims: int) -> tuple[int, ...]:
    target = (int(size),) * dims if np.isscalar(size) else tuple(int(s) for s in size)
    if len(target) != dims or min(target) < MIN_SPATIAL_SIZE:
        raise InputError(f"size: one int or {dims} ints >= {MIN_SPATIAL_SIZE}", repr(size), "e.g. --size 64")
    return target


def resize(pixels: np.ndarray, target: tuple[int, ...], *, nearest: bool = False) -> np.ndarray:
    """Resample to `target` (MONAI Resize: linear with anti-aliasing, or nearest neighbour for label maps); integer
    images stay integer."""
    from monai.transforms import Resize

    mode = "nearest" if nearest else "bilinear" if len(target) == 2 else "trilinear"
    resized = np.asarray(Resize(target, mode=mode, anti_aliasing=not nearest)(pixels.astype(np.float32)), dtype=np.float64)
    return _like(resized, pixels.dtype)


def _like(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """`values` cast to `dtype`, rounded and clipped to its range for integer types."""
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.rint(values), info.min, info.max).astype(dtype)
    return values.astype(dtype)
