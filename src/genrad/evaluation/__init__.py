"""Evaluation of synthetic data, one sub-package per question, shared kernels in `genrad.evaluation.stats`:

- `fidelity`: set-level metrics on radiomic features, each with an interval and its real floor;
- `qa`: a score and a flag for every synthetic image, calibrated on real images;
- `privacy`: near-copies, distance to closest record, membership inference;
- `utility`: a downstream classifier trained on real, real + synthetic and the classical remedies;
- `stats` (rank AUC, stratified bootstrap, intervals), `embedding` (a contrastive encoder), `outputs` (result folders).

    report = genrad.evaluation.fidelity(real=cohort.test, synthetic=synthetic_split)
    qa = genrad.evaluation.qa.SampleQA().fit(cohort.train, cohort.val)
    privacy = genrad.evaluation.privacy.audit(cohort.train, cohort.test, synthetic_split)
    utility = genrad.evaluation.utility.run_protocol(cohort, synthetic_split, seeds=5)

Sub-packages are imported on first use, so ``import genrad.evaluation`` stays cheap.
"""

from importlib import import_module
from typing import Any

# Imported eagerly: the function shadows its module's name, which a later import must not rebind.
from genrad.evaluation.fidelity import fidelity


def __getattr__(name: str) -> Any:
    try:
        return import_module(f"genrad.evaluation.{name}")
    except ModuleNotFoundError as error:
        if error.name != f"genrad.evaluation.{name}":
            raise
        raise AttributeError(f"module 'genrad.evaluation' has no attribute {name!r}") from None


__all__ = ["fidelity"]
