"""Guidance distillation (`genrad.training.distill`): the student reproduces its guided teacher in half the calls."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from genrad.data import Split
from genrad.errors import InputError
from genrad.models import Diffusion, load, load_sampler
from genrad.models.factory import STUDENT
from genrad.training.distill import distill_guidance

SOLVER_STEPS = 6
TOLERANCE = 0.05
"""Mean absolute difference in [0, 1] intensity between the student's and the guided teacher's samples from the same
noise: a twelfth of the toy's class contrast (0.6); the unguided teacher (the student before distillation) is 0.13 away."""


def toy(n: int = 64, size: int = 16, seed: int = 0) -> Split:
    """Class 0: a dark field with a bright disc of random radius; class 1: a bright field with a dark square."""
    rng = np.random.default_rng(seed)
    labels = (np.arange(n) % 2).astype(np.int64)
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, size)] * 2, indexing="ij"))
    radius = rng.uniform(0.3, 0.7, n).reshape(-1, 1, 1)
    disc = (np.sqrt((grid**2).sum(0)) < radius).astype(np.float32)
    square = (np.abs(grid).max(0) < radius).astype(np.float32)
    images = np.where(labels.reshape(-1, 1, 1) == 0, 0.2 + 0.6 * disc, 0.8 - 0.6 * square)
    return Split(np.clip(images + 0.02 * rng.standard_normal(images.shape), 0, 1).astype(np.float32)[:, None], labels)


@pytest.fixture(scope="module")
def teacher() -> Diffusion:
    model = Diffusion(num_classes=2, channels=(16, 32), batch_size=16, guide_step=40, guidance_scale=2.5, solver="dpm++2m",
                      num_inference_steps=SOLVER_STEPS)
    return model.fit(toy(), max_steps=200, seed=0, progress=False)


@pytest.fixture(scope="module")
def student(teacher: Diffusion, tmp_path_factory: pytest.TempPathFactory) -> Diffusion:
    return distill_guidance(teacher, toy(), max_steps=150, learning_rate=3e-4, num_inference_steps=SOLVER_STEPS, seed=0,
                            out_dir=tmp_path_factory.mktemp("run") / STUDENT, progress=False)


def samples(model: Diffusion, **settings: object) -> torch.Tensor:
    model.with_sampling(**settings)
    return model.sample(32, labels=[0, 1] * 16, generator=3)


def test_student_matches_its_guided_teacher_in_half_the_calls(teacher: Diffusion, student: Diffusion) -> None:
    guided = samples(teacher)
    unguided = samples(teacher, guidance_scale=1.0)
    teacher.with_sampling(guidance_scale=2.5)
    error = float((samples(student) - guided).abs().mean())
    before = float((unguided - guided).abs().mean())  # the student before distillation is the unguided teacher
    assert error <= TOLERANCE and error <= 0.5 * before, (error, before)


def test_student_records_its_teacher_and_samples_without_guidance(teacher: Diffusion, student: Diffusion) -> None:
    assert student.distilled_from["model_hash"] == teacher.model_hash()
    assert student.distilled_from["guidance_scale"] == 2.5 and student.distilled_from["guide_step"] == 40
    assert student.guidance_scale == 1.0 and student.guide_step is None and student.guide_ is None
    assert student.num_inference_steps == SOLVER_STEPS and student.sampling_solver() == "dpm++2m"
    assert student.data_hash_ == teacher.data_hash_


def test_a_run_samples_with_its_student_when_it_has_one(teacher: Diffusion, student: Diffusion, tmp_path: Path) -> None:
    teacher.save(tmp_path)
    assert load_sampler(tmp_path).model_hash() == load(tmp_path).model_hash() == teacher.model_hash()
    student.save(tmp_path / STUDENT)
    assert load_sampler(tmp_path).model_hash() == student.model_hash()
    assert load_sampler(tmp_path, student=False).model_hash() == teacher.model_hash()


def test_distillation_is_reproducible_and_resumes(teacher: Diffusion, student: Diffusion, tmp_path: Path) -> None:
    distill_guidance(teacher, toy(), max_steps=80, learning_rate=3e-4, num_inference_steps=SOLVER_STEPS, seed=0,
                     out_dir=tmp_path, progress=False)
    resumed = distill_guidance(teacher, toy(), max_steps=150, learning_rate=3e-4, num_inference_steps=SOLVER_STEPS, seed=0,
                               out_dir=tmp_path, resume=True, progress=False)
    assert resumed.model_hash() == student.model_hash()


def test_bad_teachers_and_data_are_refused(teacher: Diffusion, student: Diffusion) -> None:
    with pytest.raises(InputError, match="teacher's training images"):
        distill_guidance(teacher, toy(seed=1), max_steps=1, progress=False)
    with pytest.raises(InputError, match="guided diffusion teacher"):
        distill_guidance(student, toy(), max_steps=1, progress=False)
    unguided = Diffusion(num_classes=2, channels=(8, 16), batch_size=16, guidance_scale=1.0).fit(toy(), max_steps=1, progress=False)
    with pytest.raises(InputError, match="guided diffusion teacher"):
        distill_guidance(unguided, toy(), max_steps=1, progress=False)
    orphan = Diffusion.from_config(student.config)
    with pytest.raises(InputError, match="without its teacher"):
        orphan.fit(toy(), max_steps=1, progress=False)


def test_a_classifier_free_teacher_is_distilled_too() -> None:
    """Without autoguidance (no guide_step, or trained short of it) the teacher guides with its null condition; the
    student learns that guided output at one timestep per image."""
    teacher = Diffusion(num_classes=2, channels=(16, 32), batch_size=16, guidance_scale=2.0, condition_dropout=0.2)
    teacher.fit(toy(), max_steps=2, seed=0, progress=False)
    student = distill_guidance(teacher, toy(), max_steps=2, seed=0, progress=False)
    assert student.step_ == 2 and student.distilled_from["guide_step"] is None
