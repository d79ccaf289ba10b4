"""Speed of the block-locality index: "bytes of this version already on each server".

Run: PYTHONPATH=src python3 -m pytest bench/bench_block_index.py --benchmark-enable \
        --benchmark-only --benchmark-json=build/bench-block-index.json
     python3 bench/summarise.py build/bench-block-index.json

Main workload ("chain"): 10,000 servers with 40 GiB block caches; a chain of 200
versions of a 1,000-block model (blocks of 4-12 MiB, ~8 GiB per version), each sharing
70-90% of its blocks with its predecessor and cold-started on 20 random servers. The
query is version 201, derived the same way and not yet placed anywhere: the question
the "similarity" policy asks before its first cold start.

Stress workload ("unstructured"): 30 variants of one base model, each keeping an
independent random 50-95% of the base blocks, each cold-started on 60 servers. Every
block then has its own pattern of variants, so a version's blocks fall into hundreds of
distinct holder sets of ~800 servers: the bad case for the index's shared holder sets
(real fine-tunes change whole tensors, i.e. runs of blocks, and stay near "chain").

Every benchmark asserts its answer against a numpy computation (CI runs this file with
--benchmark-disable, so the checks run there too). The numpy baselines are given their
dense servers x query-blocks matrix or holder lists ready-made; building them is not
timed.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from fastplace import BlockIndex

N_SERVERS = 10_000
BLOCKS_PER_VERSION = 1_000
CACHE_BYTES = 40 << 30
MiB = 1 << 20
SCENARIOS = ("chain", "unstructured")


@dataclass(frozen=True)
class Workload:
    snapshot: bytes
    query: npt.NDArray[np.int32]  # block ids of the version asked about
    query_sizes: npt.NDArray[np.int64]
    dense: npt.NDArray[np.bool_]  # servers x query blocks: "server caches block"
    holder_lists: list[npt.NDArray[np.int64]]  # per query block, its holders


def block_sizes(hashes: npt.NDArray[np.uint64]) -> npt.NDArray[np.int64]:
    """4-12 MiB, a function of the hash so that a block always has the same size."""
    return (4 * MiB + (hashes % np.uint64(8 * MiB))).astype(np.int64)


def replaced(
    rng: np.random.Generator, hashes: npt.NDArray[np.uint64], keep: npt.NDArray[np.bool_]
) -> npt.NDArray[np.uint64]:
    """``hashes`` with the blocks not kept replaced by new content."""
    out = hashes.copy()
    out[~keep] = rng.integers(0, 2**64, size=int((~keep).sum()), dtype=np.uint64)
    return out


def versions(scenario: str, rng: np.random.Generator) -> tuple[list[Any], Any, int]:
    """(the versions to cold-start, the query version, servers per version)."""
    base = rng.integers(0, 2**64, size=BLOCKS_PER_VERSION, dtype=np.uint64)
    if scenario == "chain":
        chain = [base]
        for _ in range(200):
            chain.append(replaced(rng, chain[-1], rng.random(base.size) >= rng.uniform(0.1, 0.3)))
        return chain[:-1], chain[-1], 20
    variants = [
        replaced(rng, base, rng.random(base.size) < rng.uniform(0.5, 0.95)) for _ in range(31)
    ]
    return variants[:-1], variants[-1], 60


@functools.cache
def workload(scenario: str) -> Workload:
    rng = np.random.default_rng(2024)
    index = BlockIndex(N_SERVERS, CACHE_BYTES)
    fetched, query_hashes, per_version = versions(scenario, rng)
    for hashes in fetched:
        ids = index.intern(hashes, block_sizes(hashes))
        for server in rng.choice(N_SERVERS, size=per_version, replace=False):
            index.fetch(server, ids)
    query = index.intern(query_hashes, block_sizes(query_hashes))
    holder_lists = [index.holders(block) for block in query]
    dense = np.zeros((N_SERVERS, query.size), dtype=bool)
    for column, holders in enumerate(holder_lists):
        dense[holders, column] = True
    return Workload(index.snapshot(), query, block_sizes(query_hashes), dense, holder_lists)


def expected_bytes(work: Workload) -> npt.NDArray[np.int64]:
    return work.dense.astype(np.int64) @ work.query_sizes


def group(scenario: str) -> str:
    return "block locality" if scenario == "chain" else f"block locality, {scenario} stress"


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_cached_bytes_core(benchmark: Any, scenario: str) -> None:
    work = workload(scenario)
    index = BlockIndex.restore(work.snapshot)
    benchmark.group = group(scenario)
    benchmark.extra_info.update(
        calls=1,
        baseline=False,
        holders=int(sum(h.size for h in work.holder_lists)),
        distinct_holder_sets=len({h.tobytes() for h in work.holder_lists}),
    )
    result = benchmark(index.cached_bytes, work.query)
    assert (result == expected_bytes(work)).all()
    assert (result > 0).sum() > 100  # the query really overlaps earlier versions


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_cached_bytes_numpy_dense_matrix(benchmark: Any, scenario: str) -> None:
    work = workload(scenario)
    sizes = work.query_sizes.astype(np.float64)  # exact: every sum stays below 2**53
    dense = work.dense

    def dense_matmul() -> npt.NDArray[np.int64]:
        return (dense @ sizes).astype(np.int64)

    benchmark.group = group(scenario)
    benchmark.extra_info.update(calls=1, baseline=True)
    assert (benchmark(dense_matmul) == expected_bytes(work)).all()


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_cached_bytes_numpy_holder_lists(benchmark: Any, scenario: str) -> None:
    """Per-block holder lists scattered with np.bincount: the O(total holders) method."""
    work = workload(scenario)
    servers = np.concatenate(work.holder_lists)
    weights = np.repeat(work.query_sizes, [h.size for h in work.holder_lists]).astype(np.float64)

    def scatter() -> npt.NDArray[np.int64]:
        return np.bincount(servers, weights=weights, minlength=N_SERVERS).astype(np.int64)

    benchmark.group = group(scenario)
    benchmark.extra_info.update(calls=1, baseline=False)
    assert (benchmark(scatter) == expected_bytes(work)).all()


@pytest.mark.parametrize("n_candidates", [10, 100])
def test_cached_bytes_on_candidates(benchmark: Any, n_candidates: int) -> None:
    work = workload("chain")
    index = BlockIndex.restore(work.snapshot)
    candidates = np.random.default_rng(n_candidates).choice(N_SERVERS, n_candidates)
    benchmark.group = f"block locality, {n_candidates} feasible servers only"
    benchmark.extra_info.update(calls=1, baseline=False)
    result = benchmark(index.cached_bytes_on, candidates, work.query)
    assert (result == expected_bytes(work)[candidates]).all()


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_fetch_and_evict_cold_start(benchmark: Any, scenario: str) -> None:
    """A cold start of the query version on an empty server, then dropping that cache
    again, so that every round starts from the same state."""
    work = workload(scenario)
    index = BlockIndex.restore(work.snapshot)
    empty = int(np.flatnonzero(index.used_bytes() == 0)[0])

    def cold_start() -> int:
        downloaded = index.fetch(empty, work.query)
        index.evict_server(empty)
        return downloaded

    benchmark.group = f"block fetch + evict_server of a 1,000-block version, {scenario}"
    benchmark.extra_info.update(calls=1, baseline=False)
    assert benchmark(cold_start) == int(work.query_sizes.sum())
    assert index.snapshot() == work.snapshot
