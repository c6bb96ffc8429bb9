"""`genrad radiomics extract`: a parquet table per dataset, one line errors with exit code 2."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from genrad.cli.main import main


def _dataset(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 4), ("val", 2), ("test", 3)):
        arrays[f"{split}_images"] = rng.integers(0, 256, size=(n, 16, 16), dtype=np.uint8)
        arrays[f"{split}_labels"] = np.arange(n, dtype=np.uint8)[:, None] % 2
    path = tmp_path / "tiny.npz"
    np.savez(path, **arrays)
    return path


def _run(args: list[str]) -> int:
    """Run the CLI; typer ends every run with SystemExit."""
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    return int(exit_info.value.code or 0)


def test_extract_writes_one_row_per_image(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _dataset(tmp_path)
    out = tmp_path / "features.parquet"
    args = ["radiomics", "extract", str(data), "--split", "test", "--set", "fast", "--engine", "pyradiomics"]
    assert _run([*args, "--out", str(out)]) == 0
    table = pd.read_parquet(out)
    assert table.shape == (3, 40)
    assert list(table.index) == ["test:0", "test:1", "test:2"]
    assert table.attrs["feature_set"] == "fast" and table.attrs["source"] == str(data)
    assert "3 images x 40 features" in capsys.readouterr().out

    every = tmp_path / "all.parquet"
    assert _run(["radiomics", "extract", str(data), "--set", "fast", "--engine", "pyradiomics", "--out", str(every)]) == 0
    table_all = pd.read_parquet(every)
    assert len(table_all) == 9 and table_all.index[0] == "train:0"
    np.testing.assert_array_equal(table_all.loc["test:1"].to_numpy(), table.loc["test:1"].to_numpy())


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--out", "features.csv"], "ending in .parquet"),
        (["--out", "f.parquet", "--engine", "gpu"], "engine"),
        (["--out", "f.parquet", "--set", "everything"], "feature set"),
        (["--out", "f.parquet", "--workers", "0"], "workers"),
        (["--out", "f.parquet", "--split", "holdout"], "split"),
    ],
)
def test_bad_arguments_exit_2_without_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, extra: list[str], message: str
) -> None:
    data = _dataset(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert _run(["radiomics", "extract", str(data), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1
    assert not list(tmp_path.glob("*.parquet"))
