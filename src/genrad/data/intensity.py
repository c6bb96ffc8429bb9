"""Intensities: the loaders' normalisation to the cohort convention (float32 in [0, 1]), the display floor a
data set is clipped at, and the `IntensityMap` from [0, 1] into a generator's model space.

`IntensityMap` maps image intensities in ``[0, 1]`` to the networks' "model space" in ``[-1, 1]``:
``y = -1 + g + (2 - g) u**(1 / gamma)``, ``u = (x - b) / (1 - b)``, with ``b`` the display floor (`black_level`)
and ``g`` the `floor_gap`; pixels at or below the floor map to -1 (or, with `floor_ramp`, descend from ``-1 + g``
towards -1 with their distance to unclipped tissue). ``gamma = 2`` (a square-root domain) suits signal-dependent
noise such as ultrasound speckle (multiplicative; Burckhardt 1978): the inverse map's slope ``2 y`` shrinks the
generator's errors where the image is dark. Decoding is monotone and continuous and sends every value at or below
``-1 + g`` to the floor, so clipped regions come out exactly flat, as in the data. It imports torch only inside
the methods that need it, so that a run configuration can be validated without loading torch.

Normalisation methods (the choice and its parameters are recorded in ``Cohort.preprocessing``):

- ``"auto"``: ``"uint8"`` for uint8 data, ``"none"`` for float data already in [0, 1] (what genrad
  saves), ``"minmax"`` otherwise;
- ``"uint8"``: divide by 255 (MedMNIST, PNG);
- ``"minmax"``: map the smallest / largest value over all splits to 0 / 1;
- ``"percentile"``: like ``"minmax"`` between the 0.5th and 99.5th percentiles, clipped (CT/MRI);
- ``"image-percentile"``: each image between its own 0.5th and 99.5th percentiles, clipped (MRI, whose scanners
  scale every volume differently; the per-image normalisation nnU-Net applies to MRI, Isensee et al. 2021);
- ``"none"``: keep values, which must already lie in [0, 1].
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

import numpy as np

from genrad.errors import InputError, check, is_number

if TYPE_CHECKING:
    import torch

METHODS = ("auto", "uint8", "minmax", "percentile", "image-percentile", "none")
IMAGE_PERCENTILES = (0.5, 99.5)


def normalise_intensity(
    splits: dict[str, np.ndarray], *, method: str = "auto", source: str | None = None
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Map every split's raw pixels to float32 in [0, 1] with one shared transform (or one per image)."""
    check_method(method, source)
    dtypes = {str(a.dtype) for a in splits.values()}
    for name, array in splits.items():
        if array.dtype.kind not in "biuf":
            raise InputError(
                "numeric pixel arrays", f"{array.dtype} pixels in split {name!r}", "store pixels as numbers", source=source
            )
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise InputError(
                "finite pixel values",
                f"NaN or inf pixels in split {name!r}",
                "replace or drop the images with non-finite values",
                source=source,
            )
    if method == "auto":
        if dtypes == {"uint8"}:
            method = "uint8"
        else:
            lo, hi = _range(splits, 0.0, 100.0)
            method = "none" if all(a.dtype.kind == "f" for a in splits.values()) and lo >= 0 and hi <= 1 else "minmax"
    record: dict[str, Any] = {"intensity": method, "source_dtype": sorted(dtypes)}
    if method == "uint8":
        if dtypes != {"uint8"}:
            raise InputError("uint8 pixels", f"{sorted(dtypes)}", "use intensity='minmax' for other dtypes", source=source)
        return {k: (v.astype(np.float32) / np.float32(255.0)) for k, v in splits.items()}, record
    if method == "none":
        lo, hi = _range(splits, 0.0, 100.0)
        if lo < 0 or hi > 1:
            raise InputError(
                "pixels in [0, 1] with intensity='none'", f"range [{lo:g}, {hi:g}]", "use intensity='minmax'", source=source
            )
        return {k: v.astype(np.float32) for k, v in splits.items()}, record
    if method == "image-percentile":
        record["percentiles"] = list(IMAGE_PERCENTILES)
        return {k: _per_image(v) for k, v in splits.items()}, record
    lo, hi = _range(splits, *((0.5, 99.5) if method == "percentile" else (0.0, 100.0)))
    record.update(low=lo, high=hi)
    scale = (hi - lo) or 1.0
    normalised = {k: np.clip((v.astype(np.float64) - lo) / scale, 0.0, 1.0).astype(np.float32) for k, v in splits.items()}
    return normalised, record


