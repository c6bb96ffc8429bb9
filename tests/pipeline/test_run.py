"""`genrad run` end to end on a small phantom: every stage's output, resume after an interruption, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from genrad.cli.main import main
from genrad.data.phantom import make_phantom
from genrad.pipeline import run as pipeline_run
from genrad.pipeline.config import RunConfig
from genrad.pipeline.plan import resolve_plan
from genrad.synthesis.layout import RunLayout


def _config(data: Path) -> RunConfig:
    return RunConfig().with_overrides(
        **{
            "data.path": str(data),
            "train.model": "vae",
            "train.max_steps": 30,
            "train.intensity": {"gamma": 2.0, "black_level": 1 / 255, "floor_gap": 0.3, "floor_ramp": 2.0},
            "generate.filter": False,
            "fidelity.feature_set": "fast",
            "fidelity.n_bootstrap": 10,
            "privacy.features": ["radiomics"],
            "privacy.n_bootstrap": 50,
            "utility.seeds": 1,
        }
    )


def _context(config: RunConfig, layout: RunLayout, cohort: object) -> pipeline_run._Context:
    return pipeline_run._Context(plan=resolve_plan(config, cohort), layout=layout, cohort=cohort, progress=False)


@pytest.fixture(scope="module")
def phantom_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "phantom.npz"
    make_phantom(n=180, size=28, seed=0).save(str(path))
    return path


def test_interrupted_run_resumes_at_the_first_incomplete_stage(phantom_path: Path, tmp_path: Path, monkeypatch) -> None:
    config, layout, ran = _config(phantom_path), RunLayout(tmp_path / "run"), []
    real_work = dict(pipeline_run._STAGE_WORK)

    def interrupt(context: object) -> None:
        raise KeyboardInterrupt

    def recording(stage: str):
        def work(context: object) -> None:
            ran.append(stage)
            real_work[stage](context)

        return work

    monkeypatch.setattr(pipeline_run, "_STAGE_WORK", {**{s: recording(s) for s in real_work}, "privacy": interrupt})
    with pytest.raises(KeyboardInterrupt):
        pipeline_run.run_pipeline(config, layout.root, progress=False)
    assert ran == ["data", "train", "generate", "fidelity"]
    assert not layout.privacy_json.exists() and not layout.report_html.exists()

    ran.clear()
    monkeypatch.setattr(pipeline_run, "_STAGE_WORK", {s: recording(s) for s in real_work})
    report = pipeline_run.run_pipeline(config, layout.root, progress=False)
    assert ran == ["privacy", "utility"]
    for path in (layout.fidelity_json, layout.samples_parquet, layout.privacy_json, layout.pairs_png, layout.utility_json):
        assert path.exists(), path
    html = report.read_text(encoding="utf-8")
    assert "has not" not in html  # every section has its data
    assert "AUC delta vs best classical" in html and json.loads(layout.utility_json.read_text())["best_classical"]["name"]
    record = json.loads(layout.run_json.read_text())
    assert record["status"] == "complete" and record["data_hash"] and record["versions"]["torch"]
    model_config = json.loads((layout.model_dir / "config.json").read_text())["config"]
    assert model_config["intensity"] == {"gamma": 2.0, "black_level": 1 / 255, "floor_gap": 0.3, "floor_ramp": 2.0}
    assert record["model_choice"] == {"family": "vae", "preset": None, "reason": "given in the run configuration"}

    ran.clear()  # a strategy whose arms need the same images reruns the utility stage alone
    pipeline_run.run_pipeline(config.with_overrides(**{"utility.strategy": "mix"}), layout.root, progress=False)
    assert ran == ["utility"] and json.loads(layout.utility_json.read_text())["strategy"]["name"] == "mix"
    ran.clear()  # one that needs more images has the synthetic set sampled again, for it; the VAE is kept
    pipeline_run.run_pipeline(config.with_overrides(**{"utility.strategy": "pretrain"}), layout.root, progress=False)
    assert ran == ["generate", "fidelity", "privacy", "utility"]
    planned = json.loads(layout.run_json.read_text())["plan"]["generate"]["per_class"]
    from genrad.data import load
    from genrad.synthesis import SyntheticSet

    assert len(SyntheticSet(layout.synthetic_dir).split) == sum(planned.values()) >= 5 * len(load(str(phantom_path)).train)


def test_cli_bad_config_exits_2_and_writes_nothing(tmp_path: Path, capsys) -> None:
    config = tmp_path / "run.yaml"
    config.write_text("train:\n  model: flow\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--config", str(config), "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error:") and "train.model" in error and "\n" not in error
    assert not (tmp_path / "out").exists()


def test_cli_missing_data_exits_2_before_any_stage(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--data", str(tmp_path / "missing.npz"), "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    assert "missing.npz" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_print_plan_shows_the_resolved_plan_before_any_work(phantom_path: Path, tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--data", str(phantom_path), "--model", "diffusion", "--budget-minutes", "7", "--print-plan",
              "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 0
    plan = json.loads(capsys.readouterr().out)
    assert not (tmp_path / "out").exists()
    assert plan["model"]["family"] == "diffusion" and plan["generate"]["student"] is True
    assert plan["train"]["generator_minutes"] + plan["train"]["student_minutes"] == pytest.approx(7.0)
    assert plan["generate"]["per_class"] and set(plan["stages"]) == {"data", "train", "generate", "fidelity", "privacy", "utility"}


def test_train_stage_passes_diffusion_guidance_options(phantom_path: Path, tmp_path: Path) -> None:
    from genrad.data import load
    from genrad.models import load as load_model
    from genrad.models import load_sampler

    config = _config(phantom_path).with_overrides(**{"train.model": "diffusion", "train.max_steps": 2,
                                                     "train.options": {"guidance_scale": 2.0, "guide_step": 1}})
    layout = RunLayout(tmp_path / "run")
    context = _context(config, layout, load(str(phantom_path)))
    pipeline_run._STAGE_WORK["train"](context)
    model = load_model(layout.model_dir)
    assert (model.guidance_scale, model.guide_step) == (2.0, 1) and model.snapshot_guide() is not None
    student = load_sampler(layout.model_dir)  # a guided model is distilled, for 40% of its steps: what generate samples with
    assert student.distilled_from["model_hash"] == model.model_hash() and student.step_ == 1
    assert student.guidance_scale == 1.0


def test_train_stage_distils_nothing_when_told_not_to(phantom_path: Path, tmp_path: Path) -> None:
    from genrad.data import load
    from genrad.models import load_sampler

    config = _config(phantom_path).with_overrides(**{"train.model": "diffusion", "train.max_steps": 2, "train.distill_minutes": 0,
                                                     "train.options": {"guidance_scale": 2.0, "guide_step": 1}})
    layout = RunLayout(tmp_path / "run")
    context = _context(config, layout, load(str(phantom_path)))
    pipeline_run._STAGE_WORK["train"](context)
    assert load_sampler(layout.model_dir).distilled_from is None


def test_generation_plans_what_the_utility_strategy_needs(phantom_path: Path, tmp_path: Path) -> None:
    """Every class at least as large as the largest real class, and as the utility strategy's arms need (20% more
    when the QA filter may drop images); nothing more when the utility stage is off."""
    import numpy as np

    from genrad.data import load
    from genrad.evaluation.utility import DEFAULT_STRATEGY, STRATEGIES, arm_counts, default_arms, synthetic_needed, utility_arms

    cohort = load(str(phantom_path))
    counts = np.bincount(cohort.train.labels)

    def planned(**overrides: object) -> np.ndarray:
        config = _config(phantom_path).with_overrides(**overrides)
        return np.array(list(resolve_plan(config, cohort)["generate"]["per_class"].values()))

    arms = utility_arms(DEFAULT_STRATEGY)
    assert (synthetic_needed(arms, counts) >= arm_counts(STRATEGIES[DEFAULT_STRATEGY].arm, counts)["synthetic"]).all()
    assert (planned() == np.maximum(synthetic_needed(arms, counts), counts.max())).all()
    assert (planned(**{"generate.filter": True}) == np.maximum(synthetic_needed(arms, counts, margin=1.2), counts.max())).all()
    assert planned(**{"utility.enabled": False}).tolist() == [counts.max()] * len(counts)
    curve = planned(**{"utility.strategy": "none", "utility.multiples": [2.0]})
    assert (curve == np.maximum(synthetic_needed(default_arms((2.0,)), counts), counts.max())).all()


def test_generation_samples_as_the_utility_strategy_prescribes(phantom_path: Path, tmp_path: Path, monkeypatch) -> None:
    """A strategy's sampling settings for the trained family go to `generate`, with the model itself (not a student);
    another family, no strategy, or sampling settings of the user's own sample as the model does."""
    from dataclasses import replace

    import genrad.synthesis
    from genrad.data import load
    from genrad.evaluation import utility

    settings = {"guidance_scale": 1.0, "sampling_eta": 1.0, "solver": "ddim", "num_inference_steps": 50}
    strategy = replace(utility.STRATEGIES[utility.DEFAULT_STRATEGY], name="sampled", sampling={"diffusion": settings})
    monkeypatch.setitem(utility.STRATEGIES, "sampled", strategy)
    calls: list[dict] = []
    monkeypatch.setattr(genrad.synthesis, "generate", lambda *args, **kwargs: calls.append(kwargs))
    cohort = load(str(phantom_path))
    for model, name, options in (("diffusion", "sampled", {}), ("vae", "sampled", {}), ("diffusion", "none", {}),
                                 ("diffusion", "sampled", {"num_inference_steps": 20})):
        config = _config(phantom_path).with_overrides(**{"train.model": model, "utility.strategy": name, "train.options": options})
        pipeline_run._stage_generate(_context(config, RunLayout(tmp_path), cohort))
    assert [(call["sampling"], call["student"]) for call in calls] == [(settings, False), (None, True), (None, True), (None, True)]


