"""The built-in phantom: procedural lesions on textured tissue, with clinical covariates and ground truth.

Every image shows one lesion on a soft-tissue background. The background is a tissue level set by the
patient's age (denser tissue in younger patients), a smooth depth gradient, spatially correlated noise
(Gaussian-filtered white noise) and multiplicative speckle (gamma distributed, mean 1). The lesion
boundary is a star-shaped surface around its centre,

    r(u) = R * (1 + sum_j a_j * exp(kappa * (u . v_j - 1))),

with u the unit direction from the centre and v_j random directions (a von Mises-Fisher bump per
lobe or spicule); the same formula works in 2D and 3D. ``round`` lesions have no bumps, ``lobulated``
ones 3-5 broad bumps, ``spiculated`` ones many narrow, long bumps. The margin is a logistic ramp of
width ``margin_mm`` (small = sharp), and the inside has its own correlated texture of strength
``texture_strength`` on top of a mean ``contrast`` to the local tissue level.

Classes (label order), with the per-class mean of their generating parameters
(lognormal spread around the medians):

=========== ====================== ======== ====== ======= ======== ===== ===== ======
class       shape mix              diameter margin texture contrast age   male  marker
=========== ====================== ======== ====== ======= ======== ===== ===== ======
cyst        round                  10 mm    0.4 mm 0.02    -0.28    46    0.30  12
benign      lobulated 70 / round   14 mm    0.9 mm 0.07    +0.18    38    0.30  14
malignant   spiculated 80 / lobul. 20 mm    1.8 mm 0.16    +0.22    62    0.50  40
=========== ====================== ======== ====== ======= ======== ===== ===== ======

``malignant`` is the rare class (``rare_fraction`` of the images, 8% by default); the other images are
45% cysts and 55% benign solid lesions. The clinical table drives and follows the images:

- ``age`` (int years) sets the tissue level (older: darker, fattier background);
- ``sex`` is the string ``"F"`` or ``"M"`` (the DICOM PatientSex convention);
- ``lesion_diameter_mm`` (float, 0.1 mm) *is* the drawn core diameter, ``2 R`` times the pixel spacing;
- ``tumor_marker_u_ml`` (float, U/mL, a serum tumour marker) is higher for malignant lesions and grows
  with lesion size.

``Split.truth`` keeps every generating parameter per image (shape kind, diameter, radius in pixels,
margin, texture, contrast, centre, lobes, background level and gradient), so that metrics can be
checked against ground truth, and ``Split.masks`` the ground-truth lesion mask (1 where the drawn boundary
encloses the pixel, the logistic margin's midpoint). Images are float32 in [0, 1], quantised to multiples of 1/255
(like 8-bit MedMNIST data, so that `save_npz` stores them losslessly as uint8).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.ndimage import gaussian_filter
from scipy.special import expit

from genrad.data.cohort import Cohort, Split
from genrad.data.splits import stratified_split
from genrad.errors import InputError

SIZES = {2: (28, 64, 128, 224), 3: (28, 32, 64)}
FIELD_OF_VIEW_MM = 50.0
MIN_PER_CLASS = 3  # one image per class in each of train / val / test
SHAPES = ("round", "lobulated", "spiculated")
# Per shape (round, lobulated, spiculated): number of bumps (2D, 3D), amplitude range, concentration.
_BUMPS = {2: np.array([[0, 0], [3, 5], [6, 10]]), 3: np.array([[0, 0], [3, 5], [12, 16]])}
_BUMP_AMPLITUDE = np.array([[0.0, 0.0], [0.15, 0.35], [0.5, 1.0]])
_BUMP_KAPPA = np.array([0.0, 4.0, 60.0])
_MAX_BUMPS = 16
# Texture: tissue noise amplitude and grain (Gaussian sigma, mm), lesion texture grain, speckle looks
# (gamma shape parameter: multiplicative speckle of mean 1 and standard deviation 1/sqrt(looks)).
_TISSUE_NOISE = 0.05
_TISSUE_GRAIN_MM = 2.5
_LESION_GRAIN_MM = 1.2
_SPECKLE_LOOKS = 50.0
_VOXELS_PER_CHUNK = 1 << 21


@dataclass(frozen=True)
class LesionClass:
    """Distributions of one class's generating parameters (medians; lognormal or normal spread)."""

    name: str
    shape_probs: tuple[float, float, float]  # round, lobulated, spiculated
    diameter_mm: float
    margin_mm: float
    texture: float
    contrast: float
    age_mean: float
    age_sd: float
    p_male: float
    marker_u_ml: float


