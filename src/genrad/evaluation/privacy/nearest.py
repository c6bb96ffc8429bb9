"""Nearest training images and what follows from them: near-copy flags, membership inference AUC, bootstrap
replicates (the statistics of `genrad.evaluation.privacy`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from genrad.evaluation.stats import rank_auc

if TYPE_CHECKING:
    from genrad.evaluation.privacy.spaces import Space


_MAX_ELEMENTS = 1 << 24  # bound on the floats held by one chunk of distance computations


@dataclass(frozen=True)
class Nearest:
    """Nearest-neighbour search of queries among references (one space)."""

    distance: np.ndarray  # (Nq,) distance of each query to its closest reference
    index: np.ndarray  # (Nq,) index of that reference
    variant: np.ndarray  # (Nq,) index of the query variant (mirror / shift) that matched
    reference_distance: np.ndarray  # (Nr,) distance of each reference to its closest query


def nearest(queries: torch.Tensor, references: torch.Tensor, exclude: np.ndarray | None = None) -> Nearest:
    """Closest reference of each query, minimised over query variants.

    Args:
        queries: ``(Nq, V, D)``: V variants (e.g. mirrored / shifted copies) of each query vector.
        references: ``(Nr, D)``.
        exclude: ``(Nq,)`` index of a reference each query may not match (itself, for leave-one-out).
    """
    n_variants, dim = queries.shape[1:]
    n_refs = len(references)
    rows = max(1, _MAX_ELEMENTS // (n_variants * max(n_refs, dim)))
    distance, index, variant = [], [], []
    reference_distance = torch.full((n_refs,), math.inf)
    for start, chunk in zip(range(0, len(queries), rows), queries.split(rows)):
        pairwise = torch.cdist(chunk.reshape(-1, dim), references).reshape(len(chunk), n_variants, n_refs)
        if exclude is not None:
            pairwise[torch.arange(len(chunk)), :, torch.as_tensor(exclude[start : start + len(chunk)])] = math.inf
        best_over_variants, best_variant = pairwise.min(dim=1)
        row_distance, row_index = best_over_variants.min(dim=1)
        distance.append(row_distance)
        index.append(row_index)
        variant.append(best_variant.gather(1, row_index[:, None])[:, 0])
        reference_distance = torch.minimum(reference_distance, best_over_variants.min(dim=0).values)
    return Nearest(
        distance=torch.cat(distance).numpy().astype(np.float64),
        index=torch.cat(index).numpy(),
        variant=torch.cat(variant).numpy(),
        reference_distance=reference_distance.numpy().astype(np.float64),
    )


def search(
    space: Space, images: torch.Tensor, references: Sequence[torch.Tensor], exclude: np.ndarray | None = None
) -> list[Nearest]:
    """`nearest` of `images`, as queries of `space`, among each reference set, in memory-bounded batches.

    `exclude` (one reference index per image) applies to every reference set."""
    per_image = math.prod(space.queries(images[:1]).shape[1:])
    batch = max(1, _MAX_ELEMENTS // per_image)
    parts = [
        [
            nearest(queries, reference, None if exclude is None else exclude[start : start + batch])
            for reference in references
        ]
        for start, queries in zip(range(0, len(images), batch), (space.queries(chunk) for chunk in images.split(batch)))
    ]
    return [
        Nearest(
            distance=np.concatenate([found.distance for found in column]),
            index=np.concatenate([found.index for found in column]),
            variant=np.concatenate([found.variant for found in column]),
            reference_distance=np.min([found.reference_distance for found in column], axis=0),
        )
        for column in zip(*parts)
    ]


def near_copy_threshold(holdout_distance: np.ndarray, quantile: float = 0.99) -> float:
    """Distance below which at most ``1 - quantile`` of held-out images lie (their ``1 - quantile`` quantile)."""
    return float(np.quantile(holdout_distance, 1.0 - quantile))


def near_copies(
    synthetic: np.ndarray, holdout: np.ndarray, quantile: float = 0.99, specificity_quantile: float = 0.95
) -> np.ndarray:
    """Near-copy flags of synthetic images, calibrated on held-out images (module docstring, rule (a) and (b)).

    Args:
        synthetic: ``(Ns, 2)``: per synthetic image, distance to the closest training image and the
            train/held-out distance ratio.
        holdout: ``(Nh, 2)``: the same for unseen held-out images (ratio leave-one-out).
    """
    close = synthetic[:, 0] < near_copy_threshold(holdout[:, 0], quantile)
    specific = synthetic[:, 1] < near_copy_threshold(holdout[:, 1], specificity_quantile)
    return close & specific


def near_copy_rate(
    synthetic: np.ndarray, holdout: np.ndarray, quantile: float = 0.99, specificity_quantile: float = 0.95
) -> float:
    """Fraction of `near_copies` (same arguments)."""
    return float(near_copies(synthetic, holdout, quantile, specificity_quantile).mean())


def membership_auc(member_scores: np.ndarray, nonmember_scores: np.ndarray) -> float:
    """ROC AUC of an attack score, P(member > non-member) + P(tie) / 2 (Mann-Whitney U / n1 n0)."""
    members, nonmembers = np.asarray(member_scores), np.asarray(nonmember_scores)
    positive = np.concatenate([np.ones(len(members), dtype=bool), np.zeros(len(nonmembers), dtype=bool)])
    return float(rank_auc(np.concatenate([members, nonmembers]), positive))


def bootstrap_replicates(statistic: Callable[..., float], *samples: np.ndarray, n_resamples: int = 1000, seed: int = 0) -> np.ndarray:
    """``statistic(*samples)`` on `n_resamples` bootstrap resamples, each sample resampled independently."""
    rng = np.random.default_rng(seed)
    return np.array([
        statistic(*(sample[rng.integers(0, len(sample), len(sample))] for sample in samples))
        for _ in range(n_resamples)
    ], dtype=np.float64)


def planted_memoriser(images: np.ndarray, n: int | None = None, *, noise: float = 0.02, seed: int = 0) -> np.ndarray:
    """A known copier to check an audit with: `n` training images (each used in turn, shuffled) with
    Gaussian noise, in turn as is, mirrored left-right, mirrored up-down, or shifted by up to 2 pixels
    (edges replicated). `images` are 2D, ``(N, C, H, W)`` in [0, 1]."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(np.resize(np.arange(len(images)), len(images) if n is None else n))
    out = []
    for k, index in enumerate(order):
        image = images[index]
        if k % 4 == 1:
            image = image[..., ::-1]
        elif k % 4 == 2:
            image = image[..., ::-1, :]
        elif k % 4 == 3:
            dy, dx = rng.integers(-2, 3, size=2)
            padded = np.pad(image, ((0, 0), (2, 2), (2, 2)), mode="edge")
            image = padded[:, 2 + dy : 2 + dy + image.shape[1], 2 + dx : 2 + dx + image.shape[2]]
        out.append(image + noise * rng.standard_normal(image.shape))
    return np.clip(np.stack(out), 0, 1).astype(np.float32)


def distance_ratio(to_train: np.ndarray, to_holdout: np.ndarray) -> np.ndarray:
    """Train/held-out distance ratio (1 when both are 0: an image equal to both is not specific to train)."""
    return np.where(to_holdout > 0, to_train / np.maximum(to_holdout, 1e-12), np.where(to_train > 0, np.inf, 1.0))
