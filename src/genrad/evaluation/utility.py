"""Utility: does synthetic data improve the downstream model? (train on arms, test on real data)

The protocol trains the same `Classifier` recipe on several training sets ("arms") and scores each
on the real **test** split, with early stopping on the real validation split:

- ``real``; ``real+reweight`` (class-weighted loss); ``real+augment`` (classical augmentation);
- ``real+synthetic@Mx`` for multiples ``M`` of the real training set (the scaling curve), each also
  ``+balanced`` (synthetic images top the rarer classes up first) and ``+filtered`` (only synthetic
  images kept by the per-sample QA);
- ``synthetic@Mx``: synthetic only (train on synthetic, test on real; Esteban et al. 2017, "TSTR");
- ``real@P%+...``: a stratified fraction of the real training set (how much real data synthetic
  data can replace). Synthetic amounts are always multiples of the *full* real training set.

By default `evaluate_utility` tests one named `Strategy` (`STRATEGIES`, default `DEFAULT_STRATEGY`): its arm,
the same arm with classical augmentation (paired against ``real+augment`` too, ``delta_vs_augment``), the
baselines and synthetic only; ``multiples`` adds the scaling curve.

Every arm runs over the same seeds; a seed fixes the classifier (see `genrad.evaluation.classifier`)
and the draw of the real fraction and of the synthetic images (nested: the images of ``@1x`` are a
subset of those of ``@2x``). Each metric is reported as its mean over seeds with a 95% Student-t
interval, and as the paired difference to the ``real`` arm of the same seed (mean, t-interval and
two-sided paired t-test p-value). These intervals are over training randomness; the test set is the
same for every arm. Each arm-seed result is cached under ``cache_dir`` so an interrupted run resumes.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.progress import Progress, TimeElapsedColumn
from scipy import stats

from genrad.core import derive_seed
from genrad.data.cohort import Cohort, Split
from genrad.errors import InputError, is_int
from genrad.evaluation.classification import classification_metrics, resampled_metrics
from genrad.evaluation.classifier import Classifier
from genrad.evaluation.stats import (
    bootstrap_ci,
    bootstrap_p_value,
    stratified_bootstrap_index,
)
from genrad.progress import progress_bar
from genrad.provenance import hash_arrays, versions, write_json

MULTIPLES = (0.5, 1.0, 2.0, 5.0, 10.0)
REAL_FRACTIONS = (0.1, 0.25, 0.5)
CONFIDENCE = 0.95
SCALAR_METRICS = ("auc", "accuracy", "balanced_accuracy", "ece")
PROTOCOL_VERSION = 3
N_BOOTSTRAP = 2000
QUICK = {
    "seeds": 2,
    "multiples": (1.0,),
    "recipe": {"channels": (8, 16, 32, 64), "stem_stride": 2, "batch_size": 32, "max_steps": 150, "eval_every": 15, "patience": 3},
}
FLAG_COLUMNS = ("qa_flag", "qa_flagged", "flagged", "flag")
KEEP_COLUMNS = ("qa_keep", "qa_kept", "keep")  # not "kept": synthetic.npz holds only kept images
_FIXED_BY_DATA = ("spatial_dims", "in_channels", "num_classes", "class_weight", "augment", "device")
_MODIFIERS = ("reweight", "augment", "trivialaugment", "balanced", "filtered")
CLASSICAL_MODIFIERS = ("reweight", "augment", "trivialaugment")
"""The classical remedies an arm can add without a generator: class-weighted loss and the two augmentation policies
(`genrad.evaluation.classifier.AUGMENTATIONS`); duplicated real images are ``oversample@Mx``."""


@dataclass(frozen=True)
class Arm:
    """One training set recipe; its `name` (e.g. ``real+synthetic@2x+balanced+agree0.6``) parses back to it.

    Which images: ``real_fraction`` of the real training set and ``synthetic_multiple`` x its size of
    synthetic images (``per_rare``, written ``@Mxrare``: M x the rarest class's real count instead;
    ``balanced``: the rarer classes first; ``filtered``: only images the per-sample QA kept;
    ``agreement`` tau: only images to which the real-only classifier of the same seed gives their label a
    probability >= tau). With ``oversample`` (``real+oversample@Mx``) the same counts are duplicates of the
    arm's real images instead: the count-matched control of a synthetic arm (random oversampling). How they
    enter training: mixed into one training set (each synthetic image's loss weighted by ``synthetic_weight``),
    or with ``pretrain`` used alone to pre-train the classifier, which is then fine-tuned on the real images.
    ``augment`` applies classical augmentation to every image of every stage (``trivialaugment``: the
    TrivialAugment policy instead), ``reweight`` weights the loss by class.
    """

    real_fraction: float = 1.0
    synthetic_multiple: float = 0.0
    reweight: bool = False
    augment: bool = False
    balanced: bool = False
    filtered: bool = False
    agreement: float | None = None
    synthetic_weight: float = 1.0
    pretrain: bool = False
    trivialaugment: bool = False
    oversample: bool = False
    per_rare: bool = False

    def __post_init__(self) -> None:
        if not 0.0 <= self.real_fraction <= 1.0 or self.synthetic_multiple < 0:
            raise InputError(
                "a real fraction in [0, 1] and a synthetic multiple >= 0",
                f"{self.real_fraction} and {self.synthetic_multiple}",
                "write arms like real@25%+synthetic@2x",
            )
        if self.real_fraction == 0 and self.synthetic_multiple == 0:
            raise InputError("an arm with real or synthetic images", "neither", "name the arm real... or synthetic@Mx")
        synthetic_terms = [term for term, used in (
            ("+balanced", self.balanced), ("+filtered", self.filtered), ("+agreeTAU", self.agreement is not None),
            ("+weightW", self.synthetic_weight != 1.0), ("+pretrain", self.pretrain)) if used]
        if synthetic_terms and self.synthetic_multiple == 0:
            raise InputError(
                f"{synthetic_terms[0]} only with synthetic images", self.name, "add synthetic@Mx to the arm"
            )
        if self.oversample and (self.real_fraction == 0 or any(term != "+balanced" for term in synthetic_terms)):
            raise InputError("oversample@Mx with real images and at most +balanced", self.name,
                             "write e.g. real+oversample@2xrare+balanced (real images duplicated, no synthetic ones)")
        if self.augment and self.trivialaugment:
            raise InputError("one augmentation policy per arm", self.name, "keep +augment or +trivialaugment")
        if self.agreement is not None and not 0.0 < self.agreement < 1.0:
            raise InputError("+agreeTAU with 0 < TAU < 1", f"{self.agreement:g}", "write e.g. real+synthetic@2x+agree0.6")
        if not 0.0 < self.synthetic_weight <= 10.0:
            raise InputError("+weightW with 0 < W <= 10", f"{self.synthetic_weight:g}", "write e.g. real+synthetic@2x+weight0.3")
        if self.pretrain and (self.real_fraction == 0 or self.synthetic_weight != 1.0):
            raise InputError(
                "+pretrain with real images to fine-tune on and no +weightW",
                self.name,
                "write e.g. real+synthetic@5x+pretrain (synthetic images pre-train, real ones fine-tune)",
            )

    @property
    def name(self) -> str:
        terms = []
        if self.real_fraction == 1.0:
            terms.append("real")
        elif self.real_fraction > 0:
            terms.append(f"real@{self.real_fraction * 100:g}%")
        if self.synthetic_multiple > 0:
            unit = "rare" if self.per_rare else ""
            terms.append(f"{'oversample' if self.oversample else 'synthetic'}@{self.synthetic_multiple:g}x{unit}")
        terms += [modifier for modifier in _MODIFIERS if getattr(self, modifier)]
        if self.agreement is not None:
            terms.append(f"agree{self.agreement:g}")
        if self.synthetic_weight != 1.0:
            terms.append(f"weight{self.synthetic_weight:g}")
        if self.pretrain:
            terms.append("pretrain")
        return "+".join(terms)

    @property
    def uses_synthetic(self) -> bool:
        return self.synthetic_multiple > 0 and not self.oversample

    @property
    def is_classical(self) -> bool:
        """Real images only (with or without classical remedies: reweighting, augmentation, oversampling)."""
        return self.real_fraction > 0 and not self.uses_synthetic

    @property
    def augmentation(self) -> str | None:
        """The classifier's augmentation policy (`genrad.evaluation.classifier.AUGMENTATIONS`)."""
        return "trivialaugment" if self.trivialaugment else "classical" if self.augment else None

    @classmethod
    def parse(cls, name: str | Arm) -> Arm:
        """``real``, ``real@25%``, ``synthetic@2x`` (``synthetic`` = ``@1x``; ``@2xrare``: 2x the rarest class),
        ``oversample@2x`` joined by ``+`` with modifiers (``reweight``, ``augment``, ``trivialaugment``, ``balanced``,
        ``filtered``, ``agreeTAU``, ``weightW``, ``pretrain``)."""
        if isinstance(name, Arm):
            return name
        fields: dict[str, Any] = {"real_fraction": 0.0}
        for term in str(name).strip().split("+"):
            real = re.fullmatch(r"real(?:@([0-9.]+)%)?", term)
            synthetic = re.fullmatch(r"(synthetic|oversample)(?:@([0-9.]+)x(rare)?)?", term)
            number = re.fullmatch(r"(agree|weight)([0-9]*\.?[0-9]+)", term)
            if real:
                fields["real_fraction"] = float(real.group(1)) / 100 if real.group(1) else 1.0
            elif synthetic:
                fields["synthetic_multiple"] = float(synthetic.group(2)) if synthetic.group(2) else 1.0
                fields["oversample"] = synthetic.group(1) == "oversample"
                fields["per_rare"] = synthetic.group(3) is not None
            elif number:
                fields["agreement" if number.group(1) == "agree" else "synthetic_weight"] = float(number.group(2))
            elif term in (*_MODIFIERS, "pretrain"):
                fields[term] = True
            else:
                raise InputError(
                    "arm terms real[@P%], synthetic[@Mx[rare]], oversample@Mx[rare], " + ", ".join(_MODIFIERS)
                    + ", agreeTAU, weightW, pretrain",
                    f"{term!r} in arm {name!r}",
                    "write arms like real, real+augment, real+synthetic@2x+balanced, synthetic@1x",
                )
        return cls(**fields)


@dataclass(frozen=True)
class Strategy:
    """A named way to make synthetic images (`sampling`) and to let them enter training (`arm`), tested as a
    practitioner would use it.

    `sampling`: per generator family, the sampling settings (`Generator.with_sampling`) its images are made with,
    by `genrad run` and `genrad generate --strategy`; a family it does not name samples with its own settings.
    `arms`: real only, the classical remedies a practitioner tries first (`control_arms`: real images duplicated to
    the strategy's count, class-weighted loss, classical and TrivialAugment augmentation), the strategy's arm, the
    same arm with classical augmentation of every image (whether synthetic data adds to what augmentation gives) and
    synthetic only at 1x.
    """

    name: str
    arm: Arm
    description: str
    sampling: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def sampling_for(self, family: str) -> dict[str, Any] | None:
        """The sampling settings for a `family` generator (None: its own)."""
        return dict(self.sampling[family]) if family in self.sampling else None

    def arms(self) -> list[Arm]:
        augmented = replace(self.arm, augment=True)
        return list(dict.fromkeys([Arm(), *control_arms(self.arm), self.arm, augmented,
                                   Arm(real_fraction=0.0, synthetic_multiple=1.0)]))

    def record(self) -> dict[str, Any]:
        """The strategy as `utility.json` records it."""
        return {"name": self.name, "arm": self.arm.name, "augmented_arm": replace(self.arm, augment=True).name,
                "description": self.description, "sampling": {family: dict(settings) for family, settings in self.sampling.items()}}


def count_matched_control(arm: Arm) -> Arm | None:
    """The honest control of a synthetic `arm` mixed into real images: the same number of images per class added as
    duplicates of its real images (``real+oversample@...``, with the arm's classical remedies), so a gain over it is
    a gain of the synthetic images, not of their count (for ``+agree`` / ``+filtered`` arms: the count they ask
    for). None for arms without real images or that pre-train or weight their synthetic images."""
    if not arm.uses_synthetic or arm.real_fraction == 0 or arm.pretrain or arm.synthetic_weight != 1.0:
        return None
    return Arm(real_fraction=arm.real_fraction, synthetic_multiple=arm.synthetic_multiple, balanced=arm.balanced,
               per_rare=arm.per_rare, oversample=True, reweight=arm.reweight, augment=arm.augment,
               trivialaugment=arm.trivialaugment)


def control_arms(arm: Arm) -> list[Arm]:
    """The classical arms a synthetic `arm` must beat: its `count_matched_control` (when it has one), class-weighted
    loss, classical augmentation and TrivialAugment."""
    control = count_matched_control(arm)
    return [*([control] if control is not None else []), Arm(reweight=True), Arm(augment=True), Arm(trivialaugment=True)]


UNGUIDED_SAMPLING: dict[str, dict[str, Any]] = {
    "diffusion": {"guidance_scale": 1.0, "solver": "ddim", "sampling_eta": 1.0, "num_inference_steps": 50},
}
"""Diffusion samples without classifier-free guidance and with stochastic DDIM (eta 1, 50 steps): further from
the real distribution than the guided samples (higher FRD), yet better for a classifier, as lower guidance was
for ImageNet classifiers (Azizi et al. 2023, "Synthetic data from diffusion models improves ImageNet
classification"); the best of six pools in the selection inside BreastMNIST's train split (docs/benchmarks.md,
recipe selection)."""

STRATEGIES: dict[str, Strategy] = {
    "rare-topup": Strategy(
        "rare-topup", Arm(synthetic_multiple=1.0, per_rare=True, balanced=True, agreement=0.6),
        "as many synthetic images as the rarest class has real ones, the rarer classes topped up first, keeping only "
        "images to which a real-data classifier gives their label a probability >= 0.6; sampled as the model samples "
        "(its guidance-distilled student when it has one), so fidelity and utility read one synthetic set: the recipe "
        "frozen by the selection inside the training split of PneumoniaMNIST's rare-disease scenario, where no recipe "
        "or sampling was separated from another (docs/benchmarks.md, utility on PneumoniaMNIST)",
    ),
    "topup": Strategy(
        "topup", Arm(synthetic_multiple=0.5, balanced=True),
        "0.5x the real training set in synthetic images, the rarer classes topped up first, mixed in: the recipe "
        "frozen by the selection inside BreastMNIST's train split (two-fold cross-validation, generators trained on "
        "each fold; docs/benchmarks.md, recipe selection)",
        UNGUIDED_SAMPLING,
    ),
    "pretrain": Strategy(
        "pretrain", Arm(synthetic_multiple=5.0, pretrain=True),
        "pre-train the classifier on 5x the real training set in synthetic images, then fine-tune it on the real images",
        UNGUIDED_SAMPLING,
    ),
    "mix": Strategy("mix", Arm(synthetic_multiple=1.0), "1x the real training set in synthetic images, mixed in", UNGUIDED_SAMPLING),
    "balanced": Strategy(
        "balanced", Arm(synthetic_multiple=1.0, balanced=True),
        "1x the real training set in synthetic images, the rarer classes topped up first", UNGUIDED_SAMPLING,
    ),
}
DEFAULT_STRATEGY = "rare-topup"
"""What `evaluate_utility`, `genrad evaluate utility` and `genrad run` test unless told otherwise."""


def get_strategy(strategy: str | Strategy) -> Strategy:
    """A `Strategy` by its name in `STRATEGIES`, ``"default"`` for `DEFAULT_STRATEGY` (or the strategy itself)."""
    if isinstance(strategy, Strategy):
        return strategy
    strategy = DEFAULT_STRATEGY if strategy == "default" else strategy
    if strategy not in STRATEGIES:
        raise InputError(f"a utility strategy, one of {', '.join(STRATEGIES)}, default (or none)", repr(strategy),
                         f"pass --strategy {DEFAULT_STRATEGY} (the default), --strategy none, or name the arms with --arms",
                         argument="strategy")
    return STRATEGIES[strategy]


def utility_arms(strategy: str | Strategy | None, multiples: Sequence[float] | None = None, *, synthetic: bool = True,
                 filtered: bool = False, ablation: bool = False) -> list[Arm]:
    """The arms of a utility run: the `strategy`'s (`Strategy.arms`) and, with `multiples`, the scaling curve of
    `default_arms` (``+filtered`` arms with `filtered`, the real-fraction ablation with `ablation`). Without a
    strategy or without synthetic images, `default_arms` (at `MULTIPLES` when `multiples` is None)."""
    chosen = get_strategy(strategy) if strategy is not None and synthetic else None
    if chosen is None:
        return default_arms(MULTIPLES if multiples is None else multiples, synthetic=synthetic, filtered=filtered, ablation=ablation)
    arms = chosen.arms()
    if multiples or ablation:
        arms += default_arms(multiples or (), synthetic=True, filtered=filtered, ablation=ablation)
    return list(dict.fromkeys(arms))


def default_arms(
    multiples: Sequence[float] = MULTIPLES, *, synthetic: bool = True, filtered: bool = False, ablation: bool = False
) -> list[Arm]:
    """The full protocol: baselines, the scaling curve (plain, balanced, filtered), synthetic only, ablation."""
    arms = [Arm(), Arm(reweight=True), Arm(augment=True)]
    if not synthetic:
        return arms
    for multiple in multiples:
        arms += [Arm(synthetic_multiple=multiple), Arm(synthetic_multiple=multiple, balanced=True)]
        if filtered:
            arms.append(Arm(synthetic_multiple=multiple, filtered=True))
    arms += [Arm(real_fraction=0.0, synthetic_multiple=m) for m in sorted({1.0, max(multiples, default=1.0)})]
    if ablation:
        for fraction in REAL_FRACTIONS:
            arms += [Arm(real_fraction=fraction), Arm(real_fraction=fraction, synthetic_multiple=1.0, balanced=True)]
    return arms


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
        _check_pool(arm, counts["synthetic"], synthetic, keep)
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


def run_protocol(
    real: Cohort,
    synthetic: Split | None = None,
    *,
    arms: Sequence[Arm | str] | None = None,
    seeds: int | Sequence[int] = 5,
    multiples: Sequence[float] = MULTIPLES,
    keep: np.ndarray | Callable[[Split], np.ndarray] | None = None,
    recipe: Mapping[str, Any] | None = None,
    rare_class: int | None = None,
    cache_dir: str | Path | None = None,
    save_classifiers: Sequence[str] = ("real",),
    test_subsets: Mapping[str, np.ndarray] | None = None,
    device: str | None = None,
    workers: int = 1,
    progress: bool = False,
    best_classical: Arm | str | None = None,
) -> dict[str, Any]:
    """Train every arm over every seed, score on ``real.test``; return the ``utility.json`` payload.

    `keep` (a boolean mask over `synthetic`, or a callable giving one) is the per-sample QA filter
    for the ``+filtered`` arms. `recipe` overrides `Classifier` training arguments (layers, channels,
    lr, weight_decay, batch_size, max_steps, eval_every, patience). With `cache_dir`, each arm-seed
    result is stored there and reused on a re-run with the same inputs; the classifiers of the arms
    named in `save_classifiers` are saved under ``cache_dir/classifiers/<arm>/seed-<s>``. Each of `test_subsets`
    (a name -> boolean mask over the test images, e.g. those with no near-twin in train) is scored from the same
    classifiers' predictions under ``subsets[name]``. With ``workers > 1`` the arm-seeds train in that many
    one-thread processes; every run is seeded, so the payload is the same.

    Synthetic arms are also paired against the best classical arm (``delta_vs_best_classical``): `best_classical`
    when given (chosen beforehand, e.g. by a selection inside the training split), else the arm without synthetic
    images on the whole real training set with the best mean validation AUC (`select_best_classical`); the test
    split plays no part in the choice.
    """
    train, val, test = real.train, real.val, real.test
    seed_list = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    if not seed_list:
        raise InputError("at least one seed", "none", "pass seeds=5 (--seeds 5)")
    if not is_int(workers) or workers < 1:
        raise InputError("workers: an int >= 1", repr(workers), "pass workers=2 to train two classifiers at a time")
    keep_mask = _resolve_keep(keep, synthetic)
    if arms is None:
        arm_list = default_arms(multiples, synthetic=synthetic is not None, filtered=keep_mask is not None)
    else:
        arm_list = [Arm.parse(arm) for arm in arms]
    if Arm() not in arm_list:
        arm_list.insert(0, Arm())  # paired differences need the real-only arm
    arm_list = list(dict.fromkeys(arm_list))
    num_classes = real.num_classes
    real_counts = np.bincount(train.labels, minlength=num_classes)
    rare = int(np.argmin(real_counts)) if rare_class is None else int(rare_class)
    recipe_config = _recipe(real, recipe)
    _check_synthetic(real, synthetic)
    counts = {arm: arm_counts(arm, real_counts) for arm in arm_list}
    for arm in arm_list:
        _check_pool(arm, counts[arm]["synthetic"], synthetic, keep_mask)
    given_best = _given_best_classical(best_classical, arm_list)
    masks = {name: np.asarray(mask, dtype=bool) for name, mask in (test_subsets or {}).items()}
    for name, mask in masks.items():
        if mask.shape != (len(test),) or not mask.any():
            raise InputError(f"test subset {name!r}: a boolean mask over the {len(test)} test images, some True",
                             f"shape {mask.shape}, {int(mask.sum())} True", "pass one True (keep) / False per test image")
    hashes = {
        "real": real.content_hash(),
        "synthetic": synthetic.content_hash() if synthetic is not None else None,
        "keep": hash_arrays(keep_mask) if keep_mask is not None else None,
    }
    runs: dict[Arm, list[dict[str, Any]]] = {arm: [] for arm in arm_list}
    jobs = [(seed, arm) for seed in seed_list for arm in arm_list]
    cache = Path(cache_dir) if cache_dir is not None else None
    context = _Context(real, synthetic, keep_mask, recipe_config, hashes, device, cache)
    with progress_bar(*Progress.get_default_columns(), TimeElapsedColumn(), disable=not progress) as bar:
        task = bar.add_task("utility", total=len(jobs))
        results = {}
        for (seed, arm), record in _run_jobs(jobs, context, save_classifiers, workers):
            bar.update(task, description=f"{arm.name} seed {seed}")
            results[seed, arm] = record
            bar.advance(task)
    for seed, arm in jobs:
        runs[arm].append(results[seed, arm])
    subsets = {}
    best = (given_best if given_best is not None else select_best_classical(runs)) if any(arm.uses_synthetic for arm in arm_list) else None
    for name, mask in masks.items():
        restricted = {arm: [{**run, "probabilities": np.asarray(run["probabilities"])[mask]} for run in runs[arm]] for arm in arm_list}
        subsets[name] = {"arms": summarise_arms(restricted, counts, test.labels[mask], rare, best_classical=best),
                         "test_images": int(mask.sum()), "test_counts": np.bincount(test.labels[mask], minlength=num_classes).tolist()}
    return {
        "arms": summarise_arms(runs, counts, test.labels, rare, best_classical=best),
        "best_classical": None if best is None else {
            "name": best.name, "chosen_by": "given" if given_best is not None else "mean validation AUC over seeds",
            "val_auc": {arm.name: float(np.mean([run["val_auc"] for run in runs[arm]])) for arm in runs if arm.is_classical}},
        **({"subsets": subsets} if subsets else {}),
        "rare_class": rare,
        "class_names": list(real.class_names),
        "seeds": seed_list,
        "multiples": [float(m) for m in multiples],
        "test_counts": list(test.class_counts(num_classes).values()),
        "config": {
            "recipe": recipe_config,
            "arms": [arm.name for arm in arm_list],
            "confidence": CONFIDENCE,
            "interval": f"{CONFIDENCE:.0%} percentile bootstrap over seeds and class-stratified test images jointly "
                        f"({N_BOOTSTRAP} resamples); delta_vs_real paired by seed and test image (ci_seeds: Student-t over seeds)",
            "protocol_version": PROTOCOL_VERSION,
            "early_stopping": "best validation AUC (ties: lower validation loss) on the real val split",
            "val_counts": list(val.class_counts(num_classes).values()),
        },
        "provenance": {"versions": versions(), "data_hash": hashes, "source": real.source},
    }


def evaluate_utility(
    cohort: Cohort,
    synthetic: Split | None = None,
    *,
    out: str | Path,
    seeds: int | Sequence[int] = 5,
    strategy: str | Strategy | None = DEFAULT_STRATEGY,
    multiples: Sequence[float] | None = None,
    arms: Sequence[Arm | str] | None = None,
    keep: np.ndarray | Callable[[Split], np.ndarray] | None = None,
    quick: bool = False,
    ablation: bool = False,
    synthetic_source: str | None = None,
    device: str | None = None,
    workers: int = 1,
    progress: bool = False,
) -> dict[str, Any]:
    """Run the protocol with its cache in ``out/runs`` and write ``out/utility.json`` and ``out/scaling.png``.

    Without `arms`, the arms are `utility_arms` of the `strategy` (None: no strategy) and `multiples`; the
    strategy is recorded under ``strategy`` in ``utility.json``. `quick` uses the small, short `QUICK` recipe.
    """
    out = Path(out)
    chosen = get_strategy(strategy) if strategy is not None and arms is None and synthetic is not None else None
    if arms is None:
        arms = utility_arms(chosen, multiples, synthetic=synthetic is not None, filtered=keep is not None, ablation=ablation)
    payload = run_protocol(
        cohort,
        synthetic,
        arms=arms,
        seeds=seeds,
        multiples=multiples or (),
        keep=keep,
        recipe=QUICK["recipe"] if quick else None,
        cache_dir=out,
        device=device,
        workers=workers,
        progress=progress,
    )
    payload["config"]["quick"] = quick
    payload["strategy"] = chosen.record() if chosen is not None else None
    payload["provenance"]["synthetic_source"] = synthetic_source
    write_json(out / "utility.json", payload)
    plot_scaling(payload, out / "scaling.png")
    return payload


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
    found = [folder / name for name in ("manifest.parquet", "manifest.csv") if (folder / name).exists()]
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


def plot_scaling(payload: Mapping[str, Any], path: str | Path) -> Path:
    """Save the scaling curve: AUC, balanced accuracy and rare-class recall vs synthetic multiple."""
    from matplotlib.figure import Figure

    from genrad.provenance import atomic_path

    rare = payload["rare_class"]
    panels = (("auc", "AUC"), ("balanced_accuracy", "balanced accuracy"),
              ("rare_class_recall", f"recall, class {payload['class_names'][rare]} (rare)"))
    arms = payload["arms"]
    figure = Figure(figsize=(15, 4.4), layout="constrained")
    for axis, (metric, title) in zip(figure.subplots(1, len(panels)), panels):
        for name, colour in (("real", "black"), ("real+reweight", "tab:gray"), ("real+augment", "tab:brown")):
            arm = next((a for a in arms if a["name"] == name), None)
            if arm is not None:
                axis.axhline(arm[metric]["mean"], color=colour, linestyle="--", label=name)
                if arm[metric]["ci"] is not None and name == "real":
                    axis.axhspan(*arm[metric]["ci"], color=colour, alpha=0.08)
        series: dict[str, list[Mapping[str, Any]]] = {}
        for arm in arms:
            if arm["synthetic_multiple"] > 0 and arm["real_fraction"] in (0.0, 1.0) and not (arm["reweight"] or arm["augment"]):
                label = re.sub(r"@[0-9.]+x", "", arm["name"])  # one series per recipe: real+synthetic+pretrain, ...
                series.setdefault(label, []).append(arm)
        for label, members in sorted(series.items()):
            members = sorted(members, key=lambda a: a["synthetic_multiple"])
            x = np.array([a["synthetic_multiple"] for a in members])
            y = np.array([a[metric]["mean"] for a in members])
            ci = np.array([a[metric]["ci"] or [a[metric]["mean"]] * 2 for a in members])
            axis.errorbar(x, y, yerr=np.abs(ci.T - y), marker="o" if label.startswith("real") else "x", capsize=3, label=label)
        axis.set_xscale("log")
        multiples = sorted({a["synthetic_multiple"] for a in arms if a["synthetic_multiple"] > 0})
        axis.set_xticks(multiples, [f"{m:g}x" for m in multiples], minor=False)
        axis.set_xticks([], minor=True)
        axis.set_xlabel("synthetic images (multiple of the real training set)")
        axis.set_title(title)
    axis.legend(fontsize=7, loc="best")
    with atomic_path(path) as temp:
        figure.savefig(temp, format="png", dpi=120)
    return Path(path)


@dataclass
class _Context:
    real: Cohort
    synthetic: Split | None
    keep: np.ndarray | None
    recipe: dict[str, Any]
    hashes: dict[str, str | None]
    device: str | None
    cache: Path | None
    agreement_scores: dict[int, np.ndarray] = field(default_factory=dict)


def _run_cached(arm: Arm, seed: int, context: _Context, save_classifier: bool) -> dict[str, Any]:
    """Train and score one arm-seed, or reuse its cached result when the inputs are unchanged."""
    identity = {
        "arm": arm.name,
        "seed": seed,
        "recipe": context.recipe,
        "real": context.hashes["real"],
        "synthetic": context.hashes["synthetic"] if arm.uses_synthetic else None,
        "keep": context.hashes["keep"] if arm.filtered else None,
        "protocol": PROTOCOL_VERSION,
    }
    key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
    slug = _slug(arm.name)
    cache = context.cache
    pool = f"-{identity['synthetic'][:12]}" if arm.uses_synthetic else ""  # one cache holds runs on several pools
    path = cache / "runs" / f"{slug}{pool}-seed{seed}.json" if cache is not None else None
    if path is not None and path.exists():
        record = json.loads(path.read_text(encoding="utf-8"))
        if record.get("key") == key:
            return record
    real = context.real
    start = time.perf_counter()
    agree = None
    if arm.agreement is not None:
        agree = agreement_mask(_agreement_scores(seed, context), context.synthetic.labels, arm.agreement)
    real_part, synthetic_part = arm_parts(
        arm, real.train, context.synthetic, seed=seed, num_classes=real.num_classes, keep=context.keep, agree=agree
    )
    classifier = train_arm(arm, real_part, synthetic_part, real.val, seed=seed, recipe=context.recipe, device=context.device)
    probabilities = classifier.predict_proba(real.test)
    record = {
        "key": key,
        **identity,
        "metrics": classification_metrics(real.test.labels, probabilities, num_classes=real.num_classes),
        "n_train": {name: np.bincount(part.labels, minlength=real.num_classes).tolist() if part is not None else [0] * real.num_classes
                    for name, part in (("real", real_part), ("synthetic", synthetic_part))},
        "best_step": classifier.best_step_,
        "val_auc": next(entry["val_auc"] for entry in classifier.history_ if entry["step"] == classifier.best_step_),
        "seconds": round(time.perf_counter() - start, 2),
        "probabilities": probabilities.tolist(),
    }
    if path is not None:
        if save_classifier:
            classifier.save(cache / "classifiers" / slug / f"seed-{seed}")
        write_json(path, record)
    return record


def _run_jobs(jobs: Sequence[tuple[int, Arm]], context: _Context, save_classifiers: Sequence[str],
              workers: int) -> Iterator[tuple[tuple[int, Arm], dict[str, Any]]]:
    """Each job's run record as it completes: in order in this process, or from a spawn pool of one-thread
    workers (``+agree`` jobs whose real classifier is not saved yet train it themselves: same seed, same weights)."""
    if workers == 1:
        for seed, arm in jobs:
            yield (seed, arm), _run_cached(arm, seed, context, arm.name in save_classifiers)
        return
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                             initializer=torch.set_num_threads, initargs=(1,)) as pool:
        futures = {pool.submit(_run_cached, arm, seed, context, arm.name in save_classifiers): (seed, arm) for seed, arm in jobs}
        for future in as_completed(futures):
            yield futures[future], future.result()


