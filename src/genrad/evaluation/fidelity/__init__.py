"""Set-level fidelity of a synthetic image set against real images, on radiomic features.

- `metrics`: `fidelity(real, synthetic)`, every metric with a bootstrap interval and its real floor;
- `features`: `FeatureTable`, the radiomic features of one image set (`feature_table`);
- one module per metric, each a pure function plus a streaming class that reuses it: `frd` (Frechet Radiomic
  Distance), `kid`, `prdc` (precision / recall / density / coverage), `alpha` (alpha-precision / beta-recall /
  authenticity), `c2st` (classifier two-sample test), `distances` (per-feature distances).
"""

from genrad.evaluation.fidelity.features import FeatureTable, feature_table
from genrad.evaluation.fidelity.metrics import CLASS_MIXES, METRICS, UNIT_RANGE, check_settings, fidelity, matched_class_mix

__all__ = ["CLASS_MIXES", "METRICS", "UNIT_RANGE", "FeatureTable", "check_settings", "feature_table", "fidelity",
           "matched_class_mix"]
