"""Folders of images: a labels CSV, class-named sub-folders or an MSD task; PNG/JPEG/TIFF, NIfTI/NRRD/MHA and DICOM.

Three layouts:

1. **A labels CSV** (``labels.csv`` in the folder, or ``labels_csv=``) with columns
   ``filename,label[,split][,clinical columns...]``. ``filename`` is relative to the CSV's folder and
   names a 2D image (PNG, JPEG, TIFF, BMP, read with Pillow), an image or volume read with SimpleITK
   (NIfTI ``.nii``/``.nii.gz``, NRRD, MHA/MHD, a single DICOM ``.dcm``) or a folder holding one DICOM
   series (SimpleITK's ``ImageSeriesReader``). ``label`` is an integer class or a class name; every other
   column (except ``split`` and ``mask``, a mask file per image) becomes the clinical table.
2. **Class-named sub-folders**: ``ROOT/<class>/<image>``, optionally under ``ROOT/{train,val,test}/``.
   Sub-folders of a class folder are read as DICOM series; ``NAME_mask[_k].EXT`` beside ``NAME.EXT`` is its mask
   (BUSI style, `genrad.data.masks`). A root that holds one folder of class folders (an archive's wrapper, as
   ``busi/Dataset_BUSI_with_GT/``) is read through it.
3. **An MSD task**: ``ROOT/imagesTr/NAME`` with label maps ``ROOT/labelsTr/NAME`` (labels from ``dataset.json``
   when it lists them); no class labels, so one class ``all``.

Splits come from the ``split`` column or the split folders. Without either, every image is in
``train``: genrad does not invent a split behind your back; pass ``split_fractions=(0.7, 0.1, 0.2)``
for a seeded split stratified by class.

Every change to the pixels is an explicit option recorded in ``Cohort.preprocessing``: the intensity
mapping (`genrad.data.intensity`), resizing and channel conversion (`genrad.data.geometry`).
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

from genrad.data.cohort import MAX_CLASSES, SPLIT_NAMES, Cohort, Split
from genrad.data.geometry import stack_images
from genrad.data.intensity import check_method, normalise_intensity
from genrad.data.masks import REGION_MODES, check_geometry, mask_record, read_mask, split_masks
from genrad.data.readers import IMAGE_SUFFIXES, SITK_SUFFIXES, dicom_tag, read_image, suffix_of, visible
from genrad.data.sandbox import DataRoot
from genrad.data.splits import check_fractions, stratified_split
from genrad.errors import InputError
from genrad.progress import progress_bar

LABELS_CSV = "labels.csv"
MSD_FOLDERS = ("imagesTr", "labelsTr")
_RESERVED = ("filename", "label", "split", "mask")


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
    mask_regions: str = "merge",
) -> Cohort:
    """Load a folder of images (see the module docstring for the layouts) into a `Cohort`.

    `class_names` fixes the label order (default: integers as given, names sorted); `dicom_tags` adds
    clinical columns read from DICOM headers with pydicom (e.g. ``("PatientAge", "PatientSex")``).
    Every file read lies inside the folder (the CSV's folder for a CSV layout) unless `allow_outside_root`
    (`genrad.data.sandbox`). Masks found beside the images are read into ``Split.masks``, several regions of one
    image merged or kept as labels (`mask_regions`, `genrad.data.masks`).
    """
    root = Path(path)
    if not root.is_dir():
        raise InputError("a folder of images", "no such folder", "check the path", source=str(root))
    check_method(intensity)
    if mask_regions not in REGION_MODES:
        raise InputError(f"mask_regions one of {REGION_MODES}", repr(mask_regions), "pass merge or labels", argument="mask_regions")
    declared: list[int] | None = None
    if labels_csv is not None or (root / LABELS_CSV).exists():
        csv = Path(labels_csv) if labels_csv is not None else root / LABELS_CSV
        sandbox = DataRoot(csv.parent, allow_outside_root)
        table, split_origin = _csv_table(csv, sandbox)
        found_classes: list[str] = []
    elif all((root / name).is_dir() for name in MSD_FOLDERS):
        sandbox = DataRoot(root, allow_outside_root)
        table, split_origin, found_classes, declared = _msd_table(sandbox)
    else:
        sandbox = DataRoot(root, allow_outside_root)
        table, split_origin, found_classes = _subfolder_table(sandbox)
    names, labels = _encode_labels(table["label"], class_names or found_classes or None, source=str(root))
    files = list(table["filename"])
    mask_files = _mask_column(table)
    with progress_bar(*Progress.get_default_columns(), transient=True, disable=len(files) < 100) as bar:
        raws = [read_image(file, sandbox) for file in bar.track(files, description="reading images")]
    masks, rescaled = None, 0
    if mask_files is not None:
        read = [read_mask(group, sandbox, regions=mask_regions, labels=declared) for group in mask_files]
        for raw, (values, mask_spacing, _), file, group in zip(raws, read, files, mask_files, strict=True):
            check_geometry(raw, (values, mask_spacing), file, group[0])
        masks, rescaled = [values for values, _, _ in read], sum(was_255 for _, _, was_255 in read)
    pixels, spacing, stacked_masks, record = stack_images(raws, files, size=size, channels=channels, masks=masks)
    if stacked_masks is not None:
        record["masks"] = mask_record(stacked_masks, labels, names, rescaled, mask_regions)
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
            splits[name] = Split(images[name], labels[rows], clinical=table_rows, name=name,
                                 masks=None if stacked_masks is None else stacked_masks[rows])
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
    first_line: dict[Path, int] = {}
    for line, file in enumerate(files):
        try:
            target = sandbox.entry(file)
        except InputError as error:
            raise error.at(f"{csv} line {line + 2}") from None
        if target in first_line:
            raise InputError("each file once in the CSV", f"{file.name} on lines {first_line[target]} and {line + 2}",
                             "remove the repeated row", source=str(csv))
        first_line[target] = line + 2
    frame["filename"] = files
    if "mask" in frame.columns:
        masks = [None if pd.isna(name) else csv.parent / str(name) for name in frame["mask"]]
        for mask in masks:
            if mask is not None:
                sandbox.file(mask)
        frame["mask"] = [None if mask is None else [mask] for mask in masks]
    if "split" in frame.columns:
        if frame["split"].isna().any():
            raise InputError("a split on every row", "empty split cells", "fill the split column", source=str(csv))
        frame["split"] = frame["split"].astype(str)
        return frame, "split column"
    return frame, None


def _subfolder_table(sandbox: DataRoot, root: Path | None = None) -> tuple[pd.DataFrame, str | None, list[str]]:
    """Rows for ROOT/<class>/<image> or ROOT/<split>/<class>/<image>, and the class folder names (ROOT: the sandbox's
    folder, or a wrapper folder inside it)."""
    root = sandbox.path if root is None else root
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
    if _is_wrapper(folders):
        return _subfolder_table(sandbox, folders[0])
    layout = [(f.name, f) for f in split_folders] if split_folders else [(None, root)]
    rows: list[dict[str, Any]] = []
    classes: set[str] = set()
    for split, base in layout:
        count = len(rows)
        for class_folder in visible(base, directories=True):
            sandbox.folder(class_folder)
            classes.add(class_folder.name)
            images, masks = split_masks(visible(class_folder))
            rows += [{"filename": item, "label": class_folder.name, "split": split, "mask": masks.get(item)} for item in images]
        if split is not None and len(rows) == count:
            raise InputError("at least one image per split", "an empty split folder", "add images or remove it", source=str(base))
    if not rows:
        raise InputError("images in the class folders", "none", "add images", source=str(root))
    table = pd.DataFrame(rows)
    if not split_folders:
        table = table.drop(columns="split")
    if table["mask"].isna().all():
        table = table.drop(columns="mask")
    return table, "split folders" if split_folders else None, sorted(classes)


def _is_wrapper(folders: list[Path]) -> bool:
    """One folder whose sub-folders hold image files (not DICOM slices): an archive's wrapper around class folders."""
    if len(folders) != 1 or folders[0].name in SPLIT_NAMES:
        return False
    inner = visible(folders[0], directories=True)
    suffixes = {suffix_of(f) for sub in inner for f in visible(sub) if f.is_file()}
    return bool(inner) and bool(suffixes) and suffixes <= set(IMAGE_SUFFIXES + SITK_SUFFIXES) - {".dcm"}


def _msd_table(sandbox: DataRoot) -> tuple[pd.DataFrame, None, list[str], list[int] | None]:
    """Rows for an MSD task: imagesTr/NAME with labelsTr/NAME (NAME_0000 images pair with NAME), one class; and the
    label values that ``dataset.json`` declares, if it does."""
    root = sandbox.path
    images, label_maps = (visible(sandbox.folder(root / name)) for name in MSD_FOLDERS)
    by_name = {f.name: f for f in label_maps}
    rows = []
    for image in images:
        name = image.name if image.name in by_name else image.name.replace("_0000.", ".", 1)
        if name not in by_name:
            raise InputError("a label map in labelsTr/ for every image in imagesTr/", "an image without its label map",
                             "add the label map or remove the image", source=str(image))
        rows.append({"filename": image, "label": "all", "mask": [by_name[name]]})
    if not rows:
        raise InputError("images in imagesTr/", "none", "add images", source=str(root))
    return pd.DataFrame(rows), None, ["all"], _declared_labels(root / "dataset.json", sandbox)


def _declared_labels(file: Path, sandbox: DataRoot) -> list[int] | None:
    """The non-zero label values of an MSD ``dataset.json`` (``"labels": {"0": "background", "1": ...}``)."""
    import json

    if not file.exists():
        return None
    text = sandbox.file(file).read_bytes()[: 1 << 20]
    try:
        payload = json.loads(text)
        return sorted(int(value) for value in payload["labels"] if int(value) > 0) if "labels" in payload else None
    except (ValueError, AttributeError, TypeError):
        raise InputError("a dataset.json whose labels map integer values to names", "another layout",
                         "fix or remove dataset.json", source=str(file)) from None


def _mask_column(table: pd.DataFrame) -> list[list[Path]] | None:
    """The mask files of every row, or None when the data has no masks; some rows without a mask is an error."""
    if "mask" not in table.columns:
        return None
    groups = list(table["mask"])
    missing = [file for file, group in zip(table["filename"], groups, strict=True) if not group]
    if missing:
        raise InputError("a mask for every image, or for none", f"{len(missing)} image(s) without one",
                         "add NAME_mask files (an empty mask for a normal image) or drop the masks", source=str(missing[0]))
    return groups


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
    rng = np.random.default_rng(seed)
    try:
        index = stratified_split(labels, rng, check_fractions(fractions, source))
    except InputError as error:
        raise error.at(source) from None
    return index, {"fractions": list(fractions), "seed": seed, "stratified": True}