def train_arm(
    arm: Arm,
    real: Split | None,
    synthetic: Split | None,
    val: Split,
    *,
    seed: int,
    recipe: Mapping[str, Any],
    device: str | None = None,
) -> Classifier:
    """Train `arm`'s classifier on its real and synthetic parts (`arm_parts`), early stopping on `val`.

    Mixed arms train once on both parts, each synthetic image's loss weighted ``arm.synthetic_weight``;
    ``+pretrain`` arms train on the synthetic part first (seed tag ``pretrain``), then fine-tune those
    weights on the real part with the same recipe.
    """
    options = {**recipe, "class_weight": "balanced" if arm.reweight else None, "augment": arm.augmentation, "device": device}
    if arm.pretrain:
        pretrained = Classifier(**options).fit(synthetic, val, seed=derive_seed(seed, "pretrain"))
        return Classifier(**options).fit(real, val, seed=seed, init=pretrained)
    parts = [part for part in (real, synthetic) if part is not None]
    train = Split(np.concatenate([part.images for part in parts]), np.concatenate([part.labels for part in parts]), name="train")
    weight = None
    if synthetic is not None and arm.synthetic_weight != 1.0:
        weight = np.concatenate([np.ones(len(real) if real is not None else 0), np.full(len(synthetic), arm.synthetic_weight)])
    return Classifier(**options).fit(train, val, seed=seed, sample_weight=weight)


