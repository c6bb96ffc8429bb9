"""`genrad data ...`: inspect a dataset, write the built-in phantom."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

data_app = typer.Typer(help="Inspect datasets and write the built-in phantom.", no_args_is_help=True)


@data_app.command("inspect")
def inspect(
    path: str = typer.Argument(..., help="A MedMNIST .npz, a folder of images with labels.csv, or 'phantom'."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of a table."),
) -> None:
    """Splits, shapes, dtype, intensity range, class counts and clinical columns of a dataset."""
    from genrad.data import load

    summary = load(path).summary()
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    table = Table(title=f"{path}  (hash {summary['content_hash'][:12]})")
    for column in ("split", "n", "shape", "dtype", "range", "display floor", "classes"):
        table.add_column(column)
    for name, split in summary["splits"].items():
        low, high = split["intensity_range"]
        classes = ", ".join(f"{summary['class_names'][int(k)]}: {v}" for k, v in split["classes"].items())
        floor = "none" if split["display_floor"] is None else f"{split['display_floor']:.4g}"
        table.add_row(name, str(split["n"]), "x".join(map(str, split["shape"])), split["dtype"], f"{low:.3g}..{high:.3g}",
                      floor, classes)
    console = Console()
    console.print(table)
    console.print(f"clinical columns: {', '.join(summary['clinical_columns']) or 'none'}")
    console.print(f"preprocessing: {summary['preprocessing']}")
    floor = summary["splits"].get("train", {}).get("display_floor")
    if floor is not None:
        console.print(f"the train split is clipped at {floor:.4g}: train with --black-level {floor:.4g} (and --floor-gap 0.6)")


@data_app.command("phantom")
def phantom(
    out: Path = typer.Option(..., "--out", help="Output .npz file."),
    n: int = typer.Option(600, "--n", help="Number of images over all splits."),
    size: int = typer.Option(28, "--size", help="Image side in pixels (28, 64, 128; 32 for 3D)."),
    dims: int = typer.Option(2, "--dims", help="2 for images, 3 for volumes."),
    seed: int = typer.Option(0, "--seed", help="Random seed: the same seed gives the same bytes."),
) -> None:
    """Write the built-in procedural phantom (lesions with known parameters, a rare class, clinical data)."""
    from genrad.data.phantom import make_phantom
    from genrad.paths import check_output

    check_output(out, kind="file", suffix=".npz")
    cohort = make_phantom(n=n, size=size, dims=dims, seed=seed)
    cohort.save(str(out))
    typer.echo(str(out))
