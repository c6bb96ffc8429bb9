"""Per-sample QA: a score and a flag for every synthetic image, calibrated on real images.

Each image is measured by several *components*, each aimed at one kind of hallucination:

=====================  ===========================================================  ============
component              what it measures                                             catches
=====================  ===========================================================  ============
knn_distance           mean distance to the k nearest real images in z-scored       off-manifold
                       radiomic feature space (``frd_v1``)                          texture,
                                                                                    intensity
dark_fraction,         share of pixels at the ends of the range                     clipping,
bright_fraction                                                                     saturation
flat_fraction          share of pixels in constant 3x3 neighbourhoods, brighter     blank regions
                       than where real images are ever flat (e.g. black shadows)
high_frequency         mean log ratio of the image's power spectrum to the real     noise,
                       images' mean spectrum at high frequencies (an excess)        checkerboard
blur                   the same mean log ratio as a deficit (low is abnormal)       blur, missing
                                                                                    fine texture
spectral_peak          largest log ratio of the image's power spectrum to the real  grids, ringing
                       mean spectrum that is also above its local median (5 x 5
                       frequency bins), so a smooth tilt (blur) is no peak
local_noise            peak / median local energy of the high-pass residual         noise bursts
straight_edge          strongest long straight intensity step, over the typical    cuts, pasted
                       gradient                                                     patches
self_similarity        how close two distinct textured patches are (copy-move)     duplicated
                                                                                    lesions
template_correlation   correlation with the mean real image                         implausible
                                                                                    layout
speckle_correlation    correlation of local mean and local SD (speckle is           inversions
                       multiplicative: brighter tissue is noisier)
=====================  ===========================================================  ============

Every component becomes a p-value against its distribution over the real reference (empirical,
with an exponential tail beyond the largest real value, as in peaks-over-threshold); the QA score is
``-log10`` of the smallest p-value, so any one strongly abnormal component raises it. Its reason is the
most abnormal whole-spectrum check over the threshold (blur, a periodic pattern or noise alter every local
statistic as well), else the most abnormal component, an image-domain check over the threshold being named
before the k-NN distance. The flag
threshold is an order statistic of the scores of real images (the reference images scored
leave-one-out, plus the calibration images) chosen so that, with probability ``guarantee`` over the
calibration sample, at most ``false_flag_rate`` of clean real images are flagged (training-conditional
conformal calibration: the threshold's coverage is Beta-distributed; Vovk 2012, "Conditional validity
of inductive conformal predictors", prop. 2a). ``guarantee=0.5`` gives the median.

3D volumes are measured slice by slice along the first spatial axis and the most abnormal slice
value is kept.
"""

from genrad.evaluation.qa.checks import DIRECTIONS, PixelChecks
from genrad.evaluation.qa.sample import SampleQA, TailCalibrator, calibration_rank

__all__ = ["DIRECTIONS", "PixelChecks", "SampleQA", "TailCalibrator", "calibration_rank"]
