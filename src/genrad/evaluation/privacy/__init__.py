"""Privacy audit of a synthetic set: near-copies of training images, DCR, membership inference.

For every synthetic image the audit finds its closest training image in several spaces and compares
that distance with the same statistic for real held-out images, which the model never saw:

- ``pixel`` (always; the primary space): normalised cross-correlation (NCC) of the images, maximised
  over mirror flips and shifts of up to ``max_shift`` pixels, so flipped or shifted copies are caught.
  Every image (synthetic, training, held-out) is first smoothed with the same Gaussian (``smooth``
  pixels): without it, a blurry synthetic image correlates better with a textured training image than
  any textured held-out image does, and smooth generators would be called copiers.
  NCC is the inner product of zero-mean, unit-norm images, so ``sqrt(2 - 2 NCC)`` is their Euclidean
  distance, the pixel-space distance used below;
- ``embedding``: Euclidean distance between unit vectors of `ContrastiveEmbedding`, an encoder genrad
  trains on the training images (self-supervised, no downloaded weights), minimised over mirror flips;
- ``radiomics``: Euclidean distance between radiomic features (`genrad.radiomics.extract`, feature
  set ``"fast"``) z-scored with the training mean and standard deviation.

Statistics (per space; the top-level figures are the pixel space's):

- DCR, distance to closest record (Park et al. 2018, "Data synthesis based on generative adversarial
  networks", PVLDB 11(10)): median over synthetic images of the distance to the nearest training
  image; ``dcr_ratio`` divides it by the median held-out-to-train DCR. Below 1, synthetic images are
  closer to the training set than new patients are: a sign of memorisation.
- Near-copy flag (`near_copies`): a synthetic image is flagged when (a) it is closer to a training
  image than all but a fraction ``1 - quantile`` of held-out images are (`near_copy_threshold`), and
  (b) it is specific to the training set: its train/held-out distance ratio ``d(x, train) /
  d(x, held-out)`` is below all but ``1 - specificity_quantile`` of the same ratio for held-out images
  (leave-one-out among them), the train-versus-holdout comparison of Platzer & Reutterer 2021
  ("Holdout-based empirical assessment of mixed-type synthetic data", Front. Big Data 4). (a) sets
  the false-positive rate; (b) keeps smooth or generic images, which lie as close to unseen patients
  as to training ones, from being called copies. (b) is a looser screen (default 0.95): held-out
  images with a near-relative in the training set have low ratios themselves. Near-copy search as in
  Somepalli et al. 2023, "Diffusion art or digital forgery?" (CVPR) and, on medical images, Akbar et
  al. 2024, "Beware of diffusion models for synthesizing medical images" (MIDL).
- Membership inference: the distance-based attack of Chen et al. 2020 ("GAN-Leaks", CCS): a record is
  called a member when a synthetic image lies close to it; ``mia_auc`` is the attack's ROC AUC on
  training records (members) versus held-out records (non-members). 0.5 means no leak.

Held-out images that are duplicates of a training image (pixel NCC >= ``duplicate_ncc``; BreastMNIST's
splits share many) are not unseen patients: they are reported as split leakage and left out of the
calibration, the held-out DCR and the non-members. Confidence intervals are seeded percentile
bootstraps (Efron & Tibshirani 1993), resampling each group of images independently.
"""

from genrad.evaluation.privacy.audit import PrivacyAudit, audit
from genrad.evaluation.privacy.nearest import (
    Nearest,
    bootstrap_replicates,
    membership_auc,
    near_copies,
    near_copy_rate,
    near_copy_threshold,
    nearest,
    planted_memoriser,
    search,
)
from genrad.evaluation.privacy.spaces import FEATURE_SPACES, EmbeddingSpace, PixelSpace, RadiomicsSpace, Space, working_resolution

__all__ = ["FEATURE_SPACES", "EmbeddingSpace", "Nearest", "PixelSpace", "PrivacyAudit", "RadiomicsSpace", "Space", "audit",
           "bootstrap_replicates", "membership_auc", "near_copies", "near_copy_rate", "near_copy_threshold", "nearest",
           "planted_memoriser", "search", "working_resolution"]
