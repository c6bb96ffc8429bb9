"""Differentially private training: DP-SGD (Abadi et al. 2016, "Deep learning with differential privacy") with Opacus.

Each step draws a batch by Poisson sampling (every training image independently with rate q), clips
every image's gradient to L2 norm C (`max_grad_norm`) and adds Gaussian noise N(0, sigma^2 C^2) to
their sum. The accountant (Renyi DP, Mironov 2017) turns (sigma, q, steps) into the spent (epsilon,
delta); sigma is chosen so that the planned number of steps spends the target epsilon.

Only the networks whose gradients see real images are privatised: each family declares them
(``private_networks``, the whole VAE) and the constructor settings DP needs (``private_settings``).
Sampling from a DP model is post-processing and keeps the guarantee. The spent epsilon is the model's
``privacy_`` record, saved in ``config.json`` (``fitted.privacy``) at every checkpoint, and copied
into what is generated from the model.

Reproducibility: Opacus' ``secure_mode`` (a cryptographically secure RNG, which resists attacks on
floating-point noise; Mironov 2012) cannot be seeded, so genrad trains with ``secure_mode=False`` and
seeded generators for the Poisson sampler and the noise: the same seed gives the same weights. Set
``secure_mode=True`` for a release whose guarantee must hold against such attacks.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.optim import Optimizer
from torch.utils.data import DataLoader, Dataset

from genrad.core import make_generator
from genrad.errors import InputError, is_int, require_extra
from genrad.models.checkpoint import CONFIG, load_checkpoint
from genrad.training.trainer import Trainer

if TYPE_CHECKING:
    from opacus import PrivacyEngine

    from genrad.data import Cohort, Split
    from genrad.models.base import Generator

ACCOUNTANT = "rdp"
ALPHAS = [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64)) + [64, 96, 128, 192, 256, 384, 512, 1024]
"""Renyi orders the accountant optimises over: Opacus' defaults plus large orders for short runs."""


@dataclass
class PrivateParts:
    """What `make_private` returns: Opacus' wrapped module, optimizer and Poisson loader, and its engine."""

    module: nn.Module
    optimizer: Optimizer
    loader: DataLoader
    engine: PrivacyEngine
    noise_multiplier: float
    sample_rate: float


def default_delta(n: int) -> float:
    """``min(1e-5, 1 / (10 n))``: well below 1/n, the largest meaningful delta for n records."""
    return min(1e-5, 1.0 / (10 * n))


def make_private(
    module: nn.Module,
    optimizer: Optimizer,
    dataset: Dataset,
    *,
    batch_size: int,
    epsilon: float,
    delta: float,
    steps: int,
    max_grad_norm: float = 1.0,
    seed: int = 0,
    secure_mode: bool = False,
) -> PrivateParts:
    """Wrap `module` / `optimizer` for DP-SGD over `dataset` so that `steps` steps spend (`epsilon`, `delta`).

    The sampling rate is ``q = 1 / ceil(n / batch_size)`` (Poisson batches of ``batch_size`` images on
    average); the noise multiplier comes from Opacus' `get_noise_multiplier` with the RDP accountant.
    """
    PrivacyEngine = require_extra("opacus", "differentially private training").PrivacyEngine
    get_noise_multiplier = require_extra("opacus.accountants.utils", "differentially private training").get_noise_multiplier

    n = len(dataset)  # type: ignore[arg-type]
    _check_budget(epsilon, delta, n, max_grad_norm, steps)
    sample_rate = 1.0 / math.ceil(n / batch_size)
    try:
        sigma = get_noise_multiplier(
            target_epsilon=epsilon, target_delta=delta, sample_rate=sample_rate, steps=steps, accountant=ACCOUNTANT,
            alphas=ALPHAS,
        )
    except ValueError:
        raise InputError(
            f"a privacy budget reachable in {steps} steps",
            f"epsilon {epsilon} (noise multiplier above 1e6)",
            "raise --epsilon or lower the number of steps",
        ) from None
    loader = DataLoader(dataset, batch_size=batch_size, generator=None if secure_mode else make_generator(seed, "dp-poisson"))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Ss]ecure RNG.*")  # seeded on purpose: see the module docstring
        engine = PrivacyEngine(accountant=ACCOUNTANT, secure_mode=secure_mode)
        private_module, private_optimizer, private_loader = engine.make_private(
            module=module,
            optimizer=optimizer,
            data_loader=loader,
            noise_multiplier=sigma,
            max_grad_norm=max_grad_norm,
            poisson_sampling=True,
            noise_generator=None if secure_mode else make_generator(seed, "dp-noise"),
        )
    if not secure_mode:
        # DataLoader draws a worker seed from its generator at every new iteration: give it its own
        # generator so that batches depend only on the step (resumed runs then match uninterrupted ones)
        private_loader.generator = make_generator(seed, "dp-loader-workers")
    return PrivateParts(private_module, private_optimizer, private_loader, engine, sigma, sample_rate)


