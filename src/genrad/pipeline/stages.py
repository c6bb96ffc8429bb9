"""Stage bookkeeping: a stage is complete when its marker exists and records the same fingerprint.

Each stage declares the configuration fields it reads (`READS`: whole sections or dotted fields) and the stage
whose outputs it consumes (`UPSTREAM`). Its fingerprint hashes exactly those fields, the data hash and its upstream
stage's fingerprint, so a changed setting reruns the stages that read it and everything downstream of them, and
nothing else; an interrupted run restarts at the first stage without a valid marker.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

from genrad.pipeline.config import RunConfig
from genrad.provenance import write_json
from genrad.synthesis.layout import RunLayout

READS: dict[str, tuple[str, ...]] = {
    "data": ("data",),
    "train": ("seed", "train", "utility.strategy"),  # the strategy's sampling decides whether a student is distilled
    # how many images (the utility arms' needs), how they are sampled (the strategy) and the QA filter's features
    "generate": ("seed", "generate", "utility.enabled", "utility.strategy", "utility.multiples", "fidelity.feature_set",
                 "fidelity.engine"),
    "fidelity": ("seed", "fidelity"),
    "privacy": ("seed", "privacy"),
    "utility": ("utility",),
}
"""The configuration fields each stage's work reads (a section name: all of its fields)."""
UPSTREAM: dict[str, str | None] = {"data": None, "train": "data", "generate": "train", "fidelity": "generate",
                                    "privacy": "generate", "utility": "generate"}
"""The stage whose outputs each stage reads: the evaluations read the synthetic set, not each other."""


def fingerprint(config: RunConfig, stage: str, data_hash: str) -> str:
    """SHA-256 of the fields `stage` reads (`READS`), the data hash and its upstream stage's fingerprint."""
    dumped = config.model_dump(mode="json")
    relevant = {field: _field(dumped, field) for field in READS[stage]}
    upstream = UPSTREAM[stage]
    text = json.dumps({"stage": stage, "data_hash": data_hash, "config": relevant,
                       "upstream": fingerprint(config, upstream, data_hash) if upstream else None}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _field(dumped: dict[str, Any], dotted: str) -> Any:
    value: Any = dumped
    for part in dotted.split("."):
        value = value[part]
    return value


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
