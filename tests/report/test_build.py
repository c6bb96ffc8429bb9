"""The report is one self-contained HTML file that says in words what the numbers mean."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from genrad.errors import InputError
from genrad.report import build


def test_report_embeds_every_image_and_links_nothing_external(run_dir: Path, tmp_path: Path) -> None:
    html = build(run_dir, tmp_path / "report.html").read_text(encoding="utf-8")
    sources = re.findall(r'<img[^>]+src="([^"]+)"', html)
    assert len(sources) >= 6  # grids, flagged, features, pairs, scaling, training curves
    assert all(src.startswith("data:image/png;base64,") for src in sources)
    assert not re.search(r"<script|<link|@import|url\(|https?://", html)


def test_report_has_every_section_and_plain_language_verdicts(run_dir: Path, tmp_path: Path) -> None:
    html = build(run_dir, tmp_path / "report.html").read_text(encoding="utf-8")
    for section in ("samples", "flagged", "fidelity", "features", "privacy", "utility", "training", "provenance"):
        assert f'id="{section}"' in html
    assert "too smooth" in html  # synthetic contrast was scaled by 0.6
    assert "2.57x the real floor" in html  # FRD 9.0 vs floor 3.5
    assert "improves AUC by +0.030" in html
    assert "Strategy &#39;mix&#39; (genrad&#39;s utility recipe): 1x the real training set" in html
    assert "real+synthetic@1x+augment: no AUC gain over real+augment shown (+0.004, CI contains 0)" in html
    assert ("real+synthetic@1x: no AUC gain over the best classical arm (real+trivialaugment) shown (+0.011, CI contains 0)"
            in html and "AUC delta vs best classical" in html)
    utility_json = run_dir / "utility" / "utility.json"
    full = utility_json.read_text()
    try:  # the quick protocol's 2 seeds: the same interval is not evidence of a gain
        utility_json.write_text(json.dumps({**json.loads(full), "seeds": [0, 1]}))
        html = build(run_dir, tmp_path / "quick.html").read_text(encoding="utf-8")
    finally:
        utility_json.write_text(full)
    assert "improves AUC" not in html and "with 2 classifier seeds the protocol cannot show a gain" in html
    assert "Model: preset diffusion (a 15-minute budget allows it)." in html  # the model choice, with its reason


def test_missing_stages_are_reported_not_fatal(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "run.json").write_text(json.dumps({"genrad_version": "0", "status": "running", "config": {}}))
    html = build(tmp_path / "run").read_text(encoding="utf-8")
    assert "Fidelity has not been evaluated" in html
    assert "Privacy has not been audited" in html


def test_missing_run_directory_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="expected a genrad run directory"):
        build(tmp_path / "nope")
    assert not (tmp_path / "nope").exists()
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "config.json").write_text("{}")
    with pytest.raises(InputError, match=r"found no run.json"):  # a folder that is not a run has no report
        build(tmp_path / "train")
    assert not (tmp_path / "train" / "report.html").exists()


def test_report_says_when_the_images_came_from_a_distilled_student(run_dir: Path, tmp_path: Path) -> None:
    student = run_dir / "model" / "student"
    student.mkdir()
    config = {"num_inference_steps": 10, "distilled_from": {"model_hash": "0123456789abcdef", "guidance_scale": 1.75}}
    (student / "config.json").write_text(json.dumps({"family": "diffusion", "config": config}))
    try:
        html = build(run_dir, tmp_path / "report.html").read_text(encoding="utf-8")
    finally:
        (student / "config.json").unlink()
        student.rmdir()
    assert "guidance-distilled student" in html and "0123456789ab" in html and "10 network calls per image" in html
