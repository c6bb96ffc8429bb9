"""Writing genrad's MedMNIST-style `.npz` (read by `genrad.data.npz.load_npz`) and its array names.

Images are stored as MedMNIST does (`medmnist_layout`); clinical and ground-truth columns as
``{split}{CLINICAL_INFIX}{column}`` and ``{split}{TRUTH_INFIX}{column}`` arrays; masks as ``{split}{MASKS_SUFFIX}``
(uint8, ``(N, *spatial)``, the images' grid).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from genrad.errors import InputError
from genrad.provenance import atomic_path

if TYPE_CHECKING:
    from genrad.data.cohort import Cohort

CLINICAL_INFIX = "_clinical__"
TRUTH_INFIX = "_truth__"
MASKS_SUFFIX = "_masks"


def save_npz(cohort: Cohort, path: str | Path) -> Path:
    """Write `cohort` as a MedMNIST-compatible `.npz`, atomically.

    Images that are exact multiples of 1/255 are stored as uint8 (as MedMNIST does), others as
    float32, so that `load_npz(save_npz(c))` gives identical arrays and the same content hash.
    """
    path = Path(path)
    if path.suffix != ".npz" or path.is_dir():
        found = "a folder" if path.is_dir() else f"suffix {path.suffix!r}"
        raise InputError("an output file name ending in .npz", found, "name the output FILE.npz", source=str(path))
    arrays: dict[str, Any] = {}
    for name, split in cohort.splits.items():
        arrays[f"{name}_images"] = medmnist_layout(_compact(split.images))
        arrays[f"{name}_labels"] = split.labels.reshape(-1, 1)
        if split.masks is not None:
            arrays[f"{name}{MASKS_SUFFIX}"] = split.masks[:, 0]
        for prefix, table in ((CLINICAL_INFIX, split.clinical), (TRUTH_INFIX, split.truth)):
            if table is not None:
                for column in table.columns:
                    values = table[column].to_numpy()
                    arrays[f"{name}{prefix}{column}"] = values.astype(str) if values.dtype == object else values
    arrays["class_names"] = np.asarray(cohort.class_names, dtype=str)
    arrays["spatial_dims"] = np.asarray(cohort.spatial_dims)
    arrays["spacing"] = np.asarray(cohort.spacing, dtype=np.float64)
    if cohort.synthetic:
        arrays["synthetic"] = np.asarray(True)
    arrays["genrad_preprocessing"] = np.asarray(json.dumps(dict(cohort.preprocessing), sort_keys=True))
    with atomic_path(path) as temp, open(temp, "wb") as handle:
        np.savez_compressed(handle, **arrays)
    return path


def medmnist_layout(images: np.ndarray) -> np.ndarray:
    """Channel-first images as MedMNIST stores them: ``(N, *spatial)`` for one channel, channels last otherwise."""
    if images.shape[1] == 1:
        return images[:, 0]
    return np.moveaxis(images, 1, -1)


def _compact(images: np.ndarray) -> np.ndarray:
    quantised = np.rint(images * 255.0)
    if quantised.min() >= 0 and quantised.max() <= 255 and np.array_equal(quantised.astype(np.float32) / 255.0, images):
        return quantised.astype(np.uint8)
    return images
