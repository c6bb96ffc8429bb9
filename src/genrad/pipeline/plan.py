"""`RunPlan`: what `genrad run` will do, resolved from the configuration, the data and genrad's defaults before any
work, so that every stage reads one frozen answer instead of deciding again.

The plan holds the model choice (family or preset, with its reason), the training budget and its split between the
generator and its distilled student (the budget is the total: a student takes a share of it, it is never added),
how the generate stage samples (the utility strategy's settings, the model's own, or its student) and how many
images per class, and the utility arms. Each stage's resume key hashes exactly the plan fields it reads
(`STAGE_READS`) and its upstream stage's key, so a changed setting reruns the stages whose resolved work changes and
everything downstream of them. The plan is written to ``run.json`` and shown by ``genrad run --print-plan``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from genrad.data import Cohort
from genrad.errors import InputError
from genrad.pipeline.config import STAGES, RunConfig

DISTILL_SHARE = 0.4
"""A distilled student's time as a share of its teacher's (the share `benchmarks/distill_breastmnist.py` measured
with): of a budget B, the teacher trains B / 1.4 and the student B * 0.4 / 1.4."""
FILTER_SPARE = 1.2
"""With the QA filter on, the generate stage samples 20% more than needed to cover the images it drops."""

STAGE_READS: dict[str, tuple[str, ...]] = {
    "data": ("data",),
    "train": ("seed", "data.hash", "model", "train"),  # the student's share depends on the generate stage's sampling
    "generate": ("seed", "generate"),
    "fidelity": ("seed", "fidelity"),
    "privacy": ("seed", "privacy"),
    "utility": ("seed", "utility"),
}
"""The plan fields each stage's work reads (a section: all of its fields)."""
UPSTREAM: dict[str, str | None] = {"data": None, "train": "data", "generate": "train", "fidelity": "generate",
                                    "privacy": "generate", "utility": "generate"}
"""The stage whose outputs each stage reads: the evaluations read the synthetic set, not each other."""


