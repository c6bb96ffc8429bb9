"""`genrad data ...`: inspect a dataset, write the built-in phantom."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

data_app = typer.Typer(help="Inspect datasets and write the built-in phantom.", no_args_is_help=True)


SIZE_HELP = "Resize a folder's images (and masks, nearest-neighbour) to this side; mixed sizes need it."
REGIONS_HELP = "Several mask files of one image: merge into one label, or keep as labels 1, 2, ..."
OUTSIDE_HELP = "Read files that links or labels.csv lead to outside the folder (a layout you trust)."


def _folder_options(size: int | None, mask_regions: str, allow_outside_root: bool, channels: int | None) -> dict[str, Any]:
    """The loader options a user gave (`genrad.data.folder.load_folder`); an npz refuses any of them."""
    given = {"size": size, "mask_regions": None if mask_regions == "merge" else mask_regions,
             "allow_outside_root": allow_outside_root or None, "channels": channels}
    return {key: value for key, value in given.items() if value is not None}


@data_app.command("inspect")
def inspect(
    path: str = typer.Argument(..., help="A MedMNIST .npz, a folder of images (labels.csv, class folders, MSD), or 'phantom'."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of a table."),
    size: int | None = typer.Option(None, "--size", help=SIZE_HELP),
    channels: int | None = typer.Option(None, "--channels", help="1: grey, 3: RGB (converted and recorded)."),
    mask_regions: str = typer.Option("merge", "--mask-regions", help=REGIONS_HELP),
    allow_outside_root: bool = typer.Option(False, "--allow-outside-root", help=OUTSIDE_HELP),
) -> None:
    """Splits, shapes, dtype, intensity range, class counts, masks and clinical columns of a dataset."""
    from genrad.data import load
    from genrad.data.intensity import IntensityMap

    cohort = load(path, **_folder_options(size, mask_regions, allow_outside_root, channels))
    summary = cohort.summary()
    if "train" in summary["splits"]:
        summary["intensity_auto"] = IntensityMap.from_data(cohort.train.images).as_dict()
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    table = Table(title=f"{path}  (hash {summary['content_hash'][:12]})")
    for column in ("split", "n", "shape", "dtype", "range", "display floor", "classes", "masks"):
        table.add_column(column)
    for name, split in summary["splits"].items():
        low, high = split["intensity_range"]
        classes = ", ".join(f"{summary['class_names'][int(k)]}: {v}" for k, v in split["classes"].items())
        floor = "none" if split["display_floor"] is None else f"{split['display_floor']:.4g}"
        masks = split.get("masks")
        described = "none" if masks is None else f"labels {masks['labels']}, {masks['empty']} empty"
        table.add_row(name, str(split["n"]), "x".join(map(str, split["shape"])), split["dtype"], f"{low:.3g}..{high:.3g}",
                      floor, classes, described)
    console = Console()
    console.print(table)
    console.print(f"clinical columns: {', '.join(summary['clinical_columns']) or 'none'}")
    console.print(f"preprocessing: {summary['preprocessing']}")
    if "intensity_auto" in summary:
        chosen = IntensityMap(**summary["intensity_auto"])
        described = ("the identity map (no clipped display floor)" if chosen == IntensityMap() else
                     "the clipped-ultrasound map " + ", ".join(f"{k}={v:.4g}" for k, v in chosen.as_dict().items()))
        console.print(f"training applies {described} by default (--intensity auto); override with --intensity")


@data_app.command("prepare")
def prepare(
    path: str = typer.Argument(..., help="A folder of images (labels.csv, class folders with masks, an MSD task)."),
    out: Path = typer.Option(..., "--out", help="Output .npz (genrad's MedMNIST layout, masks as <split>_masks)."),
    size: int | None = typer.Option(None, "--size", help=SIZE_HELP),
    channels: int | None = typer.Option(None, "--channels", help="1: grey, 3: RGB (converted and recorded)."),
    mask_regions: str = typer.Option("merge", "--mask-regions", help=REGIONS_HELP),
    split_fractions: str | None = typer.Option(None, "--split-fractions", help="train,val,test fractions for data "
                                               "without a split, stratified by class, e.g. 0.7,0.1,0.2."),
    seed: int = typer.Option(0, "--seed", help="Seed of the split."),
    intensity: str = typer.Option("auto", "--normalise", help="Pixel values to [0, 1]: auto, uint8, minmax, percentile, "
                                  "image-percentile (each image by its own range, for MRI) or none."),
    allow_outside_root: bool = typer.Option(False, "--allow-outside-root", help=OUTSIDE_HELP),
) -> None:
    """Read a folder once (resized, split, masks checked) into one .npz that every command reads fast."""
    from genrad.data import load
    from genrad.data.splits import split_cohort
    from genrad.errors import InputError
    from genrad.paths import check_output

    check_output(out, kind="file", suffix=".npz")
    try:
        fractions = None if split_fractions is None else tuple(float(f) for f in split_fractions.split(","))
    except ValueError:
        raise InputError("--split-fractions as three numbers, e.g. 0.7,0.1,0.2", repr(split_fractions), "fix the value",
                         source="--split-fractions") from None
    if Path(path).suffix == ".npz":
        raise InputError("a folder of images", "an .npz, already prepared", "use it as it is", source=path)
    cohort = load(path, intensity=intensity, **_folder_options(size, mask_regions, allow_outside_root, channels))
    if fractions is not None:
        cohort = split_cohort(cohort, fractions, seed)
    cohort.save(str(out))
    typer.echo(f"{out}  ({', '.join(f'{name} {len(split)}' for name, split in cohort.splits.items())}; "
               f"hash {cohort.content_hash()[:12]})")


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
