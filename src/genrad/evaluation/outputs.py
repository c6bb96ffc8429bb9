"""Evaluation output folders, written by `genrad evaluate ...` and by the `genrad run` pipeline alike.

- `evaluate_fidelity`: ``fidelity.json`` (set-level metrics with CIs and real floors, QA summary),
  ``samples.parquet`` (per-sample QA scores) and the two radiomic feature tables the report plots;
- `evaluate_privacy`: ``privacy.json``, ``pairs.png`` and ``privacy_samples.csv``.

(`genrad.evaluation.utility.evaluate_utility` does the same for utility.) Every file is written
atomically; an interrupted feature extraction resumes from the cache folder.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console

from genrad.errors import InputError
from genrad.paths import fresh_output
from genrad.provenance import atomic_path, versions, write_json
from genrad.synthesis.layout import (
    FEATURES_REAL,
    FEATURES_SYNTHETIC,
    FIDELITY_JSON,
    PAIRS_PNG,
    PRIVACY_JSON,
    PRIVACY_SAMPLES_CSV,
    SAMPLES_PARQUET,
)

FEATURE_CACHE = ".radiomics_cache"


def evaluate_fidelity(
    real: Any,
    synthetic: Any,
    *,
    out: str | Path,
    floor_real: Any = None,
    class_names: Sequence[str] | None = None,
    feature_set: str = "frd_v1",
    engine: str | None = None,
    workers: int = 1,
    n_bootstrap: int = 100,
    false_flag_rate: float = 0.05,
    seed: int = 0,
    sources: Mapping[str, Any] | None = None,
    console: Console | None = None,
) -> dict[str, Any]:
    """Fidelity of `synthetic` against the real reference `real`, and a QA score per synthetic image.

    `floor_real` (real images disjoint from `real`, e.g. the train split when `real` is the test
    split) gives the real floor and is the QA's reference manifold, `real` then calibrates the QA
    flag; without it `real` is split in halves. See `genrad.evaluation.fidelity.fidelity` and
    `genrad.evaluation.qa.SampleQA`.
    """
    from genrad.evaluation.fidelity import check_settings
    from genrad.evaluation.qa import SampleQA

    check_settings(n_bootstrap=n_bootstrap)
    qa = SampleQA(false_flag_rate=false_flag_rate, feature_set=feature_set, engine=engine or "fast", seed=seed).check_settings()
    _check_same_shape(real, synthetic, floor_real)
    with fresh_output(out):
        return _evaluate_fidelity(real, synthetic, qa, out=Path(out), floor_real=floor_real, class_names=class_names,
                                  feature_set=feature_set, engine=engine, workers=workers, n_bootstrap=n_bootstrap,
                                  false_flag_rate=false_flag_rate, seed=seed, sources=sources,
                                  console=console or Console(stderr=True))


def _check_same_shape(real: Any, synthetic: Any, floor_real: Any) -> None:
    """Radiomic features compare only images of one size: refuse sets of different image shapes up front."""
    shapes = {name: tuple(split.image_shape) for name, split in (("real", real), ("synthetic", synthetic), ("floor", floor_real))
              if hasattr(split, "image_shape")}
    if len(set(shapes.values())) > 1:
        raise InputError("real and synthetic images of one shape",
                         ", ".join(f"{name} {'x'.join(map(str, shape))}" for name, shape in shapes.items()),
                         "generate from a model trained on this data (or load both at the same size)")


def _evaluate_fidelity(
    real: Any, synthetic: Any, qa: Any, *, out: Path, floor_real: Any, class_names: Sequence[str] | None, feature_set: str,
    engine: str | None, workers: int, n_bootstrap: int, false_flag_rate: float, seed: int,
    sources: Mapping[str, Any] | None, console: Console,
) -> dict[str, Any]:
    from genrad.evaluation.fidelity import feature_table, fidelity

    options: dict[str, Any] = {"feature_set": feature_set, "engine": engine, "workers": workers}
    cache = out / FEATURE_CACHE
    real_t = feature_table(real, name="real", cache_dir=cache, **options)
    synthetic_t = feature_table(synthetic, name="synthetic", cache_dir=cache, **options)
    floor_t = None if floor_real is None else feature_table(floor_real, name="floor_real", cache_dir=cache, **options)
    with console.status(f"fidelity metrics with {n_bootstrap} bootstrap replicates"):
        report = fidelity(
            real_t, synthetic_t, floor_real=floor_t, n_bootstrap=n_bootstrap, seed=seed, class_names=class_names, **options
        )
    report["provenance"]["sources"] = dict(sources or {})

    reference, calibration = (real, None) if floor_real is None else (floor_real, real)
    reference_t, calibration_t = (real_t, None) if floor_t is None else (floor_t, real_t)
    with console.status(f"per-sample QA of {len(synthetic_t)} synthetic images"):
        calibration_features = None if calibration_t is None else calibration_t.values
        qa.fit(reference, calibration, reference_features=reference_t.values, calibration_features=calibration_features)
        samples = qa.score(synthetic, features=synthetic_t.values)
    labels = synthetic_t.labels if synthetic_t.labels is not None else np.full(len(samples), -1)
    samples.insert(0, "index", range(len(samples)))
    samples.insert(1, "label", labels)
    report["qa"] = {
        "flagged": int(samples["qa_flag"].sum()),
        "n": len(samples),
        "flagged_rate": float(samples["qa_flag"].mean()),
        "threshold": qa.threshold_,
        "false_flag_rate": false_flag_rate,
        "guarantee": qa.guarantee,
        "n_calibration": qa.n_calibration_,
        "reasons": {str(k): int(v) for k, v in samples.loc[samples["qa_flag"], "qa_reason"].value_counts().items()},
    }
    samples.attrs = {"genrad_versions": versions(), "qa_threshold": qa.threshold_, "seed": seed}
    _write_parquet(out / SAMPLES_PARQUET, pd.DataFrame(samples))
    _write_parquet(out / FEATURES_REAL, _labelled(real_t))
    _write_parquet(out / FEATURES_SYNTHETIC, _labelled(synthetic_t))
    write_json(out / FIDELITY_JSON, report)
    return report


def evaluate_privacy(
    train: Any,
    holdout: Any,
    synthetic: Any,
    *,
    out: str | Path,
    features: Sequence[str] = ("embedding", "radiomics"),
    quantile: float = 0.99,
    max_shift: int = 2,
    n_bootstrap: int = 1000,
    top_k: int = 16,
    chunk_size: int = 512,
    seed: int = 0,
    sources: Mapping[str, Any] | None = None,
    generator: Mapping[str, Any] | None = None,
    console: Console | None = None,
) -> dict[str, Any]:
    """Memorisation audit of `synthetic` (see `genrad.evaluation.privacy.PrivacyAudit`), streamed in chunks."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        TextColumn,
        TimeRemainingColumn,
    )

    from genrad.evaluation.privacy import PrivacyAudit
    from genrad.progress import progress_bar

    if chunk_size < 1:
        raise InputError("chunk_size >= 1", str(chunk_size), "pass a positive chunk size", source="--chunk-size")
    audit = PrivacyAudit(tuple(features), quantile=quantile, max_shift=max_shift, top_k=top_k, n_bootstrap=n_bootstrap, seed=seed)
    out = Path(out)
    console = console or Console(stderr=True)
    with console.status(f"fitting the reference ({', '.join(('pixel', *features))}) on {len(train)} training images"):
        audit.fit(train, holdout)
    images = synthetic.images
    columns = (TextColumn("auditing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with progress_bar(*columns, console=console, transient=True) as bar:
        task = bar.add_task("audit", total=len(images))
        for start in range(0, len(images), chunk_size):
            audit.update(images[start : start + chunk_size])
            bar.advance(task, len(images[start : start + chunk_size]))
    result = audit.compute()
    result["provenance"]["sources"] = dict(sources or {})
    result["generator"] = dict(generator) if generator is not None else None
    audit.plot_pairs(out / PAIRS_PNG)
    with atomic_path(out / PRIVACY_SAMPLES_CSV) as temp:
        audit.per_sample().to_csv(temp, index_label="index")
    write_json(out / PRIVACY_JSON, result)
    return result


def _labelled(table: Any) -> pd.DataFrame:
    frame = pd.DataFrame(table.values, columns=list(table.names))
    frame["label"] = table.labels if table.labels is not None else -1
    return frame


def _write_parquet(path: Path, frame: pd.DataFrame) -> None:
    with atomic_path(path) as temp:
        frame.to_parquet(temp)
