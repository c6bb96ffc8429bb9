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
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.progress import Progress, TimeElapsedColumn
from scipy import stats

from genrad.data.cohort import Cohort, Split
from genrad.errors import InputError
from genrad.evaluation.classification import classification_metrics
from genrad.evaluation.classifier import Classifier
from genrad.progress import progress_bar
from genrad.provenance import hash_arrays, versions, write_json
from genrad.training.seeding import derive_seed

MULTIPLES = (0.5, 1.0, 2.0, 5.0, 10.0)
REAL_FRACTIONS = (0.1, 0.25, 0.5)
CONFIDENCE = 0.95
SCALAR_METRICS = ("auc", "accuracy", "balanced_accuracy", "ece")
PROTOCOL_VERSION = 1
QUICK = {
    "seeds": 2,
    "multiples": (1.0,),
    "recipe": {"channels": (8, 16, 32, 64), "stem_stride": 2, "batch_size": 32, "max_steps": 40, "eval_every": 10, "patience": 2},
}
FLAG_COLUMNS = ("qa_flag", "qa_flagged", "flagged", "flag")
KEEP_COLUMNS = ("qa_keep", "qa_kept", "keep")  # not "kept": synthetic.npz holds only kept images
_FIXED_BY_DATA = ("spatial_dims", "in_channels", "num_classes", "class_weight", "augment", "device")
_MODIFIERS = ("reweight", "augment", "balanced", "filtered")


@dataclass(frozen=True)
class Arm:
    """One training set recipe; its `name` (e.g. ``real+synthetic@2x+balanced``) parses back to it."""

    real_fraction: float = 1.0
    synthetic_multiple: float = 0.0
    reweight: bool = False
    augment: bool = False
    balanced: bool = False
    filtered: bool = False

    def __post_init__(self) -> None:
        if not 0.0 <= self.real_fraction <= 1.0 or self.synthetic_multiple < 0:
            raise InputError(
                "a real fraction in [0, 1] and a synthetic multiple >= 0",
                f"{self.real_fraction} and {self.synthetic_multiple}",
                "write arms like real@25%+synthetic@2x",
            )
        if self.real_fraction == 0 and self.synthetic_multiple == 0:
            raise InputError("an arm with real or synthetic images", "neither", "name the arm real... or synthetic@Mx")
        if (self.balanced or self.filtered) and self.synthetic_multiple == 0:
            raise InputError(
                "+balanced / +filtered only with synthetic images", self.name, "add synthetic@Mx to the arm"
            )

    @property
    def name(self) -> str:
        terms = []
        if self.real_fraction == 1.0:
            terms.append("real")
        elif self.real_fraction > 0:
            terms.append(f"real@{self.real_fraction * 100:g}%")
        if self.synthetic_multiple > 0:
            terms.append(f"synthetic@{self.synthetic_multiple:g}x")
        terms += [modifier for modifier in _MODIFIERS if getattr(self, modifier)]
        return "+".join(terms)

    @property
    def uses_synthetic(self) -> bool:
        return self.synthetic_multiple > 0

    @classmethod
    def parse(cls, name: str | Arm) -> Arm:
        """``real``, ``real@25%``, ``synthetic@2x`` (``synthetic`` = ``@1x``) joined by ``+`` with modifiers."""
        if isinstance(name, Arm):
            return name
        fields: dict[str, Any] = {"real_fraction": 0.0}
        for term in str(name).strip().split("+"):
            real = re.fullmatch(r"real(?:@([0-9.]+)%)?", term)
            synthetic = re.fullmatch(r"synthetic(?:@([0-9.]+)x)?", term)
            if real:
                fields["real_fraction"] = float(real.group(1)) / 100 if real.group(1) else 1.0
            elif synthetic:
                fields["synthetic_multiple"] = float(synthetic.group(1)) if synthetic.group(1) else 1.0
            elif term in _MODIFIERS:
                fields[term] = True
            else:
                raise InputError(
                    "arm terms real[@P%], synthetic[@Mx], " + ", ".join(_MODIFIERS),
                    f"{term!r} in arm {name!r}",
                    "write arms like real, real+augment, real+synthetic@2x+balanced, synthetic@1x",
                )
        return cls(**fields)


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
    arms += [Arm(real_fraction=0.0, synthetic_multiple=m) for m in sorted({1.0, max(multiples)})]
    if ablation:
        for fraction in REAL_FRACTIONS:
            arms += [Arm(real_fraction=fraction), Arm(real_fraction=fraction, synthetic_multiple=1.0, balanced=True)]
    return arms


def synthetic_counts(real_counts: np.ndarray, base: np.ndarray, multiple: float, *, balanced: bool) -> np.ndarray:
    """Synthetic images per class for ``multiple`` x the real training set (``real_counts``).

    Plain: the real class ratio. Balanced: water-filling onto ``base`` (the real images the arm
    already holds per class), so the rarest classes are topped up first toward equal counts.
    """
    total = int(round(multiple * real_counts.sum()))
    if not balanced:
        return _largest_remainder(real_counts / real_counts.sum() * total, total)
    order = np.sort(base.astype(np.float64))
    for j in range(1, len(order) + 1):
        level = (total + order[:j].sum()) / j
        if j == len(order) or level <= order[j]:
            break
    return _largest_remainder(np.maximum(level - base, 0.0), total)


