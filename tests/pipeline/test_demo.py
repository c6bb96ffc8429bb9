"""`make demo`'s run, end to end (slow: about 5 minutes on 2 cores): the generator it shows works (FRD within 2x the
phantom's real floor, precision and recall at least half their floors, at most 10% flagged by the QA), every interval
in its report lies inside its metric's range, and its utility summary claims nothing its 2 seeds cannot show."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from genrad.evaluation.fidelity import UNIT_RANGE
from genrad.pipeline.demo import run_demo


@pytest.mark.slow
def test_the_demo_shows_a_generator_that_works(tmp_path: Path) -> None:
    report = run_demo(tmp_path / "demo")
    fidelity = json.loads((tmp_path / "demo" / "fidelity" / "fidelity.json").read_text())
    for name in ("precision", "recall"):
        assert fidelity[name]["value"] >= 0.5 * fidelity[name]["real_floor"], (name, fidelity[name])
    assert fidelity["frd"]["value"] <= 2 * fidelity["frd"]["real_floor"], fidelity["frd"]
    assert fidelity["qa"]["flagged_rate"] <= 0.10, fidelity["qa"]
    for name in UNIT_RANGE:
        low, high = fidelity[name]["ci"]
        assert 0.0 <= low <= high <= 1.0, (name, fidelity[name]["ci"])
    utility = json.loads((tmp_path / "demo" / "utility" / "utility.json").read_text())
    for arm in utility["arms"]:
        for metric in ("auc", "balanced_accuracy"):
            low, high = arm[metric]["ci"]
            assert 0.0 <= low <= high <= 1.0, (arm["name"], metric, arm[metric]["ci"])
        for delta in (arm.get("delta_vs_real") or {}).values():
            assert -1.0 <= delta["ci"][0] <= delta["ci"][1] <= 1.0, (arm["name"], delta["ci"])
    html = report.read_text(encoding="utf-8")
    assert "improves AUC" not in html and "with 2 classifier seeds the protocol cannot show a gain" in html
