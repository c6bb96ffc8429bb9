"""Scenarios: imaging-parameter sweeps, robustness stress tests and multi-modal (image + clinical) synthesis.

    grid = genrad.scenarios.default_grid()                       # or load_grid("grid.yaml")
    noisy = genrad.scenarios.perturb(images, "noise", 0.05, seed=0)
    cells = genrad.scenarios.stress("classifier/", "breastmnist.npz", grid, out="stress/")
    records = genrad.scenarios.sample_clinical(train.clinical, train.labels, {0: 500, 1: 500}, seed=0)
"""

from genrad.scenarios.augment import augment, perturbed_pool
from genrad.scenarios.grid import Grid, default_grid, load_grid, parse_grid
from genrad.scenarios.multimodal import (
    RetrievalGenerator,
    covariate_feature_correlations,
    cross_modal_link,
    multimodal_fidelity,
    table_fidelity,
)
from genrad.scenarios.perturbations import PERTURBATIONS, Perturbation, perturb
from genrad.scenarios.stress import evaluate_grid, stress
from genrad.synthesis.clinical import (
    ClinicalSynthesizer,
    generate_pairs,
    sample_clinical,
)

__all__ = [
    "PERTURBATIONS",
    "ClinicalSynthesizer",
    "Grid",
    "Perturbation",
    "RetrievalGenerator",
    "augment",
    "covariate_feature_correlations",
    "cross_modal_link",
    "default_grid",
    "evaluate_grid",
    "generate_pairs",
    "load_grid",
    "multimodal_fidelity",
    "parse_grid",
    "perturb",
    "perturbed_pool",
    "sample_clinical",
    "stress",
    "table_fidelity",
]