CLASSES = (
    LesionClass("cyst", (1.0, 0.0, 0.0), 10.0, 0.4, 0.02, -0.28, 46.0, 9.0, 0.3, 12.0),
    LesionClass("benign", (0.3, 0.7, 0.0), 14.0, 0.9, 0.07, 0.18, 38.0, 11.0, 0.3, 14.0),
    LesionClass("malignant", (0.0, 0.2, 0.8), 20.0, 1.8, 0.16, 0.22, 62.0, 10.0, 0.5, 40.0),
)
CLASS_NAMES = tuple(c.name for c in CLASSES)
_COMMON_SHARE = {"cyst": 0.45, "benign": 0.55}


def make_phantom(
    n: int = 600,
    size: int = 28,
    dims: int = 2,
    seed: int = 0,
    rare_fraction: float = 0.08,
    *,
    diameter_scale: float = 1.0,
    texture_scale: float = 1.0,
) -> Cohort:
    """Generate the phantom cohort: `n` images of `size` pixels per axis, stratified train/val/test.

    `diameter_scale` and `texture_scale` multiply every lesion's diameter and internal texture
    strength: a controlled distribution shift for testing metrics (the clinical table follows).
    The same arguments give the same bytes.
    """
    _check_arguments(n, size, dims, seed, rare_fraction, diameter_scale, texture_scale)
    rng = np.random.default_rng(seed)
    spacing = FIELD_OF_VIEW_MM / size
    labels = _class_labels(n, rare_fraction)
    clinical, truth, lobes = _draw_parameters(labels, size, dims, spacing, diameter_scale, texture_scale, rng)
    images, masks = _render(truth, lobes, size, dims, spacing, rng)
    splits = {}
    for name, index in stratified_split(labels, rng).items():
        splits[name] = Split(images[index], labels[index], clinical.iloc[index].reset_index(drop=True),
                             truth.iloc[index].reset_index(drop=True), name=name, masks=masks[index])
    record: dict[str, Any] = {
        "intensity": "none",
        "phantom": {
            "n": n, "size": size, "dims": dims, "seed": seed, "rare_fraction": rare_fraction,
            "diameter_scale": diameter_scale, "texture_scale": texture_scale,
            "field_of_view_mm": FIELD_OF_VIEW_MM,
        },
    }
    return Cohort(splits, CLASS_NAMES, spacing=(spacing,) * dims, source="phantom", preprocessing=record)


def _check_arguments(
    n: int, size: int, dims: int, seed: int, rare_fraction: float, diameter_scale: float, texture_scale: float
) -> None:
    if dims not in SIZES:
        raise InputError("dims 2 or 3", repr(dims), "use --dims 2 (images) or --dims 3 (volumes)", source="phantom")
    if size not in SIZES[dims]:
        raise InputError(
            f"a {dims}D phantom size in {SIZES[dims]}", repr(size), f"use --size {SIZES[dims][0]}", source="phantom"
        )
    if not 0.0 < rare_fraction < 1.0 / len(CLASSES):
        raise InputError(
            f"a rare-class fraction in (0, 1/{len(CLASSES)})", repr(rare_fraction), "use e.g. 0.08", source="phantom"
        )
    smallest = min(_class_counts(n, rare_fraction)) if isinstance(n, int | np.integer) and n > 0 else 0
    if smallest < MIN_PER_CLASS:
        need = int(np.ceil(MIN_PER_CLASS / rare_fraction))
        raise InputError(
            f"at least {MIN_PER_CLASS} images per class (one per train/val/test split)",
            f"n={n}, giving {smallest} image(s) in the rarest class",
            f"use --n {need} or more (or a larger rare_fraction)",
            source="phantom",
        )
    if not isinstance(seed, int | np.integer) or seed < 0:
        raise InputError("a non-negative integer seed", repr(seed), "use e.g. --seed 0", source="phantom")
    for name, value in (("diameter_scale", diameter_scale), ("texture_scale", texture_scale)):
        if not (np.isfinite(value) and value > 0):
            raise InputError(f"a positive {name}", repr(value), f"use {name}=1.0 for the default", source="phantom")


