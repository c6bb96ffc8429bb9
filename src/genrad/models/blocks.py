"""Building blocks shared by the families: default sizes, MONAI conv blocks, condition vectors."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from monai.networks.blocks import Convolution
from torch import nn


def default_channels(size: int, spatial_dims: int) -> tuple[int, ...]:
    """Channels per level so that the coarsest feature map is about 4 pixels wide.

    28/32 px -> (32, 64, 128, 256); 64 px -> (32, 64, 128, 256, 256); 128 px -> 6 levels capped at 256;
    3D volumes use half the width (16 ... 128) to fit CPU memory.
    """
    levels = max(2, math.ceil(math.log2(max(size, 8))) - 2)
    base, cap = (32, 256) if spatial_dims == 2 else (16, 128)
    return tuple(min(base * 2**i, cap) for i in range(levels + 1))


def groups_for(channels: int) -> int:
    """GroupNorm groups: 8 when it divides `channels`, else the largest divisor below 8."""
    return next(g for g in (8, 4, 2, 1) if channels % g == 0)


def conv_block(spatial_dims: int, in_channels: int, out_channels: int, *, strides: int = 1, act: str | tuple = "SWISH") -> Convolution:
    """MONAI ``Convolution``: 3x3 conv (stride `strides`) -> GroupNorm -> activation (SiLU by default) (Opacus-compatible layers)."""
    return Convolution(
        spatial_dims,
        in_channels,
        out_channels,
        strides=strides,
        kernel_size=3,
        act=act,
        norm=("group", {"num_groups": groups_for(out_channels)}),
    )


def output_conv(spatial_dims: int, in_channels: int, out_channels: int) -> Convolution:
    """A plain 3x3 convolution to image channels."""
    return Convolution(spatial_dims, in_channels, out_channels, kernel_size=3, conv_only=True)


def condition_vector(labels: torch.Tensor, covariates: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``[one_hot(label), standardised covariates]``, float ``(B, num_classes + k)``."""
    return torch.cat([F.one_hot(labels, num_classes).to(covariates.dtype), covariates], dim=1)


def broadcast(vector: torch.Tensor, spatial: tuple[int, ...] | torch.Size) -> torch.Tensor:
    """Repeat a ``(B, k)`` vector over the spatial axes: ``(B, k, *spatial)``."""
    return vector.view(*vector.shape, *([1] * len(spatial))).expand(*vector.shape, *spatial)


class ConditionEmbedding(nn.Module):
    """``e(y) + W c``: a class embedding plus a linear map of the standardised covariates."""

    def __init__(self, num_embeddings: int, num_covariates: int, dim: int) -> None:
        super().__init__()
        self.classes = nn.Embedding(num_embeddings, dim)
        self.covariates = nn.Linear(num_covariates, dim, bias=False) if num_covariates else None

    def forward(self, condition: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        labels, covariates = condition
        embedding = self.classes(labels)
        return embedding if self.covariates is None else embedding + self.covariates(covariates)
