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
    from genrad.data.intensity import IntensityMap

    cohort = load(path)
    summary = cohort.summary()
    if "train" in summary["splits"]:
        summary["intensity_auto"] = IntensityMap.from_data(cohort.train.images).as_dict()
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
    if "intensity_auto" in summary:
        chosen = IntensityMap(**summary["intensity_auto"])
        described = ("the identity map (no clipped display floor)" if chosen == IntensityMap() else
                     "the clipped-ultrasound map " + ", ".join(f"{k}={v:.4g}" for k, v in chosen.as_dict().items()))
        console.print(f"training applies {described} by default (--intensity auto); override with --intensity")


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
