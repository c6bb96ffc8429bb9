"""Sampling plans: how many synthetic images of each class to make, in which order, with which covariates.

A plan is built from one of three requests (exactly one):

- explicit counts, ``per_class={0: 5000, 1: 1000}`` (CLI ``--per-class 0=5000,1=1000``);
- ``balance=True``: top every class up to the largest class of the real training set, so that
  real + synthetic is balanced (the largest class gets no synthetic image);
- ``multiple=K``: K times the real training set, keeping its class ratio
  (``round(K * n_k)`` images of class k).

Classes are generated rare first (ascending real training count, ties by class index), so an
interrupted run has already covered the classes that need it most. When the model was trained with
covariates, each image gets a covariate row drawn with replacement, seeded, from the real clinical
table rows of its class (or from a user table; a table without a ``label`` column is drawn from
unconditionally). Every check runs before any work, and failures raise `InputError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import torch

from genrad.core import derive_seed
from genrad.errors import InputError
from genrad.provenance import hash_arrays

LABEL_COLUMN = "label"


class GeneratorLike(Protocol):
    """What synthesis needs from a model: the `genrad.models.Generator` interface."""

    config: Mapping[str, Any]
    num_classes: int
    image_shape: tuple[int, ...]
    covariates: Sequence[str]

    def sample(
        self,
        n: int,
        *,
        labels: torch.Tensor | None = None,
        covariates: np.ndarray | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor: ...

    def model_hash(self) -> str: ...

    def with_sampling(self, **settings: Any) -> Any: ...


@dataclass(frozen=True)
class SamplingPlan:
    """Images per class in generation order, and one covariate row per image (or none)."""

    counts: tuple[tuple[int, int], ...]
    covariates: pd.DataFrame | None = None
    covariate_source: str = "none"

    def __post_init__(self) -> None:
        if self.covariates is not None and len(self.covariates) != len(self):
            raise ValueError(f"plan has {len(self)} images but {len(self.covariates)} covariate rows")

    def __len__(self) -> int:
        return sum(n for _, n in self.counts)

    @property
    def labels(self) -> np.ndarray:
        """The class of every planned image, in generation order (int64)."""
        classes = np.asarray([k for k, _ in self.counts], dtype=np.int64)
        return np.repeat(classes, [n for _, n in self.counts])

    @property
    def covariate_names(self) -> list[str]:
        return [] if self.covariates is None else list(self.covariates.columns)

    def covariate_array(self) -> np.ndarray | None:
        """Covariates as float64 ``(n, n_covariates)`` in original units, or None."""
        return None if self.covariates is None else self.covariates.to_numpy(dtype=np.float64)

    def summary(self) -> dict[str, Any]:
        """JSON-ready description: counts in order, total, covariate names, source and hash."""
        covariates = self.covariate_array()
        return {
            "n": len(self),
            "order": [k for k, _ in self.counts],
            "per_class": {str(k): n for k, n in self.counts},
            "covariates": self.covariate_names,
            "covariate_source": self.covariate_source,
            "covariates_hash": None if covariates is None else hash_arrays(covariates),
        }


def make_plan(
    model: GeneratorLike,
    *,
    per_class: Mapping[int, int] | str | None = None,
    balance: bool = False,
    multiple: float | None = None,
    covariates: pd.DataFrame | str | Path | None = None,
    data: Any = None,
    seed: int = 0,
) -> SamplingPlan:
    """Build and check a plan for `model` (see the module docstring for the three requests).

    `data` (a `Cohort` or a path for `genrad.data.load`) supplies the real training class counts when
    the model did not record them, and the real clinical table that covariates are drawn from.
    """
    modes = [name for name, on in (("per_class", per_class is not None), ("balance", balance), ("multiple", multiple is not None)) if on]
    if len(modes) != 1:
        raise InputError(
            "exactly one of per_class, balance, multiple",
            ", ".join(modes) or "none",
            "choose one: --per-class 0=5000,1=1000, --balance or --multiple K",
        )
    num_classes = int(model.num_classes)
    cohort = load_data(data)
    real = training_class_counts(model, cohort)
    if per_class is not None:
        requested = parse_per_class(per_class) if isinstance(per_class, str) else dict(per_class)
        counts = _check_counts(requested, num_classes)
    elif real is None:
        raise InputError(
            f"the real training class counts (needed for --{modes[0]})",
            "a model that did not record them and no data",
            "pass the training data with --data PATH, or give --per-class counts",
        )
    elif balance:
        largest = max(real.values())
        counts = {k: largest - n for k, n in real.items()}
    else:
        if not (isinstance(multiple, int | float) and np.isfinite(multiple) and multiple > 0):
            raise InputError("a positive multiple K", repr(multiple), "give --multiple 2 (or 0.5, 10, ...)")
        counts = {k: round(multiple * n) for k, n in real.items()}
    order = sorted((k for k, n in counts.items() if n > 0), key=lambda k: (real[k] if real else 0, k))
    plan_counts = tuple((k, counts[k]) for k in order)
    if not plan_counts:
        raise InputError(
            "a plan with at least one image",
            f"zero images ({modes[0]}: {counts})",
            "ask for more images (with --balance, the real classes are already balanced)",
        )
    names = [str(c) for c in model.covariates]
    if not names:
        if covariates is not None:
            table = _read_table(covariates)
            extra = [c for c in table.columns if c != LABEL_COLUMN]
            raise InputError(
                "no covariates (the model was trained without any)",
                f"covariate columns {extra}",
                "drop --covariates, or train the model with these covariates",
            )
        return SamplingPlan(plan_counts)
    pool, source = _covariate_pool(names, covariates, cohort)
    return SamplingPlan(plan_counts, _draw_covariates(pool, names, plan_counts, seed), source)


def parse_per_class(text: str) -> dict[int, int]:
    """Parse ``"0=5000,1=1000"`` into ``{0: 5000, 1: 1000}``."""
    counts: dict[int, int] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        try:
            if not sep:
                raise ValueError(item)
            label, n = int(key), int(value)
        except ValueError:
            raise InputError(
                "CLASS=COUNT pairs separated by commas", repr(item), "write e.g. --per-class 0=5000,1=1000"
            ) from None
        if label in counts:
            raise InputError("each class once", f"class {label} twice", "give one count per class")
        counts[label] = n
    return counts


def training_class_counts(model: GeneratorLike, cohort: Any = None) -> dict[int, int] | None:
    """Real training images per class: as recorded by the model, else from `cohort.train`, else None."""
    recorded = getattr(model, "class_counts_", None)
    if recorded is not None:
        items = recorded.items() if isinstance(recorded, Mapping) else enumerate(recorded)
        return {int(k): int(n) for k, n in items}
    if cohort is not None:
        return cohort.train.class_counts(int(model.num_classes))
    return None


def _check_counts(requested: Mapping[Any, Any], num_classes: int) -> dict[int, int]:
    counts = {}
    for key, value in requested.items():
        if isinstance(key, bool) or not isinstance(key, int | np.integer) or not 0 <= key < num_classes:
            raise InputError(
                f"classes in 0..{num_classes - 1} (the model's classes)",
                f"class {key!r}",
                "ask only for classes the model was trained on",
            )
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
            raise InputError("a count >= 0 per class", f"{value!r} for class {key}", "give whole, non-negative counts")
        counts[int(key)] = int(value)
    return counts


def load_data(data: Any) -> Any:
    """`data` as a `Cohort`: loaded with `genrad.data.load` when it is a path, else returned as is."""
    if data is None or not isinstance(data, str | Path):
        return data
    from genrad.data import load

    return load(data)


def _read_table(table: pd.DataFrame | str | Path) -> pd.DataFrame:
    if isinstance(table, pd.DataFrame):
        return table.reset_index(drop=True)
    path = Path(table)
    if not path.is_file():
        raise InputError("an existing covariate CSV", "no such file", "check the --covariates path", source=str(path))
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        reason = str(error).split("\n")[0]
        raise InputError("a readable CSV", f"an unreadable file ({reason})", "save the table as CSV", source=str(path)) from None


def _covariate_pool(names: list[str], covariates: Any, cohort: Any) -> tuple[pd.DataFrame, str]:
    """The table covariates are drawn from (model covariates + optional label), checked, and its name."""
    if covariates is not None:
        pool = _read_table(covariates)
        source = str(covariates) if not isinstance(covariates, pd.DataFrame) else "table"
        unknown = [c for c in pool.columns if c not in names and c != LABEL_COLUMN]
        if unknown:
            raise InputError(
                f"only the model's covariates {names} (and optionally '{LABEL_COLUMN}')",
                f"covariates {unknown} the model was not trained on",
                "drop or rename these columns",
                source=source,
            )
    elif cohort is not None and cohort.train.clinical is not None:
        pool = cohort.train.clinical.assign(**{LABEL_COLUMN: cohort.train.labels})
        source = f"{cohort.source or 'data'} (train clinical table)"
    else:
        raise InputError(
            f"covariate values for {names} (the model was trained with them)",
            "no covariate table and no data with a clinical table",
            "pass the real training data with --data PATH or a covariate table with --covariates CSV",
        )
    missing = [c for c in names if c not in pool.columns]
    if missing:
        raise InputError(f"columns {names}", f"no column {missing}", "add the model's covariates", source=source)
    values = pool[names].apply(pd.to_numeric, errors="coerce")
    if values.isna().any().any() or not np.isfinite(values.to_numpy(dtype=np.float64)).all():
        raise InputError("finite numeric covariates", "missing or non-numeric values", "fill or drop those rows", source=source)
    if LABEL_COLUMN in pool.columns:
        values[LABEL_COLUMN] = pool[LABEL_COLUMN].to_numpy()
    return values, source


def _draw_covariates(
    pool: pd.DataFrame, names: list[str], counts: tuple[tuple[int, int], ...], seed: int
) -> pd.DataFrame:
    """Draw one row per planned image, with replacement, from the pool rows of the image's class."""
    rng = np.random.default_rng(derive_seed(seed, "covariates"))
    values = pool[names].to_numpy(dtype=np.float64)
    parts = []
    for label, n in counts:
        rows = np.flatnonzero(pool[LABEL_COLUMN].to_numpy() == label) if LABEL_COLUMN in pool else np.arange(len(pool))
        if rows.size == 0:
            raise InputError(
                f"covariate rows for class {label}",
                "none",
                f"add rows with {LABEL_COLUMN}={label} to the covariate table",
            )
        parts.append(values[rows[rng.integers(0, rows.size, size=n)]])
    return pd.DataFrame(np.concatenate(parts), columns=names)