def arm_counts(arm: Arm, real_counts: np.ndarray) -> dict[str, np.ndarray]:
    """Real and synthetic images per class in `arm`'s training set (the same for every seed)."""
    real_part = np.zeros_like(real_counts)
    if arm.real_fraction > 0:
        real_part = np.maximum(np.round(real_counts * arm.real_fraction), np.minimum(real_counts, 1)).astype(np.int64)
    synthetic_part = np.zeros_like(real_counts)
    if arm.uses_synthetic:
        synthetic_part = synthetic_counts(real_counts, real_part, arm.synthetic_multiple, balanced=arm.balanced)
    return {"real": real_part, "synthetic": synthetic_part}


def arm_training_set(
    arm: Arm, real: Split, synthetic: Split | None, *, seed: int, num_classes: int, keep: np.ndarray | None = None
) -> Split:
    """The training split of `arm` for `seed`: seeded, class-stratified draws of real and synthetic images.

    Per class, images are taken in the order of a permutation seeded by ``(seed, part, class)``, so
    smaller fractions and multiples are subsets of larger ones; `keep` (for ``+filtered``) skips the
    images the QA dropped.
    """
    counts = arm_counts(arm, np.bincount(real.labels, minlength=num_classes))
    parts = []
    if arm.real_fraction > 0:
        parts.append(real.subset(_draw(real.labels, counts["real"], seed, "real", None)))
    if arm.uses_synthetic:
        _check_pool(arm, counts["synthetic"], synthetic, keep)
        mask = keep if arm.filtered else None
        parts.append(synthetic.subset(_draw(synthetic.labels, counts["synthetic"], seed, "synthetic", mask)))
    images = np.concatenate([part.images for part in parts])
    labels = np.concatenate([part.labels for part in parts])
    return Split(images, labels, name="train")


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
    device: str | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Train every arm over every seed, score on ``real.test``; return the ``utility.json`` payload.

    `keep` (a boolean mask over `synthetic`, or a callable giving one) is the per-sample QA filter
    for the ``+filtered`` arms. `recipe` overrides `Classifier` training arguments (layers, channels,
    lr, weight_decay, batch_size, max_steps, eval_every, patience). With `cache_dir`, each arm-seed
    result is stored there and reused on a re-run with the same inputs; the classifiers of the arms
    named in `save_classifiers` are saved under ``cache_dir/classifiers/<arm>/seed-<s>``.
    """
    train, val, test = real.train, real.val, real.test
    seed_list = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    if not seed_list:
        raise InputError("at least one seed", "none", "pass seeds=5 (--seeds 5)")
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
    hashes = {
        "real": real.content_hash(),
        "synthetic": synthetic.content_hash() if synthetic is not None else None,
        "keep": hash_arrays(keep_mask) if keep_mask is not None else None,
    }
    runs: dict[Arm, list[dict[str, Any]]] = {arm: [] for arm in arm_list}
    jobs = [(seed, arm) for seed in seed_list for arm in arm_list]
    context = _Context(real, synthetic, keep_mask, recipe_config, hashes, device)
    cache = Path(cache_dir) if cache_dir is not None else None
    with progress_bar(*Progress.get_default_columns(), TimeElapsedColumn(), disable=not progress) as bar:
        task = bar.add_task("utility", total=len(jobs))
        for seed, arm in jobs:
            bar.update(task, description=f"{arm.name} seed {seed}")
            runs[arm].append(_run_cached(arm, seed, context, cache, arm.name in save_classifiers))
            bar.advance(task)
    reference = runs[Arm()]
    payload_arms = []
    for arm in arm_list:
        summary = _summarise(runs[arm], rare)
        summary["delta_vs_real"] = None if arm == Arm() else _paired(runs[arm], reference, rare)
        spec = {key: getattr(arm, key) for key in ("real_fraction", "synthetic_multiple", *_MODIFIERS)}
        n_train = {part: values.tolist() for part, values in counts[arm].items()}
        payload_arms.append({"name": arm.name, **spec, "n_train": n_train, **summary})
    return {
        "arms": payload_arms,
        "rare_class": rare,
        "class_names": list(real.class_names),
        "seeds": seed_list,
        "multiples": [float(m) for m in multiples],
        "test_counts": list(test.class_counts(num_classes).values()),
        "config": {
            "recipe": recipe_config,
            "arms": [arm.name for arm in arm_list],
            "confidence": CONFIDENCE,
            "interval": "Student-t over seeds; delta_vs_real paired by seed",
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
    multiples: Sequence[float] = MULTIPLES,
    arms: Sequence[Arm | str] | None = None,
    keep: np.ndarray | Callable[[Split], np.ndarray] | None = None,
    quick: bool = False,
    ablation: bool = False,
    synthetic_source: str | None = None,
    device: str | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Run the protocol with its cache in ``out/runs`` and write ``out/utility.json`` and ``out/scaling.png``.

    Without `arms`, the arms are `default_arms` (with ``+filtered`` when `keep` is given, the
    real-fraction ablation when `ablation`). `quick` uses the small, short `QUICK` recipe.
    """
    out = Path(out)
    if arms is None:
        arms = default_arms(multiples, synthetic=synthetic is not None, filtered=keep is not None, ablation=ablation)
    payload = run_protocol(
        cohort,
        synthetic,
        arms=arms,
        seeds=seeds,
        multiples=multiples,
        keep=keep,
        recipe=QUICK["recipe"] if quick else None,
        cache_dir=out,
        device=device,
        progress=progress,
    )
    payload["config"]["quick"] = quick
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
    panels = (("auc", "AUC"), ("balanced_accuracy", "balanced accuracy"), ("rare_class_recall", f"recall, class {payload['class_names'][rare]} (rare)"))
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
                label = arm["name"].split("@")[0] + "".join(f"+{m}" for m in ("balanced", "filtered") if arm[m])
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


