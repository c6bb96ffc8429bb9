"""Named presets: what they build, what they record, and which one a user who names none gets."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from conftest import toy_split

import genrad.models
from genrad.data.intensity import IntensityMap
from genrad.errors import InputError
from genrad.models.presets import DIFFUSION_MINUTES, PRESETS, choose_preset

TINY = {"channels": (8, 16), "num_inference_steps": 2, "batch_size": 8}


def test_the_diffusion_preset_is_the_validated_configuration() -> None:
    """The options behind the six-model BreastMNIST figure (docs/benchmarks.md): autoguidance by the step-350
    snapshot at weight 1.75 and the intensity map chosen from the data (the clipped-ultrasound map there)."""
    model = genrad.models.build(preset="diffusion", num_classes=2)
    assert isinstance(model, genrad.models.Diffusion)
    assert model.config["guide_step"] == 350 and model.config["guidance_scale"] == 1.75
    assert model.config["intensity"] == "auto"
    assert model.preset_ == {"name": "diffusion", "version": PRESETS["diffusion"].version, "family": "diffusion"}
    assert genrad.models.build(preset="diffusion", num_classes=2, guidance_scale=1.0).config["guidance_scale"] == 1.0
    with pytest.raises(InputError, match="preset among"):
        genrad.models.build(preset="best", num_classes=2)


def test_a_preset_is_saved_with_the_model(tmp_path: Path) -> None:
    model = genrad.models.build(preset="diffusion", num_classes=2, **TINY)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the run ends before the guide's step: classifier-free guidance, with a warning
        model.fit(toy_split(), max_steps=2, seed=0, progress=False)
    assert model.intensity_ == IntensityMap()  # the toy has no clipped floor
    model.save(tmp_path)
    assert genrad.models.load(tmp_path).preset_ == model.preset_


@pytest.mark.parametrize(("minutes", "expected"), [(None, "diffusion"), (DIFFUSION_MINUTES, "diffusion"), (15.0, "diffusion"),
                                                   (5.0, "vae"), (0.5, "vae")])
def test_the_default_preset_is_the_most_faithful_the_budget_allows(minutes: float | None, expected: str) -> None:
    preset, reason = choose_preset(budget_minutes=minutes, n_images=546)
    assert preset == expected
    assert ("no time budget" if minutes is None else f"{minutes:g}-minute budget") in reason
