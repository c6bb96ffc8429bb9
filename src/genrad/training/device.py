"""Where genrad trains and samples: CUDA when present, else CPU."""

from __future__ import annotations

import torch


def default_device() -> torch.device:
    """The first CUDA device when one is available, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def native_bf16(device: torch.device) -> bool:
    """Whether `device` computes bfloat16 natively: CUDA, or a CPU with AVX512-BF16 or AMX.

    Elsewhere autocast emulates bfloat16; on an AVX2-only CPU a diffusion model then trained ~12x fewer
    steps per CPU-minute than in float32 (112 against 1324-1376; docs/benchmarks.md).
    """
    if device.type != "cpu":
        return True
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
