"""RO features and candidates: hand-checked values on a tiny cluster, candidate properties,
and the torch-free import contract."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastplace import Cluster
from fastplace.block_index import BlockIndex
from fastplace.optimizer import (
    FEATURE_NAMES,
    N_FEATURES,
    SCHEMA_VERSION,
    candidate_features,
    candidates,
    decision,
)

COLUMN = {name: i for i, name in enumerate(FEATURE_NAMES)}


def tiny() -> tuple[Cluster, BlockIndex, np.ndarray]:
    """4 servers: 0 full-ish, 1 active, 2 empty but caching the file, 3 empty and big."""
    cluster = Cluster([[1000, 1000], [2000, 1000], [1000, 500], [4000, 4000]])
    cluster.place(0, [900, 100])
    cluster.place(1, [500, 500])
    blocks = BlockIndex(4, 10_000)
    ids = blocks.intern([11, 12, 13, 14], [100, 200, 300, 400])  # a 1,000-byte file
    blocks.fetch(2, ids[:3])  # server 2 caches 600 bytes of it
    blocks.fetch(1, ids[3:])  # server 1 caches 400
    return cluster, blocks, np.asarray(ids, dtype=np.int64)


def test_schema_constants() -> None:
    assert isinstance(SCHEMA_VERSION, int)
    assert len(set(FEATURE_NAMES)) == N_FEATURES == len(FEATURE_NAMES)


def test_features_on_a_hand_made_cluster() -> None:
    cluster, blocks, ids = tiny()
    request = [500, 250]
    servers = candidates(cluster, blocks, request, ids)
    assert servers.tolist() == [1, 2, 3]  # server 0 has only 100 MB free
    features = candidate_features(cluster, blocks, request, ids, servers)
    assert features.shape == (3, N_FEATURES)
    assert features.dtype == np.float32

    def col(name: str) -> list[float]:
        return [round(float(v), 6) for v in features[:, COLUMN[name]]]

    assert col("first_fit_rank") == [0.0, 1 / 64, 2 / 64]
    assert col("is_first_fit") == [1, 0, 0]
    assert col("free_memory_before") == [0.75, 1.0, 1.0]
    assert col("free_cpu_before") == [0.5, 1.0, 1.0]
    assert col("free_memory_after") == [0.5, 0.5, 0.875]
    assert col("free_cpu_after") == [0.25, 0.5, 0.9375]
    assert col("fragmentation") == [0.25, 0.0, 0.0625]
    assert col("request_share") == [0.25, 0.5, 0.125]
    assert col("cached_share") == [0.4, 0.6, 0.0]
    assert col("cached_vs_best") == [round(4 / 6, 6), 1.0, 0.0]
    assert col("active") == [1, 0, 0]
    assert col("containers") == [1 / 32, 0, 0]
    assert col("server_size") == [0.5, 0.25, 1.0]
    # Global features: the same on every row.
    total_memory, total_cpu = 8000, 6500
    assert col("cluster_memory_load") == [round(1400 / total_memory, 6)] * 3
    assert col("cluster_cpu_load") == [round(600 / total_cpu, 6)] * 3
    assert col("active_share") == [0.5] * 3
    assert col("feasible_share") == [0.75] * 3

    same_servers, same = decision(cluster, blocks, request, ids)
    assert same_servers.tolist() == servers.tolist()
    np.testing.assert_array_equal(same, features)


def test_no_feasible_server_gives_no_candidates() -> None:
    cluster, blocks, ids = tiny()
    servers = candidates(cluster, blocks, [5000, 100], ids)
    assert servers.shape == (0,)
    assert candidate_features(cluster, blocks, [5000, 100], ids, servers).shape == (0, N_FEATURES)


def test_empty_block_list_has_zero_cached_share() -> None:
    cluster, blocks, _ = tiny()
    _, features = decision(cluster, blocks, [100, 100], np.zeros(0, dtype=np.int64))
    assert (features[:, COLUMN["cached_share"]] == 0).all()
    assert (features[:, COLUMN["cached_vs_best"]] == 0).all()


def test_without_a_block_index_the_first_k_feasible_servers_and_no_cached_bytes() -> None:
    cluster, _, ids = tiny()
    servers, features = decision(cluster, None, [100, 100], ids, k=2)
    assert servers.tolist() == [0, 1]
    assert (features[:, COLUMN["cached_share"]] == 0).all()
    assert features[:, COLUMN["active"]].tolist() == [1, 1]


def test_more_feasible_servers_than_k_keeps_first_fit_and_the_best_caches() -> None:
    cluster = Cluster(np.tile([[4096, 4000]], (200, 1)))
    blocks = BlockIndex(200, 1 << 20)
    ids = np.asarray(blocks.intern(np.arange(1, 11, dtype=np.uint64), [10] * 10), dtype=np.int64)
    for server, n in [(150, 10), (199, 9), (120, 5), (60, 1)]:
        blocks.fetch(server, ids[:n])
    servers = candidates(cluster, blocks, [1024, 578], ids, k=8)
    # Four local servers (k // 2), the rest from first-fit order.
    assert servers.tolist() == [0, 1, 2, 3, 60, 120, 150, 199]
    servers = candidates(cluster, blocks, [1024, 578], ids, k=3)
    assert servers.tolist() == [0, 1, 150]
    with pytest.raises(ValueError, match="k = 0"):
        candidates(cluster, blocks, [1024, 578], ids, k=0)


@given(
    free_memory=st.lists(st.integers(0, 8), min_size=1, max_size=150),
    cached=st.lists(st.integers(0, 4), min_size=150, max_size=150),
    k=st.integers(1, 70),
    need=st.integers(1, 8),
)
def test_candidates_are_distinct_sorted_feasible_and_at_most_k(
    free_memory: list[int], cached: list[int], k: int, need: int
) -> None:
    n = len(free_memory)
    cluster = Cluster([[8, 8]] * n)
    for server, free in enumerate(free_memory):
        if free < 8:
            cluster.place(server, [8 - free, 0])
    blocks = BlockIndex(n, 1000)
    ids = np.asarray(blocks.intern([1, 2, 3, 4], [1, 2, 4, 8]), dtype=np.int64)
    for server in range(n):
        if cached[server]:
            blocks.fetch(server, ids[: cached[server]])
    request = [need, 1]
    servers = candidates(cluster, blocks, request, ids, k=k)
    feasible = cluster.feasible(request)
    assert servers.shape[0] == min(k, feasible.shape[0])
    assert np.unique(servers).shape[0] == servers.shape[0]
    assert (np.diff(servers) > 0).all()
    assert np.isin(servers, feasible).all()
    if feasible.shape[0]:
        assert servers[0] == cluster.first_fit(request)
        # The server caching most (lowest index on ties) is always a candidate.
        held = blocks.cached_bytes_on(feasible, ids)
        if held.max() > 0 and k >= 2:
            assert feasible[int(np.argmax(held))] in servers
    features = candidate_features(cluster, blocks, request, ids, servers)
    assert features.shape == (servers.shape[0], N_FEATURES)
    assert np.isfinite(features).all()
    assert (features >= 0).all() and (features <= 1).all()


def test_importing_the_package_does_not_import_torch() -> None:
    code = (
        "import sys, fastplace, fastplace.optimizer, fastplace.optimizer.features, "
        "fastplace.optimizer.model, fastplace.optimizer.env, fastplace.optimizer.policy\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
