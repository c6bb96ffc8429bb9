"""Shards: fixed-size slices of a plan, each sampled with its own seed and written atomically.

Shard i covers plan images ``[i * shard_size, (i + 1) * shard_size)`` and samples with a
`torch.Generator` seeded with ``derive_seed(seed, "shard", i)``, in batches of ``batch_size``
on one CPU thread. Its pixels therefore depend only on (model, plan, seed, shard_size, batch_size),
not on which worker or backend ran it nor in which order: the thread count is pinned because it
changes the summation order of PyTorch's CPU kernels (and so the last bits of the output).
A shard file exists under its final name only once complete, so a re-run skips it (resume); it records the
SHA-256 of its images and labels, so a shard damaged later (truncated, edited) is found and sampled again.
"""

from __future__ import annotations

import contextlib
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from genrad.core import derive_seed
from genrad.errors import InputError
from genrad.provenance import atomic_path, hash_arrays
from genrad.synthesis.plan import GeneratorLike, SamplingPlan

SHARD_DIR = "shards"


@dataclass(frozen=True)
class ShardTask:
    """One unit of work: the labels and covariates of a slice of the plan, and its seed."""

    index: int
    start: int
    labels: np.ndarray
    covariates: np.ndarray | None
    seed: int
    batch_size: int

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def shard_seed(seed: int, index: int) -> int:
    """The 63-bit seed of shard `index` under base `seed`."""
    return derive_seed(seed, "shard", int(index))


def split_plan(plan: SamplingPlan, *, seed: int, shard_size: int, batch_size: int) -> list[ShardTask]:
    """Cut `plan` into shards of `shard_size` images (the last may be shorter)."""
    labels, covariates = plan.labels, plan.covariate_array()
    return [
        ShardTask(
            index=i,
            start=start,
            labels=labels[start : start + shard_size],
            covariates=None if covariates is None else covariates[start : start + shard_size],
            seed=shard_seed(seed, i),
            batch_size=batch_size,
        )
        for i, start in enumerate(range(0, len(plan), shard_size))
    ]


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run PyTorch CPU ops on one thread inside the block, restoring the caller's setting after."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def sample_shard(model: GeneratorLike, task: ShardTask) -> np.ndarray:
    """Sample one shard: uint8 images, channel first, ``round(255 * clip(x, 0, 1))``."""
    generator = torch.Generator().manual_seed(task.seed)
    parts = []
    with torch.no_grad(), one_thread():
        for start in range(0, len(task), task.batch_size):
            labels = torch.from_numpy(task.labels[start : start + task.batch_size])
            covariates = None if task.covariates is None else task.covariates[start : start + task.batch_size]
            images = model.sample(len(labels), labels=labels, covariates=covariates, generator=generator)
            expected = (len(labels), *model.image_shape)
            if tuple(images.shape) != expected or not torch.isfinite(images).all():
                raise RuntimeError(
                    f"{type(model).__name__}.sample returned {tuple(images.shape)} (finite: "
                    f"{bool(torch.isfinite(images).all())}) for shard {task.index}; expected finite {expected}"
                )
            parts.append((images.detach().cpu().clamp(0, 1) * 255).round().to(torch.uint8).numpy())
    return np.concatenate(parts)


def shard_path(out: Path, index: int) -> Path:
    return out / SHARD_DIR / f"shard-{index:05d}.npz"


def write_shard(out: Path, task: ShardTask, images: np.ndarray) -> Path:
    """Write a sampled shard atomically: images, labels, seed, a ``synthetic`` marker and the SHA-256 of the
    images and labels (``sha256``), so that a shard damaged after it was written is found on resume."""
    path = shard_path(out, task.index)
    digest = np.asarray(hash_arrays(images, task.labels))
    with atomic_path(path) as temp, open(temp, "wb") as handle:
        np.savez(handle, images=images, labels=task.labels, seed=np.int64(task.seed), synthetic=np.bool_(True), sha256=digest)
    return path


def read_shard_images(out: Path, task: ShardTask) -> np.ndarray:
    """The images of a complete shard, checked against the task (seed, labels) and its recorded hash."""
    path = shard_path(out, task.index)
    problem = shard_problem(out, task)
    if problem is not None:
        raise InputError("intact shards (each checked when a generation resumes)", f"{path} {problem}",
                         "rerun the same command: damaged shards are sampled again", source=str(path))
    with np.load(path, allow_pickle=False) as shard:
        return shard["images"]


def shard_problem(out: Path, task: ShardTask) -> str | None:
    """Why the shard file of `task` cannot be used (unreadable, another plan's, or its hash differs), or None."""
    path = shard_path(out, task.index)
    try:
        with np.load(path, allow_pickle=False) as shard:
            images, labels, seed = shard["images"], shard["labels"], int(shard["seed"])
            recorded = str(shard["sha256"]) if "sha256" in shard.files else None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        return f"is unreadable ({str(error).splitlines()[0] if str(error) else type(error).__name__})"
    if seed != task.seed or not np.array_equal(labels, task.labels):
        return "belongs to another plan (seed or labels differ)"
    if len(images) != len(task) or (recorded is not None and recorded != hash_arrays(images, labels)):
        return "has changed since it was written (its SHA-256 differs)"
    return None


def remove_stale_temporaries(directory: Path) -> None:
    """Delete temporary files left by an interrupted run (atomic writes name them ``.<name>.*.tmp*``)."""
    if directory.is_dir():
        for temp in directory.glob(".*.tmp*"):
            if temp.is_file():
                temp.unlink()
