"""Stage bookkeeping: a stage is complete when its marker exists and records the same fingerprint (the hash of the
plan fields it reads, `genrad.pipeline.plan.RunPlan.fingerprint`); an interrupted run restarts at the first stage
without a valid marker."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from genrad.provenance import write_json
from genrad.synthesis.layout import RunLayout


def is_complete(layout: RunLayout, stage: str, stage_fingerprint: str) -> bool:
    marker = layout.stage_marker(stage)
    if not marker.exists():
        return False
    return json.loads(marker.read_text(encoding="utf-8")).get("fingerprint") == stage_fingerprint


def run_stage(layout: RunLayout, stage: str, stage_fingerprint: str, work: Callable[[], Any]) -> tuple[bool, float]:
    """Run `work` unless the stage is complete; mark it complete afterwards. Returns (ran, seconds)."""
    if is_complete(layout, stage, stage_fingerprint):
        return False, 0.0
    layout.stage_marker(stage).unlink(missing_ok=True)
    start = time.perf_counter()
    work()
    seconds = time.perf_counter() - start
    write_json(layout.stage_marker(stage), {"stage": stage, "fingerprint": stage_fingerprint, "seconds": seconds})
    return True, seconds