@dataclass(frozen=True)
class RunPlan:
    """The resolved run (see the module docstring): `fields` is JSON-ready, `stages` lists the enabled stages."""

    fields: dict[str, Any]
    stages: tuple[str, ...]

    def __getitem__(self, section: str) -> Any:
        return self.fields[section]

    def read(self, dotted: str) -> Any:
        value: Any = self.fields
        for part in dotted.split("."):
            value = value[part]
        return value

    def fingerprint(self, stage: str) -> str:
        """SHA-256 of the plan fields `stage` reads (`STAGE_READS`) and its upstream stage's fingerprint."""
        upstream = UPSTREAM[stage]
        text = json.dumps({"stage": stage, "reads": {field: self.read(field) for field in STAGE_READS[stage]},
                           "upstream": self.fingerprint(upstream) if upstream else None}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    def as_dict(self) -> dict[str, Any]:
        return {**self.fields, "stages": {stage: {"enabled": stage in self.stages, "reads": list(STAGE_READS[stage])}
                                          for stage in STAGES}}


def resolve_plan(config: RunConfig, cohort: Cohort) -> RunPlan:
    """The plan of `config` on `cohort` (its splits checked); refuses settings a stage would refuse, before any work."""
    data = config.data
    for split in (data.train_split, data.val_split, data.test_split):
        cohort[split]
    train_split = cohort[data.train_split]
    counts = train_split.class_counts(cohort.num_classes)
    family_arguments = {"covariates": list(config.train.covariates), "intensity": config.train.intensity,
                        "options": config.train.options}
    budget_minutes: float = config.train.budget_minutes
    while True:  # an automatic choice must hold for the generator's share of the budget, not the whole budget
        model = model_choice(config, len(train_split), budget_minutes=budget_minutes)
        generator = build_model(model, family_arguments, num_classes=cohort.num_classes, spatial_dims=cohort.spatial_dims)
        sampling = _strategy_sampling(config, generator.family)
        guided = generator.family == "diffusion" and generator.guidance_scale != 1.0
        distils = config.train.distill_minutes != 0 and guided and (bool(config.train.distill_minutes) or sampling is None)
        budget = _budget(config, distils)
        if model["family"] is not None or budget["generator_minutes"] >= budget_minutes:
            break
        budget_minutes = budget["generator_minutes"]
    arms = _utility_arms(config)
    if budget_minutes != config.train.budget_minutes:
        model["reason"] += (f" ({budget_minutes:.3g} minutes: what a diffusion generator keeps of the "
                            f"{config.train.budget_minutes:g}-minute budget beside its distilled student)")
    fields: dict[str, Any] = {
        "seed": config.seed,
        "data": {**data.model_dump(mode="json"), "hash": cohort.content_hash(), "num_classes": cohort.num_classes,
                 "spatial_dims": cohort.spatial_dims, "train_counts": {str(k): int(n) for k, n in counts.items()}},
        "model": model,
        "train": {**budget, **family_arguments},
        "generate": {**config.generate.model_dump(mode="json"), "per_class": _per_class(config, counts, arms),
                     "sampling": sampling, "student": sampling is None and distils,
                     "filter_features": {"feature_set": config.fidelity.feature_set, "engine": config.fidelity.engine}
                     if config.generate.filter else None},
        "fidelity": config.fidelity.model_dump(mode="json"),
        "privacy": config.privacy.model_dump(mode="json"),
        "utility": {**config.utility.model_dump(mode="json"), "multiples": _utility_multiples(config),
                    "arms": [arm.name for arm in arms]},
    }
    stages = tuple(stage for stage in STAGES if bool(getattr(getattr(config, stage, None), "enabled", True)))
    return RunPlan(fields=fields, stages=stages)


def model_choice(config: RunConfig, n_images: int, *, budget_minutes: float) -> dict[str, Any]:
    """The family or preset `train` names, or the preset chosen for the generator's `budget_minutes` (with the
    reason)."""
    from genrad.models.presets import choose_preset

    train = config.train
    if train.model is None and train.preset is None:
        preset, reason = choose_preset(budget_minutes=budget_minutes, n_images=n_images)
        return {"family": None, "preset": preset, "reason": reason}
    return {"family": train.model, "preset": train.preset, "reason": "given in the run configuration"}


def build_model(model: dict[str, Any], train: dict[str, Any], *, num_classes: int, spatial_dims: int) -> Any:
    """The generator the train stage fits (constructed, not trained) from the plan's `model` and `train` sections:
    the family's own argument checks run here."""
    from genrad.models import build

    try:
        return build(model["family"], preset=model["preset"], num_classes=num_classes, spatial_dims=spatial_dims,
                     covariates=tuple(train["covariates"]), intensity=train["intensity"], **train["options"])
    except InputError as error:
        fix = f"fix train.{error.argument} in the run configuration" if error.argument else error.fix
        raise InputError(error.expected, error.found, fix, source=error.source or "run configuration") from None


def _strategy_sampling(config: RunConfig, family: str) -> dict[str, Any] | None:
    """The sampling settings the utility strategy gives `family` (`Strategy.sampling_for`), or None: no strategy, none
    for this family, or sampling settings given in ``train.options`` (the user's choice wins)."""
    from genrad.evaluation.utility import get_strategy
    from genrad.models import Generator

    strategy = config.utility.strategy
    if strategy is None or set(config.train.options) & set(Generator.registry[family].sampling_settings):
        return None
    return get_strategy(strategy).sampling_for(family)


def _budget(config: RunConfig, distils: bool) -> dict[str, Any]:
    """The training budget and its split between the generator and its student, in minutes (and steps when
    ``train.max_steps`` caps the generator): the total never exceeds ``train.budget_minutes``."""
    train = config.train
    total = train.budget_minutes
    if not distils:
        return {"budget_minutes": total, "generator_minutes": total, "student_minutes": 0.0, "max_steps": train.max_steps,
                "student_steps": 0, "split": "no student: the whole budget trains the generator"}
    if train.distill_minutes is not None:
        if train.distill_minutes >= total:
            raise InputError("train.distill_minutes below train.budget_minutes (the student's share of the budget)",
                             f"{train.distill_minutes:g} of {total:g} minutes", "lower train.distill_minutes",
                             source="run configuration")
        student, split = float(train.distill_minutes), "train.distill_minutes for the student, the rest for the generator"
    else:
        student = total * DISTILL_SHARE / (1 + DISTILL_SHARE)
        split = f"the student trains {DISTILL_SHARE:g}x as long as its generator: {1 / (1 + DISTILL_SHARE):.0%} / " \
                f"{DISTILL_SHARE / (1 + DISTILL_SHARE):.0%} of the budget"
    steps = train.max_steps
    student_steps = None if steps is None or train.distill_minutes is not None else max(1, round(DISTILL_SHARE * steps))
    return {"budget_minutes": total, "generator_minutes": total - student, "student_minutes": student, "max_steps": steps,
            "student_steps": student_steps, "split": split}


def _utility_multiples(config: RunConfig) -> list[float] | None:
    """The scaling curve's multiples: as configured; none beside a strategy, 1x without one."""
    options = config.utility
    multiples = options.multiples or (None if options.strategy else (1.0,))
    return None if multiples is None else [float(m) for m in multiples]


def _utility_arms(config: RunConfig) -> list[Any]:
    """The arms the utility stage trains (none when it is off)."""
    from genrad.evaluation.utility import utility_arms

    return utility_arms(config.utility.strategy, _utility_multiples(config)) if config.utility.enabled else []


def _per_class(config: RunConfig, counts: dict[int, int], arms: list[Any]) -> dict[str, int] | None:
    """Images per class the generate stage samples: every class as large as the largest real class, and as large as
    the utility `arms` need (with `FILTER_SPARE` when the QA filter drops some); None when ``generate.multiple`` asks
    for a multiple of the real set instead."""
    from genrad.evaluation.utility import synthetic_needed

    if config.generate.multiple is not None:
        return None
    planned = np.full(len(counts), max(counts.values()), dtype=np.int64)
    if arms:
        spare = FILTER_SPARE if config.generate.filter else 1.0
        planned = np.maximum(planned, synthetic_needed(arms, np.array(list(counts.values())), margin=spare))
    return {str(k): int(n) for k, n in zip(counts, planned, strict=True)}
