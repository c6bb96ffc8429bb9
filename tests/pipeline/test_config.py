"""Run configuration: defaults printable, YAML/TOML loadable, bad options rejected with the option named."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from genrad.data.intensity import IntensityMap
from genrad.errors import InputError
from genrad.pipeline.config import (
    RunConfig,
    default_config_yaml,
    load_config,
    parse_config,
)
from genrad.pipeline.run import plan_run


def test_defaults_round_trip_through_yaml(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(default_config_yaml())
    assert load_config(path) == RunConfig()


def test_toml_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text('seed = 3\n[train]\nmodel = "gan"\nbudget_minutes = 2.5\n')
    config = load_config(path).with_overrides(**{"train.model": "diffusion", "data.path": "x.npz", "seed": None})
    assert (config.seed, config.train.model, config.train.budget_minutes, config.data.path) == (3, "diffusion", 2.5, "x.npz")


@pytest.mark.parametrize(
    ("payload", "option"),
    [
        ({"train": {"model": "flow"}}, "train.model"),
        ({"train": {"budget_minutes": -1}}, "train.budget_minutes"),
        ({"seed": -1}, "seed"),
        ({"train": {"intensity": {"gamma": 0}}}, "train.intensity"),
        ({"train": {"intensity": {"black_level": 0.1, "floor_gap": 1.5}}}, "train.intensity"),
        ({"train": {"intensity": {"colour": 1}}}, "train.intensity"),
        ({"train": {"preset": "best"}}, "train.preset"),
        ({"train": {"model": "vae", "preset": "diffusion"}}, "train"),
        ({"generate": {"shards": 3}}, "generate.shards"),
        ({"utility": {"multiples": [1, -2]}}, "utility.multiples"),
        ({"utility": {"strategy": "magic"}}, "utility.strategy"),
    ],
)
def test_bad_options_name_the_option(tmp_path: Path, payload: dict, option: str) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(payload))
    with pytest.raises(InputError, match=f"'{option}'") as error:
        load_config(path)
    assert "\n" not in str(error.value)


def test_intensity_bounds_are_the_maps_own() -> None:
    """`TrainConfig.intensity` is checked by `IntensityMap` itself (one place for its bounds), without torch."""
    for intensity, accepted in (({"gamma": 0.25}, True), ({"gamma": 4.0}, True), ({"gamma": 4.01}, False),
                                ({"black_level": 0.49}, True), ({"black_level": 0.5}, False),
                                ({"black_level": 0.1, "floor_gap": 0.99}, True), ({"floor_gap": 0.3}, False)):
        payload = {"train": {"model": "diffusion", "intensity": intensity}}
        if accepted:
            assert parse_config(payload, source="test").train.intensity == IntensityMap(**intensity).as_dict()
        else:
            with pytest.raises(InputError, match=r"train.intensity"):
                parse_config(payload, source="test")


@pytest.mark.parametrize(("options", "message"), [({"guidance_scale": -0.1}, "train.guidance_scale"),
                                                  ({"guide_step": 0}, "train.guide_step"), ({"wings": 2}, "unknown argument")])
def test_family_options_are_checked_by_the_family_before_any_stage(options: dict, message: str) -> None:
    config = parse_config({"train": {"model": "diffusion", "options": options}}, source="test")
    with pytest.raises(InputError, match=message):
        plan_run(config)


def test_unreadable_config_is_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("train: [unclosed\n")
    with pytest.raises(InputError, match="syntax error"):
        load_config(path)
    with pytest.raises(InputError, match="no such file"):
        load_config(tmp_path / "missing.yaml")
