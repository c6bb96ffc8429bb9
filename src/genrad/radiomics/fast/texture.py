"""Texture features (GLCM, GLRLM, GLSZM, NGTDM) for a batch of discretised volumes at once.

Every function takes gray levels ``(N, Z, Y, X)`` (int, 1..Ng inside the region of interest, 0
outside) and returns ``{feature name: (N,) values}`` following pyradiomics 3.0.1's definitions
(``radiomics/glcm.py``, ``glrlm.py``, ``glszm.py``, ``ngtdm.py``; formulas in the pyradiomics
documentation and Zwanenburg et al., "The Image Biomarker Standardization Initiative", Radiology
2020). Matrices are never built per image: co-occurring pairs, runs, zones and neighbourhood sums of
the whole batch are counted with `numpy.bincount` / `numpy.unique` on packed integer keys, and the
features are sums over those counts. Direction-dependent features are averaged over the directions
that have any count (pyradiomics deletes empty directions).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from genrad.radiomics.fast.neighbourhood import (
    directions,
    line_table,
    neighbours,
    pair_slices,
)

EPS = float(np.spacing(1))
_PLANE_CROSS = np.zeros((3, 3, 3), dtype=bool)  # 4-connectivity within a plane, never across planes
_PLANE_CROSS[1] = ndimage.generate_binary_structure(2, 1)


def pyradiomics_order(names: tuple[str, ...]) -> tuple[str, ...]:
    """Feature names in the order pyradiomics reports them: sorted by method name ``get<Name>FeatureValue``."""
    return tuple(sorted(names, key=lambda name: f"get{name}FeatureValue"))


GLCM_FEATURES = pyradiomics_order((
    "Autocorrelation", "ClusterProminence", "ClusterShade", "ClusterTendency", "Contrast", "Correlation",
    "DifferenceAverage", "DifferenceEntropy", "DifferenceVariance", "Id", "Idm", "Idmn", "Idn", "Imc1", "Imc2",
    "InverseVariance", "JointAverage", "JointEnergy", "JointEntropy", "MCC", "MaximumProbability", "SumAverage",
    "SumEntropy", "SumSquares",
))  # fmt: skip
GLRLM_FEATURES = pyradiomics_order((
    "GrayLevelNonUniformity", "GrayLevelNonUniformityNormalized", "GrayLevelVariance", "HighGrayLevelRunEmphasis",
    "LongRunEmphasis", "LongRunHighGrayLevelEmphasis", "LongRunLowGrayLevelEmphasis", "LowGrayLevelRunEmphasis",
    "RunEntropy", "RunLengthNonUniformity", "RunLengthNonUniformityNormalized", "RunPercentage", "RunVariance",
    "ShortRunEmphasis", "ShortRunHighGrayLevelEmphasis", "ShortRunLowGrayLevelEmphasis",
))  # fmt: skip
GLSZM_FEATURES = pyradiomics_order((
    "GrayLevelNonUniformity", "GrayLevelNonUniformityNormalized", "GrayLevelVariance", "HighGrayLevelZoneEmphasis",
    "LargeAreaEmphasis", "LargeAreaHighGrayLevelEmphasis", "LargeAreaLowGrayLevelEmphasis",
    "LowGrayLevelZoneEmphasis", "SizeZoneNonUniformity", "SizeZoneNonUniformityNormalized", "SmallAreaEmphasis",
    "SmallAreaHighGrayLevelEmphasis", "SmallAreaLowGrayLevelEmphasis", "ZoneEntropy", "ZonePercentage",
    "ZoneVariance",
))  # fmt: skip
NGTDM_FEATURES = pyradiomics_order(("Busyness", "Coarseness", "Complexity", "Contrast", "Strength"))


def _sum(index: np.ndarray, weights: np.ndarray, size: int) -> np.ndarray:
    return np.bincount(index, weights=weights, minlength=size)


def count_keys(keys: np.ndarray, key_range: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct keys in ``[0, key_range)`` and their counts.

    A dense `numpy.bincount` when the range is small next to the number of keys (large images),
    else a sort (small images, where most keys are distinct).
    """
    if key_range <= max(16 * keys.size, 1 << 16):
        counts = np.bincount(keys, minlength=key_range)
        cells = np.flatnonzero(counts)
        return cells, counts[cells]
    ordered = np.sort(keys.astype(np.int32) if key_range < np.iinfo(np.int32).max else keys)
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    return ordered[starts].astype(np.int64), np.diff(np.append(starts, len(ordered)))


