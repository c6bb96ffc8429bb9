"""Acquisition-like image perturbations with interpretable severity scales.

Each perturbation maps one image and a severity (a number with a physical or interpretable unit) to a
degraded image, using TorchIO's and MONAI's deterministic transforms. Random parts (noise draws, bias
field coefficients, motion directions, spike positions) come from a NumPy generator seeded by
``(seed, perturbation, severity, image index)``, so a cell of a sweep gives the same bytes for the same
seed, whatever the order of cells, and the caller's global RNG state is left as it was.

Conventions: images are float32, channel-first ``(N, C, H, W)`` or ``(N, C, D, H, W)`` in ``[0, 1]``
(the genrad convention), spacing is one pixel, and results are clipped back to ``[0, 1]`` (a detector
saturates). A 2D image is given to TorchIO as the 4-D tensor ``(C, 1, H, W)``: the singleton axis comes
first so that TorchIO's k-space artefacts (motion, ghosting) act on the image plane.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from genrad.errors import InputError

FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))
BIAS_FIELD_ORDER = 3
GHOSTS = 4
MOTION_TIME = 0.5  # the patient moves halfway through the acquisition: half of k-space sees the moved pose

Apply = Callable[[torch.Tensor, float, np.random.Generator], torch.Tensor]


@dataclass(frozen=True)
class Perturbation:
    """One kind of acquisition artefact: its severity unit, valid range and the function applying it.

    ``apply(image, severity, rng)`` takes one TorchIO-shaped image ``(C, X, Y, Z)`` (a 2D image has
    ``X == 1``) and returns the perturbed image; ``identity`` is the severity that leaves images as they are.
    """

    name: str
    unit: str
    description: str
    library: str
    apply: Apply
    identity: float = 0.0
    maximum: float | None = None

    def check(self, severity: float, *, source: str | None = None) -> None:
        """Raise `InputError` unless `severity` is finite and inside this perturbation's range."""
        upper = "" if self.maximum is None else f" and <= {self.maximum:g}"
        if not (math.isfinite(severity) and severity >= self.identity and (self.maximum is None or severity <= self.maximum)):
            raise InputError(
                f"{self.name} severities >= {self.identity:g}{upper} ({self.unit})",
                repr(severity),
                f"use severities in that range ({self.identity:g} leaves images unchanged)",
                source=source,
            )


def _plain(tensor: torch.Tensor) -> torch.Tensor:
    """A MONAI output as a plain tensor (no MetaTensor metadata)."""
    from monai.utils import convert_to_tensor

    return convert_to_tensor(tensor, track_meta=False)


def _tio_image(image: torch.Tensor):
    import torchio as tio

    return tio.ScalarImage(tensor=image, affine=np.eye(4))


def _is_2d(image: torch.Tensor) -> bool:
    return image.shape[1] == 1


def _in_plane_axes(image: torch.Tensor) -> list[int]:
    """Spatial axes (0, 1, 2 of ``(X, Y, Z)``) that carry the image: (1, 2) in 2D, all three in 3D."""
    return [1, 2] if _is_2d(image) else [0, 1, 2]


def _noise(image: torch.Tensor, severity: float, rng: np.random.Generator) -> torch.Tensor:
    import torchio as tio

    seed = int(rng.integers(2**31 - 1))
    return tio.Noise(mean=0.0, std=severity, seed=seed)(_tio_image(image)).data


def _rician(image: torch.Tensor, severity: float, rng: np.random.Generator) -> torch.Tensor:
    from monai.transforms import RandRicianNoise

    transform = RandRicianNoise(prob=1.0, std=severity, sample_std=False, relative=False)
    transform.set_random_state(seed=int(rng.integers(2**31 - 1)))
    return _plain(transform(image))


def _blur(image: torch.Tensor, severity: float, rng: np.random.Generator) -> torch.Tensor:
    import torchio as tio

    sigma = severity / FWHM_PER_SIGMA
    std = tuple(sigma if axis in _in_plane_axes(image) else 0.0 for axis in range(3))
    return tio.Blur(std=std)(_tio_image(image)).data


