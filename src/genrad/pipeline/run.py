"""`run_pipeline`: validate data -> train -> generate -> fidelity -> privacy -> utility -> report.

Each stage writes into its own folder of the run directory (`RunLayout`) and is skipped when its
outputs are complete for the same configuration (`genrad.pipeline.stages`), so an interrupted run
resumes at the first incomplete stage. Every stage calls the public Python API of its package; this
module only wires them together.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from genrad import __version__
from genrad.data import Cohort, load
from genrad.errors import InputError
from genrad.pipeline.config import STAGES, RunConfig
from genrad.pipeline.stages import fingerprint, run_stage
from genrad.provenance import versions, write_json
from genrad.synthesis.layout import RunLayout


def run_pipeline(config: RunConfig, out: str | Path, *, console: Console | None = None, progress: bool = True) -> Path:
    """Run every stage of `config` into `out`, then build the report and return its path."""
    console = console or Console(stderr=True)
    check_config(config)
    layout = RunLayout(Path(out))
    cohort = load(config.data.path, intensity=config.data.intensity)
    for split in (config.data.train_split, config.data.val_split, config.data.test_split):
        cohort[split]
    layout.root.mkdir(parents=True, exist_ok=True)
    data_hash = cohort.content_hash()
    choice = model_choice(config, len(cohort[config.data.train_split]))
    _write_run_record(layout, config, data_hash, status="running", choice=choice)
    context = _Context(config=config, layout=layout, cohort=cohort, progress=progress)
    for stage in STAGES:
        if not _enabled(config, stage):
            console.print(f"[dim]- {stage}: disabled[/dim]")
            continue
        ran, seconds = run_stage(layout, stage, fingerprint(config, stage, data_hash), lambda s=stage: _STAGE_WORK[s](context))
        status = f"done in {seconds:.1f} s" if ran else "complete, skipped"
        console.print(f"[green]✓[/green] {stage}: {status}")
    _write_run_record(layout, config, data_hash, status="complete", choice=choice)
    from genrad.report import build

    return build(layout.root)


def check_config(config: RunConfig) -> None:
    """Refuse, before any stage runs, settings that a later stage would refuse: the model family's own argument
    checks on the train section (its ``options`` are the family's constructor arguments)."""
    try:
        _build_model(config, num_classes=2, spatial_dims=2, n_images=1)
    except InputError as error:
        fix = f"fix train.{error.argument} in the run configuration" if error.argument else error.fix
        raise InputError(error.expected, error.found, fix, source=error.source or "run configuration") from None


def model_choice(config: RunConfig, n_images: int) -> dict[str, Any]:
    """The family or preset `train` names, or the preset chosen for the budget (with the reason)."""
    from genrad.models.presets import choose_preset

    train = config.train
    if train.model is None and train.preset is None:
        preset, reason = choose_preset(budget_minutes=train.budget_minutes, n_images=n_images)
        return {"family": None, "preset": preset, "reason": reason}
    return {"family": train.model, "preset": train.preset, "reason": "given in the run configuration"}


def _build_model(config: RunConfig, *, num_classes: int, spatial_dims: int, n_images: int) -> Any:
    from genrad.models import build

    train = config.train
    choice = model_choice(config, n_images)
    return build(choice["family"], preset=choice["preset"], num_classes=num_classes, spatial_dims=spatial_dims,
                 covariates=train.covariates, intensity=train.intensity, **train.options)


class _Context:
    """What the stages share: configuration, layout, the loaded cohort, and the model once trained."""

    def __init__(self, *, config: RunConfig, layout: RunLayout, cohort: Cohort, progress: bool) -> None:
        self.config = config
        self.layout = layout
        self.cohort = cohort
        self.progress = progress

    @property
    def train(self) -> Any:
        return self.cohort[self.config.data.train_split]

    @property
    def val(self) -> Any:
        return self.cohort[self.config.data.val_split]

    @property
    def test(self) -> Any:
        return self.cohort[self.config.data.test_split]

    def synthetic(self) -> Any:
        from genrad.synthesis import SyntheticSet

        return SyntheticSet(self.layout.synthetic_dir)


def _enabled(config: RunConfig, stage: str) -> bool:
    section = getattr(config, stage, None)
    return bool(getattr(section, "enabled", True))


def _write_run_record(layout: RunLayout, config: RunConfig, data_hash: str, *, status: str, choice: dict[str, Any]) -> None:
    write_json(
        layout.run_json,
        {
            "genrad_version": __version__,
            "status": status,
            "updated": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "config": config.model_dump(mode="json"),
            "model_choice": choice,
            "seed": config.seed,
            "data_hash": data_hash,
            "versions": versions(),
        },
    )


def _stage_data(context: _Context) -> None:
    write_json(context.layout.data_dir / "summary.json", context.cohort.summary())


DISTILL_SHARE = 0.4
"""The student's default budget as a share of the teacher's (minutes, or steps with ``train.max_steps``)."""


def _stage_train(context: _Context) -> None:
    """Fit the generator, then distil a guided diffusion model into its student (``model/student``); the trainer
    checkpoints into the model folder and resumes from it after a crash."""
    from genrad.models.checkpoint import STATE
    from genrad.training import train as train_model

    train = context.config.train
    model = _build_model(context.config, num_classes=context.cohort.num_classes, spatial_dims=context.cohort.spatial_dims,
                         n_images=len(context.train))
    train_model(model, context.train, max_minutes=train.budget_minutes, max_steps=train.max_steps, seed=context.config.seed,
                out_dir=context.layout.model_dir, resume=(context.layout.model_dir / STATE).exists(), progress=context.progress)
    if _distills(model, context):
        from genrad.models.factory import STUDENT
        from genrad.training.distill import distill_guidance

        minutes = train.distill_minutes
        steps = None if train.max_steps is None or minutes is not None else max(1, round(DISTILL_SHARE * train.max_steps))
        minutes = DISTILL_SHARE * train.budget_minutes if minutes is None and steps is None else minutes
        folder = context.layout.model_dir / STUDENT
        distill_guidance(model, context.train, max_steps=steps, max_minutes=minutes,
                         seed=context.config.seed, out_dir=folder, resume=(folder / STATE).exists(), progress=context.progress)


def _distills(model: Any, context: _Context) -> bool:
    """Whether the train stage distils `model`: a guided diffusion model, unless distillation is off (0 minutes).
    By default (no ``train.distill_minutes``) it does so only when the generate stage samples with the student: not
    when the utility strategy sets the sampling."""
    minutes = context.config.train.distill_minutes
    guided = minutes != 0 and getattr(model, "family", "") == "diffusion" and model.guidance_scale != 1.0
    return guided and (bool(minutes) or _strategy_sampling(context) is None)


def _strategy_sampling(context: _Context) -> dict[str, Any] | None:
    """The sampling settings the utility strategy gives the trained family (`Strategy.sampling_for`), or None: no
    strategy, none for this family, or sampling settings given in ``train.options`` (the user's choice wins)."""
    from genrad.evaluation.utility import get_strategy
    from genrad.models import Generator
    from genrad.models.presets import get_preset

    strategy = context.config.utility.strategy
    if strategy is None:
        return None
    choice = model_choice(context.config, len(context.train))
    family = get_preset(choice["preset"]).family if choice["preset"] is not None else choice["family"]
    if set(context.config.train.options) & set(Generator.registry[family].sampling_settings):
        return None
    return get_strategy(strategy).sampling_for(family)


def _stage_generate(context: _Context) -> None:
    """Sample the synthetic set: with the utility strategy's sampling settings for the trained family when it has
    some (by the model itself), else as the model samples (by its distilled student when the run has one)."""
    from genrad.synthesis import generate

    options = context.config.generate
    quality_filter = _quality_filter(context) if options.filter else None
    sampling = _strategy_sampling(context)
    generate(
        context.layout.model_dir,
        per_class=None if options.multiple is not None else _balanced_counts(context),
        multiple=options.multiple,
        data=context.cohort,
        out=context.layout.synthetic_dir,
        seed=context.config.seed,
        shard_size=options.shard_size,
        backend=options.backend,
        workers=options.workers,
        filter=quality_filter,
        sampling=sampling,
        student=sampling is None,
        progress=context.progress,
    )


def _balanced_counts(context: _Context) -> dict[int, int]:
    """Every class as large as the largest real class, and as large as the utility arms need: what the fidelity,
    privacy and utility stages use, no more (with the QA filter on, 20% spare covers the images it drops)."""
    from genrad.evaluation.utility import synthetic_needed, utility_arms

    counts = context.train.class_counts(context.cohort.num_classes)
    planned = np.full(len(counts), max(counts.values()), dtype=np.int64)
    options = context.config.utility
    if options.enabled:
        spare = 1.2 if context.config.generate.filter else 1.0
        arms = utility_arms(options.strategy, _utility_multiples(options))
        planned = np.maximum(planned, synthetic_needed(arms, np.array(list(counts.values())), margin=spare))
    return {k: int(n) for k, n in zip(counts, planned, strict=True)}


def _utility_multiples(options: Any) -> tuple[float, ...] | None:
    """The scaling curve's multiples: as configured; none beside a strategy, 1x without one."""
    return options.multiples or (None if options.strategy else (1.0,))


def _quality_filter(context: _Context) -> Callable[..., Any]:
    from genrad.evaluation.qa import SampleQA

    options = context.config.fidelity
    qa = SampleQA(feature_set=options.feature_set, engine=options.engine or "fast", seed=context.config.seed)
    return qa.fit(context.train, context.val).as_filter()


def _stage_fidelity(context: _Context) -> None:
    from genrad.evaluation.outputs import evaluate_fidelity

    options = context.config.fidelity
    evaluate_fidelity(
        context.test,
        context.synthetic().split,
        out=context.layout.fidelity_dir,
        floor_real=context.train,
        class_names=context.cohort.class_names,
        feature_set=options.feature_set,
        engine=options.engine,
        n_bootstrap=options.n_bootstrap,
        seed=context.config.seed,
        sources=_sources(context),
    )


def _stage_privacy(context: _Context) -> None:
    from genrad.evaluation.outputs import evaluate_privacy

    synthetic = context.synthetic()
    evaluate_privacy(
        context.train,
        context.test,
        synthetic.split,
        out=context.layout.privacy_dir,
        features=context.config.privacy.features,
        n_bootstrap=context.config.privacy.n_bootstrap,
        seed=context.config.seed,
        sources=_sources(context),
        generator=synthetic.generator,
    )


def _sources(context: _Context) -> dict[str, Any]:
    data = context.config.data
    return {
        "real": {"path": data.path, "train_split": data.train_split, "test_split": data.test_split},
        "synthetic": {"path": str(context.layout.synthetic_npz)},
    }


def _stage_utility(context: _Context) -> None:
    from genrad.evaluation.utility import evaluate_utility

    options = context.config.utility
    evaluate_utility(
        context.cohort,
        context.synthetic().split,
        out=context.layout.utility_dir,
        seeds=options.seeds,
        strategy=options.strategy,
        multiples=_utility_multiples(options),
        quick=options.quick,
        synthetic_source=str(context.layout.synthetic_npz),
        progress=context.progress,
    )


_STAGE_WORK: dict[str, Callable[[_Context], None]] = {
    "data": _stage_data,
    "train": _stage_train,
    "generate": _stage_generate,
    "fidelity": _stage_fidelity,
    "privacy": _stage_privacy,
    "utility": _stage_utility,
}
