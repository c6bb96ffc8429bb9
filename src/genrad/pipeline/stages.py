"""Stage bookkeeping: a stage is complete when its marker exists and records the same fingerprint.

A fingerprint hashes the configuration sections a stage depends on (its own and every upstream one)
and the data hash, so changing an option re-runs that stage and everything after it, and an
interrupted run restarts at the first stage without a valid marker.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

from genrad.pipeline.config import STAGES, RunConfig
from genrad.provenance import write_json
from genrad.synthesis.layout import RunLayout

# Configuration sections each stage reads, cumulatively with the stages before it.
_SECTIONS = {
    "data": ("data",),
    "train": ("train", "seed"),
    "generate": ("generate",),
    "fidelity": ("fidelity",),
    "privacy": ("privacy",),
    "utility": ("utility",),
}


def fingerprint(config: RunConfig, stage: str, data_hash: str) -> str:
    """SHA-256 of the config sections `stage` depends on, upstream stages included, and the data hash."""
    upstream = STAGES[: STAGES.index(stage) + 1]
    dumped = config.model_dump(mode="json")
    relevant = {section: dumped[section] for name in upstream for section in _SECTIONS[name]}
    if stage in ("fidelity", "privacy", "utility"):
        # Evaluations depend on the synthetic set, not on each other.
        relevant = {k: v for k, v in relevant.items() if k not in {"fidelity", "privacy", "utility"} - {stage}}
    text = json.dumps({"stage": stage, "data_hash": data_hash, "config": relevant}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


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
