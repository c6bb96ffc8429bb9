"""Named radiomic feature sets: which filters, feature classes and pyradiomics settings to use.

``frd_v1`` is the feature set of the Fréchet Radiomic Distance v1 (Konz, Osuala et al., "Fréchet
Radiomic Distance (FRD): A Versatile Metric for Comparing Medical Imaging Datasets", Medical Image
Analysis 2026, arXiv:2412.01496) exactly as the ``frd-score`` 1.0.1 package extracts it:

- intensities are z-scored over the whole image and scaled by 100 (``normalize``, ``normalizeScale``),
  then resampled with a cubic B-spline to 2 mm pixels (in-plane only for 2D images);
- filters: Original, LoG (sigma 2, 3, 4, 5 mm) and the one-level ``coif1`` stationary wavelet.
  pyradiomics' LoG needs at least 4 voxels along every axis, so 2D images (stored as one-slice
  volumes) get no LoG features; 3D volumes get them when the resampled volume is large enough;
- classes: firstorder, glcm (22 features), glrlm, glszm, ngtdm on gray levels binned with width 5;
- the numeric ``diagnostics_*`` entries (image mean/min/max before and after resampling, mask voxel
  and component counts), which frd-score keeps in its feature vector.

``fast`` is the Original-image firstorder and glcm subset of ``frd_v1`` (same settings, no
diagnostics): a cheap screening set whose columns are a subset of ``frd_v1``'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from genrad.errors import InputError

FRD_GLCM_FEATURES = (
    "Autocorrelation", "JointAverage", "ClusterProminence", "ClusterShade", "ClusterTendency", "Contrast",
    "Correlation", "DifferenceAverage", "DifferenceEntropy", "DifferenceVariance", "JointEnergy",
    "JointEntropy", "Imc1", "Imc2", "Idm", "Idmn", "Id", "Idn", "InverseVariance", "MaximumProbability",
    "SumEntropy", "SumSquares",
)  # fmt: skip

_COMMON_SETTINGS: dict[str, Any] = {
    "normalize": True,
    "normalizeScale": 100,
    "interpolator": "sitkBSpline",
    "padDistance": 10,
    "preCrop": True,
    "binWidth": 5,
    "voxelArrayShift": 300,
    "label": 1,
}
_SETTINGS_2D = {**_COMMON_SETTINGS, "resampledPixelSpacing": [2, 2, 0], "force2D": True, "force2Ddimension": 0}
_SETTINGS_3D = {**_COMMON_SETTINGS, "resampledPixelSpacing": [2, 2, 2], "correctMask": True, "minimumROIDimensions": 1}


@dataclass(frozen=True)
class FeatureSet:
    """A named pyradiomics configuration: image types (filters), feature classes, settings per dimension.

    ``feature_classes`` maps a class name to the tuple of its enabled features, or to ``None`` for all
    of the class's (non-deprecated) features. ``diagnostics`` keeps pyradiomics' numeric diagnostics.
    """

    name: str
    image_types: Mapping[str, Mapping[str, Any]]
    feature_classes: Mapping[str, tuple[str, ...] | None]
    settings_2d: Mapping[str, Any] = field(default_factory=lambda: dict(_SETTINGS_2D))
    settings_3d: Mapping[str, Any] = field(default_factory=lambda: dict(_SETTINGS_3D))
    diagnostics: bool = False

    def settings(self, spatial_dims: int) -> dict[str, Any]:
        """pyradiomics settings for 2D images (one-slice volumes, ``force2D``) or 3D volumes."""
        return dict(self.settings_2d if spatial_dims == 2 else self.settings_3d)

    def params(self, spatial_dims: int) -> dict[str, Any]:
        """The parameter dictionary `radiomics.featureextractor.RadiomicsFeatureExtractor` accepts."""
        return {
            "imageType": {name: dict(args) for name, args in self.image_types.items()},
            "featureClass": {name: None if names is None else list(names) for name, names in self.feature_classes.items()},
            "setting": self.settings(spatial_dims),
        }


FEATURE_SETS: dict[str, FeatureSet] = {
    "frd_v1": FeatureSet(
        name="frd_v1",
        image_types={"Original": {}, "LoG": {"sigma": [2.0, 3.0, 4.0, 5.0]}, "Wavelet": {}},
        feature_classes={"firstorder": None, "glcm": FRD_GLCM_FEATURES, "glrlm": None, "glszm": None, "ngtdm": None},
        diagnostics=True,
    ),
    "fast": FeatureSet(
        name="fast",
        image_types={"Original": {}},
        feature_classes={"firstorder": None, "glcm": FRD_GLCM_FEATURES},
    ),
}


def get_feature_set(name: str | FeatureSet) -> FeatureSet:
    """The feature set called `name` (a `FeatureSet` is returned as is)."""
    if isinstance(name, FeatureSet):
        return name
    if name not in FEATURE_SETS:
        raise InputError(
            f"a feature set named one of {sorted(FEATURE_SETS)}",
            repr(name),
            "choose one of the named feature sets",
            source="feature_set",
        )
    return FEATURE_SETS[name]
