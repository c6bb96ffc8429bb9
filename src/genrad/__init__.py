"""genrad: generative radiomics.

Turn a small, imbalanced medical imaging dataset into a larger, validated training set::

    cohort = genrad.data.load("breastmnist.npz")
    model = genrad.models.Diffusion(spatial_dims=2, num_classes=2).fit(cohort.train, max_minutes=15, seed=0)
    synth = genrad.synthesis.generate(model, per_class={1: 2000, 0: 2000}, out="synth/", seed=0)
    fidelity = genrad.evaluation.fidelity(real=cohort.test, synthetic=synth)
"""

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_SUBPACKAGES = ("data", "models", "training", "synthesis", "radiomics", "evaluation", "scenarios", "report")


def __getattr__(name: str) -> Any:
    """Import sub-packages lazily so `import genrad` stays fast (torch is only loaded when needed)."""
    if name in _SUBPACKAGES:
        return import_module(f"genrad.{name}")
    raise AttributeError(f"module 'genrad' has no attribute {name!r}")
