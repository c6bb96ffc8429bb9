"""Clinical records synthesized with the images: one SDV Gaussian copula per class.

`ClinicalSynthesizer` (Patki et al. 2016, "The Synthetic Data Vault"; a Gaussian copula over
per-column marginals) models the clinical table conditioned on the class; `sample_clinical` draws
records for requested class counts, `records_for_plan` gives each planned image its own record
(``genrad generate --with-clinical``) and `generate_pairs` draws images conditioned on class and
record. Their joint fidelity is measured by `genrad.scenarios.multimodal`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from genrad.core import derive_seed
from genrad.data.cohort import Split
from genrad.errors import InputError, NotFittedError, require_extra

LABEL_COLUMN = "label"
MIN_ROWS_PER_CLASS = 5


def column_types(table: pd.DataFrame) -> dict[str, dict[str, str]]:
    """SDV / SDMetrics column types: numbers are numerical, everything else categorical."""
    types = pd.api.types
    return {
        column: {"sdtype": "numerical" if types.is_numeric_dtype(values) and not types.is_bool_dtype(values) else "categorical"}
        for column, values in table.items()
    }


class ClinicalSynthesizer:
    """Clinical records conditioned on class: one SDV Gaussian-copula synthesizer per class.

    ``enforce_min_max_values`` keeps every sampled value inside the range seen for its class.
    """

    def __init__(self, *, default_distribution: str = "beta", enforce_min_max_values: bool = True) -> None:
        self.default_distribution = default_distribution
        self.enforce_min_max_values = enforce_min_max_values

    def fit(self, table: pd.DataFrame, labels: np.ndarray) -> ClinicalSynthesizer:
        """Fit one synthesizer per class on the rows of `table` with that label; return self."""
        Metadata = require_extra("sdv.metadata", "clinical records").Metadata
        GaussianCopulaSynthesizer = require_extra("sdv.single_table", "clinical records").GaussianCopulaSynthesizer

        labels = np.asarray(labels)
        if not isinstance(table, pd.DataFrame) or table.shape[1] == 0 or len(table) != len(labels):
            raise InputError(
                "a clinical DataFrame with one row per label and at least one column",
                f"{type(table).__name__} of shape {getattr(table, 'shape', None)} and {len(labels)} labels",
                "pass split.clinical and split.labels",
            )
        table = table.reset_index(drop=True)
        counts = {int(k): int((labels == k).sum()) for k in np.unique(labels)}
        small = {k: n for k, n in counts.items() if n < MIN_ROWS_PER_CLASS}
        if small:
            raise InputError(
                f"at least {MIN_ROWS_PER_CLASS} clinical rows per class",
                f"rows per class {small}",
                "fit on a larger split (e.g. the training split) or merge rare classes",
            )
        metadata = Metadata.load_from_dict({"tables": {"clinical": {"columns": column_types(table)}}})
        self.columns_ = list(table.columns)
        self.dtypes_ = table.dtypes.to_dict()
        self.synthesizers_ = {}
        for k in counts:
            synthesizer = GaussianCopulaSynthesizer(
                metadata,
                enforce_min_max_values=self.enforce_min_max_values,
                default_distribution=self.default_distribution,
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                synthesizer.fit({"clinical": table[labels == k].reset_index(drop=True)})
            self.synthesizers_[k] = synthesizer
        return self

    def sample(self, labels: np.ndarray, *, seed: int) -> pd.DataFrame:
        """One record per label, in the order of `labels`; class k's rows use ``derive_seed(seed, "clinical", k)``."""
        if not hasattr(self, "synthesizers_"):
            raise NotFittedError(self)
        labels = np.asarray(labels)
        unknown = sorted(set(np.unique(labels).tolist()) - set(self.synthesizers_))
        if unknown:
            raise InputError(
                f"labels of the fitted classes {sorted(self.synthesizers_)}",
                f"labels {unknown}",
                "sample only classes that had clinical rows when fitting",
            )
        parts = []
        for k in np.unique(labels):
            where = np.flatnonzero(labels == k)
            synthesizer = self.synthesizers_[int(k)]
            synthesizer.reset_sampling()
            synthesizer._set_random_state(derive_seed(seed, "clinical", int(k)) % 2**32)  # SDV's only seeding hook
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                rows = synthesizer.sample(len(where))["clinical"]
            parts.append(rows.set_axis(where))
        if not parts:
            return pd.DataFrame({column: pd.Series(dtype=dtype) for column, dtype in self.dtypes_.items()})
        return pd.concat(parts).sort_index()[self.columns_].astype(self.dtypes_).reset_index(drop=True)


