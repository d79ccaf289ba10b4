"""Which content blocks of model versions each server caches: the block-locality index.

A model version is a list of blocks (content hashes with sizes in bytes, see
``fastplace.blocks``). Every server keeps a block cache of a fixed size with
least-recently-used eviction; a container of a version cold-starts by downloading the
blocks its server lacks (:meth:`BlockIndex.fetch`). The "similarity" placement policy
asks :meth:`BlockIndex.cached_bytes`: how many bytes of this version does each server
already hold?

``BlockIndex`` subclasses the native ``BlockIndexCore``, so queries go straight to C++;
this module adds scalar broadcasting of cache sizes, ``restore``/pickling and error
types. Block ids are dense ``int32`` numbers from :meth:`BlockIndex.intern`; every
method takes them as any 1-D integer sequence or array (floats, bools and negative
values raise ValueError naming the argument and the index).

Threading: every operation locks the native index, so concurrent calls from several
threads are safe and each is atomic; ``cached_bytes`` on 4,096 or more servers,
``snapshot`` and ``validate`` release the GIL.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import numpy.typing as npt

from fastplace._atomic import write_atomic
from fastplace._checks import integer
from fastplace._native import _core
from fastplace.cluster import ClusterInvariantError, restore_snapshot, snapshot_bytes

__all__ = ["MAX_SERVERS", "BlockIndex"]


#: Servers one index holds (kMaxServers in cpp/src/block_index.cpp): checked here too,
#: before an array of that many cache sizes is allocated.
MAX_SERVERS: int = _core.BLOCK_INDEX_MAX_SERVERS


def _cache_sizes(
    n_servers: int,
    cache_bytes: int | npt.ArrayLike,
    *,
    name: str = "n_servers",
    room: int = MAX_SERVERS,
) -> npt.NDArray[Any]:
    """``cache_bytes`` (one size for all, or one per server) as n_servers sizes; at most
    ``room`` servers."""
    count = integer(n_servers, name, minimum=0)
    if count > room:
        already = MAX_SERVERS - room
        raise ValueError(
            f"{name} = {count} exceeds the index's limit of {MAX_SERVERS} servers"
            + (f" ({already} already)" if already else "")
        )
    if not isinstance(cache_bytes, np.ndarray):
        # Python values are held to integer(): numpy would make True a 1 in a list.
        if np.ndim(cache_bytes) == 0:
            size = integer(cache_bytes, "cache_bytes", minimum=0, maximum=2**63 - 1)
            return np.full(count, size, dtype=np.int64)
        cache_bytes = [
            integer(value, f"cache_bytes[{i}]", minimum=0, maximum=2**63 - 1)
            for i, value in enumerate(cache_bytes)  # type: ignore[arg-type]
        ]
    sizes = np.asarray(cache_bytes)
    if sizes.ndim == 0:
        return np.full(count, sizes, dtype=sizes.dtype)
    if sizes.shape != (count,):
        raise ValueError(f"cache_bytes must be one size or {count} sizes, got shape {sizes.shape}")
    return sizes


class BlockIndex(_core.BlockIndexCore):
    """Per-server LRU block caches, queried per model version.

    >>> index = BlockIndex(3, cache_bytes=130)
    >>> v1 = index.intern([0xA1, 0xB2, 0xC3], [40, 30, 20])
    >>> index.fetch(0, v1)  # cold start on server 0: downloads all 90 bytes
    90
    >>> v2 = index.intern([0xA1, 0xB2, 0xD4], [40, 30, 50])
    >>> index.cached_bytes(v2).tolist()  # bytes of v2 already on each server
    [70, 0, 0]
    >>> index.fetch(0, v2)  # downloads 50; evicts 0xC3 (least recently used) to fit
    50
    """

    def __init__(self, n_servers: int, cache_bytes: int | npt.ArrayLike) -> None:
        """``n_servers`` servers with empty caches of ``cache_bytes`` bytes each (one size
        for all, or a sequence of one size per server)."""
        super().__init__(_cache_sizes(n_servers, cache_bytes))

    @classmethod
    def restore(cls, data: bytes) -> BlockIndex:
        """An index rebuilt from :meth:`snapshot` bytes (raises CorruptSnapshot if damaged)."""
        index = cls.__new__(cls)
        _core.BlockIndexCore.__init__(index, snapshot_bytes(data))
        return index

    def save(self, path: str | os.PathLike[str]) -> None:
        """Writes :meth:`snapshot` to ``path`` atomically and durably, as
        :meth:`fastplace.Cluster.save` does."""
        write_atomic(path, self.snapshot())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> BlockIndex:
        """An index restored from a file written by :meth:`save`."""
        with open(path, "rb") as file:
            return cls.restore(file.read())

    def add_servers(  # type: ignore[override]
        self, n: int, cache_bytes: int | npt.ArrayLike
    ) -> int:
        """Appends ``n`` servers with empty caches of ``cache_bytes`` each (or one size per
        server); returns the id of the first new server."""
        return super().add_servers(_cache_sizes(n, cache_bytes, room=MAX_SERVERS - self.n_servers))

    def validate(self) -> None:
        """Recomputes every invariant; raises ClusterInvariantError naming the first broken one."""
        reason = self.validate_reason()
        if reason:
            raise ClusterInvariantError(f"block index: {reason}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (restore_snapshot, (type(self), self.snapshot()))

    def __repr__(self) -> str:
        return (
            f"BlockIndex(n_servers={self.n_servers}, n_blocks={self.n_blocks}, "
            f"cached_bytes={sum(self.used_bytes().tolist())})"  # Python ints: exact
        )