def _agreement_scores(seed: int, context: _Context) -> np.ndarray:
    """The real-only classifier's (arm ``real``, this seed) class probabilities for every synthetic image.

    It is the classifier the ``real`` arm trained, loaded from the cache when saved there, trained
    again (the same seed gives the same weights) otherwise.
    """
    if seed not in context.agreement_scores:
        saved = context.cache / "classifiers" / "real" / f"seed-{seed}" if context.cache is not None else None
        if saved is not None and (saved / "model.safetensors").exists():
            classifier = Classifier.load(saved, device=context.device)
        else:
            classifier = train_arm(Arm(), context.real.train, None, context.real.val, seed=seed, recipe=context.recipe,
                                   device=context.device)
        context.agreement_scores[seed] = classifier.predict_proba(context.synthetic.images)
    return context.agreement_scores[seed]


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "_", name)


def summarise_arms(runs: Mapping[Arm, Sequence[Mapping[str, Any]]], counts: Mapping[Arm, Mapping[str, np.ndarray]],
                   labels: np.ndarray, rare: int, *, best_classical: Arm | None = None) -> list[dict[str, Any]]:
    """Each arm's `utility.json` entry from its runs' test probabilities (`labels`: the images they scored); with
    `best_classical`, every synthetic arm's paired difference to it (``delta_vs_best_classical``; its
    ``rare_recall_at_real_specificity`` is then the rare-class recall at the best classical arm's specificity)."""
    design = resampling(labels, len(runs[Arm()]))
    tables = {arm: metric_tables(arm_runs, runs[Arm()], labels, rare, design) for arm, arm_runs in runs.items()}
    against_best = {}
    if best_classical is not None:
        against_best = {arm: metric_tables(runs[arm], runs[best_classical], labels, rare, design)
                        for arm in runs if arm.uses_synthetic or arm == best_classical}
    entries = []
    for arm in runs:
        summary = _summarise(tables[arm], runs[arm], rare, design)
        summary["delta_vs_real"] = None if arm == Arm() else _paired(tables[arm], tables[Arm()], rare, design)
        if arm.uses_synthetic and best_classical is not None:
            summary["delta_vs_best_classical"] = _paired(against_best[arm], against_best[best_classical], rare, design)
        control = count_matched_control(arm)
        if control in tables:
            summary["delta_vs_oversampling"] = _paired(tables[arm], tables[control], rare, design)
        augmented_real = Arm(real_fraction=arm.real_fraction, augment=True, reweight=arm.reweight) if arm.real_fraction else None
        if arm.augment and arm.uses_synthetic and augmented_real in tables:
            summary["delta_vs_augment"] = _paired(tables[arm], tables[augmented_real], rare, design)
        spec = {key: getattr(arm, key) for key in ("real_fraction", "synthetic_multiple", *_MODIFIERS)}
        n_train = {part: values.tolist() for part, values in counts[arm].items()}
        entries.append({"name": arm.name, **spec, "n_train": n_train, **summary})
    return entries


