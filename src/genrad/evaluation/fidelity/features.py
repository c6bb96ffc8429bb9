"""Radiomic feature tables, the input of every fidelity metric: one `FeatureTable` per image set."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from genrad.errors import InputError
from genrad.provenance import hash_arrays

LABEL_COLUMN = "label"


@dataclass(frozen=True)
class FeatureTable:
    """Radiomic features of one image set: ``values`` ``(n, d)``, column ``names``, optional ``labels``
    and the content hash of the data they came from."""

    values: np.ndarray
    names: tuple[str, ...]
    labels: np.ndarray | None
    data_hash: str

    def __len__(self) -> int:
        return int(self.values.shape[0])

    def rows(self, mask: np.ndarray) -> np.ndarray:
        return self.values[mask]


def feature_table(
    data: Any,
    *,
    feature_set: str = "frd_v1",
    engine: str | None = None,
    workers: int = 1,
    name: str = "data",
    cache_dir: str | Path | None = None,
) -> FeatureTable:
    """Features of ``data``: a `FeatureTable`; a feature DataFrame (numeric columns, optional ``label``
    column); a `genrad.data.Split` or any object with ``images`` and ``labels``; or an image array.
    Images go through `genrad.radiomics.extract` (0..255 scale; with ``cache_dir`` an interrupted
    extraction resumes and a repeated one is read back)."""
    if isinstance(data, FeatureTable):
        return data
    if isinstance(data, pd.DataFrame):
        labels = data[LABEL_COLUMN].to_numpy(np.int64) if LABEL_COLUMN in data.columns else None
        numeric = data.drop(columns=[LABEL_COLUMN], errors="ignore").select_dtypes("number")
        values = numeric.to_numpy(np.float64)
        arrays = [values] if labels is None else [values, labels]
        return FeatureTable(values, tuple(str(c) for c in numeric.columns), labels, hash_arrays(*arrays))
    images, labels = images_and_labels(data, name)
    from genrad.radiomics import DEFAULT_ENGINE, extract

    table = extract(images, feature_set=feature_set, engine=engine or DEFAULT_ENGINE, workers=workers, cache_dir=cache_dir)
    content_hash = data.content_hash() if hasattr(data, "content_hash") else hash_arrays(images)
    return FeatureTable(table.to_numpy(np.float64), tuple(table.columns), labels, content_hash)


def describe(table: FeatureTable) -> dict[str, Any]:
    described: dict[str, Any] = {"hash": table.data_hash, "n": len(table)}
    if table.labels is not None:
        values, counts = np.unique(table.labels, return_counts=True)
        described["classes"] = {str(v): int(c) for v, c in zip(values, counts, strict=True)}
    return described


def aligned(table: FeatureTable, names: tuple[str, ...], role: str) -> FeatureTable:
    """``table`` with its columns in the order of ``names`` (the reference's)."""
    if table.names == names:
        return table
    missing = sorted(set(names) - set(table.names))
    if missing:
        raise InputError(
            f"the reference's {len(names)} feature columns in the {role} features",
            f"{len(missing)} missing (e.g. {missing[0]!r})",
            "extract every set with the same feature set and engine",
            source=role,
        )
    order = [table.names.index(name) for name in names]
    return FeatureTable(table.values[:, order], names, table.labels, table.data_hash)


def images_and_labels(data: Any, role: str) -> tuple[np.ndarray, np.ndarray | None]:
    if isinstance(data, np.ndarray):
        return data, None
    images = getattr(data, "images", None)
    if isinstance(images, np.ndarray):
        labels = getattr(data, "labels", None)
        return images, None if labels is None else np.asarray(labels, dtype=np.int64)
    raise InputError(
        "a Split, an image array, a feature DataFrame or a FeatureTable",
        f"a {type(data).__name__}",
        "pass e.g. cohort.test (a Cohort must be indexed by split: cohort['test'])",
        source=role,
    )