def _class_counts(n: int, rare_fraction: float) -> list[int]:
    n_rare = int(np.floor(n * rare_fraction))
    n_cyst = round((n - n_rare) * _COMMON_SHARE["cyst"])
    return [n_cyst, n - n_rare - n_cyst, n_rare]


def _class_labels(n: int, rare_fraction: float) -> np.ndarray:
    counts = _class_counts(n, rare_fraction)
    return np.repeat(np.arange(len(CLASSES), dtype=np.int64), counts)


def _draw_parameters(
    labels: np.ndarray, size: int, dims: int, spacing: float, diameter_scale: float, texture_scale: float,
    rng: np.random.Generator,
) -> tuple[pd.DataFrame, pd.DataFrame, tuple[np.ndarray, np.ndarray]]:
    """Clinical covariates, lesion / tissue parameters and lobe (directions, amplitudes) of every image."""
    n = len(labels)
    table = {field: np.array([getattr(CLASSES[k], field) for k in labels]) for field in (
        "diameter_mm", "margin_mm", "texture", "contrast", "age_mean", "age_sd", "p_male", "marker_u_ml")}

    def spread(median: np.ndarray, sigma: float) -> np.ndarray:
        return median * np.exp(sigma * rng.standard_normal(n))

    age = np.clip(np.rint(table["age_mean"] + table["age_sd"] * rng.standard_normal(n)), 18, 90).astype(np.int64)
    sex = np.where(rng.random(n) < table["p_male"], "M", "F").astype(object)
    diameter = np.round(np.clip(spread(table["diameter_mm"], 0.25) * diameter_scale, 4.0, 0.6 * FIELD_OF_VIEW_MM), 1)
    marker = np.round(spread(table["marker_u_ml"], 0.35) * (diameter / table["diameter_mm"]) ** 0.7, 1)
    clinical = pd.DataFrame({"age": age, "sex": sex, "lesion_diameter_mm": diameter, "tumor_marker_u_ml": marker})

    probs = np.array([CLASSES[k].shape_probs for k in labels])
    shape_index = (rng.random(n)[:, None] > np.cumsum(probs, axis=1)).sum(axis=1)
    bump_range = _BUMPS[dims][shape_index]
    n_bumps = rng.integers(bump_range[:, 0], bump_range[:, 1] + 1)
    amplitude_range = _BUMP_AMPLITUDE[shape_index]
    amplitudes = rng.uniform(amplitude_range[:, :1], amplitude_range[:, 1:], (n, _MAX_BUMPS))
    amplitudes *= np.arange(_MAX_BUMPS) < n_bumps[:, None]
    directions = rng.standard_normal((n, _MAX_BUMPS, dims))
    directions /= np.linalg.norm(directions, axis=2, keepdims=True)
    kappa = _BUMP_KAPPA[shape_index]

    centre = size / 2 - 0.5 + rng.uniform(-0.1, 0.1, (n, dims)) * size
    background = 0.45 + 0.004 * (50 - age) + 0.03 * rng.standard_normal(n)
    gradient_direction = rng.standard_normal((n, dims))
    gradient_direction /= np.linalg.norm(gradient_direction, axis=1, keepdims=True)
    truth = {
        "shape": np.asarray(SHAPES, dtype=object)[shape_index],
        "diameter_mm": diameter,
        "radius_px": diameter / 2 / spacing,
        "margin_mm": spread(table["margin_mm"], 0.3),
        "texture_strength": spread(table["texture"], 0.3) * texture_scale,
        "contrast": table["contrast"] + 0.05 * rng.standard_normal(n),
        "n_lobes": n_bumps.astype(np.int64),
        "lobe_kappa": kappa,
        "lobe_amplitude_mean": amplitudes.sum(axis=1) / np.maximum(n_bumps, 1),
        **{f"center_{axis}": centre[:, i] for i, axis in enumerate("zyx"[3 - dims:])},
        "background_level": background,
        "gradient_amplitude": rng.uniform(0.05, 0.15, n),
        **{f"gradient_{axis}": gradient_direction[:, i] for i, axis in enumerate("zyx"[3 - dims:])},
    }
    return clinical, pd.DataFrame(truth), (directions.astype(np.float32), amplitudes.astype(np.float32))