def _resolution(image: torch.Tensor, severity: float, rng: np.random.Generator) -> torch.Tensor:
    from monai.transforms import Resize

    spatial = image.shape[2:] if _is_2d(image) else image.shape[1:]
    low = [max(1, round(size / severity)) for size in spatial]
    planar = image[:, 0] if _is_2d(image) else image
    down = Resize(low, mode="area")(planar)
    up = Resize(list(spatial), mode="bilinear" if _is_2d(image) else "trilinear", align_corners=False)(down)
    up = _plain(up)
    return up[:, None] if _is_2d(image) else up


def _bias_field(image: torch.Tensor, severity: float, rng: np.random.Generator) -> torch.Tensor:
    import torchio as tio

    n_terms = math.comb(BIAS_FIELD_ORDER + 3, 3)
    coefficients = rng.uniform(-severity, severity, n_terms).tolist()
    return tio.BiasField(coefficients=coefficients, order=BIAS_FIELD_ORDER)(_tio_image(image)).data


def _gamma(image: torch.Tensor, severity: float, rng: np.random.Generator) -> torch.Tensor:
    import torchio as tio

    gamma = math.exp(severity if rng.random() < 0.5 else -severity)
    return tio.Gamma(gamma=gamma)(_tio_image(image)).data


def _contrast(image: torch.Tensor, severity: float, rng: np.random.Generator) -> torch.Tensor:
    from monai.transforms import ScaleIntensityRange

    transform = ScaleIntensityRange(a_min=0.0, a_max=1.0, b_min=severity / 2, b_max=1.0 - severity / 2)
    return _plain(transform(image))


def _motion(image: torch.Tensor, severity: float, rng: np.random.Generator) -> torch.Tensor:
    import torchio as tio

    axes = _in_plane_axes(image)
    if _is_2d(image):
        rotation = np.array([rng.choice([-1.0, 1.0]) * severity, 0.0, 0.0])
    else:
        rotation = rng.standard_normal(3)
        rotation *= severity / np.linalg.norm(rotation)
    direction = np.zeros(3)
    direction[axes] = rng.standard_normal(len(axes))
    translation = severity * direction / np.linalg.norm(direction)
    transform = tio.Motion(
        degrees=rotation[None], translation=translation[None], times=np.array([MOTION_TIME]), image_interpolation="linear"
    )
    return transform(_tio_image(image)).data


def _ghosting(image: torch.Tensor, severity: float, rng: np.random.Generator) -> torch.Tensor:
    import torchio as tio

    axis = int(rng.choice(_in_plane_axes(image)))
    transform = tio.Ghosting(num_ghosts=GHOSTS, axis=axis, intensity=severity, restore=None)
    return transform(_tio_image(image)).data


def _spike(image: torch.Tensor, severity: float, rng: np.random.Generator) -> torch.Tensor:
    import torchio as tio

    position = rng.uniform(0.0, 1.0, (1, 3))
    return tio.Spike(spikes_positions=position, intensity=severity)(_tio_image(image)).data


def _gibbs(image: torch.Tensor, severity: float, rng: np.random.Generator) -> torch.Tensor:
    from monai.transforms import GibbsNoise

    planar = image[:, 0] if _is_2d(image) else image
    out = _plain(GibbsNoise(alpha=severity)(planar))
    return out[:, None] if _is_2d(image) else out


