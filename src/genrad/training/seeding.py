"""Explicit randomness: derived seeds, `torch.Generator`s and seeded network initialisation.

genrad never draws from the global RNG for results. Network initialisation, which PyTorch modules
do with the global RNG, runs inside `torch.random.fork_rng` with a derived seed, so building a
network neither depends on nor changes the caller's global state.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator

import torch


def derive_seed(seed: int, *tags: object) -> int:
    """A 63-bit seed derived from `seed` and `tags` (SHA-256), so independent streams never collide."""
    text = "/".join([str(int(seed)), *map(str, tags)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") >> 1


def make_generator(seed: int, *tags: object, device: torch.device | str = "cpu") -> torch.Generator:
    """A `torch.Generator` on `device` seeded with `derive_seed(seed, *tags)`."""
    return torch.Generator(device=device).manual_seed(derive_seed(seed, *tags))


@contextlib.contextmanager
def seeded_init(seed: int, *tags: object) -> Iterator[None]:
    """Run a block (e.g. building a network) with the global CPU RNG forked and seeded.

    The caller's global RNG state is restored afterwards.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, *tags))
        yield