def _render(
    truth: pd.DataFrame,
    lobes: tuple[np.ndarray, np.ndarray],
    size: int,
    dims: int,
    spacing: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw every image and its lesion mask, in chunks so that memory stays bounded for large sizes."""
    shape = (size,) * dims
    axes = "zyx"[3 - dims:]
    grid = np.indices(shape, dtype=np.float32)
    extent = np.float32(size)
    chunk = max(1, _VOXELS_PER_CHUNK // size**dims)
    images = np.empty((len(truth), 1, *shape), dtype=np.float32)
    masks = np.empty((len(truth), 1, *shape), dtype=np.uint8)
    for start in range(0, len(truth), chunk):
        rows = truth.iloc[start : start + chunk]
        b = len(rows)
        expand = (slice(None),) + (None,) * dims

        def column(name: str) -> np.ndarray:
            return rows[name].to_numpy(np.float32)[expand]  # noqa: B023 - called within this iteration only

        centres = np.stack([rows[f"center_{a}"].to_numpy(np.float32) for a in axes], 1)
        offset = grid[None] - centres.reshape(b, dims, *(1,) * dims)
        distance = np.sqrt((offset**2).sum(axis=1)) + np.float32(1e-6)
        radius_scale = np.ones((b, *shape), dtype=np.float32)
        directions, amplitudes = (part[start : start + chunk] for part in lobes)
        kappa = column("lobe_kappa")
        for j in range(_MAX_BUMPS):
            if not amplitudes[:, j].any():
                continue
            cosine = np.einsum("bk...,bk->b...", offset, directions[:, j]) / distance
            radius_scale += amplitudes[:, j][expand] * np.exp(kappa * (cosine - 1))
        boundary = column("radius_px") * radius_scale
        margin_px = np.maximum(column("margin_mm") / spacing, 0.15)
        mask = expit((boundary - distance) / margin_px)
        masks[start : start + b, 0] = boundary > distance

        gradient = np.stack([rows[f"gradient_{a}"].to_numpy(np.float32) for a in axes], 1)
        gradient = gradient.reshape(b, dims, *(1,) * dims)
        ramp = (offset * gradient).sum(axis=1) / extent
        tissue = column("background_level") + column("gradient_amplitude") * ramp
        background = tissue + _TISSUE_NOISE * _correlated_noise(rng, b, shape, _TISSUE_GRAIN_MM / spacing)
        texture = _correlated_noise(rng, b, shape, _LESION_GRAIN_MM / spacing)
        lesion = tissue + column("contrast") + column("texture_strength") * texture
        image = background * (1 - mask) + lesion * mask
        image *= rng.gamma(_SPECKLE_LOOKS, 1 / _SPECKLE_LOOKS, (b, *shape)).astype(np.float32)
        images[start : start + b, 0] = np.rint(np.clip(image, 0.0, 1.0) * 255) / np.float32(255)
    return images, masks


def _correlated_noise(rng: np.random.Generator, batch: int, shape: tuple[int, ...], sigma_px: float) -> np.ndarray:
    """Gaussian-filtered white noise, rescaled to unit standard deviation per image."""
    noise = gaussian_filter(rng.standard_normal((batch, *shape), dtype=np.float32), (0, *(sigma_px,) * len(shape)))
    axes = tuple(range(1, noise.ndim))
    return (noise - noise.mean(axis=axes, keepdims=True)) / noise.std(axis=axes, keepdims=True)
