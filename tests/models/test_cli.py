"""`genrad train` and `genrad sample`: run directories, resume, synthetic npz, clean errors (exit 2)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import toy_split

from genrad.cli.main import main
from genrad.data import Cohort, load, save_npz
from genrad.evaluation import utility
from genrad.models import load as load_model


@pytest.fixture(scope="module")
def toy_npz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    split = toy_split(n=16)
    path = tmp_path_factory.mktemp("data") / "toy.npz"
    save_npz(Cohort(splits={"train": split}, class_names=("disc", "square")), path)
    return path


def run(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as exit_info:
        main(argv + [])
    return int(exit_info.value.code or 0)


def test_train_resume_and_sample(toy_npz: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    base = ["train", "--data", str(toy_npz), "--model", "vae", "--out", str(out), "--seed", "1", "--covariates", "age",
            "--intensity", "gamma=2,black_level=0.004,floor_gap=0.3,floor_ramp=2"]
    assert run(base + ["--max-steps", "2"]) == 0
    assert run(base + ["--max-steps", "3", "--resume"]) == 0
    assert json.loads((out / "training_state.json").read_text())["step"] == 3
    config = json.loads((out / "config.json").read_text())["config"]
    assert config["covariates"] == ["age"]
    assert config["intensity"] == {"gamma": 2.0, "black_level": 0.004, "floor_gap": 0.3, "floor_ramp": 2.0}
    synthetic = tmp_path / "synthetic.npz"
    assert run(["sample", str(out), "--n", "6", "--out", str(synthetic), "--seed", "2"]) == 0
    cohort = load(synthetic)
    assert cohort.train.images.shape == (6, 1, 28, 28) and cohort.preprocessing["saved"]["synthetic"] is True
    assert list(cohort.train.clinical.columns) == ["age"]
    first = synthetic.read_bytes()
    assert run(["sample", str(out), "--n", "6", "--out", str(synthetic), "--seed", "2"]) == 0
    assert np.array_equal(load(synthetic).train.images, cohort.train.images) and len(first) > 0


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--data", "{npz}", "--model", "flow", "--out", "{tmp}/r"], "--model"),
        (["train", "--data", "{tmp}/missing.npz", "--model", "vae", "--out", "{tmp}/r"], "no such file"),
        (["train", "--data", "{npz}", "--model", "vae", "--out", "{tmp}/r", "--covariates", "weight"], "missing"),
        (["train", "--data", "{npz}", "--model", "gan", "--out", "{tmp}/r", "--resume"], "--resume with a checkpoint"),
        (["train", "--data", "{npz}", "--model", "vae", "--out", "{tmp}/r", "--precision", "fp16"], "precision one of"),
        (["train", "--data", "{npz}", "--model", "diffusion", "--out", "{tmp}/r", "--intensity", "gamma=0"], "--intensity gamma="),
        (["train", "--data", "{npz}", "--model", "gan", "--out", "{tmp}/r", "--intensity", "floor_gap=0.3"], "with a black_level > 0"),
        (["train", "--data", "{npz}", "--model", "gan", "--out", "{tmp}/r", "--intensity", "colour=2"], "gamma, black_level"),
        (["train", "--data", "{npz}", "--model", "vae", "--out", "{tmp}/r", "--option", "latent_dim"], "--option KEY=VALUE"),
        (["train", "--data", "{npz}", "--model", "vae", "--out", "{tmp}/r", "--option", "wings=2"], "unknown argument"),
        (["train", "--data", "{npz}", "--preset", "best", "--out", "{tmp}/r"], "--preset among"),
        (["train", "--data", "{npz}", "--model", "vae", "--out", "{tmp}/r", "--precision", "bf16", "--dp", "--epsilon", "8"],
         "precision 'fp32' for DP"),
        (["sample", "{tmp}", "--n", "2", "--out", "{tmp}/x.npz"], "config.json"),
        (["train", "--data", "{npz}", "--model", "vae", "--out", "{tmp}/r", "--option", "guidance_scale=3"], "VAE sampling settings"),
        (["train", "--data", "{npz}", "--model", "gan", "--out", "{tmp}/r", "--option", "guide_step=3"], "unknown argument"),
        (["train", "--data", "{npz}", "--model", "diffusion", "--out", "{tmp}/r", "--option", "guide_step=0"],
         "--option guide_step=VALUE"),
    ],
)
def test_bad_input_exits_2_with_one_line(argv: list[str], message: str, toy_npz: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    argv = [a.format(npz=toy_npz, tmp=tmp_path) for a in argv]
    assert run(argv) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error:") and message in error and "Traceback" not in error and "\n" not in error
    assert not (tmp_path / "x.npz").exists()


def test_guidance_is_set_at_training_and_changed_at_sampling(toy_npz: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert run(["train", "--data", str(toy_npz), "--model", "diffusion", "--out", str(out), "--max-steps", "2",
                "--option", "guidance_scale=3", "--option", "guide_step=1"]) == 0
    config = json.loads((out / "config.json").read_text())["config"]
    assert config["guidance_scale"] == 3.0 and config["guide_step"] == 1
    assert load_model(out).snapshot_guide() is not None
    saved, changed = tmp_path / "saved.npz", tmp_path / "changed.npz"
    assert run(["sample", str(out), "--n", "2", "--out", str(saved)]) == 0
    assert run(["sample", str(out), "--n", "2", "--out", str(changed), "--guidance-scale", "5"]) == 0
    assert load(saved).preprocessing["saved"]["model_config"]["guidance_scale"] == 3.0
    assert load(changed).preprocessing["saved"]["model_config"]["guidance_scale"] == 5.0


def test_distill_then_sample_with_the_student_or_the_teacher(toy_npz: Path, tmp_path: Path, monkeypatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """The run samples with its student, or its teacher on request; `generate --strategy` samples as a utility
    strategy prescribes, with the teacher."""
    out = tmp_path / "run"
    assert run(["train", "--data", str(toy_npz), "--model", "diffusion", "--out", str(out), "--max-steps", "2",
                "--option", "guidance_scale=2", "--option", "guide_step=1", "--option", "channels=[8,16]"]) == 0
    assert run(["distill", str(out), "--data", str(toy_npz), "--max-steps", "2", "--steps", "4"]) == 0
    assert "student of" in capsys.readouterr().out
    teacher_hash = load_model(out).model_hash()
    student, teacher, fewer = tmp_path / "student.npz", tmp_path / "teacher.npz", tmp_path / "fewer.npz"
    assert run(["sample", str(out), "--n", "2", "--out", str(student)]) == 0
    assert run(["sample", str(out), "--n", "2", "--out", str(teacher), "--teacher"]) == 0
    assert run(["sample", str(out), "--n", "2", "--out", str(fewer), "--steps", "2"]) == 0
    saved = load(student).preprocessing["saved"]["model_config"]
    assert saved["distilled_from"]["model_hash"] == teacher_hash and saved["num_inference_steps"] == 4
    assert load(teacher).preprocessing["saved"]["model_config"]["distilled_from"] is None
    assert load(fewer).preprocessing["saved"]["model_config"]["num_inference_steps"] == 2
    strategy = replace(utility.STRATEGIES[utility.DEFAULT_STRATEGY], name="sampled",
                       sampling={"diffusion": {"guidance_scale": 1.0, "sampling_eta": 1.0, "solver": "ddim"}})
    monkeypatch.setitem(utility.STRATEGIES, "sampled", strategy)
    for name, steps in (("sampled", []), ("sampled", ["--steps", "3"])):  # the strategy's sampling, by the teacher
        synthetic = tmp_path / f"synthetic-{len(steps)}"
        assert run(["generate", str(out), "--out", str(synthetic), "--per-class", "0=2", "--strategy", name, *steps]) == 0
        generation = json.loads((synthetic / "synthesis.json").read_text())["generation"]
        assert generation["model_hash"] == teacher_hash
        assert generation["sampling"] == {**strategy.sampling["diffusion"], **({"num_inference_steps": 3} if steps else {})}
    assert run(["generate", str(out), "--out", str(tmp_path / "none"), "--per-class", "0=2", "--strategy", "magic"]) == 2
    other = tmp_path / "other.npz"
    save_npz(Cohort(splits={"train": toy_split(n=16, seed=5)}, class_names=("disc", "square")), other)
    assert run(["distill", str(out), "--data", str(other), "--max-steps", "1"]) == 2
    assert "teacher's training images" in capsys.readouterr().err
