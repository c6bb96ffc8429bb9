"""`extract`: radiomic feature tables (one row per image, one column per feature) with provenance.

Work is split into chunks of images; chunks run in `workers` processes with a rich progress bar.
With a ``cache_dir`` every finished chunk is stored under the content hash of the images, masks,
settings and versions, so an interrupted run resumes where it stopped and a repeated call returns
the stored table.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import shutil
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from genrad.errors import InputError
from genrad.provenance import atomic_path, versions
from genrad.radiomics.featuresets import FeatureSet, get_feature_set
from genrad.radiomics.inputs import Volumes, as_volumes

ENGINES = ("fast", "pyradiomics")
DEFAULT_ENGINE = "fast"
CHUNK_SIZE = {"fast": 256, "pyradiomics": 16}


def extract(
    images: Any,
    feature_set: str | FeatureSet = "frd_v1",
    engine: str = DEFAULT_ENGINE,
    workers: int = 1,
    masks: Any = None,
    cache_dir: str | Path | None = None,
    *,
    spacing: Sequence[float] | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Radiomic features of every image, named as pyradiomics names them (``wavelet-LH_glcm_Contrast``).

    Args:
        images: a `genrad.data.Split`, a float array in [0, 1] (multiplied by 255) or a uint8 array,
            shaped (N, H, W), (N, 1, H, W), (N, D, H, W) or (N, 1, D, H, W).
        feature_set: a name from `genrad.radiomics.FEATURE_SETS` (``frd_v1``, ``fast``) or a `FeatureSet`.
        engine: ``"fast"`` (batched, vectorised) or ``"pyradiomics"`` (the reference).
        workers: processes to use.
        masks: optional regions of interest, nonzero inside, shaped like `images`. By default the
            whole image minus its first voxel, as frd-score does.
        cache_dir: folder for cached tables (keyed by content hash); also makes runs resumable.
        spacing: pixel spacing in mm per array axis (default 1 mm).
        progress: show a progress bar.

    Returns:
        DataFrame with one row per image and provenance (versions, feature set, settings, engine,
        data hash) in ``df.attrs``. Images pyradiomics cannot process (constant images) get a row of
        NaN and are listed in ``df.attrs["failed"]``.
    """
    chosen = get_feature_set(feature_set)
    if engine not in ENGINES:
        raise InputError(f"engine one of {ENGINES}", repr(engine), "choose 'fast' or 'pyradiomics'", argument="engine")
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise InputError("workers >= 1", repr(workers), "pass a positive number of processes", argument="workers")
    volumes = as_volumes(images, masks, spacing)
    provenance = _provenance(volumes, chosen, engine)
    cache = Path(cache_dir) / provenance["cache_key"] if cache_dir is not None else None
    final = cache.with_suffix(".parquet") if cache is not None else None
    if final is not None and final.exists():
        return pd.read_parquet(final)

    names, values = _run_chunks(volumes, chosen, engine, workers, cache, progress)
    table = pd.DataFrame(values, columns=names)
    table.attrs = {**provenance, "failed": np.flatnonzero(np.isnan(values).all(axis=1)).tolist()}
    if final is not None and cache is not None:
        with atomic_path(final) as temp:
            table.to_parquet(temp)
        shutil.rmtree(cache, ignore_errors=True)
    return table


def extract_chunk(
    engine: str, images: np.ndarray, masks: np.ndarray, feature_set: FeatureSet, spacing: tuple[float, ...]
) -> tuple[list[str], np.ndarray]:
    """Column names and ``(n, F)`` values for one chunk with one engine (runs in worker processes)."""
    if engine == "fast":
        from genrad.radiomics.fast import extract_batch
    else:
        from genrad.radiomics.reference import extract_batch
    return extract_batch(images, masks, feature_set, spacing)