@dataclass(frozen=True)
class _Context:
    real: Cohort
    synthetic: Split | None
    keep: np.ndarray | None
    recipe: dict[str, Any]
    hashes: dict[str, str | None]
    device: str | None


def _run_cached(arm: Arm, seed: int, context: _Context, cache: Path | None, save_classifier: bool) -> dict[str, Any]:
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
    slug = re.sub(r"[^A-Za-z0-9.]+", "_", arm.name)
    path = cache / "runs" / f"{slug}-seed{seed}.json" if cache is not None else None
    if path is not None and path.exists():
        record = json.loads(path.read_text(encoding="utf-8"))
        if record.get("key") == key:
            return record
    real = context.real
    start = time.perf_counter()
    train = arm_training_set(arm, real.train, context.synthetic, seed=seed, num_classes=real.num_classes, keep=context.keep)
    classifier = Classifier(
        **context.recipe, class_weight="balanced" if arm.reweight else None, augment=arm.augment, device=context.device
    ).fit(train, real.val, seed=seed)
    probabilities = classifier.predict_proba(real.test)
    record = {
        "key": key,
        **identity,
        "metrics": classification_metrics(real.test.labels, probabilities, num_classes=real.num_classes),
        "best_step": classifier.best_step_,
        "seconds": round(time.perf_counter() - start, 2),
        "probabilities": probabilities.tolist(),
    }
    if path is not None:
        if save_classifier:
            classifier.save(cache / "classifiers" / slug / f"seed-{seed}")
        write_json(path, record)
    return record


def _summarise(runs: Sequence[Mapping[str, Any]], rare: int) -> dict[str, Any]:
    metrics = [run["metrics"] for run in runs]
    summary: dict[str, Any] = {key: t_interval([m[key] for m in metrics]) for key in SCALAR_METRICS}
    num_classes = len(metrics[0]["recall_per_class"])
    summary["recall_per_class"] = {str(k): t_interval([m["recall_per_class"][k] for m in metrics]) for k in range(num_classes)}
    summary["rare_class_recall"] = summary["recall_per_class"][str(rare)]
    summary["best_step"] = [run["best_step"] for run in runs]
    return summary


def _paired(runs: Sequence[Mapping[str, Any]], reference: Sequence[Mapping[str, Any]], rare: int) -> dict[str, Any]:
    """Per-seed differences arm - real: mean, t-interval and paired t-test p-value."""

    def value(run: Mapping[str, Any], key: str) -> float:
        return run["metrics"]["recall_per_class"][rare] if key == "rare_class_recall" else run["metrics"][key]

    deltas = {}
    for key in (*SCALAR_METRICS, "rare_class_recall"):
        differences = [value(a, key) - value(b, key) for a, b in zip(runs, reference, strict=True)]
        summary = t_interval(differences)
        spread = np.std(differences, ddof=1) if len(differences) > 1 else 0.0
        summary["p_value"] = float(stats.ttest_1samp(differences, 0.0).pvalue) if spread > 0 else None
        deltas[key] = summary
    return deltas


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


def _draw(labels: np.ndarray, wanted: np.ndarray, seed: int, part: str, keep: np.ndarray | None) -> np.ndarray:
    chosen = []
    for k, n in enumerate(wanted):
        order = np.random.default_rng(derive_seed(seed, part, k)).permutation(np.flatnonzero(labels == k))
        if keep is not None:
            order = order[keep[order]]
        chosen.append(order[:n])
    return np.sort(np.concatenate(chosen))


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
            f"generate more class-{k} images (genrad generate --per-class {k}=N) or use smaller multiples",
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
        raise InputError("Classifier training arguments", str(error), "use layers, channels, lr, weight_decay, batch_size, max_steps, eval_every, patience") from None
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
