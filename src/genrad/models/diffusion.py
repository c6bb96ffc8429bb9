"""Class- and covariate-conditional diffusion on MONAI's ``DiffusionModelUNet``.

Conditioning: the UNet's class embedding (``num_class_embeds = num_classes + 1``, the last index being
the "no condition" token) is replaced by `ConditionEmbedding`, which adds a linear map of the
standardised covariates to the class embedding; the sum is added to the timestep embedding inside the
UNet. The condition is dropped (null class, zero covariates) with probability `condition_dropout`
during training, which enables classifier-free guidance at sampling time (Ho & Salimans 2022). With
`guide_step`, the EMA UNet as it was at that training step is kept as an autoguidance guide (Karras et
al. 2024); it costs no training time. Sampling: `genrad.models.sampling.DiffusionSampler` with the
guidance strategy of the sampling settings (none, classifier-free, autoguidance, in an interval).

A guidance-distilled student (`genrad.training.distill.distill_guidance`; Meng et al. 2023) is a `Diffusion` with
`distilled_from` set: it starts from its teacher's weights and learns to predict the teacher's *guided* prediction
in one network call, so it samples without guidance at half the calls per step.

Two objectives (MONAI schedulers; the network is called directly because MONAI's ``DiffusionInferer``
does not pass class labels):

- ``"ddim"``: DDPM training (Ho et al. 2020) with v-prediction (Salimans & Ho 2022),
  ``v = sqrt(a_t) eps - sqrt(1 - a_t) x0``; with `min_snr_gamma`, each image's loss is weighted
  ``min(SNR_t, gamma) / (SNR_t + 1)``, ``SNR_t = a_t / (1 - a_t)`` (Hang et al. 2023, eq. 9 and sec. 3.4);
  DDIM sampling (Song et al. 2021) in `num_inference_steps` steps.
- ``"rflow"``: rectified flow (Liu et al. 2023), ``x_t = (1 - s) x0 + s eps`` with ``s = t / T`` drawn
  logit-normal (Esser et al. 2024), target ``x0 - eps``; Euler sampling with ``RFlowScheduler``.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
from monai.networks.nets import DiffusionModelUNet
from monai.networks.schedulers import DDPMScheduler
from torch import nn
from torch.optim import AdamW, Optimizer

from genrad.core import native_bf16
from genrad.errors import InputError, is_int, is_number
from genrad.models.base import Batch, Generator
from genrad.models.blocks import ConditionEmbedding
from genrad.models.ema import EMA
from genrad.models.options import PRECISIONS, as_tuple
from genrad.models.sampling import (
    Autoguidance,
    ClassifierFree,
    DiffusionSampler,
    Interval,
    NoGuidance,
)

SCHEDULERS = ("ddim", "rflow")
SOLVERS = ("ddim", "dpm++2m")
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
    """Conditional diffusion model with classifier-free or auto-guidance and a few-step sampler.

    The shared options (`GeneratorOptions`: classes, covariates, channels, batch size, learning rate, EMA,
    precision, intensity map) come as keyword arguments. Its own:

    Args:
        num_res_blocks: residual blocks per UNet level (attention on the coarsest level).
        scheduler: "ddim" (DDPM training, v-prediction, DDIM sampling) or "rflow" (rectified flow).
        num_train_timesteps: T of the noise schedule.
        noise_schedule: "ddim" only: "linear" (betas 1e-4 to 0.02, DDPM's pixel-space schedule) or "scaled_linear"
            (latent diffusion's), see `NOISE_SCHEDULES`.
        min_snr_gamma: "ddim" only: Min-SNR-gamma loss weighting (Hang et al. 2023); None: the plain v-prediction loss.
        num_inference_steps: sampling steps (network calls per image, twice that with guidance).
        solver: "ddim" only: "ddim" (MONAI's DDIM steps) or "dpm++2m" (the second-order multistep DPM-Solver++,
            `genrad.models.sampling.DPMSolverPlusPlus2M`, more faithful in few steps); None: "ddim" for a model
            trained with scheduler "ddim", Euler steps for "rflow".
        sampling_precision: "fp32"; "bf16": the sampling network calls under ``torch.autocast`` in bfloat16 (the
            solver's arithmetic stays float32), several times faster where bfloat16 is native (CUDA, AVX512-BF16 or
            AMX CPUs; `genrad.core.native_bf16`), many times slower elsewhere; "auto": "bf16" where it is native.
        sampling_eta: "ddim" solver only: DDIM's eta (0: deterministic; 1: as stochastic as DDPM's ancestral sampler).
        guidance_scale: guidance weight ``w`` (1: the conditional model alone, no guidance).
        guidance_interval: ``(low, high)`` fractions of the T timesteps where guidance applies ((0, 1): all).
        guide_step: autoguidance by the EMA UNet as it was at this training step (None: classifier-free guidance).
            The weight that fits falls as training moves the model away from its guide, so keep `guide_step` at a
            similar share of the run when the budget buys more steps. A model trained for `guide_step` steps or fewer
            has no guide and falls back to classifier-free guidance (with a warning).
        condition_dropout: probability of training on the null condition (what classifier-free guidance needs).
        distilled_from: set by `genrad.training.distill.distill_guidance` only: the teacher this student was distilled
            from (its weights' SHA-256 ``model_hash``, its guidance settings and training steps); None: trained on data.
    """

    family = "diffusion"
    default_steps = 5000
    option_defaults: ClassVar[dict[str, Any]] = {"learning_rate": 5e-4}
    earlier_defaults: ClassVar[dict[str, Any]] = {**Generator.earlier_defaults, "noise_schedule": "scaled_linear"}
    ema_networks = ("unet",)
    sampling_settings = ("num_inference_steps", "solver", "sampling_precision", "sampling_eta", "guidance_scale", "guidance_interval")

    def __init__(
        self,
        *,
        num_res_blocks: int = 1,
        scheduler: str = "ddim",
        num_train_timesteps: int = 1000,
        noise_schedule: str = "linear",
        min_snr_gamma: float | None = None,
        num_inference_steps: int = 50,
        solver: str | None = None,
        sampling_precision: str = "fp32",
        sampling_eta: float = 0.0,
        guidance_scale: float = 1.5,
        guidance_interval: Sequence[float] = (0.0, 1.0),
        guide_step: int | None = None,
        condition_dropout: float = 0.1,
        distilled_from: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> None:
        self.num_res_blocks = num_res_blocks
        self.scheduler = scheduler
        self.num_train_timesteps = num_train_timesteps
        self.noise_schedule = noise_schedule
        self.min_snr_gamma = min_snr_gamma
        self.num_inference_steps = num_inference_steps
        self.solver = solver
        self.sampling_precision = sampling_precision
        self.sampling_eta = sampling_eta
        self.guidance_scale = guidance_scale
        self.guide_step = guide_step
        self.condition_dropout = condition_dropout
        self.guidance_interval = as_tuple(guidance_interval)
        self.distilled_from = None if distilled_from is None else dict(distilled_from)
        super().__init__(**options)

    def _argument_checks(self) -> list[tuple[bool, str, Any]]:
        return [
            (is_int(self.num_res_blocks) and self.num_res_blocks >= 1, "num_res_blocks an int >= 1", self.num_res_blocks),
            (self.scheduler in SCHEDULERS, f"scheduler one of {SCHEDULERS}", self.scheduler),
            (is_int(self.num_train_timesteps) and self.num_train_timesteps >= 2, "num_train_timesteps an int >= 2",
             self.num_train_timesteps),
            (self.noise_schedule in tuple(NOISE_SCHEDULES), f"noise_schedule one of {tuple(NOISE_SCHEDULES)}", self.noise_schedule),
            (self.min_snr_gamma is None or (self.scheduler == "ddim" and is_number(self.min_snr_gamma) and self.min_snr_gamma > 0),
             'min_snr_gamma None, or > 0 with scheduler "ddim"', self.min_snr_gamma),
            (is_int(self.num_inference_steps) and is_int(self.num_train_timesteps)
             and 1 <= self.num_inference_steps <= self.num_train_timesteps - (self.solver == "dpm++2m"),
             f"num_inference_steps in 1..num_train_timesteps ({self.num_train_timesteps}; one fewer with dpm++2m)",
             self.num_inference_steps),
            (self.solver is None or (self.solver in SOLVERS and self.scheduler == "ddim"),
             f'solver None, or one of {SOLVERS} with scheduler "ddim"', self.solver),
            (self.sampling_precision in (*PRECISIONS, "auto"), f"sampling_precision one of {(*PRECISIONS, 'auto')}",
             self.sampling_precision),
            (is_number(self.sampling_eta)
             and (self.sampling_eta == 0.0 or (self.sampling_solver() == "ddim" and 0.0 < self.sampling_eta <= 1.0)),
             'sampling_eta 0, or in (0, 1] with the "ddim" solver', self.sampling_eta),
            (is_number(self.guidance_scale) and self.guidance_scale >= 0, "guidance_scale >= 0", self.guidance_scale),
            (isinstance(self.guidance_interval, tuple) and len(self.guidance_interval) == 2
             and all(is_number(v) for v in self.guidance_interval)
             and 0.0 <= self.guidance_interval[0] < self.guidance_interval[1] <= 1.0,
             "guidance_interval (low, high) with 0 <= low < high <= 1", self.guidance_interval),
            (self.guide_step is None or (is_int(self.guide_step) and self.guide_step >= 1),
             "guide_step None or an int >= 1", self.guide_step),
            (is_number(self.condition_dropout) and 0.0 <= self.condition_dropout < 1.0, "condition_dropout in [0, 1)",
             self.condition_dropout),
            (self.distilled_from is None or isinstance(self.distilled_from.get("model_hash"), str),
             "distilled_from None, or the teacher record of genrad.training.distill_guidance", self.distilled_from),
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
        """Fresh networks, or a student's copy of its teacher's sampling UNet (`teacher_`, during distillation)."""
        super()._build(seed)
        teacher = getattr(self, "teacher_", None)
        if teacher is not None:
            self.networks_["unet"].load_state_dict(teacher.network("unet").state_dict())
            self.ema_ = {name: EMA(self.networks_[name], self.ema_decay) for name in self.ema_}
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
        if self.distilled_from is not None:
            target = self._teacher_target(x_t, timesteps, labels, covariates)
        prediction = networks["unet"](x_t, timesteps, class_labels=(labels, covariates))
        loss = self._loss_weights(timesteps, schedule) @ (prediction - target).pow(2).flatten(1).mean(1) / n
        optimizers["unet"].zero_grad(set_to_none=True)
        loss.backward()
        optimizers["unet"].step()
        return {"loss": loss.item()}

    def _teacher_target(self, x_t: torch.Tensor, timesteps: torch.Tensor, labels: torch.Tensor,
                        covariates: torch.Tensor) -> torch.Tensor:
        """A student's target: its teacher's guided prediction at the same noisy images (Meng et al. 2023, eq. 6),
        in bfloat16 where the teacher samples in bfloat16."""
        teacher = getattr(self, "teacher_", None)
        if teacher is None:
            raise InputError("a distilled Diffusion trained by genrad.training.distill_guidance (which attaches its teacher)",
                             "fit called on a student without its teacher", "call distill_guidance(teacher, data) instead")
        with torch.no_grad(), torch.autocast(x_t.device.type, dtype=torch.bfloat16, enabled=teacher.bf16_sampling()):
            return teacher.guidance()(teacher.network("unet"), x_t, timesteps, labels, covariates).float()

    def _loss_weights(self, timesteps: torch.Tensor, schedule: DDPMScheduler | None) -> torch.Tensor:
        """Per-image loss weights: ones, or Min-SNR-gamma's ``min(SNR_t, gamma) / (SNR_t + 1)`` on the training
        step's `schedule` (always a DDPM schedule then: the argument checks refuse Min-SNR with "rflow")."""
        if self.min_snr_gamma is None or schedule is None:
            return torch.ones(len(timesteps), device=timesteps.device)
        alpha_bar = schedule.alphas_cumprod.to(timesteps.device)[timesteps.long()]
        snr = alpha_bar / (1.0 - alpha_bar)
        return snr.clamp(max=self.min_snr_gamma) / (snr + 1.0)

    def guidance(self) -> Any:
        """The guidance strategy of the current sampling settings (`genrad.models.sampling`)."""
        if self.guidance_scale == 1.0:
            return NoGuidance()
        guide = self.snapshot_guide()
        if self.guide_step is not None and guide is None:
            warnings.warn(f"Diffusion not trained past guide_step {self.guide_step}: sampling with classifier-free "
                          "guidance instead of autoguidance", stacklevel=4)  # one message: shown once per process
        strategy = Autoguidance(guide, self.guidance_scale) if guide is not None else ClassifierFree(self.guidance_scale, self.num_classes)
        low, high = self.guidance_interval
        return strategy if (low, high) == (0.0, 1.0) else Interval(strategy, low, high, self.num_train_timesteps)

    def bf16_sampling(self) -> bool:
        """Whether the network calls of `sample` run in bfloat16 (`sampling_precision`, "auto" resolved on this device)."""
        if self.sampling_precision == "auto":
            return native_bf16(self.device_)
        return self.sampling_precision == "bf16"

    def sampling_solver(self) -> str:
        """The `DiffusionSampler` kind: `solver`, or the scheduler's own ("ddim" or "rflow") when it is None."""
        return self.scheduler if self.solver is None else self.solver

    def sampler(self) -> DiffusionSampler:
        """The `DiffusionSampler` of the current sampling settings, built once per settings."""
        key = (self.num_inference_steps, self.solver, self.sampling_eta, self.guidance_scale, self.guidance_interval, self.step_)
        if getattr(self, "_sampler", (None, None))[0] != key:
            self._sampler = (key, DiffusionSampler(self.sampling_solver(), num_train_timesteps=self.num_train_timesteps,
                                                   num_inference_steps=self.num_inference_steps, guidance=self.guidance(),
                                                   schedule=self._schedule_arguments(), eta=self.sampling_eta, device=self.device_))
        return self._sampler[1]

    def _generate(self, labels: torch.Tensor, covariates: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        noise = torch.randn((len(labels), *self.net_shape_), generator=generator).to(self.device_)
        with torch.autocast(self.device_.type, dtype=torch.bfloat16, enabled=self.bf16_sampling()):
            return self.sampler()(self.network("unet"), noise, labels.to(self.device_), covariates.to(self.device_), generator)


def _expand(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return values.view(-1, *[1] * (like.ndim - 1))
