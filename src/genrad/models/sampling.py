"""The diffusion sampler in sight: a `DiffusionSampler` owns its MONAI scheduler and a guidance strategy, and its
loop reads "predict, guide, step", as diffusers' ``pipeline_ddpm.py`` does.

Guidance strategies turn the network's predictions into the one the scheduler steps with:

- `NoGuidance`: the conditional prediction ``c = f(x_t, t, y, covariates)``;
- `ClassifierFree`: ``u + w (c - u)`` with ``u`` the prediction for the null condition (Ho & Salimans 2022), one
  batched call for both;
- `Autoguidance`: the same with ``u`` the *conditional* prediction of a weaker model, an earlier snapshot of the
  same run (Karras et al. 2024, "Guiding a diffusion model with a bad version of itself", eq. 2);
- `Interval`: another strategy only at noise levels ``t / T`` in ``[low, high]``, the conditional prediction
  elsewhere (Kynkaanniemi et al. 2024, "Applying guidance in a limited interval improves sample and distribution
  quality in diffusion models").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from monai.networks.schedulers import DDIMScheduler, RFlowScheduler
from torch import nn

Network = Callable[..., torch.Tensor]


def predict(network: Network, x: torch.Tensor, t: float, labels: torch.Tensor, covariates: torch.Tensor) -> torch.Tensor:
    """One network call at timestep `t` for every image of `x`."""
    return network(x, torch.full((len(x),), float(t), device=x.device), class_labels=(labels, covariates))


@dataclass(frozen=True)
class NoGuidance:
    """The conditional prediction alone."""

    def __call__(self, unet: Network, x: torch.Tensor, t: float, labels: torch.Tensor, covariates: torch.Tensor) -> torch.Tensor:
        return predict(unet, x, t, labels, covariates)


@dataclass(frozen=True)
class ClassifierFree:
    """``u + scale (c - u)``, ``u`` the prediction for the null class `null_label` with zero covariates."""

    scale: float
    null_label: int

    def __call__(self, unet: Network, x: torch.Tensor, t: float, labels: torch.Tensor, covariates: torch.Tensor) -> torch.Tensor:
        null = torch.full_like(labels, self.null_label)
        both = predict(unet, torch.cat([x, x]), t, torch.cat([labels, null]), torch.cat([covariates, torch.zeros_like(covariates)]))
        conditional, unconditional = both.chunk(2)
        return unconditional + self.scale * (conditional - unconditional)


@dataclass(frozen=True)
class Autoguidance:
    """``g + scale (c - g)``, ``g`` the conditional prediction of the weaker `guide` network."""

    guide: nn.Module
    scale: float

    def __call__(self, unet: Network, x: torch.Tensor, t: float, labels: torch.Tensor, covariates: torch.Tensor) -> torch.Tensor:
        weak = predict(self.guide, x, t, labels, covariates)
        return weak + self.scale * (predict(unet, x, t, labels, covariates) - weak)


@dataclass(frozen=True)
class Interval:
    """`inner` guidance at ``low <= t / num_train_timesteps <= high``, the conditional prediction elsewhere."""

    inner: Any
    low: float
    high: float
    num_train_timesteps: int

    def __call__(self, unet: Network, x: torch.Tensor, t: float, labels: torch.Tensor, covariates: torch.Tensor) -> torch.Tensor:
        if self.low <= float(t) / self.num_train_timesteps <= self.high:
            return self.inner(unet, x, t, labels, covariates)
        return predict(unet, x, t, labels, covariates)


class DiffusionSampler:
    """Denoise pure noise into model-space images with one scheduler and one guidance strategy.

    ``scheduler="ddim"``: MONAI's ``DDIMScheduler`` (Song et al. 2021, eq. 12; `eta` > 0 adds the noise of eq. 16,
    drawn from a device generator seeded from the caller's) with `schedule` (beta schedule and prediction type);
    ``"rflow"``: ``RFlowScheduler``'s Euler steps of a rectified flow (Liu et al. 2023). The scheduler is built once.
    """

    def __init__(self, scheduler: str, *, num_train_timesteps: int, num_inference_steps: int, guidance: Any,
                 schedule: Mapping[str, Any] | None = None, eta: float = 0.0, device: torch.device | str = "cpu") -> None:
        self.kind = scheduler
        self.guidance = guidance
        self.eta = eta
        if scheduler == "rflow":
            self.scheduler = RFlowScheduler(num_train_timesteps, use_discrete_timesteps=False)
        else:
            self.scheduler = DDIMScheduler(num_train_timesteps, clip_sample=True, **dict(schedule or {}))
        self.scheduler.set_timesteps(num_inference_steps, device=device)
        self.timesteps = [float(t) for t in self.scheduler.timesteps.tolist()]

    @torch.no_grad()
    def __call__(self, unet: Network, noise: torch.Tensor, labels: torch.Tensor, covariates: torch.Tensor,
                 generator: torch.Generator) -> torch.Tensor:
        step_noise = None
        if self.eta > 0:
            step_noise = torch.Generator(noise.device).manual_seed(int(torch.randint(2**62, (1,), generator=generator)))
        x = noise
        for t, next_t in zip(self.timesteps, self.timesteps[1:] + [0.0], strict=True):
            prediction = self.guidance(unet, x, t, labels, covariates)  # 1. predict (and guide)
            x = self._step(prediction, t, next_t, x, step_noise)  # 2. the previous, less noisy x
        return x

    def _step(self, prediction: torch.Tensor, t: float, next_t: float, x: torch.Tensor,
              step_noise: torch.Generator | None) -> torch.Tensor:
        if self.kind == "rflow":
            return self.scheduler.step(prediction, t, x, next_t)[0]
        return self.scheduler.step(prediction, int(t), x, eta=self.eta, generator=step_noise)[0]
