"""`SyntheticSet`: a generated dataset on disk (``synthetic.npz`` + manifest), and its score table.

Layout of ``OUT_DIR``: ``synthetic.npz`` (MedMNIST layout: ``train_images`` / ``train_labels``, plus
``train_clinical__<covariate>``, ``train_ids``, a per-image ``synthetic`` marker and the
``genrad_provenance`` JSON string), ``manifest.parquet`` and ``manifest.csv`` (one row per planned
image, dropped ones included with ``kept=False``; ``dp_epsilon`` / ``dp_delta`` when the model was
trained with DP), ``synthesis.json`` (provenance, written last: its presence means the set is
complete), ``plan.json`` and ``shards/``.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from genrad.data.npz import channel_first
from genrad.data.npz_format import CLINICAL_INFIX
from genrad.errors import InputError
from genrad.limits import read_json
from genrad.provenance import atomic_path

NPZ = "synthetic.npz"
MANIFEST = "manifest.parquet"
MANIFEST_CSV = "manifest.csv"
RECORD = "synthesis.json"
PLAN = "plan.json"
CLINICAL_PREFIX = f"train{CLINICAL_INFIX}"
RESERVED_COLUMNS = ("id", "shard", "row", "label", "seed", "model_hash", "genrad_version", "synthetic", "kept", "file",
                    "dp_epsilon", "dp_delta")


def write_manifest(out: Path, manifest: pd.DataFrame) -> None:
    """Write ``manifest.parquet`` and ``manifest.csv`` atomically (same rows, same order)."""
    with atomic_path(out / MANIFEST) as temp:
        manifest.to_parquet(temp, index=False)
    with atomic_path(out / MANIFEST_CSV) as temp:
        manifest.to_csv(temp, index=False)


def merge_scores(manifest: pd.DataFrame, scores: pd.DataFrame) -> pd.DataFrame:
    """The manifest with per-sample score columns added (or replaced).

    `scores` is keyed by an ``id`` column (any subset of images), or else has exactly one row per kept
    image in ``synthetic.npz`` order (what evaluation code computing on the npz produces). Images
    without a score get NaN.
    """
    kept = manifest.index[manifest["kept"]]
    if "id" in scores.columns:
        unknown = sorted(set(scores["id"]) - set(manifest["id"]))
        if unknown or scores["id"].duplicated().any():
            raise InputError(
                "unique ids from the manifest in the score table",
                f"unknown ids {unknown[:3]}" if unknown else "duplicated ids",
                "score the images of this synthetic set, one row per id",
            )
        table = scores.set_index("id")
        positions = manifest["id"]
    elif len(scores) == len(kept):
        table = scores.reset_index(drop=True)
        positions = pd.Series(-1, index=manifest.index)
        positions[kept] = np.arange(len(kept))
    else:
        raise InputError(
            f"an 'id' column or one row per kept image ({len(kept)})",
            f"{len(scores)} rows without 'id'",
            "add the manifest's id column to the score table",
        )
    reserved = [c for c in table.columns if c in RESERVED_COLUMNS]
    if reserved:
        raise InputError("score columns", f"manifest columns {reserved}", "rename these score columns")
    merged = manifest.drop(columns=[c for c in table.columns if c in manifest.columns])
    aligned = table.reindex(positions.to_numpy()).reset_index(drop=True)
    return pd.concat([merged.reset_index(drop=True), aligned], axis=1)


class SyntheticSet:
    """A complete synthetic dataset in `out` (see the module docstring for the layout)."""

    def __init__(self, out: str | Path) -> None:
        self.out = Path(out)
        if not (self.out / RECORD).is_file():
            raise InputError(
                f"a finished synthetic set (with {RECORD})",
                f"no {RECORD} in {self.out}",
                "run (or resume) `genrad generate` into this folder",
                source=str(self.out),
            )

    def __repr__(self) -> str:
        return f"SyntheticSet({str(self.out)!r}, n={len(self)})"

    def __len__(self) -> int:
        return int(self.record["n_kept"])

    @property
    def npz_path(self) -> Path:
        return self.out / NPZ

    @property
    def manifest_path(self) -> Path:
        return self.out / MANIFEST

    @cached_property
    def record(self) -> dict[str, Any]:
        """Provenance of the set (``synthesis.json``)."""
        return read_json(self.out / RECORD)

    @property
    def generator(self) -> dict[str, Any]:
        """What a privacy or utility record keeps of the generating run: its model config, DP guarantee and data hash."""
        return generator_record(self.out) or {}

    @property
    def manifest(self) -> pd.DataFrame:
        """One row per planned image: id, shard, row (in the npz, -1 if dropped), label, covariates, ..."""
        return pd.read_parquet(self.manifest_path)

    @cached_property
    def split(self) -> Any:
        """The kept images as a `genrad.data.Split`: float32 in [0, 1], channel first, covariates as clinical.

        (A `Cohort` needs every class present, which a balancing plan does not give, hence a `Split`.)
        """
        from genrad.data import Split

        image_shape = tuple(self.record["generation"]["image_shape"])
        with np.load(self.npz_path, allow_pickle=False) as npz:
            stored = npz["train_images"]
            images = channel_first(stored, len(image_shape) - 1, name="train", source=str(self.npz_path))
            clinical = {k[len(CLINICAL_PREFIX) :]: npz[k] for k in npz.files if k.startswith(CLINICAL_PREFIX)}
            return Split(
                images.astype(np.float32) / np.float32(255),
                npz["train_labels"].reshape(-1).astype(np.int64),
                clinical=pd.DataFrame(clinical) if clinical else None,
                name="synthetic",
            )

    @property
    def images(self) -> np.ndarray:
        return self.split.images

    @property
    def labels(self) -> np.ndarray:
        return self.split.labels

    def add_scores(self, scores: pd.DataFrame) -> SyntheticSet:
        """Merge per-sample scores into the manifest (see `merge_scores`) and rewrite it."""
        write_manifest(self.out, merge_scores(self.manifest, scores))
        return self


def generator_record(folder: str | Path) -> dict[str, Any] | None:
    """The generating run's model config, DP guarantee and data hash from ``synthesis.json`` in `folder`,
    or None when the folder holds no generation record (e.g. a hand-made synthetic `.npz`)."""
    path = Path(folder) / RECORD
    if not path.is_file():
        return None
    payload = read_json(path)
    return {key: payload[key] for key in ("model_config", "privacy", "data_hash") if key in payload}
