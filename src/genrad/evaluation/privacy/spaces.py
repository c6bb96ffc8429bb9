"""The spaces in which the privacy audit measures distances: pixels (NCC over flips and shifts), a contrastive
embedding, radiomic features (see `genrad.evaluation.privacy`)."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from genrad.errors import InputError
from genrad.evaluation.embedding import ContrastiveEmbedding

FEATURE_SPACES = ("embedding", "radiomics")


class Space(Protocol):
    """A space to compare images in: references embed as ``(N, D)``, queries as variants ``(N, V, D)``."""

    name: str

    def fit(self, train: torch.Tensor) -> Space: ...

    def references(self, images: torch.Tensor) -> torch.Tensor: ...

    def queries(self, images: torch.Tensor) -> torch.Tensor: ...

    def describe(self, variant: int) -> str: ...


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


@dataclass(eq=False)
class PixelSpace:
    """Images as zero-mean unit-norm vectors; queries in every mirror flip and shift of <= max_shift.

    Images are Gaussian-smoothed (standard deviation `smooth` pixels at working resolution, reflected
    borders; 0 turns it off). References are cropped by `max_shift` on every side; query variants are
    same-size windows displaced by up to `max_shift` pixels, so a query-reference inner product is
    their NCC at that displacement.
    """

    name = "pixel"

    max_shift: int = 2
    flip: bool = True
    max_side: int = 64
    smooth: float = 1.0

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
        if train.shape[1] not in (1, 3) or (train.shape[1] == 3 and train.ndim != 4):
            raise InputError(
                "grey or RGB images for the radiomics space (colour is read as its luminance)",
                f"{train.shape[1]} channels",
                "drop 'radiomics' from the audit's features for these images",
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


def ncc_to_distance(ncc: float) -> float:
    return math.sqrt(max(0.0, 2.0 - 2.0 * ncc))


def as_images(data: Any, name: str, like: torch.Tensor | None = None) -> torch.Tensor:
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
