"""A slow, obviously correct model of ``fastplace.BlockIndex`` for differential tests.

Each server's cache is an ``OrderedDict`` of block id -> size, least recently used
first; every query loops over the servers and blocks straight from its definition.
Errors are raised (ValueError) before anything changes, as the core promises.

fetch, spelled out (the header of cpp/include/fastplace/block_index.hpp is the contract):
1. the distinct blocks of the call, in call order; those cached are "present", the
   others "missing" and all of their bytes count as downloaded;
2. missing blocks are kept in call order while they fit into what the present blocks
   leave of the cache; a block that does not fit is skipped (not kept);
3. least-recently-used blocks that are not in the call are evicted until the cache
   holds the kept blocks too;
4. the call's present and kept blocks become the most recently used, in call order.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence

INT64_MAX = 2**63 - 1


class ReferenceBlockIndex:
    def __init__(self, cache_bytes: Sequence[int]) -> None:
        self.capacity: list[int] = []
        self.caches: list[OrderedDict[int, int]] = []
        self.add_servers(cache_bytes)
        self.hashes: list[int] = []
        self.sizes: list[int] = []
        self.id_of: dict[int, int] = {}

    # ---- servers and blocks ----------------------------------------------------------

    @property
    def n_servers(self) -> int:
        return len(self.capacity)

    @property
    def n_blocks(self) -> int:
        return len(self.sizes)

    def add_servers(self, cache_bytes: Sequence[int]) -> int:
        for i, size in enumerate(cache_bytes):
            if size < 0:
                raise ValueError(f"cache_bytes[{i}] = {size} must be >= 0")
        first = self.n_servers
        for size in cache_bytes:
            self.capacity.append(int(size))
            self.caches.append(OrderedDict())
        return first

    def intern(self, hashes: Sequence[int], sizes: Sequence[int]) -> list[int]:
        if len(hashes) != len(sizes):
            raise ValueError("hashes and sizes must have the same length")
        seen: dict[int, int] = {}
        total = sum(self.sizes)
        for i, (hash_, size) in enumerate(zip(hashes, sizes, strict=True)):
            if size <= 0:
                raise ValueError(f"sizes[{i}] = {size} must be > 0")
            known = self.id_of.get(hash_)
            expected = self.sizes[known] if known is not None else seen.get(hash_)
            if expected is not None and expected != size:
                raise ValueError(f"sizes[{i}] = {size} differs from {expected}")
            if expected is None:
                seen[hash_] = size
                total += size
                if total > INT64_MAX:
                    raise ValueError("block sizes exceed int64")
        ids = []
        for hash_, size in zip(hashes, sizes, strict=True):
            if hash_ not in self.id_of:
                self.id_of[hash_] = len(self.sizes)
                self.hashes.append(hash_)
                self.sizes.append(size)
            ids.append(self.id_of[hash_])
        return ids

    # ---- argument checks -------------------------------------------------------------

    def _check_server(self, server: int) -> None:
        if not 0 <= server < self.n_servers:
            raise ValueError(f"server = {server} is out of range [0, {self.n_servers})")

    def _distinct(self, blocks: Iterable[int]) -> list[int]:
        blocks = list(blocks)
        for i, block in enumerate(blocks):
            if not 0 <= block < self.n_blocks:
                raise ValueError(f"block_ids[{i}] = {block} is not a block id")
        return list(dict.fromkeys(blocks))

    # ---- queries -----------------------------------------------------------------------

    def cached_bytes(self, blocks: Iterable[int]) -> list[int]:
        distinct = self._distinct(blocks)
        return [
            sum(self.sizes[b] for b in distinct if b in self.caches[s])
            for s in range(self.n_servers)
        ]

    def cached_bytes_on(self, servers: Sequence[int], blocks: Iterable[int]) -> list[int]:
        for server in servers:
            self._check_server(server)
        everywhere = self.cached_bytes(blocks)
        return [everywhere[s] for s in servers]

    def missing_bytes(self, server: int, blocks: Iterable[int]) -> int:
        self._check_server(server)
        distinct = self._distinct(blocks)
        return sum(self.sizes[b] for b in distinct if b not in self.caches[server])

    def holders(self, block: int) -> list[int]:
        self._distinct([block])
        return [s for s in range(self.n_servers) if block in self.caches[s]]

    def server_blocks(self, server: int) -> list[int]:
        self._check_server(server)
        return list(self.caches[server])

    def used_bytes(self) -> list[int]:
        return [sum(cache.values()) for cache in self.caches]

    # ---- mutation ----------------------------------------------------------------------

    def fetch(self, server: int, blocks: Iterable[int]) -> int:
        self._check_server(server)
        distinct = self._distinct(blocks)
        cache = self.caches[server]
        present = [b for b in distinct if b in cache]
        missing = [b for b in distinct if b not in cache]
        downloaded = sum(self.sizes[b] for b in missing)
        room = self.capacity[server] - sum(self.sizes[b] for b in present)
        kept = set()
        for block in missing:
            if self.sizes[block] <= room:
                kept.add(block)
                room -= self.sizes[block]
        need = sum(self.sizes[b] for b in kept)
        for block in list(cache):  # least recently used first
            if sum(cache.values()) + need <= self.capacity[server]:
                break
            if block not in present:
                del cache[block]
        for block in distinct:
            if block in present or block in kept:
                cache[block] = self.sizes[block]
                cache.move_to_end(block)
        assert sum(cache.values()) <= self.capacity[server]
        return downloaded

    def evict_server(self, server: int) -> int:
        self._check_server(server)
        freed = sum(self.caches[server].values())
        self.caches[server].clear()
        return freed
