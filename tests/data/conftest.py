"""Writers of small synthetic image files for the folder-loader tests."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pytest


def write_dicom_series(
    folder: Path, volume: np.ndarray, spacing_xyz: tuple[float, float, float], tags: dict[str, str] | None = None
) -> Path:
    """Write `volume` (D, H, W) as one DICOM file per slice with SimpleITK; `tags` maps 'gggg|eeee' to values."""
    import SimpleITK as sitk

    folder.mkdir(parents=True, exist_ok=True)
    image = sitk.GetImageFromArray(volume)
    image.SetSpacing(spacing_xyz)
    series_uid = "1.2.826.0.1.3680043.2.1125." + str(zlib.crc32(folder.name.encode()))
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for z in range(volume.shape[0]):
        slice_ = image[:, :, z]
        position = "\\".join(str(v) for v in image.TransformIndexToPhysicalPoint((0, 0, z)))
        meta = {
            "0008|0016": "1.2.840.10008.5.1.4.1.1.2",
            "0008|0018": f"{series_uid}.{z + 1}",
            "0008|0060": "CT",
            "0020|000d": f"{series_uid}.0",
            "0020|000e": series_uid,
            "0020|0013": str(z + 1),
            "0020|0032": position,
            "0020|0037": "1\\0\\0\\0\\1\\0",
            **(tags or {}),
        }
        for tag, value in meta.items():
            slice_.SetMetaData(tag, value)
        writer.SetFileName(str(folder / f"slice{z:03d}.dcm"))
        writer.Execute(slice_)
    return folder


@pytest.fixture
def dicom_series_writer():
    return write_dicom_series
