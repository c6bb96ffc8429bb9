"""`build` and `load`: any genrad generator by family, preset or run directory (every family registered)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from genrad.errors import InputError
from genrad.models.base import Generator
from genrad.models.diffusion import Diffusion
from genrad.models.gan import GAN
from genrad.models.options import given_options
from genrad.models.presets import get_preset
from genrad.models.vae import VAE

FAMILIES = (VAE, GAN, Diffusion)
STUDENT = "student"
"""The sub-folder of a model's run directory that holds its guidance-distilled student (`genrad.training.distill`)."""


def load(run_dir: str | Path) -> Generator:
    """Load any genrad model from a run directory; the family is read from its ``config.json``."""
    return Generator.load(run_dir)


def load_sampler(run_dir: str | Path, *, student: bool = True) -> Generator:
    """The model that samples for a run directory: its distilled student (``run_dir/student``) when one was saved
    there and `student` is true, else the model saved in `run_dir` itself."""
    folder = Path(run_dir) / STUDENT
    return load(folder if student and (folder / "config.json").exists() else run_dir)


def build(family: str | None = None, *, preset: str | None = None, private: bool = False, **options: Any) -> Generator:
    """A new `family` generator, or the family of `preset` with its options (`genrad.models.presets`; the preset is
    recorded with the model); `private` adds the family's `private_settings`. Options that are None keep their
    defaults (optional command-line and config values pass straight through); `sampling_settings` are applied with
    `Generator.with_sampling`, which explains a setting the family does not have."""
    chosen = get_preset(preset) if preset is not None else None
    family = chosen.family if chosen is not None else family
    if family not in Generator.registry:
        raise InputError(f"a model family among {sorted(Generator.registry)}", repr(family), "choose a listed family",
                         argument="model")
    family_cls = Generator.registry[family]
    given = {**(chosen.options if chosen is not None else {}), **given_options(options),
             **(family_cls.private_settings if private else {})}
    any_sampling = {key for cls in Generator.registry.values() for key in cls.sampling_settings}
    sampling = {key: given.pop(key) for key in list(given) if key in any_sampling}
    model = family_cls(**given).with_sampling(**sampling)
    model.preset_ = None if chosen is None else chosen.record()
    return model
