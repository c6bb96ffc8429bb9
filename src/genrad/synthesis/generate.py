"""`generate`: plan -> sharded, resumable sampling -> streamed merge into a synthetic dataset.

1. Check everything (arguments, model, plan, format) before writing anything.
2. Record the generation (model hash, plan, seed, shard and batch size, versions) in ``plan.json``;
   a re-run into the same folder must ask for the same generation, and then resumes.
3. Sample the missing shards on the chosen backend; each shard file appears atomically when complete.
4. Merge: apply the optional filter per shard, stream the kept images into ``synthetic.npz``
   (and PNG / NIfTI files), write the manifest, and finally ``synthesis.json``.

The merged npz and the manifest are byte-identical for the same seed whatever the backend, worker
count, order of completion or number of interruptions.
"""

from __future__ import annotations

import copy
import json
import shutil
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from genrad import __version__
from genrad.core import SEEDING
from genrad.data.npz_format import medmnist_layout
from genrad.errors import InputError
from genrad.limits import read_json
from genrad.models.options import given_options
from genrad.paths import check_entries, check_space, fresh_output
from genrad.progress import progress_bar
from genrad.provenance import atomic_path, hash_file, versions, write_json
from genrad.synthesis.backends import BACKENDS, ModelSource, load_model, run_shards
from genrad.synthesis.dataset import (
    CLINICAL_PREFIX,
    MANIFEST,
    MANIFEST_CSV,
    NPZ,
    PLAN,
    RECORD,
    SyntheticSet,
    write_manifest,
)
from genrad.synthesis.plan import GeneratorLike, SamplingPlan, load_data, make_plan
from genrad.synthesis.shards import (
    SHARD_DIR,
    ShardTask,
    one_thread,
    read_shard_images,
    remove_stale_temporaries,
    shard_path,
    shard_problem,
    split_plan,
    write_shard,
)
from genrad.synthesis.writers import (
    StreamingNpz,
    check_format,
    export_name,
    write_nifti,
    write_png,
)

Filter = Callable[[np.ndarray, np.ndarray], np.ndarray]


def generate(
    model_or_run_dir: ModelSource,
    *,
    per_class: dict[int, int] | str | None = None,
    balance: bool = False,
    multiple: float | None = None,
    covariates: pd.DataFrame | str | Path | None = None,
    data: Any = None,
    out: str | Path,
    seed: int = 0,
    shard_size: int = 1000,
    batch_size: int = 250,
    format: str = "npz",
    backend: str = "local",
    workers: int = 1,
    address: str | None = None,
    filter: Filter | None = None,
    clinical: bool = False,
    sampling: Mapping[str, Any] | None = None,
    student: bool = True,
    progress: bool = True,
) -> SyntheticSet:
    """Generate a synthetic dataset into `out` and return it (see the module docstring for the steps).

    The plan comes from exactly one of `per_class`, `balance`, `multiple` (see
    `genrad.synthesis.plan.make_plan`, which also uses `covariates` and `data`). `filter` is called
    as ``filter(images, labels) -> keep`` on each shard (float32 ``[0, 1]`` channel-first images) and
    must return a boolean mask; dropped images stay in the manifest with ``kept=False``. ``synthetic.npz``
    is always written; ``format="png"`` / ``"nifti"`` also exports one file per kept image.
    ``clinical=True`` draws one synthetic clinical record per image from the real clinical table of
    `data` (`genrad.synthesis.clinical.records_for_plan`), conditions the image on it, and writes
    every record column into the manifest and the npz (``train_clinical__<column>``).
    `sampling` changes the model's sampling-only settings (`Generator.with_sampling`, e.g.
    ``{"guidance_scale": 5.0}``; None values leave a setting unchanged) on a copy of the model; they are part
    of the provenance, and resuming with other values refuses. A run directory samples with its guidance-distilled
    student when it holds one (`genrad.models.load_sampler`, recorded in ``model_config.distilled_from``);
    ``student=False`` samples with the model saved there itself.
    """
    _check_arguments(seed=seed, shard_size=shard_size, batch_size=batch_size, backend=backend, workers=workers)
    out = Path(out)
    sampling = given_options(sampling)
    if not student and isinstance(model_or_run_dir, str | Path):
        from genrad.models import load

        model_or_run_dir = load(model_or_run_dir)  # the model itself: shard workers get the object, not the path
    model = load_model(model_or_run_dir)
    if sampling:  # a model object passed in is copied first: the caller's keeps its settings
        model = (copy.deepcopy(model) if model is model_or_run_dir else model).with_sampling(**sampling)
    cohort = load_data(data)
    plan = make_plan(
        model, per_class=per_class, balance=balance, multiple=multiple, covariates=covariates, data=cohort, seed=seed
    )
    check_entries(out, files=(NPZ, MANIFEST, MANIFEST_CSV, RECORD, PLAN), folders=(SHARD_DIR,))
    check_space(out, len(plan) * int(np.prod(model.image_shape)), "a synthetic set (one byte per value at the least)",
                option="--multiple" if multiple is not None else "--per-class")
    records = None
    if clinical:
        from genrad.synthesis.clinical import records_for_plan

        plan, records = records_for_plan(plan, cohort, seed=seed)
    image_shape = tuple(int(s) for s in model.image_shape)
    check_format(format, image_shape)
    generation = {
        "model_hash": model.model_hash(),
        **({"sampling": sampling} if sampling else {}),  # folders written before the option still resume
        "image_shape": list(image_shape),
        "plan": plan.summary(),
        "seed": int(seed),
        "seeding": SEEDING,
        "shard_size": int(shard_size),
        "batch_size": int(batch_size),
        "versions": {k: v for k, v in versions().items() if k in ("genrad", "torch", "numpy")},
    }
    merge = {"format": format, "filter": None if filter is None else _callable_name(filter)}
    if _is_complete(out, generation, merge):
        return SyntheticSet(out)
    with fresh_output(out):
        return _generate(out, model_or_run_dir, model, plan, cohort, generation, merge, sampling=sampling, seed=seed,
                         shard_size=shard_size, batch_size=batch_size, fmt=format, backend=backend, workers=workers,
                         address=address, filter=filter, records=records, progress=progress)