PERTURBATIONS: dict[str, Perturbation] = {
    p.name: p
    for p in (
        Perturbation("noise", "sigma, fraction of the intensity range", "additive Gaussian noise", "torchio.Noise", _noise),
        Perturbation(
            "rician", "sigma, fraction of the intensity range",
            "Rician (magnitude MR) noise, Gudbjartsson & Patz 1995", "monai.RandRicianNoise", _rician,
        ),
        Perturbation("blur", "FWHM in pixels", "Gaussian point-spread function", "torchio.Blur", _blur),
        Perturbation(
            "resolution", "downsampling factor (acquired pixel size / pixel size)",
            "acquisition at a lower resolution (area average), linear upsampling back", "monai.Resize", _resolution,
            identity=1.0,
        ),
        Perturbation(
            "bias_field", "max abs coefficient of the order-3 polynomial log-field",
            "smooth multiplicative intensity inhomogeneity, Van Leemput et al. 1999", "torchio.BiasField", _bias_field,
        ),
        Perturbation("gamma", "abs(ln gamma), gamma = exp(+-severity)", "gamma / contrast curve change", "torchio.Gamma", _gamma),
        Perturbation(
            "contrast", "fraction of the dynamic range lost", "linear window compression toward mid-grey",
            "monai.ScaleIntensityRange", _contrast, maximum=0.99,
        ),
        Perturbation(
            "motion", "degrees of rotation and pixels of translation",
            "rigid motion during k-space acquisition, Shaw et al. 2019", "torchio.Motion", _motion,
        ),
        Perturbation(
            "ghosting", "ghost intensity, fraction of the k-space maximum", f"periodic ({GHOSTS} ghosts) k-space ghosting",
            "torchio.Ghosting", _ghosting, maximum=1.0,
        ),
        Perturbation(
            "spike", "spike intensity, fraction of the k-space maximum", "one k-space spike (herringbone artefact)",
            "torchio.Spike", _spike,
        ),
        Perturbation(
            "gibbs", "fraction of k-space truncated", "Gibbs ringing from k-space truncation",
            "monai.GibbsNoise", _gibbs, maximum=1.0,
        ),
    )
}


def get_perturbation(name: str, *, source: str | None = None) -> Perturbation:
    """The registered perturbation called `name`, or `InputError` listing the known names."""
    if name not in PERTURBATIONS:
        raise InputError(
            f"a perturbation in {sorted(PERTURBATIONS)}", repr(name), "fix the perturbation name", source=source
        )
    return PERTURBATIONS[name]


def cell_key(text: str) -> int:
    """A stable 32-bit key for seeding (CRC-32 of the text; Python's `hash` is salted per process)."""
    return zlib.crc32(text.encode())


def perturb(images: np.ndarray, name: str, severity: float, *, seed: int) -> np.ndarray:
    """Apply perturbation `name` at `severity` to every image of ``(N, C, H, W)`` / ``(N, C, D, H, W)``.

    Image ``i`` uses the generator ``default_rng([seed, key(name), key(severity), i])``: the same seed
    gives the same bytes. Returns float32 in ``[0, 1]``.
    """
    perturbation = get_perturbation(name)
    perturbation.check(float(severity))
    images = np.asarray(images)
    if images.ndim not in (4, 5) or images.dtype != np.float32:
        raise InputError(
            "float32 images shaped (N, C, H, W) or (N, C, D, H, W)",
            f"{images.dtype} array of shape {images.shape}",
            "load images with genrad.data.load",
        )
    if float(severity) == perturbation.identity:
        return images.copy()
    keys = [int(seed), cell_key(name), cell_key(repr(float(severity)))]
    out = np.empty_like(images)
    # TorchIO draws torch.rand(1) from the global RNG on every call (its probability `p`), and its
    # seeded Noise reseeds it (CUDA too): fork the global RNGs so that the caller's state is left as it was.
    with torch.random.fork_rng(devices=list(range(torch.cuda.device_count()))):
        for index, image in enumerate(images):
            rng = np.random.default_rng([*keys, index])
            tensor = torch.from_numpy(np.array(image[:, None] if images.ndim == 4 else image))
            result = perturbation.apply(tensor, float(severity), rng)
            result = result[:, 0] if images.ndim == 4 else result
            out[index] = np.clip(result.detach().cpu().numpy(), 0.0, 1.0)
    return out
