"""The pyradiomics engine: the reference implementation, one image at a time, as frd-score runs it.

Each image becomes a SimpleITK image the way frd-score builds it from a PNG / NIfTI file: float32
intensities, 2D images as one-slice volumes ``(1, H, W)`` with a 1 mm slice spacing, and the mask as
a uint8 image with the same geometry (van Griethuysen et al., "Computational Radiomics System to
Decode the Radiographic Phenotype", Cancer Research 2017).
"""

from __future__ import annotations

import logging
from numbers import Number
from typing import Any

import numpy as np

from genrad.radiomics.featuresets import FeatureSet

_EXTRACTORS: dict[tuple[str, int], Any] = {}


def extractor(feature_set: FeatureSet, spatial_dims: int) -> Any:
    """A configured `RadiomicsFeatureExtractor` (built once per process, feature set and dimension)."""
    key = (feature_set.name, spatial_dims)
    if key not in _EXTRACTORS:
        import radiomics
        from radiomics import featureextractor

        radiomics.setVerbosity(60)
        logging.getLogger("radiomics").setLevel(logging.ERROR)
        _EXTRACTORS[key] = featureextractor.RadiomicsFeatureExtractor(feature_set.params(spatial_dims))
    return _EXTRACTORS[key]


def to_sitk(image: np.ndarray, mask: np.ndarray, spacing: tuple[float, ...]) -> tuple[Any, Any]:
    """Image (float32) and mask (uint8) as SimpleITK volumes; 2D images get a leading slice axis."""
    import SimpleITK as sitk

    if image.ndim == 2:
        image, mask, spacing = image[None], mask[None], (1.0, *spacing)
    sitk_image = sitk.GetImageFromArray(np.ascontiguousarray(image, dtype=np.float32))
    sitk_image.SetSpacing(tuple(float(s) for s in spacing[::-1]))
    sitk_mask = sitk.GetImageFromArray(np.ascontiguousarray(mask, dtype=np.uint8))
    sitk_mask.CopyInformation(sitk_image)
    return sitk_image, sitk_mask


def extract_one(
    image: np.ndarray, mask: np.ndarray, feature_set: FeatureSet, spacing: tuple[float, ...]
) -> dict[str, float]:
    """pyradiomics features of one image (0..255 scale) in pyradiomics' names and order.

    Diagnostics are kept when the feature set asks for them and only if numeric, as frd-score does.
    """
    sitk_image, sitk_mask = to_sitk(image, mask, spacing)
    output = extractor(feature_set, image.ndim).execute(sitk_image, sitk_mask)
    features: dict[str, float] = {}
    for name, value in output.items():
        if not name.startswith("diagnostics_") or (feature_set.diagnostics and _is_number(value)):
            features[name] = float(value)
    return features


def extract_batch(
    images: np.ndarray, masks: np.ndarray, feature_set: FeatureSet, spacing: tuple[float, ...]
) -> tuple[list[str], np.ndarray]:
    """Column names and an ``(N, F)`` float64 table for a batch, one pyradiomics call per image.

    An image pyradiomics fails on (a constant image cannot be normalised) gets a row of NaN; if it
    fails on every image the names are empty.
    """
    rows = []
    for image, mask in zip(images, masks):
        try:
            rows.append(extract_one(image, mask, feature_set, spacing))
        except ValueError:
            rows.append({})
    names = next((list(row) for row in rows if row), [])
    return names, np.array([[row.get(name, np.nan) for name in names] for row in rows], dtype=np.float64).reshape(len(rows), len(names))


def _is_number(value: Any) -> bool:
    if isinstance(value, np.ndarray):
        return value.size == 1 and np.issubdtype(value.dtype, np.number)
    return isinstance(value, Number | np.number) and not isinstance(value, bool)
