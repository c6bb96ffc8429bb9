"""Checkpoints: ``model.safetensors`` + ``config.json`` + ``training_state.json`` (+ ``optimizer.safetensors``).

Nothing is ever pickled or unpickled. ``training_state.json`` records the SHA-256 of every tensor
file and of ``config.json``, so a modified or half-written weights or configuration file is refused with a
clear `InputError`; so is a
directory that contains pickle files (``*.pt``, ``*.pth``, ``*.pkl``, ``*.pickle``, ``*.ckpt``),
because genrad never loads them and their presence means the directory is not what it claims.

Optimizer states are flattened to tensors (``<optimizer>/<param index>/<key>``) plus a JSON part
(hyper-parameters and non-tensor entries); random generator states are uint8 tensors ``rng/<name>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors_bytes
from torch.optim import Optimizer

from genrad.core import tensors_to_bytes
from genrad.errors import InputError
from genrad.limits import read_json
from genrad.provenance import atomic_path, hash_file, versions, write_json

WEIGHTS = "model.safetensors"
OPTIMIZER = "optimizer.safetensors"
CONFIG = "config.json"
STATE = "training_state.json"
PICKLE_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle", ".ckpt")


@dataclass
class Checkpoint:
    """What `load_checkpoint` returns: the JSON parts and the tensors, verified."""

    config: dict[str, Any]
    state: dict[str, Any]
    weights: dict[str, torch.Tensor]
    extra: dict[str, torch.Tensor] = field(default_factory=dict)


def save_checkpoint(
    directory: str | Path,
    *,
    weights: Mapping[str, torch.Tensor],
    config: Mapping[str, Any],
    state: Mapping[str, Any],
    extra: Mapping[str, torch.Tensor] | None = None,
) -> Path:
    """Write a checkpoint into `directory`, each file atomically, ``training_state.json`` last.

    `state` is completed with the SHA-256 of each tensor file and the package versions.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    files = {WEIGHTS: tensors_to_bytes(weights)}
    if extra:
        files[OPTIMIZER] = tensors_to_bytes(extra)
    elif (directory / OPTIMIZER).exists():
        (directory / OPTIMIZER).unlink()
    hashes = {}
    for name, payload in files.items():
        with atomic_path(directory / name) as temp:
            temp.write_bytes(payload)
        hashes[name] = hash_file(directory / name)
    write_json(directory / CONFIG, dict(config))
    hashes[CONFIG] = hash_file(directory / CONFIG)
    write_json(directory / STATE, {**state, "files": hashes, "versions": versions()})
    return directory


def load_checkpoint(directory: str | Path, *, extra: bool = False) -> Checkpoint:
    """Read and verify a checkpoint; `extra=True` also loads ``optimizer.safetensors`` when present."""
    directory = Path(directory)
    source = str(directory)
    if not directory.is_dir():
        raise InputError("a run directory with config.json and model.safetensors", "no such directory",
                         "check the path (it is the --out of `genrad train`)", source=source)
    pickles = sorted(p.name for p in directory.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES)
    if pickles:
        raise InputError("safetensors weights only", f"pickle file(s) {', '.join(pickles)}",
                         "genrad never unpickles files: remove them or use a clean directory written by genrad",
                         source=source)
    config = _read_json(directory / CONFIG)
    state = _read_json(directory / STATE)
    recorded = state.get("files", {})
    if CONFIG in recorded:  # checkpoints written before the config was hashed have only their tensor hashes
        _verify(directory / CONFIG, recorded[CONFIG])
    weights = _read_tensors(directory / WEIGHTS, recorded.get(WEIGHTS))
    tensors = {}
    if extra and OPTIMIZER in recorded:
        tensors = _read_tensors(directory / OPTIMIZER, recorded[OPTIMIZER])
    return Checkpoint(config=config, state=state, weights=weights, extra=tensors)


def _read_json(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise InputError(f"a {path.name} written by genrad", "no such file",
                         "point to a run directory written by `genrad train` or Generator.save", source=str(path.parent))
    payload = read_json(path, fix="restore the file from the run directory's original output")
    if not isinstance(payload, dict):
        raise InputError("a JSON object", type(payload).__name__, "restore the original file", source=str(path))
    return payload


def _read_tensors(path: Path, expected_hash: str | None) -> dict[str, torch.Tensor]:
    if not path.exists():
        raise InputError(f"a {path.name} file", "no such file", "point to a complete run directory", source=str(path.parent))
    if expected_hash is None:
        raise InputError(f"a SHA-256 for {path.name} in {STATE}", "none recorded",
                         "use a checkpoint written by genrad (it records the hash of every tensor file)",
                         source=str(path.parent))
    _verify(path, expected_hash)
    try:
        return load_safetensors_bytes(path.read_bytes())
    except (SafetensorError, ValueError) as error:
        raise InputError("a safetensors file", f"an unreadable file ({error})", "restore the file", source=str(path)) from None


def _verify(path: Path, expected_hash: str) -> None:
    """Refuse `path` unless its SHA-256 is the one recorded in ``training_state.json``."""
    found = hash_file(path)
    if found != expected_hash:
        raise InputError(f"{path.name} with SHA-256 {expected_hash[:12]}... (recorded in {STATE})",
                         f"SHA-256 {found[:12]}...",
                         "the file was modified or its write was interrupted: restore it or retrain (--resume needs an intact checkpoint)",
                         source=str(path))


def optimizer_state(optimizers: Mapping[str, Optimizer]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Flatten optimizer state dicts into tensors (for safetensors) and a JSON-serialisable part."""
    tensors: dict[str, torch.Tensor] = {}
    meta: dict[str, Any] = {}
    for name, optimizer in optimizers.items():
        state_dict = optimizer.state_dict()
        scalars: dict[str, dict[str, Any]] = {}
        for index, entries in state_dict["state"].items():
            for key, value in entries.items():
                if torch.is_tensor(value):
                    tensors[f"{name}/{index}/{key}"] = value
                else:
                    scalars.setdefault(str(index), {})[key] = value
        meta[name] = {"param_groups": state_dict["param_groups"], "scalars": scalars}
    return tensors, meta


def restore_optimizers(optimizers: Mapping[str, Optimizer], tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any]) -> None:
    """Inverse of `optimizer_state`: load the flattened states into `optimizers`."""
    for name, optimizer in optimizers.items():
        entries: dict[int, dict[str, Any]] = {}
        for key, value in tensors.items():
            if key.startswith(f"{name}/"):
                _, index, item = key.split("/", 2)
                entries.setdefault(int(index), {})[item] = value
        for index, scalars in meta[name]["scalars"].items():
            entries.setdefault(int(index), {}).update(scalars)
        optimizer.load_state_dict({"state": entries, "param_groups": meta[name]["param_groups"]})
