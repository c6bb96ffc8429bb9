"""The arms of the utility protocol: what a classifier is trained on.

An `Arm` is parsed from and printed as one name: ``real``; ``real+reweight`` (class-weighted loss);
``real+augment`` / ``real+trivialaugment`` (classical augmentation); ``real+oversample@Mx`` (real images duplicated,
the count-matched control of a synthetic arm); ``real+synthetic@Mx`` for multiples ``M`` of the real training set
(``@Mxrare``: of the rarest class), with ``+balanced`` (rarer classes topped up first), ``+filtered`` (only images the
per-sample QA keeps), ``+agreeT`` (only images a real-data classifier labels as their class with probability >= T) and
``+pretrain`` (pre-train on synthetic, fine-tune on real); ``synthetic@Mx`` (train on synthetic, test on real; Esteban
et al. 2017, "TSTR"); ``real@P%+...`` (a stratified fraction of the real training set). A `Strategy` names the arm
genrad recommends and how its images are sampled.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from genrad.errors import InputError

MULTIPLES = (0.5, 1.0, 2.0, 5.0, 10.0)
REAL_FRACTIONS = (0.1, 0.25, 0.5)
ARM_MODIFIERS = ("reweight", "augment", "trivialaugment", "balanced", "filtered")
CLASSICAL_MODIFIERS = ("reweight", "augment", "trivialaugment")
"""The classical remedies an arm can add without a generator: class-weighted loss and the two augmentation policies
(`genrad.evaluation.utility.classifier.AUGMENTATIONS`); duplicated real images are ``oversample@Mx``."""


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
        terms += [modifier for modifier in ARM_MODIFIERS if getattr(self, modifier)]
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
        """The classifier's augmentation policy (`genrad.evaluation.utility.classifier.AUGMENTATIONS`)."""
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
            elif term in (*ARM_MODIFIERS, "pretrain"):
                fields[term] = True
            else:
                raise InputError(
                    "arm terms real[@P%], synthetic[@Mx[rare]], oversample@Mx[rare], " + ", ".join(ARM_MODIFIERS)
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
