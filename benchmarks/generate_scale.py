"""Synthesis at scale: images/s and peak memory of `genrad.synthesis.generate` for 1k, 10k, 100k images.

The model is genrad's fastest family, the conditional VAE at its default size for 28x28 images, trained
for a few steps on BreastMNIST's train split (the phantom when the file is absent): throughput does not
depend on how well it is trained. Each run is a fresh process; the parent samples the resident memory
of that process and all its descendants (worker processes, Ray's daemons) every 0.1 s from /proc.

Checks: time grows linearly (t(100k) / t(10k) <= 11, judged on CPU time because on a shared machine
wall time also measures the other jobs; both are printed) and peak memory stays flat (< 2 GB at 100k).
Anchor in the same run: ``--workers 1`` local vs 2 Ray actors (and a 2-process local pool) on the same
plan; the speed-up is quoted with and without Ray's start-up time.

    python benchmarks/generate_scale.py                   # full: 1k, 10k, 100k + Ray at 10k
    python benchmarks/generate_scale.py --sizes 1000,5000 --ray-n 5000   # quick

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BREASTMNIST = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "breastmnist.npz"
PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")


def tree_usage(root: int) -> tuple[int, dict[int, float]]:
    """Resident memory (bytes) of `root` and all its descendants, and each one's CPU seconds (Linux /proc)."""
    children: dict[int, list[int]] = {}
    stats: dict[int, list[str]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            stats[int(entry)] = fields
            children.setdefault(int(fields[1]), []).append(int(entry))
    rss, cpu, stack = 0, {}, [root]
    while stack:
        pid = stack.pop()
        if pid in stats:
            rss += int(stats[pid][21]) * PAGE  # field 24 (rss, pages)
            cpu[pid] = (int(stats[pid][11]) + int(stats[pid][12])) / TICKS  # fields 14, 15 (utime, stime)
        stack.extend(children.get(pid, []))
    return rss, cpu


def run_child(args: list[str]) -> dict:
    """Run this script in `--child` mode; add the peak RSS and the CPU seconds of its whole process tree."""
    process = subprocess.Popen([sys.executable, __file__, "--child", *args], stdout=subprocess.PIPE, text=True)
    peak, cpu = 0, {}
    done = threading.Event()

    def monitor() -> None:
        nonlocal peak
        while not done.is_set():
            rss, seconds = tree_usage(process.pid)
            peak = max(peak, rss)
            cpu.update(seconds)  # last reading per process (it only grows)
            time.sleep(0.1)

    thread = threading.Thread(target=monitor, daemon=True)
    thread.start()
    stdout, _ = process.communicate()
    done.set()
    thread.join()
    if process.returncode != 0:
        raise RuntimeError(f"child {args} failed with exit code {process.returncode}")
    result = json.loads(stdout.strip().splitlines()[-1])
    result["peak_rss_mb"] = round(peak / 2**20, 1)
    result["tree_cpu_seconds"] = round(sum(cpu.values()), 1)
    return result


def child(options: argparse.Namespace) -> None:
    """Generate `n` images in the class ratio of the real train set; print timings as JSON."""
    from genrad.models import load
    from genrad.synthesis import generate

    counts = load(options.run_dir).class_counts_
    per_class = {k: round(options.n * c / sum(counts)) for k, c in enumerate(counts)}
    per_class[len(counts) - 1] += options.n - sum(per_class.values())
    ray_start = 0.0
    if options.backend == "ray":
        import ray

        start = time.perf_counter()
        ray.init(num_cpus=options.workers, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        ray_start = time.perf_counter() - start
    load_before = os.getloadavg()[0]
    start, cpu_start = time.perf_counter(), _cpu_seconds()
    synthetic = generate(
        options.run_dir,
        per_class=per_class,
        out=options.out,
        seed=0,
        shard_size=options.shard_size,
        backend=options.backend,
        workers=options.workers,
        progress=False,
    )
    seconds, cpu = time.perf_counter() - start, _cpu_seconds() - cpu_start
    print(
        json.dumps(
            {
                "n": len(synthetic),
                "backend": options.backend,
                "workers": options.workers,
                "seconds": round(seconds, 2),
                "cpu_seconds": round(cpu, 2) if options.backend == "local" else None,
                "startup_seconds": round(ray_start, 2),
                "load_average_1min": [round(load_before, 1), round(os.getloadavg()[0], 1)],
                "images_per_s": round(len(synthetic) / seconds, 1),
                "npz_mb": round(synthetic.npz_path.stat().st_size / 2**20, 1),
                "npz_sha256": synthetic.record["outputs"]["synthetic.npz"][:16],
            }
        )
    )


def _cpu_seconds() -> float:
    """CPU time of this process and its reaped children (a local pool's workers; not Ray's processes)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def train_vae(workdir: Path, steps: int, source: str) -> tuple[Path, str]:
    """Train the default 2D VAE for `steps` steps on `source` and save it; returns the run dir and the data."""
    from genrad.data import load
    from genrad.models import VAE

    cohort = load(source)
    run_dir = workdir / "vae"
    VAE(num_classes=cohort.num_classes).fit(cohort.train, max_steps=steps, seed=0, progress=False).save(run_dir)
    return run_dir, source


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000", help="Comma-separated numbers of images.")
    parser.add_argument("--ray-n", type=int, default=10000, help="Images for the Ray / pool vs 1-worker comparison.")
    parser.add_argument("--shard-size", type=int, default=1000)
    parser.add_argument("--train-steps", type=int, default=20)
    parser.add_argument("--run-dir", type=Path, default=None, help="Use this VAE run dir instead of training one.")
    parser.add_argument("--data", default=str(BREASTMNIST) if BREASTMNIST.exists() else "phantom", help="Training data.")
    parser.add_argument("--workdir", type=Path, default=None, help="Keep outputs here (default: a temp dir, removed).")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--backend", default="local", help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=1, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        child(options)
        return

    workdir = options.workdir or Path(tempfile.mkdtemp(prefix="genrad_generate_scale_"))
    try:
        data = "given run dir"
        run_dir = options.run_dir
        if run_dir is None:
            run_dir, data = train_vae(workdir, options.train_steps, options.data)

        def measure(n: int, backend: str, workers: int) -> dict:
            out = workdir / f"gen_{n}_{backend}_{workers}"
            common = ["--run-dir", str(run_dir), "--shard-size", str(options.shard_size)]
            result = run_child([*common, "--n", str(n), "--out", str(out), "--backend", backend, "--workers", str(workers)])
            shutil.rmtree(out, ignore_errors=True)
            print(json.dumps(result), file=sys.stderr, flush=True)  # partial results, as they come
            return result

        load_before = os.getloadavg()
        sizes = [int(s) for s in options.sizes.split(",")]
        scale = [measure(n, "local", 1) for n in sizes]
        by_n = {r["n"]: r for r in scale}
        anchor = by_n.get(options.ray_n) or measure(options.ray_n, "local", 1)
        parallel = [measure(options.ray_n, "local", 2), measure(options.ray_n, "ray", 2)]
        largest, previous = scale[-1], scale[-2] if len(scale) > 1 else scale[-1]
        size_ratio = largest["n"] / previous["n"]
        time_ratio = largest["seconds"] / previous["seconds"]
        cpu_ratio = largest["cpu_seconds"] / previous["cpu_seconds"]
        report = {
            "benchmark": "generate_scale",
            "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            "machine": {
                "cpus": os.cpu_count(),
                "platform": platform.platform(),
                "python": platform.python_version(),
                "load_average_1min": {"start": round(load_before[0], 1), "end": round(os.getloadavg()[0], 1)},
            },
            "model": {"family": "vae", "config": "default (28x28)", "train_steps": options.train_steps, "data": data},
            "shard_size": options.shard_size,
            "scale": scale,
            "linearity": {
                "sizes": [previous["n"], largest["n"]],
                "size_ratio": size_ratio,
                "wall_time_ratio": round(time_ratio, 2),
                "cpu_time_ratio": round(cpu_ratio, 2),  # insensitive to other jobs on a shared machine
                "ok": cpu_ratio <= 1.1 * size_ratio,
            },
            "memory": {
                "peak_rss_mb": {str(r["n"]): r["peak_rss_mb"] for r in scale},
                "ok": largest["peak_rss_mb"] < 2048,
            },
            "parallel": {
                "n": options.ray_n,
                "workers1": anchor,
                "runs": parallel,
                "speedup": {  # end to end, Ray's start-up included
                    f"{r['backend']}{r['workers']}": round(anchor["seconds"] / (r["seconds"] + r["startup_seconds"]), 2)
                    for r in parallel
                },
                "speedup_after_startup": {
                    f"{r['backend']}{r['workers']}": round(anchor["seconds"] / r["seconds"], 2) for r in parallel
                },
                # images per CPU-second of the whole process tree, relative to 1 worker: the parallel
                # overhead, which the wall-clock speed-up hides when other jobs share the CPU.
                "cpu_efficiency": {
                    f"{r['backend']}{r['workers']}": round(anchor["tree_cpu_seconds"] / r["tree_cpu_seconds"], 2)
                    for r in parallel
                },
                "same_bytes": len({anchor["npz_sha256"], *(r["npz_sha256"] for r in parallel)}) == 1,
            },
        }
        print(json.dumps(report, indent=2))
    finally:
        if options.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
