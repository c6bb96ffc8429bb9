"""A small deterministic stand-in for `genrad.models.Generator`, for synthesis tests.

Class k is a disc of brightness (k + 1) / (K + 1) whose radius grows with the first covariate, plus
noise from the caller's `torch.Generator`: cheap, seed-deterministic, and label/covariate dependent.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence

import numpy as np
import torch


class ToyGenerator:
    def __init__(
        self,
        num_classes: int = 2,
        image_shape: Sequence[int] = (1, 28, 28),
        covariates: Sequence[str] = (),
        class_counts: Sequence[int] | None = (147, 399),
        delay: float = 0.0,
    ) -> None:
        self.num_classes = num_classes
        self.image_shape = tuple(image_shape)
        self.covariates = tuple(covariates)
        if class_counts is not None:
            self.class_counts_ = list(class_counts)
        self.delay = delay  # seconds per call, to make a run long enough to interrupt
        self.calls = 0

    @property
    def config(self) -> dict:
        return {"num_classes": self.num_classes, "image_shape": list(self.image_shape), "covariates": list(self.covariates)}

    def model_hash(self) -> str:
        return hashlib.sha256(repr(self.config).encode()).hexdigest()

    def sample(self, n, *, labels=None, covariates=None, generator=None) -> torch.Tensor:
        self.calls += 1
        time.sleep(self.delay)
        labels = torch.zeros(n, dtype=torch.int64) if labels is None else torch.as_tensor(labels)
        spatial = self.image_shape[1:]
        grid = torch.stack(torch.meshgrid(*[torch.linspace(-1, 1, s) for s in spatial], indexing="ij"))
        radius = torch.full((n,), 0.5)
        if self.covariates:
            values = torch.as_tensor(np.asarray(covariates, dtype=np.float32))
            radius = 0.2 + 0.05 * values[:, 0]
        inside = (grid.pow(2).sum(0)[None] < radius.view(-1, *[1] * len(spatial)) ** 2).float()
        level = (labels.float() + 1) / (self.num_classes + 1)
        images = inside * level.view(-1, *[1] * len(spatial))
        noise = 0.1 * torch.randn((n, *self.image_shape), generator=generator)
        return (images[:, None].expand(-1, self.image_shape[0], *spatial) + noise).clamp(0, 1)
