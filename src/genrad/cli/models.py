"""`genrad train`, `genrad distill` and `genrad sample`: fit a generator on a dataset, distil its guidance into a
student, draw synthetic images from a run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer


def train(
    data: str = typer.Option(..., "--data", help="A MedMNIST .npz, an image folder with labels.csv, or 'phantom'."),
    split: str = typer.Option("train", "--split", help="The split to train on."),
    model: str | None = typer.Option(None, "--model", help="Model family (vae, gan, diffusion) with its defaults."),
    preset: str | None = typer.Option(None, "--preset", help="A validated configuration (genrad.models.presets); "
                                      "without --model or --preset: the best preset for the budget."),
    out: Path = typer.Option(..., "--out", help="Run directory: checkpoints, history.csv, sample grids."),
    max_minutes: float | None = typer.Option(None, "--max-minutes", help="Wall-clock budget of this call."),
    max_steps: int | None = typer.Option(None, "--max-steps", help="Total optimisation steps (resumed runs continue to it)."),
    seed: int = typer.Option(0, "--seed", help="Random seed: the same seed gives the same weights (on the CPU)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the checkpoint in --out."),
    image_size: int | None = typer.Option(None, "--image-size", help="Train and sample at this side length."),
    covariates: str = typer.Option("", "--covariates", help="Comma-separated numeric clinical columns to condition on."),
    intensity: str | None = typer.Option(None, "--intensity", help="'auto' (chosen from the data, the default), "
                                         "'none', or IntensityMap fields, e.g. gamma=2,black_level=0.0039,floor_gap=0.6"),
    option: list[str] = typer.Option([], "--option", help="Any other constructor argument of the family, KEY=VALUE "
                                     "(JSON value), repeatable: --option guidance_scale=1.25 --option guide_step=350"),
    precision: str | None = typer.Option(None, "--precision", help="fp32, or bf16: mixed-precision training steps."),
    dp: bool = typer.Option(False, "--dp", help="Differentially private training (DP-SGD, Opacus); needs --epsilon."),
    epsilon: float | None = typer.Option(None, "--epsilon", help="DP budget: --max-steps steps spend at most this."),
    delta: float | None = typer.Option(None, "--delta", help="DP delta (default min(1e-5, 1/(10 n)))."),
    max_grad_norm: float = typer.Option(1.0, "--max-grad-norm", help="DP per-image gradient clipping norm."),
) -> None:
    """Train a conditional generator (VAE, GAN or diffusion) and write its run directory."""
    from genrad.data import load
    from genrad.errors import InputError
    from genrad.models import build
    from genrad.models.presets import choose_preset
    from genrad.paths import check_output
    from genrad.training import train as train_model

    check_output(out, kind="folder")
    if dp != (epsilon is not None):
        raise InputError("--dp together with --epsilon", f"--dp {dp}, --epsilon {epsilon}", "pass both, e.g. --dp --epsilon 8",
                         source="--epsilon" if dp else "--dp")
    options = {**keyword_options(option, "--option"), "intensity": intensity_option(intensity)}
    cohort = load(data)
    if model is None and preset is None:
        preset, reason = choose_preset(budget_minutes=max_minutes, n_images=len(cohort[split]))
        typer.echo(f"preset {preset}: {reason}", err=True)
    generator = build(model, preset=preset, private=dp, num_classes=cohort.num_classes, spatial_dims=cohort.spatial_dims,
                      covariates=tuple(c.strip() for c in covariates.split(",") if c.strip()), image_size=image_size,
                      precision=precision, **options)
    train_model(generator, cohort[split], max_steps=max_steps, max_minutes=max_minutes, seed=seed, out_dir=out, resume=resume,
                epsilon=epsilon, delta=delta, max_grad_norm=max_grad_norm)
    spent = f", epsilon {generator.privacy_['epsilon']:.3g} (delta {generator.privacy_['delta']:.2g})" if dp else ""
    typer.echo(f"{out}  ({type(generator).__name__}, {generator.step_} steps, model {generator.model_hash()[:12]}{spent})")


def keyword_options(pairs: list[str], flag: str) -> dict[str, Any]:
    """``KEY=VALUE`` pairs with JSON values (plain text when not JSON) as a dict."""
    from genrad.errors import InputError

    found: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise InputError(f"{flag} KEY=VALUE", repr(pair), f"write e.g. {flag} guidance_scale=1.25", source=flag)
        try:
            found[key.strip()] = json.loads(text)
        except json.JSONDecodeError:
            found[key.strip()] = text
    return found


def intensity_option(text: str | None) -> Any:
    """``--intensity``: None (the default, 'auto'), 'auto', 'none' (the identity map) or IntensityMap fields."""
    if text is None or text == "auto":
        return text
    if text == "none":
        return {}
    return keyword_options(text.split(","), "--intensity")


def distill(
    run_dir: Path = typer.Argument(..., help="A run directory of a guided diffusion model (`genrad train`)."),
    data: str = typer.Option(..., "--data", help="The data the model was trained on (checked by its hash)."),
    split: str = typer.Option("train", "--split", help="The split the model was trained on."),
    max_minutes: float | None = typer.Option(None, "--max-minutes", help="Wall-clock budget of the distillation."),
    max_steps: int | None = typer.Option(None, "--max-steps", help="Student steps (default: genrad.training.distill's)."),
    steps: int | None = typer.Option(None, "--steps", help="Sampling steps of the student (default: genrad.training.distill's)."),
    seed: int = typer.Option(0, "--seed", help="Random seed: the same seed gives the same weights (on the CPU)."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted distillation of this run."),
) -> None:
    """Distil a guided diffusion model into a student that samples without guidance (RUN_DIR/student)."""
    from genrad.data import load
    from genrad.models import load as load_model
    from genrad.models.factory import STUDENT
    from genrad.training.distill import distill_guidance

    cohort = load(data)
    student = distill_guidance(load_model(run_dir), cohort[split], max_steps=max_steps, max_minutes=max_minutes,
                               num_inference_steps=steps, seed=seed, out_dir=run_dir / STUDENT, resume=resume)
    typer.echo(f"{run_dir / STUDENT}  (student of {student.distilled_from['model_hash'][:12]}, {student.step_} steps, "
               f"samples in {student.num_inference_steps} network calls per image)")


def sample(
    run_dir: Path = typer.Argument(..., help="A run directory written by `genrad train` (its student when distilled)."),
    n: int = typer.Option(..., "--n", help="Number of images."),
    out: Path = typer.Option(..., "--out", help="Output .npz (MedMNIST layout, split 'train', marked synthetic)."),
    label: int | None = typer.Option(None, "--label", help="Generate this class only (default: the training class mix)."),
    seed: int = typer.Option(0, "--seed", help="Random seed: the same seed gives the same bytes."),
    guidance_scale: float | None = typer.Option(None, "--guidance-scale",
                                                help="Diffusion only: classifier-free guidance weight (default: the run's)."),
    steps: int | None = typer.Option(None, "--steps", help="Diffusion only: sampling steps (default: the model's)."),
    teacher: bool = typer.Option(False, "--teacher", help="Sample with the run's own model even when it has a distilled student."),
) -> None:
    """Draw synthetic images from a trained run into a MedMNIST-style .npz."""
    from genrad.models import load_sampler
    from genrad.paths import check_output
    from genrad.synthesis.export import synthetic_cohort

    check_output(out, kind="file", suffix=".npz")
    model = load_sampler(run_dir, student=not teacher).with_sampling(guidance_scale=guidance_scale, num_inference_steps=steps)
    cohort = synthetic_cohort(model, n, label=label, seed=seed, source=str(run_dir))
    cohort.save(str(out))
    typer.echo(f"{out}  ({n} synthetic images from {run_dir})")

