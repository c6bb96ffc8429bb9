"""Utility: does synthetic data improve the downstream model? Train one classifier recipe on several training sets
("arms"), score each on the real test split.

- `arms`: what a classifier is trained on (`Arm`, named `Strategy` recipes, `DEFAULT_STRATEGY`);
- `counts`: how many images of each class an arm takes, and which (seeded, nested draws);
- `classifier`, `augmentation`: the downstream `Classifier` (a MONAI ResNet) and its augmentation policies;
- `protocol`: `run_protocol` / `evaluate_utility`: every arm over the same seeds, cached per arm and seed;
- `summary`: metrics over seeds x test images with paired bootstrap intervals, and the scaling figure;
- `metrics`: AUC, balanced accuracy, rare-class recall, calibration of one set of predictions;
- `selection`: choosing a recipe by cross-validation inside the training split.

    result = genrad.evaluation.utility.run_protocol(cohort, synthetic_split, seeds=5)
"""

from genrad.evaluation.utility.arms import (
    CLASSICAL_MODIFIERS,
    DEFAULT_STRATEGY,
    MULTIPLES,
    REAL_FRACTIONS,
    STRATEGIES,
    UNGUIDED_SAMPLING,
    Arm,
    Strategy,
    control_arms,
    count_matched_control,
    default_arms,
    get_strategy,
    utility_arms,
)
from genrad.evaluation.utility.counts import (
    agreement_mask,
    arm_counts,
    arm_parts,
    arm_training_set,
    feasible_arms,
    fraction_counts,
    keep_mask_from_manifest,
    real_fraction_indices,
    synthetic_counts,
    synthetic_needed,
)
from genrad.evaluation.utility.protocol import PROTOCOL_VERSION, QUICK, evaluate_utility, run_protocol, train_arm
from genrad.evaluation.utility.summary import plot_scaling, select_best_classical, summarise_arms

__all__ = [
    "CLASSICAL_MODIFIERS", "DEFAULT_STRATEGY", "MULTIPLES", "PROTOCOL_VERSION", "QUICK", "REAL_FRACTIONS", "STRATEGIES",
    "UNGUIDED_SAMPLING", "Arm", "Strategy", "agreement_mask", "arm_counts", "arm_parts", "arm_training_set",
    "control_arms", "count_matched_control", "default_arms", "evaluate_utility", "feasible_arms", "fraction_counts",
    "get_strategy", "keep_mask_from_manifest", "plot_scaling", "real_fraction_indices", "run_protocol",
    "select_best_classical", "summarise_arms", "synthetic_counts", "synthetic_needed", "train_arm", "utility_arms",
]
