"""Generative models behind one interface: `Generator` (base), `VAE`, `GAN`, `Diffusion`; `build(family, ...)`,
`load(run_dir)`, `load_sampler(run_dir)` (a run's distilled student when it has one); named configurations in
`genrad.models.presets` and shared options in `genrad.models.options`.

The families (and torch) are imported on first use, so that reading presets and options needs no torch.
"""

from __future__ import annotations

from typing import Any

__all__ = ["GAN", "VAE", "Diffusion", "Generator", "build", "load", "load_sampler"]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'genrad.models' has no attribute {name!r}")
    from genrad.models.base import Generator
    from genrad.models.factory import GAN, VAE, Diffusion, build, load, load_sampler

    found = {"GAN": GAN, "VAE": VAE, "Diffusion": Diffusion, "Generator": Generator, "build": build, "load": load,
             "load_sampler": load_sampler}
    globals().update(found)
    return found[name]
