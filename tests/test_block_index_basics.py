"""BlockIndex by example: the fetch rules of the header, holder-set sharing, large
server counts (the GIL-releasing path) and concurrent use from several threads."""

from __future__ import annotations

import pickle
import threading

import numpy as np
import pytest

import fastplace
from fastplace import BlockIndex
from reference.block_index_model import ReferenceBlockIndex


def test_exported_and_subclasses_the_core() -> None:
    assert fastplace.BlockIndex is BlockIndex
    assert "BlockIndex" in fastplace.__all__
    assert issubclass(BlockIndex, fastplace._core.BlockIndexCore)


def test_intern_is_dense_and_stable() -> None:
    index = BlockIndex(1, 10)
    assert index.intern([5, 9, 5], [1, 2, 1]).tolist() == [0, 1, 0]
    assert index.intern([9, 2**64 - 1], [2, 3]).tolist() == [1, 2]
    assert index.intern(np.array([2**64 - 1], dtype=np.uint64), [3]).dtype == np.int32
    assert index.n_blocks == 3
    assert index.block_hashes().tolist() == [5, 9, 2**64 - 1]
    assert index.block_sizes().tolist() == [1, 2, 3]


def test_fetch_refreshes_evicts_lru_and_orders_by_call() -> None:
    index = BlockIndex(1, 100)
    a, b, c, d = index.intern([1, 2, 3, 4], [30, 30, 30, 30]).tolist()
    assert index.fetch(0, [a, b, c]) == 90
    assert index.fetch(0, [a]) == 0  # refresh: b is now the least recently used
    assert index.server_blocks(0).tolist() == [b, c, a]
    assert index.fetch(0, [d, c]) == 30  # d evicts b; c and d become newest, in call order
    assert index.server_blocks(0).tolist() == [a, d, c]
    assert index.used_bytes().tolist() == [90]


def test_fetch_counts_duplicates_once() -> None:
    index = BlockIndex(2, 100)
    a, b = index.intern([1, 2], [10, 20]).tolist()
    assert index.fetch(0, [a, b, a, b, a]) == 30
    assert index.cached_bytes([a, a, b]).tolist() == [30, 0]
    assert index.missing_bytes(1, [b, b, a]) == 30
    assert index.server_blocks(0).tolist() == [a, b]


def test_blocks_larger_than_the_cache_are_downloaded_not_kept() -> None:
    index = BlockIndex(1, 50)
    small, big, medium = index.intern([1, 2, 3], [10, 60, 30]).tolist()
    index.fetch(0, [small])
    assert index.fetch(0, [big]) == 60
    assert index.server_blocks(0).tolist() == [small]  # nothing evicted for a block that cannot fit
    # A set larger than the cache: kept in call order while it fits, the rest only downloaded.
    assert index.fetch(0, [medium, big, small]) == 90
    assert index.server_blocks(0).tolist() == [medium, small]


def test_blocks_of_the_call_are_not_evicted_by_it() -> None:
    index = BlockIndex(1, 60)
    a, b, c = index.intern([1, 2, 3], [30, 30, 40]).tolist()
    index.fetch(0, [a, b])
    # c needs 40 bytes; a is in the call, so only b may go, which leaves 30 + 40 > 60.
    assert index.fetch(0, [a, c]) == 40
    assert index.server_blocks(0).tolist() == [b, a]
    assert index.fetch(0, [c]) == 40
    assert index.server_blocks(0).tolist() == [c]


def test_zero_byte_caches_keep_nothing() -> None:
    index = BlockIndex(2, [0, 5])
    ids = index.intern([1, 2], [5, 5])
    assert index.fetch(0, ids) == 10
    assert index.fetch(1, ids) == 10
    assert index.server_blocks(0).tolist() == []
    assert index.server_blocks(1).tolist() == [0]


def test_evict_server_and_holders() -> None:
    index = BlockIndex(4, 100)
    ids = index.intern([1, 2], [10, 20])
    for server in (3, 0, 2):
        index.fetch(server, ids)
    assert index.holders(0).tolist() == [0, 2, 3]
    assert index.evict_server(2) == 30
    assert index.evict_server(2) == 0
    assert index.holders(1).tolist() == [0, 3]
    assert index.cached_bytes(ids).tolist() == [30, 0, 0, 30]
    assert index.cached_bytes_on([3, 1, 3], ids).tolist() == [30, 0, 30]
    index.validate()


@pytest.mark.parametrize("n_listed", [1, 3, 129 * 3])
def test_cached_bytes_on_probing_and_scattering_agree(n_listed: int) -> None:
    """Few listed servers are probed per holder set, many are scattered: same answers."""
    index = BlockIndex(129, 100)
    ids = index.intern(np.arange(6, dtype=np.uint64), [10, 20, 30, 10, 20, 30])
    for server in range(129):
        index.fetch(server, ids[server % 3 : server % 3 + 3])
    listed = [(7 * i) % 129 for i in range(n_listed)]
    expected = index.cached_bytes(ids)[listed]
    assert index.cached_bytes_on(listed, ids).tolist() == expected.tolist()
    assert index.cached_bytes_on(listed, ids[::-1][:4]).tolist() == (
        index.cached_bytes(ids[::-1][:4])[listed].tolist()
    )
    index.validate()


