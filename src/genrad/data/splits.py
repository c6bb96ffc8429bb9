"""Stratified train / val / test splits, seeded."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from genrad.errors import InputError

if TYPE_CHECKING:
    from genrad.data.cohort import Cohort

DEFAULT_FRACTIONS = {"train": 0.7, "val": 0.1, "test": 0.2}


def stratified_split(
    labels: np.ndarray, rng: np.random.Generator, fractions: Mapping[str, float] = DEFAULT_FRACTIONS
) -> dict[str, np.ndarray]:
    """Indices per split, drawn within each class so that every split holds every class.

    The first split takes what is left; every other split gets ``round(fraction * n_class)`` images of
    each class, and at least one. Raises `InputError` when a class is too small for that.
    """
    names = list(fractions)
    parts: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for k in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == k))
        start = 0
        for name in names[:0:-1]:
            take = max(1, round(fractions[name] * len(members)))
            parts[name].append(members[start : start + take])
            start += take
        if start >= len(members):
            raise InputError(
                f"at least {len(names)} images per class to split into {', '.join(names)}",
                f"{len(members)} image(s) of class {int(k)}",
                "add images of that class or give the split explicitly (a 'split' column)",
            )
        parts[names[0]].append(members[start:])
    return {name: rng.permutation(np.concatenate(parts[name])) for name in names}


def check_fractions(fractions: Sequence[float], source: str | None = None) -> dict[str, float]:
    """Three positive fractions summing to 1, as train / val / test."""
    if len(fractions) != 3 or min(fractions) <= 0 or abs(sum(fractions) - 1) > 1e-6:
        raise InputError("three positive split fractions summing to 1", repr(tuple(fractions)), "e.g. 0.7,0.1,0.2",
                         source=source)
    return dict(zip(DEFAULT_FRACTIONS, (float(f) for f in fractions), strict=True))


def split_cohort(cohort: Cohort, fractions: Sequence[float], seed: int) -> Cohort:
    """`cohort`, whose only split is ``train``, split into train / val / test by `fractions`, stratified by class
    (`stratified_split`, seeded by `seed`); the split is recorded in its preprocessing."""
    if set(cohort.splits) != {"train"}:
        raise InputError("split fractions only for data without its own split", f"splits {sorted(cohort.splits)}",
                         "drop the split fractions to use the data's own split", source=cohort.source)
    try:
        index = stratified_split(cohort.train.labels, np.random.default_rng(seed), check_fractions(fractions))
    except InputError as error:
        raise error.at(cohort.source) from None
    splits = {name: replace(cohort.train.subset(rows), name=name) for name, rows in index.items()}
    record = {**cohort.preprocessing, "split": {"fractions": list(fractions), "seed": seed, "stratified": True}}
    return replace(cohort, splits=splits, preprocessing=record)
