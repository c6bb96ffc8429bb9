"""The downstream classifier of the utility protocol: a MONAI ResNet with one fixed training recipe.

`Classifier` trains `monai.networks.nets.ResNet` (He et al. 2016, "Deep residual learning", basic
blocks; 2D or 3D through ``spatial_dims``) with Adam on cross-entropy, and stops early on the real
validation split: every ``eval_every`` optimiser steps it scores the validation AUC and keeps the best
weights; it stops after ``patience`` evaluations without improvement or at ``max_steps``. The budget
is counted in steps, not epochs, so arms with 10x more (synthetic) images get the same optimisation
budget, not 10x more.

The defaults (``layers=(1, 1, 1, 1)``, ``channels=(16, 32, 64, 128)``: a slim ResNet-10 with a 3x3
stem and no stem down-sampling, for 28-pixel inputs) train in seconds on a CPU; ``layers=(2, 2, 2, 2),
channels=(64, 128, 256, 512)`` is the ResNet-18 of the MedMNIST v2 baselines (Yang et al. 2023).

Randomness (document of record): ``fit(..., seed=s)`` builds and trains the network inside
`torch.random.fork_rng` seeded with ``derive_seed(s, "classifier")`` (initialisation and dropout),
draws mini-batches from a `torch.Generator` seeded with ``derive_seed(s, "batches")`` and seeds the
MONAI augmentation with ``derive_seed(s, "augment")``; the caller's global RNG is left untouched.
On one device and thread count, the same seed gives the same weights.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.networks.nets import ResNet
from safetensors.torch import load_file

from genrad.core import default_device, derive_seed, tensors_to_bytes
from genrad.data.cohort import Split
from genrad.errors import InputError, NotFittedError
from genrad.evaluation.utility.augmentation import AUGMENTATIONS, augmentation
from genrad.evaluation.utility.metrics import roc_auc
from genrad.limits import read_json
from genrad.provenance import atomic_path, versions

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
CLASS_WEIGHTS = (None, "balanced")


class Classifier:
    """A MONAI ResNet image classifier with early stopping on a validation split.

    Parameters
    ----------
    spatial_dims, in_channels, num_classes:
        Input layout ``(N, in_channels, *spatial)`` with ``spatial_dims`` 2 or 3, and label count.
    layers, channels, stem_stride:
        ResNet basic blocks per stage, channels per stage (same length, usually 4) and the stride of
        the 3x3 stem convolution (2 halves every feature map: about 4x less compute).
    learning_rate, weight_decay, batch_size:
        Adam learning rate, decoupled weight decay (AdamW) and mini-batch size.
    max_steps, eval_every, patience:
        Step budget, validation period in steps, and evaluations without improvement before stopping.
    class_weight:
        ``"balanced"`` weights the cross-entropy by ``n / (K n_k)`` (inverse class frequency of the
        training set; King & Zeng 2001); ``None`` leaves it unweighted.
    augment:
        Augmentation of every mini-batch image, one of `AUGMENTATIONS` (``True`` means ``"classical"``,
        ``False`` none).
    device:
        ``"cpu"``, ``"cuda"``, ...; ``None`` picks `genrad.core.default_device()`.
    """

    def __init__(
        self,
        *,
        spatial_dims: int = 2,
        in_channels: int = 1,
        num_classes: int = 2,
        layers: Sequence[int] = (1, 1, 1, 1),
        channels: Sequence[int] = (16, 32, 64, 128),
        stem_stride: int = 1,
        learning_rate: float = 1e-3,
        weight_decay: float = 1e-4,
        batch_size: int = 64,
        max_steps: int = 1500,
        eval_every: int = 20,
        patience: int = 10,
        class_weight: str | None = None,
        augment: bool | str | None = False,
        device: str | None = None,
    ) -> None:
        self.spatial_dims = spatial_dims
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.layers = tuple(int(n) for n in layers)
        self.channels = tuple(int(c) for c in channels)
        self.stem_stride = stem_stride
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_steps = max_steps
        self.eval_every = eval_every
        self.patience = patience
        self.class_weight = class_weight
        self.augment = "classical" if augment is True else None if augment is False else augment
        self.device = device
        self._check_config()

    @property
    def config(self) -> dict[str, Any]:
        """The constructor arguments (JSON-serialisable), without the device."""
        return {
            "spatial_dims": self.spatial_dims,
            "in_channels": self.in_channels,
            "num_classes": self.num_classes,
            "layers": list(self.layers),
            "channels": list(self.channels),
            "stem_stride": self.stem_stride,
            "learning_rate": self.learning_rate,
            "weight_decay": self.weight_decay,
            "batch_size": self.batch_size,
            "max_steps": self.max_steps,
            "eval_every": self.eval_every,
            "patience": self.patience,
            "class_weight": self.class_weight,
            "augment": self.augment,
        }

    def fit(
        self,
        train: Split,
        val: Split,
        *,
        seed: int = 0,
        sample_weight: np.ndarray | None = None,
        init: Classifier | None = None,
    ) -> Classifier:
        """Train on `train`, keep the weights with the best validation AUC; return self.

        1. build the ResNet (seeded; or start from the fitted `init`'s weights: fine-tuning), AdamW and
           the (optionally class-weighted) cross-entropy;
        2. draw mini-batches from seeded permutations of `train`, augment them if asked, take a step on
           the batch's loss, a mean weighted by `sample_weight` (one weight >= 0 per training image,
           e.g. a lower weight on synthetic images) and the class weights;
        3. every `eval_every` steps (and before the first step when fine-tuning) score `val`: keep the
           weights when the AUC improves (ties go to the lower validation loss), stop after `patience`
           evaluations without improvement.
        """
        self._check_split(train, "train")
        self._check_split(val, "val")
        weights = self._check_sample_weight(sample_weight, len(train))
        if init is not None:
            self._check_init(init)
        device = torch.device(self.device) if self.device else default_device()
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(derive_seed(seed, "classifier"))
            network = self._build().to(device)
            if init is not None:
                network.load_state_dict(init._fitted_network().state_dict())
            optimiser = torch.optim.AdamW(network.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay)
            images = torch.from_numpy(train.images).to(device)
            labels = torch.from_numpy(train.labels).to(device)
            image_weight = torch.from_numpy(weights).to(device)
            class_weight = self._loss_weight(train.labels).to(device) if self.class_weight else None
            augment = augmentation(self.augment, self.spatial_dims, seed) if self.augment else None
            batches = _batches(len(train), self.batch_size, torch.Generator().manual_seed(derive_seed(seed, "batches")))
            best: tuple[float, float] = (-math.inf, -math.inf)
            best_state, best_step, stale, history = None, 0, 0, []
            if init is not None:
                best = _validation_score(network, val, self.num_classes, device)
                best_state = copy.deepcopy(network.state_dict())
                history.append({"step": 0, "train_loss": None, "val_auc": best[0], "val_loss": -best[1]})
            for step in range(1, self.max_steps + 1):
                network.train()
                index = next(batches).to(device)
                batch = images[index]
                if augment is not None:
                    batch = torch.stack([augment(image) for image in batch]).clamp_(0.0, 1.0)
                loss = _weighted_cross_entropy(network(batch), labels[index], image_weight[index], class_weight)
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                if step % self.eval_every and step != self.max_steps:
                    continue
                score = _validation_score(network, val, self.num_classes, device)
                history.append({"step": step, "train_loss": float(loss.detach()), "val_auc": score[0], "val_loss": -score[1]})
                if score > best:
                    best, best_step, stale = score, step, 0
                    best_state = copy.deepcopy(network.state_dict())
                else:
                    stale += 1
                    if stale >= self.patience:
                        break
        network.load_state_dict(best_state)
        self.network_ = network.eval()
        self.best_step_ = best_step
        self.history_ = history
        return self

    def predict_proba(self, images: np.ndarray | Split | torch.Tensor, *, batch_size: int = 256) -> np.ndarray:
        """Class probabilities ``(N, num_classes)`` (softmax of the logits), float64."""
        network = self._fitted_network()
        array = images.images if isinstance(images, Split) else images
        tensor = torch.as_tensor(array, dtype=torch.float32)
        if tensor.ndim != self.spatial_dims + 2 or tensor.shape[1] != self.in_channels:
            raise InputError(
                f"images shaped (N, {self.in_channels}, {', '.join('...' for _ in range(self.spatial_dims))})",
                f"shape {tuple(tensor.shape)}",
                "pass channel-first images of the layout the classifier was trained on",
            )
        device = next(network.parameters()).device
        return _predict(network, tensor, device, batch_size)

    def predict(self, images: np.ndarray | Split | torch.Tensor) -> np.ndarray:
        """The most probable class per image, int64 ``(N,)``."""
        return self.predict_proba(images).argmax(axis=1)

    def save(self, directory: str | Path) -> Path:
        """Write ``config.json`` (arguments, training record, versions) and ``model.safetensors``."""
        network = self._fitted_network()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        with atomic_path(directory / WEIGHTS_FILE) as temp:
            temp.write_bytes(tensors_to_bytes(network.state_dict()))  # not save_file: it creates owner-only (0600) files
        record = {
            "class": type(self).__name__,
            "config": self.config,
            "best_step": self.best_step_,
            "history": self.history_,
            "versions": versions(),
        }
        with atomic_path(directory / CONFIG_FILE) as temp:
            temp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        return directory

    @classmethod
    def load(cls, directory: str | Path, *, device: str | None = None) -> Classifier:
        """Rebuild a fitted classifier from `save`'s directory (no pickle: JSON + safetensors)."""
        directory = Path(directory)
        config_path, weights_path = directory / CONFIG_FILE, directory / WEIGHTS_FILE
        if not config_path.exists() or not weights_path.exists():
            raise InputError(
                f"a classifier directory with {CONFIG_FILE} and {WEIGHTS_FILE}",
                "missing files",
                "pass the directory written by Classifier.save",
                source=str(directory),
            )
        record = read_json(config_path, fix="restore the file written by Classifier.save")
        if not isinstance(record, dict) or record.get("class") != cls.__name__:
            found = f"class {record.get('class')!r}" if isinstance(record, dict) and "class" in record else (
                "a config.json of something else (a generator's run directory?)")
            raise InputError(
                f"a saved {cls.__name__} (written by Classifier.save)", found,
                "point to a classifier directory, e.g. utility/classifiers/real/seed-0 of `genrad evaluate utility`",
                source=str(directory),
            )
        config = dict(record["config"])
        if "lr" in config:  # saved before the argument took genrad's one name for it
            config["learning_rate"] = config.pop("lr")
        classifier = cls(**config, device=device)
        target = torch.device(device) if device else default_device()
        network = classifier._build()
        network.load_state_dict(load_file(str(weights_path), device=str(target)))
        classifier.network_ = network.to(target).eval()
        classifier.best_step_ = record["best_step"]
        classifier.history_ = record["history"]
        return classifier

    def _build(self) -> torch.nn.Module:
        return ResNet(
            block="basic",
            layers=list(self.layers),
            block_inplanes=list(self.channels),
            spatial_dims=self.spatial_dims,
            n_input_channels=self.in_channels,
            conv1_t_size=3,
            conv1_t_stride=self.stem_stride,
            no_max_pool=True,
            num_classes=self.num_classes,
        )

    def _loss_weight(self, labels: np.ndarray) -> torch.Tensor:
        counts = np.bincount(labels, minlength=self.num_classes).astype(np.float64)
        weights = np.where(counts > 0, counts.sum() / (self.num_classes * np.maximum(counts, 1)), 0.0)
        return torch.as_tensor(weights, dtype=torch.float32)

    def _fitted_network(self) -> torch.nn.Module:
        if not hasattr(self, "network_"):
            raise NotFittedError(self)
        return self.network_

    def _check_config(self) -> None:
        name = type(self).__name__
        if self.spatial_dims not in (2, 3):
            raise InputError("spatial_dims 2 or 3", str(self.spatial_dims), f"build the {name} for 2D or 3D images")
        if len(self.layers) != len(self.channels) or not self.layers:
            raise InputError(
                "one channel count per ResNet stage",
                f"layers {self.layers} and channels {self.channels}",
                f"give {name} layers and channels of the same length",
            )
        if self.augment not in AUGMENTATIONS:
            raise InputError(f"augment in {AUGMENTATIONS} (or True / False)", repr(self.augment), "use augment='trivialaugment'")
        if self.class_weight not in CLASS_WEIGHTS:
            raise InputError(f"class_weight in {CLASS_WEIGHTS}", repr(self.class_weight), "use None or 'balanced'")
        for key in ("num_classes", "batch_size", "max_steps", "eval_every", "patience"):
            if int(getattr(self, key)) < (2 if key == "num_classes" else 1):
                raise InputError(f"{key} >= {2 if key == 'num_classes' else 1}", str(getattr(self, key)), f"fix {name}({key}=...)")

    def _check_sample_weight(self, sample_weight: np.ndarray | None, n: int) -> np.ndarray:
        """One finite weight >= 0 per training image, not all zero (ones when None), float32."""
        if sample_weight is None:
            return np.ones(n, dtype=np.float32)
        weights = np.asarray(sample_weight, dtype=np.float64)
        if weights.shape != (n,) or not np.isfinite(weights).all() or (weights < 0).any() or not weights.any():
            raise InputError(
                f"sample_weight: {n} finite weights >= 0, not all zero",
                f"an array of shape {weights.shape}" + ("" if weights.shape != (n,) else " with negative, non-finite or only zero values"),
                "pass one loss weight per training image (e.g. 1 for real, 0.3 for synthetic images)",
            )
        return weights.astype(np.float32)

    def _check_init(self, init: Classifier) -> None:
        """`init` must be a fitted classifier of the same architecture (its weights start the fine-tuning)."""
        keys = ("spatial_dims", "in_channels", "num_classes", "layers", "channels", "stem_stride")
        mine, theirs = ({key: config[key] for key in keys} for config in (self.config, init.config))
        if mine != theirs:
            raise InputError(f"init: a classifier with this architecture {mine}", str(theirs),
                             "pre-train with the same layers, channels and stem_stride")
        init._fitted_network()

    def _check_split(self, split: Split, role: str) -> None:
        expected = self.spatial_dims + 2
        if split.images.ndim != expected or split.images.shape[1] != self.in_channels:
            raise InputError(
                f"{role} images with {self.in_channels} channel(s) and {self.spatial_dims} spatial axes",
                f"shape {split.images.shape}",
                "build the Classifier with matching spatial_dims / in_channels",
            )
        if int(split.labels.max()) >= self.num_classes:
            raise InputError(
                f"{role} labels in 0..{self.num_classes - 1}",
                f"label {int(split.labels.max())}",
                "build the Classifier with num_classes covering every label",
            )
        if role == "val" and len(np.unique(split.labels)) < 2:
            raise InputError(
                "a validation split with at least two classes (early stopping scores its AUC)",
                f"only class {int(split.labels[0])}",
                "use a stratified validation split",
            )


