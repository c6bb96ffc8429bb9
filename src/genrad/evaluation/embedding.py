"""A learned image embedding for the privacy audit, trained by genrad on the training images only.

`ContrastiveEmbedding` is a small convolutional encoder (MONAI `Regressor`) trained by instance
discrimination, SimCLR's NT-Xent loss (Chen et al. 2020, "A simple framework for contrastive learning
of visual representations", eq. 1): two random views of the same image must lie closer together than
views of different images. The views are the edits a memorising generator might make to a training
image (mirror flips, shifts of a few pixels, additive noise, small brightness/contrast changes), so
near-copies land beside their source while distinct patients stay apart. No downloaded weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from monai.networks.nets import Regressor

from genrad.core import make_generator, seeded_init
from genrad.errors import InputError, NotFittedError


@dataclass(eq=False)
class ContrastiveEmbedding:
    """Encoder mapping images ``(N, C, *spatial)`` in [0, 1] to unit vectors ``(N, latent_dim)``.

    Args:
        latent_dim: embedding size.
        channels: encoder channels per stride-2 stage.
        steps: optimisation steps (Adam) of batch `batch_size`.
        temperature: NT-Xent temperature tau.
        max_shift: largest random shift of a view, in pixels.
        noise: largest standard deviation of the additive Gaussian noise of a view.
        seed: seeds initialisation, batches and views.
    """

    latent_dim: int = 64
    channels: tuple[int, ...] = (16, 32, 64)
    steps: int = 300
    batch_size: int = 128
    learning_rate: float = 1e-3
    temperature: float = 0.2
    max_shift: int = 2
    noise: float = 0.05
    seed: int = 0

    @property
    def config(self) -> dict[str, object]:
        """The constructor arguments (JSON-serialisable)."""
        return {
            "latent_dim": self.latent_dim,
            "channels": list(self.channels),
            "steps": self.steps,
            "batch_size": self.batch_size,
            "learning_rate": self.learning_rate,
            "temperature": self.temperature,
            "max_shift": self.max_shift,
            "noise": self.noise,
            "seed": self.seed,
        }

    def fit(self, images: np.ndarray | torch.Tensor) -> ContrastiveEmbedding:
        """Train the encoder on `images` (the training split)."""
        data = torch.as_tensor(images, dtype=torch.float32)
        if data.ndim not in (4, 5) or len(data) < 2:
            raise InputError(
                "at least 2 images shaped (N, C, H, W) or (N, C, D, H, W)",
                f"shape {tuple(data.shape)}",
                "pass the training images of a Split",
                source="ContrastiveEmbedding.fit",
            )
        with seeded_init(self.seed, "embedding-init"):
            encoder = Regressor(
                in_shape=tuple(data.shape[1:]),
                out_shape=(self.latent_dim,),
                channels=self.channels,
                strides=(2,) * len(self.channels),
                num_res_units=0,
            )
        optimiser = torch.optim.Adam(encoder.parameters(), lr=self.learning_rate)
        generator = make_generator(self.seed, "embedding-batches")
        batch = min(self.batch_size, len(data))
        encoder.train()
        for _ in range(self.steps):
            index = torch.randperm(len(data), generator=generator)[:batch]
            views = torch.cat([self._view(data[index], generator), self._view(data[index], generator)])
            loss = nt_xent(F.normalize(encoder(views), dim=1), self.temperature)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
        self.encoder_ = encoder.eval()
        self.image_shape_ = tuple(data.shape[1:])
        return self

    @torch.no_grad()
    def transform(self, images: np.ndarray | torch.Tensor, batch_size: int = 512) -> torch.Tensor:
        """Unit-norm embeddings ``(N, latent_dim)`` of `images` (same shape as the fitted images)."""
        if not hasattr(self, "encoder_"):
            raise NotFittedError(self)
        data = torch.as_tensor(images, dtype=torch.float32)
        if tuple(data.shape[1:]) != self.image_shape_:
            raise InputError(
                f"images of shape {self.image_shape_}",
                f"shape {tuple(data.shape[1:])}",
                "embed images of the size the embedding was fitted on",
                source="ContrastiveEmbedding.transform",
            )
        return torch.cat([F.normalize(self.encoder_(part), dim=1) for part in data.split(batch_size)])

    def _view(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """A random view: mirror flips, a shift of up to `max_shift` pixels, contrast/brightness, noise."""
        n, spatial = len(images), images.shape[2:]
        dims = len(spatial)
        mirror = torch.where(torch.rand(n, dims, generator=generator) < 0.5, -1.0, 1.0)
        pixels = torch.tensor(spatial[::-1], dtype=torch.float32)  # affine_grid orders axes x, y(, z)
        shift = (2 * torch.rand(n, dims, generator=generator) - 1) * self.max_shift * 2 / pixels
        theta = torch.cat([torch.diag_embed(mirror), shift[:, :, None]], dim=2)
        grid = F.affine_grid(theta, list(images.shape), align_corners=False)
        views = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
        shape = (n,) + (1,) * (images.ndim - 1)
        contrast = 1 + 0.2 * (torch.rand(shape, generator=generator) - 0.5)
        brightness = 0.1 * (torch.rand(shape, generator=generator) - 0.5)
        sigma = self.noise * torch.rand(shape, generator=generator)
        return views * contrast + brightness + sigma * torch.randn(views.shape, generator=generator)

def nt_xent(embeddings: torch.Tensor, temperature: float) -> torch.Tensor:
    """NT-Xent loss (Chen et al. 2020, eq. 1) of unit vectors ``(2B, L)``; rows i and i + B are a pair."""
    pairs = len(embeddings) // 2
    logits = embeddings @ embeddings.T / temperature
    logits.fill_diagonal_(float("-inf"))
    targets = torch.arange(2 * pairs).roll(pairs)
    return F.cross_entropy(logits, targets)

