"""`RunConfig`: every option of `genrad run`, validated with pydantic, loaded from YAML or TOML."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from genrad.data.intensity import IntensityMap
from genrad.errors import InputError
from genrad.limits import MAX_CONFIG_BYTES, load_yaml, read_bytes_capped

STAGES = ("data", "train", "generate", "fidelity", "privacy", "utility")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class DataConfig(_Section):
    """Which data, and which splits play which role."""

    path: str = Field("phantom", description="A MedMNIST .npz, an image folder, or 'phantom'.")
    intensity: Literal["auto", "uint8", "minmax", "percentile", "image-percentile", "none"] = "auto"
    train_split: str = "train"
    val_split: str = "val"
    test_split: str = "test"
    size: int | None = Field(None, ge=4, description="A folder's images resized to this side (mixed sizes need it; "
                             "masks nearest-neighbour); none: as they are.")
    split_fractions: tuple[float, float, float] | None = Field(
        None, description="Data without its own split (only train) is split train/val/test by these fractions, "
        "stratified by class with the run's seed; none: 0.7, 0.1, 0.2 for such data.")
    mask_regions: Literal["merge", "labels"] = Field("merge", description="Several mask files of one image: one label, "
                                                     "or labels 1, 2, ... (genrad.data.masks).")

    def loader_options(self) -> dict[str, Any]:
        """The folder loader's options that differ from its defaults (`genrad.data.folder.load_folder`)."""
        return {key: value for key, value in (("size", self.size), ("mask_regions", self.mask_regions))
                if value not in (None, "merge")}


class TrainConfig(_Section):
    """The generative model and its budget. `preset` names a validated configuration (`genrad.models.presets`);
    `model` a family with its defaults; `intensity` and `options` are the `IntensityMap` and any other constructor
    argument of the family, checked by the family itself before any stage runs (``check_config``)."""

    model: Literal["vae", "gan", "diffusion"] | None = Field(None, description="A family with its defaults; none: the preset.")
    preset: str | None = Field(None, description="A preset of genrad.models.presets; neither: the best for the budget.")
    budget_minutes: float = Field(15.0, gt=0)
    max_steps: int | None = Field(None, gt=0)
    covariates: tuple[str, ...] = ()
    intensity: Literal["auto"] | dict[str, float] = Field(
        "auto", description="'auto' (chosen from the data), or IntensityMap fields: gamma, black_level, floor_gap, floor_ramp.")
    options: dict[str, Any] = Field(default_factory=dict, description="Other constructor arguments of the family.")
    distill_minutes: float | None = Field(
        None, ge=0, description="A guided diffusion model is then distilled into a student that samples without guidance "
        "(genrad.training.distill) for this many of the budget's minutes; none: 0.4x its generator's time, 29% of "
        "budget_minutes (and 40% of max_steps, in steps, when max_steps is given); 0: no student.")

    @field_validator("intensity", mode="before")
    @classmethod
    def _intensity(cls, value: Any) -> Any:
        """The map's own checks (`genrad.data.intensity.IntensityMap`), so that its bounds live in one place."""
        if value == "auto":
            return value
        try:
            mapped = IntensityMap.parse(value)
        except InputError as error:
            raise ValueError(f"{error.expected}, found {error.found}") from None
        return mapped.as_dict() if isinstance(mapped, IntensityMap) else mapped

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, value: str | None) -> str | None:
        from genrad.models.presets import PRESETS  # no torch: presets are plain data

        if value is not None and value not in PRESETS:
            raise ValueError(f"a preset among {sorted(PRESETS)}")
        return value

    @model_validator(mode="after")
    def _one_choice(self) -> TrainConfig:
        from genrad.models.presets import PRESETS

        if self.model is not None and self.preset is not None and PRESETS[self.preset].family != self.model:
            raise ValueError(f"preset {self.preset!r} is a {PRESETS[self.preset].family} model, not {self.model!r}: "
                             "give one of model and preset")
        return self


class GenerateConfig(_Section):
    """How many synthetic images, and whether to drop those the per-sample QA flags.

    By default every class gets as many images as the largest real training class, or more when the
    utility strategy's arms need more; `multiple` asks for K x the real train set with its class ratio
    instead. The images are sampled as the utility strategy prescribes for the model's family
    (`genrad.evaluation.utility.Strategy.sampling`), else as the model samples.
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
    """The utility protocol: `strategy` (genrad's validated default, `genrad.evaluation.utility.DEFAULT_STRATEGY`;
    "none": the scaling curve alone, at 1x unless `multiples` says otherwise), and with `multiples` the scaling
    curve too."""

    enabled: bool = True
    quick: bool = True
    seeds: int = Field(3, gt=0)
    strategy: str | None = Field("default", validate_default=True)
    multiples: tuple[float, ...] = ()

    @field_validator("strategy")
    @classmethod
    def _known_strategy(cls, value: str | None) -> str | None:
        from genrad.evaluation.utility import get_strategy

        if value is None or value == "none":
            return None
        try:
            return get_strategy(value).name
        except InputError as error:
            raise ValueError(f"{error.expected}, found {error.found}") from None

    @field_validator("multiples")
    @classmethod
    def _positive(cls, values: tuple[float, ...]) -> tuple[float, ...]:
        if any(v <= 0 for v in values):
            raise ValueError("multiples must be > 0")
        return values


class RunConfig(_Section):
    """The whole pipeline: validate data -> train -> generate -> fidelity -> privacy -> utility -> report."""

    seed: int = Field(0, ge=0, description="Base seed of every stage (a non-negative int).")
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
    try:
        text = read_bytes_capped(path, MAX_CONFIG_BYTES).decode("utf-8")
        payload = tomllib.loads(text) if path.suffix == ".toml" else load_yaml(text, str(path))
    except UnicodeDecodeError:
        raise InputError("a UTF-8 text file", "other bytes", "save the configuration as UTF-8", source=str(path)) from None
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
