"""Errors that genrad raises for bad user input.

Every message is one line that says what was expected, what was found and how to fix it; the CLI
prints it and exits with code 2, without a traceback. `is_int` and `is_number` guard the comparisons of
argument checks, so that a value of the wrong type fails the check instead of raising a TypeError.
"""

import importlib
import math
from collections.abc import Iterable
from types import ModuleType
from typing import Any

import numpy as np


class InputError(ValueError):
    """Bad user input (a file, an argument, a configuration): one line, expected / found / fix."""

    def __init__(self, expected: str, found: str, fix: str, *, source: str | None = None, argument: str | None = None) -> None:
        source, found = (None if source is None else printable(source)), printable(found)
        where = f"{source}: " if source else ""
        message = f"{where}expected {expected}, found {found}; {fix}"
        super().__init__(" ".join(message.split()))
        self.source = source
        self.expected, self.found, self.fix = expected, found, fix
        self.argument = argument  # the Python argument at fault, when one is: callers name it as their users know it

    def __reduce__(self) -> tuple[Any, ...]:
        """Picklable with its fields, so an error raised in a worker process reaches the caller as itself."""
        return _rebuild_input_error, (self.expected, self.found, self.fix, self.source, self.argument)

    def at(self, source: str) -> "InputError":
        """The same error, attributed to `source` (a file or argument name)."""
        return InputError(self.expected, self.found, self.fix, source=source, argument=self.argument)


ECHO_LIMIT = 300
"""Characters of a user's value (a file name, a found value) echoed in an error at most."""
_CONTROL = {code: "?" for code in (*range(32), *range(127, 160)) if not chr(code).isspace()}


def printable(text: str, limit: int = ECHO_LIMIT) -> str:
    """`text` as an error may echo it: control characters (terminal escapes) shown as ``?``, cut to `limit`."""
    text = text.translate(_CONTROL)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def _rebuild_input_error(expected: str, found: str, fix: str, source: str | None, argument: str | None) -> InputError:
    return InputError(expected, found, fix, source=source, argument=argument)


EXTRAS = {"opacus": "privacy", "sdv": "clinical", "sdmetrics": "clinical", "ray": "distributed"}
"""The optional packages and the extra that installs each: ``pip install 'genrad[privacy]'``."""


def require_extra(module: str, feature: str, fallback: str | None = None) -> ModuleType:
    """Import `module` (a package of `EXTRAS`, or one of its sub-modules) for `feature`, or raise one `InputError` that
    names the extra to install (and `fallback`, another way to go without it)."""
    package = module.split(".")[0]
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        if error.name is None or error.name.split(".")[0] != package:
            raise
    fix = f"pip install 'genrad[{EXTRAS[package]}]'" + (f" or {fallback}" if fallback else "")
    raise InputError(f"the optional package {package} for {feature}", "it is not installed", fix)


class NotFittedError(RuntimeError):
    """An object that needs `fit` was used before it was fitted."""

    def __init__(self, obj: object) -> None:
        name = type(obj).__name__
        super().__init__(
            f"This {name} instance is not fitted yet. Call 'fit' with appropriate arguments before using it."
        )


def is_int(value: Any) -> bool:
    """An integer (Python or NumPy), not a bool: argument checks compare only values that pass this."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """A finite real number (int or float, Python or NumPy), not a bool."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) and math.isfinite(value)


def check(owner: str, checks: Iterable[tuple[bool, str, Any]]) -> None:
    """Raise one `InputError` for the first failed ``(ok, expected, found)`` check; `expected` starts with the
    argument's name, which the error carries as its `argument`."""
    for ok, expected, found in checks:
        if not ok:
            argument = expected.split()[0]
            raise InputError(f"{owner} argument {expected}", repr(found), f"pass a valid {argument} to {owner}(...)",
                             argument=argument)