def sample_clinical(
    table: pd.DataFrame, labels: np.ndarray, n_per_class: Mapping[int, int], seed: int
) -> pd.DataFrame:
    """Fit `ClinicalSynthesizer` on (`table`, `labels`) and draw ``n_per_class[k]`` records of each class.

    Returns a DataFrame with a ``label`` column first and the clinical columns, classes in increasing
    order. The same inputs and seed give the same records.
    """
    bad = {k: n for k, n in n_per_class.items() if int(n) < 0}
    if bad:
        raise InputError("non-negative counts per class", str(bad), "use counts >= 0")
    synthetic_labels = np.concatenate(
        [np.full(int(n), int(k), dtype=np.int64) for k, n in sorted(n_per_class.items())] or [np.empty(0, np.int64)]
    )
    records = ClinicalSynthesizer().fit(table, labels).sample(synthetic_labels, seed=seed)
    records.insert(0, LABEL_COLUMN, synthetic_labels)
    return records


def records_for_plan(plan: Any, cohort: Any, *, seed: int) -> tuple[Any, pd.DataFrame]:
    """Synthetic clinical records for a `genrad.synthesis` sampling plan (``genrad generate --with-clinical``).

    One record per planned image, drawn by a `ClinicalSynthesizer` fitted on the real training split
    and conditioned on the image's class (seed ``derive_seed(seed, "clinical")``). Returns the plan
    with its covariates replaced by the records' values (so each image is conditioned on its own
    record) and the full records, in plan order.
    """
    from dataclasses import replace

    train = getattr(cohort, "train", None) if cohort is not None else None
    if train is None or train.clinical is None:
        raise InputError(
            "real data with a clinical table (to learn the records from)", "no clinical table",
            "pass --data PATH to data with clinical columns (e.g. the phantom)", source="--with-clinical",
        )
    records = ClinicalSynthesizer().fit(train.clinical, train.labels).sample(plan.labels, seed=derive_seed(seed, "clinical"))
    if plan.covariates is None:
        return replace(plan, covariate_source="sdv-gaussian-copula-per-class"), records
    covariates = records[plan.covariate_names].astype(np.float64)
    return replace(plan, covariates=covariates, covariate_source="sdv-gaussian-copula-per-class"), records


def generate_pairs(
    image_model: Any, clinical: ClinicalSynthesizer, n_per_class: Mapping[int, int], *, seed: int, batch_size: int = 256
) -> Split:
    """Clinical records (class-conditional) and images conditioned on class and records, as one `Split`.

    `image_model` needs ``covariates`` (the clinical column names it conditions on) and
    ``sample(n, labels=..., covariates=..., generator=...)`` returning ``(n, C, ...)`` in [0, 1].
    Batches use ``torch.Generator`` seeds derived from (`seed`, batch index).
    """
    import torch

    labels = np.concatenate([np.full(int(n), int(k), dtype=np.int64) for k, n in sorted(n_per_class.items())])
    records = clinical.sample(labels, seed=derive_seed(seed, "records"))
    columns = list(getattr(image_model, "covariates", ()))
    missing = [c for c in columns if c not in records.columns]
    if not columns or missing:
        raise InputError(
            "an image model conditioned on clinical columns the clinical synthesizer produces",
            f"model covariates {columns}, clinical columns {list(records.columns)}",
            "train the image model with covariates=(...) naming clinical columns",
        )
    images = []
    for index, start in enumerate(range(0, len(labels), batch_size)):
        stop = min(start + batch_size, len(labels))
        generator = torch.Generator().manual_seed(derive_seed(seed, "images", index))
        batch = image_model.sample(
            stop - start,
            labels=torch.as_tensor(labels[start:stop]),
            covariates=records.iloc[start:stop][columns].reset_index(drop=True),
            generator=generator,
        )
        images.append(torch.as_tensor(batch).detach().cpu().numpy().astype(np.float32))
    return Split(np.concatenate(images), labels, clinical=records, name="synthetic")
