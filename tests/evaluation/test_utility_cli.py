"""`genrad evaluate utility`: quick run writes utility.json and scaling.png, resumes, and bad input exits 2."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from utility_toys import blob_cohort, blobs

from genrad.data import Cohort


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("utility")
    blob_cohort((40, 20)).save(str(folder / "real.npz"))
    pool = blobs((60, 60), seed=7)
    Cohort(splits={"train": pool}, class_names=("c0", "c1")).save(str(folder / "synthetic" / "synthetic.npz"))
    flags = np.arange(len(pool)) % 4 == 0
    pd.DataFrame({"id": np.arange(len(pool)), "row": np.arange(len(pool)), "qa_flag": flags}).to_parquet(
        folder / "synthetic" / "manifest.parquet"
    )
    return folder


def test_quick_run_writes_outputs_and_resumes(files, tmp_path, genrad_cli, one_torch_thread) -> None:
    out = tmp_path / "utility"
    args = ["evaluate", "utility", "--data", str(files / "real.npz"), "--synthetic", str(files / "synthetic"),
            "--out", str(out), "--quick", "--strategy", "none"]
    code, stdout, _ = genrad_cli(args)
    assert code == 0, stdout
    payload = json.loads((out / "utility.json").read_text())
    names = [arm["name"] for arm in payload["arms"]]
    assert names == ["real", "real+reweight", "real+augment", "real+synthetic@1x", "real+synthetic@1x+balanced",
                     "real+synthetic@1x+filtered", "synthetic@1x"]
    for arm in payload["arms"]:
        assert {"auc", "balanced_accuracy", "recall_per_class", "delta_vs_real"} <= set(arm)
        assert set(arm["auc"]) >= {"mean", "ci"} and len(arm["auc"]["values"]) == 2
    assert payload["arms"][3]["delta_vs_real"]["auc"]["ci"] is not None
    assert payload["seeds"] == [0, 1] and payload["config"]["quick"] is True and payload["strategy"] is None
    assert payload["provenance"]["versions"]["torch"] and payload["provenance"]["data_hash"]["keep"]
    assert (out / "scaling.png").read_bytes()[:4] == b"\x89PNG"
    assert stdout.strip().endswith("utility.json")
    (out / "utility.json").unlink()
    code, _, _ = genrad_cli(args)  # every arm-seed is cached: resumes without training
    assert code == 0 and json.loads((out / "utility.json").read_text()) == payload


def test_a_named_strategy_runs_its_arms_with_and_without_augmentation(files, tmp_path, genrad_cli, one_torch_thread) -> None:
    out = tmp_path / "utility"
    code, stdout, _ = genrad_cli(["evaluate", "utility", "--data", str(files / "real.npz"), "--synthetic",
                                  str(files / "synthetic"), "--out", str(out), "--quick", "--strategy", "mix", "--workers", "2"])
    assert code == 0, stdout
    payload = json.loads((out / "utility.json").read_text())
    assert [arm["name"] for arm in payload["arms"]] == [
        "real", "real+oversample@1x", "real+reweight", "real+augment", "real+trivialaugment", "real+synthetic@1x",
        "real+synthetic@1x+augment", "synthetic@1x"]
    rows = {arm["name"]: arm for arm in payload["arms"]}
    assert payload["strategy"]["name"] == "mix" and "delta_vs_augment" in rows["real+synthetic@1x+augment"]
    assert payload["best_classical"]["name"] in {"real", "real+oversample@1x", "real+reweight", "real+augment", "real+trivialaugment"}
    assert {"delta_vs_best_classical", "delta_vs_oversampling"} <= set(rows["real+synthetic@1x"])


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--strategy", "magic"], "--strategy, one of"),
        (["--arms", "real,real+magic"], "arm terms"),
        (["--multiples", "1,x"], "comma-separated positive numbers"),
        (["--arms", "real+synthetic@50x"], "synthetic images of class 0"),
        (["--strategy", "pretrain"], "synthetic images of class 0"),  # its 5x pool is larger than this synthetic set
        (["--qa-column", "id"], "boolean column 'id'"),
    ],
)
def test_bad_input_exits_2_without_output(files, tmp_path, genrad_cli, extra, message) -> None:
    out = tmp_path / "utility"
    args = ["evaluate", "utility", "--data", str(files / "real.npz"), "--synthetic", str(files / "synthetic" / "synthetic.npz"),
            "--out", str(out), "--quick", *extra]
    code, _, err = genrad_cli(args)
    assert code == 2 and message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (out / "utility.json").exists()
