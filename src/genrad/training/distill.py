"""Guidance distillation: a diffusion student that samples in one network call per step what its guided teacher
samples in two.

Meng et al. 2023 ("On distillation of guided diffusion models", stage one, eq. 6): the student starts from the
teacher's weights and is trained on the teacher's training images, noised as in training, to predict the teacher's
*guided* output ``g + w (c - g)`` (autoguidance or classifier-free, `genrad.models.sampling`) for the same noisy
image, timestep and condition. The student is a `genrad.models.Diffusion` with no guidance and ``distilled_from``
recording the teacher (its weights' hash, guidance and training steps), so it saves, loads and samples like any
genrad model, with the teacher's few-step solver.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from genrad.data import Cohort, Split
from genrad.errors import InputError
from genrad.models.diffusion import Diffusion

DISTILL_STEPS = 600
"""Student steps when no budget is given."""
DISTILL_LEARNING_RATE = 1e-4
STUDENT_SAMPLING_STEPS = 10
"""The student's solver steps (network calls per image) unless told otherwise."""


def teacher_record(teacher: Diffusion) -> dict[str, Any]:
    """What a student records of its teacher: weights' hash, guidance settings, training steps and preset."""
    return {"model_hash": teacher.model_hash(), "guidance_scale": teacher.guidance_scale,
            "guide_step": teacher.guide_step, "guidance_interval": list(teacher.guidance_interval),
            "train_steps": int(teacher.step_), "preset": getattr(teacher, "preset_", None)}


def distill_guidance(teacher: Diffusion, data: Split | Cohort, *, max_steps: int | None = None,
                     max_minutes: float | None = None, learning_rate: float = DISTILL_LEARNING_RATE,
                     num_inference_steps: int | None = None, seed: int = 0,
                     callbacks: Iterable[Callable[..., Any]] = (), out_dir: str | Path | None = None,
                     resume: bool = False, progress: bool = True) -> Diffusion:
    """A student of the fitted, guided `teacher`, trained on the teacher's own training data (`data`, checked by its
    hash: other images would teach the student what the teacher never saw) for `max_steps` steps or `max_minutes`
    (neither: `DISTILL_STEPS`); the student samples in `num_inference_steps` steps of the teacher's solver (None:
    `STUDENT_SAMPLING_STEPS`). Checkpoints, resume and progress as in `genrad.training.Trainer`."""
    if not isinstance(teacher, Diffusion) or not hasattr(teacher, "networks_"):
        raise InputError("a fitted Diffusion teacher", type(teacher).__name__, "train a diffusion model first",
                         argument="teacher")
    if teacher.guidance_scale == 1.0 or teacher.distilled_from is not None:
        found = "a distilled student" if teacher.distilled_from is not None else "guidance_scale 1 (no guidance)"
        raise InputError("a guided diffusion teacher (guidance_scale != 1)", found,
                         "distil a guided model: there is nothing to distil otherwise", argument="teacher")
    split = data.train if isinstance(data, Cohort) else data
    if split.content_hash() != teacher.data_hash_:
        raise InputError(f"the teacher's training images (hash {teacher.data_hash_[:12]})",
                         f"other images (hash {split.content_hash()[:12]})", "pass the split the teacher was trained on",
                         argument="data")
    student = Diffusion.from_config({**teacher.config, "guidance_scale": 1.0, "guide_step": None, "condition_dropout": 0.0,
                                     "learning_rate": learning_rate, "distilled_from": teacher_record(teacher),
                                     "num_inference_steps": STUDENT_SAMPLING_STEPS if num_inference_steps is None else num_inference_steps})
    student.teacher_ = teacher
    try:
        student.fit(split, max_steps=max_steps if max_steps is not None or max_minutes is not None else DISTILL_STEPS,
                    max_minutes=max_minutes, seed=seed, callbacks=callbacks, out_dir=out_dir, resume=resume,
                    progress=progress)
    finally:
        del student.teacher_
    return student
