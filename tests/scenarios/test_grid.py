"""Sweep grids: the default grid is valid and round-trips through YAML; bad grids fail with one InputError line."""

from __future__ import annotations

import pytest

from genrad.errors import InputError
from genrad.scenarios import PERTURBATIONS, Grid, default_grid, load_grid, parse_grid


def test_default_grid_covers_every_perturbation_and_round_trips(tmp_path):
    grid = default_grid()
    assert set(grid.perturbations) == set(PERTURBATIONS)
    path = tmp_path / "grid.yaml"
    path.write_text(grid.to_yaml())
    assert load_grid(path) == grid
    assert len(grid.cells()) == sum(len(s) for s in grid.perturbations.values())


def test_quick_grid_keeps_the_extremes():
    grid = Grid(perturbations={"noise": [0.02, 0.05, 0.1], "blur": [2.0]})
    assert grid.quick().cells() == [("noise", 0.02), ("noise", 0.1), ("blur", 2.0)]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("perturbations: {}", "at least 1 item"),
        ("perturbations: {nois: [0.1]}", "perturbation in"),
        ("perturbations: {noise: [-0.1]}", "noise severities >= 0"),
        ("perturbations: {noise: []}", "at least one severity"),
        ("perturbations: {noise: [0.2, 0.1]}", "strictly increasing"),
        ("perturbations: {noise: [0.1, 0.1]}", "strictly increasing"),
        ("perturbations: {noise: [abc]}", "valid number"),
        ("perturbations: {noise: [.nan]}", "noise severities"),
        ("perturbations: {resolution: [0.5]}", "resolution severities >= 1"),
        ("perturbations: {contrast: [1.0]}", "<= 0.99"),
        ("perturbation: {noise: [0.1]}", "perturbations"),
        ("- noise", "a mapping"),
        ("", "a mapping"),
        ("perturbations: {noise: [0.1]\n", "valid YAML"),
    ],
)
def test_bad_grids_fail_with_one_line(tmp_path, text, match):
    path = tmp_path / "grid.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match=match) as error:
        load_grid(path)
    message = str(error.value)
    assert "\n" not in message and message.startswith(str(path))


def test_missing_grid_file(tmp_path):
    with pytest.raises(InputError, match="no file"):
        load_grid(tmp_path / "absent.yaml")


def test_parse_grid_accepts_a_mapping():
    assert parse_grid({"name": "n", "perturbations": {"blur": [1, 2]}}).cells() == [("blur", 1.0), ("blur", 2.0)]
