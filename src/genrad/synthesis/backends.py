"""Where shards are sampled: in this process, in a local process pool, or on a Ray cluster.

Every backend calls `sample_shard` on the same tasks and hands each result back to the caller, which
writes the shard file; the pixels do not depend on the backend (see `genrad.synthesis.shards`).

- ``local``, ``workers=1``: in this process.
- ``local``, ``workers>1``: a pool of ``spawn``ed processes (`concurrent.futures`); each loads the
  model once from the run directory (or receives a pickled copy of an in-memory model).
- ``ray``: one Ray actor per worker holding the model, fed through `ray.util.ActorPool`. With
  ``address=None`` a local Ray instance with ``num_cpus=workers`` is started (and stopped after);
  otherwise genrad connects to ``address`` (e.g. ``"auto"`` or ``"ray://head:10001"``). Results come
  back to the driver, so remote nodes need no shared file system.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

import numpy as np

from genrad.errors import require_extra
from genrad.synthesis.plan import GeneratorLike
from genrad.synthesis.shards import ShardTask, sample_shard

BACKENDS = ("local", "ray")
ModelSource = str | Path | GeneratorLike
ResultHandler = Callable[[ShardTask, np.ndarray], None]


def load_model(source: ModelSource) -> GeneratorLike:
    """A model from a run directory (`genrad.models.load_sampler`: its distilled student when it has one) or the
    model object itself."""
    if isinstance(source, str | Path):
        from genrad.models import load_sampler

        return load_sampler(source)
    return source


def run_shards(
    tasks: list[ShardTask],
    source: ModelSource,
    model: GeneratorLike,
    *,
    backend: str,
    workers: int,
    address: str | None,
    on_result: ResultHandler,
) -> None:
    """Sample every task on `backend` and call ``on_result(task, images)`` in this process as each ends."""
    if not tasks:
        return
    if backend == "ray":
        _run_ray(tasks, model, workers=workers, address=address, on_result=on_result)
    elif workers == 1:
        for task in tasks:
            on_result(task, sample_shard(model, task))
    else:
        _run_pool(tasks, source, workers=workers, on_result=on_result)


_worker_model: GeneratorLike | None = None


def _init_worker(source: ModelSource) -> None:
    global _worker_model
    _worker_model = load_model(source)


def _sample_in_worker(task: ShardTask) -> np.ndarray:
    assert _worker_model is not None, "worker used before _init_worker"
    return sample_shard(_worker_model, task)


def _run_pool(tasks: list[ShardTask], source: ModelSource, *, workers: int, on_result: ResultHandler) -> None:
    """A spawn process pool with at most two tasks in flight per worker (bounded memory)."""
    context = multiprocessing.get_context("spawn")
    queue = iter(tasks)
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init_worker, initargs=(source,)) as pool:
        pending: dict[Future[np.ndarray], ShardTask] = {}

        def submit(count: int) -> None:
            for task in _take(queue, count):
                pending[pool.submit(_sample_in_worker, task)] = task

        submit(2 * workers)
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                on_result(pending.pop(future), future.result())
            submit(len(done))


def _take(iterator: Iterator[ShardTask], count: int) -> Iterable[ShardTask]:
    for _ in range(count):
        task = next(iterator, None)
        if task is None:
            return
        yield task


class _RayShardWorker:
    """A Ray actor that keeps one model and samples the shards it is given."""

    def __init__(self, model: GeneratorLike) -> None:
        self.model = model

    def sample(self, task: ShardTask) -> tuple[int, np.ndarray]:
        return task.index, sample_shard(self.model, task)


def import_ray() -> Any:
    """Import Ray, or explain how to install it."""
    return require_extra("ray", "--backend ray", fallback="use --backend local")


def _run_ray(
    tasks: list[ShardTask], model: GeneratorLike, *, workers: int, address: str | None, on_result: ResultHandler
) -> None:
    ray = import_ray()
    from ray.util import ActorPool

    started = not ray.is_initialized()
    if started:
        ray.init(
            address=address,
            num_cpus=workers if address is None else None,
            include_dashboard=False,
            log_to_driver=False,
            logging_level="ERROR",
        )
    try:
        actor = ray.remote(num_cpus=1)(_RayShardWorker)
        model_ref = ray.put(model)
        pool = ActorPool([actor.remote(model_ref) for _ in range(workers)])
        by_index = {task.index: task for task in tasks}
        for index, images in pool.map_unordered(lambda worker, task: worker.sample.remote(task), tasks):
            on_result(by_index[index], images)
    finally:
        if started:
            ray.shutdown()
