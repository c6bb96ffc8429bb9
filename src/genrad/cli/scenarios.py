"""`genrad scenarios ...`: imaging-parameter sweeps (stress tests, scenario augmentation) and image + clinical pairs."""

from __future__ import annotations

from pathlib import Path

import typer

scenarios_app = typer.Typer(
    help="Imaging-parameter sweeps (robustness stress tests, scenario augmentation) and multi-modal fidelity.",
    no_args_is_help=True,
)

GRID_HELP = "Sweep grid YAML (perturbations: {name: [severities]}); default: `genrad scenarios grid`."


def _grid(path: Path | None):
    from genrad.scenarios import default_grid, load_grid

    return default_grid() if path is None else load_grid(path)


@scenarios_app.command("grid")
def grid_command(
    out: Path | None = typer.Option(None, "--out", help="Write the default grid here instead of printing it."),
) -> None:
    """The default sweep grid as YAML, with each perturbation's severity unit: a starting point for --grid."""
    from genrad.provenance import atomic_path
    from genrad.scenarios import PERTURBATIONS, default_grid

    if out is not None:
        from genrad.paths import check_output

        check_output(out, kind="file", suffix=".yaml")
    grid = default_grid()
    units = "\n".join(f"#   {name}: {p.unit} ({p.description}; {p.library})" for name, p in PERTURBATIONS.items())
    text = f"# genrad sweep grid. Severity units:\n{units}\n{grid.to_yaml()}"
    if out is None:
        typer.echo(text, nl=False)
        return
    with atomic_path(out) as temp:
        temp.write_text(text, encoding="utf-8")
    typer.echo(str(out))


@scenarios_app.command("stress")
def stress_command(
    model: Path = typer.Option(..., "--model", help="Classifier directory (Classifier.save: config.json + model.safetensors)."),
    data: str = typer.Option(..., "--data", help="Real data (.npz, folder or 'phantom'); its test split is perturbed."),
    grid: Path | None = typer.Option(None, "--grid", help=GRID_HELP),
    out: Path = typer.Option(..., "--out", help="Output folder: stress.json, robustness.md/.csv, heatmap.png."),
    split: str = typer.Option("test", "--split", help="Split to perturb and score."),
    quick: bool = typer.Option(False, "--quick", help="Lowest and highest severity only, fewer bootstrap resamples."),
    seed: int = typer.Option(0, "--seed", help="Seed of every perturbation and of the bootstrap."),
) -> None:
    """Score a saved classifier on the real test images perturbed at every grid cell (rerun to resume)."""
    from genrad.paths import check_output
    from genrad.scenarios.stress import stress

    check_output(out, kind="folder")
    sweep = _grid(grid)  # a bad grid fails here, before any data or model is loaded
    cells = stress(model, data, sweep, out, split=split, seed=seed, quick=quick)
    worst = max(cells, key=lambda c: c["auc_drop"])
    typer.echo(
        f"{out}: {len(cells) - 1} cells, clean AUC {cells[0]['auc']:.3f}; largest drop {worst['auc_drop']:+.3f} "
        f"({worst['perturbation']} at {worst['severity']:g})"
    )


@scenarios_app.command("augment")
def augment_command(
    data: str = typer.Option(..., "--data", help="Real data with train / val / test splits."),
    out: Path = typer.Option(..., "--out", help="Output folder: augment.json, real/ and real+scenarios/ stress outputs."),
    grid: Path | None = typer.Option(None, "--grid", help=GRID_HELP),
    synthetic: str | None = typer.Option(
        None, "--synthetic", help="Synthetic set (synthetic.npz) to perturb; default: the real training images."
    ),
    copies: int = typer.Option(1, "--copies", help="Perturbed copies of each pool image."),
    quick: bool = typer.Option(False, "--quick", help="Short training, extreme severities only, fewer resamples."),
    seed: int = typer.Option(0, "--seed", help="Seed of training, perturbations and bootstrap."),
) -> None:
    """Train the classifier with and without scenario-perturbed data; compare robustness on the perturbed real test set."""
    from genrad.data import load
    from genrad.paths import check_output
    from genrad.scenarios.augment import AUGMENTED, BASELINE, augment

    check_output(out, kind="folder")
    sweep = _grid(grid)
    cohort = load(data)
    pool = load(synthetic).train if synthetic is not None else None
    result = augment(cohort, sweep, out, pool=pool, copies=copies, seed=seed, quick=quick)
    drops = result["summary"]["mean_drop_at_highest_severity"]
    typer.echo(
        f"{out}: mean AUC drop at the highest severity {drops[BASELINE]:.3f} ({BASELINE}) vs "
        f"{drops[AUGMENTED]:.3f} ({AUGMENTED}); smaller for {result['summary']['perturbations_with_smaller_drop']} "
        f"of {result['summary']['perturbations']} perturbations"
    )


@scenarios_app.command("multimodal")
def multimodal_command(
    data: str = typer.Option(..., "--data", help="Real data with a clinical table."),
    synthetic: str = typer.Option(..., "--synthetic", help="Synthetic image + clinical pairs (synthetic.npz with clinical columns)."),
    out: Path = typer.Option(..., "--out", help="Output folder: multimodal.json."),
    covariates: str = typer.Option("lesion_diameter_mm", "--covariates", help="Comma-separated covariates to link to radiomic features."),
    split: str = typer.Option("train", "--split", help="Real split to compare with (pairs are chosen on 'val')."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap and of the shuffled control."),
) -> None:
    """Fidelity of image + clinical pairs: table (SDMetrics), images (radiomics) and covariate-feature links."""
    from genrad.data import load
    from genrad.paths import check_output
    from genrad.provenance import versions, write_json
    from genrad.scenarios.multimodal import multimodal_fidelity

    check_output(out, kind="folder")
    from genrad.cli.evaluate import synthetic_file

    cohort, synthetic_set = load(data), load(synthetic_file(Path(synthetic)))
    select_on = cohort.splits.get("val") if split != "val" else None
    result = multimodal_fidelity(
        cohort[split], synthetic_set.train, covariates=[c.strip() for c in covariates.split(",") if c.strip()],
        select_on=select_on, seed=seed, progress=True,
    )
    result["provenance"] = {
        "versions": versions(), "data": cohort.source, "data_hash": cohort.content_hash(),
        "synthetic": synthetic_set.source, "synthetic_hash": synthetic_set.content_hash(), "split": split,
    }
    write_json(out / "multimodal.json", result)
    links = ", ".join(
        f"{row['covariate']}~{row['feature']}: r {row['r_synthetic']:.2f} vs real {row['r']:.2f} "
        f"[{row['ci_low']:.2f}, {row['ci_high']:.2f}] {'ok' if row['reproduced'] else 'NOT reproduced'}"
        for row in result["cross_modal"]
    )
    typer.echo(f"{out / 'multimodal.json'}: table score {result['table']['score']:.3f}; {links}")
