"""Stratified train / val / test splits, seeded."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from genrad.errors import InputError

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
