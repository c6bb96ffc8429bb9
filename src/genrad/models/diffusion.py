"""Class- and covariate-conditional diffusion on MONAI's ``DiffusionModelUNet``.

Conditioning: the UNet's class embedding (``num_class_embeds = num_classes + 1``, the last index being
the "no condition" token) is replaced by `ConditionEmbedding`, which adds a linear map of the
standardised covariates to the class embedding; the sum is added to the timestep embedding inside the
UNet. The condition is dropped (null class, zero covariates) with probability `condition_dropout`
during training, which enables classifier-free guidance at sampling time (Ho & Salimans 2022)::

    prediction = u + guidance_scale * (c - u),    u = f(x_t, t, null),  c = f(x_t, t, y, covariates)

only at noise levels ``t / T`` inside `guidance_interval` (elsewhere ``c``; Kynkäänniemi et al. 2024,
"Applying guidance in a limited interval improves sample and distribution quality in diffusion models").
With `guide_step`, the model guides itself with an earlier version of itself instead (autoguidance;
Karras et al. 2024, "Guiding a diffusion model with a bad version of itself", eq. 2): the EMA UNet as
it was at training step `guide_step` is kept, and ``u`` becomes its *conditional* prediction
``g(x_t, t, y, covariates)``. The guide costs no training time (it is a snapshot of the same run).

Two objectives / samplers (MONAI schedulers; the network is called directly because MONAI's
``DiffusionInferer`` does not pass class labels):

- ``"ddim"``: DDPM training (Ho et al. 2020) with v-prediction (Salimans & Ho 2022),
  ``v = sqrt(a_t) eps - sqrt(1 - a_t) x0`` and MONAI's ``DDPMScheduler.add_noise``; deterministic
  DDIM sampling (Song et al. 2021, eq. 12) in `num_inference_steps` steps with ``DDIMScheduler``;
  `sampling_eta` > 0 adds the paper's noise ``sigma_t(eta)`` (eq. 16; 1 = DDPM's ancestral sampler).
  With `min_snr_gamma`, each image's loss is weighted ``min(SNR_t, gamma) / (SNR_t + 1)``, with
  ``SNR_t = a_t / (1 - a_t)`` (Min-SNR-gamma for v-prediction; Hang et al. 2023, eq. 9 and sec. 3.4).
- ``"rflow"``: rectified flow (Liu et al. 2023), ``x_t = (1 - s) x0 + s eps`` with ``s = t / T`` drawn
  logit-normal (Esser et al. 2024), target ``x0 - eps``; Euler sampling with ``RFlowScheduler``.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from monai.networks.nets import DiffusionModelUNet
from monai.networks.schedulers import DDIMScheduler, DDPMScheduler, RFlowScheduler
from torch import nn
from torch.optim import AdamW, Optimizer

from genrad.errors import is_int, is_number
from genrad.models.base import Batch, Generator, are_ints, as_tuple
from genrad.models.blocks import ConditionEmbedding

SCHEDULERS = ("ddim", "rflow")
NOISE_SCHEDULES = {"linear": ("linear_beta", 1e-4, 0.02), "scaled_linear": ("scaled_linear_beta", 0.0015, 0.0195)}
"""MONAI beta schedules: (name, beta_start, beta_end). "linear" is DDPM's pixel-space schedule (Ho et al.
2020); "scaled_linear" is latent diffusion's, whose smallest noise level (sqrt(0.0015) = 0.039 in [-1, 1]
units) is as large as real speckle's finest-scale amplitude."""


def diffusion_channels(size: int, spatial_dims: int) -> tuple[int, ...]:
    """UNet channels per level: (32, 64, 64) up to 32 px, one more level per doubling, wider in 2D above 64 px."""
    if spatial_dims == 3:
        return (32, 64, 64) if size <= 32 else (32, 64, 64, 128)
    if size <= 32:
        return (32, 64, 64)
    if size <= 64:
        return (32, 64, 128, 128)
    return (32, 64, 128, 128, 256)


