"""`genrad evaluate ...`: the command group for fidelity, privacy and utility evaluations.

Each evaluation's command lives in its own module (cli/fidelity.py, cli/privacy.py, cli/utility.py)
and is registered on `evaluate_app` in cli/main.py.
"""

from pathlib import Path

import typer

from genrad.errors import InputError
from genrad.synthesis.dataset import NPZ as SYNTHETIC_NPZ

evaluate_app = typer.Typer(help="Evaluate synthetic data: fidelity, privacy, utility.", no_args_is_help=True)


def synthetic_file(path: Path) -> Path:
    """`--synthetic` as a file: a synthetic.npz, or the folder `genrad generate` wrote it into."""
    if not path.is_dir():
        return path
    if not (path / SYNTHETIC_NPZ).exists():
        raise InputError(
            f"a folder holding {SYNTHETIC_NPZ} (written by `genrad generate`)",
            f"no {SYNTHETIC_NPZ} in {path}",
            "point --synthetic at the .npz file or the generate output folder",
            source="--synthetic",
        )
    return path / SYNTHETIC_NPZ
