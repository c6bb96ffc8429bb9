"""Run configuration: defaults printable, YAML/TOML loadable, bad options rejected with the option named."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from genrad.errors import InputError
from genrad.models import Diffusion
from genrad.pipeline.config import RunConfig, default_config_yaml, load_config, parse_config


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
        ({"train": {"intensity_gamma": 0}}, "train.intensity_gamma"),
        ({"train": {"floor_gap": 1.5}}, "train.floor_gap"),
        ({"train": {"model": "vae", "guidance_scale": 3.0}}, "train"),
        ({"train": {"model": "gan", "guide_step": 350}}, "train"),
        ({"train": {"model": "diffusion", "guide_step": 0}}, "train.guide_step"),
        ({"generate": {"shards": 3}}, "generate.shards"),
        ({"utility": {"multiples": [1, -2]}}, "utility.multiples"),
    ],
)
def test_bad_options_name_the_option(tmp_path: Path, payload: dict, option: str) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(payload))
    with pytest.raises(InputError, match=f"'{option}'") as error:
        load_config(path)
    assert "\n" not in str(error.value)


FLOOR = {"black_level": 0.1, "floor_gap": 0.5}  # floor_gap and floor_ramp act only on a floor


@pytest.mark.parametrize(
    ("option", "accepted", "refused", "context"),
    [
        ("intensity_gamma", [0.25, 4.0], [0.24, 4.01], {}),
        ("black_level", [0.0, 0.49], [-0.01, 0.5], {}),
        ("floor_gap", [0.0, 0.99], [-0.01, 1.0], {"black_level": 0.1}),
        ("floor_ramp", [0.0, 6.0], [-0.5], FLOOR),
        ("guidance_scale", [0.0, 5.0], [-0.1], {}),
        ("guide_step", [1, 350], [0], {}),
    ],
)
def test_train_bounds_agree_with_the_model_checks(option: str, accepted: list, refused: list, context: dict) -> None:
    """`TrainConfig` repeats the models' argument bounds (so that parsing a config needs no torch): keep them equal."""
    for value in accepted:
        options = {**context, option: value}
        parse_config({"train": {"model": "diffusion", **options}}, source="test")
        Diffusion(num_classes=2, **options)
    for value in refused:
        options = {**context, option: value}
        with pytest.raises(InputError, match=f"train.{option}"):
            parse_config({"train": {"model": "diffusion", **options}}, source="test")
        with pytest.raises(InputError, match=option):
            Diffusion(num_classes=2, **options)


def test_unreadable_config_is_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("train: [unclosed\n")
    with pytest.raises(InputError, match="syntax error"):
        load_config(path)
    with pytest.raises(InputError, match="no such file"):
        load_config(tmp_path / "missing.yaml")