def _matrix_sums(keys: np.ndarray, size: int, width: int, other_width: int) -> dict[str, np.ndarray]:
    """Sums over a batch of gray-level x length matrices P(i, j) (run lengths or zone sizes), sparse.

    Each key ``(group * width + i) * other_width + j`` is one run or zone of gray level i and length
    j. Returns per group: the count N, the marginals p_i and p_j (dense), sum_ij P(i, j) f(i) h(j) for
    (f, h) in {i^2, i^-2} x {j^2, j^-2} and the entropy of P / N.
    """
    cells, count = count_keys(keys, size * width * other_width)
    cell_group, cell_gray = cells // (width * other_width), (cells // other_width) % width
    i, j, c = cell_gray.astype(np.float64), (cells % other_width).astype(np.float64), count.astype(np.float64)
    total = _sum(cell_group, c, size)
    i2, j2 = i * i, j * j
    p = c / np.where(total > 0, total, 1)[cell_group]
    return {
        "total": total,
        "by_gray": _sum(cell_group * width + cell_gray, c, size * width).reshape(size, width),
        "by_length": _sum(cell_group * other_width + cells % other_width, c, size * other_width).reshape(size, other_width),
        "i2j2": _sum(cell_group, c * i2 * j2, size),
        "i2/j2": _sum(cell_group, c * i2 / j2, size),
        "j2/i2": _sum(cell_group, c * j2 / i2, size),
        "1/i2j2": _sum(cell_group, c / (i2 * j2), size),
        "entropy": -_sum(cell_group, p * np.log2(p + EPS), size),
    }


def _nanmean_rows(values: np.ndarray) -> np.ndarray:
    """Mean over directions (last axis) ignoring NaN (empty directions); NaN if all are empty."""
    finite = np.isfinite(values)
    count = finite.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(finite, values, 0.0).sum(axis=-1) / np.where(count > 0, count, np.nan)


def _entropy(p: np.ndarray, axis: int = -1) -> np.ndarray:
    """``-sum p log2(p + eps)`` (pyradiomics' entropy, eps = machine epsilon)."""
    return -(p * np.log2(p + EPS)).sum(axis=axis)


