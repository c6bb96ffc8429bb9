"""`genrad evaluate privacy`: outputs, provenance and bad input (exit 2, one line, nothing written)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from genrad.data import Cohort, Split
from genrad.data.phantom import make_phantom


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("privacy")
    real = make_phantom(n=300, size=28, seed=0)
    real.save(str(folder / "real.npz"))
    train = real.train
    rng = np.random.default_rng(0)
    copies = np.clip(train.images[:, :, :, ::-1] + 0.03 * rng.standard_normal(train.images.shape), 0, 1).astype(np.float32)
    memoriser = Cohort(splits={"train": Split(copies, train.labels)}, class_names=real.class_names)
    memoriser.save(str(folder / "synthetic.npz"))
    return folder


def test_writes_privacy_json_pairs_and_samples(files, tmp_path, genrad_cli):
    out = tmp_path / "audit"
    args = ["evaluate", "privacy", "--train", str(files / "real.npz"), "--holdout", str(files / "real.npz"),
            "--synthetic", str(files), "--out", str(out), "--features", "", "--bootstrap", "100"]
    code, stdout, _ = genrad_cli(args)
    assert code == 0, stdout
    result = json.loads((out / "privacy.json").read_text())
    for key in ("near_copy_rate", "dcr", "dcr_ratio", "mia_auc"):
        assert set(result[key]) >= {"value", "ci"} and len(result[key]["ci"]) == 2
    assert result["near_copy_rate"]["value"] == 1.0 and result["mia_auc"]["value"] > 0.95
    assert result["provenance"]["sources"]["holdout"] == {"path": str(files / "real.npz"), "split": "test"}
    assert len(result["provenance"]["sources"]["synthetic"]["sha256"]) == 64
    assert (out / "pairs.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "privacy_samples.csv").read_text().splitlines()[0].startswith("index,near_copy,ncc")
    assert sorted(p.name for p in out.iterdir()) == ["pairs.png", "privacy.json", "privacy_samples.csv"]
    assert "near-copy rate" in stdout


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--holdout-split", "train"], "--holdout-split"),
        (["--synthetic", "missing_folder"], "missing_folder"),
        (["--features", "sift"], "features among"),
        (["--train-split", "nope"], "split named"),
        (["--bootstrap", "0"], "--bootstrap >= 1"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(files, tmp_path, genrad_cli, monkeypatch, extra, message):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "audit"
    base = {"--train": str(files / "real.npz"), "--holdout": str(files / "real.npz"),
            "--synthetic": str(files / "synthetic.npz"), "--out": str(out), "--features": ""}
    base.update(dict(zip(extra[::2], extra[1::2])))
    code, _, err = genrad_cli(["evaluate", "privacy", *[part for item in base.items() for part in item]])
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error:") and message in err
    assert not out.exists()
