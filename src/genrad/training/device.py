"""Where genrad trains and samples: CUDA when present, else CPU."""

from __future__ import annotations

import torch


def default_device() -> torch.device:
    """The first CUDA device when one is available, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
