"""Per-axis sums over tiles: the counts of one layer's cores at any tiling, computed exactly.

Connectivity of conv/pool/identity ops factorises per axis (channels x rows x columns), so
every per-core count (neurons, synapses, input axons, synapse memory, destination cores) is an
outer product of small per-axis vectors: per tile, the sum or union over the tile's indices.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from export.mapping.result import SynapsePath
from export.mapping.targets import Target

__all__ = ["BlockSums", "Geometry", "by_source", "outer"]


def _starts(n: int, t: int) -> np.ndarray:
    return np.arange(0, n, t)


def _tile_sum(values: np.ndarray, t: int) -> np.ndarray:
    """Sums of ``values`` [n] over consecutive tiles of ``t``: [ceil(n/t)]."""
    return np.add.reduceat(values, _starts(len(values), t))


def _tile_any(m: np.ndarray | None, n: int, t: int) -> np.ndarray:
    """Per tile of ``t`` destination indices, the source indices it reaches: [tiles, n_src]."""
    if m is None:
        eye = np.zeros((len(_starts(n, t)), n), dtype=bool)
        for k, s in enumerate(_starts(n, t)):
            eye[k, s : s + t] = True
        return eye
    return np.logical_or.reduceat(m, _starts(n, t), axis=0)


def outer(vectors: Sequence[np.ndarray]) -> np.ndarray:
    out = np.asarray(vectors[0], dtype=np.float64)
    for v in vectors[1:]:
        out = np.multiply.outer(out, np.asarray(v, dtype=np.float64))
    return out


class BlockSums:
    """Sums of an array over the tiles of any tiling, from one summed-area table."""

    def __init__(self, arr: np.ndarray) -> None:
        self.shape = arr.shape
        table = np.asarray(arr, dtype=np.float64)
        for a in range(table.ndim):
            table = np.cumsum(table, axis=a)
        self.table = np.pad(table, [(1, 0)] * table.ndim)  # table[i, j, ..] = sum of arr[:i, :j]

    def __call__(self, tile: Sequence[int]) -> np.ndarray:
        r = len(self.shape)
        total = 0.0
        for corner in itertools.product((0, 1), repeat=r):
            index = []
            for a, (n, t, c) in enumerate(zip(self.shape, tile, corner, strict=True)):
                idx = _starts(n, t) if c == 0 else np.minimum(_starts(n, t) + t, n)
                index.append(idx.reshape([-1 if b == a else 1 for b in range(r)]))
            total = total + (-1) ** (r - sum(corner)) * self.table[tuple(index)]
        return np.asarray(total)

    def total(self) -> float:
        return float(self.table[(-1,) * len(self.shape)])


class Geometry:
    """Per-axis, per-tile-size quantities of one layer's incoming paths (cached)."""

    def __init__(self, shape: tuple[int, ...], paths: Sequence[SynapsePath]) -> None:
        self.shape, self.paths = shape, list(paths)
        self._cache: dict[tuple[int, int, int], tuple[np.ndarray, np.ndarray]] = {}
        self._tiles: dict[tuple[int, ...], tuple[np.ndarray, ...]] = {}
        self.groups = by_source(self.paths)  # source -> indices of its paths
        self.range = range(len(self.paths))

    def axis(self, p: int, a: int, t: int) -> tuple[np.ndarray, np.ndarray]:
        """Path p, axis a, tile size t: (fan-in sum per tile [k], source mask per tile [k, n])."""
        key = (p, a, t)
        if key not in self._cache:
            m = self.paths[p].rel.axes[a]
            n = self.shape[a]
            fan = np.ones(n, dtype=np.int64) if m is None else m.sum(1)
            self._cache[key] = (_tile_sum(fan, t), _tile_any(m, n, t))
        return self._cache[key]

    def tiles(self, tile: Sequence[int]) -> tuple[np.ndarray, ...]:
        """Neurons per tile along each axis."""
        key = tuple(tile)
        if key not in self._tiles:
            self._tiles[key] = tuple(
                _tile_sum(np.ones(n, dtype=np.int64), t)
                for n, t in zip(self.shape, tile, strict=True)
            )
        return self._tiles[key]

    def synapses(self, p: int, tile: Sequence[int]) -> np.ndarray:
        rel = self.paths[p].rel
        if rel.full:
            return outer(self.tiles(tile)) * int(np.prod(rel.src_shape))
        return outer([self.axis(p, a, t)[0] for a, t in enumerate(tile)])

    def axons(self, paths: Sequence[int], tile: Sequence[int]) -> np.ndarray:
        """Distinct source neurons per core, over ``paths`` from one source (union)."""
        if any(self.paths[p].rel.full for p in paths):
            n = int(np.prod(self.paths[paths[0]].rel.src_shape))
            return np.full([len(v) for v in self.tiles(tile)], float(n))
        return self._union(paths, tile, 1)

    def dest_counts(self, paths: Sequence[int], tile: Sequence[int]) -> np.ndarray:
        """Per source neuron, how many of this layer's cores it reaches: [*src_shape]."""
        src = self.paths[paths[0]].rel.src_shape
        if any(self.paths[p].rel.full for p in paths):
            return np.full(src, float(np.prod([len(v) for v in self.tiles(tile)])))
        return self._union(paths, tile, 0)

    def _union(self, paths: Sequence[int], tile: Sequence[int], side: int) -> np.ndarray:
        """Inclusion-exclusion over ``paths`` of their per-tile source masks, counted along
        ``side``: 1 gives sources per core [*tiles], 0 gives cores per source [*src_shape]."""
        total = 0.0
        for r in range(1, len(paths) + 1):
            for subset in itertools.combinations(paths, r):
                counts = []
                for a, t in enumerate(tile):
                    mask = self.axis(subset[0], a, t)[1]
                    for p in subset[1:]:
                        mask = mask & self.axis(p, a, t)[1]
                    counts.append(mask.sum(side))
                total = total + (-1) ** (r + 1) * outer(counts)
        return np.asarray(total)

    def memory_bits(self, p: int, tile: Sequence[int], target: Target) -> np.ndarray:
        path = self.paths[p]
        if target.shared_conv_weights and path.encoding == "kernel":
            weights_per_channel = path.rel.kernel_weights // self.shape[0]
            per_tile = [self.tiles(tile)[0] * weights_per_channel] + [
                np.ones(len(v)) for v in self.tiles(tile)[1:]
            ]
            return outer(per_tile) * target.weight_bits
        return self.synapses(p, tile) * target.weight_bits


def by_source(paths: Sequence[SynapsePath]) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = {}
    for i, p in enumerate(paths):
        groups.setdefault(p.source, []).append(i)
    return groups
