"""Sweep grids: named perturbations x severities, read from YAML and validated before any work starts.

A grid file (``grid.yaml``)::

    name: my-sweep
    perturbations:
      noise: [0.02, 0.05, 0.1, 0.2]   # sigma, fraction of the intensity range
      blur: [1, 2, 3, 4]              # FWHM in pixels

Severities are listed in increasing order, each in the perturbation's valid range (see
`genrad.scenarios.PERTURBATIONS` for the units). The clean images (no perturbation) are always evaluated
as the reference, so they need no entry.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from genrad.errors import InputError
from genrad.scenarios.perturbations import PERTURBATIONS, get_perturbation

DEFAULT_GRID: dict[str, Any] = {
    "name": "default",
    "perturbations": {
        "noise": [0.02, 0.05, 0.1, 0.2],
        "rician": [0.02, 0.05, 0.1, 0.2],
        "blur": [1.0, 2.0, 3.0, 4.0],
        "resolution": [1.5, 2.0, 3.0, 4.0],
        "bias_field": [0.1, 0.2, 0.4, 0.6],
        "gamma": [0.1, 0.25, 0.5, 0.75],
        "contrast": [0.2, 0.4, 0.6, 0.8],
        "motion": [1.0, 2.0, 4.0, 8.0],
        "ghosting": [0.2, 0.4, 0.6, 0.8],
        "spike": [0.05, 0.1, 0.2, 0.4],
        "gibbs": [0.2, 0.4, 0.6, 0.8],
    },
}


class Grid(BaseModel):
    """A named sweep: for each perturbation, the increasing severities to evaluate."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "custom"
    perturbations: dict[str, list[float]] = Field(min_length=1)

    @field_validator("perturbations")
    @classmethod
    def _check_perturbations(cls, value: dict[str, list[float]]) -> dict[str, list[float]]:
        for name, severities in value.items():
            perturbation = get_perturbation(name)
            if not severities:
                raise InputError(f"at least one severity for {name}", "an empty list", f"list severities, e.g. {name}: [0.1]")
            for severity in severities:
                perturbation.check(severity)
            if any(b <= a for a, b in itertools.pairwise(severities)):
                raise InputError(
                    f"{name} severities in strictly increasing order",
                    str(severities),
                    "sort the severities and remove duplicates",
                )
        return value

    def cells(self) -> list[tuple[str, float]]:
        """Every (perturbation, severity) pair, in file order."""
        return [(name, float(s)) for name, severities in self.perturbations.items() for s in severities]

    def quick(self) -> Grid:
        """The same perturbations at their lowest and highest severity only (for fast checks)."""
        return Grid(
            name=f"{self.name}-quick",
            perturbations={name: sorted({s[0], s[-1]}) for name, s in self.perturbations.items()},
        )

    def to_yaml(self) -> str:
        """The grid as YAML that `load_grid` reads back unchanged."""
        return yaml.safe_dump(self.model_dump(), sort_keys=False, default_flow_style=None)


def default_grid() -> Grid:
    """The default sweep: every registered perturbation at four severities."""
    return Grid(**DEFAULT_GRID)


def parse_grid(payload: Any, *, source: str | None = None) -> Grid:
    """Validate a grid given as a mapping; any problem is one `InputError` line naming the fix."""
    if not isinstance(payload, dict):
        raise InputError(
            "a mapping with 'perturbations: {name: [severities]}'",
            type(payload).__name__,
            "write the grid as YAML: perturbations: {noise: [0.05, 0.1]}",
            source=source,
        )
    try:
        return Grid(**payload)
    except InputError as error:
        raise (error.at(source) if source else error) from None
    except ValidationError as error:
        first = error.errors()[0]
        cause = first.get("ctx", {}).get("error")
        if isinstance(cause, InputError):
            raise cause.at(source) if source else cause from None
        where = ".".join(str(part) for part in first["loc"]) or "grid"
        raise InputError(
            f"a valid grid ({where}: {first['msg'].lower()})",
            repr(first.get("input"))[:80],
            f"fix {where}; known perturbations: {', '.join(PERTURBATIONS)}",
            source=source,
        ) from None


def load_grid(path: str | Path) -> Grid:
    """Read and validate a grid YAML file (`InputError` before any work when it is bad)."""
    path = Path(path)
    if not path.is_file():
        raise InputError("a grid YAML file", f"no file at {path}", "give --grid PATH to an existing file", source=str(path))
    try:
        payload = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise InputError("valid YAML", f"a parse error ({str(error).splitlines()[0]})", "fix the YAML syntax", source=str(path)) from None
    return parse_grid(payload, source=str(path))

