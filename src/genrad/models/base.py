"""`Generator`: the interface shared by every genrad generative model (VAE, GAN, Diffusion).

A generator's configuration **is** its constructor arguments (`config`, saved as ``config.json``
beside ``model.safetensors``, as diffusers' ``from_config`` does). `fit` learns from a `Split`
(or a `Cohort`'s train split) and returns ``self``; `sample` returns float32 images in ``[0, 1]``,
channel-first, on the CPU, shaped like the training images. Everything the model learned from the
data ends in ``_`` (``image_shape_``, ``covariate_mean_``, ``data_hash_``, ``networks_`` ...).

Inside, images live in "model space": raised to ``1 / intensity_gamma``, scaled to ``[-1, 1]`` and
padded (replicate) to a size the networks can halve ``levels`` times (28 -> 32); samples are cropped
and mapped back, which the user never sees. ``intensity_gamma = 2`` (a square-root domain) suits
images whose noise grows with the signal, such as ultrasound speckle (multiplicative, Burckhardt 1978):
the inverse map ``x = y**2`` has slope ``2 y``, so the generator's residual errors shrink where the
image is dark. Dark, flat regions are where radiomic texture features (size-zone and run-length
matrices on finely binned gray levels) are most sensitive to small errors. ``black_level`` is the
display floor: B-mode ultrasound clips echoes below it (shadows, outside the field of view) to one flat
value. It maps to -1, the edge of model space, so a region the network places at or below -1 comes out
exactly flat at the floor, as clipped regions are in the data; with ``intensity_gamma = 2`` the map's
slope is zero there, so small network errors near the floor do not change the 8-bit value either.
``floor_gap`` keeps the lowest unclipped value that far above -1 (clipped pixels at -1, the rest in
``[-1 + floor_gap, 1]``; samples anywhere in the gap decode to the floor): "clipped" becomes a state
the networks must commit to rather than a gray level next to the darkest tissue. ``floor_ramp`` treats
clipped pixels as censored values of a signal that goes on below the floor: in the training tensors they
descend from the gap's edge ``-1 + floor_gap`` to -1 over that many pixels of distance to the nearest
unclipped pixel (Euclidean distance transform), instead of all sitting at -1. The network then learns a
continuous field whose crossing of the gap edge *is* the clipped region's border, so the darkest tissue
around it can rise gradually, as it does in clipped data; decoding is unchanged.

``precision="bf16"`` runs each training step under ``torch.autocast`` in bfloat16 (weights,
optimizer states and EMA stay float32; Micikevicius et al. 2018, mixed-precision training): on a CPU
with AVX512-BF16 (or a recent GPU) a step costs ~0.6x, so a time budget buys ~1.7x the steps.
Sampling stays float32.

A family implements five hooks: `_default_architecture` (sizes per image size), `_build_networks`,
`_make_optimizers`, `training_step` (one optimisation step, see `genrad.training.Trainer`) and
`_generate` (model-space samples for given conditions).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterable, Mapping, Sequence, Set
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from scipy.ndimage import distance_transform_edt
from torch import nn
from torch.optim import Optimizer

from genrad.data import Cohort, Split
from genrad.errors import InputError, NotFittedError, is_int, is_number
from genrad.training.checkpoint import Checkpoint, load_checkpoint, save_checkpoint, tensors_to_bytes
from genrad.training.device import default_device
from genrad.training.ema import EMA
from genrad.training.seeding import make_generator, seeded_init

PRECISIONS = ("fp32", "bf16")
FLOOR_TOLERANCE = 1e-6
"""Pixels within this of the black level are clipped ones (float32 8-bit values, e.g. 1 / 255, differ by ~1e-10)."""


def as_tuple(value: Any) -> Any:
    """A tuple of an ordered iterable argument (list, tuple, array, pandas Index ...); anything else unchanged, for
    the argument checks to refuse: a string is not split into characters, a set or mapping has no fixed order."""
    if isinstance(value, (str, bytes, Mapping, Set)) or not isinstance(value, Iterable):
        return value
    return tuple(value)


def given_options(options: Mapping[str, Any] | None) -> dict[str, Any]:
    """`options` without its None values: an optional command-line or config value left unset keeps its default."""
    return {key: value for key, value in (options or {}).items() if value is not None}


def are_ints(values: Any, minimum: int) -> bool:
    """A tuple of at least two ints, each >= `minimum` (network channels per level)."""
    return isinstance(values, tuple) and len(values) >= 2 and all(is_int(v) and v >= minimum for v in values)


Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
"""A training batch in model space: images ``[-1, 1]`` padded, int64 labels, standardised covariates ``(B, k)``."""


class Generator:
    """Base class of genrad's generative models (see the module docstring for the contract)."""

    family: ClassVar[str] = ""
    default_steps: ClassVar[int] = 2000
    ema_networks: ClassVar[tuple[str, ...]] = ()
    registry: ClassVar[dict[str, type[Generator]]] = {}
    earlier_defaults: ClassVar[dict[str, Any]] = {}
    """Arguments added with a default other than the behaviour before them: checkpoints saved without
    them are loaded with these values, so an older model keeps the settings it was trained with."""
    sampling_settings: ClassVar[tuple[str, ...]] = ()
    """Constructor arguments that only affect `sample` (e.g. a diffusion sampler's guidance): `with_sampling`
    may change them on a trained model."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.family:
            Generator.registry[cls.family] = cls

    def __init__(
        self,
        *,
        num_classes: int,
        spatial_dims: int = 2,
        covariates: Sequence[str] = (),
        image_size: int | None = None,
        batch_size: int = 32,
        learning_rate: float = 2e-4,
        ema_decay: float | None = 0.999,
        precision: str = "fp32",
        intensity_gamma: float = 1.0,
        black_level: float = 0.0,
        floor_gap: float = 0.0,
        floor_ramp: float = 0.0,
    ) -> None:
        self.num_classes = num_classes
        self.spatial_dims = spatial_dims
        self.covariates = as_tuple(covariates)
        self.image_size = image_size
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.ema_decay = ema_decay
        self.precision = precision
        self.intensity_gamma = intensity_gamma
        self.black_level = black_level
        self.floor_gap = floor_gap
        self.floor_ramp = floor_ramp
        self._check_arguments()

    # ------------------------------------------------------------------ configuration
    @property
    def config(self) -> dict[str, Any]:
        """The constructor arguments, JSON-serialisable (tuples become lists): ``type(m)(**m.config)`` rebuilds m."""
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {name: _jsonable(getattr(self, name)) for name in names}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Generator:
        """An unfitted model with these constructor arguments."""
        allowed = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
        unknown = sorted(set(config) - set(allowed))
        if unknown:
            raise InputError(f"{cls.__name__} arguments among {allowed}", f"unknown argument(s) {unknown}",
                             "remove them from the configuration")
        return cls(**config)

    def with_sampling(self, **settings: Any) -> Generator:
        """Change sampling-only arguments (`sampling_settings`) of this model in place; returns ``self``.

        A value of None leaves its setting unchanged (so optional command-line values pass straight through).
        The values are checked as the constructor checks them, and `config` (hence every output's
        provenance) reports the new values.
        """
        name = type(self).__name__
        settings = given_options(settings)
        unknown = sorted(set(settings) - set(self.sampling_settings))
        if unknown:
            allowed = ", ".join(self.sampling_settings) or "none"
            raise InputError(f"{name} sampling settings among: {allowed}", f"{unknown}",
                             "drop them, or set them when training (they change what the model learns)")
        checked = type(self).from_config({**self.config, **settings})
        for key in settings:
            setattr(self, key, getattr(checked, key))
        return self

    def __repr__(self) -> str:
        arguments = ", ".join(f"{k}={v!r}" for k, v in self.config.items())
        return f"{type(self).__name__}({arguments})"

    def _argument_checks(self) -> list[tuple[bool, str, Any]]:
        """``(ok, expected, found)`` for each constructor argument; families extend the list."""
        return [
            (is_int(self.num_classes) and self.num_classes >= 1, "num_classes an int >= 1", self.num_classes),
            (is_int(self.spatial_dims) and self.spatial_dims in (2, 3), "spatial_dims 2 or 3", self.spatial_dims),
            (self.image_size is None or (is_int(self.image_size) and self.image_size >= 8),
             "image_size None or an int >= 8", self.image_size),
            (is_int(self.batch_size) and self.batch_size >= 1, "batch_size an int >= 1", self.batch_size),
            (is_number(self.learning_rate) and self.learning_rate > 0, "learning_rate > 0", self.learning_rate),
            (self.ema_decay is None or (is_number(self.ema_decay) and 0.0 <= self.ema_decay < 1.0),
             "ema_decay None or in [0, 1)", self.ema_decay),
            (self.precision in PRECISIONS, f"precision one of {PRECISIONS}", self.precision),
            (is_number(self.intensity_gamma) and 0.25 <= self.intensity_gamma <= 4,
             "intensity_gamma in [0.25, 4]", self.intensity_gamma),
            (is_number(self.black_level) and 0.0 <= self.black_level < 0.5,
             "black_level in [0, 0.5)", self.black_level),
            (is_number(self.floor_gap) and (self.floor_gap == 0.0 or (
                is_number(self.black_level) and self.black_level > 0 and 0.0 < self.floor_gap < 1.0)),
             "floor_gap 0, or in (0, 1) with a black_level > 0", self.floor_gap),
            (is_number(self.floor_ramp) and (self.floor_ramp == 0.0 or (
                self.floor_ramp > 0 and is_number(self.floor_gap) and self.floor_gap > 0)),
             "floor_ramp 0, or > 0 (pixels) with a floor_gap > 0", self.floor_ramp),
            (isinstance(self.covariates, tuple) and all(isinstance(c, str) for c in self.covariates)
             and len(set(self.covariates)) == len(self.covariates),
             "covariates a list of distinct column names", self.covariates),
        ]

    def _check_arguments(self) -> None:
        name = type(self).__name__
        for ok, expected, found in self._argument_checks():
            if not ok:
                argument = expected.split()[0]  # each check's text starts with its argument's name
                raise InputError(f"{name} argument {expected}", repr(found), f"pass a valid {argument} to {name}(...)",
                                 argument=argument)

    # ------------------------------------------------------------------ fitting
    def fit(
        self,
        data: Split | Cohort,
        *,
        max_steps: int | None = None,
        max_minutes: float | None = None,
        seed: int = 0,
        callbacks: Iterable[Callable[..., Any]] = (),
        out_dir: str | Path | None = None,
        resume: bool = False,
        progress: bool = True,
    ) -> Generator:
        """Train on `data` (a `Split`, or a `Cohort`'s train split) and return ``self``.

        Budgets: `max_steps` is the total number of optimisation steps (a resumed run continues up to
        it); `max_minutes` is this call's wall-clock budget. With neither, ``default_steps`` steps.
        With `out_dir`, checkpoints, a loss history (``history.csv``) and sample grids are written there,
        and `resume=True` continues from its last checkpoint. See `genrad.training.Trainer`.
        """
        from genrad.training.trainer import Trainer

        trainer = Trainer(self, data, seed=seed, out_dir=out_dir, progress=progress)
        trainer.run(max_steps=max_steps, max_minutes=max_minutes, callbacks=callbacks, resume=resume)
        return self

    def prepare(self, data: Split | Cohort, *, seed: int = 0) -> Split:
        """Learn the data description (shape, class counts, covariate statistics, hash) and build fresh networks.

        Called by `Trainer`; returns the split that will be trained on.
        """
        split = self._as_split(data)
        self._check_data(split)
        self.image_shape_ = self._target_shape(split.image_shape)
        self.class_counts_ = [int(c) for c in np.bincount(split.labels, minlength=self.num_classes)]
        self._learn_covariates(split)
        self.data_hash_ = split.content_hash()
        self.__dict__.pop("privacy_", None)  # a new fit voids an earlier DP record
        self.seed_ = seed
        self.step_ = 0
        self._build(seed)
        return split

    def model_space(self, split: Split) -> torch.utils.data.TensorDataset:
        """The training tensors: images in model space (`to_model_space`), labels, standardised covariates."""
        self._check_fitted()
        images = torch.from_numpy(split.images)
        if tuple(images.shape[1:]) != self.image_shape_:
            mode = "bilinear" if self.spatial_dims == 2 else "trilinear"
            images = F.interpolate(images, size=self.image_shape_[1:], mode=mode, align_corners=False,
                                   antialias=self.spatial_dims == 2).clamp(0, 1)
        return torch.utils.data.TensorDataset(
            self._pad(self._ramp_floors(images, self.to_model_space(images))),
            torch.from_numpy(split.labels),
            self._standardise(self._covariate_values(split.clinical, len(split), source="fit data")),
        )

    def to_model_space(self, images: torch.Tensor) -> torch.Tensor:
        """Images in ``[0, 1]`` -> ``-1 + g + (2 - g) u**(1 / intensity_gamma)``, ``u = (x - b) / (1 - b)``,
        ``b = black_level``, ``g = floor_gap``; pixels at or below the black level -> -1."""
        b, g = self.black_level, self.floor_gap
        scaled = -1.0 + g + (2.0 - g) * ((images.clamp(b, 1.0) - b) / (1.0 - b)) ** (1.0 / self.intensity_gamma)
        return torch.where(self._clipped(images), -1.0, scaled) if g else scaled

    def _clipped(self, images: torch.Tensor) -> torch.Tensor:
        """Pixels at or below the black level (within `FLOOR_TOLERANCE`): the clipped ones."""
        return images <= self.black_level + FLOOR_TOLERANCE

    def _ramp_floors(self, images: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """`values` (model space of ``(N, C, *spatial)`` `images`) with clipped pixels at
        ``max(-1, -1 + g - g d / floor_ramp)``, ``d`` their distance (pixels) to the nearest unclipped pixel
        of their image; unchanged without `floor_ramp`. Every value this gives decodes to the floor."""
        if not self.floor_ramp:
            return values
        clipped = self._clipped(images)
        masks = clipped.reshape(-1, *clipped.shape[2:]).numpy()
        depth = torch.from_numpy(np.stack([distance_transform_edt(mask) for mask in masks]).astype(np.float32))
        g = self.floor_gap
        descent = (-1.0 + g - g * depth.reshape(values.shape) / self.floor_ramp).clamp(min=-1.0)
        return torch.where(clipped, descent, values)

    def from_model_space(self, values: torch.Tensor) -> torch.Tensor:
        """The inverse of `to_model_space`, monotone and continuous: values at or below ``-1 + floor_gap`` are the
        black level."""
        b, g = self.black_level, self.floor_gap
        u = ((values + 1.0 - g) / (2.0 - g)).clamp(0.0, 1.0)
        return b + (1.0 - b) * u**self.intensity_gamma

    def _as_split(self, data: Split | Cohort) -> Split:
        if isinstance(data, Cohort):
            if data.num_classes > self.num_classes:
                raise InputError(f"at most {self.num_classes} classes (num_classes of {type(self).__name__})",
                                 f"a cohort with {data.num_classes} classes",
                                 f"construct {type(self).__name__}(num_classes={data.num_classes}, ...)")
            return data.train
        if not isinstance(data, Split):
            raise InputError("a genrad.data.Split or Cohort", type(data).__name__,
                             "load data with genrad.data.load(path) and pass cohort.train")
        return data

    def _check_data(self, split: Split) -> None:
        name = type(self).__name__
        if split.spatial_dims != self.spatial_dims:
            raise InputError(f"{self.spatial_dims}D images for {name}(spatial_dims={self.spatial_dims})",
                             f"{split.spatial_dims}D images of shape {split.image_shape}",
                             f"construct {name}(spatial_dims={split.spatial_dims}, ...)")
        if int(split.labels.max()) >= self.num_classes:
            raise InputError(f"labels in 0..{self.num_classes - 1} for {name}(num_classes={self.num_classes})",
                             f"label {int(split.labels.max())}",
                             f"construct {name}(num_classes={int(split.labels.max()) + 1}, ...)")

    def _target_shape(self, image_shape: tuple[int, ...]) -> tuple[int, ...]:
        if self.image_size is None:
            return tuple(image_shape)
        return (image_shape[0],) + (self.image_size,) * self.spatial_dims

    def _learn_covariates(self, split: Split) -> None:
        values = self._covariate_values(split.clinical, len(split), source="fit data")
        mean = values.mean(axis=0) if values.size else np.zeros(0)
        std = values.std(axis=0) if values.size else np.zeros(0)
        self.covariate_mean_ = [float(v) for v in mean]
        self.covariate_std_ = [float(v) if v > 0 else 1.0 for v in std]
        standard = (values - mean) / np.asarray(self.covariate_std_) if values.size else values
        self.covariate_class_mean_, self.covariate_class_std_ = [], []
        for k in range(self.num_classes):
            rows = standard[split.labels == k]
            self.covariate_class_mean_.append([float(v) for v in rows.mean(axis=0)] if len(rows) else [0.0] * len(mean))
            self.covariate_class_std_.append([float(v) for v in rows.std(axis=0)] if len(rows) else [1.0] * len(mean))

    def _covariate_values(self, table: pd.DataFrame | np.ndarray | None, n: int, *, source: str) -> np.ndarray:
        """The covariate columns as float64 ``(n, k)`` in original units (validated)."""
        name = type(self).__name__
        k = len(self.covariates)
        if k == 0:
            if table is not None and not isinstance(table, pd.DataFrame) and np.asarray(table).size:
                raise InputError(f"no covariates for {name} (constructed with covariates=())",
                                 f"a covariate array of shape {np.asarray(table).shape}",
                                 f"construct {name}(covariates=(...)) or drop the covariates argument", source=source)
            return np.zeros((n, 0))
        if isinstance(table, pd.DataFrame):
            missing = [c for c in self.covariates if c not in table.columns]
            if missing:
                raise InputError(f"clinical columns {list(self.covariates)} for {name}",
                                 f"columns {list(table.columns)} (missing {missing})",
                                 "add the columns or construct the model with covariates that exist", source=source)
            table = table[list(self.covariates)].to_numpy()
        if table is None:
            raise InputError(f"covariates {list(self.covariates)} for {name}", "none",
                             "pass a clinical table (fit) or covariates=DataFrame / (n, k) array (sample)", source=source)
        try:
            values = np.asarray(table, dtype=np.float64)
        except (TypeError, ValueError):
            raise InputError(f"numeric covariates {list(self.covariates)}", "non-numeric values",
                             "encode categorical columns as numbers", source=source) from None
        if values.shape != (n, k):
            raise InputError(f"covariates shaped ({n}, {k}) for {name} ({', '.join(self.covariates)})",
                             f"shape {values.shape}", "pass one row per image and one column per covariate", source=source)
        if not np.isfinite(values).all():
            raise InputError("finite covariate values", "NaN or inf", "impute or drop rows with missing values", source=source)
        return values

    def _standardise(self, values: np.ndarray) -> torch.Tensor:
        if values.shape[1] == 0:
            return torch.zeros((values.shape[0], 0), dtype=torch.float32)
        standard = (values - np.asarray(self.covariate_mean_)) / np.asarray(self.covariate_std_)
        return torch.from_numpy(standard.astype(np.float32))

    # ------------------------------------------------------------------ networks
    def _build(self, seed: int) -> None:
        """Build the networks (seeded, on the default device) and their EMA copies."""
        self.device_ = default_device()
        with seeded_init(seed, type(self).__name__, "init"):
            networks = self._build_networks()
        self.networks_ = nn.ModuleDict(networks).to(self.device_)
        self.ema_ = {}
        if self.ema_decay is not None:
            self.ema_ = {name: EMA(self.networks_[name], self.ema_decay) for name in self.ema_networks}

    @property
    def levels(self) -> int:
        """How many times the networks halve the image; sizes are padded to a multiple of ``2**levels``."""
        return len(self.architecture_["channels"]) - 1

    @property
    def architecture_(self) -> dict[str, Any]:
        """Network sizes: the constructor's explicit values, else the defaults for this image size."""
        self._check_fitted(attribute="image_shape_")
        return self._default_architecture(max(self.image_shape_[1:]))

    @property
    def net_shape_(self) -> tuple[int, ...]:
        """The padded (model-space) shape of one image, channel first."""
        multiple = 2**self.levels
        return (self.image_shape_[0],) + tuple(math.ceil(s / multiple) * multiple for s in self.image_shape_[1:])

    @property
    def image_shape(self) -> tuple[int, ...]:
        """Shape of one sample, channel first (the training data's, or ``image_size`` per axis)."""
        self._check_fitted(attribute="image_shape_")
        return tuple(self.image_shape_)

    def network(self, name: str) -> nn.Module:
        """The network used for sampling: its EMA copy when there is one."""
        return self.ema_[name].network if name in self.ema_ else self.networks_[name]

    def _pad(self, images: torch.Tensor) -> torch.Tensor:
        pads: list[int] = []
        for size, target in zip(reversed(images.shape[2:]), reversed(self.net_shape_[1:]), strict=True):
            extra = target - size
            pads += [extra // 2, extra - extra // 2]
        return F.pad(images, pads, mode="replicate") if any(pads) else images

    def _crop(self, images: torch.Tensor) -> torch.Tensor:
        slices = [slice(None), slice(None)]
        for size, target in zip(self.image_shape_[1:], self.net_shape_[1:], strict=True):
            start = (target - size) // 2
            slices.append(slice(start, start + size))
        return images[tuple(slices)]

    # ------------------------------------------------------------------ sampling
    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        labels: int | Sequence[int] | np.ndarray | torch.Tensor | None = None,
        covariates: pd.DataFrame | np.ndarray | None = None,
        generator: torch.Generator | int | None = None,
        batch_size: int = 256,
    ) -> torch.Tensor:
        """`n` images, float32 in ``[0, 1]``, ``(n, *image_shape)``, on the CPU.

        labels: one class for all, or one per image; ``None`` draws them from the training class frequencies.
        covariates: DataFrame with the covariate columns or an ``(n, k)`` array, in original units; ``None``
            draws them per class from a Gaussian with the training mean and standard deviation.
        generator: a CPU `torch.Generator` or an int seed (``None`` means seed 0). The same generator state
            and `batch_size` give the same bytes.
        """
        name = type(self).__name__
        self._check_fitted()
        if not is_int(n) or n < 0:
            raise InputError(f"{name}.sample n: an int >= 0", repr(n), "pass the number of images to generate")
        if not is_int(batch_size) or batch_size < 1:
            raise InputError(f"{name}.sample batch_size >= 1", repr(batch_size), "pass a positive batch size")
        n = int(n)
        if generator is None or isinstance(generator, (int, np.integer)):
            generator = make_generator(0 if generator is None else int(generator), "sample")
        label_tensor = self.draw_labels(n, generator) if labels is None else self.check_labels(n, labels)
        if covariates is None:
            standard = self._draw_standard_covariates(label_tensor, generator)
        else:
            standard = self._standardise(self._covariate_values(covariates, n, source=f"{name}.sample covariates"))
        for network in self.networks_.values():
            network.eval()
        chunks = [
            self._generate(label_tensor[i : i + batch_size], standard[i : i + batch_size], generator)
            for i in range(0, n, batch_size)
        ]
        if not chunks:
            return torch.zeros((0, *self.image_shape_), dtype=torch.float32)
        images = self._crop(torch.cat([c.float().cpu() for c in chunks]))
        return self.from_model_space(images).contiguous()

    def draw_labels(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """`n` labels drawn from the training class frequencies."""
        self._check_fitted()
        if n == 0:
            return torch.zeros(0, dtype=torch.int64)
        prior = torch.tensor(self.class_counts_, dtype=torch.float64)
        return torch.multinomial(prior, n, replacement=True, generator=generator)

    def draw_covariates(self, labels: torch.Tensor, generator: torch.Generator) -> pd.DataFrame | None:
        """Covariates in original units, drawn per class from a Gaussian with the training mean and std (None without covariates)."""
        self._check_fitted()
        if not self.covariates:
            return None
        standard = self._draw_standard_covariates(labels, generator).double().numpy()
        values = standard * np.asarray(self.covariate_std_) + np.asarray(self.covariate_mean_)
        return pd.DataFrame(values, columns=list(self.covariates))

    def _draw_standard_covariates(self, labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        k = len(self.covariates)
        if k == 0:
            return torch.zeros((len(labels), 0))
        mean = torch.tensor(self.covariate_class_mean_, dtype=torch.float32)[labels]
        std = torch.tensor(self.covariate_class_std_, dtype=torch.float32)[labels]
        return mean + std * torch.randn((len(labels), k), generator=generator)

    def check_labels(self, n: int, labels: Any) -> torch.Tensor:
        """`labels` (one int or one per image) as int64 `(n,)`, checked against `num_classes`."""
        name = type(self).__name__
        array = np.asarray(labels.cpu() if torch.is_tensor(labels) else labels)
        if array.ndim == 0:
            array = np.full(n, array)
        if not np.issubdtype(array.dtype, np.integer) or array.shape != (n,):
            raise InputError(f"{name}.sample labels: one int or {n} ints", f"{array.dtype} array of shape {array.shape}",
                             "pass labels=k or a sequence with one class per image")
        if n and (array.min() < 0 or array.max() >= self.num_classes):
            bad = int(array.max() if array.max() >= self.num_classes else array.min())
            raise InputError(f"{name}.sample labels in 0..{self.num_classes - 1}", f"label {bad}",
                             f"this model was fitted with num_classes={self.num_classes}", argument="labels")
        return torch.from_numpy(array.astype(np.int64))

    # ------------------------------------------------------------------ persistence
    def _check_fitted(self, attribute: str = "networks_") -> None:
        if not hasattr(self, attribute):
            raise NotFittedError(self)

    def fitted_state(self) -> dict[str, Any]:
        """What the model learned from the data besides weights (goes into ``config.json``)."""
        self._check_fitted()
        return {
            "image_shape": list(self.image_shape_),
            "class_counts": self.class_counts_,
            "covariate_mean": self.covariate_mean_,
            "covariate_std": self.covariate_std_,
            "covariate_class_mean": self.covariate_class_mean_,
            "covariate_class_std": self.covariate_class_std_,
            "data_hash": self.data_hash_,
            # the DP guarantee (genrad.training.dp) holds only if every step so far was private
            **({"privacy": self.privacy_} if getattr(self, "privacy_", {}).get("steps") == self.step_ else {}),
        }

    def _weight_modules(self) -> dict[str, nn.Module]:
        """Every module whose weights are saved, by key prefix: ``<network>`` and ``ema.<network>``."""
        modules: dict[str, nn.Module] = dict(self.networks_.items())
        modules.update({f"ema.{net}": average.network for net, average in self.ema_.items()})
        return modules

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """All weights, ``<prefix>.<param>`` for each of `_weight_modules`."""
        self._check_fitted()
        return {f"{prefix}.{key}": value for prefix, module in self._weight_modules().items()
                for key, value in module.state_dict().items()}

    def model_hash(self) -> str:
        """SHA-256 of the weights file that `save` writes (``model.safetensors``)."""
        import hashlib

        return hashlib.sha256(tensors_to_bytes(self.state_tensors())).hexdigest()

    def checkpoint_config(self) -> dict[str, Any]:
        """The ``config.json`` payload: family, constructor arguments and fitted state."""
        return {"family": self.family, "config": self.config, "fitted": self.fitted_state()}

    def save(self, directory: str | Path) -> Path:
        """Write ``config.json``, ``model.safetensors`` and ``training_state.json`` into `directory`."""
        self._check_fitted()
        state = {"step": self.step_, "seed": self.seed_, "data_hash": self.data_hash_}
        return save_checkpoint(directory, weights=self.state_tensors(), config=self.checkpoint_config(), state=state)

    @classmethod
    def load(cls, directory: str | Path) -> Generator:
        """Load a saved model; on `Generator` itself the family is read from ``config.json``."""
        checkpoint = load_checkpoint(directory)
        return cls.from_checkpoint(checkpoint, source=str(directory))

    @classmethod
    def from_checkpoint(cls, checkpoint: Checkpoint, *, source: str) -> Generator:
        """Rebuild a fitted model from a verified checkpoint."""
        family = checkpoint.config.get("family")
        if family not in Generator.registry:
            raise InputError(f"a model family among {sorted(Generator.registry)}", repr(family),
                             "point to a directory written by genrad", source=source)
        family_cls = Generator.registry[family]
        if cls is not Generator and not issubclass(family_cls, cls):
            raise InputError(f"a {cls.__name__} checkpoint", f"a {family_cls.__name__} checkpoint",
                             f"load it with {family_cls.__name__}.load or genrad.models.load", source=source)
        try:
            model = family_cls.from_config({**family_cls.earlier_defaults, **checkpoint.config.get("config", {})})
        except InputError as error:
            raise InputError(f"a config.json whose arguments pass {family_cls.__name__}'s checks", error.found,
                             "restore config.json from the original run (genrad never runs an edited configuration)",
                             source=source) from None
        model.restore(checkpoint, source=source)
        return model

    def restore(self, checkpoint: Checkpoint, *, source: str) -> None:
        """Set fitted state and weights from `checkpoint` (shapes are checked)."""
        fitted = checkpoint.config.get("fitted", {})
        try:
            self.image_shape_ = tuple(int(s) for s in fitted["image_shape"])
            self.class_counts_ = [int(c) for c in fitted["class_counts"]]
            self.covariate_mean_ = list(fitted["covariate_mean"])
            self.covariate_std_ = list(fitted["covariate_std"])
            self.covariate_class_mean_ = fitted["covariate_class_mean"]
            self.covariate_class_std_ = fitted["covariate_class_std"]
            self.data_hash_ = str(fitted["data_hash"])
            if "privacy" in fitted:
                self.privacy_ = dict(fitted["privacy"])
        except (KeyError, TypeError, ValueError) as error:
            raise InputError("a config.json with the fitted state written by genrad", f"a broken entry ({error})",
                             "restore config.json from the original run", source=source) from None
        self.seed_ = int(checkpoint.state.get("seed", 0))
        self.step_ = int(checkpoint.state.get("step", 0))
        self._build(self.seed_)
        expected = self.state_tensors()
        weights = checkpoint.weights
        if set(weights) != set(expected):
            difference = sorted(set(weights) ^ set(expected))[:3]
            raise InputError(f"the weights of a {type(self).__name__} with this config", f"different tensor names ({difference} ...)",
                             "the weights do not belong to this config.json: restore the original files", source=source)
        wrong = [k for k, v in weights.items() if tuple(v.shape) != tuple(expected[k].shape) or v.dtype != expected[k].dtype]
        if wrong:
            raise InputError(f"tensor {wrong[0]} shaped {tuple(expected[wrong[0]].shape)}",
                             f"shape {tuple(weights[wrong[0]].shape)}",
                             "the weights do not belong to this config.json: restore the original files", source=source)
        for prefix, module in self._weight_modules().items():
            module.load_state_dict({k[len(prefix) + 1 :]: v for k, v in weights.items() if k.startswith(f"{prefix}.")})

    # ------------------------------------------------------------------ family hooks
    def _default_architecture(self, size: int) -> dict[str, Any]:
        """Network sizes for images of side `size` (must contain ``channels``); explicit arguments win."""
        raise NotImplementedError

    def _build_networks(self) -> dict[str, nn.Module]:
        """Fresh networks for ``net_shape_`` (called under a seeded RNG fork)."""
        raise NotImplementedError

    def make_optimizers(self, networks: Mapping[str, nn.Module]) -> dict[str, Optimizer]:
        """One optimizer per trained network (the `Trainer` may wrap or replace them, e.g. Opacus)."""
        raise NotImplementedError

    def training_step(
        self,
        batch: Batch,
        *,
        networks: Mapping[str, nn.Module],
        optimizers: Mapping[str, Optimizer],
        step: int,
        generator: torch.Generator,
    ) -> dict[str, float]:
        """One optimisation step on `batch`: forward through `networks`, backward, step `optimizers`.

        Uses only the objects passed in (never ``self.networks_`` directly) so that the `Trainer` can hand
        in wrapped versions (e.g. Opacus' ``GradSampleModule`` / ``DPOptimizer``). Returns the losses.
        """
        raise NotImplementedError

    def refresh(self, dataset: torch.utils.data.TensorDataset) -> None:
        """Update state derived from the weights and the training data; the `Trainer` calls it before every
        checkpoint and at the end of training. Nothing by default."""

    def _generate(self, labels: torch.Tensor, covariates: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Model-space samples ``(len(labels), *net_shape_)`` in about ``[-1, 1]`` for these conditions."""
        raise NotImplementedError


def _jsonable(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    return value.item() if isinstance(value, np.generic) else value


def load(run_dir: str | Path) -> Generator:
    """Load any genrad model from a run directory; the family is read from its ``config.json``."""
    return Generator.load(run_dir)


def build(family: str, **options: Any) -> Generator:
    """A new `family` generator. Options that are None keep their defaults (so optional command-line and
    config values pass straight through); the family's `sampling_settings` are applied with
    `Generator.with_sampling`, which explains a setting the family does not have."""
    if family not in Generator.registry:
        raise InputError(f"a model family among {sorted(Generator.registry)}", repr(family), "choose a listed family")
    family_cls = Generator.registry[family]
    given = given_options(options)
    any_sampling = {key for cls in Generator.registry.values() for key in cls.sampling_settings}
    sampling = {key: given.pop(key) for key in list(given) if key in any_sampling}
    return family_cls(**given).with_sampling(**sampling)