class PrivateTrainer(Trainer):
    """A `Trainer` whose data-facing networks are trained with DP-SGD (see the module docstring).

    After each step the model's ``privacy_`` record holds the accountant's epsilon so far, so every
    checkpoint's ``config.json`` carries it. Resuming restores the accountant from that record and
    the Poisson-sampling and noise generators, so a resumed run matches an uninterrupted one.
    """

    def __init__(
        self,
        model: Generator,
        data: Split | Cohort,
        *,
        epsilon: float,
        delta: float | None = None,
        steps: int | None = None,
        max_grad_norm: float = 1.0,
        secure_mode: bool = False,
        seed: int = 0,
        out_dir: str | Path | None = None,
        progress: bool = True,
    ) -> None:
        if not model.private_networks:
            raise InputError("a model family with DP training (one that declares its private_networks)",
                             repr(model.family), "train this family without --dp, or use --model vae")
        required = dict(model.private_settings)
        found = {key: getattr(model, key, value) for key, value in required.items()}
        if found != required:
            arguments = ", ".join(f"{key}={value!r}" for key, value in required.items())
            raise InputError(f"{type(model).__name__}({arguments}) for DP training", str(found),
                             f"construct the model with {arguments} (the CLI does so with --dp)")
        if model.precision != "fp32":
            raise InputError("precision 'fp32' for DP training", repr(model.precision),
                             "drop --precision bf16 (Opacus' per-sample gradients are float32)")
        super().__init__(model, data, seed=seed, out_dir=out_dir, progress=progress)
        n = len(self.dataset)
        self.epsilon = epsilon
        self.delta = default_delta(n) if delta is None else delta
        self.planned_steps = model.default_steps if steps is None else steps
        self.max_grad_norm = max_grad_norm
        self.secure_mode = secure_mode
        self.parts: dict[str, PrivateParts] = {}
        self._privatise()

    def _privatise(self) -> None:
        """Wrap each private network and optimizer; the accountant starts at the current step."""
        for parts in self.parts.values():
            parts.module._close()  # type: ignore[operator]  # drop the hooks of a previous wrapping
        for name in self.model.private_networks:
            parts = make_private(
                self.networks[name],
                self.optimizers[name],
                self.dataset,
                batch_size=self.model.batch_size,
                epsilon=self.epsilon,
                delta=self.delta,
                steps=self.planned_steps,
                max_grad_norm=self.max_grad_norm,
                seed=self.seed,
                secure_mode=self.secure_mode,
            )
            if self.step:
                parts.engine.accountant.history = [(parts.noise_multiplier, parts.sample_rate, self.step)]
            self.parts[name] = parts
            self.networks[name], self.optimizers[name], self.loader = parts.module, parts.optimizer, parts.loader
        self._record()

    def _record(self) -> None:
        """Set ``model.privacy_`` to the accountant's figures at the current step."""
        name = next(iter(self.parts))
        parts = self.parts[name]
        spent = parts.engine.accountant.get_epsilon(self.delta, alphas=ALPHAS) if self.step else 0.0
        self.model.privacy_ = {
            "mechanism": "DP-SGD (Abadi et al. 2016), Opacus",
            "epsilon": float(spent),
            "delta": self.delta,
            "target_epsilon": self.epsilon,
            "accountant": ACCOUNTANT,
            "noise_multiplier": parts.noise_multiplier,
            "max_grad_norm": self.max_grad_norm,
            "sample_rate": parts.sample_rate,
            "steps": self.step,
            "planned_steps": self.planned_steps,
            "networks": list(self.parts),
            "secure_mode": self.secure_mode,
            "opacus": metadata.version("opacus"),
        }

    def _train_one(self, batch: Any) -> dict[str, float]:
        losses = super()._train_one(batch)
        self._record()
        return losses

    def _rng_tensors(self) -> dict[str, torch.Tensor]:
        tensors = super()._rng_tensors()
        for name, parts in self.parts.items():
            noise = getattr(parts.optimizer, "generator", None)
            if isinstance(noise, torch.Generator):
                tensors[f"rng/dp-noise/{name}"] = noise.get_state()
        return tensors

    def _resume(self) -> None:
        super()._resume()
        checkpoint = load_checkpoint(self.out_dir, extra=True)  # type: ignore[arg-type]
        saved = checkpoint.config.get("fitted", {}).get("privacy")
        expected = {"target_epsilon": self.epsilon, "delta": self.delta, "max_grad_norm": self.max_grad_norm,
                    "planned_steps": self.planned_steps}
        if saved is None or any(saved.get(key) != value for key, value in expected.items()):
            found = "a run trained without --dp" if saved is None else str({k: saved.get(k) for k in expected})
            raise InputError(f"a DP checkpoint with {expected}", found,
                             "resume with the original --epsilon, --delta, --max-grad-norm and --max-steps",
                             source=str(self.out_dir))
        self._privatise()
        sampler = self.loader.batch_sampler
        if "rng/loader" in checkpoint.extra and isinstance(getattr(sampler, "generator", None), torch.Generator):
            sampler.generator.set_state(checkpoint.extra["rng/loader"])  # type: ignore[union-attr]
        for name, parts in self.parts.items():
            noise = getattr(parts.optimizer, "generator", None)
            if f"rng/dp-noise/{name}" in checkpoint.extra and isinstance(noise, torch.Generator):
                noise.set_state(checkpoint.extra[f"rng/dp-noise/{name}"])

