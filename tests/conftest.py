"""Shared fixtures."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

BREASTMNIST = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "breastmnist.npz"


@pytest.fixture(scope="session")
def breastmnist_path() -> Path:
    """Path to ../shared/data/breastmnist.npz; skips the test when the file is absent."""
    if not BREASTMNIST.exists():
        pytest.skip(f"real data not available: {BREASTMNIST} is absent (see DEVELOPERS.md, 'Real data')")
    return BREASTMNIST


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The common umask 022 for the test (restored after), so that output file modes are predictable."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Tiny networks run fastest on one thread on a shared 2-core machine; restored afterwards. A test directory
    whose tests all train tiny networks uses it for every module (an autouse fixture in its conftest)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def genrad_cli(capsys: pytest.CaptureFixture[str]) -> Callable[[list[str]], tuple[int, str, str]]:
    """Runs ``genrad ARGS`` in this process: its exit code (0 for a normal end), stdout and stderr."""
    from genrad.cli.main import main

    def run(args: list[str]) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as stopped:
            main(args)
        out, err = capsys.readouterr()
        return int(stopped.value.code or 0), out, err

    return run
