"""Data layer: `Cohort` (images, labels, clinical table, splits), loaders and the built-in phantom."""

from genrad.data.cohort import Cohort, Split
from genrad.data.loaders import load
from genrad.data.npz import load_npz
from genrad.data.npz_format import save_npz

__all__ = ["Cohort", "Split", "load", "load_npz", "save_npz"]
