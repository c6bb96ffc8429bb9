"""`genrad train` and `genrad sample`: fit a generator on a dataset; draw synthetic images from a run."""

from __future__ import annotations

from pathlib import Path

import typer


def train(
    data: str = typer.Option(..., "--data", help="A MedMNIST .npz, an image folder with labels.csv, or 'phantom'."),
    split: str = typer.Option("train", "--split", help="The split to train on."),
    model: str = typer.Option(..., "--model", help="Model family: vae, gan or diffusion."),
    out: Path = typer.Option(..., "--out", help="Run directory: checkpoints, history.csv, sample grids."),
    max_minutes: float | None = typer.Option(None, "--max-minutes", help="Wall-clock budget of this call."),
    max_steps: int | None = typer.Option(None, "--max-steps", help="Total optimisation steps (resumed runs continue to it)."),
    seed: int = typer.Option(0, "--seed", help="Random seed: the same seed gives the same weights (on the CPU)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the checkpoint in --out."),
    image_size: int | None = typer.Option(None, "--image-size", help="Train and sample at this side length."),
    covariates: str = typer.Option("", "--covariates", help="Comma-separated numeric clinical columns to condition on."),
    dp: bool = typer.Option(False, "--dp", help="Differentially private training (DP-SGD, Opacus); needs --epsilon."),
    epsilon: float | None = typer.Option(None, "--epsilon", help="DP budget: --max-steps steps spend at most this."),
    delta: float | None = typer.Option(None, "--delta", help="DP delta (default min(1e-5, 1/(10 n)))."),
    max_grad_norm: float = typer.Option(1.0, "--max-grad-norm", help="DP per-image gradient clipping norm."),
    precision: str = typer.Option("fp32", "--precision",
                                  help="fp32, or bf16: mixed-precision steps (~1.7x the steps per CPU-minute on AVX512-BF16 CPUs)."),
    intensity_gamma: float = typer.Option(1.0, "--intensity-gamma",
                                          help="Model pixels**(1/G): 2 is a square-root domain, for signal-dependent noise "
                                               "such as ultrasound speckle."),
    black_level: float = typer.Option(0.0, "--black-level",
                                      help="The data's display floor in [0, 1) units (e.g. 1/255 = 0.0039 for BreastMNIST): "
                                           "clipped regions come out flat at it."),
    floor_gap: float = typer.Option(0.0, "--floor-gap",
                                    help="With --black-level: model-space gap (0-1, e.g. 0.3) between clipped pixels and the "
                                         "darkest tissue, so clipping is a state the model commits to."),
    floor_ramp: float = typer.Option(0.0, "--floor-ramp",
                                     help="With --floor-gap: clipped pixels descend from the gap edge to -1 over this many "
                                          "pixels of distance to unclipped tissue, so borders of clipped regions can be gradual."),
    guidance_scale: float | None = typer.Option(None, "--guidance-scale",
                                                help="Diffusion only: classifier-free guidance weight of the sampler (default 1.5; "
                                                     "5 scored best on BreastMNIST)."),
    guide_step: int | None = typer.Option(None, "--guide-step",
                                          help="Diffusion only: autoguidance by the model's own EMA weights at this step "
                                               "instead of classifier-free guidance (e.g. 350 with --guidance-scale 2)."),
) -> None:
    """Train a conditional generator (VAE, GAN or diffusion) and write its run directory."""
    from genrad.data import load
    from genrad.errors import InputError
    from genrad.models import Generator, build
    from genrad.paths import check_output

    check_output(out, kind="folder")
    if resume and not (out / "training_state.json").exists():
        raise InputError("--resume with a checkpoint in --out", f"no training_state.json in {out}",
                         "drop --resume to start a new run, or point --out at the interrupted run", source="--resume")
    if model not in Generator.registry:
        raise InputError(f"--model one of {', '.join(Generator.registry)}", repr(model), "choose a listed family", source="--model")
    cohort = load(data)
    names = tuple(c.strip() for c in covariates.split(",") if c.strip())
    from genrad.training.dp import PRIVATE_SETTINGS

    if guide_step is not None and model != "diffusion":
        raise InputError("--guide-step with --model diffusion", f"--model {model}", "drop --guide-step", source="--guide-step")
    generator = build(
        model, num_classes=cohort.num_classes, spatial_dims=cohort.spatial_dims, covariates=names, image_size=image_size,
        precision=precision, intensity_gamma=intensity_gamma, black_level=black_level, floor_gap=floor_gap,
        floor_ramp=floor_ramp, guide_step=guide_step, guidance_scale=guidance_scale,
        **(PRIVATE_SETTINGS.get(model, {}) if dp else {}),
    )
    if dp or epsilon is not None:
        from genrad.training.dp import fit_private

        if epsilon is None or not dp:
            raise InputError("--dp together with --epsilon", f"--dp {dp}, --epsilon {epsilon}", "pass both, e.g. --dp --epsilon 8",
                             source="--epsilon" if dp else "--dp")
        fit_private(generator, cohort[split], epsilon=epsilon, delta=delta, max_grad_norm=max_grad_norm, max_steps=max_steps,
                    max_minutes=max_minutes, seed=seed, out_dir=out, resume=resume)
    else:
        if resume:
            from genrad.training.dp import refuse_private_run

            refuse_private_run(out)
        generator.fit(cohort[split], max_steps=max_steps, max_minutes=max_minutes, seed=seed, out_dir=out, resume=resume)
    spent = f", epsilon {generator.privacy_['epsilon']:.3g} (delta {generator.privacy_['delta']:.2g})" if dp else ""
    typer.echo(f"{out}  ({type(generator).__name__}, {generator.step_} steps, model {generator.model_hash()[:12]}{spent})")


def sample(
    run_dir: Path = typer.Argument(..., help="A run directory written by `genrad train`."),
    n: int = typer.Option(..., "--n", help="Number of images."),
    out: Path = typer.Option(..., "--out", help="Output .npz (MedMNIST layout, split 'train', marked synthetic)."),
    label: int | None = typer.Option(None, "--label", help="Generate this class only (default: the training class mix)."),
    seed: int = typer.Option(0, "--seed", help="Random seed: the same seed gives the same bytes."),
    guidance_scale: float | None = typer.Option(None, "--guidance-scale",
                                                help="Diffusion only: classifier-free guidance weight of the sampler (default: the run's)."),
) -> None:
    """Draw synthetic images from a trained run into a MedMNIST-style .npz."""
    from genrad.models import load
    from genrad.models.export import synthetic_cohort
    from genrad.paths import check_output

    check_output(out, kind="file", suffix=".npz")
    model = load(run_dir).with_sampling(guidance_scale=guidance_scale)
    cohort = synthetic_cohort(model, n, label=label, seed=seed, source=str(run_dir))
    cohort.save(str(out))
    typer.echo(f"{out}  ({n} synthetic images from {run_dir})")