def select_best_classical(runs: Mapping[Arm, Sequence[Mapping[str, Any]]]) -> Arm:
    """The arm without synthetic images, on the whole real training set, with the best mean validation AUC over
    its seeds (ties: the first); the validation split only, never the test split."""
    candidates = [arm for arm in runs if arm.is_classical and arm.real_fraction == 1.0]
    return max(candidates, key=lambda arm: float(np.mean([run["val_auc"] for run in runs[arm]])))


def _given_best_classical(given: Arm | str | None, arms: Sequence[Arm]) -> Arm | None:
    """The best classical arm given to `run_protocol`, checked before any training (None when not given)."""
    if given is None:
        return None
    arm = Arm.parse(given)
    if arm not in arms or not arm.is_classical:
        raise InputError("best_classical: one of the run's arms without synthetic images", arm.name,
                         "add it to the arms or leave best_classical out (chosen by validation AUC)")
    return arm


def resampling(test_labels: np.ndarray, n_seeds: int, n_bootstrap: int = N_BOOTSTRAP) -> tuple[np.ndarray, np.ndarray]:
    """The protocol's bootstrap design: ``(seeds, images)``, ``(B, n_seeds)`` seed indices and ``(B, N)``
    class-stratified test-image indices, each drawn with replacement (tag ``utility-bootstrap``). Every arm
    is resampled with the same rows, so differences between arms are paired by seed and by test image."""
    rng = np.random.default_rng(derive_seed(0, "utility-bootstrap"))
    images = stratified_bootstrap_index(test_labels, n_bootstrap, rng)
    return rng.integers(0, n_seeds, size=(n_bootstrap, n_seeds)), images


