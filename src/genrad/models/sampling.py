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

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from monai.networks.schedulers import DDIMScheduler, RFlowScheduler
from torch import nn

Network = Callable[..., torch.Tensor]


Timestep = float | torch.Tensor
"""One timestep for every image (sampling) or one per image, shape ``(B,)`` (training a distilled student)."""


def predict(network: Network, x: torch.Tensor, t: Timestep, labels: torch.Tensor, covariates: torch.Tensor) -> torch.Tensor:
    """One network call at timestep `t` for every image of `x`."""
    steps = t if isinstance(t, torch.Tensor) else torch.full((len(x),), float(t), device=x.device)
    return network(x, steps, class_labels=(labels, covariates))


@dataclass(frozen=True)
class NoGuidance:
    """The conditional prediction alone."""

    def __call__(self, unet: Network, x: torch.Tensor, t: Timestep, labels: torch.Tensor, covariates: torch.Tensor) -> torch.Tensor:
        return predict(unet, x, t, labels, covariates)


@dataclass(frozen=True)
class ClassifierFree:
    """``u + scale (c - u)``, ``u`` the prediction for the null class `null_label` with zero covariates."""

    scale: float
    null_label: int

    def __call__(self, unet: Network, x: torch.Tensor, t: Timestep, labels: torch.Tensor, covariates: torch.Tensor) -> torch.Tensor:
        null = torch.full_like(labels, self.null_label)
        both_t = torch.cat([t, t]) if isinstance(t, torch.Tensor) else t  # one timestep per image: both halves
        both = predict(unet, torch.cat([x, x]), both_t, torch.cat([labels, null]), torch.cat([covariates, torch.zeros_like(covariates)]))
        conditional, unconditional = both.chunk(2)
        return unconditional + self.scale * (conditional - unconditional)


@dataclass(frozen=True)
class Autoguidance:
    """``g + scale (c - g)``, ``g`` the conditional prediction of the weaker `guide` network."""

    guide: nn.Module
    scale: float

    def __call__(self, unet: Network, x: torch.Tensor, t: Timestep, labels: torch.Tensor, covariates: torch.Tensor) -> torch.Tensor:
        weak = predict(self.guide, x, t, labels, covariates)
        return weak + self.scale * (predict(unet, x, t, labels, covariates) - weak)


@dataclass(frozen=True)
class Interval:
    """`inner` guidance at ``low <= t / num_train_timesteps <= high``, the conditional prediction elsewhere (per image
    when `t` is one timestep per image)."""

    inner: Any
    low: float
    high: float
    num_train_timesteps: int

    def __call__(self, unet: Network, x: torch.Tensor, t: Timestep, labels: torch.Tensor, covariates: torch.Tensor) -> torch.Tensor:
        level = torch.as_tensor(t, dtype=torch.float64) / self.num_train_timesteps
        inside = (self.low <= level) & (level <= self.high)
        if bool(inside.all()):
            return self.inner(unet, x, t, labels, covariates)
        plain = predict(unet, x, t, labels, covariates)
        if not bool(inside.any()):
            return plain
        guided = self.inner(unet, x, t, labels, covariates)
        return torch.where(inside.to(x.device).view(-1, *[1] * (x.ndim - 1)), guided, plain)


class DiffusionSampler:
    """Denoise pure noise into model-space images with one scheduler and one guidance strategy.

    ``scheduler="ddim"``: MONAI's ``DDIMScheduler`` (Song et al. 2021, eq. 12; `eta` > 0 adds the noise of eq. 16,
    drawn from a device generator seeded from the caller's) with `schedule` (beta schedule and prediction type);
    ``"dpm++2m"``: `DPMSolverPlusPlus2M` on the same schedule; ``"rflow"``: ``RFlowScheduler``'s Euler steps of a
    rectified flow (Liu et al. 2023). The scheduler is built once.
    """

    def __init__(self, scheduler: str, *, num_train_timesteps: int, num_inference_steps: int, guidance: Any,
                 schedule: Mapping[str, Any] | None = None, eta: float = 0.0, device: torch.device | str = "cpu") -> None:
        self.kind = scheduler
        self.guidance = guidance
        self.eta = eta
        if scheduler == "rflow":
            self.scheduler = RFlowScheduler(num_train_timesteps, use_discrete_timesteps=False)
        elif scheduler == "dpm++2m":
            self.scheduler = DPMSolverPlusPlus2M(num_train_timesteps, **dict(schedule or {}))
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
        if self.kind == "dpm++2m":
            self.scheduler.reset()
        for t, next_t in zip(self.timesteps, self.timesteps[1:] + [0.0], strict=True):
            prediction = self.guidance(unet, x, t, labels, covariates)  # 1. predict (and guide)
            x = self._step(prediction, t, next_t, x, step_noise)  # 2. the previous, less noisy x
        return x

    def _step(self, prediction: torch.Tensor, t: float, next_t: float, x: torch.Tensor,
              step_noise: torch.Generator | None) -> torch.Tensor:
        if self.kind == "rflow":
            return self.scheduler.step(prediction, t, x, next_t)[0]
        if self.kind == "dpm++2m":
            return self.scheduler.step(prediction, int(t), x, int(next_t))
        return self.scheduler.step(prediction, int(t), x, eta=self.eta, generator=step_noise)[0]


