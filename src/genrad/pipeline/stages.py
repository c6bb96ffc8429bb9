"""Stage bookkeeping: a stage is complete when its marker exists and records the same fingerprint (the hash of the
plan fields it reads, `genrad.pipeline.plan.RunPlan.fingerprint`); an interrupted run restarts at the first stage
without a valid marker."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from genrad.limits import read_json
from genrad.provenance import write_json
from genrad.synthesis.layout import RunLayout


def is_complete(layout: RunLayout, stage: str, stage_fingerprint: str) -> bool:
    return _recorded(layout.stage_marker(stage)) == stage_fingerprint


def run_stage(layout: RunLayout, stage: str, stage_fingerprint: str, work: Callable[[], Any]) -> tuple[bool, float]:
    """Run `work` unless the stage is complete; mark it complete afterwards. Returns (ran, seconds).

    Outputs written for another fingerprint (a completed or started stage of a changed plan) are removed first, so a
    stage never resumes into them; an interrupted stage of the same plan resumes from what it left."""
    if is_complete(layout, stage, stage_fingerprint):
        return False, 0.0
    marker, started = layout.stage_marker(stage), layout.stage_started(stage)
    previous = _recorded(marker) or _recorded(started)
    if previous is not None and previous != stage_fingerprint and layout.stage_dir(stage).exists():
        shutil.rmtree(layout.stage_dir(stage))
    marker.unlink(missing_ok=True)
    write_json(started, {"stage": stage, "fingerprint": stage_fingerprint})
    start = time.perf_counter()
    work()
    seconds = time.perf_counter() - start
    write_json(marker, {"stage": stage, "fingerprint": stage_fingerprint, "seconds": seconds})
    started.unlink(missing_ok=True)
    return True, seconds


def _recorded(path: Path) -> str | None:
    """The fingerprint a stage marker records, or None."""
    if not path.exists():
        return None
    return read_json(path).get("fingerprint")
