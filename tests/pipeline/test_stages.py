"""Stage bookkeeping: complete stages are skipped; a changed option re-runs that stage and later ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from genrad.pipeline.config import STAGES, RunConfig
from genrad.pipeline.stages import READS, UPSTREAM, fingerprint, is_complete, run_stage
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


ALTERNATIVES = {
    "seed": 1, "data.path": "other.npz", "data.intensity": "minmax", "data.train_split": "training",
    "data.val_split": "validation", "data.test_split": "holdout", "train.model": "vae", "train.preset": "diffusion",
    "train.budget_minutes": 5.0, "train.max_steps": 100, "train.covariates": ("age",),
    "train.intensity": {"gamma": 0.8}, "train.options": {"learning_rate": 1e-4}, "train.distill_minutes": 2.0,
    "generate.multiple": 2.0, "generate.filter": False, "generate.shard_size": 500, "generate.workers": 2,
    "generate.backend": "ray", "fidelity.feature_set": "fast", "fidelity.engine": "fast", "fidelity.n_bootstrap": 50,
    "privacy.enabled": False, "privacy.features": ("radiomics",), "privacy.n_bootstrap": 10, "utility.enabled": False,
    "utility.quick": False, "utility.seeds": 5, "utility.strategy": "mix", "utility.multiples": (2.0,),
}
"""Another valid value for every field of the run configuration."""


def _leaves(dumped: dict, prefix: str = "") -> list[str]:
    keys = []
    for key, value in dumped.items():
        if isinstance(value, dict) and key not in ("options", "intensity"):
            keys += _leaves(value, f"{prefix}{key}.")
        else:
            keys.append(prefix + key)
    return keys


def _declared(field: str) -> set[str]:
    """The stages that read `field` (`READS`) and every stage downstream of them (`UPSTREAM`)."""
    readers = {stage for stage, reads in READS.items() if any(field == read or field.startswith(read + ".") for read in reads)}
    changed = set(readers)
    while True:
        more = {stage for stage, upstream in UPSTREAM.items() if upstream in changed} - changed
        if not more:
            return changed
        changed |= more


def test_every_setting_reruns_exactly_the_stages_declared_to_read_it() -> None:
    """Each field of the run configuration, changed alone, changes the fingerprints of the stages that read it and of
    those downstream, and of no other stage (a new field must be added to ALTERNATIVES and to a stage's READS)."""
    base = RunConfig()
    assert set(_leaves(base.model_dump(mode="json"))) == set(ALTERNATIVES)
    before = {stage: fingerprint(base, stage, "hash") for stage in STAGES}
    for field, value in ALTERNATIVES.items():
        changed = base.with_overrides(**{field: value})
        after = {stage: fingerprint(changed, stage, "hash") for stage in STAGES}
        rerun = {stage for stage in STAGES if after[stage] != before[stage]}
        assert rerun == _declared(field), field
        assert rerun, f"{field} is read by no stage"
    assert _declared("utility.strategy") == {"train", "generate", "fidelity", "privacy", "utility"}
    assert _declared("fidelity.n_bootstrap") == {"fidelity"}
