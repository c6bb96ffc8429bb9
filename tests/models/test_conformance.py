"""One conformance suite for every generator family (as scikit-learn's estimator checks).

Each family is fitted for a few steps on a tiny two-class toy with tiny networks; the suite checks
the interface contract, reproducibility, persistence, tamper detection and bit-identical resume. A guidance-distilled
diffusion student (`genrad.training.distill`) takes the same checks: `fit` distils it from a tiny guided teacher.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import toy_split
from safetensors.torch import load_file, save_file

import genrad.models
from genrad.data import Split
from genrad.data.intensity import IntensityMap
from genrad.errors import InputError, NotFittedError
from genrad.models import Generator
from genrad.models.checkpoint import STATE, WEIGHTS
from genrad.provenance import hash_file
from genrad.training.distill import distill_guidance

TINY_CONFIGS: dict[str, tuple[type[Generator], dict]] = {
    "vae": (genrad.models.VAE, {"num_classes": 2, "channels": (8, 16), "latent_dim": 8, "batch_size": 8}),
    "gan": (genrad.models.GAN, {"num_classes": 2, "channels": (8, 16), "latent_dim": 8, "batch_size": 8}),
    "diffusion": (genrad.models.Diffusion, {"num_classes": 2, "channels": (8, 16), "num_inference_steps": 3, "batch_size": 8}),
    "rflow": (genrad.models.Diffusion,
              {"num_classes": 2, "channels": (8, 16), "num_inference_steps": 3, "batch_size": 8, "scheduler": "rflow"}),
    "student": (genrad.models.Diffusion,
                {"num_classes": 2, "channels": (8, 16), "num_inference_steps": 3, "batch_size": 8, "solver": "dpm++2m",
                 "guidance_scale": 1.0, "condition_dropout": 0.0, "distilled_from": {"model_hash": "set by fit"}}),
}


def tiny(family: str, **overrides: object) -> Generator:
    cls, config = TINY_CONFIGS[family]
    return cls(**{**config, **overrides})


STEPS = 4


def fit(model: Generator, data: Split, **options: Any) -> Generator:
    """`model.fit`, or for a student: distil it from a teacher of its configuration with guidance, fitted on `data`."""
    if getattr(model, "distilled_from", None) is None:
        return model.fit(data, **options)
    teacher_config = {**model.config, "guidance_scale": 2.0, "guide_step": 1, "condition_dropout": 0.1, "distilled_from": None}
    teacher = type(model).from_config(teacher_config).fit(data, max_steps=2, seed=0, progress=False)
    return distill_guidance(teacher, data, learning_rate=model.learning_rate, num_inference_steps=model.num_inference_steps,
                            **options)


@pytest.fixture(scope="module", params=sorted(TINY_CONFIGS))
def family(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def fitted(family: str, tmp_path_factory: pytest.TempPathFactory) -> Generator:
    return fit(tiny(family), toy_split(), max_steps=STEPS, seed=0, progress=False)


def test_sample_contract(fitted: Generator) -> None:
    images = fitted.sample(5, labels=[0, 1, 0, 1, 1], generator=0)
    assert images.shape == (5, 1, 28, 28) and images.dtype == torch.float32 and images.device.type == "cpu"
    assert float(images.min()) >= 0.0 and float(images.max()) <= 1.0
    assert fitted.image_shape == (1, 28, 28) and fitted.num_classes == 2
    assert fitted.sample(0).shape == (0, 1, 28, 28)
    assert fitted.sample(3, labels=1).shape == (3, 1, 28, 28)


def test_same_seed_same_bytes_and_different_seeds_differ(fitted: Generator) -> None:
    first = fitted.sample(6, labels=1, generator=7).numpy().tobytes()
    assert first == fitted.sample(6, labels=1, generator=7).numpy().tobytes()
    assert first != fitted.sample(6, labels=1, generator=8).numpy().tobytes()


def test_fit_is_reproducible(family: str, fitted: Generator) -> None:
    again = fit(tiny(family), toy_split(), max_steps=STEPS, seed=0, progress=False)
    other = fit(tiny(family), toy_split(), max_steps=STEPS, seed=1, progress=False)
    assert again.model_hash() == fitted.model_hash()
    assert other.model_hash() != fitted.model_hash()


@pytest.mark.filterwarnings("ignore:.*bfloat16 is emulated")
def test_bf16_precision_is_reproducible_and_keeps_float32_weights(family: str, fitted: Generator) -> None:
    mixed = fit(tiny(family, precision="bf16"), toy_split(), max_steps=STEPS, seed=0, progress=False)
    assert mixed.model_hash() == fit(tiny(family, precision="bf16"), toy_split(), max_steps=STEPS, seed=0,
                                                                    progress=False).model_hash()
    assert mixed.model_hash() != fitted.model_hash()  # the steps really ran in bfloat16
    assert all(p.dtype == torch.float32 for net in mixed.networks_.values() for p in net.parameters())
    images = mixed.sample(4, labels=[0, 1, 0, 1], generator=0)
    assert images.dtype == torch.float32 and bool(torch.isfinite(images).all())
    with pytest.raises(InputError, match="precision one of"):
        tiny(family, precision="fp16")


def test_bf16_on_a_cpu_without_native_bfloat16_warns(family: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("genrad.training.trainer.native_bf16", lambda device: False)
    with pytest.warns(UserWarning, match="emulated"):
        fit(tiny(family, precision="bf16"), toy_split(), max_steps=1, progress=False)
    monkeypatch.setattr("genrad.training.trainer.native_bf16", lambda device: True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit(tiny(family, precision="bf16"), toy_split(), max_steps=1, progress=False)


def test_bad_arguments_name_the_class(family: str, fitted: Generator) -> None:
    name = type(fitted).__name__
    for call in (
        lambda: fitted.sample(-1),
        lambda: fitted.sample(2, labels=[0, 2]),
        lambda: fitted.sample(2, labels=[0]),
        lambda: fitted.sample(2, labels=[0.5, 1.0]),
        lambda: fitted.sample(2, covariates=np.zeros((2, 1))),
    ):
        with pytest.raises(InputError, match=name):
            call()
    with pytest.raises(NotFittedError, match=f"This {name} instance is not fitted yet"):
        tiny(family).sample(1)
    with pytest.raises(InputError, match=name):
        tiny(family, spatial_dims=4)
    with pytest.raises(InputError, match=r"labels in 0..0"):
        fit(type(fitted).from_config({**fitted.config, "num_classes": 1}), toy_split(), max_steps=1, progress=False)
    with pytest.raises(InputError, match="3D images"):
        fit(tiny(family, spatial_dims=3), toy_split(), max_steps=1, progress=False)


@pytest.mark.parametrize(
    ("argument", "value"),
    [("num_classes", True), ("batch_size", 8.0), ("batch_size", "8"), ("learning_rate", float("nan")),
     ("learning_rate", None), ("channels", (8, "16")), ("channels", 8), ("latent_or_steps", "4"),
     ("covariates", "age"), ("covariates", {"age"}), ("ema_decay", "0.9")],
)
def test_arguments_of_the_wrong_type_are_input_errors(family: str, argument: str, value: object) -> None:
    """Wrong types (strings, bools for ints, NaN, a string or an unordered set for a list) get the one-line error,
    not a TypeError from a comparison or a string split into characters."""
    if argument == "latent_or_steps":
        argument = "num_inference_steps" if TINY_CONFIGS[family][0] is genrad.models.Diffusion else "latent_dim"
    with pytest.raises(InputError, match=f"{type(tiny(family)).__name__} argument .*{argument}"):
        tiny(family, **{argument: value})


def test_numpy_arguments_are_accepted_and_saved_as_json(family: str) -> None:
    model = tiny(family, num_classes=np.int64(2), channels=np.array([8, 16]), learning_rate=np.float32(1e-3))
    assert model.config["num_classes"] == 2 and model.config["channels"] == [8, 16]
    assert tiny(family, covariates=pd.Index(["age", "sex"])).config["covariates"] == ["age", "sex"]
    assert type(model).from_config(json.loads(json.dumps(model.config))).config == model.config


def test_covariates_condition_and_validate(family: str) -> None:
    model = fit(tiny(family, covariates=("age", "size_mm")), toy_split(), max_steps=2, progress=False)
    assert model.conditions_.mean_[0] == pytest.approx(50, abs=5)
    images = model.sample(4, labels=[0, 0, 1, 1], covariates=np.array([[40, 10], [80, 10], [40, 10], [60, 5.0]]))
    assert images.shape == (4, 1, 28, 28)
    drawn = model.draw_covariates(torch.tensor([0, 1]), torch.Generator().manual_seed(0))
    assert list(drawn.columns) == ["age", "size_mm"]
    with pytest.raises(InputError, match=r"covariates shaped \(4, 2\)"):
        model.sample(4, covariates=np.zeros((4, 3)))
    with pytest.raises(InputError, match="missing"):
        fit(tiny(family, covariates=("weight",)), toy_split(), max_steps=1, progress=False)


def test_save_load_round_trip(fitted: Generator, tmp_path: Path) -> None:
    fitted.save(tmp_path)
    assert hash_file(tmp_path / WEIGHTS) == fitted.model_hash()
    loaded = genrad.models.load(tmp_path)
    assert type(loaded) is type(fitted) and loaded.config == fitted.config
    assert loaded.data_hash_ == fitted.data_hash_ and loaded.model_hash() == fitted.model_hash()
    assert torch.equal(loaded.sample(4, generator=3), fitted.sample(4, generator=3))
    assert type(fitted).from_config(fitted.config).config == fitted.config


def test_pickles_and_tampered_weights_are_refused(fitted: Generator, tmp_path: Path) -> None:
    fitted.save(tmp_path / "pickle")
    (tmp_path / "pickle" / "extra.pt").write_bytes(b"\x80\x04K\x01.")
    with pytest.raises(InputError, match="pickle"):
        genrad.models.load(tmp_path / "pickle")

    fitted.save(tmp_path / "flipped")
    payload = bytearray((tmp_path / "flipped" / WEIGHTS).read_bytes())
    payload[-1] ^= 0xFF
    (tmp_path / "flipped" / WEIGHTS).write_bytes(bytes(payload))
    with pytest.raises(InputError, match="SHA-256"):
        genrad.models.load(tmp_path / "flipped")

    directory = tmp_path / "reshaped"
    fitted.save(directory)
    tensors = load_file(directory / WEIGHTS)
    key = next(iter(tensors))
    tensors[key] = torch.zeros(tensors[key].numel() + 1)
    save_file(tensors, directory / WEIGHTS)
    state = (directory / STATE).read_text().replace(fitted.model_hash(), hash_file(directory / WEIGHTS))
    (directory / STATE).write_text(state)
    with pytest.raises(InputError, match="shaped"):
        genrad.models.load(directory)


def test_resume_is_bit_identical(family: str, tmp_path: Path) -> None:
    straight = fit(tiny(family), toy_split(), max_steps=6, seed=3, progress=False)
    fit(tiny(family), toy_split(), max_steps=3, seed=3, out_dir=tmp_path, progress=False)
    with pytest.raises(InputError, match="resume"):
        fit(tiny(family), toy_split(), max_steps=6, seed=3, out_dir=tmp_path, progress=False)
    resumed = fit(tiny(family), toy_split(), max_steps=6, seed=3, out_dir=tmp_path, resume=True, progress=False)
    assert resumed.step_ == 6
    expected, found = straight.state_tensors(), resumed.state_tensors()
    assert all(torch.equal(expected[k], found[k]) for k in expected)
    assert (tmp_path / "history.csv").exists() and len(list((tmp_path / "samples").glob("*.png"))) == 2
    with pytest.raises(InputError, match="same --seed"):
        fit(tiny(family), toy_split(), max_steps=7, seed=4, out_dir=tmp_path, resume=True, progress=False)


def test_3d_and_image_size(family: str) -> None:
    volumes = toy_split(n=8, size=12, dims=3)
    model = fit(tiny(family, spatial_dims=3, batch_size=4), volumes, max_steps=2, progress=False)
    assert model.sample(2, labels=[0, 1]).shape == (2, 1, 12, 12, 12)
    resized = fit(tiny(family, image_size=16), toy_split(n=8), max_steps=2, progress=False)
    assert resized.sample(2).shape == (2, 1, 16, 16)


def test_intensity_map_is_used_for_training_sampling_and_saving(family: str, fitted: Generator, tmp_path: Path) -> None:
    """The intensity map itself is tested in tests/data/test_intensity_map.py; here: every family trains and samples
    through it, and saves it."""
    options = {"intensity": IntensityMap(gamma=2.0, black_level=0.02)}
    model = fit(tiny(family, **options), toy_split(), max_steps=STEPS, seed=0, progress=False)
    pixels = torch.from_numpy(toy_split().images)
    assert torch.allclose(model.model_space(toy_split()).tensors[0], model._pad(model.intensity_.encode(pixels)))
    images = model.sample(4, labels=[0, 1, 0, 1], generator=0)
    assert float(images.min()) >= 0.02 - 1e-6 and float(images.max()) <= 1.0  # nothing below the black level
    model.save(tmp_path)
    loaded = genrad.models.load(tmp_path)
    assert loaded.config["intensity"] == options["intensity"].as_dict() and loaded.intensity_ == options["intensity"]
    assert torch.equal(loaded.sample(4, generator=3), model.sample(4, generator=3))
    assert model.model_hash() != fitted.model_hash()


def test_a_run_saved_in_the_earlier_layout_still_loads(family: str, tmp_path: Path) -> None:
    """Runs saved before the intensity options became an `IntensityMap` kept them as flat constructor arguments, and
    their training state recorded no config hash: such a run loads with the same map and the same samples."""
    intensity = IntensityMap(gamma=0.5, black_level=0.02, floor_gap=0.3, floor_ramp=0.1)
    model = fit(tiny(family, intensity=intensity), toy_split(), max_steps=2, seed=0, progress=False)
    model.save(tmp_path)
    payload = json.loads((tmp_path / "config.json").read_text())
    flat = payload["config"].pop("intensity")
    payload["config"].update(intensity_gamma=flat["gamma"], black_level=flat["black_level"],
                             floor_gap=flat["floor_gap"], floor_ramp=flat["floor_ramp"])
    del payload["fitted"]["intensity"]
    (tmp_path / "config.json").write_text(json.dumps(payload))
    state = json.loads((tmp_path / STATE).read_text())
    del state["files"]["config.json"]
    (tmp_path / STATE).write_text(json.dumps(state))
    loaded = genrad.models.load(tmp_path)
    assert loaded.intensity_ == intensity and loaded.config == model.config
    assert torch.equal(loaded.sample(3, generator=1), model.sample(3, generator=1))
