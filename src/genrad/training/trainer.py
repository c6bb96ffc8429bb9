"""`Trainer`: the one training loop behind every genrad generator.

The loop, step by step (after MONAI's ``GanTrainer`` docstring):

1. take the next batch from `loader`: a `DataLoader` whose `EpochBatchSampler` orders each epoch by a
   permutation derived from ``(seed, epoch)``, so the batch at step ``t`` is a pure function of the
   seed and ``t`` and a resumed run sees exactly the batches an uninterrupted run would;
2. ``model.training_step(batch, networks=..., optimizers=..., step=t, generator=...)``: forward,
   backward and optimizer steps; all training noise comes from `generator`, whose state is saved;
3. update the EMA copies of the sampling networks;
4. record losses (``history.csv``), refresh the rich progress bar (loss, images/s), call callbacks;
5. every `checkpoint_every` steps or `checkpoint_minutes`, at the end and on Ctrl-C: ``model.refresh``
   (statistics derived from weights and data, e.g. the VAE's latent prior), then write a checkpoint
   (``model.safetensors``, ``optimizer.safetensors``, ``config.json``, ``training_state.json``) and a
   sample grid ``samples/step_XXXXXXX.png``.

Stops at ``max_steps`` (total, counting resumed steps), after ``max_minutes`` (this call) or when a
callback returns True. Resuming restores weights, EMA, optimizers and RNG states: on the CPU, a run
stopped after K steps and resumed reaches bit-identical weights to an uninterrupted run.

Differential privacy (Opacus): build the trainer, replace its parts, then run::

    trainer = Trainer(model, cohort.train, seed=0)
    engine = opacus.PrivacyEngine()
    net, opt, loader = engine.make_private(module=trainer.networks["vae"], optimizer=trainer.optimizers["vae"],
                                           data_loader=trainer.loader, noise_multiplier=1.0, max_grad_norm=1.0)
    trainer.networks["vae"], trainer.optimizers["vae"], trainer.loader = net, opt, loader
    trainer.run(max_steps=2000)

The wrapped module shares its parameters with ``model.networks_``, so saving and sampling see the
trained weights. Opacus' Poisson loader is not an `EpochBatchSampler`: such runs are seeded by Opacus'
own generator and are not bit-identical on resume.
"""

from __future__ import annotations

import csv
import math
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from torch.utils.data import DataLoader, Sampler

from genrad.core import make_generator, native_bf16
from genrad.errors import InputError, check, is_int, is_number
from genrad.models.checkpoint import (
    CONFIG,
    OPTIMIZER,
    STATE,
    WEIGHTS,
    load_checkpoint,
    optimizer_state,
    restore_optimizers,
    save_checkpoint,
)
from genrad.paths import check_entries
from genrad.progress import progress_bar

if TYPE_CHECKING:
    from genrad.data import Cohort, Split
    from genrad.models.base import Generator

HISTORY = "history.csv"
SAMPLES = "samples"


@dataclass(frozen=True)
class StepInfo:
    """What callbacks receive after each step."""

    step: int
    losses: dict[str, float]
    images_per_second: float
    elapsed_seconds: float


class EpochBatchSampler(Sampler[list[int]]):
    """Batches of a permutation drawn per epoch from ``(seed, epoch)``, starting at global step `step`.

    ``len()`` is the number of batches per epoch (full batches only). Set `step` before iterating to
    start mid-epoch; one iteration runs to the end of that epoch.
    """

    def __init__(self, n: int, batch_size: int, seed: int) -> None:
        self.n, self.batch_size, self.seed = n, min(batch_size, n), seed
        self.step = 0

    def __len__(self) -> int:
        return self.n // self.batch_size

    def __iter__(self) -> Iterator[list[int]]:
        epoch, offset = divmod(self.step, len(self))
        order = torch.randperm(self.n, generator=make_generator(self.seed, "order", epoch)).tolist()
        for b in range(offset, len(self)):
            yield order[b * self.batch_size : (b + 1) * self.batch_size]


