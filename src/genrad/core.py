"""The small core every genrad layer may import: explicit randomness, the compute device, tensor bytes.

It imports torch only inside the functions that need it, so pure-NumPy modules stay torch-free.

Randomness: genrad never draws from the global RNG for results. Every stream is seeded by `derive_seed`,
a SHA-256 of a base seed and named tags (``derive_seed(seed, "shard", 3)``), so independent streams never
collide and a new stream never shifts an old one. Network initialisation, which PyTorch modules do with
the global RNG, runs inside `torch.random.fork_rng` (`seeded_init`), so building a network neither depends
on nor changes the caller's global state.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

SEEDING = "sha256-tags"  # recorded with generated data: the scheme by which `derive_seed` names streams


def derive_seed(seed: int, *tags: object) -> int:
    """A 63-bit seed derived from `seed` and `tags` (SHA-256), so independent streams never collide."""
    text = "/".join([str(int(seed)), *map(str, tags)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") >> 1


def make_generator(seed: int, *tags: object, device: torch.device | str = "cpu") -> torch.Generator:
    """A `torch.Generator` on `device` seeded with `derive_seed(seed, *tags)`."""
    import torch

    return torch.Generator(device=device).manual_seed(derive_seed(seed, *tags))


@contextlib.contextmanager
def seeded_init(seed: int, *tags: object) -> Iterator[None]:
    """Run a block (e.g. building a network) with the global CPU RNG forked and seeded; the caller's global
    RNG state is restored afterwards."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, *tags))
        yield


def default_device() -> torch.device:
    """The first CUDA device when one is available, else the CPU."""
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def native_bf16(device: torch.device) -> bool:
    """Whether `device` computes bfloat16 natively: CUDA, or a CPU with AVX512-BF16 or AMX (elsewhere autocast
    emulates bfloat16, many times slower than float32)."""
    import torch

    if device.type != "cpu":
        return True
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def tensors_to_bytes(tensors: Mapping[str, torch.Tensor]) -> bytes:
    """Serialise tensors to safetensors bytes (contiguous CPU copies; deterministic for equal input)."""
    from safetensors.torch import save as save_safetensors_bytes

    return save_safetensors_bytes({name: t.detach().cpu().contiguous() for name, t in tensors.items()})

