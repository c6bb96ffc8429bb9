"""Radiomic features: a fast batched engine, the pyradiomics reference engine and named feature sets.

    table = genrad.radiomics.extract(cohort.test, feature_set="frd_v1")  # engine="fast" by default

Features are computed on the 0..255 scale (float images in [0, 1] are multiplied by 255) and named
as pyradiomics names them (``original_firstorder_Mean``, ``wavelet-LH_glcm_Contrast``). The fast
engine reproduces pyradiomics 3.0.1 to floating-point rounding for the filters Original, LoG and
Wavelet and the classes firstorder, glcm (except MCC), glrlm, glszm and ngtdm; other filters,
classes (shape, gldm) and settings need ``engine="pyradiomics"``.
"""

from genrad.radiomics.extraction import DEFAULT_ENGINE, ENGINES, extract
from genrad.radiomics.featuresets import FEATURE_SETS, FeatureSet, get_feature_set

__all__ = ["DEFAULT_ENGINE", "ENGINES", "FEATURE_SETS", "FeatureSet", "extract", "get_feature_set"]