class Trainer:
    """Train `model` on `data`; `networks`, `optimizers` and `loader` are public and replaceable."""

    def __init__(
        self,
        model: Generator,
        data: Split | Cohort,
        *,
        seed: int = 0,
        out_dir: str | Path | None = None,
        checkpoint_every: int = 1000,
        checkpoint_minutes: float = 10.0,
        log_every: int = 10,
        progress: bool = True,
    ) -> None:
        check("train", [(is_int(seed) and seed >= 0, "seed >= 0 (an integer)", seed)])
        self.model = model
        self.seed = seed
        self.out_dir = None if out_dir is None else Path(out_dir)
        self.checkpoint_every = checkpoint_every
        self.checkpoint_minutes = checkpoint_minutes
        self.log_every = log_every
        self.progress = progress
        split = model.prepare(data, seed=seed)
        if model.precision == "bf16" and not native_bf16(model.device_):
            warnings.warn(f"{type(model).__name__}(precision='bf16') on a CPU without AVX512-BF16 or AMX: bfloat16 is "
                          "emulated and each step is many times slower than float32; pass precision='fp32'", stacklevel=3)
        self.dataset = model.model_space(split)
        self.networks = dict(model.networks_.items())
        self.optimizers = model.make_optimizers(self.networks)
        self.loader = DataLoader(self.dataset, batch_sampler=EpochBatchSampler(len(split), model.batch_size, seed))
        self.generator = make_generator(seed, "noise")
        self.step = 0
        self.history: list[dict[str, float]] = []
        self._rate = self._elapsed = 0.0

    # ------------------------------------------------------------------ loop
    def run(
        self,
        *,
        max_steps: int | None = None,
        max_minutes: float | None = None,
        callbacks: Iterable[Callable[[StepInfo], Any]] = (),
        resume: bool = False,
    ) -> Generator:
        """Train until a budget is spent; returns the fitted model."""
        name = type(self.model).__name__
        if max_steps is not None and (not is_int(max_steps) or max_steps < 1):
            raise InputError(f"{name}.fit max_steps: an int >= 1", repr(max_steps), "pass a step budget of at least one step")
        if max_minutes is not None and not (is_number(max_minutes) and max_minutes > 0):
            raise InputError(f"{name}.fit max_minutes > 0", repr(max_minutes), "pass a time budget in minutes")
        if max_steps is None and max_minutes is None:
            max_steps = self.model.default_steps
        if self.out_dir is not None:
            check_entries(self.out_dir, files=(WEIGHTS, OPTIMIZER, CONFIG, STATE, HISTORY), folders=(SAMPLES,))
        if resume:
            self._resume()
        elif self.out_dir is not None and (self.out_dir / STATE).exists():
            raise InputError("an empty or new output directory", f"a checkpoint already in {self.out_dir}",
                             "pass resume=True (--resume) to continue it, or choose another directory")
        callbacks = list(callbacks)
        start = time.perf_counter()
        last_checkpoint = start
        deadline = math.inf if max_minutes is None else start + 60.0 * max_minutes
        total = max_steps if max_steps is not None else None
        window: list[dict[str, float]] = []
        with _DeferredInterrupt() as interrupt, self._progress_bar(total) as bar:
            task = bar.add_task(name, total=total, completed=self.step, status="")
            stop = self._done(max_steps, deadline)
            while not stop:
                sampler = getattr(self.loader, "batch_sampler", None)
                if isinstance(sampler, EpochBatchSampler):
                    sampler.step = self.step
                seen_batch = False
                for network in self.networks.values():
                    network.train()
                for batch in self.loader:
                    seen_batch = True
                    tick = time.perf_counter()
                    losses = self._train_one(batch)
                    self._rate = len(batch[0]) / max(time.perf_counter() - tick, 1e-9)
                    self._elapsed = time.perf_counter() - start
                    window.append(losses)
                    if self.step % self.log_every == 0:
                        self._log(window)
                        window = []
                    info = StepInfo(self.step, losses, self._rate, self._elapsed)
                    status = " ".join(f"{k} {v:.4f}" for k, v in losses.items()) + f"  {self._rate:.0f} img/s"
                    if math.isfinite(deadline):
                        status += f"  {max(deadline - time.perf_counter(), 0.0) / 60:.1f} min of the budget left"
                    bar.update(task, completed=self.step, status=status)
                    requested = any(bool(callback(info)) for callback in callbacks)  # call every callback
                    due = self.step % self.checkpoint_every == 0 or time.perf_counter() - last_checkpoint > 60 * self.checkpoint_minutes
                    stop = requested or interrupt.requested or self._done(max_steps, deadline)
                    if due and not stop:
                        self._checkpoint(window)
                        window = []
                        last_checkpoint = time.perf_counter()
                        for network in self.networks.values():
                            network.train()
                    if stop:
                        break
                if not seen_batch:
                    raise InputError("a data loader that yields batches", "an empty loader",
                                     "give the model at least batch_size images")
            self._checkpoint(window)
            if interrupt.requested:
                raise KeyboardInterrupt
        return self.model

    def _done(self, max_steps: int | None, deadline: float) -> bool:
        return (max_steps is not None and self.step >= max_steps) or time.perf_counter() >= deadline

    def _train_one(self, batch: Any) -> dict[str, float]:
        device = self.model.device_
        batch = tuple(t.to(device) for t in batch)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.model.precision == "bf16"):
            losses = self.model.training_step(
                batch, networks=self.networks, optimizers=self.optimizers, step=self.step, generator=self.generator
            )
        for name, average in self.model.ema_.items():
            average.update(self.model.networks_[name], self.step)
        self.step += 1
        self.model.step_ = self.step
        return losses

    def _log(self, window: list[dict[str, float]]) -> None:
        if not window:
            return
        row = {"step": float(self.step), "elapsed_seconds": round(self._elapsed, 3), "images_per_second": round(self._rate, 2)}
        for key in window[-1]:
            row[key] = float(np.mean([losses[key] for losses in window]))
        self.history.append(row)
        self.model.history_ = self.history

    # ------------------------------------------------------------------ checkpoints
    def _checkpoint(self, window: list[dict[str, float]]) -> None:
        self._log(window)
        self.model.refresh(self.dataset)
        if self.out_dir is None:
            return
        tensors, meta = optimizer_state(self.optimizers)
        tensors.update(self._rng_tensors())
        state = {
            "step": self.step,
            "seed": self.seed,
            "data_hash": self.model.data_hash_,
            "optimizers": meta,
            "model_hash": self.model.model_hash(),
        }
        save_checkpoint(self.out_dir, weights=self.model.state_tensors(), config=self.model.checkpoint_config(),
                        state=state, extra=tensors)
        self._write_history()
        self._write_grid()

    def _rng_tensors(self) -> dict[str, torch.Tensor]:
        tensors = {"rng/noise": self.generator.get_state()}
        sampler = getattr(self.loader, "batch_sampler", None)
        if not isinstance(sampler, EpochBatchSampler):
            loader_generator = getattr(sampler, "generator", None) or getattr(self.loader, "generator", None)
            if isinstance(loader_generator, torch.Generator):
                tensors["rng/loader"] = loader_generator.get_state()
        return tensors

    def _resume(self) -> None:
        if self.out_dir is None or not (self.out_dir / CONFIG).exists():
            raise InputError("a run directory with a checkpoint to resume", f"none in {self.out_dir}",
                             "run without --resume first, or point --out at the interrupted run")
        checkpoint = load_checkpoint(self.out_dir, extra=True)
        source = str(self.out_dir)
        saved = checkpoint.config.get("config")
        if checkpoint.config.get("family") != self.model.family or saved != self.model.config:
            raise InputError(f"a checkpoint of {type(self.model).__name__} with config {self.model.config}",
                             f"{checkpoint.config.get('family')} with config {saved}",
                             "resume with the same model and options as the original run", source=source)
        if checkpoint.state.get("data_hash") != self.model.data_hash_:
            raise InputError(f"the training data of the checkpoint (hash {str(checkpoint.state.get('data_hash'))[:12]}...)",
                             f"data with hash {self.model.data_hash_[:12]}...",
                             "resume with the same --data and --split", source=source)
        if checkpoint.state.get("seed") != self.seed:
            raise InputError(f"seed {checkpoint.state.get('seed')} of the checkpoint", f"seed {self.seed}",
                             "resume with the same --seed", source=source)
        self.model.restore(checkpoint, source=source)
        self.networks.update({name: self.model.networks_[name] for name in self.networks})
        self.optimizers = self.model.make_optimizers(self.networks)
        meta = checkpoint.state.get("optimizers", {})
        restore_optimizers(self.optimizers, checkpoint.extra, meta)
        self.generator.set_state(checkpoint.extra["rng/noise"])
        self.step = int(checkpoint.state["step"])
        self.model.step_ = self.step
        self.history = _read_history(self.out_dir / HISTORY, self.step)
        self.model.history_ = self.history

    def _write_history(self) -> None:
        if not self.history:
            return
        from genrad.provenance import atomic_path

        columns = list(dict.fromkeys(key for row in self.history for key in row))
        with atomic_path(self.out_dir / HISTORY) as temp, open(temp, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(self.history)

    def _write_grid(self) -> None:
        from genrad.training.grid import save_grid

        per_class = 8
        labels = torch.arange(self.model.num_classes).repeat_interleave(per_class)
        images = self.model.sample(len(labels), labels=labels, generator=make_generator(self.seed, "grid"))
        save_grid(images, self.out_dir / SAMPLES / f"step_{self.step:07d}.png", columns=per_class)

    def _progress_bar(self, total: int | None) -> Progress:
        return progress_bar(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[status]}"),
            disable=not self.progress,
        )


def _read_history(path: Path, step: int) -> list[dict[str, float]]:
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        rows = [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(handle)]
    return [row for row in rows if row["step"] <= step]


class _DeferredInterrupt:
    """Turn Ctrl-C (SIGINT) and SIGTERM (what a cluster scheduler sends before it kills a job) into a flag checked
    after each step, so the loop can checkpoint before stopping; a second signal stops at once."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _DeferredInterrupt:
        if threading.current_thread() is threading.main_thread():
            self._previous = {number: signal.signal(number, self._handle) for number in self.SIGNALS}
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc: object) -> None:
        for number, previous in self._previous.items():
            signal.signal(number, previous)
