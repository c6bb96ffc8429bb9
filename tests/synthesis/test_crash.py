"""Crash safety: SIGKILL a generation at random points, resume, and get exactly the uninterrupted output."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from genrad.synthesis import generate

REQUEST = {"per_class": {0: 500, 1: 300}, "shard_size": 20, "batch_size": 20, "format": "png", "seed": 5}
SCRIPT = """
from genrad.synthesis import generate

if __name__ == "__main__":
    generate({run_dir!r}, data={data!r}, out={out!r}, progress=False, **{request!r})
"""


def _run(script: Path, kill_when: Callable[[], bool] | None) -> bool:
    """Run `script`; SIGKILL its process group as soon as `kill_when()` holds. True if it was killed."""
    process = subprocess.Popen([sys.executable, str(script)], start_new_session=True, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline:
        if kill_when is not None and kill_when():
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            return True
        time.sleep(0.002)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr.decode()[-2000:]
    return False


def _files(root: Path) -> dict[str, bytes]:
    names = ["synthetic.npz", "manifest.parquet", "manifest.csv"]
    names += sorted(p.relative_to(root).as_posix() for p in (root / "png").rglob("*"))
    return {name: (root / name).read_bytes() for name in names if (root / name).is_file()}


def test_sigkill_at_random_points_then_resume_equals_an_uninterrupted_run(
    tmp_path: Path, vae_run_dir: Path, tiny_cohort_path: Path
) -> None:
    """A VAE run dir generating 800 images in 40 shards, killed twice while sampling and once while merging."""
    reference = generate(vae_run_dir, data=tiny_cohort_path, out=tmp_path / "reference", progress=False, **REQUEST)
    out = tmp_path / "interrupted"
    script = tmp_path / "run.py"
    script.write_text(SCRIPT.format(run_dir=str(vae_run_dir), data=str(tiny_cohort_path), out=str(out), request=REQUEST))
    shards = out / "shards"

    def complete_shards() -> int:
        return len(list(shards.glob("shard-*.npz"))) if shards.is_dir() else 0

    rng = np.random.default_rng(2024)
    first, second = sorted(rng.choice(np.arange(1, 39), size=2, replace=False))
    kills = [
        lambda: complete_shards() >= first,  # while sampling
        lambda: complete_shards() >= second,  # again, after resuming
        lambda: (out / ".png.partial").is_dir() and rng.random() < 0.05,  # while merging / exporting
    ]
    complete_after_kill = []
    for kill_when in kills:
        assert _run(script, kill_when), "the run finished before it could be interrupted"
        complete_after_kill.append(complete_shards())
        for shard in shards.glob("shard-*.npz"):  # nothing half-written under a final name
            with np.load(shard) as arrays:
                assert arrays["images"].shape == (20, 1, 28, 28)
    assert complete_after_kill[0] < 40 and complete_after_kill[2] == 40, complete_after_kill  # killed while sampling, then merging
    assert not (out / "synthesis.json").exists()
    assert not _run(script, None)

    assert _files(out) == _files(reference.out)
    manifest = reference.manifest
    assert manifest["id"].is_unique and len(manifest) == 800
    assert sorted(p.stem for p in (out / "png").rglob("*.png")) == sorted(manifest["id"])
    assert not list(out.rglob(".*.tmp*"))


def test_sigterm_during_generate_says_one_line_and_the_rerun_equals_an_uninterrupted_run(
    tmp_path: Path, vae_run_dir: Path, tiny_cohort_path: Path
) -> None:
    """`genrad generate` stopped by SIGTERM (a scheduler's stop) while sampling exits 130 with the 'interrupted' line,
    and the same command then completes to exactly the bytes of an uninterrupted run."""
    per_class = ",".join(f"{k}={n}" for k, n in REQUEST["per_class"].items())
    command = [sys.executable, "-m", "genrad.cli.main", "generate", str(vae_run_dir), "--data", str(tiny_cohort_path),
               "--per-class", per_class, "--shard-size", "20", "--batch-size", "20", "--seed", "5", "--out"]
    reference = subprocess.run([*command, str(tmp_path / "reference")], capture_output=True, timeout=300)
    assert reference.returncode == 0, reference.stderr.decode()[-2000:]
    out, log = tmp_path / "stopped", tmp_path / "stopped.log"
    with open(log, "wb") as stderr:
        process = subprocess.Popen([*command, str(out)], stdout=subprocess.DEVNULL, stderr=stderr)
        deadline = time.monotonic() + 120
        while process.poll() is None and time.monotonic() < deadline and not list((out / "shards").glob("shard-*.npz")):
            time.sleep(0.01)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=120) == 130, log.read_text()[-2000:]
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    assert lines[-1].startswith("interrupted: rerun the same command") and "Traceback" not in log.read_text()
    assert not (out / "synthesis.json").exists()
    again = subprocess.run([*command, str(out)], capture_output=True, timeout=300)
    assert again.returncode == 0, again.stderr.decode()[-2000:]
    for name in ("synthetic.npz", "manifest.parquet", "manifest.csv"):
        assert (out / name).read_bytes() == (tmp_path / "reference" / name).read_bytes(), name