def _generate(
    out: Path, model_or_run_dir: ModelSource, model: GeneratorLike, plan: SamplingPlan, cohort: Any,
    generation: dict[str, Any], merge: dict[str, Any], *, sampling: Mapping[str, Any], seed: int, shard_size: int,
    batch_size: int, fmt: str, backend: str, workers: int, address: str | None, filter: Filter | None,
    records: pd.DataFrame | None, progress: bool,
) -> SyntheticSet:
    """Sample the missing shards of `plan` into `out`, merge them and write the record (see `generate`)."""
    _claim(out, generation)

    tasks = split_plan(plan, seed=seed, shard_size=shard_size, batch_size=batch_size)
    remove_stale_temporaries(out / SHARD_DIR)
    remove_stale_temporaries(out)
    todo = [task for task in tasks if not _usable_shard(out, task)]
    if progress and todo:
        print(f"genrad: {sampling_estimate(model, sum(map(len, todo)), batch_size=batch_size, workers=workers)}", file=sys.stderr)
    with _progress(progress) as bar:
        sampling_task = bar.add_task("sampling", total=len(plan), completed=len(plan) - sum(map(len, todo)))

        def on_result(task: ShardTask, images: np.ndarray) -> None:
            write_shard(out, task, images)
            bar.advance(sampling_task, len(task))

        source = model_or_run_dir if isinstance(model_or_run_dir, str | Path) and not sampling else model
        run_shards(todo, source, model, backend=backend, workers=workers, address=address, on_result=on_result)
        provenance = {
            "synthetic": True,
            "generator": f"genrad {__version__}",
            "generation": generation,
            "merge": merge,
            "model_config": dict(model.config),
            "data_hash": None if cohort is None else cohort.content_hash(),
            "privacy": getattr(model, "privacy_", None),  # a DP model's guarantee carries over (post-processing)
        }
        manifest = _merge(out, tasks, plan, model, cohort, provenance, fmt=fmt, filter=filter, bar=bar, records=records)
    kept = int(manifest["kept"].sum())
    outputs = {name: hash_file(out / name) for name in (NPZ, MANIFEST, MANIFEST_CSV)}
    write_json(out / RECORD, {**provenance, "n_planned": len(plan), "n_kept": kept, "outputs": outputs, "versions": versions()})
    return SyntheticSet(out)


def sampling_estimate(model: GeneratorLike, n: int, *, batch_size: int = 250, workers: int = 1, probe: int = 32) -> str:
    """One line that says how long sampling `n` images will take: `probe` images (a throwaway seed, after one
    warm-up image) timed on this machine on one thread as each shard samples, scaled to `n` and shared among
    `workers`."""
    probe = max(1, min(probe, batch_size, n))
    with one_thread():
        model.sample(1, generator=torch.Generator().manual_seed(0))
        start = time.perf_counter()
        model.sample(probe, generator=torch.Generator().manual_seed(1))
        rate = probe / max(time.perf_counter() - start, 1e-9)
    minutes = n / rate / workers / 60
    return (f"sampling {n} images: about {minutes:.1f} min at {rate:.1f} images/s per worker "
            f"({workers} worker{'s' if workers > 1 else ''}; timed on {probe} images)")


