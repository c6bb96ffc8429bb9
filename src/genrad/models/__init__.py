"""Generative models behind one interface: `Generator` (base), `VAE`, `GAN`, `Diffusion`; `build(family, ...)`,
`load(run_dir)`."""

from genrad.models.base import Generator, build, load
from genrad.models.diffusion import Diffusion
from genrad.models.gan import GAN
from genrad.models.vae import VAE

__all__ = ["GAN", "VAE", "Diffusion", "Generator", "build", "load"]
