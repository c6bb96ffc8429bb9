"""Errors that genrad raises for bad user input.

Every message is one line that says what was expected, what was found and how to fix it; the CLI
prints it and exits with code 2, without a traceback.
"""


class InputError(ValueError):
    """Bad user input (a file, an argument, a configuration): one line, expected / found / fix."""

    def __init__(self, expected: str, found: str, fix: str, *, source: str | None = None) -> None:
        where = f"{source}: " if source else ""
        message = f"{where}expected {expected}, found {found}; {fix}"
        super().__init__(" ".join(message.split()))
        self.source = source
        self.expected, self.found, self.fix = expected, found, fix

    def at(self, source: str) -> "InputError":
        """The same error, attributed to `source` (a file or argument name)."""
        return InputError(self.expected, self.found, self.fix, source=source)


class NotFittedError(RuntimeError):
    """An object that needs `fit` was used before it was fitted."""

    def __init__(self, obj: object) -> None:
        name = type(obj).__name__
        super().__init__(
            f"This {name} instance is not fitted yet. Call 'fit' with appropriate arguments before using it."
        )