def glcm(levels: np.ndarray, ng: np.ndarray, force_2d: bool) -> dict[str, np.ndarray]:
    """Gray Level Co-occurrence Matrix features (symmetrical GLCM, distance 1; Haralick et al. 1973).

    For direction a the symmetrical matrix is ``P = C + C^T`` with C[i, j] counting voxel pairs (v,
    v + a) of gray levels (i, j), normalised to sum 1. Pairs are counted as unordered {i, j}: an
    off-diagonal pair fills two cells with its count, a diagonal one its cell with twice the count.
    Sums of i + j and |i - j| give p_{x+y} and p_{x-y}, from which the moment features follow
    (i j = ((i + j)^2 - (i - j)^2) / 4). Imc2 uses ``HXY2 = 2 HX' - L^2 eps / ln 2`` (HX' the marginal
    entropy without eps, L the number of gray levels with p_x > 0), equal to pyradiomics' double sum
    to 1e-25.
    """
    n = len(levels)
    dirs = directions(force_2d)
    n_dirs, width = len(dirs), int(ng.max()) + 1
    image = np.arange(n).reshape(-1, 1, 1, 1) * n_dirs
    full = bool((levels > 0).all())  # the usual whole-image region: every pair counts
    keys = []
    for a, offset in enumerate(dirs):
        src, dst = pair_slices(levels.shape, offset)
        first, second = levels[src], levels[dst]
        key = (image + a) * (width * width) + np.minimum(first, second) * width + np.maximum(first, second)
        keys.append(key.ravel() if full else key[(first > 0) & (second > 0)])
    size = n * n_dirs
    cells, count = count_keys(np.concatenate(keys), size * width * width)
    high, low, group = cells % width, (cells // width) % width, cells // (width * width)
    total = 2.0 * _sum(group, count, size)  # sum of P over all cells
    empty = total == 0
    total[empty] = np.nan
    mass = 2.0 * count / total[group]  # probability of both cells of an entry
    diagonal = low == high
    cell_p = np.where(diagonal, mass, mass / 2)
    n_cells = np.where(diagonal, 1.0, 2.0)

    px = (_sum(group * width + low, count, size * width) + _sum(group * width + high, count, size * width))
    px = px.reshape(size, width) / total[:, None]
    p_sum = _sum(group * (2 * width) + low + high, mass, size * 2 * width).reshape(size, 2 * width)
    p_diff = _sum(group * width + high - low, mass, size * width).reshape(size, width)
    gray, k_sum = np.arange(width, dtype=np.float64), np.arange(2 * width, dtype=np.float64)
    ux = px @ gray
    sum_squares = px @ (gray * gray) - ux * ux
    sum_centred = k_sum[None, :] - 2 * ux[:, None]
    sum_centred2 = sum_centred * sum_centred
    autocorrelation = (p_sum @ (k_sum * k_sum) - p_diff @ (gray * gray)) / 4
    corm = autocorrelation - ux * ux
    ng_group = np.repeat(ng.astype(np.float64), n_dirs)[:, None]

    hx = _entropy(px)
    positive = px > 0
    hx_plain = -(np.where(positive, px * np.log2(np.where(positive, px, 1.0)), 0.0)).sum(axis=1)
    n_levels = positive.sum(axis=1)
    hxy = -_sum(group, n_cells * cell_p * np.log2(cell_p + EPS), size)
    hxy1 = -_sum(group, mass * np.log2(px[group, low] * px[group, high] + EPS), size)
    hxy2 = 2 * hx_plain - n_levels**2 * EPS / math.log(2)
    max_p = np.zeros(size)
    starts = np.flatnonzero(np.diff(group, prepend=-1))  # cells are sorted by group
    max_p[group[starts]] = np.maximum.reduceat(cell_p, starts)
    diff_average = p_diff @ gray
    diff_centred = gray[None, :] - diff_average[:, None]
    sigma2 = np.sqrt(sum_squares) * np.sqrt(sum_squares)
    with np.errstate(divide="ignore", invalid="ignore"):
        imc1 = np.where(hx != 0, (hxy - hxy1) / hx, 0.0)
        imc2 = np.where(n_levels <= 1, 0.0, np.sqrt(1 - np.exp(-2 * (hxy2 - hxy))))
        correlation = np.where(sigma2 == 0, 1.0, corm / (sigma2 + EPS))
        inverse_variance = p_diff[:, 1:] @ (1 / gray[1:] ** 2)
    values = {
        "Autocorrelation": autocorrelation,
        "ClusterProminence": (p_sum * sum_centred2 * sum_centred2).sum(axis=1),
        "ClusterShade": (p_sum * sum_centred2 * sum_centred).sum(axis=1),
        "ClusterTendency": (p_sum * sum_centred2).sum(axis=1),
        "Contrast": p_diff @ (gray * gray),
        "Correlation": correlation,
        "DifferenceAverage": diff_average,
        "DifferenceEntropy": _entropy(p_diff),
        "DifferenceVariance": (p_diff * diff_centred * diff_centred).sum(axis=1),
        "Id": p_diff @ (1 / (1 + gray)),
        "Idm": p_diff @ (1 / (1 + gray * gray)),
        "Idmn": (p_diff / (1 + gray**2 / ng_group**2)).sum(axis=1),
        "Idn": (p_diff / (1 + gray / ng_group)).sum(axis=1),
        "Imc1": imc1,
        "Imc2": imc2,
        "InverseVariance": inverse_variance,
        "JointAverage": ux,
        "JointEnergy": _sum(group, n_cells * cell_p * cell_p, size),
        "JointEntropy": hxy,
        "MaximumProbability": max_p,
        "SumAverage": p_sum @ k_sum,
        "SumEntropy": _entropy(p_sum),
        "SumSquares": sum_squares,
    }
    stacked = np.where(empty, np.nan, np.stack(list(values.values())))
    return dict(zip(values, _nanmean_rows(stacked.reshape(len(values), n, n_dirs))))


def _runs_in_full_lines(lines: np.ndarray, table: np.ndarray, offset: int, longest: int) -> np.ndarray:
    """Run keys ``(value + offset) * longest + length`` when every line is filled from its start.

    Runs then tile each line: a run ends where the next one starts or where its line ends.
    """
    line_length = (table >= 0).sum(axis=1)
    if line_length.max() < 2:  # no line holds two voxels: pyradiomics drops the direction
        return np.empty(0, dtype=np.int64)
    width = table.shape[1]
    start = np.empty(lines.shape, dtype=bool)
    start[..., 0] = True
    np.not_equal(lines[..., 1:], lines[..., :-1], out=start[..., 1:])
    if line_length.min() < width:
        start &= table >= 0
    first = np.flatnonzero(start)
    row = first // width
    line_end = row * width + line_length[row % len(table)]
    following = np.append(first[1:], first[-1] + width)
    return (lines.ravel()[first] + offset).astype(np.int64) * longest + (np.minimum(following, line_end) - first)


def glrlm(levels: np.ndarray, force_2d: bool) -> dict[str, np.ndarray]:
    """Gray Level Run Length Matrix features (Galloway 1975), one matrix per direction.

    Runs are maximal sequences of equal gray level inside the region along a direction; a direction
    whose lines each hold at most one region voxel is dropped (as pyradiomics' ``calculate_glrlm``).
    All features are sums over the run-length matrix P(i, r), counted with one `numpy.bincount`.
    """
    n = len(levels)
    dirs = directions(force_2d)
    n_dirs, width = len(dirs), int(levels.max()) + 1
    inside_all = levels.reshape(n, -1) > 0
    full = bool(inside_all.all())  # whole-image region: every line is contiguous
    # voxel values that also say which image they belong to: image k's levels offset by k * n_dirs * width
    dtype = np.int64 if n * n_dirs * width >= np.iinfo(np.int32).max else levels.dtype
    flat = levels.reshape(n, -1).astype(dtype) + (np.arange(n, dtype=dtype) * (n_dirs * width))[:, None]
    if not full:
        flat[~inside_all] = 0
    longest = max(line_table(levels.shape[1:], d).shape[1] for d in dirs) + 1
    keys = []
    for a, direction in enumerate(dirs):
        table = line_table(levels.shape[1:], direction)
        if direction == (0, 0, 1):  # lines are the rows: no gather needed
            lines = flat.reshape(n, -1, levels.shape[-1])
        elif direction == (0, 1, 0):  # lines are the columns: a transposed copy
            lines = np.ascontiguousarray(flat.reshape(levels.shape).swapaxes(2, 3)).reshape(n, -1, levels.shape[2])
        else:
            lines = flat[:, table]  # (N, lines, T); padding (-1) picks the last voxel and is masked next
            lines[:, table < 0] = 0
        if full:
            keys.append(_runs_in_full_lines(lines, table, a * width, longest))
            continue
        inside = lines > 0
        changes = lines[..., 1:] != lines[..., :-1]
        start, end = inside.copy(), inside.copy()
        start[..., 1:] &= changes
        end[..., :-1] &= changes
        first, last = np.flatnonzero(start), np.flatnonzero(end)
        key = (lines.ravel()[first] + a * width).astype(np.int64) * longest + (last - first + 1)
        multiple = np.count_nonzero(inside, axis=-1).max(axis=-1) > 1
        keys.append(key if multiple.all() else key[multiple[first // table.size]])
    size = n * n_dirs
    sums = _matrix_sums(np.concatenate(keys), size, width, longest)
    runs = sums["total"]
    runs[runs == 0] = np.nan
    pg, pr = sums["by_gray"], sums["by_length"]
    gray, length = np.arange(pg.shape[1], dtype=np.float64), np.arange(pr.shape[1], dtype=np.float64)
    with np.errstate(divide="ignore"):
        inverse_g2, inverse_r2 = np.where(gray > 0, 1 / gray**2, 0.0), np.where(length > 0, 1 / length**2, 0.0)
    pg_n, pr_n = pg / runs[:, None], pr / runs[:, None]
    mean_g, mean_r = pg_n @ gray, pr_n @ length
    values = {
        "GrayLevelNonUniformity": (pg * pg).sum(axis=1) / runs,
        "GrayLevelNonUniformityNormalized": (pg * pg).sum(axis=1) / runs**2,
        "GrayLevelVariance": pg_n @ (gray * gray) - mean_g * mean_g,
        "HighGrayLevelRunEmphasis": pg_n @ (gray * gray),
        "LongRunEmphasis": pr_n @ (length * length),
        "LongRunHighGrayLevelEmphasis": sums["i2j2"] / runs,
        "LongRunLowGrayLevelEmphasis": sums["j2/i2"] / runs,
        "LowGrayLevelRunEmphasis": pg_n @ inverse_g2,
        "RunEntropy": sums["entropy"],
        "RunLengthNonUniformity": (pr * pr).sum(axis=1) / runs,
        "RunLengthNonUniformityNormalized": (pr * pr).sum(axis=1) / runs**2,
        "RunPercentage": runs / (pr @ length),
        "RunVariance": pr_n @ (length * length) - mean_r * mean_r,
        "ShortRunEmphasis": pr_n @ inverse_r2,
        "ShortRunHighGrayLevelEmphasis": sums["i2/j2"] / runs,
        "ShortRunLowGrayLevelEmphasis": sums["1/i2j2"] / runs,
    }
    return dict(zip(values, _nanmean_rows(np.stack(list(values.values())).reshape(len(values), n, n_dirs))))


def _zones_in_plane(levels: np.ndarray) -> np.ndarray:
    """Zone label of every voxel for 8-connected zones within each slice (``force2D``).

    4-connected zones of all gray levels at once are the components of a binary image at twice the
    resolution, where a voxel's right and lower neighbours are joined when their levels are equal
    (`scipy.ndimage.label`); zones joined only diagonally are then merged on the small graph of
    4-connected zones.
    """
    n, z, y, x = levels.shape
    plane = levels.reshape(n * z, y, x)
    grid = np.zeros((n * z, 2 * y - 1, 2 * x - 1), dtype=bool)
    grid[:, ::2, ::2] = plane > 0
    grid[:, ::2, 1::2] = (plane[:, :, :-1] > 0) & (plane[:, :, :-1] == plane[:, :, 1:])
    grid[:, 1::2, ::2] = (plane[:, :-1, :] > 0) & (plane[:, :-1, :] == plane[:, 1:, :])
    labels, count = ndimage.label(grid, structure=_PLANE_CROSS)
    zone = labels[:, ::2, ::2]
    rows, cols = [], []
    for one, two in (
        ((slice(None), slice(None, -1), slice(None, -1)), (slice(None), slice(1, None), slice(1, None))),
        ((slice(None), slice(None, -1), slice(1, None)), (slice(None), slice(1, None), slice(None, -1))),
    ):
        joined = (plane[one] > 0) & (plane[one] == plane[two]) & (zone[one] != zone[two])
        rows.append(zone[one][joined])
        cols.append(zone[two][joined])
    row, col = np.concatenate(rows), np.concatenate(cols)
    if len(row):
        graph = csr_matrix((np.ones(len(row)), (row, col)), shape=(count + 1, count + 1))
        zone = connected_components(graph, directed=False)[1][zone]
    return zone.ravel()


def _zones_by_graph(levels: np.ndarray, force_2d: bool) -> np.ndarray:
    """Zone label of every voxel: connected components of the graph joining equal neighbours.

    A voxel without an equal neighbour is a zone of its own (most voxels of textured images), so
    only the others enter the graph.
    """
    links = []
    linked = np.zeros(levels.shape, dtype=bool)
    for offset in directions(force_2d):
        src, dst = pair_slices(levels.shape, offset)
        same = (levels[src] > 0) & (levels[src] == levels[dst])
        links.append((src, dst, same))
        linked[src] |= same
        linked[dst] |= same
    index_type = np.int32 if levels.size < np.iinfo(np.int32).max else np.int64  # scipy's native index type
    node = np.cumsum(linked.ravel(), dtype=index_type).reshape(levels.shape) - 1  # graph node of linked voxels
    rows = np.concatenate([node[src][same] for src, _, same in links])
    cols = np.concatenate([node[dst][same] for _, dst, same in links])
    n_nodes = int(node.ravel()[-1]) + 1 if levels.size else 0
    graph = csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_nodes, n_nodes))
    zone = np.arange(levels.size, dtype=np.int64) + n_nodes  # singletons: labels of their own
    zone[linked.ravel()] = connected_components(graph, directed=False)[1]
    return zone


def glszm(levels: np.ndarray, force_2d: bool) -> dict[str, np.ndarray]:
    """Gray Level Size Zone Matrix features (Thibault et al. 2009).

    Zones are connected components of equal gray level inside the region (8-connected in-plane for
    2D, 26-connected in 3D), labelled for the whole batch at once.
    """
    n = len(levels)
    n_voxels = levels[0].size
    flat_levels = levels.ravel()
    zone = _zones_in_plane(levels) if force_2d else _zones_by_graph(levels, force_2d)
    inside = np.flatnonzero(flat_levels > 0)
    zone_of_voxel = zone[inside]
    zone_size = np.bincount(zone_of_voxel)
    zones = np.flatnonzero(zone_size)
    representative = np.empty(len(zone_size), dtype=np.int64)
    representative[zone_of_voxel] = inside
    first = representative[zones]
    zone_size = zone_size[zones]
    owner = first // n_voxels
    gray_of_zone = flat_levels[first]
    width, longest = int(levels.max()) + 1, int(zone_size.max(initial=0)) + 1
    sums = _matrix_sums((owner * width + gray_of_zone) * longest + zone_size, n, width, longest)
    n_zones = sums["total"]
    n_zones[n_zones == 0] = 1
    pg, ps = sums["by_gray"], sums["by_length"]
    gray, sizes = np.arange(width, dtype=np.float64), np.arange(ps.shape[1], dtype=np.float64)
    with np.errstate(divide="ignore"):
        inverse_g2, inverse_s2 = np.where(gray > 0, 1 / gray**2, 0.0), np.where(sizes > 0, 1 / sizes**2, 0.0)
    volume = ps @ sizes
    pg_n, ps_n = pg / n_zones[:, None], ps / n_zones[:, None]
    mean_g, mean_s = pg_n @ gray, ps_n @ sizes
    return {
        "GrayLevelNonUniformity": (pg * pg).sum(axis=1) / n_zones,
        "GrayLevelNonUniformityNormalized": (pg * pg).sum(axis=1) / n_zones**2,
        "GrayLevelVariance": (pg_n * (gray - mean_g[:, None]) ** 2).sum(axis=1),
        "HighGrayLevelZoneEmphasis": pg_n @ (gray * gray),
        "LargeAreaEmphasis": ps_n @ (sizes * sizes),
        "LargeAreaHighGrayLevelEmphasis": sums["i2j2"] / n_zones,
        "LargeAreaLowGrayLevelEmphasis": sums["j2/i2"] / n_zones,
        "LowGrayLevelZoneEmphasis": pg_n @ inverse_g2,
        "SizeZoneNonUniformity": (ps * ps).sum(axis=1) / n_zones,
        "SizeZoneNonUniformityNormalized": (ps * ps).sum(axis=1) / n_zones**2,
        "SmallAreaEmphasis": ps_n @ inverse_s2,
        "SmallAreaHighGrayLevelEmphasis": sums["i2/j2"] / n_zones,
        "SmallAreaLowGrayLevelEmphasis": sums["1/i2j2"] / n_zones,
        "ZoneEntropy": sums["entropy"],
        "ZonePercentage": n_zones / np.where(volume == 0, 1, volume),
        "ZoneVariance": (ps_n * (sizes - mean_s[:, None]) ** 2).sum(axis=1),
    }


def _neighbour_sum(values: np.ndarray, force_2d: bool) -> np.ndarray:
    """Sum over the 8 (in-plane) or 26 neighbours of every voxel, 0 outside the volume (float64)."""
    padded = np.pad(values, [(0, 0), (1, 1), (1, 1), (1, 1)])
    total = np.zeros(values.shape, dtype=np.float64)
    z, y, x = values.shape[1:]
    for dz, dy, dx in neighbours(force_2d):
        total += padded[:, 1 + dz : 1 + dz + z, 1 + dy : 1 + dy + y, 1 + dx : 1 + dx + x]
    return total


def ngtdm(levels: np.ndarray, force_2d: bool) -> dict[str, np.ndarray]:
    """Neighbouring Gray Tone Difference Matrix features (Amadasun & King 1989).

    For gray level i: n_i region voxels and s_i = sum over them of |i - mean of their region
    neighbours| (0 for a voxel without region neighbours, which still counts in n_i, as in
    pyradiomics' ``calculate_ngtdm``). Sums over pairs of present gray levels are reduced to sums over
    levels where the algebra allows it; Complexity gathers the present levels of each image.
    """
    n = len(levels)
    inside = levels > 0
    full = bool(inside.all())
    total = _neighbour_sum(levels, force_2d)
    # with a whole-image region every image has the same neighbour counts: compute them once
    count = _neighbour_sum(np.ones((1,) + levels.shape[1:], dtype=np.int32) if full else inside.view(np.int8), force_2d)
    with np.errstate(invalid="ignore", divide="ignore"):
        diff = np.where(count > 0, np.abs(levels - total / count), 0.0)
    width = int(levels.max()) + 1
    key = np.arange(n).reshape(-1, 1, 1, 1) * width + levels
    if full:
        key, diff = key.ravel(), diff.ravel()
    else:
        key, diff = key[inside], diff[inside]
    n_i = np.bincount(key, minlength=n * width).reshape(n, width).astype(np.float64)
    s_i = _sum(key, diff, n * width).reshape(n, width)
    n_vp = n_i.sum(axis=1)
    p = n_i / n_vp[:, None]
    present = p > 0
    n_gp = present.sum(axis=1)
    gray = np.arange(width, dtype=np.float64)
    ps = p * s_i
    sum_s = s_i.sum(axis=1)
    coarse = ps.sum(axis=1)
    # sum_ij p_i p_j (i - j)^2 = 2 (E[i^2] - E[i]^2); sum over present pairs of (p_i + p_j)(i - j)^2
    # = 2 sum_i p_i (Ngp i^2 - 2 i S1 + S2), S1, S2 the sums of present levels and their squares.
    mean = (p * gray).sum(axis=1)
    spread2 = 2 * ((p * gray**2).sum(axis=1) - mean**2)
    s1, s2 = (present * gray).sum(axis=1), (present * gray**2).sum(axis=1)
    strength = 2 * (p * (n_gp[:, None] * gray**2 - 2 * gray * s1[:, None] + s2[:, None])).sum(axis=1)
    # present levels of each image, left-aligned: (N, L)
    order = np.argsort(~present, axis=1, kind="stable")[:, : max(int(n_gp.max()), 1)]
    valid = np.take_along_axis(present, order, axis=1)
    g_c = np.where(valid, order, 0).astype(np.float64)
    p_c = np.take_along_axis(p, order, axis=1) * valid
    ps_c = np.take_along_axis(ps, order, axis=1) * valid
    a_sorted = np.sort(np.where(valid, g_c * p_c, np.inf), axis=1)
    rank = np.arange(a_sorted.shape[1])
    weight = np.where(rank[None, :] < n_gp[:, None], 2 * rank[None, :] - n_gp[:, None] + 1, 0)
    absolute_spread = 2 * (np.where(np.isfinite(a_sorted), a_sorted, 0.0) * weight).sum(axis=1)
    weight = valid.astype(np.float64)  # pairs count only if both levels are present
    p_safe = np.where(valid, p_c, 1.0)
    terms = np.abs(g_c[:, :, None] - g_c[:, None, :])
    terms *= ps_c[:, :, None] + ps_c[:, None, :]
    terms /= p_safe[:, :, None] + p_safe[:, None, :]
    complexity = np.einsum("nij,ni,nj->n", terms, weight, weight, optimize=True) / n_vp
    with np.errstate(invalid="ignore", divide="ignore"):
        contrast = np.where(n_gp > 1, spread2 * sum_s / n_vp / (n_gp * (n_gp - 1.0)), 0.0)
        busyness = np.where(absolute_spread != 0, coarse / absolute_spread, 0.0)
        strength = np.where(sum_s != 0, strength / sum_s, 0.0)
        coarseness = np.where(coarse != 0, 1 / coarse, 1e6)
    return {"Busyness": busyness, "Coarseness": coarseness, "Complexity": complexity, "Contrast": contrast, "Strength": strength}
