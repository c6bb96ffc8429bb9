"""Writers for merged output: a byte-reproducible, streamed `.npz`, and per-image PNG / NIfTI files.

`StreamingNpz` writes a NumPy ``.npz`` (a zip of ``.npy`` members) one member at a time, and a large
member chunk by chunk (header first, then raw bytes), so merging 100k shards never holds more than
one shard in memory. Zip timestamps and permissions are fixed, so the same arrays give the same
bytes. PNG files carry a ``genrad:synthetic`` text chunk; NIfTI files a ``descrip`` starting with
``SYNTHETIC``.
"""

from __future__ import annotations

import contextlib
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np

from genrad.errors import InputError

ZIP_DATE = (1980, 1, 1, 0, 0, 0)
FORMATS = ("npz", "png", "nifti")


class StreamingNpz:
    """A deterministic ``.npz`` writer: ``write(name, array)`` or ``with stream(name, dtype, shape) as f``."""

    def __init__(self, handle: IO[bytes]) -> None:
        self.archive = zipfile.ZipFile(handle, mode="w", compression=zipfile.ZIP_DEFLATED, allowZip64=True)

    def __enter__(self) -> StreamingNpz:
        return self

    def __exit__(self, *exc: object) -> None:
        self.archive.close()

    def write(self, name: str, array: np.ndarray) -> None:
        """Write a whole array as member ``name.npy``."""
        array = np.asarray(array)
        with self.stream(name, array.dtype, array.shape) as member:
            member.write(np.ascontiguousarray(array).tobytes())

    @contextlib.contextmanager
    def stream(self, name: str, dtype: np.dtype, shape: tuple[int, ...]) -> Iterator[IO[bytes]]:
        """Open member ``name.npy`` for an array of `dtype` and `shape`; write its C-order bytes."""
        info = zipfile.ZipInfo(f"{name}.npy", date_time=ZIP_DATE)
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        expected = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        with self.archive.open(info, mode="w", force_zip64=expected > (1 << 30)) as member:
            header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": tuple(shape)}
            np.lib.format.write_array_header_1_0(member, header)
            counter = _CountingWriter(member)
            yield counter  # type: ignore[misc]
            if counter.written != expected:
                raise RuntimeError(f"{name}: wrote {counter.written} bytes, expected {expected}")


class _CountingWriter:
    def __init__(self, handle: IO[bytes]) -> None:
        self.handle, self.written = handle, 0

    def write(self, data: bytes) -> int:
        self.written += len(data)
        return self.handle.write(data)


def check_format(fmt: str, image_shape: tuple[int, ...]) -> None:
    """Fail early when `fmt` cannot hold images of `image_shape` (channel first)."""
    if fmt not in FORMATS:
        raise InputError(f"a format in {FORMATS}", repr(fmt), "choose --format npz, png or nifti")
    if fmt == "png" and (len(image_shape) != 3 or image_shape[0] not in (1, 3)):
        raise InputError(
            "2D grey or RGB images for PNG output",
            f"images of shape {image_shape}",
            "use --format nifti for volumes (or npz)",
        )


def export_name(fmt: str, label: int, image_id: str) -> str:
    """Where `fmt` puts one image inside its folder: ``<class>/<id>.png`` or ``<class>/<id>.nii.gz``."""
    return f"{label}/{image_id}{'.png' if fmt == 'png' else '.nii.gz'}"


def write_png(path: Path, image: np.ndarray, description: str) -> None:
    """One uint8 channel-first image as PNG with ``genrad:synthetic`` and ``Description`` text chunks."""
    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("genrad:synthetic", "true")
    info.add_text("Description", description)
    pixels = image[0] if image.shape[0] == 1 else np.moveaxis(image, 0, -1)
    Image.fromarray(np.ascontiguousarray(pixels)).save(path, pnginfo=info)


def write_nifti(path: Path, image: np.ndarray, description: str) -> None:
    """One uint8 channel-first image as NIfTI-1 (x, y, z[, channel] axes), ``descrip`` = `description`."""
    import nibabel as nib

    spatial = image.ndim - 1
    data = np.moveaxis(image, 0, -1) if image.shape[0] > 1 else image[0]
    data = np.ascontiguousarray(np.swapaxes(data, 0, spatial - 1) if spatial > 1 else data)
    nifti = nib.Nifti1Image(data, affine=np.eye(4))
    nifti.header["descrip"] = description.encode()[:79]
    nib.save(nifti, str(path))
