"""`genrad evaluate utility`: does synthetic data improve a downstream classifier tested on real data?"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from genrad.cli.evaluate import synthetic_file
from genrad.errors import InputError


def utility(
    data: str = typer.Option(..., "--data", help="Real data with train/val/test splits (.npz, folder or 'phantom')."),
    out: Path = typer.Option(..., "--out", help="Output folder: utility.json, scaling.png, runs/ (resume cache)."),
    synthetic: Path | None = typer.Option(
        None, "--synthetic", help="synthetic.npz (train_images/train_labels) or the folder `genrad generate` wrote."
    ),
    seeds: int | None = typer.Option(None, "--seeds", help="Seeds per arm (default 5; 2 with --quick)."),
    strategy: str | None = typer.Option(
        None, "--strategy",
        help="How synthetic images enter training, a name of genrad.evaluation.utility.STRATEGIES (default: "
             "DEFAULT_STRATEGY, the recipe genrad validated), tested with and without augmentation against real, "
             "duplicated real images to the same count (real+oversample@...), class weights (real+reweight), "
             "classical augmentation and TrivialAugment (real+trivialaugment), and paired with the best of these by "
             "validation AUC; 'none' for the scaling curve alone.",
    ),
    multiples: str | None = typer.Option(
        None, "--multiples", help="Also the scaling curve at these multiples of the real train set, e.g. 0.5,1,2,5,10."
    ),
    arms: str | None = typer.Option(
        None, "--arms", help="Comma-separated arms, e.g. real,real+trivialaugment,real+oversample@2xrare+balanced,"
                             "real+synthetic@2xrare+balanced,synthetic@1x (@Mx: M x the real train set; @Mxrare: M x "
                             "its rarest class)."
    ),
    qa_column: str | None = typer.Option(
        None, "--qa-column", help="Boolean QA column of the manifest for the +filtered arms (default: qa_flag if present)."
    ),
    ablation: bool = typer.Option(False, "--ablation", help="Add the real-fraction ablation (10/25/50% real)."),
    quick: bool = typer.Option(False, "--quick", help="Bounded cost: 2 seeds, a small short recipe."),
    workers: int = typer.Option(1, "--workers", help="Classifiers trained at a time, one thread each."),
) -> None:
    """Train one classifier recipe on real, re-weighted, augmented and real+synthetic arms; test on real."""
    from genrad.data import load
    from genrad.evaluation.utility import (
        DEFAULT_STRATEGY,
        QUICK,
        evaluate_utility,
        get_strategy,
        keep_mask_from_manifest,
    )
    from genrad.paths import check_output

    check_output(out, kind="folder")
    chosen = None if strategy == "none" else get_strategy(strategy or DEFAULT_STRATEGY)
    multiple_list = _floats(multiples, "--multiples") if multiples is not None else None
    if multiple_list is None and chosen is None:
        multiple_list = list(QUICK["multiples"]) if quick else None
    real = load(data)
    synthetic = synthetic_file(synthetic) if synthetic is not None else None
    synthetic_split = load(synthetic).train if synthetic is not None else None
    keep = keep_mask_from_manifest(synthetic, qa_column) if synthetic is not None else None
    arm_list = [name.strip() for name in arms.split(",") if name.strip()] if arms is not None else None
    payload = evaluate_utility(
        real,
        synthetic_split,
        out=out,
        seeds=seeds if seeds is not None else (QUICK["seeds"] if quick else 5),
        strategy=chosen,
        multiples=multiple_list,
        arms=arm_list,
        keep=keep,
        quick=quick,
        ablation=ablation,
        synthetic_source=str(synthetic) if synthetic is not None else None,
        workers=workers,
        progress=True,
    )
    _print_table(payload)
    from genrad.synthesis.layout import UTILITY_JSON

    typer.echo(str(out / UTILITY_JSON))


def _floats(text: str, option: str) -> list[float]:
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        values = []
    if not values or min(values) <= 0:
        raise InputError("comma-separated positive numbers", repr(text), f"write e.g. {option} 0.5,1,2,5,10")
    return values


def _print_table(payload: dict) -> None:
    rare = payload["class_names"][payload["rare_class"]]
    table = Table(title=f"utility on the real test split ({len(payload['seeds'])} seeds, mean [95% CI])")
    best = (payload.get("best_classical") or {}).get("name")
    for column in ("arm", "AUC", "balanced acc.", f"recall {rare} (rare)", "delta AUC vs real", f"delta AUC vs {best or 'best classical'}"):
        table.add_column(column)

    def cell(summary: dict | None) -> str:
        if summary is None:
            return ""
        ci = summary["ci"]
        return f"{summary['mean']:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")

    for arm in payload["arms"]:
        delta = arm["delta_vs_real"]
        table.add_row(
            arm["name"],
            cell(arm["auc"]),
            cell(arm["balanced_accuracy"]),
            cell(arm["rare_class_recall"]),
            cell(delta["auc"] if delta else None),
            cell(arm["delta_vs_best_classical"]["auc"] if "delta_vs_best_classical" in arm else None),
        )
    Console().print(table)