def _batches(n: int, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """Endless full mini-batches from consecutive seeded permutations (no short last batch)."""
    size = min(batch_size, n)
    pending = torch.empty(0, dtype=torch.int64)
    while True:
        while len(pending) < size:
            pending = torch.cat([pending, torch.randperm(n, generator=generator)])
        yield pending[:size]
        pending = pending[size:]


def _weighted_cross_entropy(
    logits: torch.Tensor, labels: torch.Tensor, image_weight: torch.Tensor, class_weight: torch.Tensor | None
) -> torch.Tensor:
    """``sum_i w_i c_(y_i) CE_i / sum_i w_i c_(y_i)``: per-image weights `w` times class weights `c` (PyTorch's
    weighted-mean convention; all ones is the plain mean). A batch whose weights are all zero has loss 0."""
    weight = image_weight if class_weight is None else image_weight * class_weight[labels]
    losses = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
    return (weight * losses).sum() / weight.sum().clamp_min(1e-12)


@torch.no_grad()
def _predict(network: torch.nn.Module, images: torch.Tensor, device: torch.device, batch_size: int) -> np.ndarray:
    network.eval()
    chunks = [torch.softmax(network(chunk.to(device)), dim=1).cpu() for chunk in images.split(batch_size)]
    return torch.cat(chunks).double().numpy()


def _validation_score(network: torch.nn.Module, val: Split, num_classes: int, device: torch.device) -> tuple[float, float]:
    """(AUC, -cross-entropy) on the validation split: larger is better, compared lexicographically."""
    probabilities = _predict(network, torch.from_numpy(val.images), device, 256)
    picked = probabilities[np.arange(len(val)), val.labels]
    loss = float(-np.log(np.clip(picked, 1e-12, None)).mean())
    return roc_auc(val.labels, probabilities, num_classes=num_classes), -loss
