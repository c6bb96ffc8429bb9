"""`Generator`: the interface shared by every genrad generative model (VAE, GAN, Diffusion).

A generator's configuration **is** its constructor arguments (`config`, saved as ``config.json`` beside
``model.safetensors``, as diffusers' ``from_config`` does): the family's own arguments plus the shared
`GeneratorOptions` (``genrad.models.options``), which every family accepts as keyword arguments and checks
once. `fit` learns from a `Split` (or a `Cohort`'s train split) and returns ``self``; `sample` returns float32
images in ``[0, 1]``, channel-first, on the CPU, shaped like the training images. Everything the model learned
from the data ends in ``_`` (``image_shape_``, ``intensity_``, ``conditions_``, ``data_hash_``, ``networks_``).

Inside, images live in "model space": the `IntensityMap` ``intensity_`` maps them to ``[-1, 1]`` and they are
padded (replicate) to a size the networks can halve ``levels`` times (28 -> 32); samples are cropped and mapped
back, which the user never sees.

A family implements five hooks: `_default_architecture` (sizes per image size), `_build_networks`,
`make_optimizers`, `training_step` (one optimisation step, see `genrad.training.Trainer`) and `_generate`
(model-space samples for given conditions); `_argument_checks` checks its own arguments.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim import Optimizer

from genrad.core import default_device, make_generator, seeded_init
from genrad.data import Cohort, Split
from genrad.data.intensity import IntensityMap
from genrad.errors import InputError, NotFittedError, check, is_int
from genrad.limits import check_memory
from genrad.models.ema import EMA
from genrad.models.options import (
    LEGACY_INTENSITY,
    ConditionEncoder,
    GeneratorOptions,
    given_options,
)
from genrad.models.persistence import Persistent

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
"""A training batch in model space: images ``[-1, 1]`` padded, int64 labels, standardised covariates ``(B, k)``."""


class Generator(Persistent):
    """Base class of genrad's generative models (see the module docstring for the contract)."""

    family: ClassVar[str] = ""
    default_steps: ClassVar[int] = 2000
    ema_networks: ClassVar[tuple[str, ...]] = ()
    registry: ClassVar[dict[str, type[Generator]]] = {}
    option_defaults: ClassVar[dict[str, Any]] = {}
    """This family's defaults for shared `GeneratorOptions` (e.g. its learning rate)."""
    earlier_defaults: ClassVar[dict[str, Any]] = {"intensity": {}}
    """Arguments added with a default other than the behaviour before them: checkpoints saved without them are
    loaded with these values, so an older model keeps the settings it was trained with (e.g. the identity map)."""
    sampling_settings: ClassVar[tuple[str, ...]] = ()
    """Constructor arguments that only affect `sample` (e.g. a diffusion sampler's guidance): `with_sampling`
    may change them on a trained model."""
    private_networks: ClassVar[tuple[str, ...]] = ()
    """The networks trained on real images, privatised by differentially private training (`genrad.training.dp`)."""
    private_settings: ClassVar[dict[str, Any]] = {}
    """Constructor arguments differentially private training needs; `build(..., private=True)` applies them."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.family:
            Generator.registry[cls.family] = cls

    def __init__(self, **options: Any) -> None:
        unknown = sorted(set(options) - set(GeneratorOptions.names()))
        if unknown:
            raise InputError(f"{type(self).__name__} arguments among {self._own_arguments() + list(GeneratorOptions.names())}",
                             f"unknown argument(s) {unknown}", "remove them", argument=unknown[0])
        try:
            self.options = GeneratorOptions(**{**self.option_defaults, **options})
        except InputError as error:  # named after the family the user built
            name = type(self).__name__
            raise InputError(error.expected.replace("GeneratorOptions", name), error.found,
                             error.fix.replace("GeneratorOptions", name), argument=error.argument) from None
        check(type(self).__name__, self._argument_checks())

    # ------------------------------------------------------------------ the shared options, read as attributes
    @property
    def num_classes(self) -> int:
        return self.options.num_classes

    @property
    def spatial_dims(self) -> int:
        return self.options.spatial_dims

    @property
    def covariates(self) -> tuple[str, ...]:
        return self.options.covariates

    @property
    def image_size(self) -> int | None:
        return self.options.image_size

    @property
    def channels(self) -> tuple[int, ...] | None:
        return self.options.channels

    @property
    def batch_size(self) -> int:
        return self.options.batch_size

    @property
    def learning_rate(self) -> float:
        return self.options.learning_rate

    @property
    def ema_decay(self) -> float | None:
        return self.options.ema_decay

    @property
    def precision(self) -> str:
        return self.options.precision

    @property
    def intensity(self) -> IntensityMap | str:
        return self.options.intensity

    # ------------------------------------------------------------------ configuration
    @classmethod
    def _own_arguments(cls) -> list[str]:
        """The keyword-only constructor arguments of the family and its bases (the shared options come as **options)."""
        names: list[str] = []
        for klass in cls.__mro__:
            if "__init__" in vars(klass):
                names += [p.name for p in inspect.signature(klass.__init__).parameters.values()
                          if p.kind == p.KEYWORD_ONLY and p.name not in names]
        return names

    @property
    def config(self) -> dict[str, Any]:
        """The constructor arguments, JSON-serialisable (tuples become lists): ``type(m).from_config(m.config)`` rebuilds m."""
        own = {name: _jsonable(getattr(self, name)) for name in self._own_arguments()}
        return {**self.options.as_config(), **own}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Generator:
        """An unfitted model with these constructor arguments (flat intensity keys of older configurations are read
        into ``intensity``)."""
        config = dict(config)
        legacy = {LEGACY_INTENSITY[key]: config.pop(key) for key in list(config) if key in LEGACY_INTENSITY}
        if legacy:
            config["intensity"] = legacy
        allowed = cls._own_arguments() + list(GeneratorOptions.names())
        unknown = sorted(set(config) - set(allowed))
        if unknown:
            raise InputError(f"{cls.__name__} arguments among {allowed}", f"unknown argument(s) {unknown}",
                             "remove them from the configuration")
        return cls(**config)

    def with_sampling(self, **settings: Any) -> Generator:
        """Change sampling-only arguments (`sampling_settings`) in place, checked as the constructor checks them;
        None leaves a setting unchanged. Returns ``self``."""
        name = type(self).__name__
        settings = given_options(settings)
        unknown = sorted(set(settings) - set(self.sampling_settings))
        if unknown:
            allowed = ", ".join(self.sampling_settings) or "none"
            raise InputError(f"{name} sampling settings among: {allowed}", f"{unknown}",
                             "drop them, or set them when training (they change what the model learns)", argument=unknown[0])
        checked = type(self).from_config({**self.config, **settings})
        for key in settings:
            setattr(self, key, getattr(checked, key))
        return self

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.config.items())})"
    def _argument_checks(self) -> list[tuple[bool, str, Any]]:
        """``(ok, expected, found)`` for each of the family's own constructor arguments."""
        return []

    # ------------------------------------------------------------------ fitting
    def fit(self, data: Split | Cohort, *, max_steps: int | None = None, max_minutes: float | None = None, seed: int = 0,
            callbacks: Iterable[Callable[..., Any]] = (), out_dir: str | Path | None = None, resume: bool = False,
            progress: bool = True) -> Generator:
        """Train on `data` (a `Split`, or a `Cohort`'s train split) and return ``self`` (see `genrad.training.Trainer`):
        `max_steps` optimisation steps in all (a resumed run continues up to it) or `max_minutes` of this call's wall
        time (neither: ``default_steps``); with `out_dir`, checkpoints, ``history.csv`` and sample grids go there."""
        from genrad.training.trainer import Trainer

        trainer = Trainer(self, data, seed=seed, out_dir=out_dir, progress=progress)
        trainer.run(max_steps=max_steps, max_minutes=max_minutes, callbacks=callbacks, resume=resume)
        return self

    def prepare(self, data: Split | Cohort, *, seed: int = 0) -> Split:
        """Learn the data description (shape, class counts, intensity map, covariate statistics, hash) and build
        fresh networks. Called by `Trainer`; returns the split that will be trained on."""
        split = self.options.training_split(data, type(self).__name__)
        self.image_shape_ = self._target_shape(split.image_shape)
        values = len(split) * math.prod(self.image_shape_)
        check_memory(8 * values, f"{len(split)} training images of shape {self.image_shape_} in float32, twice", option="image_size")
        self.class_counts_ = [int(c) for c in np.bincount(split.labels, minlength=self.num_classes)]
        self.intensity_ = IntensityMap.from_data(split.images) if self.intensity == "auto" else self.intensity
        self.conditions_ = ConditionEncoder(self.num_classes, self.covariates, type(self).__name__).fit(split.clinical, split.labels)
        self.data_hash_ = split.content_hash()
        self.__dict__.pop("privacy_", None)  # a new fit voids an earlier DP record
        self.seed_ = seed
        self.step_ = 0
        self._build(seed)
        return split

    def model_space(self, split: Split) -> torch.utils.data.TensorDataset:
        """The training tensors: images in model space (``intensity_.encode``), labels, standardised covariates."""
        self._check_fitted()
        images = torch.from_numpy(split.images)
        if tuple(images.shape[1:]) != self.image_shape_:
            mode = "bilinear" if self.spatial_dims == 2 else "trilinear"
            images = F.interpolate(images, size=self.image_shape_[1:], mode=mode, align_corners=False,
                                   antialias=self.spatial_dims == 2).clamp(0, 1)
        covariates = self.conditions_.values(split.clinical, len(split), source="fit data")
        return torch.utils.data.TensorDataset(self._pad(self.intensity_.encode(images)), torch.from_numpy(split.labels),
                                              self.conditions_.standardise(covariates))

    def _target_shape(self, image_shape: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(image_shape) if self.image_size is None else (image_shape[0],) + (self.image_size,) * self.spatial_dims

    # ------------------------------------------------------------------ networks
    def _build(self, seed: int) -> None:
        """Build the networks (seeded, on the default device) and their EMA copies, once their size is known to fit
        (`check_training_memory`)."""
        self.device_ = default_device()
        self.check_training_memory()
        with seeded_init(seed, type(self).__name__, "init"):
            networks = self._build_networks()
        self.networks_ = nn.ModuleDict(networks).to(self.device_)
        self.ema_ = {name: EMA(self.networks_[name], self.ema_decay) for name in self.ema_networks} if self.ema_decay is not None else {}

    def check_training_memory(self) -> None:
        """Refuse settings whose networks (built on PyTorch's meta device: shapes only, no memory) need more memory
        to train than is available: weights, gradients, two Adam moments and an EMA copy, 5 x 4 bytes a parameter."""
        try:
            with torch.device("meta"):
                networks = self._build_networks()
        except (RuntimeError, OverflowError, ValueError) as error:
            raise InputError("model options whose networks PyTorch can build", f"an error building them on the meta "
                             f"device ({str(error).splitlines()[0][:120]})", "choose smaller model options") from None
        parameters = sum(p.numel() for network in networks.values() for p in network.parameters())
        check_memory(20 * parameters, f"{parameters:,} network parameters to train", option="--option, the model's settings")

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
            pads += [(target - size) // 2, target - size - (target - size) // 2]
        return F.pad(images, pads, mode="replicate") if any(pads) else images

    def _crop(self, images: torch.Tensor) -> torch.Tensor:
        starts = [(target - size) // 2 for size, target in zip(self.image_shape_[1:], self.net_shape_[1:], strict=True)]
        return images[(slice(None), slice(None), *(slice(s, s + n) for s, n in zip(starts, self.image_shape_[1:], strict=True)))]

    # ------------------------------------------------------------------ sampling
    @torch.no_grad()
    def sample(self, n: int, *, labels: int | Sequence[int] | np.ndarray | torch.Tensor | None = None,
               covariates: pd.DataFrame | np.ndarray | None = None, generator: torch.Generator | int | None = None,
               batch_size: int = 256) -> torch.Tensor:
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
            standard = self.conditions_.draw(label_tensor, generator)
        else:
            standard = self.conditions_.standardise(self.conditions_.values(covariates, n, source=f"{name}.sample covariates"))
        for network in self.networks_.values():
            network.eval()
        chunks = [self._generate(label_tensor[i : i + batch_size], standard[i : i + batch_size], generator)
                  for i in range(0, n, batch_size)]
        if not chunks:
            return torch.zeros((0, *self.image_shape_), dtype=torch.float32)
        return self.intensity_.decode(self._crop(torch.cat([c.float().cpu() for c in chunks]))).contiguous()

    def draw_labels(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """`n` labels drawn from the training class frequencies."""
        self._check_fitted()
        if n == 0:
            return torch.zeros(0, dtype=torch.int64)
        return torch.multinomial(torch.tensor(self.class_counts_, dtype=torch.float64), n, replacement=True, generator=generator)

    def draw_covariates(self, labels: torch.Tensor, generator: torch.Generator) -> pd.DataFrame | None:
        """Covariates in original units, drawn per class from a Gaussian with the training mean and std (None without covariates)."""
        self._check_fitted()
        if not self.covariates:
            return None
        return pd.DataFrame(self.conditions_.original_units(self.conditions_.draw(labels, generator)), columns=list(self.covariates))

    def check_labels(self, n: int, labels: Any) -> torch.Tensor:
        """`labels` (one int or one per image) as int64 `(n,)`, checked against `num_classes`."""
        self._check_fitted()
        return self.conditions_.labels(n, labels)

    def _check_fitted(self, attribute: str = "networks_") -> None:
        if not hasattr(self, attribute):
            raise NotFittedError(self)
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

    def training_step(self, batch: Batch, *, networks: Mapping[str, nn.Module], optimizers: Mapping[str, Optimizer],
                      step: int, generator: torch.Generator) -> dict[str, float]:
        """One optimisation step, using only the `networks` and `optimizers` passed in (the `Trainer` may hand in
        Opacus-wrapped ones); returns the losses."""
        raise NotImplementedError

    def refresh(self, dataset: torch.utils.data.TensorDataset) -> None:
        """Update state derived from the weights and the data; called before every checkpoint and at the end."""
    def _generate(self, labels: torch.Tensor, covariates: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Model-space samples ``(len(labels), *net_shape_)`` in about ``[-1, 1]`` for these conditions."""
        raise NotImplementedError



class LatentGenerator(Generator):
    """A generator that decodes a latent code z (VAE, GAN): `latent_dim` is the size of z."""

    def __init__(self, *, latent_dim: int = 64, **options: Any) -> None:
        self.latent_dim = latent_dim
        super().__init__(**options)

    def _argument_checks(self) -> list[tuple[bool, str, Any]]:
        return [(is_int(self.latent_dim) and self.latent_dim >= 1, "latent_dim an int >= 1", self.latent_dim)]


def _jsonable(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    return value.item() if isinstance(value, np.generic) else value
