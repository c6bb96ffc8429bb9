"""Progress in a log file: plain lines at the start, at most every interval, and at the end of each task."""

from __future__ import annotations

import io

from rich.console import Console

from genrad.progress import LineProgress, progress_bar


def _lines(interval: float, steps: int = 10) -> list[str]:
    log = io.StringIO()
    with LineProgress(console=Console(file=log, force_terminal=False), interval=interval) as bar:
        task = bar.add_task("sampling", total=steps)
        for _ in range(steps):
            bar.advance(task)
        bar.advance(task)  # past the end: nothing more is printed
    return [line for line in log.getvalue().splitlines() if line.startswith("sampling:")]


def test_a_log_gets_a_start_and_an_end_line_and_no_more_within_the_interval() -> None:
    lines = _lines(interval=3600.0)
    assert len(lines) == 2 and lines[0].startswith("sampling: 0/10 (0%)") and lines[1].startswith("sampling: 10/10 (100%)")


def test_every_update_past_the_interval_is_a_line_with_the_time_left() -> None:
    lines = _lines(interval=0.0)
    assert len(lines) == 11 and "min left" in lines[5] and "min left" not in lines[-1]


def test_progress_bar_writes_lines_when_stderr_is_not_a_terminal(capsys) -> None:
    with progress_bar() as bar:
        bar.add_task("training", total=5)
    assert isinstance(bar, LineProgress) and "training: 0/5 (0%)" in capsys.readouterr().err
