"""`genrad generate RUN_DIR --out OUT ...`: plans from the command line, one-line errors with exit code 2."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from genrad.cli.main import main


def _run(args: list[str]) -> int:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    return int(exit_info.value.code or 0)


def test_generate_balances_the_rare_class_from_a_run_dir(
    tmp_path: Path, vae_run_dir: Path, tiny_cohort_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "synth"
    args = ["generate", str(vae_run_dir), "--out", str(out), "--balance", "--data", str(tiny_cohort_path)]
    assert _run([*args, "--shard-size", "5", "--seed", "3"]) == 0
    assert "16 of 16 images kept (0: 16)" in capsys.readouterr().out  # 28 benign - 12 malignant
    manifest = pd.read_csv(out / "manifest.csv")
    assert manifest["label"].tolist() == [0] * 16 and manifest["shard"].max() == 3
    assert manifest["age"].between(40, 49).all()  # drawn from the real malignant rows


def test_generate_with_a_covariate_csv_and_png_output(tmp_path: Path, vae_run_dir: Path) -> None:
    table = tmp_path / "covariates.csv"
    pd.DataFrame({"age": [33.0]}).to_csv(table, index=False)
    out = tmp_path / "synth"
    args = ["generate", str(vae_run_dir), "--out", str(out), "--per-class", "1=3,0=2", "--covariates", str(table)]
    assert _run([*args, "--format", "png"]) == 0
    manifest = pd.read_parquet(out / "manifest.parquet")
    assert manifest["label"].tolist() == [0, 0, 1, 1, 1] and (manifest["age"] == 33.0).all()
    assert len(list((out / "png").rglob("*.png"))) == 5


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--per-class", "7=10"], "class 7"),
        (["--per-class", "0=-3"], "-3 for class 0"),
        (["--balance"], "--data PATH or a covariate table"),
        (["--per-class", "0=10", "--balance"], "exactly one of"),
        (["--multiple", "2", "--data", "DATA", "--format", "jpeg"], "'jpeg'"),
        (["--per-class", "0=10", "--backend", "spark"], "'spark'"),
    ],
)
def test_bad_plans_exit_2_with_one_line_and_write_nothing(
    tmp_path: Path,
    vae_run_dir: Path,
    tiny_cohort_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    message: str,
) -> None:
    out = tmp_path / "synth"
    extra = [str(tiny_cohort_path) if item == "DATA" else item for item in extra]
    assert _run(["generate", str(vae_run_dir), "--out", str(out), *extra]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and message in error and len(error.strip().splitlines()) == 1
    assert not out.exists()


def test_filter_drops_what_the_per_sample_qa_flags(tmp_path: Path, vae_run_dir: Path, tiny_cohort, monkeypatch) -> None:
    import numpy as np

    from genrad.data import Cohort, Split

    rng = np.random.default_rng(1)
    val = Split(rng.random((20, 1, 28, 28), dtype=np.float32), np.repeat([0, 1], 10).astype(np.int64), name="val")
    data = Cohort(splits={"train": tiny_cohort.train, "val": val}, class_names=tiny_cohort.class_names).save(str(tmp_path / "d.npz"))
    out = tmp_path / "synth"
    # A 2-step VAE against a noise-calibrated QA: every sample is flagged, and an empty set is refused, leaving nothing.
    assert _run(["generate", str(vae_run_dir), "--out", str(out), "--multiple", "1", "--data", data, "--filter"]) == 2
    assert not out.exists()
    from genrad.evaluation.qa import sample as qa

    # The same wiring with a QA that keeps the first half of each shard:
    monkeypatch.setattr(qa._QAFilter, "__call__", lambda self, images, labels: np.arange(len(images)) < len(images) // 2)
    assert _run(["generate", str(vae_run_dir), "--out", str(out), "--multiple", "1", "--data", data, "--filter"]) == 0
    record = pd.read_json(out / "synthesis.json", typ="series")
    assert record["merge"]["filter"] == "genrad.evaluation.qa.sample._QAFilter"
    manifest = pd.read_parquet(out / "manifest.parquet")
    assert len(manifest) == 40 and manifest["kept"].dtype == bool and manifest["kept"].sum() == 20
    assert (manifest.loc[~manifest["kept"], "row"] == -1).all()


def test_filter_needs_real_data(tmp_path: Path, vae_run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(["generate", str(vae_run_dir), "--out", str(tmp_path / "s"), "--per-class", "0=2", "--filter"]) == 2
    assert "add --data" in capsys.readouterr().err
