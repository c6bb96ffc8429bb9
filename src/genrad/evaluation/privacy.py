"""Privacy audit of a synthetic set: near-copies of training images, DCR, membership inference.

For every synthetic image the audit finds its closest training image in several spaces and compares
that distance with the same statistic for real held-out images, which the model never saw:

- ``pixel`` (always; the primary space): normalised cross-correlation (NCC) of the images, maximised
  over mirror flips and shifts of up to ``max_shift`` pixels, so flipped or shifted copies are caught.
  Every image (synthetic, training, held-out) is first smoothed with the same Gaussian (``smooth``
  pixels): without it, a blurry synthetic image correlates better with a textured training image than
  any textured held-out image does, and smooth generators would be called copiers.
  NCC is the inner product of zero-mean, unit-norm images, so ``sqrt(2 - 2 NCC)`` is their Euclidean
  distance, the pixel-space distance used below;
- ``embedding``: Euclidean distance between unit vectors of `ContrastiveEmbedding`, an encoder genrad
  trains on the training images (self-supervised, no downloaded weights), minimised over mirror flips;
- ``radiomics``: Euclidean distance between radiomic features (`genrad.radiomics.extract`, feature
  set ``"fast"``) z-scored with the training mean and standard deviation.

Statistics (per space; the top-level figures are the pixel space's):

- DCR, distance to closest record (Park et al. 2018, "Data synthesis based on generative adversarial
  networks", PVLDB 11(10)): median over synthetic images of the distance to the nearest training
  image; ``dcr_ratio`` divides it by the median held-out-to-train DCR. Below 1, synthetic images are
  closer to the training set than new patients are: a sign of memorisation.
- Near-copy flag (`near_copies`): a synthetic image is flagged when (a) it is closer to a training
  image than all but a fraction ``1 - quantile`` of held-out images are (`near_copy_threshold`), and
  (b) it is specific to the training set: its train/held-out distance ratio ``d(x, train) /
  d(x, held-out)`` is below all but ``1 - specificity_quantile`` of the same ratio for held-out images
  (leave-one-out among them), the train-versus-holdout comparison of Platzer & Reutterer 2021
  ("Holdout-based empirical assessment of mixed-type synthetic data", Front. Big Data 4). (a) sets
  the false-positive rate; (b) keeps smooth or generic images, which lie as close to unseen patients
  as to training ones, from being called copies. (b) is a looser screen (default 0.95): held-out
  images with a near-relative in the training set have low ratios themselves. Near-copy search as in
  Somepalli et al. 2023, "Diffusion art or digital forgery?" (CVPR) and, on medical images, Akbar et
  al. 2024, "Beware of diffusion models for synthesizing medical images" (MIDL).
- Membership inference: the distance-based attack of Chen et al. 2020 ("GAN-Leaks", CCS): a record is
  called a member when a synthetic image lies close to it; ``mia_auc`` is the attack's ROC AUC on
  training records (members) versus held-out records (non-members). 0.5 means no leak.

Held-out images that are duplicates of a training image (pixel NCC >= ``duplicate_ncc``; BreastMNIST's
splits share many) are not unseen patients: they are reported as split leakage and left out of the
calibration, the held-out DCR and the non-members. Confidence intervals are seeded percentile
bootstraps (Efron & Tibshirani 1993), resampling each group of images independently.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from genrad.errors import InputError, NotFittedError
from genrad.evaluation.embedding import ContrastiveEmbedding
from genrad.evaluation.stats import percentile_interval, rank_auc
from genrad.provenance import atomic_path, hash_arrays, versions

FEATURE_SPACES = ("embedding", "radiomics")
_MAX_ELEMENTS = 1 << 24  # bound on the floats held by one chunk of distance computations


class Space(Protocol):
    """A space to compare images in: references embed as ``(N, D)``, queries as variants ``(N, V, D)``."""

    name: str

    def fit(self, train: torch.Tensor) -> Space: ...

    def references(self, images: torch.Tensor) -> torch.Tensor: ...

    def queries(self, images: torch.Tensor) -> torch.Tensor: ...

    def describe(self, variant: int) -> str: ...


# --- functional kernels ---------------------------------------------------------------------------


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


# --- spaces ---------------------------------------------------------------------------------------
# A space embeds reference images as vectors (N, D) and query images as variants (N, V, D); the
# distance of a query to a reference is minimised over its variants (`nearest`).


def working_resolution(images: torch.Tensor, max_side: int) -> torch.Tensor:
    """Area-downsample images whose largest side exceeds `max_side` (keeps the aspect ratio)."""
    spatial = images.shape[2:]
    if max(spatial) <= max_side:
        return images
    size = [max(1, round(n * max_side / max(spatial))) for n in spatial]
    return F.interpolate(images, size=size, mode="area")


def mirror_axes(spatial_dims: int) -> list[tuple[int, ...]]:
    """Every subset of the spatial axes, the mirror images tried; ``()`` is the image as is."""
    return [axes for r in range(spatial_dims + 1) for axes in itertools.combinations(range(spatial_dims), r)]


def _mirrored(images: torch.Tensor, axes: tuple[int, ...]) -> torch.Tensor:
    return images.flip([2 + a for a in axes]) if axes else images


def _describe(axes: tuple[int, ...], offset: tuple[int, ...], spatial_dims: int) -> str:
    names = "zyx"[-spatial_dims:]
    parts = [f"flip {''.join(names[a] for a in axes)}"] if axes else []
    if any(offset):
        parts.append(f"shift {offset}")
    return ", ".join(parts) or "as is"


def _standardise(vectors: torch.Tensor) -> torch.Tensor:
    """Zero mean, unit norm along the last axis (constant vectors become zero)."""
    centred = vectors - vectors.mean(dim=-1, keepdim=True)
    return centred / centred.norm(dim=-1, keepdim=True).clamp_min(1e-8)


class PixelSpace:
    """Images as zero-mean unit-norm vectors; queries in every mirror flip and shift of <= max_shift.

    Images are Gaussian-smoothed (standard deviation `smooth` pixels at working resolution, reflected
    borders; 0 turns it off). References are cropped by `max_shift` on every side; query variants are
    same-size windows displaced by up to `max_shift` pixels, so a query-reference inner product is
    their NCC at that displacement.
    """

    name = "pixel"

    def __init__(self, max_shift: int = 2, flip: bool = True, max_side: int = 64, smooth: float = 1.0) -> None:
        self.max_shift = max_shift
        self.flip = flip
        self.max_side = max_side
        self.smooth = smooth

    def fit(self, train: torch.Tensor) -> PixelSpace:
        spatial = working_resolution(train[:1], self.max_side).shape[2:]
        if self.max_shift < 0 or 4 * self.max_shift >= min(spatial):
            raise InputError(
                f"0 <= max_shift < {math.ceil(min(spatial) / 4)} (a quarter of the image side)",
                str(self.max_shift),
                "choose a smaller max_shift",
                source="PixelSpace",
            )
        shifts = itertools.product(range(-self.max_shift, self.max_shift + 1), repeat=len(spatial))
        self.variants_ = list(itertools.product(mirror_axes(len(spatial) if self.flip else 0), shifts))
        self.spatial_dims_ = len(spatial)
        return self

    def references(self, images: torch.Tensor) -> torch.Tensor:
        small = self._prepare(images)
        window = tuple(slice(self.max_shift, n - self.max_shift) for n in small.shape[2:])
        return _standardise(small[(..., *window)].flatten(1))

    def queries(self, images: torch.Tensor) -> torch.Tensor:
        small, s = self._prepare(images), self.max_shift
        views = []
        for axes, offset in self.variants_:
            window = tuple(slice(s + o, n - s + o) for o, n in zip(offset, small.shape[2:]))
            views.append(_mirrored(small, axes)[(..., *window)].flatten(1))
        return _standardise(torch.stack(views, dim=1))

    def describe(self, variant: int) -> str:
        """The variant that matched, e.g. ``"flip x, shift (1, 0)"``: the synthetic image, mirrored in x,
        is the training image shifted by 1 pixel along y."""
        return _describe(*self.variants_[variant], self.spatial_dims_)

    def _prepare(self, images: torch.Tensor) -> torch.Tensor:
        from monai.networks.layers.convutils import gaussian_1d
        from monai.networks.layers.simplelayers import separable_filtering

        small = working_resolution(images, self.max_side)
        if not self.smooth:
            return small
        kernel = gaussian_1d(torch.tensor(float(self.smooth)), truncated=4.0)
        return separable_filtering(small, [kernel] * (small.ndim - 2), mode="reflect")


class EmbeddingSpace:
    """Unit vectors of a `ContrastiveEmbedding` fitted on the training images; queries in every mirror flip."""

    name = "embedding"

    def __init__(self, embedding: ContrastiveEmbedding, flip: bool = True, max_side: int = 64) -> None:
        self.embedding = embedding
        self.flip = flip
        self.max_side = max_side

    def fit(self, train: torch.Tensor) -> EmbeddingSpace:
        self.embedding.fit(working_resolution(train, self.max_side))
        self.spatial_dims_ = train.ndim - 2
        self.mirrors_ = mirror_axes(self.spatial_dims_ if self.flip else 0)
        return self

    def references(self, images: torch.Tensor) -> torch.Tensor:
        return self.embedding.transform(working_resolution(images, self.max_side))

    def queries(self, images: torch.Tensor) -> torch.Tensor:
        return torch.stack([self.references(_mirrored(images, axes)) for axes in self.mirrors_], dim=1)

    def describe(self, variant: int) -> str:
        return _describe(self.mirrors_[variant], (0,) * self.spatial_dims_, self.spatial_dims_)


class RadiomicsSpace:
    """Radiomic features (`genrad.radiomics.extract`), z-scored with the training mean and std."""

    name = "radiomics"

    def __init__(self, feature_set: str = "fast", workers: int = 1) -> None:
        self.feature_set = feature_set
        self.workers = workers

    def fit(self, train: torch.Tensor) -> RadiomicsSpace:
        if train.shape[1] != 1:
            raise InputError(
                "single-channel images for the radiomics space",
                f"{train.shape[1]} channels",
                "drop 'radiomics' from the audit's features for multi-channel images",
                source="RadiomicsSpace",
            )
        features = self._extract(train)
        spread = features.std(axis=0)
        self.columns_ = features.columns[np.isfinite(features).all(axis=0) & (spread > 0)]
        self.mean_ = features[self.columns_].mean(axis=0)
        self.std_ = spread[self.columns_]
        return self

    def references(self, images: torch.Tensor) -> torch.Tensor:
        scaled = (self._extract(images)[self.columns_] - self.mean_) / self.std_
        return torch.as_tensor(np.nan_to_num(scaled.to_numpy(np.float64)), dtype=torch.float32)

    def queries(self, images: torch.Tensor) -> torch.Tensor:
        return self.references(images)[:, None]

    def describe(self, variant: int) -> str:
        return "as is"

    def _extract(self, images: torch.Tensor) -> pd.DataFrame:
        from genrad.radiomics import extract

        table = extract(
            images.numpy(), feature_set=self.feature_set, engine="fast", workers=self.workers, progress=False
        )
        return table.select_dtypes("number").astype(np.float64)


# --- streaming audit ------------------------------------------------------------------------------


class PrivacyAudit:
    """Streaming privacy audit: `fit(train, holdout)`, `update(synthetic)` chunk by chunk, `compute()`.

    Memory grows by a few numbers per synthetic image (no features are kept), so any number of
    synthetic images can be streamed. See the module docstring for the statistics.

    Args:
        features: feature spaces audited beside the pixel space: ``"embedding"``, ``"radiomics"``.
        quantile: calibration level of the near-copy flag (at most ``1 - quantile`` of unseen held-out
            images are flagged).
        specificity_quantile: calibration level of the train/held-out distance-ratio screen.
        duplicate_ncc: held-out images at least this correlated with a training image are duplicates.
        max_shift: largest shift (pixels, at working resolution) tried by the pixel space. The pixel
            space tries ``2**d (2 max_shift + 1)**d`` variants per image (d spatial axes): for 3D
            volumes prefer ``max_shift=1`` and a smaller ``max_side`` (e.g. 16).
        flip: also try mirror images (every combination of axes).
        max_side: images whose largest side exceeds this are area-downsampled for pixel / embedding.
        smooth: Gaussian standard deviation (pixels at working resolution) applied to every image before
            the pixel-space NCC; 0 compares raw pixels.
        embedding: the encoder of the embedding space (default: `ContrastiveEmbedding(seed=seed)`).
        top_k: closest synthetic/training pairs kept for `plot_pairs`.
        n_bootstrap, confidence: bootstrap resamples and interval level.
        seed: seeds the default embedding and the bootstrap.
    """

    def __init__(
        self,
        features: Sequence[str] = ("embedding", "radiomics"),
        *,
        quantile: float = 0.99,
        specificity_quantile: float = 0.95,
        duplicate_ncc: float = 0.97,
        max_shift: int = 2,
        flip: bool = True,
        max_side: int = 64,
        smooth: float = 1.0,
        embedding: ContrastiveEmbedding | None = None,
        radiomics_feature_set: str = "fast",
        top_k: int = 16,
        n_bootstrap: int = 1000,
        confidence: float = 0.95,
        seed: int = 0,
    ) -> None:
        self.quantile = quantile
        self.specificity_quantile = specificity_quantile
        self.duplicate_ncc = duplicate_ncc
        self.max_shift = max_shift
        self.flip = flip
        self.max_side = max_side
        self.smooth = smooth
        self.embedding = embedding
        self.radiomics_feature_set = radiomics_feature_set
        self.top_k = top_k
        self.n_bootstrap = n_bootstrap
        self.confidence = confidence
        self.seed = seed
        self.features = tuple(features)

    @property
    def config(self) -> dict[str, Any]:
        """The audit's settings, as recorded in its output."""
        embedding = self.embedding or ContrastiveEmbedding(seed=self.seed)
        return {
            "features": list(self.features),
            "quantile": self.quantile,
            "specificity_quantile": self.specificity_quantile,
            "duplicate_ncc": self.duplicate_ncc,
            "max_shift": self.max_shift,
            "flip": self.flip,
            "max_side": self.max_side,
            "smooth": self.smooth,
            "embedding": embedding.config if "embedding" in self.features else None,
            "radiomics_feature_set": self.radiomics_feature_set if "radiomics" in self.features else None,
            "top_k": self.top_k,
            "n_bootstrap": self.n_bootstrap,
            "confidence": self.confidence,
            "seed": self.seed,
        }

    def fit(self, train: Any, holdout: Any) -> PrivacyAudit:
        """Fit the spaces on `train`; find held-out duplicates; calibrate thresholds on the rest.

        `train` and `holdout` are `genrad.data.Split`s or float arrays ``(N, C, *spatial)`` in [0, 1].
        """
        self._check_options()
        train_images = _as_images(train, "train")
        holdout_images = _as_images(holdout, "holdout", like=train_images)
        self.spaces_ = [space.fit(train_images) for space in self._make_spaces()]
        self.train_references_ = [space.references(train_images) for space in self.spaces_]
        holdout_distance = np.stack(
            [search(s, holdout_images, [r])[0].distance for s, r in zip(self.spaces_, self.train_references_)], axis=1
        )
        self.duplicates_ = holdout_distance[:, 0] <= _ncc_to_distance(self.duplicate_ncc)
        if self.duplicates_.all():
            raise InputError(
                "held-out images that are not copies of training images",
                f"all {len(holdout_images)} held-out images have pixel NCC >= {self.duplicate_ncc} with a training image",
                "pass a held-out split disjoint from the training split",
                source="holdout",
            )
        unseen = holdout_images[torch.as_tensor(~self.duplicates_)]
        if len(unseen) < 2:
            raise InputError(
                "at least 2 held-out images that are not copies of training images",
                f"{len(unseen)} of {len(holdout_images)}",
                "pass a larger held-out split disjoint from the training split",
                source="holdout",
            )
        self.holdout_references_ = [space.references(unseen) for space in self.spaces_]
        self.holdout_distance_ = holdout_distance[~self.duplicates_]
        itself = np.arange(len(unseen))
        to_other_holdout = np.stack(
            [search(s, unseen, [r], exclude=itself)[0].distance for s, r in zip(self.spaces_, self.holdout_references_)],
            axis=1,
        )
        self.holdout_ratio_ = _ratio(self.holdout_distance_, to_other_holdout)
        self.thresholds_ = np.array([near_copy_threshold(d, self.quantile) for d in self.holdout_distance_.T])
        self.ratio_thresholds_ = np.array([near_copy_threshold(r, self.specificity_quantile) for r in self.holdout_ratio_.T])
        self.train_images_ = train_images
        self.data_hashes_ = {"train": hash_arrays(train_images.numpy()), "holdout": hash_arrays(holdout_images.numpy())}
        self.reset()
        return self

    def reset(self) -> None:
        """Forget the synthetic images seen so far (the fitted reference is kept)."""
        self._check_fitted()
        self._distance: list[np.ndarray] = []
        self._ratio: list[np.ndarray] = []
        self._index: list[np.ndarray] = []
        self._variant: list[np.ndarray] = []
        self._member = np.full((len(self.spaces_), len(self.train_images_)), np.inf)
        self._nonmember = np.full((len(self.spaces_), len(self.holdout_distance_)), np.inf)
        self._pairs: list[tuple[float, int, np.ndarray, int, int, bool]] = []
        self._digest = hashlib.sha256()
        self._seen = 0

    def update(self, synthetic: Any) -> None:
        """Add a chunk of synthetic images (array ``(B, C, *spatial)`` in [0, 1], Tensor or Split)."""
        self._check_fitted()
        images = _as_images(synthetic, "synthetic", like=self.train_images_)
        self._digest.update(images.numpy().tobytes())
        to_train, to_holdout = [], []
        for space, train_ref, holdout_ref in zip(self.spaces_, self.train_references_, self.holdout_references_):
            found_train, found_holdout = search(space, images, [train_ref, holdout_ref])
            to_train.append(found_train)
            to_holdout.append(found_holdout)
        distance = np.stack([n.distance for n in to_train], axis=1)
        ratio = _ratio(distance, np.stack([n.distance for n in to_holdout], axis=1))
        self._distance.append(distance)
        self._ratio.append(ratio)
        self._index.append(np.stack([n.index for n in to_train], axis=1))
        self._variant.append(to_train[0].variant)
        self._member = np.minimum(self._member, np.stack([n.reference_distance for n in to_train]))
        self._nonmember = np.minimum(self._nonmember, np.stack([n.reference_distance for n in to_holdout]))
        pixel = to_train[0]
        flagged = self._flags(distance[:, 0], ratio[:, 0], 0)
        for i in np.argsort(pixel.distance, kind="stable")[: self.top_k]:
            image = images[i].numpy()
            self._pairs.append(
                (float(pixel.distance[i]), self._seen + int(i), image, int(pixel.index[i]), int(pixel.variant[i]),
                 bool(flagged[i]))
            )
        self._pairs = sorted(self._pairs, key=lambda pair: (pair[0], pair[1]))[: self.top_k]
        self._seen += len(images)

    def compute(self) -> dict[str, Any]:
        """The audit as a JSON-ready dict: top-level ``near_copy_rate``, ``dcr``, ``dcr_ratio`` and
        ``mia_auc`` (pixel space, each ``{"value", "ci", ...}``), per-space figures and provenance."""
        self._check_fitted()
        if not self._seen:
            raise InputError("at least one synthetic image", "none", "call update(synthetic) before compute()", source="PrivacyAudit")
        synthetic, ratio = np.concatenate(self._distance), np.concatenate(self._ratio)
        spaces = {space.name: self._space_summary(k, synthetic[:, k], ratio[:, k]) for k, space in enumerate(self.spaces_)}
        pixel = spaces["pixel"]
        return {
            "near_copy_rate": pixel["near_copy_rate"],
            "dcr": pixel["dcr"],
            "dcr_ratio": pixel["dcr_ratio"],
            "mia_auc": pixel["mia_auc"],
            "spaces": spaces,
            "holdout_duplicates": {
                "count": int(self.duplicates_.sum()),
                "rate": float(self.duplicates_.mean()),
                "ncc": self.duplicate_ncc,
                "note": "held-out images this close to a training image are left out of calibration and non-members",
            },
            "n": {
                "train": len(self.train_images_),
                "holdout": len(self.duplicates_),
                "holdout_unseen": len(self.holdout_distance_),
                "synthetic": self._seen,
            },
            "config": self.config,
            "provenance": {
                "versions": versions(),
                "seed": self.seed,
                "data_hashes": {**self.data_hashes_, "synthetic": self._digest.hexdigest()},
            },
        }

    def per_sample(self) -> pd.DataFrame:
        """One row per synthetic image: near-copy flag, NCC, and per space its DCR and nearest training index."""
        self._check_fitted()
        distance, ratio, index = np.concatenate(self._distance), np.concatenate(self._ratio), np.concatenate(self._index)
        table: dict[str, np.ndarray] = {
            "near_copy": self._flags(distance[:, 0], ratio[:, 0], 0),
            "ncc": 1 - distance[:, 0] ** 2 / 2,
            "train_holdout_ratio": ratio[:, 0],
        }
        for k, space in enumerate(self.spaces_):
            table[f"dcr_{space.name}"] = distance[:, k]
            table[f"nearest_{space.name}"] = index[:, k]
        return pd.DataFrame(table)

    def plot_pairs(self, path: str | Path) -> Path:
        """Write the `top_k` closest synthetic/training pairs (pixel space) side by side as a PNG grid."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        self._check_fitted()
        per_row = 4
        rows = max(1, math.ceil(len(self._pairs) / per_row))
        figure = Figure(figsize=(2 * per_row * 1.5, rows * 1.9))
        FigureCanvasAgg(figure)
        axes = figure.subplots(rows, 2 * per_row, squeeze=False)
        for ax in axes.flat:
            ax.set_axis_off()
        threshold = 1 - self.thresholds_[0] ** 2 / 2
        for k, (distance, synthetic_id, image, train_id, variant, flagged) in enumerate(self._pairs):
            left, right = axes[k // per_row, 2 * (k % per_row)], axes[k // per_row, 2 * (k % per_row) + 1]
            left.imshow(_display(image), cmap="gray", vmin=0, vmax=1)
            right.imshow(_display(self.train_images_[train_id].numpy()), cmap="gray", vmin=0, vmax=1)
            flag = " near-copy" if flagged else ""
            left.set_title(f"synthetic {synthetic_id}\nncc {1 - distance**2 / 2:.3f}{flag}", fontsize=7)
            right.set_title(f"train {train_id}\n{self.spaces_[0].describe(variant)}", fontsize=7)
        figure.suptitle(
            f"Closest synthetic (left) / training (right) pairs; near-copy when ncc > {threshold:.3f}"
            f" and train/held-out distance ratio < {self.ratio_thresholds_[0]:.3f}",
            fontsize=9,
        )
        figure.tight_layout()
        path = Path(path)
        with atomic_path(path) as temp:
            figure.savefig(temp, format="png", dpi=110)
        return path

    def _flags(self, distance: np.ndarray, ratio: np.ndarray, k: int) -> np.ndarray:
        synthetic = np.stack([distance, ratio], axis=1)
        return near_copies(synthetic, self._holdout_pairs(k), self.quantile, self.specificity_quantile)

    def _holdout_pairs(self, k: int) -> np.ndarray:
        """``(Nh, 2)``: each unseen held-out image's distance to train and its train/held-out ratio (space k)."""
        return np.stack([self.holdout_distance_[:, k], self.holdout_ratio_[:, k]], axis=1)

    def _space_summary(self, k: int, synthetic: np.ndarray, ratio: np.ndarray) -> dict[str, Any]:
        holdout, quantile = self.holdout_distance_[:, k], self.quantile
        members, nonmembers = -self._member[k], -self._nonmember[k]
        threshold = float(self.thresholds_[k])
        flags = self._flags(synthetic, ratio, k)
        paired_synthetic, paired_holdout = np.stack([synthetic, ratio], axis=1), self._holdout_pairs(k)
        summary: dict[str, Any] = {
            "near_copy_rate": {
                "value": float(flags.mean()),
                "ci": self._ci(
                    lambda s, h: near_copy_rate(s, h, quantile, self.specificity_quantile), paired_synthetic, paired_holdout
                ),
                "count": int(flags.sum()),
                "threshold": threshold,
                "ratio_threshold": float(self.ratio_thresholds_[k]),
                "close_rate": float((synthetic < threshold).mean()),
                "quantile": self.quantile,
                "specificity_quantile": self.specificity_quantile,
            },
            "dcr": {"value": float(np.median(synthetic)), "ci": self._ci(np.median, synthetic), "holdout": float(np.median(holdout))},
            "dcr_ratio": {
                "value": float(np.median(synthetic) / np.median(holdout)),
                "ci": self._ci(lambda s, h: float(np.median(s) / np.median(h)), synthetic, holdout),
            },
            "mia_auc": {
                "value": membership_auc(members, nonmembers),
                "ci": self._ci(membership_auc, members, nonmembers),
                "attack": "distance to the closest synthetic image (Chen et al. 2020)",
                "members": len(members),
                "non_members": len(nonmembers),
            },
        }
        if self.spaces_[k].name == "pixel":
            summary["near_copy_rate"]["threshold_ncc"] = 1 - threshold**2 / 2
        return summary

    def _ci(self, statistic: Callable[..., float], *samples: np.ndarray) -> list[float]:
        replicates = bootstrap_replicates(statistic, *samples, n_resamples=self.n_bootstrap, seed=self.seed)
        return percentile_interval(replicates, self.confidence)

    def _make_spaces(self) -> list[Space]:
        spaces: list[Space] = [PixelSpace(self.max_shift, self.flip, self.max_side, self.smooth)]
        if "embedding" in self.features:
            spaces.append(EmbeddingSpace(self.embedding or ContrastiveEmbedding(seed=self.seed), self.flip, self.max_side))
        if "radiomics" in self.features:
            spaces.append(RadiomicsSpace(self.radiomics_feature_set))
        return spaces

    def _check_options(self) -> None:
        unknown = sorted(set(self.features) - set(FEATURE_SPACES))
        if unknown:
            raise InputError(
                f"features among {FEATURE_SPACES}", repr(unknown), "choose listed feature spaces (or none)", source="PrivacyAudit"
            )
        if not (0.5 <= self.quantile < 1 and 0.5 <= self.specificity_quantile < 1):
            raise InputError(
                "0.5 <= quantile < 1 and 0.5 <= specificity_quantile < 1",
                f"quantile={self.quantile}, specificity_quantile={self.specificity_quantile}",
                "use e.g. 0.99 and 0.95",
                source="PrivacyAudit",
                argument="quantile" if not 0.5 <= self.quantile < 1 else "specificity_quantile",
            )
        if not 0 < self.duplicate_ncc <= 1:
            raise InputError("0 < duplicate_ncc <= 1", str(self.duplicate_ncc), "use e.g. 0.97", source="PrivacyAudit")
        if self.smooth < 0:
            raise InputError(
                "smooth >= 0 (pixels)", str(self.smooth), "use e.g. 1.0, or 0 for raw pixels", source="PrivacyAudit"
            )
        if self.n_bootstrap < 1 or not 0 < self.confidence < 1 or self.top_k < 0:
            raise InputError(
                "n_bootstrap >= 1, 0 < confidence < 1 and top_k >= 0",
                f"n_bootstrap={self.n_bootstrap}, confidence={self.confidence}, top_k={self.top_k}",
                "pass valid settings (e.g. --bootstrap 1000)",
                source="PrivacyAudit",
            )

    def _check_fitted(self) -> None:
        if not hasattr(self, "spaces_"):
            raise NotFittedError(self)


