"""Progress bars for long work, drawn on stderr so that stdout stays clean for JSON and printed paths."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import Progress, ProgressColumn


def progress_bar(*columns: str | ProgressColumn, **options: Any) -> Progress:
    """A rich `Progress` with `columns` on stderr; `options` as for `Progress` (``disable``, ``transient``, ...)."""
    return Progress(*columns, console=Console(stderr=True), **options)
