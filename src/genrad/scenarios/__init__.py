"""Scenarios: imaging-parameter sweeps, robustness stress tests and multi-modal (image + clinical) synthesis."""

from genrad.scenarios.grid import Grid, default_grid, load_grid, parse_grid
from genrad.scenarios.perturbations import PERTURBATIONS, Perturbation, perturb

__all__ = ["PERTURBATIONS", "Grid", "Perturbation", "default_grid", "load_grid", "parse_grid", "perturb"]
