"""Provenance: content hashes, package versions, atomic writes.

Every genrad output records the versions, seeds, configuration and data hash that produced it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import secrets
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from genrad.limits import regular_file

_TRACKED_PACKAGES = ("genrad", "torch", "monai", "numpy", "pyradiomics", "SimpleITK", "opacus", "ray")


def versions() -> dict[str, str]:
    """Versions of Python and the packages that shape genrad's numbers (absent ones are skipped)."""
    found = {"python": platform.python_version()}
    for name in _TRACKED_PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[name] = metadata.version(name)
    return found


def hash_arrays(*arrays: np.ndarray) -> str:
    """SHA-256 over dtype, shape and bytes of each array, in order."""
    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(str(array.dtype).encode())
        digest.update(str(array.shape).encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def hash_file(path: str | os.PathLike[str], chunk_size: int = 1 << 20) -> str:
    """SHA-256 of a regular file's bytes (a FIFO or device, which would never end, is refused)."""
    digest = hashlib.sha256()
    with open(regular_file(path), "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary sibling path; rename it onto `path` only if the block succeeds.

    No partial output is ever left under the final name: on error the temporary file is removed. The
    temporary file is not created here, so the writer creates it with the user's umask (``mkstemp`` would make
    every output owner-only, 0600).
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    temp = final.parent / f".{final.name}.{secrets.token_hex(8)}.tmp{final.suffix}"
    try:
        yield temp
        os.replace(temp, final)
    finally:
        if temp.exists():
            temp.unlink()


def write_json(path: str | os.PathLike[str], payload: Any) -> Path:
    """Write JSON atomically (sorted keys, UTF-8); NumPy scalars and arrays are converted."""
    with atomic_path(path) as temp:
        temp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=_to_builtin) + "\n", encoding="utf-8")
    return Path(path)


def _to_builtin(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serialisable")
