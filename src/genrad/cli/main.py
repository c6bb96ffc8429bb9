"""The `genrad` command: sub-commands are registered here, implemented in sibling modules."""

from __future__ import annotations

import re
import signal
import sys
import threading
from dataclasses import fields
from typing import Any

import typer
from rich.console import Console

from genrad import __version__
from genrad.cli.data import data_app
from genrad.cli.evaluate import evaluate_app
from genrad.cli.fidelity import fidelity_command
from genrad.cli.models import distill, sample, train
from genrad.cli.pipeline import demo_command, report_command, run_command
from genrad.cli.privacy import privacy
from genrad.cli.radiomics import radiomics_app
from genrad.cli.scenarios import scenarios_app
from genrad.cli.synthesis import generate_command
from genrad.cli.utility import utility
from genrad.data.intensity import IntensityMap
from genrad.errors import InputError
from genrad.paths import os_error

try:  # typer >= 0.20 carries its own copy of click
    from typer._click.exceptions import NoArgsIsHelpError, UsageError
except ImportError:  # pragma: no cover - older typer on click
    from click.exceptions import NoArgsIsHelpError, UsageError

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
app.command("distill")(distill)
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
    """Entry point: bad input (arguments, files, settings, unwritable paths) prints one line and exits with
    code 2, never a traceback; Ctrl-C exits with 130 and says how to resume."""
    command = typer.main.get_command(app)
    arguments = list(sys.argv[1:] if argv is None else argv)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
    try:
        code = command.main(args=arguments, prog_name="genrad", standalone_mode=False)
    except InputError as error:
        _fail(in_flags(error, _invoked(command, arguments)))
    except NoArgsIsHelpError as error:
        typer.echo(error.ctx.get_help())
        sys.exit(0)
    except UsageError as error:
        _fail(usage_error(error, arguments))
    except typer.Abort:
        _interrupted()
    except KeyboardInterrupt:
        _interrupted()
    except OSError as error:
        _fail(os_error(error))
    if code == INTERRUPTED:  # typer turns a KeyboardInterrupt inside a command into this exit code
        _interrupted()
    sys.exit(code or 0)


def usage_error(error: UsageError, arguments: list[str]) -> InputError:
    """A command-line parsing error (bad value, unknown or missing option) as one line that names the command
    and echoes the value the user typed."""
    name = error.ctx.command_path if error.ctx is not None else "genrad"
    message = error.format_message().rstrip(".")
    value = _typed_value(getattr(error, "param", None), arguments)
    if value is not None and repr(value) not in message:
        message = f"{message} (got {value!r})"
    return InputError(f"a valid command line for `{name}`", message, f"see `{name} --help`")


def _typed_value(param: object, arguments: list[str]) -> str | None:
    """The value given to `param` on the command line (``--opt VALUE`` or ``--opt=VALUE``), if any."""
    for option in getattr(param, "opts", None) or ():
        for index, argument in enumerate(arguments):
            if argument == option and index + 1 < len(arguments):
                return arguments[index + 1]
            if argument.startswith(option + "="):
                return argument[len(option) + 1 :]
    return None


INTENSITY_FIELDS = tuple(field.name for field in fields(IntensityMap))
# Python argument names of the API whose command-line option has another name.
_ARGUMENT_ALIASES = {"n_bootstrap": "bootstrap", "labels": "label", "filter": "filter_flagged", "num_inference_steps": "steps"}


def in_flags(error: InputError, command: Any) -> InputError:
    """`error` with the Python argument names it mentions replaced by the invoked command's options
    (``false_flag_rate`` -> ``--false-flag-rate``), so that the fix names what the user typed. Names with an
    underscore are replaced wherever they appear; a one-word name (``labels``) only when it is the error's
    `argument`, since such words also occur in plain text."""
    flags = {}
    for param in getattr(command, "params", []):
        long = [opt for opt in param.opts if opt.startswith("--")]
        if long and param.name:
            flags[param.name] = long[0]
    flags.update({alias: flags[name] for alias, name in _ARGUMENT_ALIASES.items() if name in flags and alias not in flags})
    names = [name for name in flags if "_" in name or name == error.argument]
    fix = error.fix
    if error.argument and error.argument not in flags:  # an argument set through a KEY=VALUE option
        for option, fields in (("intensity", INTENSITY_FIELDS), ("option", None)):
            if option in flags and (fields is None or error.argument in fields):
                fix = f"pass a valid {flags[option]} {error.argument}=VALUE"
                break
    if not names and fix == error.fix:
        return error
    pattern = re.compile(r"(?<![\w-])(" + "|".join(map(re.escape, sorted(names, key=len, reverse=True))) + r")(?![\w(])")

    def rewrite(text: str) -> str:
        text = re.sub(r"pass (a )?valid (value|values|settings)( to \w+(\.\w+)?\(\.\.\.\))?", "pass a valid value", text)
        return pattern.sub(lambda match: flags[match.group(1)], text)

    rewritten = [rewrite(part) for part in (error.expected, error.found)] + [fix if fix != error.fix else rewrite(fix)]
    if rewritten == [error.expected, error.found, error.fix]:
        return error
    return InputError(*rewritten, source=error.source, argument=error.argument)


def _invoked(group: Any, arguments: list[str]) -> Any:
    """The sub-command that `arguments` name (the group itself when they name none)."""
    command = group
    for argument in arguments:
        commands = getattr(command, "commands", None)
        if not commands or argument not in commands:
            if commands is not None and not argument.startswith("-"):
                break
            continue
        command = commands[argument]
    return command


def _fail(error: InputError) -> None:
    error_console.print(f"error: {error}", markup=False)
    sys.exit(2)


INTERRUPTED = 130
"""The exit code of a command stopped by Ctrl-C or SIGTERM (128 + SIGINT, the shell's convention)."""


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM (a scheduler's stop) handled as Ctrl-C: every command stops at a point it can resume from."""
    raise KeyboardInterrupt


def _interrupted() -> None:
    error_console.print("interrupted: rerun the same command to resume where it stopped (genrad train: add --resume)",
                        markup=False)
    sys.exit(INTERRUPTED)


if __name__ == "__main__":
    main()
