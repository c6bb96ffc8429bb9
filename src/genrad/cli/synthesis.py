"""`genrad generate`: a trained model -> a synthetic dataset (sharded, resumable, local or Ray)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer


def generate_command(
    run_dir: Path = typer.Argument(..., help="Run directory of a trained model (config.json + model.safetensors)."),
    out: Path = typer.Option(..., "--out", help="Output folder (rerun the same command to resume)."),
    per_class: str | None = typer.Option(None, "--per-class", help="Images per class, e.g. 0=5000,1=1000."),
    balance: bool = typer.Option(False, "--balance", help="Top every class up to the largest real class."),
    multiple: float | None = typer.Option(None, "--multiple", help="K x the real training set, same class ratio."),
    data: str | None = typer.Option(None, "--data", help="Real data: train class counts, clinical covariates, QA reference."),
    covariates: Path | None = typer.Option(None, "--covariates", help="CSV of covariate rows to draw from (optional label column)."),
    seed: int = typer.Option(0, "--seed", help="Base seed: the same seed gives the same bytes."),
    shard_size: int = typer.Option(1000, "--shard-size", help="Images per shard (the unit of work and of resume)."),
    batch_size: int = typer.Option(250, "--batch-size", help="Images per model call inside a shard."),
    fmt: str = typer.Option("npz", "--format", help="npz (always written), or also png / nifti files per image."),
    backend: str = typer.Option("local", "--backend", help="local (process pool) or ray."),
    workers: int = typer.Option(1, "--workers", help="Worker processes (local) or Ray actors."),
    address: str | None = typer.Option(None, "--address", help="Ray cluster address; default starts a local Ray."),
    filter_flagged: bool = typer.Option(False, "--filter", help="Drop samples flagged by the per-sample QA (needs --data)."),
    with_clinical: bool = typer.Option(
        False, "--with-clinical", help="Also draw a synthetic clinical record per image (per-class SDV copula; needs --data)."
    ),
    guidance_scale: float | None = typer.Option(
        None, "--guidance-scale", help="Diffusion only: classifier-free guidance weight of the sampler (default: the run's)."
    ),
    steps: int | None = typer.Option(None, "--steps", help="Diffusion only: sampling steps (default: the model's)."),
    teacher: bool = typer.Option(False, "--teacher", help="Sample with the run's own model even when it has a distilled student."),
    strategy: str | None = typer.Option(
        None, "--strategy",
        help="Sample as this utility strategy prescribes for training a classifier ('default': genrad's validated one; "
             "genrad.evaluation.utility.STRATEGIES), with the run's own model.",
    ),
) -> None:
    """Generate synthetic images into OUT: synthetic.npz (MedMNIST layout), manifest.parquet/.csv, shards/."""
    from genrad.data import load
    from genrad.paths import check_output
    from genrad.synthesis import generate

    check_output(out, kind="folder")
    cohort = load(data) if data is not None else None
    sampling = {"guidance_scale": guidance_scale, "num_inference_steps": steps}
    if strategy is not None:
        sampling, teacher = _strategy_sampling(run_dir, strategy, sampling), True
    synthetic = generate(
        run_dir,
        per_class=per_class,
        balance=balance,
        multiple=multiple,
        covariates=covariates,
        data=cohort,
        out=out,
        seed=seed,
        shard_size=shard_size,
        batch_size=batch_size,
        format=fmt,
        backend=backend,
        workers=workers,
        address=address,
        filter=_qa_filter(cohort, seed) if filter_flagged else None,
        clinical=with_clinical,
        sampling=sampling,
        student=not teacher,
    )
    plan = synthetic.record["generation"]["plan"]
    per_class_text = ", ".join(f"{k}: {n}" for k, n in plan["per_class"].items())
    typer.echo(f"{synthetic.out}: {len(synthetic)} of {plan['n']} images kept ({per_class_text})")


def _strategy_sampling(run_dir: Path, strategy: str, given: dict[str, Any]) -> dict[str, Any]:
    """The utility strategy's sampling settings for the run's model family, under the ones given explicitly."""
    from genrad.evaluation.utility import get_strategy
    from genrad.models import load_sampler

    family = load_sampler(run_dir, student=False).family
    settings = get_strategy(strategy).sampling_for(family) or {}
    return {**settings, **{key: value for key, value in given.items() if value is not None}}


def _qa_filter(cohort: Any, seed: int) -> Any:
    """The per-sample QA of `genrad.evaluation.qa`, calibrated on the real train / val splits, as a filter."""
    from genrad.errors import InputError

    if cohort is None:
        raise InputError("--data PATH with --filter", "no real data", "the QA is calibrated on real images: add --data")
    try:
        from genrad.evaluation.qa import SampleQA
    except ImportError:
        raise InputError(
            "genrad's per-sample QA (genrad.evaluation.qa)", "it is not available in this install", "run without --filter"
        ) from None
    return SampleQA(seed=seed).fit(cohort.train, cohort.val).as_filter()
