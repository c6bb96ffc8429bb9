"""Reading one image file (or DICOM series folder) of a dataset folder, inside its `DataRoot`.

PNG / JPEG / TIFF / BMP with Pillow; NIfTI, NRRD, MHA / MHD and single DICOM files with SimpleITK; a folder
holding one DICOM series with SimpleITK's ``ImageSeriesReader``. Every path is checked by the sandbox
(`genrad.data.sandbox`) and every image's declared size before its pixels are decoded.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from genrad.data.cohort import MIN_SPATIAL_SIZE
from genrad.data.sandbox import DataRoot, check_voxels
from genrad.errors import InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
SITK_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd", ".dcm")


def suffix_of(file: Path) -> str:
    """The lower-case suffix, ``.nii.gz`` counted as one."""
    return "".join(file.suffixes[-2:]).lower() if file.name.lower().endswith(".nii.gz") else file.suffix.lower()


def read_image(file: Path, root: DataRoot) -> tuple[np.ndarray, tuple[float, ...]]:
    """Pixels (C, *spatial) in the file's own dtype, and the spacing per spatial axis (() if none)."""
    suffix = suffix_of(file)
    try:
        if root.entry(file).is_dir():
            pixels, spacing = _read_dicom_series(file, root)
        elif suffix in IMAGE_SUFFIXES:
            pixels, spacing = _read_pillow(file), ()
        elif suffix in SITK_SUFFIXES:
            pixels, spacing = _read_sitk(file)
        else:
            raise InputError(
                f"an image file ({', '.join(IMAGE_SUFFIXES + SITK_SUFFIXES)}) or a DICOM series folder",
                f"suffix {suffix or 'none'!r}",
                "convert it or remove it from the folder",
                source=str(file),
            )
    except InputError:
        raise
    except (OSError, RuntimeError, ValueError, SyntaxError) as error:
        reason = str(error).strip().split("\n")[-1][:120] or type(error).__name__
        raise InputError("a readable image", f"an unreadable file ({reason})", "re-export or remove it", source=str(file)) from None
    if pixels.ndim not in (3, 4) or min(pixels.shape[1:]) < MIN_SPATIAL_SIZE:
        raise InputError(
            f"a 2D or 3D image of at least {MIN_SPATIAL_SIZE} pixels per axis",
            f"shape {pixels.shape[1:]}",
            "remove the file or fix its export",
            source=str(file),
        )
    if pixels.dtype.kind not in "biuf" or (pixels.dtype.kind == "f" and not np.isfinite(pixels).all()):
        raise InputError("finite, real pixel values", f"{pixels.dtype} pixels with NaN/inf or non-real values",
                         "fix or remove the image", source=str(file))
    return pixels, spacing


def _read_pillow(file: Path) -> np.ndarray:
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the size check below decides
        try:
            opened = Image.open(file)
        except Image.DecompressionBombError:
            raise InputError("an image of a size genrad can read", "a decompression bomb (Pillow's limit)",
                             "downsample it before loading", source=str(file)) from None
    with opened as image:
        check_voxels(image.size[::-1], len(image.getbands()), str(file))
        image.load()
        converted = (image.convert("L") if image.mode in ("1", "LA") else
                     image.convert("RGB") if image.mode in ("P", "PA", "RGBA", "CMYK", "YCbCr", "LAB", "HSV") else image)
        pixels = np.asarray(converted)
    return pixels[None] if pixels.ndim == 2 else np.moveaxis(pixels, -1, 0)


def _read_sitk(file: Path) -> tuple[np.ndarray, tuple[float, ...]]:
    """One SimpleITK file: its header first (size, spacing), then its pixels."""
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(file))
    reader.ReadImageInformation()
    check_voxels(reader.GetSize(), reader.GetNumberOfComponents(), str(file))
    spacing = reader.GetSpacing()
    if not all(np.isfinite(s) and s > 0 for s in spacing):
        raise InputError("a positive, finite pixel spacing", f"spacing {tuple(spacing)}", "fix the header's spacing",
                         source=str(file))
    if suffix_of(file) in (".nii", ".nii.gz"):
        _check_nifti_finite(file)
    return sitk_array(reader.Execute())


def _check_nifti_finite(file: Path) -> None:
    """ITK reads NaN / inf voxels of a float NIfTI as 0, silently: such a file is refused (read with nibabel)."""
    import nibabel

    image: Any = nibabel.load(file)  # a Nifti1Image / Nifti2Image: the header's dtype and the voxel data proxy
    if image.get_data_dtype().kind == "f" and not np.isfinite(np.asanyarray(image.dataobj)).all():
        raise InputError("finite voxel values", "NaN or inf voxels (which ITK would read as 0)", "fix or remove the volume",
                         source=str(file))


def sitk_array(image: Any) -> tuple[np.ndarray, tuple[float, ...]]:
    """SimpleITK image -> (C, *spatial) array and spacing in array axis order; a 1-slice volume is 2D."""
    import SimpleITK as sitk

    pixels = sitk.GetArrayFromImage(image)
    spacing = tuple(float(s) for s in reversed(image.GetSpacing()))
    pixels = np.moveaxis(pixels, -1, 0) if image.GetNumberOfComponentsPerPixel() > 1 else pixels[None]
    if pixels.ndim == 4 and pixels.shape[1] == 1:
        pixels, spacing = pixels[:, 0], spacing[1:]
    return pixels, spacing


def visible(folder: Path, *, directories: bool = False) -> list[Path]:
    """The entries of `folder` that are not hidden (only folders with `directories`), sorted."""
    return sorted(p for p in folder.iterdir() if not p.name.startswith(".") and (p.is_dir() or not directories))


def _read_dicom_series(folder: Path, root: DataRoot) -> tuple[np.ndarray, tuple[float, ...]]:
    """One DICOM series from a folder; any file of the folder that is not part of it is an error."""
    import SimpleITK as sitk

    slices = [root.file(p) for p in visible(folder) if not p.is_dir()]
    reader = sitk.ImageSeriesReader()
    series = reader.GetGDCMSeriesIDs(str(folder))
    if len(series) != 1:
        raise InputError(
            "a folder holding exactly one readable DICOM series",
            f"{len(series)} series",
            "put each series in its own folder" if series else "check that the folder holds valid DICOM files",
            source=str(folder),
        )
    names = reader.GetGDCMSeriesFileNames(str(folder), series[0])
    stray = sorted(set(slices) - {Path(n).resolve() for n in names})
    if stray:
        raise InputError("only readable DICOM slices of one series in the folder", "an unreadable or foreign file",
                         "remove or replace it", source=str(stray[0]))
    reader.SetFileNames(names)
    image = reader.Execute()
    if image.HasMetaDataKey("ITK_non_uniform_sampling_deviation"):
        raise InputError("evenly spaced slices", "missing slices or uneven slice positions",
                         "check the series is complete", source=str(folder))
    return sitk_array(image)


def dicom_tag(file: Path, keyword: str) -> str | None:
    """A DICOM header value (pydicom keyword, e.g. PatientAge) of a DICOM file or series; None otherwise."""
    import pydicom

    first = next((p for p in visible(file) if p.is_file()), None) if file.is_dir() else file
    if first is None or not (file.is_dir() or file.suffix.lower() == ".dcm"):
        return None
    value = pydicom.dcmread(first, stop_before_pixels=True, specific_tags=[keyword]).get(keyword)
    return None if value is None else str(value)
