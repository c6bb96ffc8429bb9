"""Saving and loading a fitted generator: ``config.json`` (family, constructor arguments, fitted state),
``model.safetensors`` (every network and EMA copy) and ``training_state.json``, verified by
`genrad.models.checkpoint`. `Persistent` is a part of `genrad.models.base.Generator`."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from genrad.core import tensors_to_bytes
from genrad.data.intensity import IntensityMap
from genrad.errors import InputError
from genrad.models.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from genrad.models.options import ConditionEncoder

if TYPE_CHECKING:
    from genrad.models.base import Generator


class Persistent:
    """`save` / `load` of a `Generator` (see the module docstring)."""

    if TYPE_CHECKING:  # what `Generator` provides
        family: ClassVar[str]
        registry: ClassVar[dict[str, type[Generator]]]
        preset_: dict[str, Any] | None
        networks_: nn.ModuleDict
        ema_: Any
        intensity_: IntensityMap

        @property
        def config(self) -> dict[str, Any]: ...
        @property
        def num_classes(self) -> int: ...
        @property
        def covariates(self) -> tuple[str, ...]: ...
        @property
        def intensity(self) -> IntensityMap | str: ...
        _check_fitted: Callable[..., None]
        _build: Callable[..., None]

    def fitted_state(self) -> dict[str, Any]:
        """What the model learned from the data besides weights (goes into ``config.json``)."""
        self._check_fitted()
        return {
            "image_shape": list(self.image_shape_), "class_counts": self.class_counts_, **self.conditions_.state(),
            "intensity": self.intensity_.as_dict(), "data_hash": self.data_hash_,
            # the DP guarantee (genrad.training.dp) holds only if every step so far was private
            **({"privacy": self.privacy_} if getattr(self, "privacy_", {}).get("steps") == self.step_ else {}),
        }

    def _weight_modules(self) -> dict[str, nn.Module]:
        """Every module whose weights are saved, by key prefix: ``<network>`` and ``ema.<network>``."""
        return {**self.networks_, **{f"ema.{net}": average.network for net, average in self.ema_.items()}}

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """All weights, ``<prefix>.<param>`` for each of `_weight_modules`."""
        self._check_fitted()
        return {f"{prefix}.{key}": value for prefix, module in self._weight_modules().items() for key, value in module.state_dict().items()}

    def model_hash(self) -> str:
        """SHA-256 of the weights file that `save` writes (``model.safetensors``)."""
        return hashlib.sha256(tensors_to_bytes(self.state_tensors())).hexdigest()

    def checkpoint_config(self) -> dict[str, Any]:
        """The ``config.json`` payload: family, constructor arguments and fitted state."""
        preset = {"preset": self.preset_} if getattr(self, "preset_", None) else {}
        return {"family": self.family, "config": self.config, "fitted": self.fitted_state(), **preset}

    def save(self, directory: str | Path) -> Path:
        """Write ``config.json``, ``model.safetensors`` and ``training_state.json`` into `directory`."""
        self._check_fitted()
        state = {"step": self.step_, "seed": self.seed_, "data_hash": self.data_hash_}
        return save_checkpoint(directory, weights=self.state_tensors(), config=self.checkpoint_config(), state=state)

    @classmethod
    def load(cls, directory: str | Path) -> Generator:
        """Load a saved model; on `Generator` itself the family is read from ``config.json``."""
        return cls.from_checkpoint(load_checkpoint(directory), source=str(directory))

    @classmethod
    def from_checkpoint(cls, checkpoint: Checkpoint, *, source: str) -> Generator:
        """Rebuild a fitted model from a verified checkpoint (its arguments pass the family's checks)."""
        family = checkpoint.config.get("family")
        if family not in cls.registry:
            raise InputError(f"a model family among {sorted(cls.registry)}", repr(family),
                             "point to a directory written by genrad", source=source)
        family_cls = cls.registry[family]
        if cls.family and not issubclass(family_cls, cls):  # on the base class any family loads
            raise InputError(f"a {cls.__name__} checkpoint", f"a {family_cls.__name__} checkpoint",
                             f"load it with {family_cls.__name__}.load or genrad.models.load", source=source)
        try:
            model = family_cls.from_config({**family_cls.earlier_defaults, **checkpoint.config.get("config", {})})
        except InputError as error:
            raise InputError(f"a config.json whose arguments pass {family_cls.__name__}'s checks", error.found,
                             "restore config.json from the original run (genrad never runs an edited configuration)",
                             source=source) from None
        model.restore(checkpoint, source=source)
        model.preset_ = checkpoint.config.get("preset")
        return model

    def restore(self, checkpoint: Checkpoint, *, source: str) -> None:
        """Set fitted state and weights from `checkpoint` (shapes are checked)."""
        fitted = checkpoint.config.get("fitted", {})
        try:
            self.image_shape_ = tuple(int(s) for s in fitted["image_shape"])
            self.class_counts_ = [int(c) for c in fitted["class_counts"]]
            self.conditions_ = ConditionEncoder(self.num_classes, self.covariates, type(self).__name__).restore(fitted)
            self.intensity_ = IntensityMap(**fitted["intensity"]) if "intensity" in fitted else self.intensity
            self.data_hash_ = str(fitted["data_hash"])
            if "privacy" in fitted:
                self.privacy_ = dict(fitted["privacy"])
        except (KeyError, TypeError, ValueError) as error:
            raise InputError("a config.json with the fitted state written by genrad", f"a broken entry ({error})",
                             "restore config.json from the original run", source=source) from None
        self.seed_, self.step_ = int(checkpoint.state.get("seed", 0)), int(checkpoint.state.get("step", 0))
        self._build(self.seed_)
        expected, weights = self.state_tensors(), checkpoint.weights
        wrong = sorted(set(weights) ^ set(expected))[:3] or [k for k, v in weights.items()
                                                             if tuple(v.shape) != tuple(expected[k].shape) or v.dtype != expected[k].dtype]
        if wrong:
            raise InputError(f"the weights of a {type(self).__name__} with this config", f"other tensors ({wrong[:3]} ...)",
                             "the weights do not belong to this config.json: restore the original files", source=source)
        for prefix, module in self._weight_modules().items():
            module.load_state_dict({k[len(prefix) + 1 :]: v for k, v in weights.items() if k.startswith(f"{prefix}.")})

