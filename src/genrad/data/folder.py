"""Folders of images: a labels CSV or class-named sub-folders; PNG/JPEG/TIFF, NIfTI/NRRD/MHA and DICOM.

Two layouts:

1. **A labels CSV** (``labels.csv`` in the folder, or ``labels_csv=``) with columns
   ``filename,label[,split][,clinical columns...]``. ``filename`` is relative to the CSV's folder and
   names a 2D image (PNG, JPEG, TIFF, BMP, read with Pillow), an image or volume read with SimpleITK
   (NIfTI ``.nii``/``.nii.gz``, NRRD, MHA/MHD, a single DICOM ``.dcm``) or a folder holding one DICOM
   series (SimpleITK's ``ImageSeriesReader``). ``label`` is an integer class or a class name; every other
   column (except ``split``) becomes the clinical table.
2. **Class-named sub-folders**: ``ROOT/<class>/<image>``, optionally under ``ROOT/{train,val,test}/``.
   Sub-folders of a class folder are read as DICOM series.

Splits come from the ``split`` column or the split folders. Without either, every image is in
``train``: genrad does not invent a split behind your back; pass ``split_fractions=(0.7, 0.1, 0.2)``
for a seeded split stratified by class.

Every change to the pixels is an explicit option recorded in ``Cohort.preprocessing``: the intensity
mapping (`genrad.data.intensity`), resizing (``size=``, with MONAI's ``Resize``; images of different
sizes without it are an error) and channel conversion (``channels=1`` for grey, ``3`` for RGB).
Spacing (mm, in array axis order) comes from the SimpleITK readers and must agree between images;
after resizing it is scaled, or dropped (and recorded) when it differs between images. PNG/JPEG/TIFF
carry none.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.progress import Progress

from genrad.data.cohort import MAX_CLASSES, MIN_SPATIAL_SIZE, SPLIT_NAMES, Cohort, Split
from genrad.data.intensity import normalise_intensity
from genrad.data.readers import dicom_tag, read_image, visible
from genrad.data.sandbox import DataRoot
from genrad.data.splits import stratified_split
from genrad.errors import InputError
from genrad.progress import progress_bar

LABELS_CSV = "labels.csv"
_RESERVED = ("filename", "label", "split")
_LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601 weights, as Pillow's "L" conversion


def load_folder(
    path: str | Path,
    *,
    intensity: str = "auto",
    labels_csv: str | Path | None = None,
    size: int | Sequence[int] | None = None,
    class_names: Sequence[str] | None = None,
    channels: int | None = None,
    split_fractions: Sequence[float] | None = None,
    split_seed: int = 0,
    dicom_tags: Sequence[str] = (),
    allow_outside_root: bool = False,
) -> Cohort:
    """Load a folder of images (see the module docstring for the layouts) into a `Cohort`.

    `class_names` fixes the label order (default: integers as given, names sorted); `dicom_tags` adds
    clinical columns read from DICOM headers with pydicom (e.g. ``("PatientAge", "PatientSex")``).
    Every file read lies inside the folder (the CSV's folder for a CSV layout) unless `allow_outside_root`
    (`genrad.data.sandbox`).
    """
    root = Path(path)
    if not root.is_dir():
        raise InputError("a folder of images", "no such folder", "check the path", source=str(root))
    if labels_csv is not None or (root / LABELS_CSV).exists():
        csv = Path(labels_csv) if labels_csv is not None else root / LABELS_CSV
        sandbox = DataRoot(csv.parent, allow_outside_root)
        table, split_origin = _csv_table(csv, sandbox)
        found_classes: list[str] = []
    else:
        sandbox = DataRoot(root, allow_outside_root)
        table, split_origin, found_classes = _subfolder_table(sandbox)
    names, labels = _encode_labels(table["label"], class_names or found_classes or None, source=str(root))
    files = list(table["filename"])
    with progress_bar(*Progress.get_default_columns(), transient=True, disable=len(files) < 100) as bar:
        raws = [read_image(file, sandbox) for file in bar.track(files, description="reading images")]
    pixels, spacing, record = _stack(raws, files, size=size, channels=channels)
    for tag in dicom_tags:
        if tag in table.columns:
            raise InputError("DICOM tags that are not CSV columns", f"{tag!r} in both", "drop one", source=str(root))
        table[tag] = [dicom_tag(file, tag) for file in files]
    index, record["split"] = _split_indices(table, labels, split_origin, split_fractions, split_seed, source=str(root))
    images, intensity_record = normalise_intensity({k: pixels[v] for k, v in index.items()}, method=intensity,
                                                   source=str(root))
    record = intensity_record | record
    if allow_outside_root:
        record["sandbox"] = "off: files outside the data folder allowed (allow_outside_root)"
    clinical = table.drop(columns=[c for c in _RESERVED if c in table.columns])
    splits = {}
    for name, rows in index.items():
        table_rows = clinical.iloc[rows].reset_index(drop=True) if len(clinical.columns) else None
        try:
            splits[name] = Split(images[name], labels[rows], clinical=table_rows, name=name)
        except InputError as error:
            raise error.at(str(root)) from None
    return Cohort(splits, names, spacing=spacing, source=str(root), preprocessing=record)


def _csv_table(csv: Path, sandbox: DataRoot) -> tuple[pd.DataFrame, str | None]:
    """Rows of the labels CSV, with `filename` resolved against the CSV's folder."""
    if not csv.is_file():
        raise InputError("a labels CSV", "no such file", f"write {LABELS_CSV} with columns filename,label", source=str(csv))
    try:
        frame = pd.read_csv(csv)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        reason = str(error).split("\n")[0]
        raise InputError("a readable CSV", f"a malformed file ({reason})", "save it as UTF-8 CSV", source=str(csv)) from None
    missing_columns = {"filename", "label"} - set(frame.columns)
    if missing_columns or frame.empty:
        raise InputError(
            "a header filename,label[,split][,clinical columns] and at least one row",
            f"columns {list(frame.columns)} and {len(frame)} rows",
            "add the missing columns or rows",
            source=str(csv),
        )
    if frame["filename"].isna().any() or frame["label"].isna().any():
        row = int(np.flatnonzero(frame["filename"].isna() | frame["label"].isna())[0]) + 2
        raise InputError("a filename and a label on every row", f"an empty cell on line {row}", "fill it", source=str(csv))
    files = [csv.parent / str(name) for name in frame["filename"]]
    missing = [(line + 2, file) for line, file in enumerate(files) if not file.exists()]
    if missing:
        line, first = missing[0]
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise InputError(
            "every file named in the CSV to exist",
            f"missing file {first} (line {line}){more}",
            "fix the filename column (paths are relative to the CSV's folder) or add the files",
            source=str(csv),
        )
    for line, file in enumerate(files):
        try:
            sandbox.entry(file)
        except InputError as error:
            raise error.at(f"{csv} line {line + 2}") from None
    frame["filename"] = files
    if "split" in frame.columns:
        if frame["split"].isna().any():
            raise InputError("a split on every row", "empty split cells", "fill the split column", source=str(csv))
        frame["split"] = frame["split"].astype(str)
        return frame, "split column"
    return frame, None


def _subfolder_table(sandbox: DataRoot) -> tuple[pd.DataFrame, str | None, list[str]]:
    """Rows for ROOT/<class>/<image> or ROOT/<split>/<class>/<image>, and the class folder names."""
    root = sandbox.path
    folders = visible(root, directories=True)
    for folder in folders:
        sandbox.folder(folder)
    if not folders:
        raise InputError(
            f"a {LABELS_CSV} or class-named sub-folders", "neither", f"add {LABELS_CSV} (filename,label)", source=str(root)
        )
    split_folders = [f for f in folders if f.name in SPLIT_NAMES]
    if split_folders and len(split_folders) != len(folders):
        raise InputError(
            "either split folders (train/val/test) or class folders",
            f"both: {[f.name for f in folders]}",
            "move the class folders under train/",
            source=str(root),
        )
    layout = [(f.name, f) for f in split_folders] if split_folders else [(None, root)]
    rows, classes = [], set()
    for split, base in layout:
        count = len(rows)
        for class_folder in visible(base, directories=True):
            sandbox.folder(class_folder)
            classes.add(class_folder.name)
            rows += [{"filename": item, "label": class_folder.name, "split": split} for item in visible(class_folder)]
        if split is not None and len(rows) == count:
            raise InputError("at least one image per split", "an empty split folder", "add images or remove it", source=str(base))
    if not rows:
        raise InputError("images in the class folders", "none", "add images", source=str(root))
    table = pd.DataFrame(rows)
    if not split_folders:
        table = table.drop(columns="split")
    return table, "split folders" if split_folders else None, sorted(classes)


def _encode_labels(values: pd.Series, class_names: Sequence[str] | None, *, source: str) -> tuple[tuple[str, ...], np.ndarray]:
    """Integer labels and class names from integer classes or class names."""
    is_int = pd.api.types.is_integer_dtype(values)
    if is_int and (values.min() < 0 or values.max() >= MAX_CLASSES):
        bad = values.min() if values.min() < 0 else values.max()
        raise InputError(f"integer labels in 0..{MAX_CLASSES - 1}", f"label {bad}", "encode classes as 0..K-1 or by name",
                         source=source)
    if class_names is None:
        if is_int:
            return tuple(str(k) for k in range(int(values.max()) + 1)), values.to_numpy(np.int64)
        class_names = sorted(values.astype(str).unique())
    names = tuple(str(c) for c in class_names)
    lookup = {name: k for k, name in enumerate(names)}
    if is_int:
        lookup |= {str(k): k for k in range(len(names))}
    unknown = sorted(set(values.astype(str)) - set(lookup))
    if unknown:
        raise InputError(
            f"labels among {list(names)}" + (" or 0..K-1" if is_int else ""),
            f"label {unknown[0]!r}",
            "fix the label or pass class_names=... listing every class",
            source=source,
        )
    return names, np.array([lookup[v] for v in values.astype(str)], dtype=np.int64)


def _stack(
    raws: list[tuple[np.ndarray, tuple[float, ...]]],
    files: list[Path],
    *,
    size: int | Sequence[int] | None,
    channels: int | None,
) -> tuple[np.ndarray, tuple[float, ...], dict[str, Any]]:
    """One (N, C, *spatial) array: channel conversion and resizing only when asked, spacing checked."""
    record: dict[str, Any] = {}
    dims = {p.ndim - 1 for p, _ in raws}
    if len(dims) > 1:
        _disagree("all 2D or all 3D images", [p.ndim - 1 for p, _ in raws], files, "split 2D and 3D data into two folders")
    pixels = [p for p, _ in raws]
    if channels is not None:
        pixels = [_convert_channels(p, channels, file) for p, file in zip(pixels, files, strict=True)]
        record["channels"] = channels
    _disagree("one channel count", [p.shape[0] for p in pixels], files, "pass channels=1 (grey) or channels=3 (RGB)")
    spacings = [s for _, s in raws]
    if size is not None:
        target = _target_shape(size, dims.pop())
        spacings = [tuple(s * n / t for s, n, t in zip(sp, p.shape[1:], target)) if sp else () for sp, p in zip(spacings, pixels)]
        changed = [k for k, p in enumerate(pixels) if p.shape[1:] != target]
        pixels = [_resize(p, target) if p.shape[1:] != target else p for p in pixels]
        record["resize"] = {"size": list(target), "resized": len(changed), "method": "monai.transforms.Resize",
                            "mode": "bilinear" if len(target) == 2 else "trilinear", "anti_aliasing": True}
    _disagree("images of one size", [p.shape[1:] for p in pixels], files, "pass size=... to resize them (recorded)")
    rounded = [tuple(np.round(s, 4)) for s in spacings]
    if size is not None and len(set(rounded)) > 1:
        record["resize"]["spacing"] = "dropped: it differs between the resized images"
        return np.stack(pixels), (), record
    _disagree("one pixel spacing", rounded, files, "resample the volumes to one spacing first (e.g. SimpleITK Resample)")
    return np.stack(pixels), spacings[0], record


def _disagree(expected: str, values: list[Any], files: list[Path], fix: str) -> None:
    first = values[0]
    other = next((k for k, v in enumerate(values) if v != first), None)
    if other is not None:
        raise InputError(expected, f"{first} in {files[0]} but {values[other]} in {files[other]}", fix,
                         source=str(files[other]))


def _convert_channels(pixels: np.ndarray, channels: int, file: Path) -> np.ndarray:
    if channels not in (1, 3) or pixels.shape[0] not in (1, 3):
        raise InputError("channels=1 or 3 and grey or RGB images", f"channels={channels} for {pixels.shape[0]} channels",
                         "pass channels=1 or channels=3", source=str(file))
    if pixels.shape[0] == channels:
        return pixels
    if channels == 3:
        return np.repeat(pixels, 3, axis=0)
    grey = np.tensordot(_LUMA, pixels.astype(np.float64), axes=1)[None]
    return _like(grey, pixels.dtype)


def _target_shape(size: int | Sequence[int], dims: int) -> tuple[int, ...]:
    target = (int(size),) * dims if np.isscalar(size) else tuple(int(s) for s in size)
    if len(target) != dims or min(target) < MIN_SPATIAL_SIZE:
        raise InputError(f"size: one int or {dims} ints >= {MIN_SPATIAL_SIZE}", repr(size), "e.g. size=64")
    return target


def _resize(pixels: np.ndarray, target: tuple[int, ...]) -> np.ndarray:
    """Resample to `target` (MONAI Resize, linear with anti-aliasing); integer images stay integer."""
    from monai.transforms import Resize

    mode = "bilinear" if len(target) == 2 else "trilinear"
    resized = np.asarray(Resize(target, mode=mode, anti_aliasing=True)(pixels.astype(np.float32)), dtype=np.float64)
    return _like(resized, pixels.dtype)


def _like(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """`values` cast to `dtype`, rounded and clipped to its range for integer types."""
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.rint(values), info.min, info.max).astype(dtype)
    return values.astype(dtype)


def _split_indices(
    table: pd.DataFrame,
    labels: np.ndarray,
    origin: str | None,
    fractions: Sequence[float] | None,
    seed: int,
    *,
    source: str,
) -> tuple[dict[str, np.ndarray], Any]:
    """Row indices per split, and how the split was made (for the preprocessing record)."""
    if origin is not None:
        if fractions is not None:
            raise InputError("split_fractions only without a split column or split folders", origin,
                             "drop split_fractions or the given split", source=source)
        found = set(table["split"])
        order = [n for n in SPLIT_NAMES if n in found] + sorted(found - set(SPLIT_NAMES))
        return {name: np.flatnonzero(table["split"].to_numpy() == name) for name in order}, origin
    if fractions is None:
        return {"train": np.arange(len(labels))}, "all in train (no split given)"
    if len(fractions) != 3 or min(fractions) <= 0 or abs(sum(fractions) - 1) > 1e-6:
        raise InputError("three positive split_fractions summing to 1", repr(tuple(fractions)), "e.g. (0.7, 0.1, 0.2)",
                         source=source)
    rng = np.random.default_rng(seed)
    try:
        index = stratified_split(labels, rng, dict(zip(SPLIT_NAMES, fractions, strict=True)))
    except InputError as error:
        raise error.at(source) from None
    return index, {"fractions": list(fractions), "seed": seed, "stratified": True}
