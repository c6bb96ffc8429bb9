"""Stage bookkeeping: a stage is complete when its marker exists, records the same fingerprint (the hash of the plan
fields it reads, `genrad.pipeline.plan.RunPlan.fingerprint`) and every output file it recorded still has its SHA-256;
an interrupted run restarts at the first stage without a valid marker, and a stage whose outputs changed since they
were written (edited, truncated, replaced) is run again from nothing."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from genrad.limits import read_json
from genrad.provenance import hash_file, write_json
from genrad.synthesis.layout import RunLayout


def is_complete(layout: RunLayout, stage: str, stage_fingerprint: str) -> bool:
    return _recorded(layout.stage_marker(stage)) == stage_fingerprint and not changed_outputs(layout, stage)


def changed_outputs(layout: RunLayout, stage: str) -> list[str]:
    """The output files of a completed stage that are missing or differ from the SHA-256 its marker recorded."""
    marker = layout.stage_marker(stage)
    recorded = read_json(marker).get("outputs", {}) if marker.exists() else {}
    changed = []
    for name, digest in recorded.items():
        path = layout.root / name
        if not path.is_file() or path.is_symlink() or hash_file(path) != digest:
            changed.append(name)
    return changed


def run_stage(layout: RunLayout, stage: str, stage_fingerprint: str, work: Callable[[], Any],
              notify: Callable[[str], None] = lambda line: None) -> tuple[bool, float]:
    """Run `work` unless the stage is complete; mark it complete afterwards, with the SHA-256 of every file it wrote.
    Returns (ran, seconds).

    Outputs written for another fingerprint (a completed or started stage of a changed plan), and outputs of a
    completed stage that changed since (`changed_outputs`, said through `notify`), are removed first, so a stage never
    resumes into them; an interrupted stage of the same plan resumes from what it left."""
    marker, started = layout.stage_marker(stage), layout.stage_started(stage)
    completed = _recorded(marker)
    changed = changed_outputs(layout, stage) if completed == stage_fingerprint else []  # each output hashed once
    if completed == stage_fingerprint and not changed:
        return False, 0.0
    previous = completed or _recorded(started)
    if changed:
        notify(f"{stage}: {changed[0]}{f' and {len(changed) - 1} more' if len(changed) > 1 else ''} changed since the "
               "stage wrote it (SHA-256); running the stage again")
    if (changed or (previous is not None and previous != stage_fingerprint)) and layout.stage_dir(stage).exists():
        shutil.rmtree(layout.stage_dir(stage))
    marker.unlink(missing_ok=True)
    write_json(started, {"stage": stage, "fingerprint": stage_fingerprint})
    start = time.perf_counter()
    work()
    seconds = time.perf_counter() - start
    folder = layout.stage_dir(stage)
    outputs = {path.relative_to(layout.root).as_posix(): hash_file(path)
               for path in sorted(folder.rglob("*")) if path.is_file() and not path.is_symlink()} if folder.is_dir() else {}
    write_json(marker, {"stage": stage, "fingerprint": stage_fingerprint, "seconds": seconds, "outputs": outputs})
    started.unlink(missing_ok=True)
    return True, seconds


def _recorded(path: Path) -> str | None:
    """The fingerprint a stage marker records, or None."""
    if not path.exists():
        return None
    return read_json(path).get("fingerprint")
