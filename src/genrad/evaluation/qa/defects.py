"""Synthetic-image defects ("hallucinations") injected into real images, to test per-sample QA.

Each defect mimics a failure seen in generated medical images:

- ``noise_burst``: a disc of strong white noise (an unstable denoising step, a GAN blow-up);
- ``blank_region``: a rectangle of constant intensity (mode dropout, in-painting holes);
- ``checkerboard``: a period-2 additive pattern (transposed-convolution artefact; Odena et al. 2016);
- ``grid``: bright lines every few pixels (patch-seam or upsampling grid artefacts);
- ``inversion``: inverted intensities (``1 - x``);
- ``duplicated_lesion``: the central region (where the lesion lies in these crops) copied elsewhere;
- ``cut_lesion``: the lesion cut by a straight edge, tissue from another part of the image beyond it.

Images are float ``(N, C, H, W)`` in ``[0, 1]`` (2D); each image gets its own random placement and
strength from a generator seeded with ``(seed, index)``; outputs are clipped to ``[0, 1]``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from genrad.errors import InputError

DefectFn = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def _disc(shape: tuple[int, int], centre: np.ndarray, radius: float) -> np.ndarray:
    rows, cols = np.ogrid[: shape[0], : shape[1]]
    return (rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 <= radius**2


def noise_burst(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    side = min(image.shape)
    radius = rng.uniform(0.12, 0.2) * side
    centre = rng.uniform(radius, np.array(image.shape) - radius)
    out = image.copy()
    region = _disc(image.shape, centre, radius)
    out[region] += rng.normal(0.0, rng.uniform(0.2, 0.3), int(region.sum()))
    return out


def blank_region(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    height, width = (rng.uniform(0.25, 0.4, 2) * np.array(image.shape)).astype(int)
    top, left = rng.integers(0, image.shape[0] - height), rng.integers(0, image.shape[1] - width)
    out = image.copy()
    out[top : top + height, left : left + width] = np.quantile(image, rng.uniform(0.1, 0.9))
    return out


def checkerboard(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    rows, cols = np.indices(image.shape)
    return image + rng.uniform(0.04, 0.08) * np.where((rows + cols) % 2 == 0, 1.0, -1.0)


def grid(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    period = int(rng.integers(4, 8))
    offset = rng.integers(0, period, 2)
    rows, cols = np.indices(image.shape)
    lines = ((rows - offset[0]) % period == 0) | ((cols - offset[1]) % period == 0)
    return image + rng.uniform(0.1, 0.2) * lines


def inversion(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return 1.0 - image


def _central_box(image: np.ndarray, rng: np.random.Generator) -> tuple[int, int, int]:
    """A square of 30-40 % of the side around the image centre (top, left, size)."""
    size = int(rng.uniform(0.3, 0.4) * min(image.shape))
    top, left = (image.shape[0] - size) // 2, (image.shape[1] - size) // 2
    return top, left, size


def duplicated_lesion(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    top, left, size = _central_box(image, rng)
    patch = image[top : top + size, left : left + size]
    corner = rng.integers(0, 4)
    row = 0 if corner < 2 else image.shape[0] - size
    col = 0 if corner % 2 == 0 else image.shape[1] - size
    out = image.copy()
    out[row : row + size, col : col + size] = patch
    return out


def cut_lesion(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    top, left, size = _central_box(image, rng)
    size = int(size * 1.4)
    top, left = (image.shape[0] - size) // 2, (image.shape[1] - size) // 2
    rows, cols = np.indices((size, size))
    cut = (rows if rng.random() < 0.5 else cols) >= size // 2 - int(rng.integers(-1, 2))
    if rng.random() < 0.5:
        cut = ~cut
    donor_row = 0 if rng.random() < 0.5 else image.shape[0] - size
    donor = image[donor_row : donor_row + size, left : left + size]
    out = image.copy()
    box = out[top : top + size, left : left + size]
    box[cut] = donor[cut]
    return out


DEFECTS: dict[str, DefectFn] = {
    "noise_burst": noise_burst,
    "blank_region": blank_region,
    "checkerboard": checkerboard,
    "grid": grid,
    "inversion": inversion,
    "duplicated_lesion": duplicated_lesion,
    "cut_lesion": cut_lesion,
}


def inject(images: np.ndarray, kind: str, *, seed: int = 0) -> np.ndarray:
    """``images`` ``(N, C, H, W)`` float in ``[0, 1]`` with defect ``kind`` in every image (float32)."""
    if kind not in DEFECTS:
        raise InputError(f"a defect in {sorted(DEFECTS)}", repr(kind), "choose one of the listed defects", source="kind")
    images = np.asarray(images)
    if images.ndim != 4 or min(images.shape[2:]) < 8:
        raise InputError(
            "2D images (N, C, H, W) of at least 8 x 8 pixels",
            f"shape {images.shape}",
            "inject defects into 2D images (one slice at a time for volumes)",
            source="images",
        )
    out = images.astype(np.float64)
    for n in range(out.shape[0]):
        for c in range(out.shape[1]):  # the same placement in every channel
            out[n, c] = DEFECTS[kind](out[n, c], np.random.default_rng((seed, n)))
    return np.clip(out, 0.0, 1.0).astype(np.float32)
