"""The `genrad` command: sub-commands are registered here, implemented in sibling modules."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from genrad import __version__
from genrad.cli.data import data_app
from genrad.cli.evaluate import evaluate_app
from genrad.cli.fidelity import fidelity_command
from genrad.cli.pipeline import demo_command, report_command, run_command
from genrad.cli.privacy import privacy
from genrad.cli.models import sample, train
from genrad.cli.radiomics import radiomics_app
from genrad.cli.scenarios import scenarios_app
from genrad.cli.synthesis import generate_command
from genrad.cli.utility import utility
from genrad.errors import InputError

app = typer.Typer(
    name="genrad",
    help="Generative radiomics: grow small, imbalanced medical imaging datasets into validated training sets.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(data_app, name="data")
app.add_typer(evaluate_app, name="evaluate")
evaluate_app.command("fidelity")(fidelity_command)
evaluate_app.command("utility")(utility)
evaluate_app.command("privacy")(privacy)
app.command("train")(train)
app.command("sample")(sample)
app.add_typer(radiomics_app, name="radiomics")
app.command("generate")(generate_command)
app.add_typer(scenarios_app, name="scenarios")
app.command("run")(run_command)
app.command("demo")(demo_command)
app.command("report")(report_command)

error_console = Console(stderr=True, highlight=False, soft_wrap=True)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"genrad {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True, help="Show the version."),
) -> None:
    """genrad command line."""


def main(argv: list[str] | None = None) -> None:
    """Entry point: bad input prints one line and exits with code 2, never a traceback."""
    try:
        app(args=argv, prog_name="genrad")
    except InputError as error:
        error_console.print(f"error: {error}", markup=False)
        sys.exit(2)
    except KeyboardInterrupt:
        error_console.print("interrupted: rerun the same command to resume where it stopped", markup=False)
        sys.exit(130)


if __name__ == "__main__":
    main()
