"""Masks as data: lesion masks and label maps read beside their images, checked, and stored as integer labels.

Layouts (found by `genrad.data.folder`):

- **BUSI style**: ``NAME_mask.png`` beside ``NAME.png`` in a class folder; ``NAME_mask_1.png``, ``NAME_mask_2.png``...
  are further regions of the same image (Al-Dhabyani et al., Data in Brief 2020). They are merged into one label
  (``mask_regions="merge"``, the default) or kept as labels 1, 2, ... (``"labels"``).
- **MSD style**: ``imagesTr/NAME`` with its label map ``labelsTr/NAME`` (Medical Segmentation Decathlon; Antonelli et
  al., Nature Communications 2022), label values as declared in ``dataset.json`` when it lists them.
- a ``mask`` column in ``labels.csv``; ``{split}_masks`` arrays in a genrad ``.npz``.

A mask is stored as uint8 ``(1, *spatial)`` label values (0 background). Rules, each a one-line error: a mask has
its image's size and spacing, one channel, integer values; 0/255 masks (the pyradiomics "Label (1) not present"
trap) are mapped to 0/1 and the mapping recorded; empty masks are allowed (normal images) and counted per class.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from genrad.data.readers import read_image
from genrad.data.sandbox import DataRoot
from genrad.errors import InputError

MASK_NAME = re.compile(r"^(?P<base>.+)_mask(?:_(?P<region>\d+))?$")
REGION_MODES = ("merge", "labels")
MAX_LABEL = 255


def split_masks(files: Sequence[Path]) -> tuple[list[Path], dict[Path, list[Path]]]:
    """The images of a class folder and, per image, its BUSI-style mask files (``NAME_mask[_k].EXT``), in region
    order. A ``_mask`` file without its image is an error."""
    by_name = {_stem(f): f for f in files}
    masks: dict[Path, list[tuple[int, Path]]] = {}
    for file in files:
        match = MASK_NAME.match(_stem(file))
        if match is None:
            continue
        image = by_name.get(match["base"])
        if image is None:
            raise InputError("a mask beside its image (NAME.png and NAME_mask.png)", "a mask without its image",
                             "add the image or remove the mask", source=str(file))
        masks.setdefault(image, []).append((int(match["region"] or 0), file))
    images = [f for f in files if f not in {m for group in masks.values() for _, m in group}]
    return images, {image: [m for _, m in sorted(group)] for image, group in masks.items()}


def _stem(file: Path) -> str:
    name = file.name
    return name[: -len(".nii.gz")] if name.lower().endswith(".nii.gz") else file.stem


def read_mask(files: Sequence[Path], root: DataRoot, *, regions: str = "merge",
              labels: Sequence[int] | None = None) -> tuple[np.ndarray, tuple[float, ...], bool]:
    """One mask (uint8, ``(1, *spatial)``) from one or more region files, its spacing, and whether 0/255 values were
    mapped to 0/1. `labels` are the values a label map may hold (besides 0), when the dataset declares them."""
    parts: list[np.ndarray] = []
    spacing: tuple[float, ...] = ()
    rescaled = False
    for file in files:
        pixels, spacing = read_image(file, root)
        values, was_255 = _label_values(pixels, file, labels)
        if parts and parts[0].shape != values.shape:
            raise InputError("the regions of one image to have one size", f"{parts[0].shape[1:]} and {values.shape[1:]}",
                             "re-export the masks", source=str(file))
        parts.append(values)
        rescaled |= was_255
    if len(parts) == 1:
        return parts[0], spacing, rescaled
    merged = np.zeros_like(parts[0])
    for region, values in enumerate(parts, start=1):
        merged[values > 0] = 1 if regions == "merge" else region
    return merged, spacing, rescaled


def _label_values(pixels: np.ndarray, file: Path, labels: Sequence[int] | None) -> tuple[np.ndarray, bool]:
    if pixels.shape[0] != 1:
        if pixels.shape[0] in (3, 4) and (pixels[:3] == pixels[:1]).all():
            pixels = pixels[:1]  # a grey mask saved as RGB(A)
        else:
            raise InputError("a one-channel mask or label map", f"{pixels.shape[0]} channels", "save the mask as grey",
                             source=str(file))
    if pixels.dtype.kind == "f" and not np.array_equal(pixels, np.round(pixels)):
        raise InputError("integer label values in a mask", "fractional values", "save the mask with integer labels",
                         source=str(file))
    found = np.unique(pixels)
    if found.min() < 0 or found.max() > MAX_LABEL:
        raise InputError(f"mask labels in 0..{MAX_LABEL}", f"values {found.min()}..{found.max()}", "relabel the mask",
                         source=str(file))
    if set(found.tolist()) <= {0, 255} and 255 in found and (labels is None or 255 not in labels):
        return (pixels > 0).astype(np.uint8), True
    if labels is not None:
        unknown = sorted(set(found.tolist()) - {0, *labels})
        if unknown:
            raise InputError(f"label values among the declared {sorted({0, *labels})}", f"label {unknown[0]}",
                             "fix the label map or the labels in dataset.json", source=str(file))
    return pixels.astype(np.uint8), False


def check_geometry(image: tuple[np.ndarray, tuple[float, ...]], mask: tuple[np.ndarray, tuple[float, ...]],
                   image_file: Path, mask_file: Path) -> None:
    """A mask covers its image: the same size, and the same spacing when both carry one."""
    (pixels, spacing), (values, mask_spacing) = image, mask
    if pixels.shape[1:] != values.shape[1:]:
        raise InputError(f"a mask of its image's size {pixels.shape[1:]}", f"size {values.shape[1:]}",
                         "re-export the mask on the image's grid", source=str(mask_file))
    if spacing and mask_spacing and not np.allclose(spacing, mask_spacing, rtol=1e-3):
        raise InputError(f"a mask with its image's spacing {tuple(spacing)}", f"spacing {tuple(mask_spacing)}",
                         f"resample the mask onto {image_file.name}'s grid", source=str(mask_file))


def mask_record(masks: np.ndarray, labels: np.ndarray, class_names: Sequence[str], rescaled: int, regions: str) -> dict[str, Any]:
    """What the preprocessing record says about a cohort's masks: labels found, empty masks per class, mappings."""
    empty = np.logical_not(masks.reshape(len(masks), -1).any(axis=1))
    per_class = {class_names[k]: int(empty[labels == k].sum()) for k in range(len(class_names))}
    record: dict[str, Any] = {"labels": sorted(int(v) for v in np.unique(masks) if v), "regions": regions,
                              "empty_per_class": per_class}
    if rescaled:
        record["mapped_0_255_to_0_1"] = rescaled
    mixed = [name for k, name in enumerate(class_names) if 0 < per_class[name] < int((labels == k).sum())]
    if mixed:
        record["classes_with_some_empty_masks"] = mixed  # a lesion class with an empty mask: worth a look
    return record
