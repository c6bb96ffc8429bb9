"""`genrad evaluate ...`: the command group for fidelity, privacy and utility evaluations.

Each evaluation's command lives in its own module (cli/fidelity.py, cli/privacy.py, cli/utility.py)
and is registered on `evaluate_app` in cli/main.py.
"""

import typer

evaluate_app = typer.Typer(help="Evaluate synthetic data: fidelity, privacy, utility.", no_args_is_help=True)
