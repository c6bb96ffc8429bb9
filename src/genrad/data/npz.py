"""MedMNIST-style `.npz` files: ``{split}_images`` / ``{split}_labels`` arrays, 2D, 3D and RGB.

MedMNIST layouts: ``(N, H, W)`` grey 2D, ``(N, H, W, 3)`` RGB 2D, ``(N, D, H, W)`` grey 3D. Labels are
``(N,)`` or ``(N, 1)``. genrad adds optional arrays, ignored by MedMNIST-style code:
``{split}_clinical__{column}``, ``{split}_truth__{column}``, ``{split}_masks`` (uint8 label maps on the images'
grid), ``class_names``, ``spacing`` and ``spatial_dims`` (which removes the 2D-RGB / 3D ambiguity of 4-D arrays).
"""

from __future__ import annotations

import json
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from genrad.data.cohort import SPLIT_NAMES, Cohort, Split
from genrad.data.intensity import normalise_intensity
from genrad.data.npz_format import CLINICAL_INFIX, MASKS_SUFFIX, TRUTH_INFIX
from genrad.errors import InputError
from genrad.limits import available_memory


def load_npz(path: str | Path, *, intensity: str = "auto") -> Cohort:
    """Load a MedMNIST-compatible `.npz` into a `Cohort` (see `genrad.data.intensity` for `intensity`)."""
    path = Path(path)
    arrays = _read_arrays(path)
    split_names = [name for name in SPLIT_NAMES if f"{name}_images" in arrays]
    split_names += sorted(
        key[: -len("_images")] for key in arrays if key.endswith("_images") and key[: -len("_images")] not in split_names
    )
    if not split_names:
        raise InputError(
            "arrays named '<split>_images' and '<split>_labels' (e.g. train_images)",
            f"arrays {sorted(arrays)[:6]}",
            "save the file with train_images/train_labels (MedMNIST layout)",
            source=str(path),
        )
    spatial_dims = int(arrays["spatial_dims"]) if "spatial_dims" in arrays else None
    raw = {}
    for name in split_names:
        if f"{name}_labels" not in arrays:
            raise InputError(
                f"a '{name}_labels' array beside '{name}_images'",
                "no labels",
                f"add {name}_labels (one integer class per image)",
                source=str(path),
            )
        raw[name] = channel_first(arrays[f"{name}_images"], spatial_dims, name=name, source=str(path))
    images, preprocessing = normalise_intensity(raw, method=intensity, source=str(path))
    splits = {}
    for name in split_names:
        labels = _labels(arrays[f"{name}_labels"], len(raw[name]), name=name, source=str(path))
        splits[name] = _make_split(name, images[name], labels, arrays, source=str(path))
    max_label = max(int(split.labels.max()) for split in splits.values())
    if "class_names" in arrays:
        class_names = tuple(str(c) for c in arrays["class_names"])
    else:
        class_names = tuple(str(k) for k in range(max_label + 1))
    spacing = tuple(float(s) for s in arrays["spacing"]) if "spacing" in arrays else ()
    if "genrad_preprocessing" in arrays:
        preprocessing["saved"] = json.loads(str(arrays["genrad_preprocessing"]))
    return Cohort(
        splits=splits,
        class_names=class_names,
        spacing=spacing,
        source=str(path),
        preprocessing=preprocessing,
        synthetic="synthetic" in arrays,
    )


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        found = "a folder" if path.is_dir() else "not a regular file" if path.exists() else "no such file"
        raise InputError("an existing .npz file", found, "check the path", source=str(path))
    with open(path, "rb") as handle:
        if handle.read(4) != b"PK\x03\x04":
            raise InputError(
                "a .npz (zip) archive", "a file that is not one", "re-save the data with numpy.savez", source=str(path)
            )
    try:
        check_declared_sizes(path)
        with np.load(path, allow_pickle=False) as archive:
            arrays = {member[: -len(".npy")] for member in archive.zip.namelist() if member.endswith(".npy")}
            return {key: archive[key] for key in archive.files if key in arrays}  # other members are never read
    except InputError:
        raise
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, KeyError) as error:
        reason = str(error).split("\n")[0] or type(error).__name__
        raise InputError(
            "a readable .npz archive",
            f"a corrupt or truncated file ({reason})",
            "re-download or re-save the file with numpy.savez",
            source=str(path),
        ) from None


