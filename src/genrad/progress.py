"""Progress for long work, on stderr so that stdout stays clean for JSON and printed paths: a rich bar on a
terminal, plain lines elsewhere (a log file or CI cannot redraw a bar, so rich would show nothing until the end)."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.progress import Progress, ProgressColumn, TaskID

LINE_INTERVAL_SECONDS = 30.0
"""How often `LineProgress` reports a running task."""


def progress_bar(*columns: str | ProgressColumn, console: Console | None = None, **options: Any) -> Progress:
    """A rich `Progress` with `columns` on `console` (default stderr), or a `LineProgress` when that is not a
    terminal; `options` as for `Progress` (``disable``, ``transient``, ...)."""
    console = console or Console(stderr=True)
    if console.is_terminal:
        return Progress(*columns, console=console, **options)
    return LineProgress(*columns, console=console, **options)


class LineProgress(Progress):
    """A `Progress` that prints one plain line per visible task when it starts, at most every `interval` seconds
    while it runs, and when it finishes: what, how far, time spent and the estimated time left."""

    def __init__(self, *columns: str | ProgressColumn, interval: float = LINE_INTERVAL_SECONDS, **options: Any) -> None:
        super().__init__(*columns, **{**options, "transient": True})  # a log keeps the lines, not a final bar
        self.interval = interval
        self._last_line: dict[TaskID, float] = {}
        self._finished: set[TaskID] = set()  # their last line is out

    def add_task(self, description: str, *args: Any, **kwargs: Any) -> TaskID:
        task_id = super().add_task(description, *args, **kwargs)
        self._report(task_id)
        return task_id

    def update(self, task_id: TaskID, *args: Any, **kwargs: Any) -> None:
        super().update(task_id, *args, **kwargs)
        self._report(task_id)

    def advance(self, task_id: TaskID, advance: float = 1) -> None:
        super().advance(task_id, advance)
        self._report(task_id)

    def _report(self, task_id: TaskID) -> None:
        task = self._tasks[task_id]
        now = time.monotonic()
        last = self._last_line.get(task_id)
        if self.disable or not task.visible or task_id in self._finished:
            return
        if last is not None and not task.finished and now - last < self.interval:
            return
        self._last_line[task_id] = now
        if task.finished:
            self._finished.add(task_id)
        done = f"{task.completed:g}/{task.total:g} ({task.percentage:.0f}%)" if task.total else f"{task.completed:g}"
        elapsed = f", {task.elapsed or 0.0:.0f} s" if task.started else ""
        left = task.time_remaining
        remaining = f", about {left / 60:.1f} min left" if left is not None and not task.finished else ""
        status = f" {task.fields['status']}" if task.fields.get("status") else ""
        self.console.print(f"{task.description or 'progress'}: {done}{elapsed}{remaining}{status}", markup=False,
                           highlight=False, soft_wrap=True)
