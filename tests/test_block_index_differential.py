"""BlockIndex against the plain-Python model: random operation sequences and a stateful
machine with snapshot/restore round trips, validate() after every step."""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

from fastplace import BlockIndex
from reference.block_index_model import ReferenceBlockIndex

# Server counts around the 64-bit word boundaries, as everywhere in fastplace's tests.
SERVER_COUNTS = (1, 63, 64, 65, 129)
HASH_POOL = 60  # few distinct hashes, so versions share blocks


def size_of(hash_: int) -> int:
    """The fixed size of a hash in these tests: 1..97 bytes, so caches of up to a few
    hundred bytes hold only a handful of blocks and evictions are frequent."""
    return 1 + (hash_ * 37) % 97


def assert_same_state(index: BlockIndex, model: ReferenceBlockIndex) -> None:
    assert index.n_servers == model.n_servers
    assert index.n_blocks == model.n_blocks
    assert index.used_bytes().tolist() == model.used_bytes()
    assert index.cache_bytes().tolist() == model.capacity
    assert index.block_sizes().tolist() == model.sizes
    assert index.block_hashes().tolist() == model.hashes
    for server in range(model.n_servers):
        assert index.server_blocks(server).tolist() == model.server_blocks(server), server
    for block in range(model.n_blocks):
        assert index.holders(block).tolist() == model.holders(block), block
    index.validate()


def version_strategy(n_blocks: int) -> st.SearchStrategy[list[int]]:
    """Block id lists as a cold start would send them, duplicates included."""
    return st.lists(st.integers(0, max(0, n_blocks - 1)), max_size=12 if n_blocks else 0)


@settings(max_examples=60)
@given(st.sampled_from(SERVER_COUNTS), st.data())
def test_random_operations_match_model(n_servers: int, data: st.DataObject) -> None:
    cache = data.draw(st.lists(st.integers(0, 300), min_size=n_servers, max_size=n_servers))
    index = BlockIndex(n_servers, cache)
    model = ReferenceBlockIndex(cache)
    server = st.integers(0, n_servers - 1)
    for _ in range(data.draw(st.integers(1, 40))):
        op = data.draw(
            st.sampled_from(["intern", "fetch", "fetch", "fetch", "query", "missing", "evict"])
        )
        if op == "intern" or model.n_blocks == 0:
            hashes = data.draw(st.lists(st.integers(0, HASH_POOL), max_size=15))
            sizes = [size_of(h) for h in hashes]
            assert index.intern(hashes, sizes).tolist() == model.intern(hashes, sizes)
        elif op == "fetch":
            s, blocks = data.draw(server), data.draw(version_strategy(model.n_blocks))
            assert index.fetch(s, blocks) == model.fetch(s, blocks)
        elif op == "query":
            blocks = data.draw(version_strategy(model.n_blocks))
            assert index.cached_bytes(blocks).tolist() == model.cached_bytes(blocks)
            listed = data.draw(st.lists(server, max_size=6))
            assert index.cached_bytes_on(listed, blocks).tolist() == model.cached_bytes_on(
                listed, blocks
            )
        elif op == "missing":
            s, blocks = data.draw(server), data.draw(version_strategy(model.n_blocks))
            assert index.missing_bytes(s, blocks) == model.missing_bytes(s, blocks)
        else:
            s = data.draw(server)
            assert index.evict_server(s) == model.evict_server(s)
    assert_same_state(index, model)


@settings(max_examples=30)
@given(st.sampled_from(SERVER_COUNTS), st.integers(0, 2**32 - 1))
def test_versions_sharing_blocks_match_model(n_servers: int, seed: int) -> None:
    """Realistic shape: a chain of versions, each sharing most blocks with its
    predecessor, fetched on a few servers each; caches hold two or three versions."""
    rng = np.random.default_rng(seed)
    index = BlockIndex(n_servers, 2_000)
    model = ReferenceBlockIndex([2_000] * n_servers)
    blocks = rng.integers(0, 2**64, size=30, dtype=np.uint64)
    for _ in range(25):
        replace = rng.random(blocks.size) < 0.2
        blocks = blocks.copy()
        blocks[replace] = rng.integers(0, 2**64, size=int(replace.sum()), dtype=np.uint64)
        sizes = (blocks % np.uint64(60)).astype(np.int64) + 1
        ids = index.intern(blocks, sizes)
        assert ids.tolist() == model.intern(blocks.tolist(), sizes.tolist())
        assert index.cached_bytes(ids).tolist() == model.cached_bytes(ids.tolist())
        for server in rng.integers(0, n_servers, size=3):
            assert index.fetch(server, ids) == model.fetch(int(server), ids.tolist())
    assert_same_state(index, model)


