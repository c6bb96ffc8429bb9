"""The options every generator family shares, as objects: `GeneratorOptions` (with the `IntensityMap` of
`genrad.data.intensity`) and the `ConditionEncoder` of class labels and covariates.

A family's constructor lists only its own arguments and passes the rest to `GeneratorOptions`, so a shared
option is typed, documented and checked once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

import numpy as np

from genrad.data.intensity import IntensityMap
from genrad.errors import InputError, check, is_int, is_number

if TYPE_CHECKING:
    import pandas as pd
    import torch

PRECISIONS = ("fp32", "bf16")


LEGACY_INTENSITY = {"intensity_gamma": "gamma", "black_level": "black_level", "floor_gap": "floor_gap",
                    "floor_ramp": "floor_ramp"}
"""Flat intensity arguments of configurations saved before `IntensityMap` -> its fields."""


def given_options(options: Mapping[str, Any] | None) -> dict[str, Any]:
    """`options` without its None values: an optional command-line or config value left unset keeps its default."""
    return {key: value for key, value in (options or {}).items() if value is not None}


def as_tuple(value: Any) -> Any:
    """A tuple of an ordered iterable argument (list, tuple, array, pandas Index ...); anything else unchanged, for
    the argument checks to refuse: a string is not split into characters, a set or mapping has no fixed order."""
    if isinstance(value, (str, bytes, Mapping, Set)) or not isinstance(value, Iterable):
        return value
    return tuple(value)


@dataclass(frozen=True)
class GeneratorOptions:
    """What every generator family takes besides its own network and objective arguments.

    Attributes:
        num_classes: number of classes (labels 0..K-1).
        spatial_dims: 2 for images, 3 for volumes.
        covariates: names of numeric clinical columns to condition on (`ConditionEncoder`).
        image_size: train and sample at this side length (data are resized); None keeps the data's size.
        channels: network channels per level (at least two); None: the family's default for the image size.
        batch_size, learning_rate: the optimiser's mini-batch and step size.
        ema_decay: exponential moving average of the sampling networks' weights (None: no EMA).
        precision: "fp32", or "bf16": each training step under ``torch.autocast`` in bfloat16, weights, optimiser
            and EMA in float32 (mixed precision; Micikevicius et al. 2018); sampling stays float32.
        intensity: the `IntensityMap` into model space, or "auto": chosen from the training data at fit time
            (`IntensityMap.from_data`) and recorded with the model.
    """

    num_classes: int
    spatial_dims: int = 2
    covariates: tuple[str, ...] = ()
    image_size: int | None = None
    channels: tuple[int, ...] | None = None
    batch_size: int = 32
    learning_rate: float = 2e-4
    ema_decay: float | None = 0.999
    precision: str = "fp32"
    intensity: IntensityMap | str = field(default="auto")

    def __post_init__(self) -> None:
        object.__setattr__(self, "covariates", as_tuple(self.covariates))
        object.__setattr__(self, "channels", None if self.channels is None else as_tuple(self.channels))
        object.__setattr__(self, "intensity", IntensityMap.parse(self.intensity))
        check("GeneratorOptions", [
            (is_int(self.num_classes) and self.num_classes >= 1, "num_classes an int >= 1", self.num_classes),
            (is_int(self.spatial_dims) and self.spatial_dims in (2, 3), "spatial_dims 2 or 3", self.spatial_dims),
            (self.image_size is None or (is_int(self.image_size) and self.image_size >= 8),
             "image_size None or an int >= 8", self.image_size),
            (self.channels is None or (isinstance(self.channels, tuple) and len(self.channels) >= 2
                                       and all(is_int(c) and c >= 1 for c in self.channels)),
             "channels None or at least 2 positive ints", self.channels),
            (is_int(self.batch_size) and self.batch_size >= 1, "batch_size an int >= 1", self.batch_size),
            (is_number(self.learning_rate) and self.learning_rate > 0, "learning_rate > 0", self.learning_rate),
            (self.ema_decay is None or (is_number(self.ema_decay) and 0.0 <= self.ema_decay < 1.0),
             "ema_decay None or in [0, 1)", self.ema_decay),
            (self.precision in PRECISIONS, f"precision one of {PRECISIONS}", self.precision),
            (isinstance(self.covariates, tuple) and all(isinstance(c, str) for c in self.covariates)
             and len(set(self.covariates)) == len(self.covariates),
             "covariates a list of distinct column names", self.covariates),
        ])

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    def training_split(self, data: Any, owner: str) -> Any:
        """`data` (a `Split`, or a `Cohort`'s train split) checked against these options."""
        from genrad.data import Cohort, Split

        if isinstance(data, Cohort):
            if data.num_classes > self.num_classes:
                raise InputError(f"at most {self.num_classes} classes (num_classes of {owner})",
                                 f"a cohort with {data.num_classes} classes", f"construct {owner}(num_classes={data.num_classes}, ...)")
            data = data.train
        if not isinstance(data, Split):
            raise InputError("a genrad.data.Split or Cohort", type(data).__name__,
                             "load data with genrad.data.load(path) and pass cohort.train")
        if data.spatial_dims != self.spatial_dims:
            raise InputError(f"{self.spatial_dims}D images for {owner}(spatial_dims={self.spatial_dims})",
                             f"{data.spatial_dims}D images of shape {data.image_shape}",
                             f"construct {owner}(spatial_dims={data.spatial_dims}, ...)")
        if int(data.labels.max()) >= self.num_classes:
            raise InputError(f"labels in 0..{self.num_classes - 1} for {owner}(num_classes={self.num_classes})",
                             f"label {int(data.labels.max())}", f"construct {owner}(num_classes={int(data.labels.max()) + 1}, ...)")
        return data

    def as_config(self) -> dict[str, Any]:
        """JSON-ready values (tuples as lists, the intensity map as its dict)."""
        values = {name: getattr(self, name) for name in self.names()}
        values = {name: value.item() if isinstance(value, np.generic) else value for name, value in values.items()}
        values["covariates"] = list(self.covariates)
        values["channels"] = None if self.channels is None else [int(c) for c in self.channels]
        values["intensity"] = self.intensity if isinstance(self.intensity, str) else self.intensity.as_dict()
        return values


class ConditionEncoder:
    """Class labels and clinical covariates as the networks' condition: covariates standardised with the training
    mean and standard deviation; for sampling without given covariates, drawn per class from a Gaussian with the
    training class mean and standard deviation (in standard units)."""

    def __init__(self, num_classes: int, covariates: tuple[str, ...], owner: str = "Generator") -> None:
        self.num_classes = num_classes
        self.covariates = covariates
        self.owner = owner

    def fit(self, clinical: pd.DataFrame | None, labels: np.ndarray) -> ConditionEncoder:
        values = self.values(clinical, len(labels), source="fit data")
        mean = values.mean(axis=0) if values.size else np.zeros(0)
        std = values.std(axis=0) if values.size else np.zeros(0)
        self.mean_ = [float(v) for v in mean]
        self.std_ = [float(v) if v > 0 else 1.0 for v in std]
        standard = (values - mean) / np.asarray(self.std_) if values.size else values
        self.class_mean_, self.class_std_ = [], []
        for k in range(self.num_classes):
            rows = standard[labels == k]
            self.class_mean_.append([float(v) for v in rows.mean(axis=0)] if len(rows) else [0.0] * len(mean))
            self.class_std_.append([float(v) for v in rows.std(axis=0)] if len(rows) else [1.0] * len(mean))
        return self

    def state(self) -> dict[str, Any]:
        """The fitted statistics, as the ``fitted`` entry of a model's ``config.json`` stores them."""
        return {"covariate_mean": self.mean_, "covariate_std": self.std_,
                "covariate_class_mean": self.class_mean_, "covariate_class_std": self.class_std_}

    def restore(self, state: Mapping[str, Any]) -> ConditionEncoder:
        self.mean_, self.std_ = list(state["covariate_mean"]), list(state["covariate_std"])
        self.class_mean_, self.class_std_ = state["covariate_class_mean"], state["covariate_class_std"]
        return self

    def values(self, table: pd.DataFrame | np.ndarray | None, n: int, *, source: str) -> np.ndarray:
        """The covariate columns as float64 ``(n, k)`` in original units (validated)."""
        import pandas as pd

        name, k = self.owner, len(self.covariates)
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

    def labels(self, n: int, labels: Any) -> torch.Tensor:
        """`labels` (one int or one per image) as int64 ``(n,)``, checked against `num_classes`."""
        import torch

        array = np.asarray(labels.cpu() if torch.is_tensor(labels) else labels)
        if array.ndim == 0:
            array = np.full(n, array)
        if not np.issubdtype(array.dtype, np.integer) or array.shape != (n,):
            raise InputError(f"{self.owner}.sample labels: one int or {n} ints", f"{array.dtype} array of shape {array.shape}",
                             "pass labels=k or a sequence with one class per image")
        if n and (array.min() < 0 or array.max() >= self.num_classes):
            bad = int(array.max() if array.max() >= self.num_classes else array.min())
            raise InputError(f"{self.owner}.sample labels in 0..{self.num_classes - 1}", f"label {bad}",
                             f"this model was fitted with num_classes={self.num_classes}", argument="labels")
        return torch.from_numpy(array.astype(np.int64))

    def standardise(self, values: np.ndarray) -> torch.Tensor:
        import torch

        if values.shape[1] == 0:
            return torch.zeros((values.shape[0], 0), dtype=torch.float32)
        standard = (values - np.asarray(self.mean_)) / np.asarray(self.std_)
        return torch.from_numpy(standard.astype(np.float32))

    def draw(self, labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Standardised covariates ``(n, k)`` drawn per class."""
        import torch

        k = len(self.covariates)
        if k == 0:
            return torch.zeros((len(labels), 0))
        mean = torch.tensor(self.class_mean_, dtype=torch.float32)[labels]
        std = torch.tensor(self.class_std_, dtype=torch.float32)[labels]
        return mean + std * torch.randn((len(labels), k), generator=generator)

    def original_units(self, standard: torch.Tensor) -> np.ndarray:
        return standard.double().numpy() * np.asarray(self.std_) + np.asarray(self.mean_)