def check_declared_sizes(path: Path, *, limit: int | None = None) -> None:
    """Refuse an archive whose array headers declare more than fits in memory, before reading any data.

    Each ``.npy`` member's header (shape, dtype) is read without its data; the declared bytes plus the
    float32 copy of the images that loading makes must stay under `limit` (default: half of the memory
    available now, `available_memory`). Object arrays, which only unpickling could read, are refused too.
    """
    limit = available_memory() // 2 if limit is None else limit
    needed, largest = 0, ("", (), np.dtype(np.uint8))
    with zipfile.ZipFile(path) as archive:
        for member in archive.infolist():
            if not member.filename.endswith(".npy"):
                continue
            with archive.open(member) as handle:
                version = np.lib.format.read_magic(handle)
                read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                shape, _, dtype = read_header(handle)  # the header only, not the data
            if dtype.hasobject:
                raise InputError("arrays of numbers and strings", f"an object array {member.filename!r}, which only "
                                 "unpickling can read", "genrad never unpickles: re-save it with numeric arrays",
                                 source=str(path))
            count = int(np.prod(shape, dtype=object))
            size = count * dtype.itemsize + (4 * count if member.filename.endswith("_images.npy") else 0)
            needed += size
            if size >= int(np.prod(largest[1], dtype=object)) * largest[2].itemsize:
                largest = (member.filename[: -len(".npy")], shape, dtype)
    if needed > limit:
        name, shape, dtype = largest
        raise InputError(
            f"arrays that fit in memory (at most {limit / 2**30:.3g} GiB here, half the available memory)",
            f"{needed / 2**30:.3g} GiB declared, the largest {name} shaped {' x '.join(map(str, shape))} ({dtype})",
            "use a smaller file (fewer or smaller images) or a machine with more memory",
            source=str(path),
        )


def channel_first(images: np.ndarray, spatial_dims: int | None, *, name: str, source: str) -> np.ndarray:
    """MedMNIST layouts (`genrad.data.npz_format.medmnist_layout`) back to ``(N, C, *spatial)``."""
    if images.ndim == 3:
        return images[:, None]
    if images.ndim == 4:
        is_rgb = spatial_dims == 2 if spatial_dims is not None else images.shape[-1] in (3, 4) and images.shape[1] > 4
        return np.moveaxis(images, -1, 1) if is_rgb else images[:, None]
    if images.ndim == 5:
        return np.moveaxis(images, -1, 1)
    raise InputError(
        "images shaped (N, H, W), (N, H, W, 3) or (N, D, H, W)",
        f"shape {images.shape} for {name}_images",
        "reshape the array to a MedMNIST layout",
        source=source,
    )


def _labels(labels: np.ndarray, n_images: int, *, name: str, source: str) -> np.ndarray:
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise InputError(
            "integer labels shaped (N,) or (N, 1)",
            f"{labels.dtype} labels of shape {labels.shape} in {name}_labels",
            "store one integer class per image (multi-label data is not supported yet)",
            source=source,
        )
    if labels.shape[0] != n_images:
        raise InputError(
            "one label per image",
            f"{n_images} images but {labels.shape[0]} labels in split {name!r}",
            f"make {name}_images and {name}_labels the same length",
            source=source,
        )
    return labels.astype(np.int64)


def _make_split(name: str, images: np.ndarray, labels: np.ndarray, arrays: dict[str, Any], *, source: str) -> Split:
    tables = {}
    for prefix in (CLINICAL_INFIX, TRUTH_INFIX):
        columns = {key[len(name) + len(prefix) :]: arrays[key] for key in arrays if key.startswith(name + prefix)}
        tables[prefix] = pd.DataFrame(columns) if columns else None
    masks = arrays.get(f"{name}{MASKS_SUFFIX}")
    if masks is not None:
        if masks.dtype != np.uint8 or masks.shape != (len(labels), *images.shape[2:]):
            raise InputError(f"uint8 {name}{MASKS_SUFFIX} shaped (N, *spatial) like the images",
                             f"{masks.dtype} shaped {masks.shape}", "store one uint8 label map per image", source=source)
        masks = masks[:, None]
    try:
        return Split(images, labels, clinical=tables[CLINICAL_INFIX], truth=tables[TRUTH_INFIX], name=name, masks=masks)
    except InputError as error:
        raise error.at(source) from None