def _usable_shard(out: Path, task: ShardTask) -> bool:
    """Whether the shard of `task` is already written and intact; a damaged one is removed, with one line."""
    path = shard_path(out, task.index)
    if not path.exists():
        return False
    problem = shard_problem(out, task)
    if problem is None:
        return True
    print(f"genrad: {path} {problem}: sampling it again", file=sys.stderr)
    path.unlink()
    return False


def _check_arguments(*, seed: int, shard_size: int, batch_size: int, backend: str, workers: int) -> None:
    for name, value, low in (("seed", seed, 0), ("shard_size", shard_size, 1), ("batch_size", batch_size, 1), ("workers", workers, 1)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
            raise InputError(f"an integer {name} >= {low}", repr(value), f"give --{name.replace('_', '-')} {low} or more")
    if backend not in BACKENDS:
        raise InputError(f"a backend in {BACKENDS}", repr(backend), "choose --backend local or ray")


def _callable_name(function: Callable[..., Any]) -> str:
    return f"{getattr(function, '__module__', '')}.{getattr(function, '__qualname__', type(function).__qualname__)}"


def _is_complete(out: Path, generation: dict[str, Any], merge: dict[str, Any]) -> bool:
    """True when `out` already holds this generation, merged the same way."""
    try:
        record = read_json(out / RECORD)
    except (OSError, ValueError):
        return False
    outputs = [out / NPZ, out / MANIFEST, out / MANIFEST_CSV] + ([out / merge["format"]] if merge["format"] != "npz" else [])
    same = record.get("generation") == _json_roundtrip(generation) and record.get("merge") == merge
    return same and all(path.exists() for path in outputs)


def _claim(out: Path, generation: dict[str, Any]) -> None:
    """Write ``plan.json``, or check that the one in `out` asks for the same generation (resume)."""
    path = out / PLAN
    if path.is_file():
        recorded = read_json(path)
        if recorded != _json_roundtrip(generation):
            changed = sorted(k for k in set(recorded) | set(generation) if recorded.get(k) != _json_roundtrip(generation).get(k))
            raise InputError(
                "an output folder that is new or holds the same generation (to resume)",
                f"{out} holds a different generation (differs in {', '.join(changed)})",
                "choose another --out, or delete the folder to start over",
                source=str(out),
            )
        (out / RECORD).unlink(missing_ok=True)
        return
    write_json(path, generation)


def _json_roundtrip(payload: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(payload, sort_keys=True))


def _merge(
    out: Path,
    tasks: list[ShardTask],
    plan: SamplingPlan,
    model: GeneratorLike,
    cohort: Any,
    provenance: dict[str, Any],
    *,
    fmt: str,
    filter: Filter | None,
    bar: Progress,
    records: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Stream the shards into ``synthetic.npz`` (and per-image files), then write the manifest."""
    filtering = bar.add_task("filtering", total=len(plan), visible=filter is not None)
    masks = []
    for task in tasks:
        masks.append(_keep_mask(out, task, filter))
        bar.advance(filtering, len(task))
    keep = np.concatenate(masks)
    if not keep.any():
        raise InputError("at least one synthetic image that passes the filter", f"all {len(keep)} generated images dropped",
                         "train the model longer, or generate without the filter (--filter, generate.filter: false)",
                         source=str(out))
    manifest = _manifest(tasks, plan, provenance, keep, fmt, records)
    image_shape = tuple(int(s) for s in model.image_shape)
    layout = medmnist_layout(np.empty((0, *image_shape), dtype=np.uint8)).shape[1:]
    export_dir = out / f".{fmt}.partial"
    if fmt != "npz":
        shutil.rmtree(export_dir, ignore_errors=True)
    merging = bar.add_task("merging", total=len(plan))
    kept = manifest[manifest["kept"]]
    with atomic_path(out / NPZ) as temp, open(temp, "wb") as handle, StreamingNpz(handle) as npz:
        with npz.stream("train_images", np.dtype(np.uint8), (len(kept), *layout)) as member:
            for task in tasks:
                mask = keep[task.start : task.start + len(task)]
                images = read_shard_images(out, task)[mask]
                member.write(np.ascontiguousarray(medmnist_layout(images)).tobytes())
                if fmt != "npz":
                    _export(export_dir, fmt, images, manifest.iloc[task.start : task.start + len(task)][mask])
                bar.advance(merging, len(task))
        npz.write("train_labels", kept["label"].to_numpy(dtype=np.int64).reshape(-1, 1))
        for name in plan.covariate_names:
            npz.write(f"{CLINICAL_PREFIX}{name}", kept[name].to_numpy(dtype=np.float64))
        for name in [] if records is None else [c for c in records.columns if c not in plan.covariate_names]:
            values = kept[name].to_numpy()
            npz.write(f"{CLINICAL_PREFIX}{name}", values.astype(str) if values.dtype == object else values)
        npz.write("train_ids", kept["id"].to_numpy().astype(str))
        npz.write("synthetic", np.ones(len(kept), dtype=bool))
        npz.write("class_names", np.asarray(_class_names(model, cohort), dtype=str))
        npz.write("spatial_dims", np.asarray(len(image_shape) - 1))
        npz.write("genrad_provenance", np.asarray(json.dumps(provenance, sort_keys=True)))
    if fmt != "npz":
        shutil.rmtree(out / fmt, ignore_errors=True)
        export_dir.rename(out / fmt)
    write_manifest(out, manifest)
    return manifest


def _keep_mask(out: Path, task: ShardTask, filter: Filter | None) -> np.ndarray:
    if filter is None:
        return np.ones(len(task), dtype=bool)
    images = read_shard_images(out, task).astype(np.float32) / np.float32(255)
    keep = np.asarray(filter(images, task.labels.copy()))
    if keep.shape != (len(task),) or keep.dtype != bool:
        raise InputError(
            f"a filter returning a boolean mask of shape ({len(task)},)",
            f"{keep.dtype} array of shape {keep.shape}",
            "return True for each image to keep",
            source=_callable_name(filter),
        )
    return keep


def _manifest(
    tasks: list[ShardTask], plan: SamplingPlan, provenance: dict[str, Any], keep: np.ndarray, fmt: str,
    records: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per planned image; ``row`` is its index in ``synthetic.npz`` (-1 when dropped)."""
    n = len(plan)
    model_hash, seed = provenance["generation"]["model_hash"], provenance["generation"]["seed"]
    ids = np.asarray([f"{model_hash[:8]}-s{seed}-{k:08d}" for k in range(n)])
    labels = plan.labels
    columns: dict[str, Any] = {
        "id": ids,
        "shard": np.repeat([t.index for t in tasks], [len(t) for t in tasks]).astype(np.int64),
        "row": np.where(keep, np.cumsum(keep) - 1, -1).astype(np.int64),
        "label": labels,
    }
    if plan.covariates is not None:
        columns.update({name: plan.covariates[name].to_numpy(dtype=np.float64) for name in plan.covariate_names})
    if records is not None:  # the other columns of the synthetic clinical records (clinical=True)
        columns.update({name: records[name].to_numpy() for name in records.columns if name not in columns})
    if fmt == "npz":
        files = np.where(keep, NPZ, "")
    else:
        files = np.where(keep, [f"{fmt}/{export_name(fmt, k, i)}" for k, i in zip(labels, ids, strict=True)], "")
    columns.update(
        {
            "seed": np.repeat([t.seed for t in tasks], [len(t) for t in tasks]).astype(np.int64),
            "model_hash": model_hash,
            "genrad_version": __version__,
            "synthetic": True,
            "kept": keep,
            "file": files,
        }
    )
    if provenance["privacy"]:
        columns.update({"dp_epsilon": float(provenance["privacy"]["epsilon"]), "dp_delta": float(provenance["privacy"]["delta"])})
    return pd.DataFrame(columns)


def _export(directory: Path, fmt: str, images: np.ndarray, rows: pd.DataFrame) -> None:
    write = write_png if fmt == "png" else write_nifti
    for image, image_id, label, model_hash in zip(images, rows["id"], rows["label"], rows["model_hash"], strict=True):
        path = directory / export_name(fmt, int(label), str(image_id))
        path.parent.mkdir(parents=True, exist_ok=True)
        write(path, image, f"SYNTHETIC genrad {__version__} model {model_hash[:12]} id {image_id}")


def _class_names(model: GeneratorLike, cohort: Any) -> list[str]:
    if cohort is not None and cohort.num_classes == model.num_classes:
        return list(cohort.class_names)
    return [str(k) for k in range(int(model.num_classes))]


class _ImagesPerSecond(ProgressColumn):
    def render(self, task: Task) -> Text:
        return Text(f"{task.speed:,.0f} images/s" if task.speed else "? images/s", style="progress.data.speed")


def _progress(enabled: bool) -> Progress:
    return progress_bar(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        _ImagesPerSecond(),
        TimeRemainingColumn(),
        disable=not enabled,
    )