def metric_tables(
    runs: Sequence[Mapping[str, Any]], reference: Sequence[Mapping[str, Any]], labels: np.ndarray, rare: int,
    design: tuple[np.ndarray, np.ndarray],
) -> dict[str, np.ndarray]:
    """Each metric of each run (seed) on the whole test set (column 0) and on every bootstrap resample of its
    images (columns 1..B): ``(n_seeds, B + 1)`` per metric; `reference` (the ``real`` arm's runs, same seeds)
    sets the specificity of ``rare_recall_at_reference_specificity``."""
    index = np.vstack([np.arange(len(labels)), design[1]])
    per_run = [
        resampled_metrics(labels, np.asarray(run["probabilities"]), index, rare=rare,
                          reference=np.asarray(base["probabilities"]))
        for run, base in zip(runs, reference, strict=True)
    ]
    return {key: np.stack([metrics[key] for metrics in per_run]) for key in per_run[0]}


def interval(table: np.ndarray, design: tuple[np.ndarray, np.ndarray], *, paired: bool = False) -> dict[str, Any]:
    """Mean over seeds of a metric (or a paired difference: `paired`) with its 95% bootstrap interval over
    seeds and test images jointly; a paired difference also gets the two-sided bootstrap p-value and the
    Student-t interval over seeds alone (``ci_seeds``: training randomness on this one test set)."""
    seeds = design[0]
    point = float(table[:, 0].mean())
    replicates = table[seeds, np.arange(1, seeds.shape[0] + 1)[:, None]].mean(axis=1)
    summary: dict[str, Any] = {"mean": point, "ci": bootstrap_ci(point, replicates, CONFIDENCE, recentre=False),
                               "values": table[:, 0].tolist()}
    if paired:
        summary["p_value"] = bootstrap_p_value(replicates)
        summary["ci_seeds"] = t_interval(table[:, 0])["ci"]
    return summary


