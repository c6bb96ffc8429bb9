"""Stage bookkeeping: complete stages are skipped; a changed option re-runs that stage and later ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from genrad.pipeline.config import STAGES, RunConfig
from genrad.pipeline.stages import fingerprint, is_complete, run_stage
from genrad.synthesis.layout import RunLayout


def _run_all(layout: RunLayout, config: RunConfig, calls: list[str]) -> None:
    for stage in STAGES:
        run_stage(layout, stage, fingerprint(config, stage, "hash"), lambda s=stage: calls.append(s))


def test_second_run_skips_every_complete_stage(tmp_path: Path) -> None:
    layout, config, calls = RunLayout(tmp_path), RunConfig(), []
    _run_all(layout, config, calls)
    _run_all(layout, config, calls)
    assert calls == list(STAGES)


def test_changing_generation_reruns_generation_and_evaluations_only(tmp_path: Path) -> None:
    layout, calls = RunLayout(tmp_path), []
    _run_all(layout, RunConfig(), calls)
    calls.clear()
    _run_all(layout, RunConfig().with_overrides(**{"generate.multiple": 2.0}), calls)
    assert calls == ["generate", "fidelity", "privacy", "utility"]


def test_changing_one_evaluation_reruns_only_it(tmp_path: Path) -> None:
    layout, calls = RunLayout(tmp_path), []
    _run_all(layout, RunConfig(), calls)
    calls.clear()
    _run_all(layout, RunConfig().with_overrides(**{"utility.seeds": 5}), calls)
    assert calls == ["utility"]


def test_interrupted_stage_is_not_marked_complete(tmp_path: Path) -> None:
    layout, config = RunLayout(tmp_path), RunConfig()

    def crash() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_stage(layout, "train", fingerprint(config, "train", "hash"), crash)
    assert not is_complete(layout, "train", fingerprint(config, "train", "hash"))