class Diffusion(Generator):
    """Conditional diffusion model with classifier-free guidance and a few-step sampler.

    Args:
        num_classes, spatial_dims, covariates, image_size: see `Generator`.
        channels: UNet channels per level (None: `diffusion_channels`); attention on the coarsest level.
        num_res_blocks: residual blocks per level.
        scheduler: "ddim" (DDPM training, v-prediction, DDIM sampling) or "rflow" (rectified flow).
        num_train_timesteps: T of the noise schedule.
        noise_schedule: "ddim" only: "linear" (betas 1e-4 to 0.02) or "scaled_linear" (0.0015 to 0.0195), see
            `NOISE_SCHEDULES`. On BreastMNIST, with the real set first, "linear" scored FRD 4.08-4.18 (3 sample
            sets, 2 models) against 4.35 for "scaled_linear" (docs/benchmarks.md).
        min_snr_gamma: "ddim" only: Min-SNR-gamma loss weighting (None: the plain v-prediction loss). On BreastMNIST
            (15 CPU-minutes, gamma 5) it moved FRD from 5.79 to 5.47 with the generated set first but from 4.16 to
            4.70 with the real set first (docs/benchmarks.md), so it is off by default.
        num_inference_steps: sampling steps (50 by default: on BreastMNIST one model scored FRD 8.22 with 25 DDIM
            steps and 6.46 with 50; 100 gained little more; docs/benchmarks.md).
        sampling_eta: "ddim" only: DDIM's eta (0: deterministic; 1: as stochastic as DDPM). On BreastMNIST 1 scored
            far worse than 0 (FRD 5.89 / 4.90 against 4.27 / 4.18; docs/benchmarks.md).
        guidance_scale: classifier-free guidance weight (1 = conditional model only, no guidance). On BreastMNIST
            with ``floor_gap=0.3``, 5 scored better FRD than 1.5, 3 and 7 (docs/benchmarks.md).
        guidance_interval: ``(low, high)`` fractions of the T timesteps where guidance applies ((0, 1): all). On
            BreastMNIST, guidance 5 at t/T >= 0.4 only scored like guidance everywhere (FRD 4.20 / 4.21); at
            t/T <= 0.4 only it lost most of the gain (4.85; docs/benchmarks.md).
        guide_step: autoguidance: keep the EMA UNet of this training step as the guide (None: classifier-free
            guidance). A model trained for `guide_step` steps or fewer has no guide and falls back to
            classifier-free guidance (with a warning). On BreastMNIST (1394 steps) the step-350 guide with
            ``guidance_scale=2`` scored FRD 4.17 / 4.61 (two draws; generated set first) and 4.09 / 3.98 (real
            set first) against 4.21 / 4.37 and 4.24 / 4.10 for classifier-free guidance 5; a benchmark-script run
            with it: 4.22 / 4.59 and 4.16 / 4.00 (docs/benchmarks.md). The weight that fits falls as training
            moves the model away from its guide (BreastMNIST: 2 at ~1350 steps, 1.75 at ~1850, 1.25-1.5 at ~3100
            with the step-350 guide; 1.75 again with the guide at step 590), so keep `guide_step` at a similar
            share of the run when the budget buys more steps.
        condition_dropout: probability of training on the null condition.
        batch_size, learning_rate, ema_decay: AdamW and EMA of the UNet (used for sampling).
        precision: "fp32" or "bf16" (mixed-precision training steps; see `genrad.models.base`).
        intensity_gamma: the networks model ``x**(1 / intensity_gamma)`` (2: square-root domain; see `genrad.models.base`).
        black_level: the data's display floor (pixels at or below it are clipped regions), mapped to -1.
        floor_gap: model-space gap between the floor and the lowest unclipped value (see `genrad.models.base`).
        floor_ramp: clipped pixels descend from the gap edge to -1 over this many pixels (see `genrad.models.base`).
    """

    family = "diffusion"
    default_steps = 5000
    earlier_defaults = {"noise_schedule": "scaled_linear"}
    ema_networks = ("unet",)
    sampling_settings = ("num_inference_steps", "sampling_eta", "guidance_scale", "guidance_interval")

    def __init__(
        self,
        *,
        num_classes: int,
        spatial_dims: int = 2,
        covariates: Sequence[str] = (),
        image_size: int | None = None,
        channels: Sequence[int] | None = None,
        num_res_blocks: int = 1,
        scheduler: str = "ddim",
        num_train_timesteps: int = 1000,
        noise_schedule: str = "linear",
        min_snr_gamma: float | None = None,
        num_inference_steps: int = 50,
        sampling_eta: float = 0.0,
        guidance_scale: float = 1.5,
        guidance_interval: Sequence[float] = (0.0, 1.0),
        guide_step: int | None = None,
        condition_dropout: float = 0.1,
        batch_size: int = 32,
        learning_rate: float = 5e-4,
        ema_decay: float | None = 0.999,
        precision: str = "fp32",
        intensity_gamma: float = 1.0,
        black_level: float = 0.0,
        floor_gap: float = 0.0,
        floor_ramp: float = 0.0,
    ) -> None:
        self.channels = None if channels is None else as_tuple(channels)
        self.num_res_blocks = num_res_blocks
        self.scheduler = scheduler
        self.num_train_timesteps = num_train_timesteps
        self.noise_schedule = noise_schedule
        self.min_snr_gamma = min_snr_gamma
        self.num_inference_steps = num_inference_steps
        self.sampling_eta = sampling_eta
        self.guidance_scale = guidance_scale
        self.guidance_interval = as_tuple(guidance_interval)
        self.guide_step = guide_step
        self.condition_dropout = condition_dropout
        super().__init__(num_classes=num_classes, spatial_dims=spatial_dims, covariates=covariates, image_size=image_size,
                         batch_size=batch_size, learning_rate=learning_rate, ema_decay=ema_decay,
                         precision=precision, intensity_gamma=intensity_gamma,
                         black_level=black_level, floor_gap=floor_gap, floor_ramp=floor_ramp)

    def _argument_checks(self) -> list[tuple[bool, str, Any]]:
        return super()._argument_checks() + [
            (self.channels is None or are_ints(self.channels, 1), "channels None or at least 2 positive ints", self.channels),
            (is_int(self.num_res_blocks) and self.num_res_blocks >= 1, "num_res_blocks an int >= 1", self.num_res_blocks),
            (self.scheduler in SCHEDULERS, f"scheduler one of {SCHEDULERS}", self.scheduler),
            (is_int(self.num_train_timesteps) and self.num_train_timesteps >= 2, "num_train_timesteps an int >= 2",
             self.num_train_timesteps),
            (self.noise_schedule in tuple(NOISE_SCHEDULES), f"noise_schedule one of {tuple(NOISE_SCHEDULES)}", self.noise_schedule),
            (self.min_snr_gamma is None or (self.scheduler == "ddim" and is_number(self.min_snr_gamma) and self.min_snr_gamma > 0),
             'min_snr_gamma None, or > 0 with scheduler "ddim"', self.min_snr_gamma),
            (is_int(self.num_inference_steps) and is_int(self.num_train_timesteps)
             and 1 <= self.num_inference_steps <= self.num_train_timesteps,
             f"1 <= num_inference_steps <= num_train_timesteps ({self.num_train_timesteps})", self.num_inference_steps),
            (is_number(self.sampling_eta) and (self.sampling_eta == 0.0 or (self.scheduler == "ddim" and 0.0 < self.sampling_eta <= 1.0)),
             'sampling_eta 0, or in (0, 1] with scheduler "ddim"', self.sampling_eta),
            (is_number(self.guidance_scale) and self.guidance_scale >= 0, "guidance_scale >= 0", self.guidance_scale),
            (isinstance(self.guidance_interval, tuple) and len(self.guidance_interval) == 2
             and all(is_number(v) for v in self.guidance_interval)
             and 0.0 <= self.guidance_interval[0] < self.guidance_interval[1] <= 1.0,
             "guidance_interval (low, high) with 0 <= low < high <= 1", self.guidance_interval),
            (self.guide_step is None or (is_int(self.guide_step) and self.guide_step >= 1),
             "guide_step None or an int >= 1", self.guide_step),
            (is_number(self.condition_dropout) and 0.0 <= self.condition_dropout < 1.0, "condition_dropout in [0, 1)", self.condition_dropout),
        ]

    def _default_architecture(self, size: int) -> dict[str, Any]:
        return {"channels": self.channels or diffusion_channels(size, self.spatial_dims)}

    def _build_networks(self) -> dict[str, nn.Module]:
        channels = self.architecture_["channels"]
        groups = next(g for g in (32, 16, 8, 4, 2, 1) if all(c % g == 0 for c in channels))
        unet = DiffusionModelUNet(
            spatial_dims=self.spatial_dims,
            in_channels=self.net_shape_[0],
            out_channels=self.net_shape_[0],
            channels=channels,
            attention_levels=(False,) * (len(channels) - 1) + (True,),
            num_res_blocks=self.num_res_blocks,
            num_head_channels=channels[-1],
            norm_num_groups=groups,
            num_class_embeds=self.num_classes + 1,
        )
        unet.class_embedding = ConditionEmbedding(self.num_classes + 1, len(self.covariates), 4 * channels[0])
        return {"unet": unet}

    def _build(self, seed: int) -> None:
        super()._build(seed)
        self.guide_ = None if self.guide_step is None else copy.deepcopy(self.network("unet")).requires_grad_(False).eval()

    def snapshot_guide(self) -> nn.Module | None:
        """The autoguidance guide, or None (no `guide_step`, or training has not gone past it)."""
        return self.guide_ if self.guide_step is not None and self.step_ > self.guide_step else None

    def _weight_modules(self) -> dict[str, nn.Module]:
        """`Generator._weight_modules`, plus the autoguidance snapshot as ``guide.unet`` with `guide_step`."""
        modules = super()._weight_modules()
        if self.guide_ is not None:
            modules["guide.unet"] = self.guide_
        return modules

    def make_optimizers(self, networks: Mapping[str, nn.Module]) -> dict[str, Optimizer]:
        return {"unet": AdamW(networks["unet"].parameters(), lr=self.learning_rate, weight_decay=0.0)}

    def _schedule_arguments(self) -> dict[str, Any]:
        """The beta schedule and v-prediction, shared by the training (DDPM) and sampling (DDIM) schedulers."""
        schedule, beta_start, beta_end = NOISE_SCHEDULES[self.noise_schedule]
        return {"schedule": schedule, "beta_start": beta_start, "beta_end": beta_end, "prediction_type": "v_prediction"}

    def _noise_scheduler(self) -> DDPMScheduler:
        return DDPMScheduler(self.num_train_timesteps, **self._schedule_arguments())

    def training_step(self, batch: Batch, *, networks: Mapping[str, nn.Module], optimizers: Mapping[str, Optimizer],
                      step: int, generator: torch.Generator) -> dict[str, float]:
        if self.guide_ is not None and step == self.guide_step:
            self.guide_.load_state_dict(self.network("unet").state_dict())
        x0, labels, covariates = batch
        n, device = len(x0), x0.device
        noise = torch.randn(x0.shape, generator=generator).to(device)
        dropped = (torch.rand(n, generator=generator) < self.condition_dropout).to(device)
        labels = torch.where(dropped, torch.full_like(labels, self.num_classes), labels)
        covariates = covariates * (~dropped).unsqueeze(1).to(covariates.dtype)
        schedule = None
        if self.scheduler == "rflow":
            s = torch.sigmoid(torch.randn(n, generator=generator)).to(device)  # logit-normal
            timesteps = s * self.num_train_timesteps
            x_t = _expand(1.0 - s, x0) * x0 + _expand(s, x0) * noise
            target = x0 - noise
        else:
            schedule = self._noise_scheduler()
            timesteps = torch.randint(0, self.num_train_timesteps, (n,), generator=generator).to(device)
            x_t = schedule.add_noise(x0, noise, timesteps)
            target = schedule.get_velocity(x0, noise, timesteps)
        prediction = networks["unet"](x_t, timesteps, class_labels=(labels, covariates))
        loss = self._loss_weights(timesteps, schedule) @ (prediction - target).pow(2).flatten(1).mean(1) / n
        optimizers["unet"].zero_grad(set_to_none=True)
        loss.backward()
        optimizers["unet"].step()
        return {"loss": loss.item()}

    def _loss_weights(self, timesteps: torch.Tensor, schedule: DDPMScheduler | None) -> torch.Tensor:
        """Per-image loss weights: ones, or Min-SNR-gamma's ``min(SNR_t, gamma) / (SNR_t + 1)`` on the training
        step's `schedule` (always a DDPM schedule then: the argument checks refuse Min-SNR with "rflow")."""
        if self.min_snr_gamma is None or schedule is None:
            return torch.ones(len(timesteps), device=timesteps.device)
        alpha_bar = schedule.alphas_cumprod.to(timesteps.device)[timesteps.long()]
        snr = alpha_bar / (1.0 - alpha_bar)
        return snr.clamp(max=self.min_snr_gamma) / (snr + 1.0)

    def _guided(self, x: torch.Tensor, t: torch.Tensor | int | float, labels: torch.Tensor, covariates: torch.Tensor) -> torch.Tensor:
        """``u + w (c - u)``: ``u`` from the guide snapshot, or unconditional with one batched UNet call
        (just ``c`` when ``w == 1`` or t is outside the interval)."""
        unet = self.network("unet")
        n = len(x)
        low, high = self.guidance_interval
        timesteps = torch.full((n,), float(t), device=x.device)
        if self.guidance_scale == 1.0 or not low <= float(t) / self.num_train_timesteps <= high:
            return unet(x, timesteps, class_labels=(labels, covariates))
        guide = self.snapshot_guide()
        if guide is not None:
            weak = guide(x, timesteps, class_labels=(labels, covariates))
            return weak + self.guidance_scale * (unet(x, timesteps, class_labels=(labels, covariates)) - weak)
        null = torch.full_like(labels, self.num_classes)
        both = unet(torch.cat([x, x]), torch.cat([timesteps, timesteps]),
                    class_labels=(torch.cat([labels, null]), torch.cat([covariates, torch.zeros_like(covariates)])))
        conditional, unconditional = both.chunk(2)
        return unconditional + self.guidance_scale * (conditional - unconditional)

    def _generate(self, labels: torch.Tensor, covariates: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if self.guide_step is not None and self.snapshot_guide() is None:
            warnings.warn(f"Diffusion not trained past guide_step {self.guide_step}: sampling with classifier-free "
                          "guidance instead of autoguidance", stacklevel=3)  # one message: shown once per process
        device = self.device_
        x = torch.randn((len(labels), *self.net_shape_), generator=generator).to(device)
        labels, covariates = labels.to(device), covariates.to(device)
        if self.scheduler == "rflow":
            sampler = RFlowScheduler(self.num_train_timesteps, use_discrete_timesteps=False)
            sampler.set_timesteps(self.num_inference_steps, device=device)
            timesteps = sampler.timesteps.tolist()
            for t, next_t in zip(timesteps, timesteps[1:] + [0.0], strict=True):
                x, _ = sampler.step(self._guided(x, t, labels, covariates), t, x, next_t)
            return x
        sampler = DDIMScheduler(self.num_train_timesteps, clip_sample=True, **self._schedule_arguments())
        sampler.set_timesteps(self.num_inference_steps, device=device)
        step_noise = None  # DDIM's eq. 16 noise, drawn on the device from a seed taken from `generator`
        if self.sampling_eta > 0:
            step_noise = torch.Generator(device).manual_seed(int(torch.randint(2**62, (1,), generator=generator)))
        for t in sampler.timesteps.tolist():
            x, _ = sampler.step(self._guided(x, t, labels, covariates), int(t), x, eta=self.sampling_eta, generator=step_noise)
        return x


def _expand(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return values.view(-1, *[1] * (like.ndim - 1))