@settings(max_examples=5, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_caches_of_thousands_of_blocks_match_model(seed: int) -> None:
    """Each server caches ~1,000-2,000 blocks, so its block table grows through several
    sizes and evictions shift long probe runs (also across the table's end); the other
    tests keep a handful of blocks per server."""
    rng = np.random.default_rng(seed)
    n_servers = 3
    cache = [int(c) for c in rng.integers(2_000, 5_000, size=n_servers)]
    index = BlockIndex(n_servers, cache)
    model = ReferenceBlockIndex(cache)
    hashes = rng.permutation(np.arange(1, 8_001, dtype=np.uint64))
    sizes = (hashes % np.uint64(4)).astype(np.int64) + 1
    ids = index.intern(hashes, sizes)
    assert ids.tolist() == model.intern(hashes.tolist(), sizes.tolist())
    for step in range(30):
        server = int(rng.integers(0, n_servers))
        if step % 11 == 10:
            assert index.evict_server(server) == model.evict_server(server)
            continue
        # A run of consecutive ids (a version's new blocks) plus scattered older ones
        # and a few repeats, as a cold start sends them.
        start = int(rng.integers(0, ids.size - 900))
        run = np.arange(start, start + int(rng.integers(200, 900)))
        scattered = rng.integers(0, ids.size, size=int(rng.integers(0, 300)))
        blocks = np.concatenate([run, scattered, run[:20]])
        rng.shuffle(blocks[: run.size // 2])
        assert index.fetch(server, blocks) == model.fetch(server, blocks.tolist())
        assert index.missing_bytes(server, scattered) == model.missing_bytes(
            server, scattered.tolist()
        )
        index.validate()
    for server in range(n_servers):
        assert index.server_blocks(server).tolist() == model.server_blocks(server)
    assert index.used_bytes().tolist() == model.used_bytes()
    restored = BlockIndex.restore(index.snapshot())
    restored.validate()
    assert restored.snapshot() == index.snapshot()


class BlockIndexMachine(RuleBasedStateMachine):
    """Every operation on the index and the model; the snapshot rule swaps the index for
    its restored (or unpickled) copy, which must behave identically from then on."""

    def __init__(self) -> None:
        super().__init__()
        self.index: BlockIndex
        self.model: ReferenceBlockIndex

    @initialize(n_servers=st.sampled_from(SERVER_COUNTS), cache=st.integers(0, 250))
    def start(self, n_servers: int, cache: int) -> None:
        self.index = BlockIndex(n_servers, cache)
        self.model = ReferenceBlockIndex([cache] * n_servers)

    def server(self, value: int) -> int:
        return value % self.model.n_servers

    def blocks(self, values: list[int]) -> list[int]:
        return [v % self.model.n_blocks for v in values] if self.model.n_blocks else []

    @rule(hashes=st.lists(st.integers(0, HASH_POOL), max_size=10))
    def intern(self, hashes: list[int]) -> None:
        sizes = [size_of(h) for h in hashes]
        assert self.index.intern(hashes, sizes).tolist() == self.model.intern(hashes, sizes)

    @rule(server=st.integers(0, 10**6), values=st.lists(st.integers(0, 10**6), max_size=12))
    def fetch(self, server: int, values: list[int]) -> None:
        s, blocks = self.server(server), self.blocks(values)
        assert self.index.fetch(s, np.asarray(blocks, dtype=np.int64)) == self.model.fetch(
            s, blocks
        )

    @rule(server=st.integers(0, 10**6))
    def evict(self, server: int) -> None:
        s = self.server(server)
        assert self.index.evict_server(s) == self.model.evict_server(s)

    @rule(n=st.integers(0, 3), cache=st.integers(0, 250))
    def add_servers(self, n: int, cache: int) -> None:
        assert self.index.add_servers(n, cache) == self.model.add_servers([cache] * n)

    @rule(server=st.integers(0, 10**6), values=st.lists(st.integers(0, 10**6), max_size=12))
    def queries(self, server: int, values: list[int]) -> None:
        s, blocks = self.server(server), self.blocks(values)
        ids = np.asarray(blocks, dtype=np.int32)
        assert self.index.cached_bytes(ids).tolist() == self.model.cached_bytes(blocks)
        assert self.index.missing_bytes(s, ids) == self.model.missing_bytes(s, blocks)
        listed = [s, 0, self.model.n_servers - 1]
        assert self.index.cached_bytes_on(listed, ids).tolist() == self.model.cached_bytes_on(
            listed, blocks
        )

    @rule(via_pickle=st.booleans())
    def snapshot_round_trip(self, via_pickle: bool) -> None:
        data = self.index.snapshot()
        restored: Any = (
            pickle.loads(pickle.dumps(self.index)) if via_pickle else BlockIndex.restore(data)
        )
        assert type(restored) is BlockIndex
        assert restored.snapshot() == data
        self.index = restored

    @invariant()
    def consistent(self) -> None:
        if not hasattr(self, "index"):
            return
        self.index.validate()
        assert self.index.used_bytes().tolist() == self.model.used_bytes()
        for server in range(self.model.n_servers):
            assert self.index.server_blocks(server).tolist() == self.model.server_blocks(server)


BlockIndexMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=30)
test_block_index_machine = BlockIndexMachine.TestCase
