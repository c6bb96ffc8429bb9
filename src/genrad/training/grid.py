"""A small PNG grid of samples (rows of `columns` images); 3D volumes show their middle slice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from genrad.provenance import atomic_path


def save_grid(images: torch.Tensor, path: str | Path, *, columns: int = 8, padding: int = 2) -> Path:
    """Write images in ``[0, 1]`` shaped ``(N, C, H, W)`` or ``(N, C, D, H, W)`` as one 8-bit PNG."""
    array = images.detach().cpu().float().numpy()
    if array.ndim == 5:
        array = array[:, :, array.shape[2] // 2]
    array = array if array.shape[1] == 3 else array[:, :1]
    n, channels, height, width = array.shape
    rows = max(1, -(-n // columns))
    canvas = np.ones((channels, rows * (height + padding) + padding, columns * (width + padding) + padding), np.float32)
    for index, image in enumerate(array):
        top = padding + (index // columns) * (height + padding)
        left = padding + (index % columns) * (width + padding)
        canvas[:, top : top + height, left : left + width] = image
    pixels = np.rint(np.clip(canvas, 0.0, 1.0) * 255).astype(np.uint8)
    picture = Image.fromarray(pixels[0] if channels == 1 else np.moveaxis(pixels, 0, -1))
    with atomic_path(path) as temp:
        picture.save(temp, format="PNG")
    return Path(path)