def _summarise(tables: Mapping[str, np.ndarray], runs: Sequence[Mapping[str, Any]], rare: int,
               design: tuple[np.ndarray, np.ndarray]) -> dict[str, Any]:
    summary: dict[str, Any] = {key: interval(tables[key], design) for key in SCALAR_METRICS}
    num_classes = len(runs[0]["metrics"]["recall_per_class"])
    summary["recall_per_class"] = {str(k): interval(tables[f"recall_{k}"], design) for k in range(num_classes)}
    summary["rare_class_recall"] = summary["recall_per_class"][str(rare)]
    summary["rare_recall_at_real_specificity"] = interval(tables["rare_recall_at_reference_specificity"], design)
    summary["best_step"] = [run["best_step"] for run in runs]
    summary["n_train_per_seed"] = [run["n_train"] for run in runs]
    return summary


def _paired(tables: Mapping[str, np.ndarray], reference: Mapping[str, np.ndarray], rare: int,
            design: tuple[np.ndarray, np.ndarray]) -> dict[str, Any]:
    """Arm - reference arm (real, or real + augment), paired by seed and test image: mean, bootstrap interval and
    p-value, per metric."""
    keys = {**{key: key for key in SCALAR_METRICS}, "rare_class_recall": f"recall_{rare}",
            "rare_recall_at_real_specificity": "rare_recall_at_reference_specificity"}
    return {name: interval(tables[key] - reference[key], design, paired=True) for name, key in keys.items()}


