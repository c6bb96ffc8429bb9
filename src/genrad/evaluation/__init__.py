"""Evaluation of synthetic data: fidelity (set-level metrics), per-sample QA, privacy and utility.

    report = genrad.evaluation.fidelity(real=cohort.test, synthetic=synthetic_split)
    qa = genrad.evaluation.qa.SampleQA().fit(cohort.train)
    privacy = genrad.evaluation.privacy.audit(cohort.train, cohort.test, synthetic_split)
    utility = genrad.evaluation.utility.run_protocol(cohort, synthetic_split, seeds=5)
    classifier = genrad.evaluation.utility.classifier.Classifier().fit(cohort.train, cohort.val, seed=0)

Other sub-modules are imported on first use, so ``import genrad.evaluation`` stays cheap.
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
