"""SIGTERM (what a cluster scheduler sends) during `genrad train`: one line, a checkpoint, and a resume that ends
in exactly the bytes of an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from genrad.data.phantom import make_phantom


def _train(data: Path, out: Path, *extra: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "genrad.cli.main", "train", "--data", str(data), "--model", "vae", "--max-steps", "16",
               "--out", str(out), "--seed", "3", *extra]
    log = open(out.parent / f"{out.name}.log", "w")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log, env={**os.environ, "PYTHONUTF8": "1"})


def test_sigterm_during_train_checkpoints_and_resumes_to_identical_weights(tmp_path: Path) -> None:
    data = Path(make_phantom(n=120, size=28, seed=0).save(str(tmp_path / "phantom.npz")))
    reference = _train(data, tmp_path / "reference")
    assert reference.wait(timeout=300) == 0

    stopped = _train(data, tmp_path / "stopped")
    log = tmp_path / "stopped.log"
    deadline = time.monotonic() + 120
    while "VAE:" not in log.read_text() and stopped.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    stopped.send_signal(signal.SIGTERM)
    assert stopped.wait(timeout=120) == 130, log.read_text()[-2000:]
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    assert lines[-1].startswith("interrupted: rerun the same command") and "Traceback" not in log.read_text()
    assert (tmp_path / "stopped" / "training_state.json").is_file()

    resumed = _train(data, tmp_path / "stopped", "--resume")
    assert resumed.wait(timeout=300) == 0, (tmp_path / "stopped.log").read_text()[-2000:]
    for name in ("model.safetensors", "optimizer.safetensors"):
        assert (tmp_path / "stopped" / name).read_bytes() == (tmp_path / "reference" / name).read_bytes(), name
