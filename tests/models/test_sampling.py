"""The diffusion samplers against an exact answer: Gaussian data, whose denoiser and probability-flow ODE are known."""

from __future__ import annotations

import itertools

import pytest
import torch
from conftest import toy_split

from genrad.errors import InputError
from genrad.models import Diffusion
from genrad.models.sampling import ClassifierFree, DiffusionSampler, DPMSolverPlusPlus2M, NoGuidance

T = 1000
SCHEDULE = {"schedule": "linear_beta", "beta_start": 1e-4, "beta_end": 0.02, "prediction_type": "v_prediction"}
MEAN, SD = 0.3, 0.2


def _alphas_cumprod() -> torch.Tensor:
    return DPMSolverPlusPlus2M(T, **SCHEDULE).alphas_cumprod


def exact_v_network(x: torch.Tensor, t: torch.Tensor, class_labels: object = None) -> torch.Tensor:
    """The v-prediction of the exact denoiser for data ~ N(MEAN, SD^2): ``E[x0 | x_t]`` is linear in ``x_t``."""
    abar = _alphas_cumprod()[t.long()].view(-1, *[1] * (x.ndim - 1)).to(x.dtype)
    alpha, sigma = abar.sqrt(), (1 - abar).sqrt()
    x0 = MEAN + alpha * SD**2 / (alpha**2 * SD**2 + sigma**2) * (x - alpha * MEAN)
    return alpha * (x - alpha * x0) / sigma - sigma * x0


def ode_solution(noise: torch.Tensor, t_start: int) -> torch.Tensor:
    """The probability-flow ODE keeps each sample's standard score: ``x_t = alpha_t MEAN + sqrt(alpha_t^2 SD^2 + sigma_t^2) z``."""
    abar = _alphas_cumprod()[t_start]
    z = (noise - abar.sqrt() * MEAN) / (abar * SD**2 + 1 - abar).sqrt()
    return MEAN + SD * z


def sampling_error(solver: str, steps: int) -> float:
    noise = torch.randn(256, 1, 2, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    sampler = DiffusionSampler(solver, num_train_timesteps=T, num_inference_steps=steps, guidance=NoGuidance(), schedule=SCHEDULE)
    out = sampler(exact_v_network, noise, torch.zeros(256, dtype=torch.long), torch.zeros(256, 0), torch.Generator())
    assert int(sampler.timesteps[0]) == T - 1  # both start from the noisiest level
    return float((out - ode_solution(noise, T - 1)).abs().max())


def test_dpm_solver_is_second_order_and_beats_ddim_at_few_steps() -> None:
    ddim, dpm = sampling_error("ddim", 10), sampling_error("dpm++2m", 10)
    assert dpm < 0.01 < 0.1 < ddim  # measured: 0.001 against 0.15 (DDIM's first-order error)
    assert sampling_error("dpm++2m", 50) < sampling_error("ddim", 50) / 10


def test_dpm_solver_timesteps_are_strictly_decreasing_and_end_at_zero() -> None:
    solver = DPMSolverPlusPlus2M(T, **SCHEDULE)
    for steps in (1, 10, 200, T - 1):
        solver.set_timesteps(steps)
        grid = solver.timesteps.tolist() + [0]
        assert len(solver.timesteps) == steps and grid[0] == T - 1
        assert all(a > b for a, b in itertools.pairwise(grid)) or steps == 1


def test_a_trained_model_samples_with_the_solver_deterministically_and_checks_it() -> None:
    model = Diffusion(num_classes=2, channels=(8, 16), num_inference_steps=4, batch_size=8).fit(toy_split(), max_steps=2, progress=False)
    ddim = model.sample(3, labels=0, generator=1)
    model.with_sampling(solver="dpm++2m")
    first = model.sample(3, labels=0, generator=1)
    assert torch.equal(first, model.sample(3, labels=0, generator=1)) and not torch.equal(first, ddim)
    assert float(first.min()) >= 0.0 and float(first.max()) <= 1.0
    assert Diffusion.from_config(model.config).solver == "dpm++2m"
    with pytest.raises(InputError, match="solver"):
        Diffusion(num_classes=2, solver="euler")
    with pytest.raises(InputError, match="solver"):
        Diffusion(num_classes=2, scheduler="rflow", solver="dpm++2m")
    with pytest.raises(InputError, match="sampling_eta"):
        Diffusion(num_classes=2, solver="dpm++2m", sampling_eta=0.5)
    with pytest.raises(InputError, match="one fewer with dpm"):
        Diffusion(num_classes=2, solver="dpm++2m", num_train_timesteps=10, num_inference_steps=10)


def test_bf16_sampling_is_deterministic_and_close_to_float32() -> None:
    model = Diffusion(num_classes=2, channels=(8, 16), num_inference_steps=4, batch_size=8, solver="dpm++2m").fit(
        toy_split(), max_steps=2, progress=False)
    full = model.sample(4, labels=1, generator=3)
    model.with_sampling(sampling_precision="bf16")
    half = model.sample(4, labels=1, generator=3)
    assert half.dtype == torch.float32 and torch.equal(half, model.sample(4, labels=1, generator=3))
    assert not torch.equal(half, full) and float((half - full).abs().mean()) < 0.02
    with pytest.raises(InputError, match="sampling_precision"):
        model.with_sampling(sampling_precision="fp16")


def test_classifier_free_guidance_takes_one_timestep_per_image() -> None:
    """A distilled student's targets are guided at one timestep per image: the batched conditional and null calls
    must pair each image with its own timestep, as one call per image does."""

    def network(x: torch.Tensor, t: torch.Tensor, class_labels: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        labels, _ = class_labels
        return x * t.view(-1, 1, 1, 1) + labels.view(-1, 1, 1, 1).to(x.dtype)

    guidance = ClassifierFree(scale=3.0, null_label=2)
    x, labels, covariates = torch.randn(4, 1, 2, 2), torch.tensor([0, 1, 0, 1]), torch.zeros(4, 0)
    timesteps = torch.tensor([10.0, 200.0, 500.0, 900.0])
    one_by_one = torch.cat([guidance(network, x[i : i + 1], float(timesteps[i]), labels[i : i + 1], covariates[i : i + 1])
                            for i in range(4)])
    torch.testing.assert_close(guidance(network, x, timesteps, labels, covariates), one_by_one)
