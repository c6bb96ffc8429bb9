"""How many images of each class an arm takes, and which: seeded, nested draws from the real and synthetic splits.

A seed fixes the draw of the real fraction and of the synthetic images (nested: the images of ``@1x`` are a subset of
those of ``@2x``); duplicated real images (``oversample``) are spread evenly over each class.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from genrad.core import derive_seed
from genrad.data.cohort import Split
from genrad.errors import InputError
from genrad.evaluation.utility.arms import Arm
from genrad.synthesis.dataset import MANIFEST

FLAG_COLUMNS = ("qa_flag", "qa_flagged", "flagged", "flag")
KEEP_COLUMNS = ("qa_keep", "qa_kept", "keep")  # not "kept": synthetic.npz holds only kept images


def synthetic_counts(real_counts: np.ndarray, base: np.ndarray, multiple: float, *, balanced: bool,
                     per_rare: bool = False) -> np.ndarray:
    """Synthetic images per class for ``multiple`` x the real training set (``real_counts``; `per_rare`: x the
    real count of its rarest class present).

    Plain: the real class ratio. Balanced: water-filling onto ``base`` (the real images the arm
    already holds per class), so the rarest classes are topped up first toward equal counts.
    """
    total = round(multiple * (real_counts[real_counts > 0].min() if per_rare else real_counts.sum()))
    if not balanced:
        return _largest_remainder(real_counts / real_counts.sum() * total, total)
    order = np.sort(base.astype(np.float64))
    for j in range(1, len(order) + 1):
        level = (total + order[:j].sum()) / j
        if j == len(order) or level <= order[j]:
            break
    return _largest_remainder(np.maximum(level - base, 0.0), total)


def fraction_counts(real_counts: np.ndarray, fraction: float) -> np.ndarray:
    """Images per class in the stratified real fraction: ``round(fraction n_k)``, at least one of each class."""
    if fraction == 0:
        return np.zeros_like(real_counts)
    return np.maximum(np.round(real_counts * fraction), np.minimum(real_counts, 1)).astype(np.int64)


def real_fraction_indices(labels: np.ndarray, fraction: float, num_classes: int) -> np.ndarray:
    """The stratified real fraction of a training split: the first `fraction_counts` images of each class in a
    fixed permutation (tag ``real-fraction``), so the fraction is the same for every seed (a generator can be
    trained on it alone) and smaller fractions are subsets of larger ones (10% in 25% in 50%)."""
    wanted = fraction_counts(np.bincount(labels, minlength=num_classes), fraction)
    chosen = [_permutation(labels, k, 0, "real-fraction")[:n] for k, n in enumerate(wanted)]
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)


def arm_counts(arm: Arm, real_counts: np.ndarray) -> dict[str, np.ndarray]:
    """Real (duplicates of ``oversample`` arms included) and synthetic images per class in `arm`'s training set (at
    most, for ``+agree`` arms)."""
    real_part = fraction_counts(real_counts, arm.real_fraction)
    added = np.zeros_like(real_counts)
    if arm.synthetic_multiple > 0:
        added = synthetic_counts(real_counts, real_part, arm.synthetic_multiple, balanced=arm.balanced, per_rare=arm.per_rare)
    if arm.oversample:
        return {"real": real_part + added, "synthetic": np.zeros_like(real_counts)}
    return {"real": real_part, "synthetic": added}


def synthetic_needed(arms: Sequence[Arm | str], real_counts: np.ndarray, *, margin: float = 1.0) -> np.ndarray:
    """Synthetic images per class a pool must hold for every arm of `arms` (the largest need per class), times
    `margin` (room for the images a ``+filtered`` or ``+agree`` arm skips), rounded up."""
    needs = [arm_counts(Arm.parse(arm), real_counts)["synthetic"] for arm in arms]
    largest = np.max(needs, axis=0) if needs else np.zeros_like(real_counts)
    return np.ceil(largest * margin).astype(np.int64)


def feasible_arms(arms: Sequence[Arm | str], real_counts: np.ndarray, synthetic: Split,
                  keep: np.ndarray | None = None) -> tuple[list[Arm], dict[str, str]]:
    """The arms a synthetic pool can serve, and why each other arm cannot (e.g. ``+filtered`` at 10x when the QA
    dropped many images), so that a run can leave them out instead of failing."""
    kept, dropped = [], {}
    for arm in map(Arm.parse, arms):
        labels = synthetic.labels[keep] if arm.filtered and keep is not None else synthetic.labels
        available = np.bincount(labels, minlength=len(real_counts))[: len(real_counts)]
        wanted = arm_counts(arm, real_counts)["synthetic"]
        if arm.filtered and keep is None:
            dropped[arm.name] = "no QA keep mask"
        elif (wanted > available).any():
            dropped[arm.name] = f"needs {wanted.tolist()} synthetic images per class, the pool has {available.tolist()}"
        else:
            kept.append(arm)
    return kept, dropped


def arm_parts(
    arm: Arm,
    real: Split,
    synthetic: Split | None,
    *,
    seed: int,
    num_classes: int,
    keep: np.ndarray | None = None,
    agree: np.ndarray | None = None,
) -> tuple[Split | None, Split | None]:
    """The real and the synthetic part of `arm`'s training set for `seed` (None for a part it has none of).

    The real part is the fixed `real_fraction_indices` subset. Synthetic images are drawn per class in the
    order of a permutation seeded by ``(seed, "synthetic", class)``, so smaller multiples are subsets of larger
    ones; `keep` (``+filtered``: the QA's keep mask) and `agree` (``+agree``: the real classifier's agreement
    mask of this seed) skip images, and an ``+agree`` arm takes as many as pass when fewer do.
    """
    counts = arm_counts(arm, np.bincount(real.labels, minlength=num_classes))
    real_part = real.subset(real_fraction_indices(real.labels, arm.real_fraction, num_classes)) if arm.real_fraction > 0 else None
    if arm.oversample:
        real_part = real_part.subset(_oversampled(real_part.labels, counts["real"], seed, num_classes))
    synthetic_part = None
    if arm.uses_synthetic:
        check_pool(arm, counts["synthetic"], synthetic, keep)
        mask = np.ones(len(synthetic), dtype=bool)
        if arm.filtered:
            mask &= keep
        if arm.agreement is not None:
            if agree is None:
                raise InputError(f"the real classifier's agreement mask for arm {arm.name}", "none", "pass agree=...")
            mask &= agree
        chosen = [_permutation(synthetic.labels, k, seed, "synthetic") for k in range(num_classes)]
        index = np.sort(np.concatenate([order[mask[order]][:n] for order, n in zip(chosen, counts["synthetic"], strict=True)]))
        synthetic_part = synthetic.subset(index) if index.size else None  # an +agree arm whose images all fail
    return real_part, synthetic_part


def _oversampled(labels: np.ndarray, wanted: np.ndarray, seed: int, num_classes: int) -> np.ndarray:
    """Indices into `labels` holding `wanted` images per class: every image once, then duplicates taken in the order
    of seeded permutations of its class (tag ``oversample``), cycled, so duplicates spread evenly over the class."""
    chosen = []
    for k in range(num_classes):
        members = np.flatnonzero(labels == k)
        extra = int(wanted[k]) - len(members)
        if extra > 0 and len(members) == 0:
            raise InputError(f"real images of class {k} to duplicate", "none", "oversample only classes the arm holds")
        repeats = -(-max(extra, 0) // max(len(members), 1))
        order = np.concatenate([np.random.default_rng(derive_seed(seed, "oversample", k, r)).permutation(members)
                                for r in range(repeats)]) if repeats else np.zeros(0, dtype=np.int64)
        chosen += [members, order[:max(extra, 0)]]
    return np.concatenate(chosen)


def arm_training_set(arm: Arm, real: Split, synthetic: Split | None, **options: Any) -> Split:
    """`arm_parts` (same options) joined into one training split (real images first)."""
    parts = [part for part in arm_parts(arm, real, synthetic, **options) if part is not None]
    images = np.concatenate([part.images for part in parts])
    labels = np.concatenate([part.labels for part in parts])
    return Split(images, labels, name="train")


def agreement_mask(probabilities: np.ndarray, labels: np.ndarray, tau: float) -> np.ndarray:
    """Images whose label gets a probability >= `tau` from a classifier (``probabilities`` ``(N, K)``)."""
    return probabilities[np.arange(len(labels)), labels] >= tau


def keep_mask_from_manifest(synthetic_path: str | Path, column: str | None = None) -> np.ndarray | None:
    """The QA keep mask over the images of a ``synthetic.npz``, from the manifest beside it.

    Reads ``manifest.parquet`` (or ``manifest.csv``) in the same folder. Rows map to images by the
    manifest's ``row`` column (``-1``: dropped at generation, not in the npz) or else by order. The
    column is `column` or the first of `FLAG_COLUMNS` / `KEEP_COLUMNS` present (e.g. ``qa_flag``,
    written by ``SyntheticSet.add_scores(SampleQA().score(...))``); a column whose name contains
    "flag" marks images to drop, any other marks images to keep. None when there is no such column.
    """
    import pandas as pd

    folder = Path(synthetic_path).parent
    found = [folder / name for name in (MANIFEST, "manifest.csv") if (folder / name).exists()]
    if not found:
        if column is not None:
            raise InputError("a manifest.parquet or manifest.csv beside the synthetic npz", "none", "drop --qa-column", source=str(folder))
        return None
    table = pd.read_parquet(found[0]) if found[0].suffix == ".parquet" else pd.read_csv(found[0])
    if "row" in table.columns:
        table = table[table["row"] >= 0].sort_values("row")
    candidates = [column] if column is not None else [c for c in (*FLAG_COLUMNS, *KEEP_COLUMNS) if c in table.columns]
    if not candidates:
        return None
    name = candidates[0]
    if name not in table.columns or not table[name].isin([True, False]).all():
        raise InputError(
            f"a boolean column {name!r} for every image",
            f"columns {list(table.columns)[:10]}",
            "score the set with the per-sample QA or name the column with --qa-column",
            source=str(found[0]),
        )
    values = table[name].to_numpy(dtype=bool)
    return ~values if "flag" in name else values


def _largest_remainder(quotas: np.ndarray, total: int) -> np.ndarray:
    """Integers summing to `total` closest to `quotas` (Hamilton's largest-remainder rounding)."""
    counts = np.floor(quotas).astype(np.int64)
    order = np.argsort(-(quotas - counts), kind="stable")
    counts[order[: total - int(counts.sum())]] += 1
    return counts


def _permutation(labels: np.ndarray, k: int, seed: int, part: str) -> np.ndarray:
    """The indices of class `k` in the order of a permutation seeded by ``(seed, part, k)``."""
    return np.random.default_rng(derive_seed(seed, part, k)).permutation(np.flatnonzero(labels == k))


def check_pool(arm: Arm, wanted: np.ndarray, synthetic: Split | None, keep: np.ndarray | None) -> None:
    if not arm.uses_synthetic:
        return
    if synthetic is None:
        raise InputError(f"synthetic images for arm {arm.name}", "none", "pass synthetic=... (--synthetic PATH)")
    if arm.filtered and keep is None:
        raise InputError(
            f"a per-sample QA keep mask for arm {arm.name}",
            "none",
            "pass keep=... (or a manifest with a kept/flagged column), or drop the +filtered arms",
        )
    labels = synthetic.labels[keep] if arm.filtered else synthetic.labels
    available = np.bincount(labels, minlength=len(wanted))[: len(wanted)]
    short = np.flatnonzero(wanted > available)
    if short.size:
        k = int(short[0])
        raise InputError(
            f"{wanted[k]} synthetic images of class {k} for arm {arm.name}",
            f"{available[k]}" + (" kept by the QA" if arm.filtered else ""),
            f"generate more class-{k} images (genrad generate --per-class {k}=N), or use smaller multiples or a --strategy "
            "that needs fewer",
        )


def resolve_keep(keep: np.ndarray | Callable[[Split], np.ndarray] | None, synthetic: Split | None) -> np.ndarray | None:
    if keep is None:
        return None
    if synthetic is None:
        raise InputError("synthetic images with a QA keep mask", "a mask but no synthetic images", "pass synthetic=...")
    mask = np.asarray(keep(synthetic) if callable(keep) else keep)
    if mask.shape != (len(synthetic),) or mask.dtype != bool:
        raise InputError(
            f"a boolean keep mask of shape ({len(synthetic)},)",
            f"{mask.dtype} array of shape {mask.shape}",
            "give one True (keep) / False (drop) per synthetic image, in image order",
        )
    return mask