def audit(train: Any, holdout: Any, synthetic: Any, *, chunk_size: int = 512, **options: Any) -> dict[str, Any]:
    """Privacy audit of `synthetic` against `train` (members) and `holdout` (non-members).

    Options are those of `PrivacyAudit`; returns `PrivacyAudit.compute()`.
    """
    privacy = PrivacyAudit(**options).fit(train, holdout)
    images = _as_images(synthetic, "synthetic", like=privacy.train_images_)
    for chunk in images.split(chunk_size):
        privacy.update(chunk)
    return privacy.compute()


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


def _ratio(to_train: np.ndarray, to_holdout: np.ndarray) -> np.ndarray:
    """Train/held-out distance ratio (1 when both are 0: an image equal to both is not specific to train)."""
    return np.where(to_holdout > 0, to_train / np.maximum(to_holdout, 1e-12), np.where(to_train > 0, np.inf, 1.0))


def _ncc_to_distance(ncc: float) -> float:
    return math.sqrt(max(0.0, 2.0 - 2.0 * ncc))


def _as_images(data: Any, name: str, like: torch.Tensor | None = None) -> torch.Tensor:
    """A float32 tensor ``(N, C, *spatial)`` from a Split, array or tensor; InputError otherwise."""
    images = torch.as_tensor(np.asarray(getattr(data, "images", data), dtype=np.float32))
    if images.ndim not in (4, 5) or len(images) == 0:
        raise InputError(
            "images shaped (N, C, H, W) or (N, C, D, H, W)",
            f"shape {tuple(images.shape)} for {name}",
            "pass a genrad Split or a channel-first array (add the channel axis with images[:, None])",
            source=name,
        )
    if like is not None and images.shape[1:] != like.shape[1:]:
        raise InputError(
            f"{name} images of shape {tuple(like.shape[1:])} like the training images",
            f"shape {tuple(images.shape[1:])}",
            "compare images of one size (resize with the data loader's size option)",
            source=name,
        )
    if not torch.isfinite(images).all():
        raise InputError("finite pixel values", f"NaN or inf pixels in {name}", "drop or repair those images", source=name)
    return images


def _display(image: np.ndarray) -> np.ndarray:
    """A 2D (or RGB) view of one channel-first image; 3D volumes show their middle slice."""
    if image.ndim == 4:
        image = image[:, image.shape[1] // 2]
    return np.moveaxis(image, 0, -1) if image.shape[0] == 3 else image[0]
