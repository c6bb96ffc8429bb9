"""`run_pipeline`: validate data -> train -> generate -> fidelity -> privacy -> utility -> report.

The configuration, the data and genrad's defaults are first resolved into one `RunPlan` (`genrad.pipeline.plan`);
every stage then reads only the plan. Each stage writes into its own folder of the run directory (`RunLayout`) and
is skipped when its outputs are complete for the same plan fields (its fingerprint), so an interrupted run resumes
at the first incomplete stage. Every stage calls the public Python API of its package; this module only wires
them together.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console

from genrad import __version__
from genrad.data import Cohort, load
from genrad.data.splits import DEFAULT_FRACTIONS, split_cohort
from genrad.pipeline.config import STAGES, RunConfig
from genrad.pipeline.plan import RunPlan, build_model, resolve_plan
from genrad.pipeline.stages import run_stage
from genrad.provenance import versions, write_json
from genrad.synthesis.layout import RunLayout


def plan_run(config: RunConfig) -> tuple[RunPlan, Cohort]:
    """Load the data and resolve `config` into its `RunPlan`: every check that needs no training runs here."""
    cohort = load(config.data.path, intensity=config.data.intensity, **config.data.loader_options())
    if config.data.split_fractions is not None or set(cohort.splits) == {"train"}:
        cohort = split_cohort(cohort, config.data.split_fractions or tuple(DEFAULT_FRACTIONS.values()), config.seed)
    return resolve_plan(config, cohort), cohort


def run_pipeline(config: RunConfig, out: str | Path, *, console: Console | None = None, progress: bool = True) -> Path:
    """Run every stage of `config` into `out`, then build the report and return its path."""
    console = console or Console(stderr=True)
    plan, cohort = plan_run(config)
    layout = RunLayout(Path(out))
    layout.root.mkdir(parents=True, exist_ok=True)
    _write_run_record(layout, config, plan, status="running")
    context = _Context(plan=plan, layout=layout, cohort=cohort, progress=progress)
    for stage in STAGES:
        if stage not in plan.stages:
            console.print(f"[dim]- {stage}: disabled[/dim]")
            continue
        ran, seconds = run_stage(layout, stage, plan.fingerprint(stage), functools.partial(_STAGE_WORK[stage], context),
                                 notify=lambda line: console.print(line, markup=False))
        status = f"done in {seconds:.1f} s" if ran else "complete, skipped"
        console.print(f"[green]✓[/green] {stage}: {status}")
    _write_run_record(layout, config, plan, status="complete")
    from genrad.report import build

    return build(layout.root)


class _Context:
    """What the stages share: the plan (stages read nothing else of the configuration), the layout, the cohort."""

    def __init__(self, *, plan: RunPlan, layout: RunLayout, cohort: Cohort, progress: bool) -> None:
        self.plan = plan
        self.layout = layout
        self.cohort = cohort
        self.progress = progress

    @property
    def train(self) -> Any:
        return self.cohort[self.plan["data"]["train_split"]]

    @property
    def val(self) -> Any:
        return self.cohort[self.plan["data"]["val_split"]]

    @property
    def test(self) -> Any:
        return self.cohort[self.plan["data"]["test_split"]]

    def synthetic(self) -> Any:
        from genrad.synthesis import SyntheticSet

        return SyntheticSet(self.layout.synthetic_dir)


def _write_run_record(layout: RunLayout, config: RunConfig, plan: RunPlan, *, status: str) -> None:
    write_json(
        layout.run_json,
        {
            "genrad_version": __version__,
            "status": status,
            "updated": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "config": config.model_dump(mode="json"),
            "plan": plan.as_dict(),
            "model_choice": plan["model"],
            "seed": config.seed,
            "data_hash": plan["data"]["hash"],
            "versions": versions(),
        },
    )


def _stage_data(context: _Context) -> None:
    write_json(context.layout.data_dir / "summary.json", context.cohort.summary())


def _stage_train(context: _Context) -> None:
    """Fit the generator, then distil it into its student (``model/student``) when the plan says so, each within its
    share of the budget; the trainer checkpoints into the model folder and resumes from it after a crash."""
    from genrad.models.checkpoint import STATE
    from genrad.training import train as train_model

    plan = context.plan["train"]
    model = build_model(context.plan["model"], plan, num_classes=context.cohort.num_classes,
                        spatial_dims=context.cohort.spatial_dims)
    train_model(model, context.train, max_minutes=plan["generator_minutes"], max_steps=plan["max_steps"],
                seed=context.plan["seed"], out_dir=context.layout.model_dir, resume=(context.layout.model_dir / STATE).exists(),
                progress=context.progress)
    if plan["student_minutes"] > 0:
        from genrad.models.factory import STUDENT
        from genrad.training.distill import distill_guidance

        folder = context.layout.model_dir / STUDENT
        distill_guidance(model, context.train, max_steps=plan["student_steps"], max_minutes=plan["student_minutes"],
                         seed=context.plan["seed"], out_dir=folder, resume=(folder / STATE).exists(), progress=context.progress)


def _stage_generate(context: _Context) -> None:
    """Sample the synthetic set as the plan says: with the utility strategy's sampling settings for the trained
    family when it has some (by the model itself), else as the model samples (by its distilled student when the run
    has one)."""
    from genrad.synthesis import generate

    plan = context.plan["generate"]
    per_class = None if plan["per_class"] is None else {int(k): n for k, n in plan["per_class"].items()}
    generate(
        context.layout.model_dir,
        per_class=per_class,
        multiple=plan["multiple"],
        data=context.cohort,
        out=context.layout.synthetic_dir,
        seed=context.plan["seed"],
        shard_size=plan["shard_size"],
        backend=plan["backend"],
        workers=plan["workers"],
        filter=_quality_filter(context) if plan["filter"] else None,
        sampling=plan["sampling"],
        student=plan["sampling"] is None,
        progress=context.progress,
    )


def _quality_filter(context: _Context) -> Callable[..., Any]:
    from genrad.evaluation.qa import SampleQA

    features = context.plan["generate"]["filter_features"]
    qa = SampleQA(feature_set=features["feature_set"], engine=features["engine"] or "fast", seed=context.plan["seed"])
    return qa.fit(context.train, context.val).as_filter()


def _stage_fidelity(context: _Context) -> None:
    from genrad.evaluation.outputs import evaluate_fidelity

    plan = context.plan["fidelity"]
    evaluate_fidelity(
        context.test,
        context.synthetic().split,
        out=context.layout.fidelity_dir,
        floor_real=context.train,
        class_names=context.cohort.class_names,
        feature_set=plan["feature_set"],
        engine=plan["engine"],
        n_bootstrap=plan["n_bootstrap"],
        seed=context.plan["seed"],
        sources=_sources(context),
    )


def _stage_privacy(context: _Context) -> None:
    from genrad.evaluation.outputs import evaluate_privacy

    synthetic = context.synthetic()
    plan = context.plan["privacy"]
    evaluate_privacy(
        context.train,
        context.test,
        synthetic.split,
        out=context.layout.privacy_dir,
        features=tuple(plan["features"]),
        n_bootstrap=plan["n_bootstrap"],
        seed=context.plan["seed"],
        sources=_sources(context),
        generator=synthetic.generator,
    )


def _sources(context: _Context) -> dict[str, Any]:
    data = context.plan["data"]
    return {
        "real": {"path": data["path"], "train_split": data["train_split"], "test_split": data["test_split"]},
        "synthetic": {"path": str(context.layout.synthetic_npz)},
    }


def _stage_utility(context: _Context) -> None:
    from genrad.evaluation.utility import evaluate_utility

    plan = context.plan["utility"]
    evaluate_utility(
        context.cohort,
        context.synthetic().split,
        out=context.layout.utility_dir,
        seeds=plan["seeds"],
        strategy=plan["strategy"],
        multiples=plan["multiples"],
        quick=plan["quick"],
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
