"""Stage bookkeeping and the run plan: complete stages are skipped; a changed setting reruns exactly the stages whose
plan fields it changes, and the stages downstream of them."""

from __future__ import annotations

from pathlib import Path

import pytest

from genrad.data import Cohort
from genrad.data.phantom import make_phantom
from genrad.errors import InputError
from genrad.pipeline.config import STAGES, RunConfig
from genrad.pipeline.plan import UPSTREAM, RunPlan, resolve_plan
from genrad.pipeline.stages import is_complete, run_stage
from genrad.synthesis.layout import RunLayout


@pytest.fixture(scope="module")
def cohort() -> Cohort:
    """The phantom, its splits also under the other names the configuration can give them."""
    phantom = make_phantom(n=120, size=28, seed=0)
    aliases = {"training": phantom.train, "validation": phantom.val, "holdout": phantom.test}
    return Cohort(splits={**phantom.splits, **aliases}, class_names=phantom.class_names, source=phantom.source)


def _plan(cohort: Cohort, **overrides: object) -> RunPlan:
    return resolve_plan(RunConfig().with_overrides(**overrides), cohort)


def _run_all(layout: RunLayout, plan: RunPlan, calls: list[str]) -> None:
    for stage in STAGES:
        run_stage(layout, stage, plan.fingerprint(stage), lambda s=stage: calls.append(s))


def test_second_run_skips_every_complete_stage(tmp_path: Path, cohort: Cohort) -> None:
    layout, plan, calls = RunLayout(tmp_path), _plan(cohort), []
    _run_all(layout, plan, calls)
    _run_all(layout, plan, calls)
    assert calls == list(STAGES)


def test_changing_generation_reruns_generation_and_evaluations_only(tmp_path: Path, cohort: Cohort) -> None:
    layout, calls = RunLayout(tmp_path), []
    _run_all(layout, _plan(cohort), calls)
    calls.clear()
    _run_all(layout, _plan(cohort, **{"generate.multiple": 2.0}), calls)
    assert calls == ["generate", "fidelity", "privacy", "utility"]


def test_interrupted_stage_is_not_marked_complete(tmp_path: Path, cohort: Cohort) -> None:
    layout, plan = RunLayout(tmp_path), _plan(cohort)

    def crash() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_stage(layout, "train", plan.fingerprint("train"), crash)
    assert not is_complete(layout, "train", plan.fingerprint("train"))


def test_a_changed_plan_never_resumes_into_stale_outputs(tmp_path: Path, cohort: Cohort) -> None:
    """Outputs written for another plan are removed before the stage reruns; an interrupted stage of the same plan
    keeps what it wrote, to resume from it."""
    layout = RunLayout(tmp_path)
    first, second = _plan(cohort), _plan(cohort, **{"generate.multiple": 2.0})
    partial = layout.synthetic_dir / "shards" / "0.npz"

    def write_and_crash() -> None:
        partial.parent.mkdir(parents=True, exist_ok=True)
        partial.write_bytes(b"part")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_stage(layout, "generate", first.fingerprint("generate"), write_and_crash)
    seen: list[bool] = []
    run_stage(layout, "generate", first.fingerprint("generate"), lambda: seen.append(partial.exists()))
    run_stage(layout, "generate", second.fingerprint("generate"), lambda: seen.append(partial.exists()))
    assert seen == [True, False]
    with pytest.raises(KeyboardInterrupt):  # interrupted under one plan, rerun under another: cleared as well
        run_stage(layout, "generate", first.fingerprint("generate"), write_and_crash)
    run_stage(layout, "generate", second.fingerprint("generate"), lambda: seen.append(partial.exists()))
    assert seen == [True, False, False]


@pytest.mark.parametrize("damage", ["edit", "truncate", "remove", "link"])
def test_a_completed_stage_whose_outputs_changed_runs_again_from_nothing(tmp_path: Path, cohort: Cohort, damage: str) -> None:
    """Every file a stage wrote is recorded with its SHA-256; a resume verifies them, and a changed, truncated,
    removed or relinked output makes the stage run again (its folder cleared, one line said) instead of being reused."""
    layout, plan = RunLayout(tmp_path), _plan(cohort)
    fingerprint = plan.fingerprint("fidelity")
    output = layout.stage_dir("fidelity") / "fidelity.json"
    runs: list[bool] = []

    def work() -> None:
        runs.append(output.exists())
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text('{"frd": 1.0}')
        (output.parent / "extra.txt").write_text("x")

    run_stage(layout, "fidelity", fingerprint, work)
    lines: list[str] = []
    assert run_stage(layout, "fidelity", fingerprint, work, notify=lines.append)[0] is False and not lines
    if damage == "edit":
        output.write_text('{"frd": 0.1}')
    elif damage == "truncate":
        output.write_text("")
    elif damage == "remove":
        output.unlink()
    else:
        output.unlink()
        output.symlink_to(tmp_path / "elsewhere.json")
        (tmp_path / "elsewhere.json").write_text('{"frd": 1.0}')
    assert not is_complete(layout, "fidelity", fingerprint)
    assert run_stage(layout, "fidelity", fingerprint, work, notify=lines.append)[0] is True
    assert runs == [False, False] and len(lines) == 1 and "fidelity/fidelity.json changed" in lines[0]
    assert is_complete(layout, "fidelity", fingerprint)