def test_a_version_fetched_everywhere_shares_one_holder_set() -> None:
    """Hash-consing: blocks with the same holders share one server list, whatever order
    the servers fetched them in; emptied sets are released."""
    index = BlockIndex(50, 10_000)
    version = index.intern(np.arange(100, dtype=np.uint64), np.full(100, 10))
    for server in range(50):
        index.fetch(server, version if server % 2 else version[::-1])
    assert index.n_holder_sets == 2  # the empty set and "all 50 servers"
    # Server 7 (odd: fetched in order) makes room for a 9,990-byte block by evicting all
    # but its newest block, version[-1].
    index.fetch(7, index.intern([1000], [9_990]))
    assert index.holders(version[0]).tolist() == [s for s in range(50) if s != 7]
    assert index.holders(version[-1]).tolist() == list(range(50))
    assert index.n_holder_sets == 4  # empty, all, all but 7, {7}
    for server in range(50):
        index.evict_server(server)
    assert index.n_holder_sets == 1  # emptied sets are released
    assert index.cached_bytes(version).tolist() == [0] * 50
    index.validate()


def test_add_servers_scalar_and_per_server_sizes() -> None:
    index = BlockIndex(2, np.array([5, 6]))
    assert index.add_servers(3, 7) == 2
    assert index.add_servers(2, [8, 9]) == 5
    assert index.add_servers(0, 1) == 7
    assert index.cache_bytes().tolist() == [5, 6, 7, 7, 7, 8, 9]
    ids = index.intern([1], [1])
    index.fetch(6, ids)
    assert index.cached_bytes(ids).tolist() == [0] * 6 + [1]


def test_pickle_and_repr() -> None:
    index = BlockIndex(3, 100)
    index.fetch(1, index.intern([1, 2], [10, 20]))
    copy = pickle.loads(pickle.dumps(index))
    assert copy.snapshot() == index.snapshot()
    assert repr(copy) == "BlockIndex(n_servers=3, n_blocks=2, cached_bytes=30)"


@pytest.mark.parametrize("n_servers", [4095, 4097])
def test_large_server_counts_match_numpy(n_servers: int) -> None:
    """Both sides of the GIL-release threshold (4,096 servers), checked against a dense
    servers x blocks matrix built from server_blocks()."""
    rng = np.random.default_rng(n_servers)
    index = BlockIndex(n_servers, 3_000)
    ids = index.intern(np.arange(300, dtype=np.uint64), rng.integers(1, 100, size=300))
    for server in rng.integers(0, n_servers, size=600):
        index.fetch(server, rng.choice(ids, size=40))
    sizes = index.block_sizes()
    dense = np.zeros((n_servers, index.n_blocks), dtype=bool)
    for server in range(n_servers):
        dense[server, index.server_blocks(server)] = True
    for _ in range(5):
        query = np.unique(rng.choice(ids, size=80))
        assert (index.cached_bytes(query) == dense[:, query] @ sizes[query]).all()
    index.validate()


def test_threads_on_disjoint_servers_match_a_sequential_model() -> None:
    """Four threads fetch, evict and query on their own servers of one shared index (above
    the GIL-release threshold, so C++ really runs concurrently). Each thread's own
    servers evolve exactly as a sequential model of its script predicts, so every answer
    about them is checked; the final state must validate."""
    n_threads, n_servers = 4, 4_100
    index = BlockIndex(n_servers, 400)
    ids = index.intern(np.arange(200, dtype=np.uint64), 1 + np.arange(200) % 50)
    sizes = index.block_sizes().tolist()
    errors: list[str] = []

    def worker(t: int) -> None:
        rng = np.random.default_rng(t)
        own = list(range(t, n_servers, n_threads))[:40]
        model = ReferenceBlockIndex([400] * n_servers)
        model.intern(list(range(200)), sizes)
        for step in range(300):
            server = own[int(rng.integers(len(own)))]
            blocks = rng.choice(ids, size=int(rng.integers(1, 15))).tolist()
            if step % 10 == 9:
                got, want = index.evict_server(server), model.evict_server(server)
            elif step % 3 == 2:
                row = index.cached_bytes(blocks)
                got = [int(row[s]) for s in own]
                want = [sum(sizes[b] for b in set(blocks) if b in model.caches[s]) for s in own]
            else:
                got, want = index.fetch(server, blocks), model.fetch(server, blocks)
            if got != want:
                errors.append(f"thread {t} step {step}: {got} != {want}")
                return
        for s in own:
            if index.server_blocks(s).tolist() != model.server_blocks(s):
                errors.append(f"thread {t}: server {s} ends with other blocks")

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(n_threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    index.validate()
