"""Conditional GAN for small datasets.

- Generator: z and the condition embedding c = [class embedding, linear(covariates)] feed a linear
  layer to a 4-pixel feature map, then per level: nearest x2 upsampling -> MONAI conv -> GroupNorm
  modulated by c (conditional normalisation, as BigGAN's conditional BatchNorm; Brock et al. 2019)
  -> SiLU; a final conv and tanh.
- Discriminator: spectral-normalised convolutions (Miyato et al. 2018) with LeakyReLU, global sum
  pooling, and a projection head (Miyato & Koyama 2018): ``D(x, y, c) = w . h + e_y . h + (W c) . h``.
- Hinge loss (Lim & Ye 2017): ``L_D = E[relu(1 - D(x))] + E[relu(1 + D(G(z)))]``, ``L_G = -E[D(G(z))]``.
- DiffAugment (Zhao et al. 2020): the same random, differentiable translation, cutout, brightness and
  contrast are applied to real and generated images before D, which keeps D from memorising a few
  hundred images.
- EMA of the generator weights is used for sampling (Yazici et al. 2019).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from monai.networks.blocks import Convolution
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm
from torch.optim import Adam, Optimizer

from genrad.errors import is_number
from genrad.models.base import Batch, LatentGenerator
from genrad.models.blocks import (
    ConditionEmbedding,
    default_channels,
    groups_for,
    output_conv,
)


class _ModulatedUp(nn.Module):
    """Upsample x2 -> conv -> GroupNorm without affine -> ``(1 + gamma(c)) * h + beta(c)`` -> SiLU."""

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, condition_dim: int) -> None:
        super().__init__()
        self.conv = Convolution(spatial_dims, in_channels, out_channels, kernel_size=3, conv_only=True)
        self.norm = nn.GroupNorm(groups_for(out_channels), out_channels, affine=False)
        self.modulation = nn.Linear(condition_dim, 2 * out_channels)

    def forward(self, h: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        h = self.norm(self.conv(F.interpolate(h, scale_factor=2, mode="nearest")))
        gamma, beta = self.modulation(condition).view(*condition.shape[:1], -1, *[1] * (h.ndim - 2)).chunk(2, dim=1)
        return F.silu(h * (1 + gamma) + beta)


class GANGenerator(nn.Module):
    """``forward(z, labels, covariates) -> images`` in ``[-1, 1]``."""

    def __init__(self, spatial_dims: int, out_channels: int, spatial_shape: Sequence[int], channels: Sequence[int],
                 latent_dim: int, num_classes: int, num_covariates: int, condition_dim: int = 128) -> None:
        super().__init__()
        levels = len(channels) - 1
        self.start = (channels[-1], *(s // 2**levels for s in spatial_shape))
        self.embed = ConditionEmbedding(num_classes, num_covariates, condition_dim)
        self.project = nn.Linear(latent_dim + condition_dim, math.prod(self.start))
        self.blocks = nn.ModuleList(
            _ModulatedUp(spatial_dims, channels[i + 1], channels[i], condition_dim + latent_dim) for i in reversed(range(levels))
        )
        self.out = nn.Sequential(nn.GroupNorm(groups_for(channels[0]), channels[0]), nn.SiLU(),
                                 output_conv(spatial_dims, channels[0], out_channels), nn.Tanh())

    def forward(self, z: torch.Tensor, labels: torch.Tensor, covariates: torch.Tensor) -> torch.Tensor:
        condition = torch.cat([self.embed((labels, covariates)), z], dim=1)
        h = F.silu(self.project(condition)).view(-1, *self.start)
        for block in self.blocks:
            h = block(h, condition)
        return self.out(h)


class ProjectionDiscriminator(nn.Module):
    """Spectral-normalised conv discriminator with a projection head; ``forward(x, labels, covariates) -> (B,)``."""

    def __init__(self, spatial_dims: int, in_channels: int, channels: Sequence[int], num_classes: int, num_covariates: int) -> None:
        super().__init__()
        conv = {2: nn.Conv2d, 3: nn.Conv3d}[spatial_dims]
        layers: list[nn.Module] = [spectral_norm(conv(in_channels, channels[0], 3, padding=1)), nn.LeakyReLU(0.2)]
        for i in range(len(channels) - 1):
            layers += [spectral_norm(conv(channels[i], channels[i], 3, padding=1)), nn.LeakyReLU(0.2),
                       spectral_norm(conv(channels[i], channels[i + 1], 4, stride=2, padding=1)), nn.LeakyReLU(0.2)]
        self.features = nn.Sequential(*layers)
        self.linear = spectral_norm(nn.Linear(channels[-1], 1))
        self.classes = spectral_norm(nn.Embedding(num_classes, channels[-1]))
        self.covariates = spectral_norm(nn.Linear(num_covariates, channels[-1], bias=False)) if num_covariates else None

    def forward(self, x: torch.Tensor, labels: torch.Tensor, covariates: torch.Tensor) -> torch.Tensor:
        h = self.features(x).flatten(2).sum(dim=2)
        projection = self.classes(labels)
        if self.covariates is not None:
            projection = projection + self.covariates(covariates)
        return self.linear(h).squeeze(1) + (projection * h).sum(dim=1)


def diff_augment(x: torch.Tensor, generator: torch.Generator, *, translation: float = 0.125, cutout: float = 0.5) -> torch.Tensor:
    """DiffAugment (Zhao et al. 2020) "color, translation, cutout" for 2D/3D, random numbers from `generator`.

    brightness: x + U(-0.5, 0.5); contrast: (x - mean) * U(0.5, 1.5) + mean (the saturation term of RGB
    images is omitted: medical images are mostly single-channel); translation: integer shift of up to
    `translation` of the size with zero padding; cutout: a zeroed box of `cutout` of the size per axis.
    """
    batch, dims = x.shape[0], x.ndim - 2
    sizes = x.shape[2:]

    def uniform(*shape: int) -> torch.Tensor:
        return torch.rand(shape, generator=generator).to(x.device)

    view = (batch,) + (1,) * (x.ndim - 1)
    x = x + (uniform(batch) - 0.5).view(view)
    mean = x.mean(dim=tuple(range(1, x.ndim)), keepdim=True)
    x = (x - mean) * (uniform(batch) + 0.5).view(view) + mean
    shifts = [torch.round((uniform(batch) * 2 - 1) * translation * s).long() for s in sizes]
    x = _shift(x, shifts)
    grids = torch.meshgrid(*[torch.arange(s, device=x.device) for s in sizes], indexing="ij")
    inside = torch.ones((batch, *sizes), dtype=torch.bool, device=x.device)
    for axis, size in enumerate(sizes):
        width = int(cutout * size)
        start = ((uniform(batch) * (size + 1)).long() - width // 2).view(batch, *[1] * dims)
        inside &= (grids[axis] >= start) & (grids[axis] < start + width)
    return x * (~inside).unsqueeze(1).to(x.dtype)


def _shift(x: torch.Tensor, shifts: list[torch.Tensor]) -> torch.Tensor:
    """Shift each image by integer `shifts` per axis, filling with zeros (a differentiable gather)."""
    dims = x.ndim - 2
    out = x
    for axis, shift in enumerate(shifts):
        size = x.shape[2 + axis]
        index = torch.arange(size, device=x.device).view(1, size) - shift.view(-1, 1)  # (B, size)
        valid = (index >= 0) & (index < size)
        index = index.clamp(0, size - 1)
        shape = [x.shape[0], 1] + [1] * dims
        shape[2 + axis] = size
        expand = list(out.shape)
        gathered = torch.gather(out, 2 + axis, index.view(shape).expand(expand))
        out = gathered * valid.view(shape).to(x.dtype)
    return out


class GAN(LatentGenerator):
    """Conditional GAN: hinge loss, spectral norm, projection discriminator, DiffAugment, generator EMA.

    The shared options (`GeneratorOptions`; ``learning_rate`` is the generator's, Adam with betas (0, 0.99)) and
    `latent_dim` (`LatentGenerator`) come as keyword arguments. Its own:

    Args:
        augment: apply DiffAugment to real and generated images before the discriminator.
        discriminator_learning_rate: the discriminator's Adam step size (a larger one than G's is the two time-scale
            update rule, Heusel et al. 2017; equal rates keep the class conditioning from collapsing early).
    """

    family = "gan"
    default_steps = 5000
    ema_networks = ("generator",)

    def __init__(self, *, augment: bool = True, discriminator_learning_rate: float = 2e-4, **options: Any) -> None:
        self.augment = augment
        self.discriminator_learning_rate = discriminator_learning_rate
        super().__init__(**options)

    def _argument_checks(self) -> list[tuple[bool, str, Any]]:
        return super()._argument_checks() + [
            (is_number(self.discriminator_learning_rate) and self.discriminator_learning_rate > 0,
             "discriminator_learning_rate > 0", self.discriminator_learning_rate),
            (isinstance(self.augment, bool), "augment True or False", self.augment),
        ]

    def _default_architecture(self, size: int) -> dict[str, Any]:
        return {"channels": self.channels or default_channels(size, self.spatial_dims)}

    def _build_networks(self) -> dict[str, nn.Module]:
        channels = self.architecture_["channels"]
        k = len(self.covariates)
        return {
            "generator": GANGenerator(self.spatial_dims, self.net_shape_[0], self.net_shape_[1:], channels,
                                      self.latent_dim, self.num_classes, k),
            "discriminator": ProjectionDiscriminator(self.spatial_dims, self.net_shape_[0], channels, self.num_classes, k),
        }

    def make_optimizers(self, networks: Mapping[str, nn.Module]) -> dict[str, Optimizer]:
        rates = {"generator": self.learning_rate, "discriminator": self.discriminator_learning_rate}
        return {name: Adam(networks[name].parameters(), lr=rate, betas=(0.0, 0.99)) for name, rate in rates.items()}

    def training_step(self, batch: Batch, *, networks: Mapping[str, nn.Module], optimizers: Mapping[str, Optimizer],
                      step: int, generator: torch.Generator) -> dict[str, float]:
        real, labels, covariates = batch
        G, D = networks["generator"], networks["discriminator"]

        def augmented(x: torch.Tensor) -> torch.Tensor:
            return diff_augment(x, generator) if self.augment else x

        z = torch.randn((len(real), self.latent_dim), generator=generator).to(real.device)
        fake = G(z, labels, covariates)
        d_loss = (F.relu(1.0 - D(augmented(real), labels, covariates)).mean()
                  + F.relu(1.0 + D(augmented(fake.detach()), labels, covariates)).mean())
        optimizers["discriminator"].zero_grad(set_to_none=True)
        d_loss.backward()
        optimizers["discriminator"].step()

        D.requires_grad_(False)
        g_loss = -D(augmented(fake), labels, covariates).mean()
        optimizers["generator"].zero_grad(set_to_none=True)
        g_loss.backward()
        optimizers["generator"].step()
        D.requires_grad_(True)
        return {"d_loss": d_loss.item(), "g_loss": g_loss.item()}

    def _generate(self, labels: torch.Tensor, covariates: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        z = torch.randn((len(labels), self.latent_dim), generator=generator)
        return self.network("generator")(z.to(self.device_), labels.to(self.device_), covariates.to(self.device_))