def t_interval(values: Sequence[float]) -> dict[str, Any]:
    """Mean and 95% Student-t confidence interval ``mean +- t_(n-1) s / sqrt(n)`` (None for one value)."""
    array = np.asarray(values, dtype=np.float64)
    mean = float(array.mean())
    if len(array) < 2:
        return {"mean": mean, "ci": None, "values": array.tolist()}
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, len(array) - 1) * array.std(ddof=1) / np.sqrt(len(array)))
    return {"mean": mean, "ci": [mean - half, mean + half], "values": array.tolist()}


def _largest_remainder(quotas: np.ndarray, total: int) -> np.ndarray:
    """Integers summing to `total` closest to `quotas` (Hamilton's largest-remainder rounding)."""
    counts = np.floor(quotas).astype(np.int64)
    order = np.argsort(-(quotas - counts), kind="stable")
    counts[order[: total - int(counts.sum())]] += 1
    return counts


def _permutation(labels: np.ndarray, k: int, seed: int, part: str) -> np.ndarray:
    """The indices of class `k` in the order of a permutation seeded by ``(seed, part, k)``."""
    return np.random.default_rng(derive_seed(seed, part, k)).permutation(np.flatnonzero(labels == k))


def _check_pool(arm: Arm, wanted: np.ndarray, synthetic: Split | None, keep: np.ndarray | None) -> None:
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