class DPMSolverPlusPlus2M:
    """The multistep second-order DPM-Solver++ in data prediction (Lu et al. 2022, "DPM-Solver++: fast solver for
    guided sampling of diffusion probabilistic models", Algorithm 2), on a DDPM noise schedule of MONAI's.

    With ``alpha_t = sqrt(abar_t)``, ``sigma_t = sqrt(1 - abar_t)``, ``lambda_t = log(alpha_t / sigma_t)`` and
    ``h = lambda_s - lambda_t`` for a step from t to s < t:
    ``x_s = (sigma_s / sigma_t) x_t - alpha_s (exp(-h) - 1) D``, with ``D`` the denoised estimate ``x0(t)`` on the
    first and last steps and ``(1 + 1 / 2r) x0(t) - (1 / 2r) x0(t_prev)``, ``r = h_prev / h``, in between. The
    denoised estimates are clipped to [-1, 1] as the DDIM sampler clips them. The first step starts at the schedule's
    noisiest level T - 1 and the last lands on t = 0.
    """

    def __init__(self, num_train_timesteps: int, *, schedule: str = "linear_beta", beta_start: float = 1e-4,
                 beta_end: float = 2e-2, prediction_type: str = "epsilon") -> None:
        betas = DDIMScheduler(num_train_timesteps, schedule=schedule, beta_start=beta_start, beta_end=beta_end).betas
        self.alphas_cumprod = torch.cumprod(1.0 - betas.double(), dim=0)
        self.num_train_timesteps = num_train_timesteps
        self.prediction_type = prediction_type
        self.reset()

    def set_timesteps(self, num_inference_steps: int, device: torch.device | str = "cpu") -> None:
        """Timesteps evenly spaced in log-SNR from T - 1 to 0 (Lu et al. 2022, sec. 3.3), each the nearest integer one,
        moved where two coincide so that they strictly decrease from T - 1 (log-SNR is steep at both ends)."""
        log_snr = torch.log(self.alphas_cumprod / (1.0 - self.alphas_cumprod))
        targets = torch.linspace(float(log_snr[-1]), float(log_snr[0]), num_inference_steps + 1, dtype=torch.float64)
        grid = (log_snr.unsqueeze(0) - targets.unsqueeze(1)).abs().argmin(dim=1).tolist()
        for i in range(num_inference_steps - 1, -1, -1):
            grid[i] = min(max(grid[i], grid[i + 1] + 1), self.num_train_timesteps - 1 - i)
        self.timesteps = torch.tensor(grid[:-1], device=device)

    def reset(self) -> None:
        """Forget the previous step's denoised estimate (call before each new batch)."""
        self._previous: tuple[torch.Tensor, float] | None = None

    def _levels(self, t: int) -> tuple[float, float, float]:
        abar = float(self.alphas_cumprod[t])
        alpha, sigma = abar**0.5, (1.0 - abar) ** 0.5
        return alpha, sigma, math.log(alpha / sigma)

    def denoised(self, prediction: torch.Tensor, t: int, x: torch.Tensor) -> torch.Tensor:
        """``x0`` from the network's prediction at timestep `t`: v (Salimans & Ho 2022), epsilon or the sample."""
        alpha, sigma, _ = self._levels(t)
        if self.prediction_type == "v_prediction":
            x0 = alpha * x - sigma * prediction
        elif self.prediction_type == "epsilon":
            x0 = (x - sigma * prediction) / alpha
        else:
            x0 = prediction
        return x0.clamp(-1.0, 1.0)

    def step(self, prediction: torch.Tensor, t: int, x: torch.Tensor, next_t: int) -> torch.Tensor:
        """The sample at `next_t` < `t`."""
        x0 = self.denoised(prediction, t, x)
        _, sigma_t, lambda_t = self._levels(t)
        alpha_s, sigma_s, lambda_s = self._levels(next_t)
        h = lambda_s - lambda_t
        estimate = x0
        if self._previous is not None and next_t > 0:
            previous_x0, previous_h = self._previous
            half_inverse_ratio = 0.5 * h / previous_h
            estimate = (1.0 + half_inverse_ratio) * x0 - half_inverse_ratio * previous_x0
        self._previous = (x0, h)
        return (sigma_s / sigma_t) * x - alpha_s * math.expm1(-h) * estimate
