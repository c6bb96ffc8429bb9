"""`Cohort`: images, labels, class names, clinical table and named splits, with a content hash.

Conventions (shared by every genrad package):

- images are float32, channel-first, ``(N, C, H, W)`` in 2D or ``(N, C, D, H, W)`` in 3D, with
  intensities in ``[0, 1]``. How the source intensities were mapped there is recorded in
  ``Cohort.preprocessing`` (it is an explicit loader option, never a hidden default);
- labels are int64 ``(N,)`` in ``0 .. num_classes - 1``;
- ``clinical`` is an optional pandas DataFrame with one row per image (age, sex, ...);
- ``truth`` is an optional DataFrame of generating parameters (the phantom keeps them) so that
  metrics can be checked against ground truth;
- ``masks`` are optional uint8 label maps ``(N, 1, *spatial)`` on the images' grid (0 background; lesions,
  organs or regions 1, 2, ...; `genrad.data.masks`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from genrad.data.intensity import display_floor
from genrad.data.npz_format import save_npz
from genrad.errors import InputError
from genrad.provenance import hash_arrays

SPLIT_NAMES = ("train", "val", "test")
MIN_SPATIAL_SIZE = 4
MAX_CLASSES = 1000
"""Classes a cohort may have: a label beyond it is a corrupt or mis-encoded file, not a class."""


@dataclass(frozen=True)
class Split:
    """One split of a cohort: images, labels and optional per-image tables."""

    images: np.ndarray
    labels: np.ndarray
    clinical: pd.DataFrame | None = None
    truth: pd.DataFrame | None = None
    name: str = "train"
    masks: np.ndarray | None = None

    def __post_init__(self) -> None:
        validate_split(self.images, self.labels, name=self.name)
        if self.masks is not None and (self.masks.dtype != np.uint8 or self.masks.shape != (len(self.labels), 1, *self.images.shape[2:])):
            raise InputError(
                f"uint8 masks shaped (N, 1, *spatial) like the images {(len(self.labels), 1, *self.images.shape[2:])}",
                f"{self.masks.dtype} masks shaped {self.masks.shape} in split {self.name!r}",
                "give one label map per image on the image's grid",
            )
        for table_name in ("clinical", "truth"):
            table = getattr(self, table_name)
            if table is not None and len(table) != len(self.labels):
                raise InputError(
                    f"one {table_name} row per image ({len(self.labels)} rows)",
                    f"{len(table)} rows in split {self.name!r}",
                    f"give the {table_name} table exactly one row per image, in image order",
                )

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def spatial_dims(self) -> int:
        """2 for (N, C, H, W) images, 3 for (N, C, D, H, W) volumes."""
        return self.images.ndim - 2

    @property
    def image_shape(self) -> tuple[int, ...]:
        """Shape of one image, channel first: (C, H, W) or (C, D, H, W)."""
        return tuple(int(s) for s in self.images.shape[1:])

    def class_counts(self, num_classes: int | None = None) -> dict[int, int]:
        """Images per class; classes with no image are listed with 0 when `num_classes` is given."""
        size = num_classes if num_classes is not None else int(self.labels.max(initial=-1)) + 1
        counts = np.bincount(self.labels, minlength=size)
        return {k: int(c) for k, c in enumerate(counts)}

    def subset(self, indices: np.ndarray | Sequence[int]) -> Split:
        """A new split holding the images at `indices` (tables are subset alike)."""
        index = np.asarray(indices, dtype=np.int64)
        return replace(
            self,
            images=self.images[index],
            labels=self.labels[index],
            clinical=None if self.clinical is None else self.clinical.iloc[index].reset_index(drop=True),
            truth=None if self.truth is None else self.truth.iloc[index].reset_index(drop=True),
            masks=None if self.masks is None else self.masks[index],
        )

    def content_hash(self) -> str:
        """SHA-256 of images, labels, the clinical table and the masks."""
        masks = [] if self.masks is None else [self.masks]
        return hash_arrays(self.images, self.labels, *_table_arrays(self.clinical), *masks)


@dataclass(frozen=True)
class Cohort:
    """Images with labels in named splits (train/val/test), class names, spacing and provenance.

    `synthetic` marks generated data (genrad's synthetic.npz): such a cohort may have classes with no
    image, since a balancing plan only tops up the smaller classes.
    """

    splits: Mapping[str, Split]
    class_names: tuple[str, ...]
    spacing: tuple[float, ...] = ()
    source: str = ""
    preprocessing: Mapping[str, Any] = field(default_factory=dict)
    synthetic: bool = False

    def __post_init__(self) -> None:
        if not self.splits:
            raise InputError("at least one split", "none", "give the cohort a 'train' split", source=self.source)
        shapes = {name: split.image_shape for name, split in self.splits.items()}
        if len(set(shapes.values())) != 1:
            raise InputError(
                "every split to have the same image shape",
                f"shapes {shapes}",
                "resize the images to one size (loader option size=...)",
                source=self.source,
            )
        num_classes = len(self.class_names)
        all_labels = np.concatenate([split.labels for split in self.splits.values()])
        if int(all_labels.max()) >= num_classes:
            raise InputError(
                f"labels in 0..{num_classes - 1} ({num_classes} class names)",
                f"label {int(all_labels.max())}",
                "give one class name per label value",
                source=self.source,
            )
        missing = sorted(set(range(num_classes)) - set(np.unique(all_labels).tolist()))
        if missing and not self.synthetic:  # a synthetic top-up set may leave the largest class out
            raise InputError(
                "at least one image in every class",
                f"zero images in class {', '.join(self.class_names[k] for k in missing)}",
                "remove the empty class or relabel the data so labels are 0..K-1 with no gaps",
                source=self.source,
            )
        if self.spacing and len(self.spacing) != self.spatial_dims:
            raise InputError(
                f"{self.spatial_dims} spacing values",
                f"{len(self.spacing)}",
                "give one spacing value per spatial axis",
                source=self.source,
            )

    def __getitem__(self, name: str) -> Split:
        if name not in self.splits:
            raise InputError(
                f"a split named one of {sorted(self.splits)}",
                repr(name),
                "choose an existing split (see `genrad data inspect`)",
                source=self.source,
            )
        return self.splits[name]

    @property
    def train(self) -> Split:
        return self["train"]

    @property
    def val(self) -> Split:
        return self["val"]

    @property
    def test(self) -> Split:
        return self["test"]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def spatial_dims(self) -> int:
        return next(iter(self.splits.values())).spatial_dims

    @property
    def image_shape(self) -> tuple[int, ...]:
        return next(iter(self.splits.values())).image_shape

    @property
    def clinical_columns(self) -> list[str]:
        for split in self.splits.values():
            if split.clinical is not None:
                return list(split.clinical.columns)
        return []

    def content_hash(self) -> str:
        """SHA-256 over every split (in name order), the class names and the spacing."""
        parts = [np.frombuffer(split_hash.encode(), dtype=np.uint8) for split_hash in self._split_hashes()]
        names = np.frombuffer("\n".join(self.class_names).encode(), dtype=np.uint8)
        return hash_arrays(*parts, names, np.asarray(self.spacing, dtype=np.float64))

    def _split_hashes(self) -> list[str]:
        return [f"{name}:{self.splits[name].content_hash()}" for name in sorted(self.splits)]

    def summary(self) -> dict[str, Any]:
        """What `genrad data inspect --json` prints: per-split size, shape, dtype, range, display floor
        (`genrad.data.intensity.display_floor`), class counts."""
        splits = {}
        for name, split in self.splits.items():
            splits[name] = {
                "n": len(split),
                "shape": list(split.image_shape),
                "dtype": str(split.images.dtype),
                "intensity_range": [float(split.images.min()), float(split.images.max())],
                "display_floor": display_floor(split.images),
                "classes": {str(k): v for k, v in split.class_counts(self.num_classes).items()},
            }
            if split.masks is not None:
                empty = ~split.masks.reshape(len(split), -1).any(axis=1)
                splits[name]["masks"] = {"labels": sorted(int(v) for v in np.unique(split.masks) if v), "empty": int(empty.sum())}
        return {
            "source": self.source,
            "splits": splits,
            "class_names": list(self.class_names),
            "spatial_dims": self.spatial_dims,
            "spacing": list(self.spacing),
            "clinical_columns": self.clinical_columns,
            "preprocessing": dict(self.preprocessing),
            "content_hash": self.content_hash(),
        }

    def save(self, path: str) -> str:
        """Write a MedMNIST-compatible `.npz` (see `genrad.data.npz_format.save_npz`)."""
        return str(save_npz(self, path))


def validate_split(images: np.ndarray, labels: np.ndarray, *, name: str, source: str | None = None) -> None:
    """Check one split's arrays against the cohort conventions; raise `InputError` naming the fix."""
    if images.dtype != np.float32 or images.ndim not in (4, 5):
        raise InputError(
            "float32 images shaped (N, C, H, W) or (N, C, D, H, W)",
            f"{images.dtype} array of shape {images.shape} in split {name!r}",
            "load data with genrad.data.load, which converts and normalises images",
            source=source,
        )
    if labels.ndim != 1 or labels.dtype != np.int64:
        raise InputError(
            "int64 labels shaped (N,)",
            f"{labels.dtype} labels of shape {labels.shape} in split {name!r}",
            "pass labels as a 1-D integer array",
            source=source,
        )
    if images.shape[0] == 0:
        raise InputError(
            "at least one image per split", f"an empty split {name!r}", "remove the empty split", source=source
        )
    if images.shape[0] != labels.shape[0]:
        raise InputError(
            "one label per image",
            f"{images.shape[0]} images but {labels.shape[0]} labels in split {name!r}",
            "make the image and label arrays the same length",
            source=source,
        )
    if min(images.shape[2:]) < MIN_SPATIAL_SIZE:
        raise InputError(
            f"images of at least {MIN_SPATIAL_SIZE} pixels per axis",
            f"image shape {images.shape[1:]} in split {name!r}",
            "check the array layout (N, H, W) or resize the images",
            source=source,
        )
    if not np.isfinite(images).all():
        raise InputError(
            "finite pixel values",
            f"NaN or inf pixels in split {name!r}",
            "replace or drop the images with non-finite values",
            source=source,
        )
    if labels.min() < 0 or labels.max() >= MAX_CLASSES:
        bad = int(labels.min()) if labels.min() < 0 else int(labels.max())
        raise InputError(
            f"labels in 0..{MAX_CLASSES - 1}", f"label {bad} in split {name!r}", "encode classes as 0..K-1", source=source
        )


def _table_arrays(table: pd.DataFrame | None) -> list[np.ndarray]:
    if table is None:
        return []
    arrays = []
    for column in table.columns:
        arrays.append(np.frombuffer(str(column).encode(), dtype=np.uint8))
        values = table[column].to_numpy()
        arrays.append(values.astype(str) if values.dtype == object else values)
    return arrays
