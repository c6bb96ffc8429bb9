"""Radiomic features: the pyradiomics reference engine, a fast batched engine and named feature sets.

    table = genrad.radiomics.extract(cohort.test, feature_set="frd_v1", engine="pyradiomics")

Features are computed on the 0..255 scale (float images in [0, 1] are multiplied by 255) and named
as pyradiomics names them (``original_firstorder_Mean``, ``wavelet-LH_glcm_Contrast``).
"""

from genrad.radiomics.extraction import DEFAULT_ENGINE, ENGINES, extract
from genrad.radiomics.featuresets import FEATURE_SETS, FeatureSet, get_feature_set

__all__ = ["DEFAULT_ENGINE", "ENGINES", "FEATURE_SETS", "FeatureSet", "extract", "get_feature_set"]
