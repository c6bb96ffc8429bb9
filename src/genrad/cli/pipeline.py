"""`genrad run`, `genrad demo` and `genrad report`: the main job end to end."""

from __future__ import annotations

from pathlib import Path

import typer

from genrad.paths import check_output
from genrad.pipeline.config import RunConfig, default_config_yaml, load_config


def run_command(
    data: str = typer.Option(None, "--data", help="A MedMNIST .npz, an image folder, or 'phantom'."),
    out: Path = typer.Option(None, "--out", help="Run directory (stages resume there)."),
    model: str = typer.Option(None, "--model", help="vae | gan | diffusion."),
    budget_minutes: float = typer.Option(None, "--budget-minutes", help="Training time budget."),
    config: Path = typer.Option(None, "--config", help="run.yaml / run.toml with any option."),
    seed: int = typer.Option(None, "--seed", help="Base seed for every stage."),
    size: int = typer.Option(None, "--size", help="Resize a folder's images to this side (mixed sizes need it)."),
    print_config: bool = typer.Option(False, "--print-config", help="Print the default configuration and exit."),
    print_plan: bool = typer.Option(False, "--print-plan", help="Print the resolved run plan (JSON) and exit before any work."),
) -> None:
    """Validate data -> train -> generate (balanced, filtered) -> fidelity -> privacy -> utility -> report."""
    if print_config:
        typer.echo(default_config_yaml(), nl=False)
        return
    import json

    from genrad.errors import InputError
    from genrad.pipeline.run import plan_run, run_pipeline

    base = load_config(config) if config is not None else RunConfig()
    overrides = {"data.path": data, "train.model": model, "train.budget_minutes": budget_minutes, "seed": seed,
                 "data.size": size}
    resolved = base.with_overrides(**overrides)
    if print_plan:
        typer.echo(json.dumps(plan_run(resolved)[0].as_dict(), indent=2))
        return
    if out is None:
        raise InputError("--out RUN_DIR", "no run directory", "add --out runs/my-run")
    check_output(out, kind="folder")
    report = run_pipeline(resolved, out)
    typer.echo(f"report: {report}")


def demo_command(
    out: Path = typer.Option(Path("demo_out"), "--out", help="Run directory for the demo."),
    seed: int = typer.Option(0, "--seed", help="Base seed."),
) -> None:
    """The whole pipeline on the built-in phantom, with budgets that finish in about 5 minutes on 2 CPU cores."""
    from genrad.pipeline.demo import run_demo

    check_output(out, kind="folder")
    report = run_demo(out, seed=seed)
    typer.echo(f"report: {report.resolve()}")


def report_command(
    run_dir: Path = typer.Argument(..., help="A run directory written by `genrad run`."),
    out: Path = typer.Option(None, "--out", help="Output HTML file (default RUN_DIR/report.html)."),
) -> None:
    """One self-contained HTML report (images embedded, opens offline)."""
    from genrad.report import build

    check_output(out if out is not None else run_dir / "report.html", kind="file", suffix=".html")
    typer.echo(str(build(run_dir, out)))
