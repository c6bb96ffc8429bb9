"""`genrad evaluate fidelity`: set-level fidelity (fidelity.json) and per-sample QA (samples.parquet)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from genrad.cli.evaluate import synthetic_file as synthetic_file_of
from genrad.errors import InputError


def fidelity_command(
    real: str = typer.Option(..., "--real", help="Real reference data (.npz, folder or 'phantom')."),
    synthetic: Path = typer.Option(..., "--synthetic", help="synthetic.npz, or a `genrad generate` output folder."),
    out: Path = typer.Option(..., "--out", help="Output folder: fidelity.json and samples.parquet."),
    real_split: str = typer.Option("test", "--real-split", help="Split of --real used as the reference."),
    synthetic_split: str = typer.Option("train", "--synthetic-split", help="Split of --synthetic holding the images."),
    floor_split: str = typer.Option(
        "auto",
        "--floor-split",
        help="Split of --real used as independent real images for the real floor and the QA reference; "
        "'auto': train unless --real-split is train; 'none': split the reference in halves.",
    ),
    feature_set: str = typer.Option("frd_v1", "--set", help="Radiomic feature set (frd_v1, fast)."),
    engine: str | None = typer.Option(None, "--engine", help="Radiomics engine: pyradiomics (reference) or fast."),
    workers: int = typer.Option(1, "--workers", help="Processes for feature extraction."),
    bootstrap: int = typer.Option(100, "--bootstrap", help="Bootstrap replicates per confidence interval."),
    false_flag_rate: float = typer.Option(0.05, "--false-flag-rate", help="Share of clean real images the QA may flag."),
    seed: int = typer.Option(0, "--seed", help="Seed of subsamples, bootstraps and classifiers."),
) -> None:
    """FRD, KID, precision/recall/density/coverage, alpha/beta, C2ST and per-feature distances, each
    with a bootstrap CI and its real floor; plus a QA score and flag for every synthetic image."""
    from genrad.data import load
    from genrad.evaluation.outputs import evaluate_fidelity
    from genrad.paths import check_output
    from genrad.provenance import hash_file

    check_output(out, kind="folder")
    cohort = load(real)
    real_data = cohort[real_split]
    floor_name = _floor_split(floor_split, real_split, cohort)
    synthetic_file = synthetic_file_of(synthetic)
    report = evaluate_fidelity(
        real_data,
        load(synthetic_file)[synthetic_split],
        out=out,
        floor_real=None if floor_name is None else cohort[floor_name],
        class_names=cohort.class_names,
        feature_set=feature_set,
        engine=engine,
        workers=workers,
        n_bootstrap=bootstrap,
        false_flag_rate=false_flag_rate,
        seed=seed,
        sources={
            "real": {"path": real, "split": real_split, "floor_split": floor_name},
            "synthetic": {"path": str(synthetic_file), "split": synthetic_split, "sha256": hash_file(synthetic_file)},
        },
    )
    _print_summary(report)
    from genrad.synthesis.layout import FIDELITY_JSON

    typer.echo(str(out / FIDELITY_JSON))


def _floor_split(option: str, real_split: str, cohort: Any) -> str | None:
    if option == "none":
        return None
    if option == "auto":
        return "train" if real_split != "train" and "train" in cohort.splits else None
    if option == real_split:
        raise InputError(
            "a floor split different from the reference split",
            f"{option!r} for both",
            "pass --floor-split train (or 'none' to split the reference in halves)",
            source="--floor-split",
        )
    return option


def _print_summary(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    from genrad.evaluation.fidelity import METRICS

    table = Table(title="fidelity (value, 95% CI, real floor)")
    for column in ("metric", "value", "CI", "real floor"):
        table.add_column(column)

    def number(value: float | None) -> str:
        return "-" if value is None else f"{value:.4g}"

    for name in (*METRICS, "features"):
        entry = report[name]
        low, high = entry["ci"]
        table.add_row(name, number(entry["value"]), f"[{number(low)}, {number(high)}]", number(entry["real_floor"]))
    console = Console()
    console.print(table)
    worst = ", ".join(row["feature"] for row in report["features"]["per_feature"][:3])
    console.print(f"most different features: {worst}")
    qa = report["qa"]
    console.print(f"QA: {qa['flagged']} of {qa['n']} synthetic images flagged ({qa['flagged_rate']:.1%})")