def test_the_budget_is_split_between_generator_and_student_never_added(cohort: Cohort) -> None:
    """A guided diffusion model and its student share `train.budget_minutes`: 1 / 1.4 and 0.4 / 1.4 by default, or
    what `train.distill_minutes` asks; without a student the generator gets it all."""
    guided = {"train.model": "diffusion", "train.options": {"guidance_scale": 3.0}, "utility.strategy": "none"}
    split = _plan(cohort, **guided)["train"]
    assert split["generator_minutes"] + split["student_minutes"] == pytest.approx(15.0)
    assert split["student_minutes"] == pytest.approx(15.0 * 0.4 / 1.4)
    given = _plan(cohort, **guided, **{"train.distill_minutes": 3.0})["train"]
    assert (given["generator_minutes"], given["student_minutes"]) == (12.0, 3.0)
    alone = _plan(cohort, **{"train.model": "vae"})["train"]
    assert (alone["generator_minutes"], alone["student_minutes"]) == (15.0, 0.0)
    with pytest.raises(InputError, match="distill_minutes below"):
        _plan(cohort, **guided, **{"train.distill_minutes": 15.0})
    # the automatic choice holds for the generator's share: 15 minutes keep 10.7 for the diffusion preset (it needs
    # 10), 12 minutes would keep 8.6, so the VAE trains for all 12
    assert _plan(cohort)["model"]["preset"] == "diffusion"
    small = _plan(cohort, **{"train.budget_minutes": 12.0})
    assert small["model"]["preset"] == "vae" and small["train"]["generator_minutes"] == 12.0
    assert "beside its distilled student" in small["model"]["reason"]


ALTERNATIVES = {
    "seed": 1, "data.path": "other.npz", "data.intensity": "minmax", "data.train_split": "training",
    "data.val_split": "validation", "data.test_split": "holdout", "data.size": 64, "data.split_fractions": (0.6, 0.2, 0.2),
    "data.mask_regions": "labels", "train.model": "vae", "train.preset": "diffusion",
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


EVERYTHING = {"data", "train", "generate", "fidelity", "privacy", "utility"}
FROM_TRAIN = EVERYTHING - {"data"}
FROM_GENERATE = {"generate", "fidelity", "privacy", "utility"}
RERUNS = {
    "seed": FROM_TRAIN, "data.path": EVERYTHING, "data.intensity": EVERYTHING, "data.train_split": EVERYTHING,
    "data.val_split": EVERYTHING, "data.test_split": EVERYTHING, "data.size": EVERYTHING, "data.split_fractions": EVERYTHING,
    "data.mask_regions": EVERYTHING, "train.model": FROM_TRAIN, "train.preset": FROM_TRAIN,
    "train.budget_minutes": FROM_TRAIN, "train.max_steps": FROM_TRAIN, "train.covariates": FROM_TRAIN,
    "train.intensity": FROM_TRAIN, "train.options": FROM_TRAIN, "train.distill_minutes": FROM_TRAIN,
    "generate.multiple": FROM_GENERATE, "generate.filter": FROM_GENERATE, "generate.shard_size": FROM_GENERATE,
    "generate.workers": FROM_GENERATE, "generate.backend": FROM_GENERATE,
    # the QA filter of the generate stage uses the fidelity features
    "fidelity.feature_set": FROM_GENERATE, "fidelity.engine": FROM_GENERATE, "fidelity.n_bootstrap": {"fidelity"},
    "privacy.enabled": {"privacy"}, "privacy.features": {"privacy"}, "privacy.n_bootstrap": {"privacy"},
    # how many images the arms need; the strategy also sets the sampling, so whether a student is distilled
    "utility.enabled": FROM_GENERATE, "utility.quick": {"utility"}, "utility.seeds": {"utility"},
    "utility.strategy": FROM_TRAIN, "utility.multiples": FROM_GENERATE,
}
"""The stages a change of each setting reruns: those whose plan fields (`STAGE_READS`) it changes, and downstream."""


def test_every_setting_reruns_exactly_the_stages_declared_to_read_it(cohort: Cohort) -> None:
    """Each field of the run configuration, changed alone, changes the fingerprints of exactly the stages `RERUNS`
    declares (a new field must be added to ALTERNATIVES and RERUNS), and every rerun set is closed downstream."""
    base = RunConfig().with_overrides(**{"train.model": "diffusion"})
    assert resolve_plan(base, cohort)["train"]["student_minutes"] > 0  # a guided model: the strategy decides its student
    assert set(_leaves(base.model_dump(mode="json"))) == set(ALTERNATIVES) == set(RERUNS)
    before = {stage: resolve_plan(base, cohort).fingerprint(stage) for stage in STAGES}
    for field, value in ALTERNATIVES.items():
        plan = resolve_plan(base.with_overrides(**{field: value}), cohort)
        rerun = {stage for stage in STAGES if plan.fingerprint(stage) != before[stage]}
        assert rerun == RERUNS[field], field
        assert {stage for stage, upstream in UPSTREAM.items() if upstream in rerun} <= rerun, field
