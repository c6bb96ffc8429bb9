"""`genrad evaluate privacy`: near-copies of training images, DCR and membership inference."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from genrad.cli.evaluate import synthetic_file
from genrad.errors import InputError


def privacy(
    train: str = typer.Option(..., "--train", help="Training data of the generator (.npz, folder or 'phantom')."),
    holdout: str = typer.Option(..., "--holdout", help="Real images the generator never saw (may be the same file)."),
    synthetic: Path = typer.Option(..., "--synthetic", help="synthetic.npz, or a `genrad generate` output folder."),
    out: Path = typer.Option(..., "--out", help="Output folder: privacy.json, pairs.png, privacy_samples.csv."),
    train_split: str = typer.Option("train", "--train-split", help="Split of --train the generator was fitted on."),
    holdout_split: str = typer.Option("test", "--holdout-split", help="Split of --holdout used as non-members."),
    synthetic_split: str = typer.Option("train", "--synthetic-split", help="Split of --synthetic holding the images."),
    features: str = typer.Option("embedding,radiomics", "--features", help="Feature spaces beside pixels ('' for none)."),
    quantile: float = typer.Option(0.99, "--quantile", help="Near-copy calibration: flag fewer than 1-q of held-out images."),
    max_shift: int = typer.Option(2, "--max-shift", help="Largest shift (pixels) tried when matching images."),
    bootstrap: int = typer.Option(1000, "--bootstrap", help="Bootstrap resamples for the confidence intervals."),
    top_k: int = typer.Option(16, "--top-k", help="Closest synthetic/training pairs shown in pairs.png."),
    chunk_size: int = typer.Option(512, "--chunk-size", help="Synthetic images audited at a time."),
    seed: int = typer.Option(0, "--seed", help="Seed of the embedding and the bootstrap."),
) -> None:
    """Audit a synthetic set for memorisation: near-copy rate, DCR (ratio) and membership-inference AUC."""
    from genrad.data import load
    from genrad.evaluation.outputs import evaluate_privacy
    from genrad.paths import check_output
    from genrad.provenance import hash_file
    from genrad.synthesis.dataset import generator_record

    check_output(out, kind="folder")
    if train == holdout and train_split == holdout_split:
        raise InputError(
            "a held-out split different from the training split",
            f"{holdout}:{holdout_split} for both",
            "pass --holdout-split test (or another file with --holdout)",
            source="--holdout-split",
        )
    synthetic_path = synthetic_file(synthetic)
    result = evaluate_privacy(
        load(train)[train_split],
        load(holdout)[holdout_split],
        load(synthetic_path)[synthetic_split],
        out=out,
        features=tuple(name.strip() for name in features.split(",") if name.strip()),
        quantile=quantile,
        max_shift=max_shift,
        n_bootstrap=bootstrap,
        top_k=top_k,
        chunk_size=chunk_size,
        seed=seed,
        sources={
            "train": {"path": train, "split": train_split},
            "holdout": {"path": holdout, "split": holdout_split},
            "synthetic": {"path": str(synthetic_path), "split": synthetic_split, "sha256": hash_file(synthetic_path)},
        },
        generator=generator_record(synthetic_path.parent),
    )
    _print_summary(result)
    from genrad.synthesis.layout import PRIVACY_JSON

    typer.echo(str(out / PRIVACY_JSON))


def _print_summary(result: dict[str, Any]) -> None:
    table = Table(title=f"privacy audit ({result['n']['synthetic']} synthetic images; value [95% CI])")
    for column in ("space", "near-copy rate", "DCR ratio", "MIA AUC"):
        table.add_column(column)
    for name, space in result["spaces"].items():
        table.add_row(
            name,
            _cell(space["near_copy_rate"]),
            _cell(space["dcr_ratio"]),
            _cell(space["mia_auc"]),
        )
    console = Console()
    console.print(table)
    duplicates = result["holdout_duplicates"]
    if duplicates["count"]:
        console.print(
            f"note: {duplicates['count']} held-out images ({duplicates['rate']:.0%}) are duplicates of training images "
            f"(NCC >= {duplicates['ncc']}): split leakage in the real data; they were left out of the calibration."
        )


def _cell(summary: dict[str, Any]) -> str:
    low, high = summary["ci"]
    return f"{summary['value']:.3f} [{low:.3f}, {high:.3f}]"
