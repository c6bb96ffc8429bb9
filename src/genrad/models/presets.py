"""Named, versioned configurations of the generator families: what genrad has validated, in code.

A preset is a family and its constructor options; `genrad.models.build(preset=...)` (``--preset`` on the
command line) builds it, and its name and version are recorded with the model (``config.json``) and in every
run's provenance. Options given beside a preset override it. The figures behind each preset are in
docs/benchmarks.md; the user guide says when to choose which.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from genrad.errors import InputError


@dataclass(frozen=True)
class Preset:
    """A family with constructor options, a version (bumped whenever the options change) and what it is for."""

    name: str
    family: str
    version: int
    summary: str
    options: Mapping[str, Any] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "family": self.family}


PRESETS = {
    preset.name: preset
    for preset in (
        Preset("diffusion", "diffusion", 2,
               "the most faithful generator: DDPM with v-prediction, autoguidance by its step-350 snapshot at weight 1.75, "
               "20 DPM-Solver++ steps (bfloat16 network calls where native), the intensity map chosen from the data "
               "(the clipped-ultrasound map on BreastMNIST)",
               {"guide_step": 350, "guidance_scale": 1.75, "intensity": "auto", "solver": "dpm++2m", "num_inference_steps": 20,
                "sampling_precision": "auto"}),
        Preset("vae", "vae", 1, "fast to train and to sample (one decoder pass), blurrier than diffusion", {}),
        Preset("gan", "gan", 1, "one-pass sampling, sharper than the VAE, least faithful of the three", {}),
    )
}


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise InputError(f"a preset among {sorted(PRESETS)}", repr(name), "choose a listed preset (genrad.models.presets)",
                         argument="preset")
    return PRESETS[name]


DIFFUSION_MINUTES = 10.0
"""The least training budget for which the diffusion preset is chosen by default: on BreastMNIST it beat the VAE's
15-minute FRD with half that budget (docs/benchmarks.md); below it the VAE, which trains and samples fastest."""


def choose_preset(*, budget_minutes: float | None, n_images: int) -> tuple[str, str]:
    """The preset a user who names none gets, and why: the most faithful validated preset that the budget allows."""
    if budget_minutes is None or budget_minutes >= DIFFUSION_MINUTES:
        budget = "no time budget" if budget_minutes is None else f"a {budget_minutes:.3g}-minute budget"
        return "diffusion", (f"{budget} for {n_images} training images allows the most faithful preset "
                             f"(diffusion from {DIFFUSION_MINUTES:g} minutes)")
    return "vae", (f"a {budget_minutes:.3g}-minute budget is below the {DIFFUSION_MINUTES:g} minutes the diffusion preset "
                   "needs; the VAE trains and samples fastest")
