"""Generative models behind one interface: `Generator` (base), `VAE`, `GAN`, `Diffusion`; `load(run_dir)`."""

from genrad.models.base import Generator, load
from genrad.models.vae import VAE

__all__ = ["VAE", "Generator", "load"]