def _resolve_keep(keep: np.ndarray | Callable[[Split], np.ndarray] | None, synthetic: Split | None) -> np.ndarray | None:
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


def _recipe(real: Cohort, recipe: Mapping[str, Any] | None) -> dict[str, Any]:
    """The Classifier arguments shared by every arm (the data fix the input layout; arms fix the rest)."""
    overrides = dict(recipe or {})
    fixed = sorted(set(overrides) & set(_FIXED_BY_DATA))
    if fixed:
        raise InputError(
            "recipe keys other than " + ", ".join(_FIXED_BY_DATA),
            ", ".join(fixed),
            "the data set the input layout and the arms set class_weight / augment; pass device separately",
        )
    try:
        classifier = Classifier(
            spatial_dims=real.spatial_dims, in_channels=real.image_shape[0], num_classes=real.num_classes, **overrides
        )
    except TypeError as error:
        raise InputError("Classifier training arguments", str(error),
                         "use layers, channels, lr, weight_decay, batch_size, max_steps, eval_every, patience") from None
    config = classifier.config
    for key in ("class_weight", "augment"):
        config.pop(key)
    return config


def _check_synthetic(real: Cohort, synthetic: Split | None) -> None:
    if synthetic is None:
        return
    if synthetic.image_shape != real.image_shape:
        raise InputError(
            f"synthetic images of the real image shape {real.image_shape}",
            f"shape {synthetic.image_shape}",
            "generate from a model trained on this data set",
        )
    if int(synthetic.labels.max()) >= real.num_classes:
        raise InputError(
            f"synthetic labels in 0..{real.num_classes - 1}", f"label {int(synthetic.labels.max())}", "use the real data set's classes"
        )