def check_method(method: str, source: str | None = None) -> None:
    """Refuse an unknown normalisation method (before any file is read)."""
    if method not in METHODS:
        raise InputError(f"intensity one of {METHODS}", repr(method), "choose a listed method", source=source,
                         argument="intensity")


def _per_image(images: np.ndarray) -> np.ndarray:
    """Each image of `images` (N, ...) between its own `IMAGE_PERCENTILES`, clipped to [0, 1]."""
    flat = images.reshape(len(images), -1).astype(np.float64)
    low, high = np.percentile(flat, IMAGE_PERCENTILES, axis=1)
    scale = np.where(high > low, high - low, 1.0)
    return np.clip((flat - low[:, None]) / scale[:, None], 0.0, 1.0).astype(np.float32).reshape(images.shape)


def _range(splits: dict[str, np.ndarray], low_pct: float, high_pct: float) -> tuple[float, float]:
    values = np.concatenate([v.reshape(-1) for v in splits.values()])
    if low_pct == 0.0 and high_pct == 100.0:
        return float(values.min()), float(values.max())
    lo, hi = np.percentile(values, [low_pct, high_pct])
    return float(lo), float(hi)


def display_floor(images: np.ndarray, *, min_fraction: float = 0.005, spike_ratio: float = 2.0,
                  lowest_levels: int = 4) -> float | None:
    """The clipped display floor of `images`, or None: the first of the `lowest_levels` smallest distinct
    values that holds at least `min_fraction` of the pixels and `spike_ratio` times the next value's count.

    Scanners and display pipelines clip dark signal (B-mode ultrasound shadows, air after windowing) to
    one value, which shows as a spike at the bottom of the histogram; pass the value as a generator's
    ``black_level``. On BreastMNIST: 1/255 (1.4% of the training pixels, 2.3x the count at 2/255).
    """
    values, counts = _lowest_levels(np.asarray(images).ravel(), lowest_levels + 1)
    for index in range(min(lowest_levels, len(values) - 1)):
        if counts[index] >= min_fraction * images.size and counts[index] >= spike_ratio * counts[index + 1]:
            return float(values[index])
    return None


def _lowest_levels(values: np.ndarray, how_many: int) -> tuple[list[float], list[int]]:
    """The `how_many` smallest distinct `values` (NaN ignored) and their counts, in O(how_many x N) rather than
    a full sort."""
    values = values[~np.isnan(values)]
    levels: list[float] = []
    counts: list[int] = []
    while values.size and len(levels) < how_many:
        lowest = values.min()
        at_lowest = values == lowest
        levels.append(float(lowest))
        counts.append(int(at_lowest.sum()))
        values = values[~at_lowest]
    return levels, counts


FLOOR_TOLERANCE = 1e-6
"""Pixels within this of the black level are clipped ones (float32 8-bit values, e.g. 1 / 255, differ by ~1e-10)."""
CLIPPED_SHARE = 0.005
"""`IntensityMap.from_data`: the least share of pixels at the display floor that makes a data set "clipped"."""


