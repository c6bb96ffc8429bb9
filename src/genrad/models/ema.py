"""Exponential moving average of network weights (Polyak averaging; Karras et al. 2018, sec. 5)."""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """A frozen copy of `network` whose weights follow ``w_ema <- d * w_ema + (1 - d) * w``.

    The decay warms up as ``d_t = min(decay, (1 + t) / (10 + t))`` so that early, poor weights are
    forgotten quickly (the schedule of TensorFlow's ExponentialMovingAverage with num_updates).
    Buffers (e.g. spectral-norm vectors) are copied as is.
    """

    def __init__(self, network: nn.Module, decay: float) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA expects 0 <= decay < 1, got {decay}")
        self.decay = decay
        self.network = copy.deepcopy(network).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, network: nn.Module, step: int) -> None:
        """Move the average towards `network`'s current weights (`step` counts updates from 0)."""
        decay = min(self.decay, (1.0 + step) / (10.0 + step))
        for average, current in zip(self.network.parameters(), network.parameters(), strict=True):
            average.lerp_(current.detach(), 1.0 - decay)
        for average, current in zip(self.network.buffers(), network.buffers(), strict=True):
            average.copy_(current)