def fit_private(
    model: Generator,
    data: Split | Cohort,
    *,
    epsilon: float,
    delta: float | None = None,
    max_steps: int | None = None,
    max_minutes: float | None = None,
    max_grad_norm: float = 1.0,
    secure_mode: bool = False,
    seed: int = 0,
    callbacks: Iterable[Callable[..., Any]] = (),
    out_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
) -> Generator:
    """`model.fit` with DP-SGD: `max_steps` (default ``model.default_steps``) steps spend at most `epsilon`.

    A `max_minutes` budget may stop earlier, spending less. ``model.privacy_`` holds the accountant's
    figures (``epsilon`` spent, ``delta``, noise multiplier, ...).
    """
    trainer = PrivateTrainer(model, data, epsilon=epsilon, delta=delta, steps=max_steps, max_grad_norm=max_grad_norm,
                             secure_mode=secure_mode, seed=seed, out_dir=out_dir, progress=progress)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="(?i).*full backward hook.*")  # Opacus' hooks on input-free layers
        trainer.run(max_steps=trainer.planned_steps, max_minutes=max_minutes, callbacks=callbacks, resume=resume)
    return model


def refuse_private_run(run_dir: str | Path) -> None:
    """Refuse to continue a DP run without DP: its guarantee would no longer hold."""
    path = Path(run_dir) / CONFIG
    privacy = json.loads(path.read_text(encoding="utf-8")).get("fitted", {}).get("privacy") if path.exists() else None
    if privacy is not None:
        raise InputError(
            "a run trained without --dp to resume without --dp",
            f"a DP run (epsilon {privacy.get('epsilon', 0):.3g} after {privacy.get('steps')} steps)",
            "resume with --dp and the original --epsilon, --delta and --max-steps",
            source=str(run_dir),
        )


def _check_budget(epsilon: float, delta: float, n: int, max_grad_norm: float, steps: int) -> None:
    checks = [
        (epsilon > 0, "--epsilon > 0", epsilon, "pass a positive privacy budget, e.g. --epsilon 8"),
        (0 < delta < 1 / n, f"0 < --delta < 1/n = {1 / n:.3g} ({n} training images)", delta,
         f"pass a smaller delta, e.g. --delta {default_delta(n):.1g}"),
        (max_grad_norm > 0, "--max-grad-norm > 0", max_grad_norm, "pass a positive clipping norm, e.g. 1.0"),
        (is_int(steps) and steps >= 1, "a step budget >= 1 (--max-steps)", steps, "pass --max-steps"),
    ]
    for ok, expected, found, fix in checks:
        if not ok:
            raise InputError(expected, repr(found), fix)

