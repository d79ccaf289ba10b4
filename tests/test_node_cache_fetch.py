"""Partitions starting together on one node fetch a missing block once: the node
cache's fetches take turns (a lock file, across processes), so the second finds the
blocks the first copied. The simulator counts a block once per server; so must Ray."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from fastplace.engines.ray.model_store import FETCH_LOCK, ModelStore, NodeCache

BLOCK = 1024


def test_concurrent_fetches_on_one_node_copy_each_block_once(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "store", block_size=BLOCK)
    weights = {"a": np.random.default_rng(0).normal(size=40 * BLOCK // 4).astype(np.float32)}
    blocks = store.put("m", 1, [weights], memory_mb=64).partitions[0].distinct_blocks()
    total = sum(blocks.values())
    # Paced so that an unlocked second fetch would start long before the first ends.
    bandwidth = total / 0.3
    results: list[tuple[list[str], int, int, float]] = []
    gate = threading.Barrier(3)

    def start() -> None:
        cache = NodeCache(tmp_path / "node")  # each actor opens the cache itself
        gate.wait()
        results.append(cache.fetch(store, blocks, bandwidth=bandwidth))

    threads = [threading.Thread(target=start) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    fetched = sorted(r[1] for r in results)
    assert fetched == [0, 0, total]  # one copied them all, the others found them cached
    assert sorted(r[2] for r in results) == [0, total, total]
    assert (tmp_path / "node" / FETCH_LOCK).is_file()
    assert NodeCache(tmp_path / "node").held() == set(blocks)  # the lock is not a block
