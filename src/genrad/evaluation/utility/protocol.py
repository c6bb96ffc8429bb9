"""The utility protocol: does synthetic data improve the downstream model? (train on arms, test on real data)

`run_protocol` trains the same `Classifier` recipe on every arm (`genrad.evaluation.utility.arms`) over the same
seeds, with early stopping on the real validation split, and scores each on the real **test** split; every synthetic
arm is paired with ``real``, with the best classical arm (chosen by mean validation AUC, or given) and with its
count-matched oversampling control. `evaluate_utility` tests one named `Strategy` with its controls. Each arm-seed
result is cached under ``cache_dir``, so an interrupted run resumes; the statistics are in
`genrad.evaluation.utility.summary`.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.progress import Progress, TimeElapsedColumn

from genrad.core import derive_seed
from genrad.data.cohort import Cohort, Split
from genrad.errors import InputError, is_int
from genrad.evaluation.utility.arms import DEFAULT_STRATEGY, MULTIPLES, Arm, Strategy, default_arms, get_strategy, utility_arms
from genrad.evaluation.utility.classifier import Classifier
from genrad.evaluation.utility.counts import agreement_mask, arm_counts, arm_parts, check_pool, resolve_keep
from genrad.evaluation.utility.metrics import classification_metrics
from genrad.evaluation.utility.summary import CONFIDENCE, N_BOOTSTRAP, plot_scaling, select_best_classical, summarise_arms
from genrad.progress import progress_bar
from genrad.provenance import hash_arrays, versions, write_json
from genrad.synthesis.layout import SCALING_PNG, UTILITY_JSON

PROTOCOL_VERSION = 3
QUICK: dict[str, Any] = {
    "seeds": 2,
    "multiples": (1.0,),
    "recipe": {"channels": (8, 16, 32, 64), "stem_stride": 2, "batch_size": 32, "max_steps": 150, "eval_every": 15, "patience": 3},
}
_FIXED_BY_DATA = ("spatial_dims", "in_channels", "num_classes", "class_weight", "augment", "device")


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
    learning_rate, weight_decay, batch_size, max_steps, eval_every, patience). With `cache_dir`, each arm-seed
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
        raise InputError("workers: an int >= 1", repr(workers), "pass workers=2 to train two classifiers at a time",
                         argument="workers")
    keep_mask = resolve_keep(keep, synthetic)
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
        check_pool(arm, counts[arm]["synthetic"], synthetic, keep_mask)
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
    write_json(out / UTILITY_JSON, payload)
    plot_scaling(payload, out / SCALING_PNG)
    return payload


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


def _given_best_classical(given: Arm | str | None, arms: Sequence[Arm]) -> Arm | None:
    """The best classical arm given to `run_protocol`, checked before any training (None when not given)."""
    if given is None:
        return None
    arm = Arm.parse(given)
    if arm not in arms or not arm.is_classical:
        raise InputError("best_classical: one of the run's arms without synthetic images", arm.name,
                         "add it to the arms or leave best_classical out (chosen by validation AUC)")
    return arm


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
                         "use layers, channels, learning_rate, weight_decay, batch_size, max_steps, eval_every, patience") from None
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
