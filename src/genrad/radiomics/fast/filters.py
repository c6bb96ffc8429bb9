"""pyradiomics' image filters (``imageoperations.getLoGImage``, ``getWaveletImage``) for a batch.

- Wavelet: one level of the stationary (undecimated) wavelet transform (Nason & Silverman 1995)
  with PyWavelets' ``swtn`` over the in-plane axes (2D, ``force2D``) or all three axes; odd axes
  are first padded by one voxel (wrap), as pyradiomics does. ``swtn`` transforms the whole batch in
  one call. Names: ``wavelet-`` + L (low pass) / H (high pass) per axis, x first.
- LoG: SimpleITK's ``LaplacianRecursiveGaussianImageFilter`` (normalised across scale; Lindeberg
  1998), applied per volume exactly as pyradiomics applies it; skipped, as in pyradiomics, when the
  volume is smaller than 4 voxels along an axis (all 2D images) or than ``sigma / spacing + 1``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np


def wavelet(volumes: np.ndarray, force_2d: bool, wavelet_name: str = "coif1") -> Iterator[tuple[str, np.ndarray]]:
    """(name, filtered batch) for each wavelet decomposition of `volumes` ``(N, Z, Y, X)``, LL... last."""
    import pywt

    axes = (3, 2) if force_2d else (3, 2, 1)
    shape = volumes.shape
    padding = [(0, 0)] + [(0, 1 if (axis in axes and shape[axis] % 2) else 0) for axis in (1, 2, 3)]
    data = np.pad(volumes, padding, mode="wrap")
    crop = tuple(slice(0, length) for length in shape)
    decomposition = pywt.swtn(data, pywt.Wavelet(wavelet_name), level=1, start_level=0, axes=axes)[0]
    approximation = "a" * len(axes)
    for key, image in decomposition.items():
        if key != approximation:
            yield "wavelet-" + key.replace("a", "L").replace("d", "H"), image[crop]
    yield "wavelet-" + "L" * len(axes), decomposition[approximation][crop]


def laplacian_of_gaussian(
    volumes: np.ndarray, spacing: tuple[float, float, float], sigmas: Sequence[float]
) -> Iterator[tuple[str, np.ndarray]]:
    """(name, filtered batch) for each sigma (mm) that pyradiomics would apply to volumes of this size."""
    import SimpleITK as sitk

    size = np.array(volumes.shape[1:][::-1])
    spacing_xyz = np.array(spacing[::-1])
    if size.min() < 4:
        return
    for sigma in sigmas:
        if sigma <= 0 or not np.all(size >= np.ceil(sigma / spacing_xyz) + 1):
            continue
        filtered = np.empty_like(volumes)
        for k, volume in enumerate(volumes):
            image = sitk.GetImageFromArray(volume)
            image.SetSpacing(tuple(float(s) for s in spacing_xyz))
            log_filter = sitk.LaplacianRecursiveGaussianImageFilter()
            log_filter.SetNormalizeAcrossScale(True)
            log_filter.SetSigma(float(sigma))
            filtered[k] = sitk.GetArrayFromImage(log_filter.Execute(image))
        yield f"log-sigma-{str(sigma).replace('.', '-')}-mm-3D", filtered
