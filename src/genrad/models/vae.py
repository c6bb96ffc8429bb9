"""Conditional variational auto-encoder (Kingma & Welling 2014; Sohn et al. 2015, CVAE).

Encoder q(z | x, c) and decoder p(x | z, c) are MONAI conv blocks (conv -> GroupNorm -> SiLU); the
condition c = [one_hot(label), standardised covariates] is broadcast as extra input channels of the
encoder and concatenated to z for the decoder. The decoder is a Gaussian with fixed standard
deviation `decoder_sigma` (in the model's [-1, 1] intensity units), so the negative ELBO per image is::

    loss_i = sum_j (x_ij - x^_ij)^2 / (2 sigma^2) + beta(t) * KL(q(z | x_i, c_i) || N(0, I))

with KL annealing ``beta(t) = min(1, t / kl_warmup_steps)`` (Bowman et al. 2016). Every term is a
per-image loss averaged over the batch and every layer is Conv/Linear/GroupNorm (no BatchNorm), so
Opacus can compute per-sample gradients (DP-SGD; see `genrad.training.Trainer`).

Sampling is one decoder pass. With ``latent_prior="class_gaussian"`` (default), z is drawn from a
Gaussian fitted per class to the encoder's posteriors on the training images after training (ex-post
density estimation, Ghosh et al. 2020; its mean is linear in the covariates), which removes the
mismatch between the aggregate posterior and N(0, I) that makes short-trained VAEs produce blurry,
class-ambiguous samples. These per-class latent statistics are computed from the raw training data
without noise: use ``latent_prior="standard"`` (z ~ N(0, I)) for differentially private training.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import nn
from torch.optim import Adam, Optimizer

from genrad.errors import is_int, is_number
from genrad.models.base import Batch, LatentGenerator
from genrad.models.blocks import (
    broadcast,
    condition_vector,
    conv_block,
    default_channels,
    output_conv,
)

PRIORS = ("class_gaussian", "standard")


class VAENet(nn.Module):
    """Conditional VAE network; ``forward(x, labels, covariates, noise) -> (reconstruction, mu, logvar)``."""

    def __init__(self, spatial_dims: int, in_channels: int, spatial_shape: Sequence[int], channels: Sequence[int],
                 latent_dim: int, num_classes: int, num_covariates: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        conditions = num_classes + num_covariates
        levels = len(channels) - 1
        self.bottleneck = (channels[-1], *(s // 2**levels for s in spatial_shape))
        encoder = [conv_block(spatial_dims, in_channels + conditions, channels[0])]
        encoder += [conv_block(spatial_dims, channels[i], channels[i + 1], strides=2) for i in range(levels)]
        self.encoder = nn.Sequential(*encoder, nn.Flatten())
        flat = math.prod(self.bottleneck)
        self.to_latent = nn.Linear(flat, 2 * latent_dim)
        self.from_latent = nn.Linear(latent_dim + conditions, flat)
        decoder: list[nn.Module] = []
        for i in reversed(range(levels)):
            decoder += [nn.Upsample(scale_factor=2, mode="nearest"), conv_block(spatial_dims, channels[i + 1], channels[i])]
        self.decoder = nn.Sequential(*decoder, conv_block(spatial_dims, channels[0], channels[0]),
                                     output_conv(spatial_dims, channels[0], in_channels))

    def decode(self, z: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        h = self.from_latent(torch.cat([z, condition], dim=1))
        return self.decoder(nn.functional.silu(h).view(-1, *self.bottleneck))

    def forward(self, x: torch.Tensor, labels: torch.Tensor, covariates: torch.Tensor, noise: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        condition = condition_vector(labels, covariates, self.num_classes)
        h = self.encoder(torch.cat([x, broadcast(condition, x.shape[2:])], dim=1))
        mu, logvar = self.to_latent(h).chunk(2, dim=1)
        logvar = logvar.clamp(-10.0, 10.0)
        z = mu + torch.exp(0.5 * logvar) * noise
        return self.decode(z, condition), mu, logvar


class LatentPrior(nn.Module):
    """Per-class Gaussian over z whose mean is linear in the covariates: ``z | y, c ~ N(W[y] @ [1, c], S[y] S[y]^T)``.

    Buffers ``weight`` (K, 1 + P, L) and ``scale_tril`` (K, L, L); N(0, I) until fitted. With covariates the
    encoder's posterior means still carry covariate information (the encoder sees the image), so a prior
    that ignored them would decode every record's image from the same latent distribution and lose the
    covariate -> image link (a linear-Gaussian conditional density in latent space, cf. Ghosh et al. 2020).
    """

    def __init__(self, num_classes: int, latent_dim: int, num_covariates: int = 0) -> None:
        super().__init__()
        self.register_buffer("weight", torch.zeros(num_classes, 1 + num_covariates, latent_dim))
        self.register_buffer("scale_tril", torch.eye(latent_dim).repeat(num_classes, 1, 1))

    def sample(self, labels: torch.Tensor, covariates: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """``W[y] @ [1, c] + scale_tril[y] @ noise`` for standard-normal `noise` (B, L)."""
        design = torch.cat([covariates.new_ones((len(covariates), 1)), covariates], dim=1)
        mean = torch.einsum("bp,bpl->bl", design, self.weight[labels])
        return mean + (self.scale_tril[labels] @ noise.unsqueeze(-1)).squeeze(-1)

    @torch.no_grad()
    def fit(self, mu: torch.Tensor, logvar: torch.Tensor, labels: torch.Tensor, covariates: torch.Tensor) -> None:
        """Per class: ridge regression of the posterior means on [1, c]; covariance = residual + mean posterior variance."""
        design = torch.cat([covariates.new_ones((len(covariates), 1)), covariates], dim=1).double()
        for k in range(self.weight.shape[0]):
            rows = labels == k
            if int(rows.sum()) < design.shape[1] + 1:
                continue
            a, b = design[rows], mu[rows].double()
            ridge = 1e-3 * torch.eye(a.shape[1], dtype=a.dtype, device=a.device)
            ridge[0, 0] = 0.0  # do not shrink the intercept
            weight = torch.linalg.solve(a.T @ a + ridge, a.T @ b)
            residual = b - a @ weight
            covariance = residual.T @ residual / (len(b) - a.shape[1]) + torch.diag(logvar[rows].exp().mean(dim=0).double())
            covariance += 1e-4 * torch.eye(len(covariance), dtype=covariance.dtype, device=mu.device)
            self.weight[k] = weight.to(self.weight.dtype)
            self.scale_tril[k] = torch.linalg.cholesky(covariance).to(self.scale_tril.dtype)


class VAE(LatentGenerator):
    """Conditional VAE with KL annealing and a calibrated decoder; fast one-pass sampling.

    The shared options (`GeneratorOptions`) and `latent_dim` (`LatentGenerator`) come as keyword arguments. Its own:

    Args:
        decoder_sigma: standard deviation of the Gaussian decoder (smaller: sharper, less regular latent space).
        kl_warmup_steps: steps over which the KL weight rises linearly from 0 to 1.
        latent_prior: "class_gaussian" (z from per-class Gaussians fitted after training) or "standard" (N(0, I),
            what differentially private training needs).
        temperature: scale of the sampling noise of z (below 1 trades diversity for sharpness).
    """

    family = "vae"
    default_steps = 3000
    option_defaults: ClassVar[dict[str, Any]] = {"learning_rate": 1e-3, "ema_decay": 0.995}
    ema_networks = ("vae",)
    private_networks = ("vae",)
    private_settings: ClassVar[dict[str, Any]] = {"latent_prior": "standard"}
    """The class-Gaussian prior is fitted to the training images' latents outside DP-SGD."""

    def __init__(
        self,
        *,
        decoder_sigma: float = 0.1,
        kl_warmup_steps: int = 1000,
        latent_prior: str = "class_gaussian",
        temperature: float = 1.0,
        **options: Any,
    ) -> None:
        self.decoder_sigma = decoder_sigma
        self.kl_warmup_steps = kl_warmup_steps
        self.latent_prior = latent_prior
        self.temperature = temperature
        super().__init__(**options)

    def _argument_checks(self) -> list[tuple[bool, str, Any]]:
        return super()._argument_checks() + [
            (is_number(self.decoder_sigma) and self.decoder_sigma > 0, "decoder_sigma > 0", self.decoder_sigma),
            (is_int(self.kl_warmup_steps) and self.kl_warmup_steps >= 0, "kl_warmup_steps an int >= 0", self.kl_warmup_steps),
            (self.latent_prior in PRIORS, f"latent_prior one of {PRIORS}", self.latent_prior),
            (is_number(self.temperature) and self.temperature >= 0, "temperature >= 0", self.temperature),
        ]

    def _default_architecture(self, size: int) -> dict[str, Any]:
        return {"channels": self.channels or default_channels(size, self.spatial_dims)}

    def _build_networks(self) -> dict[str, nn.Module]:
        return {
            "vae": VAENet(self.spatial_dims, self.net_shape_[0], self.net_shape_[1:], self.architecture_["channels"],
                          self.latent_dim, self.num_classes, len(self.covariates)),
            "prior": LatentPrior(self.num_classes, self.latent_dim, len(self.covariates)),
        }

    def make_optimizers(self, networks: Mapping[str, nn.Module]) -> dict[str, Optimizer]:
        return {"vae": Adam(networks["vae"].parameters(), lr=self.learning_rate)}

    def training_step(self, batch: Batch, *, networks: Mapping[str, nn.Module], optimizers: Mapping[str, Optimizer],
                      step: int, generator: torch.Generator) -> dict[str, float]:
        x, labels, covariates = batch
        noise = torch.randn((len(x), self.latent_dim), generator=generator).to(x.device)
        reconstruction, mu, logvar = networks["vae"](x, labels, covariates, noise)
        squared = (reconstruction - x).pow(2).flatten(1)
        nll = squared.sum(dim=1) / (2 * self.decoder_sigma**2)
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)
        beta = min(1.0, step / self.kl_warmup_steps) if self.kl_warmup_steps else 1.0
        loss = (nll + beta * kl).mean()
        optimizers["vae"].zero_grad(set_to_none=True)
        loss.backward()
        optimizers["vae"].step()
        return {"loss": loss.item(), "mse": squared.mean().item(), "kl": kl.mean().item()}

    @torch.no_grad()
    def refresh(self, dataset: torch.utils.data.TensorDataset) -> None:
        """Fit the per-class latent Gaussians with the sampling encoder (``latent_prior="class_gaussian"``)."""
        if self.latent_prior != "class_gaussian":
            return
        net = self.network("vae").eval()
        moments = []
        for start in range(0, len(dataset), 256):
            x, labels, covariates = (t.to(self.device_) for t in dataset[start : start + 256])
            _, mu, logvar = net(x, labels, covariates, torch.zeros((len(x), self.latent_dim), device=self.device_))
            moments.append((mu, logvar))
        self.networks_["prior"].fit(torch.cat([m for m, _ in moments]), torch.cat([v for _, v in moments]),
                                    dataset.tensors[1].to(self.device_), dataset.tensors[2].to(self.device_))

    def _generate(self, labels: torch.Tensor, covariates: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        noise = self.temperature * torch.randn((len(labels), self.latent_dim), generator=generator)
        labels, covariates = labels.to(self.device_), covariates.to(self.device_)
        z = self.networks_["prior"].sample(labels, covariates, noise.to(self.device_))
        condition = condition_vector(labels, covariates, self.num_classes)
        return self.network("vae").decode(z, condition)