@dataclass(frozen=True)
class IntensityMap:
    """Image intensities ``[0, 1]`` <-> model space ``[-1, 1]`` (see the module docstring).

    Attributes:
        gamma: the networks model ``x**(1 / gamma)``; 1 is linear, 2 a square-root domain.
        black_level: the data's display floor (0: none): pixels at or below it are clipped regions.
        floor_gap: model-space gap between clipped pixels (-1) and the darkest tissue, so that "clipped" is a state
            the networks commit to rather than a grey level next to the darkest tissue (needs a black level).
        floor_ramp: clipped pixels descend from the gap edge to -1 over this many pixels of distance to unclipped
            tissue (a censored signal going on below the floor), so clipped borders can be gradual (needs a gap).
    """

    gamma: float = 1.0
    black_level: float = 0.0
    floor_gap: float = 0.0
    floor_ramp: float = 0.0

    def __post_init__(self) -> None:
        g, b = self.floor_gap, self.black_level
        check("IntensityMap", [
            (is_number(self.gamma) and 0.25 <= self.gamma <= 4, "gamma in [0.25, 4]", self.gamma),
            (is_number(b) and 0.0 <= b < 0.5, "black_level in [0, 0.5)", b),
            (is_number(g) and (g == 0.0 or (is_number(b) and b > 0 and 0.0 < g < 1.0)),
             "floor_gap 0, or in (0, 1) with a black_level > 0", g),
            (is_number(self.floor_ramp) and (self.floor_ramp == 0.0 or (self.floor_ramp > 0 and is_number(g) and g > 0)),
             "floor_ramp 0, or > 0 (pixels) with a floor_gap > 0", self.floor_ramp),
        ])

    @classmethod
    def ultrasound(cls, black_level: float) -> IntensityMap:
        """The map for clipped B-mode ultrasound: square-root domain, the floor at -1, a gap and a ramp below it."""
        return cls(gamma=2.0, black_level=black_level, floor_gap=0.6, floor_ramp=3.0)

    @classmethod
    def from_data(cls, images: np.ndarray) -> IntensityMap:
        """The map for `images` (``intensity="auto"``): `ultrasound` when at least `CLIPPED_SHARE` of the pixels sit
        at a clipped display floor (`genrad.data.intensity.display_floor`) above 0, else the identity map."""
        floor = display_floor(images, min_fraction=CLIPPED_SHARE)
        if floor is None or not 0.0 < floor < 0.5:
            return cls()
        level = round(floor * 255)
        return cls.ultrasound(level / 255 if abs(floor * 255 - level) < 1e-4 else floor)  # an 8-bit level exactly

    @classmethod
    def parse(cls, value: IntensityMap | Mapping[str, Any] | str) -> IntensityMap | str:
        """An `IntensityMap` from itself, its `as_dict` or ``"auto"`` (kept as the string until fitted)."""
        if isinstance(value, IntensityMap) or value == "auto":
            return value
        if isinstance(value, Mapping):
            unknown = sorted(set(value) - {f.name for f in fields(cls)})
            if unknown:
                raise InputError("intensity keys gamma, black_level, floor_gap, floor_ramp", f"{unknown}",
                                 "remove them from the configuration", argument="intensity")
            return cls(**value)
        raise InputError('intensity an IntensityMap, its dict or "auto"', repr(value), 'pass intensity="auto"',
                         argument="intensity")

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    def clipped(self, images: torch.Tensor) -> torch.Tensor:
        """Pixels at or below the black level (within `FLOOR_TOLERANCE`)."""
        return images <= self.black_level + FLOOR_TOLERANCE

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Images ``(N, C, *spatial)`` in ``[0, 1]`` -> model space, clipped pixels at -1 or on their ramp."""
        import torch

        b, g = self.black_level, self.floor_gap
        scaled = -1.0 + g + (2.0 - g) * ((images.clamp(b, 1.0) - b) / (1.0 - b)) ** (1.0 / self.gamma)
        if not g:
            return scaled
        return torch.where(self.clipped(images), self._floor_values(images), scaled)

    def decode(self, values: torch.Tensor) -> torch.Tensor:
        """The inverse of `encode`: monotone, continuous, values at or below ``-1 + floor_gap`` -> the black level."""
        b, g = self.black_level, self.floor_gap
        u = ((values + 1.0 - g) / (2.0 - g)).clamp(0.0, 1.0)
        return b + (1.0 - b) * u**self.gamma

    def _floor_values(self, images: torch.Tensor) -> torch.Tensor:
        """Model-space values of clipped pixels: -1, or ``max(-1, -1 + g - g d / floor_ramp)`` with ``d`` the
        distance (pixels, Euclidean distance transform) to the nearest unclipped pixel of the same image."""
        import torch
        from scipy.ndimage import distance_transform_edt

        if not self.floor_ramp:
            return torch.full_like(images, -1.0)
        masks = self.clipped(images).reshape(-1, *images.shape[2:]).numpy()
        depth = torch.from_numpy(np.stack([distance_transform_edt(mask) for mask in masks]).astype(np.float32))
        g = self.floor_gap
        return (-1.0 + g - g * depth.reshape(images.shape) / self.floor_ramp).clamp(min=-1.0)
