"""`RunConfig`: every option of `genrad run`, validated with pydantic, loaded from YAML or TOML."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from genrad.errors import InputError

STAGES = ("data", "train", "generate", "fidelity", "privacy", "utility")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class DataConfig(_Section):
    """Which data, and which splits play which role."""

    path: str = Field("phantom", description="A MedMNIST .npz, an image folder, or 'phantom'.")
    intensity: Literal["auto", "uint8", "minmax", "percentile", "none"] = "auto"
    train_split: str = "train"
    val_split: str = "val"
    test_split: str = "test"


class TrainConfig(_Section):
    """The generative model and its budget. The bounds repeat the models' argument checks, so that reading a
    config does not import torch; tests/pipeline/test_config.py keeps the two equal."""

    model: Literal["vae", "gan", "diffusion"] = "vae"
    budget_minutes: float = Field(5.0, gt=0)
    max_steps: int | None = Field(None, gt=0)
    covariates: tuple[str, ...] = ()
    intensity_gamma: float = Field(1.0, ge=0.25, le=4.0, description="Model pixels**(1/G); 2 for speckled ultrasound.")
    black_level: float = Field(0.0, ge=0.0, lt=0.5, description="Display floor in [0, 1) units; clipped regions come out flat.")
    floor_gap: float = Field(0.0, ge=0.0, lt=1.0, description="With black_level: model-space gap between clipped pixels and the darkest tissue.")
    floor_ramp: float = Field(0.0, ge=0.0, description="With floor_gap: pixels over which clipped pixels descend to -1.")
    guidance_scale: float | None = Field(None, ge=0.0, description="Diffusion only: classifier-free guidance of the sampler.")
    guide_step: int | None = Field(None, ge=1, description="Diffusion only: autoguidance by the model's EMA weights at this step.")

    @model_validator(mode="after")
    def _guidance_needs_diffusion(self) -> TrainConfig:
        for name in ("guidance_scale", "guide_step"):
            if getattr(self, name) is not None and self.model != "diffusion":
                raise ValueError(f"{name} applies to model 'diffusion' only, not {self.model!r}: remove it or set model: diffusion")
        return self


class GenerateConfig(_Section):
    """How many synthetic images, and whether to drop those the per-sample QA flags.

    By default every class gets as many images as the largest real training class, or more when the
    utility protocol's balanced arms need more (rare classes first); `multiple` asks for K x the real
    train set with its class ratio instead.
    """

    multiple: float | None = Field(None, gt=0, description="K x the real train set instead of balancing.")
    filter: bool = True
    shard_size: int = Field(1000, gt=0)
    workers: int = Field(1, gt=0)
    backend: Literal["local", "ray"] = "local"


class FidelityConfig(_Section):
    feature_set: str = "frd_v1"
    engine: Literal["fast", "pyradiomics"] | None = None
    n_bootstrap: int = Field(100, ge=0)


class PrivacyConfig(_Section):
    enabled: bool = True
    features: tuple[Literal["embedding", "radiomics"], ...] = ("embedding", "radiomics")
    n_bootstrap: int = Field(1000, ge=0)


class UtilityConfig(_Section):
    enabled: bool = True
    quick: bool = True
    seeds: int = Field(3, gt=0)
    multiples: tuple[float, ...] = (1.0,)

    @field_validator("multiples")
    @classmethod
    def _positive(cls, values: tuple[float, ...]) -> tuple[float, ...]:
        if any(v <= 0 for v in values):
            raise ValueError("multiples must be > 0")
        return values


class RunConfig(_Section):
    """The whole pipeline: validate data -> train -> generate -> fidelity -> privacy -> utility -> report."""

    seed: int = 0
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()
    generate: GenerateConfig = GenerateConfig()
    fidelity: FidelityConfig = FidelityConfig()
    privacy: PrivacyConfig = PrivacyConfig()
    utility: UtilityConfig = UtilityConfig()

    def with_overrides(self, **overrides: Any) -> RunConfig:
        """A copy with dotted-key overrides, e.g. ``{"train.model": "gan"}``; validated again."""
        payload = self.model_dump()
        for key, value in overrides.items():
            if value is None:
                continue
            target = payload
            *parents, leaf = key.split(".")
            for parent in parents:
                target = target[parent]
            target[leaf] = value
        return parse_config(payload, source="command-line options")


def parse_config(payload: dict[str, Any], *, source: str) -> RunConfig:
    """Validate a plain dict; errors become one-line `InputError`s naming the option."""
    try:
        return RunConfig.model_validate(payload)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "config"
        raise InputError(
            f"a valid value for '{where}'",
            f"{first['msg']} (got {first.get('input')!r})",
            "fix it in the config file (see `genrad run --print-config` for every option and default)",
            source=source,
        ) from None


def load_config(path: str | Path) -> RunConfig:
    """Read a YAML (.yaml/.yml) or TOML (.toml) run configuration."""
    path = Path(path)
    if not path.exists():
        raise InputError("an existing config file", "no such file", "check the path", source=str(path))
    text = path.read_text(encoding="utf-8")
    try:
        payload = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as error:
        reason = str(error).splitlines()[0]
        raise InputError("valid YAML or TOML", f"a syntax error ({reason})", "fix the file's syntax", source=str(path)) from None
    if not isinstance(payload, dict):
        raise InputError("a mapping of options", type(payload).__name__, "write 'section: {option: value}' pairs", source=str(path))
    return parse_config(payload, source=str(path))


def default_config_yaml() -> str:
    """The defaults, as `genrad run --print-config` shows them."""
    return yaml.safe_dump(_plain(RunConfig().model_dump()), sort_keys=False)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value