def test_no_student_is_distilled_by_default_when_the_strategy_sets_the_sampling(phantom_path: Path, tmp_path: Path,
                                                                                monkeypatch) -> None:
    from dataclasses import replace

    import genrad.training
    import genrad.training.distill
    from genrad.data import load
    from genrad.evaluation import utility

    strategy = replace(utility.STRATEGIES[utility.DEFAULT_STRATEGY], name="sampled", sampling={"diffusion": {"guidance_scale": 1.0}})
    monkeypatch.setitem(utility.STRATEGIES, "sampled", strategy)
    monkeypatch.setattr(genrad.training, "train", lambda *args, **kwargs: None)
    distilled: list[str] = []
    monkeypatch.setattr(genrad.training.distill, "distill_guidance", lambda *args, **kwargs: distilled.append("student"))
    cohort = load(str(phantom_path))
    for name, minutes in (("sampled", None), ("none", None), ("sampled", 1.0)):
        config = _config(phantom_path).with_overrides(**{"train.model": "diffusion", "utility.strategy": name,
                                                         "train.distill_minutes": minutes})
        before = len(distilled)
        pipeline_run._stage_train(_context(config, RunLayout(tmp_path), cohort))
        assert len(distilled) - before == (0 if (name, minutes) == ("sampled", None) else 1), (name, minutes)


@pytest.mark.slow
def test_an_rgb_dataset_runs_every_stage_to_the_report(tmp_path: Path) -> None:
    """Colour images through `genrad run`: radiomics on their luminance, every stage, a report with every section."""
    import numpy as np

    from genrad.data import Cohort, Split

    phantom = make_phantom(n=180, size=28, seed=0)
    colour = {name: Split(np.concatenate([s.images, s.images * 0.8, s.images * 0.6], axis=1).astype(np.float32), s.labels,
                          name=name) for name, s in phantom.splits.items()}
    path = tmp_path / "rgb.npz"
    Cohort(splits=colour, class_names=phantom.class_names, source="rgb").save(str(path))
    layout = RunLayout(tmp_path / "run")
    report = pipeline_run.run_pipeline(_config(path), layout.root, progress=False)
    assert "has not" not in report.read_text(encoding="utf-8")
    fidelity = json.loads(layout.fidelity_json.read_text())
    assert fidelity["frd"]["value"] is not None and json.loads(layout.utility_json.read_text())["arms"]