def _run_chunks(
    volumes: Volumes, feature_set: FeatureSet, engine: str, workers: int, cache: Path | None, progress: bool
) -> tuple[list[str], np.ndarray]:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        TextColumn,
        TimeRemainingColumn,
    )

    from genrad.progress import progress_bar

    n = len(volumes)
    size = max(1, min(CHUNK_SIZE[engine], -(-n // workers)))
    bounds = [(start, min(start + size, n)) for start in range(0, n, size)]
    done: dict[tuple[int, int], tuple[list[str], np.ndarray]] = {}
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        done = {b: stored for b in bounds if (stored := _load_part(cache, b)) is not None}
    todo = [b for b in bounds if b not in done]
    columns = [TextColumn(f"radiomics ({engine}, {feature_set.name})"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
    with progress_bar(*columns, disable=not progress, transient=True) as bar:
        task = bar.add_task("images", total=n, completed=sum(stop - start for start, stop in done))

        def finish(b: tuple[int, int], result: tuple[list[str], np.ndarray]) -> None:
            done[b] = result
            if cache is not None:
                _save_part(cache, b, result)
            bar.advance(task, b[1] - b[0])

        def arguments(b: tuple[int, int]) -> tuple[Any, ...]:
            start, stop = b
            return engine, volumes.images[start:stop], volumes.masks[start:stop], feature_set, volumes.spacing

        if workers == 1 or len(todo) <= 1:
            for b in todo:
                finish(b, extract_chunk(*arguments(b)))
        else:
            with ProcessPoolExecutor(max_workers=min(workers, len(todo)), mp_context=multiprocessing.get_context()) as pool:
                futures = {b: pool.submit(extract_chunk, *arguments(b)) for b in todo}
                for b, future in futures.items():
                    finish(b, future.result())
    names = next((done[b][0] for b in bounds if done[b][0]), [])
    if not names:
        raise InputError(
            "images radiomic features can be computed on",
            f"{n} images that all fail (e.g. constant images, which cannot be z-scored)",
            "check the images (genrad data inspect)",
            source="images",
        )
    tables = []
    for b in bounds:
        chunk_names, values = done[b]
        if not chunk_names:  # every image of the chunk failed
            values = np.full((b[1] - b[0], len(names)), np.nan)
        elif chunk_names != names:
            raise RuntimeError(f"feature columns differ between image chunks {bounds[0]} and {b}")
        tables.append(values)
    return names, np.concatenate(tables)


def _provenance(volumes: Volumes, feature_set: FeatureSet, engine: str) -> dict[str, Any]:
    record: dict[str, Any] = {
        "feature_set": feature_set.name,
        "engine": engine,
        "settings": feature_set.params(volumes.spatial_dims),
        "diagnostics": feature_set.diagnostics,
        "spatial_dims": volumes.spatial_dims,
        "n_images": len(volumes),
        "image_shape": list(volumes.images.shape[1:]),
        "spacing_mm": list(volumes.spacing),
        "intensity_scale": "0..255 (float images in [0, 1] are multiplied by 255)",
        "mask": "whole image minus its first voxel (as frd-score)" if volumes.default_mask else "given",
        "data_hash": volumes.content_hash(),
        **({"colour": f"{volumes.colour} (ITU-R BT.601)"} if volumes.colour else {}),
        "versions": dict(_versions()),
    }
    key_source = json.dumps({k: v for k, v in record.items() if k != "n_images"}, sort_keys=True)
    record["cache_key"] = hashlib.sha256(key_source.encode()).hexdigest()[:32]
    return record


@lru_cache(maxsize=1)
def _versions() -> dict[str, str]:
    """Versions of the packages that shape the features (looked up once: metadata lookups are slow)."""
    found = versions()
    for name in ("PyWavelets", "scipy", "frd-score"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def _part_path(cache: Path, bounds: tuple[int, int]) -> Path:
    return cache / f"{bounds[0]:09d}-{bounds[1]:09d}.npz"


def _save_part(cache: Path, bounds: tuple[int, int], result: tuple[list[str], np.ndarray]) -> None:
    with atomic_path(_part_path(cache, bounds)) as temp, open(temp, "wb") as handle:
        np.savez(handle, names=np.array(result[0]), values=result[1])


def _load_part(cache: Path, bounds: tuple[int, int]) -> tuple[list[str], np.ndarray] | None:
    path = _part_path(cache, bounds)
    if not path.exists():
        return None
    with np.load(path, allow_pickle=False) as stored:
        return [str(name) for name in stored["names"]], stored["values"]


REGIONS = ("auto", "roi", "whole")


def extract_split(split: Any, region: str = "auto", **options: Any) -> pd.DataFrame:
    """`extract` on a `genrad.data.Split`, inside each image's region of interest when it has masks.

    `region`: ``"roi"`` (features inside ``Split.masks``, label > 0, as pyradiomics computes them inside a lesion),
    ``"whole"`` (the whole image, as frd-score) or ``"auto"`` (``"roi"`` when the split has masks). An image whose
    region has fewer than 2 voxels (a normal image's empty mask) gets a row of NaN, listed in ``attrs["no_region"]``;
    ``attrs["region"]`` says which region every row describes."""
    if region not in REGIONS:
        raise InputError(f"region one of {REGIONS}", repr(region), "pass roi, whole or auto", argument="region")
    if region == "roi" and split.masks is None:
        raise InputError("masks for --region roi", "a split without masks", "load images with their masks, or use "
                         "--region whole", source="region")
    if region == "whole" or split.masks is None:
        table = extract(split, **options)
        table.attrs["region"] = "whole image"
        return table
    voxels = split.masks.reshape(len(split), -1).astype(bool).sum(axis=1)
    keep = np.flatnonzero(voxels >= 2)
    if not len(keep):
        raise InputError("at least one image whose mask holds 2 voxels or more", "only empty masks",
                         "use --region whole, or check the masks", source="region")
    subset = split.subset(keep)
    table = extract(subset.images, masks=subset.masks, spacing=options.pop("spacing", None), **options)
    full = pd.DataFrame(np.nan, index=range(len(split)), columns=table.columns)
    full.iloc[keep] = table.to_numpy()
    full.attrs = {**table.attrs, "region": "masks (label > 0)", "no_region": np.flatnonzero(voxels < 2).tolist(),
                  "failed": [int(keep[k]) for k in table.attrs.get("failed", [])]}
    return full
