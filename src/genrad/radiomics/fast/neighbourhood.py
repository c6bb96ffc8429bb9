"""Neighbour offsets, voxel pairs and lines through a batch of volumes ``(N, Z, Y, X)``.

pyradiomics' C matrices (``radiomics/src/cmatrices.c``) visit, for every voxel of the region of
interest, its neighbours at distance 1 along 13 directions (3D) or the 4 in-plane directions
(``force2D``), in one direction for the GLCM and GLRLM and in both for the NGTDM and GLSZM. Here the
same visits are done for a whole batch at once with array slices.
"""

from __future__ import annotations

from functools import lru_cache
from itertools import product

import numpy as np

Offset = tuple[int, int, int]


def directions(force_2d: bool) -> tuple[Offset, ...]:
    """Unit directions (dz, dy, dx), one per +/- pair, in pyradiomics' order (``generate_angles``)."""
    if force_2d:
        return ((0, 1, 1), (0, 1, 0), (0, 1, -1), (0, 0, 1))
    return tuple(d for d in product((1, 0, -1), repeat=3) if d > (0, 0, 0))


def neighbours(force_2d: bool) -> tuple[Offset, ...]:
    """All neighbour offsets (both signs of every direction): 8 in-plane or 26 in 3D."""
    half = directions(force_2d)
    return half + tuple((-a, -b, -c) for a, b, c in half)


def pair_slices(shape: tuple[int, ...], offset: Offset) -> tuple[tuple[slice, ...], tuple[slice, ...]]:
    """Slices (source, neighbour) of a ``(N, Z, Y, X)`` array so that neighbour = source + offset."""
    source, target = [slice(None)], [slice(None)]
    for length, step in zip(shape[1:], offset):
        if step >= 0:
            source.append(slice(0, length - step))
            target.append(slice(step, length))
        else:
            source.append(slice(-step, length))
            target.append(slice(0, length + step))
    return tuple(source), tuple(target)


@lru_cache(maxsize=64)
def line_table(shape: tuple[int, int, int], direction: Offset) -> np.ndarray:
    """``(lines, T)`` flat voxel indices of every line along `direction`, in walking order, -1 padded.

    A voxel p lies on the line through the base point ``p - p[m] * d`` (m: the first axis the direction
    moves along, where ``d[m] = 1``) at step ``p[m]``.
    """
    d = np.asarray(direction)
    m = int(np.flatnonzero(d)[0])
    coords = np.indices(shape).reshape(3, -1)
    step = coords[m]
    base = coords - step * d[:, None]
    base_key = np.ravel_multi_index(tuple(base + shape[m]), tuple(np.asarray(shape) + 2 * shape[m]))
    lines, line_of_voxel = np.unique(base_key, return_inverse=True)
    table = np.full((len(lines), shape[m]), -1, dtype=np.int64)
    table[line_of_voxel, step] = np.arange(coords.shape[1])
    # left-align each line so that walking order has no interior gaps
    order = np.argsort(table < 0, axis=1, kind="stable")
    return np.take_along_axis(table, order, axis=1)
