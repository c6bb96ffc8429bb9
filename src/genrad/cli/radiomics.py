"""`genrad radiomics ...`: radiomic feature tables from a dataset."""

from __future__ import annotations

from pathlib import Path

import typer

radiomics_app = typer.Typer(help="Extract radiomic features.", no_args_is_help=True)


@radiomics_app.command("extract")
def extract(
    path: str = typer.Argument(..., help="A MedMNIST .npz, a folder of images with labels.csv, or 'phantom'."),
    out: Path = typer.Option(..., "--out", help="Output .parquet file: one row per image, one column per feature."),
    split: str | None = typer.Option(None, "--split", help="Split to extract (train, val, test); default: all splits."),
    feature_set: str = typer.Option("frd_v1", "--set", help="Feature set: frd_v1 or fast."),
    engine: str | None = typer.Option(None, "--engine", help="fast or pyradiomics (default: genrad's default engine)."),
    workers: int = typer.Option(1, "--workers", help="Worker processes."),
    cache_dir: Path | None = typer.Option(None, "--cache-dir", help="Cache folder: repeated or interrupted runs resume."),
    region: str = typer.Option("auto", "--region", help="roi: inside each image's mask; whole: the whole image; "
                               "auto: roi when the data has masks."),
) -> None:
    """Radiomic features of every image; rows are indexed 'split:position'."""
    import pandas as pd

    from genrad.data import load
    from genrad.errors import InputError
    from genrad.paths import check_output
    from genrad.provenance import atomic_path
    from genrad.radiomics import DEFAULT_ENGINE
    from genrad.radiomics.extraction import extract_split

    check_output(out, kind="file", suffix=".parquet")
    if cache_dir is not None:
        check_output(cache_dir, kind="folder", option="--cache-dir")
    if out.suffix != ".parquet":
        raise InputError("an output file ending in .parquet", repr(str(out)), "name the output FILE.parquet", source="--out")
    cohort = load(path)
    names = [split] if split is not None else list(cohort.splits)
    tables = []
    for name in names:
        table = extract_split(cohort[name], region, feature_set=feature_set, engine=engine or DEFAULT_ENGINE, workers=workers,
                              cache_dir=cache_dir)
        table.index = [f"{name}:{i}" for i in range(len(table))]
        tables.append(table)
    result = pd.concat(tables)
    result.index.name = "image"
    result.attrs = {**tables[0].attrs, "source": path, "splits": names, "n_images": len(result)}
    result.attrs["data_hash"] = {name: table.attrs["data_hash"] for name, table in zip(names, tables)}
    result.attrs["no_region"] = [f"{name}:{k}" for name, table in zip(names, tables) for k in table.attrs.get("no_region", [])]
    with atomic_path(out) as temp:
        result.to_parquet(temp)
    without = f", {len(result.attrs['no_region'])} without a region (NaN rows)" if result.attrs["no_region"] else ""
    typer.echo(f"{out}: {len(result)} images x {result.shape[1]} features, {result.attrs['region']}{without}")
