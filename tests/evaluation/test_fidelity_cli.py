"""`genrad evaluate fidelity`: writes fidelity.json and samples.parquet; bad input exits 2 with one line."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from genrad.cli.main import main
from genrad.data.phantom import make_phantom
from genrad.evaluation.qa.defects import inject

FAST = ["--set", "fast", "--engine", "fast", "--bootstrap", "5"]


def _run(arguments: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(arguments)
    assert exit_info.value.code == 0


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("fidelity_cli")
    real = make_phantom(n=200, size=28, seed=0)
    synthetic = make_phantom(n=200, size=28, seed=1)
    real.save(str(folder / "real.npz"))
    generated = folder / "generated"
    generated.mkdir()
    synthetic.save(str(generated / "synthetic.npz"))
    return {"real": folder / "real.npz", "synthetic": generated, "n": len(synthetic.train), "folder": folder}


def test_writes_fidelity_json_and_per_sample_scores(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    out = files["folder"] / "out"
    _run(["evaluate", "fidelity", "--real", str(files["real"]), "--synthetic", str(files["synthetic"]), "--out", str(out), *FAST])
    report = json.loads((out / "fidelity.json").read_text())
    for key in ("frd", "frd_per_class", "kid", "precision", "recall", "density", "coverage", "alpha_precision", "beta_recall",
                "c2st_auc", "features"):
        assert key in report
    assert set(report["frd"]) == {"value", "ci", "real_floor"}
    assert report["provenance"]["sources"]["real"]["floor_split"] == "train"
    assert set(report["frd_per_class"]) <= {"cyst", "benign", "malignant"}
    samples = pd.read_parquet(out / "samples.parquet")
    assert len(samples) == files["n"]
    assert {"index", "label", "qa_score", "qa_flag", "qa_reason", "qa_knn_distance"} <= set(samples.columns)
    assert report["qa"]["flagged"] == int(samples["qa_flag"].sum())
    assert "frd" in capsys.readouterr().out


def test_per_sample_scores_flag_defective_synthetic_images(files: dict[str, Path]) -> None:
    cohort = make_phantom(n=200, size=28, seed=1)
    broken = cohort.train.images.copy()
    broken[::2] = inject(broken[::2], "checkerboard", seed=0)
    defective = files["folder"] / "defective.npz"
    from dataclasses import replace

    replace(cohort, splits={"train": replace(cohort.train, images=broken)}).save(str(defective))
    out = files["folder"] / "out_defective"
    _run(["evaluate", "fidelity", "--real", str(files["real"]), "--synthetic", str(defective), "--out", str(out), *FAST])
    samples = pd.read_parquet(out / "samples.parquet")
    assert samples["qa_flag"][::2].mean() > 0.9
    assert samples["qa_flag"][1::2].mean() < 0.2


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--synthetic", "{folder}"], "synthetic.npz"),
        (["--synthetic", "{generated}", "--floor-split", "test"], "floor split"),
        (["--synthetic", "{generated}", "--real-split", "nope"], "split named"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_no_output(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str], arguments: list[str], message: str
) -> None:
    out = files["folder"] / "never"
    filled = [a.format(folder=files["folder"], generated=files["synthetic"]) for a in arguments]
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "fidelity", "--real", str(files["real"]), "--out", str(out), *filled, *FAST])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip()
    assert message in error and "\n" not in error and "Traceback" not in error
    assert not out.exists()
