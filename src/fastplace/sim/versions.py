"""Model files as blocks, version after version.

Synthetic versions: version 0 of each partition's file is a run of fresh random block
hashes; each later version keeps the previous one's blocks except about
``changed_fraction`` of them, chosen in contiguous runs, which get new hashes (a
retrained model updates some tensors and leaves others byte-identical). Block ids come
from the cluster's BlockIndex, so the same hash is the same block wherever it is cached.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt

from fastplace._checks import integer
from fastplace.sim.workload import Workload

if TYPE_CHECKING:
    from fastplace.block_index import BlockIndex

__all__ = ["BlockSource", "VersionBlocks"]

MIB = 1 << 20


class BlockSource(Protocol):
    """Where the simulator gets a partition file's blocks: :class:`VersionBlocks`
    (synthetic) or, for a replay of a real store, its manifests (versions counted from
    0, the simulator's first version)."""

    def ids(self, model: int, partition: int, version: int) -> npt.NDArray[np.int64]:
        """BlockIndex ids of the version's partition file, in file order."""
        ...


class VersionBlocks:
    """Block ids and byte counts of every (model, partition, version), made on demand."""

    def __init__(
        self, workload: Workload, index: BlockIndex, *, block_bytes: int = MIB, seed: int = 0
    ) -> None:
        self._workload = workload
        self._index = index
        self._block_bytes = integer(block_bytes, "block_bytes", minimum=1)
        self._seed = integer(seed, "seed", minimum=0)
        # Per (model, partition), the newest KEEP_VERSIONS versions asked for: the
        # simulator only asks for a model's current and previous versions, and keeping
        # every version of a days-long log would take gigabytes.
        self._hashes: dict[tuple[int, int], dict[int, npt.NDArray[np.uint64]]] = {}
        self._ids: dict[tuple[int, int], dict[int, npt.NDArray[np.int64]]] = {}

    def _rng(self, model: int, partition: int, version: int) -> np.random.Generator:
        # One stream per (model, partition, version): the blocks of a version do not
        # depend on the order in which versions are first asked for.
        return np.random.default_rng([self._seed, model, partition, version])

    def _sizes(self, file_bytes: int) -> npt.NDArray[np.int64]:
        n = -(-file_bytes // self._block_bytes)
        sizes = np.full(n, self._block_bytes, dtype=np.int64)
        sizes[-1] = file_bytes - (n - 1) * self._block_bytes
        return sizes

    @staticmethod
    def _changed_runs(
        n: int, fraction: float, rng: np.random.Generator, run: int = 8
    ) -> npt.NDArray[np.bool_]:
        """A mask of about ``fraction`` of n blocks, in runs of ``run`` blocks: retraining
        updates whole tensors (an embedding table's touched rows, a dense layer), which
        are contiguous in the file."""
        runs = -(-n // run)
        chosen = rng.random(runs) < fraction
        return np.repeat(chosen, run)[:n]

    def hashes(self, model: int, partition: int, version: int) -> npt.NDArray[np.uint64]:
        """Block hashes of the version's partition file."""
        kept = self._hashes.setdefault((model, partition), {})
        found = kept.get(version)
        if found is not None:
            return found
        spec = self._workload.models[model]
        n = self._sizes(spec.partitions[partition].file_bytes).shape[0]
        # Build forward from the newest kept version below this one, in a loop: a model
        # rarely asked for over a days-long log jumps thousands of versions, deeper than
        # Python's recursion limit. Versions in between are not kept.
        start = max((v for v in kept if v < version), default=-1) + 1
        hashes = kept[start - 1] if start else np.zeros(0, dtype=np.uint64)
        for v in range(start, version + 1):
            rng = self._rng(model, partition, v)
            if v == 0:
                hashes = np.asarray(rng.integers(0, 2**63, size=n, dtype=np.uint64))
            else:
                hashes = hashes.copy()
                changed = self._changed_runs(n, spec.changed_fraction, rng)
                hashes[changed] = rng.integers(0, 2**63, size=int(changed.sum()), dtype=np.uint64)
        _keep(kept, version, hashes)
        return hashes

    def ids(self, model: int, partition: int, version: int) -> npt.NDArray[np.int64]:
        """BlockIndex ids of the version's partition file."""
        kept = self._ids.setdefault((model, partition), {})
        found = kept.get(version)
        if found is not None:
            return found
        sizes = self._sizes(self._workload.models[model].partitions[partition].file_bytes)
        hashes = self.hashes(model, partition, version)
        # Most blocks are the previous version's (interned, so their ids are known):
        # intern only the blocks that differ from the nearest kept version. The ids are
        # the same as interning the whole file (unchanged hashes keep their ids, new
        # ones are numbered in file order), for a fifth of the work.
        made = self._hashes[(model, partition)]
        bases = [v for v in kept if v in made]
        if bases:
            base = min(bases, key=lambda v: (abs(version - v), v))
            changed = np.flatnonzero(hashes != made[base])
            found = kept[base].copy()
            if changed.shape[0]:
                found[changed] = self._index.intern(hashes[changed], sizes[changed])
        else:
            found = np.asarray(self._index.intern(hashes, sizes), dtype=np.int64)
        _keep(kept, version, found)
        return found


#: Versions kept per (model, partition); older ones are made again if asked for.
KEEP_VERSIONS = 4


def _keep(kept: dict[int, npt.NDArray[Any]], version: int, value: npt.NDArray[Any]) -> None:
    kept[version] = value
    while len(kept) > KEEP_VERSIONS:
        del kept[min(kept)]
