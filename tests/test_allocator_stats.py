"""ServerAllocator.stats(): decisions by source and reason, the RO latency histogram,
swaps and fallbacks, as plain JSON-serialisable data."""

from __future__ import annotations

import json
import threading
import time
from bisect import bisect_left
from pathlib import Path

import numpy as np
import numpy.typing as npt

from fastplace import Cluster
from fastplace.allocator import REASONS, RO_LATENCY_BOUNDS_NS, ServerAllocator
from fastplace.block_index import BlockIndex

Scores = npt.NDArray[np.float32]


class PreferLast:
    def scores(self, features: Scores) -> Scores:
        return np.arange(features.shape[0], dtype=np.float32)


class Slow(PreferLast):
    def scores(self, features: Scores) -> Scores:
        time.sleep(0.002)
        return super().scores(features)


class NaNScores:
    def scores(self, features: Scores) -> Scores:
        return np.full(features.shape[0], np.nan, dtype=np.float32)


def cluster_and_blocks(n: int = 20) -> tuple[Cluster, BlockIndex]:
    return Cluster(np.tile([8192, 4000], (n, 1))), BlockIndex(n, np.full(n, 1 << 30))


def test_a_new_allocator_has_counted_nothing() -> None:
    cluster, blocks = cluster_and_blocks()
    for optimizer in (None, PreferLast(), False):
        allocator = ServerAllocator(cluster, optimizer, blocks=blocks)  # type: ignore[arg-type]
        stats = allocator.stats()
        assert stats.decisions == 0 and stats.ro_latency_count == 0
        assert stats.ro_latency_cumulative == [0] * (len(RO_LATENCY_BOUNDS_NS) + 1)
        assert stats.swaps == 0 and stats.fallbacks == 0
        assert allocator.feedback() == []  # the construction's warm-up left no record
        assert cluster.n_containers == 0


def test_decisions_are_counted_by_source_and_reason() -> None:
    cluster, blocks = cluster_and_blocks(4)
    ro = ServerAllocator(cluster, PreferLast(), budget_us=1e9, blocks=blocks)
    for _ in range(5):
        assert ro.allocate([1024, 500]).source == "ro"
    assert ro.allocate([10**6, 1]).reason == "no_fit"
    nan = ServerAllocator(cluster, NaNScores(), budget_us=1e9, blocks=blocks)
    assert all(nan.allocate([64, 10]).reason == "ro_nan" for _ in range(3))
    greedy = ServerAllocator(cluster, False)
    assert all(greedy.allocate([64, 10]).reason == "no_ro" for _ in range(2))
    assert greedy.choose([64, 10])[4] == "no_ro"  # choose counts too, booking nothing

    stats = ro.stats()
    assert stats.decisions == 6
    assert stats.by_source == {"ro": 5, "greedy": 1}
    assert stats.by_reason == {r: (1 if r == "no_fit" else 0) for r in REASONS if r}
    assert stats.fallbacks == 0 and stats.ro_latency_count == 5 and stats.ro_backend == "python"
    assert ro.counts == {"ro": 5, "greedy": 0, "none": 1}
    assert nan.stats().by_reason["ro_nan"] == 3 and nan.stats().fallbacks == 3
    assert greedy.stats().by_reason["no_ro"] == 3
    assert greedy.stats().fallbacks == 0 and greedy.stats().ro_latency_count == 0
    assert greedy.stats().ro_backend == "none"
    # The counts agree with the exact feedback log.
    assert [r.reason for r in nan.feedback()] == ["ro_nan"] * 3


def test_the_latency_histogram_is_cumulative_with_the_documented_bounds() -> None:
    cluster, blocks = cluster_and_blocks(4)
    allocator = ServerAllocator(cluster, Slow(), budget_us=1e9, blocks=blocks)
    for _ in range(3):
        allocator.allocate([64, 10])
    stats = allocator.stats()
    assert stats.ro_latency_bounds_ns == list(RO_LATENCY_BOUNDS_NS)
    cumulative = stats.ro_latency_cumulative
    assert len(cumulative) == len(RO_LATENCY_BOUNDS_NS) + 1
    assert cumulative == sorted(cumulative) and cumulative[-1] == stats.ro_latency_count == 3
    # Every RO step slept 2 ms: none is in a bucket whose bound is 1 ms or less.
    assert cumulative[bisect_left(RO_LATENCY_BOUNDS_NS, 1_000_000)] == 0
    assert stats.ro_latency_sum_ns >= 3 * 2_000_000
    recorded = sorted(r.ro_latency_ns for r in allocator.feedback())
    assert stats.ro_latency_sum_ns == sum(recorded)
    for bound, count in zip(RO_LATENCY_BOUNDS_NS, cumulative, strict=False):
        assert count == sum(1 for ns in recorded if ns <= bound)


def test_late_answers_count_as_fallbacks() -> None:
    cluster, blocks = cluster_and_blocks(4)
    allocator = ServerAllocator(cluster, Slow(), budget_us=100, blocks=blocks)
    allocator.allocate([64, 10])
    stats = allocator.stats()
    assert stats.by_reason["ro_late"] == 1 and stats.fallbacks == 1
    assert stats.by_source == {"ro": 0, "greedy": 1}


class RacingCluster(Cluster):
    """Another thread books the chosen server's room between choice and booking."""

    def place(self, server: int, request: list[int]) -> int:  # type: ignore[override]
        super().place(server, [int(self.free[server][0]), 0])
        return super().place(server, request)


def test_a_raced_booking_is_counted_under_its_final_reason() -> None:
    cluster = RacingCluster(np.tile([8192, 4000], (3, 1)))
    allocator = ServerAllocator(cluster, PreferLast(), budget_us=1e9)
    decision = allocator.allocate([1024, 500])
    assert (decision.source, decision.reason) == ("greedy", "raced")
    stats = allocator.stats()
    assert stats.by_source == {"ro": 0, "greedy": 1}
    assert stats.by_reason["raced"] == 1 and stats.fallbacks == 1


def test_swaps_and_retrain_errors_are_counted() -> None:
    cluster, blocks = cluster_and_blocks()
    allocator = ServerAllocator(cluster, PreferLast(), blocks=blocks)
    allocator.swap_optimizer(NaNScores())
    assert allocator.retrain(lambda records: PreferLast())
    assert not allocator.retrain(lambda records: None)
    assert allocator.stats().swaps == 2

    def failing(records: object) -> None:
        raise RuntimeError("no data")

    stop = allocator.start_retraining(failing, every_s=0.005)  # type: ignore[arg-type]
    deadline = time.monotonic() + 10
    while allocator.stats().retrain_errors == 0 and time.monotonic() < deadline:
        time.sleep(0.005)
    stop.set()
    assert allocator.stats().retrain_errors >= 1
    assert allocator.stats().swaps == 2


def test_stats_are_plain_json() -> None:
    cluster, blocks = cluster_and_blocks()
    allocator = ServerAllocator(cluster, blocks=blocks)  # the shipped RO
    allocator.allocate([512, 289])
    data = allocator.stats().as_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["ro_backend"] == "native" and data["by_source"]["ro"] == 1


def test_concurrent_decisions_are_all_counted() -> None:
    cluster, blocks = cluster_and_blocks(200)
    allocator = ServerAllocator(cluster, PreferLast(), budget_us=1e9, blocks=blocks)
    per_thread = 300

    def work() -> None:
        for _ in range(per_thread):
            decision = allocator.allocate([64, 10])
            if decision.container >= 0:
                allocator.release(decision.container)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats = allocator.stats()
    # Under CPython's GIL each counter update is one uninterrupted item increment.
    assert stats.decisions == 4 * per_thread == stats.ro_latency_count
    assert sum(stats.by_source.values()) == stats.decisions


def test_reasons_are_documented_in_the_readme() -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    for reason in REASONS:
        if reason:
            assert f"`{reason}`" in readme, reason


def test_every_reason_the_allocator_gives_is_listed() -> None:
    import re

    import fastplace.allocator

    source = Path(fastplace.allocator.__file__).read_text()
    given = set(re.findall(r'"((?:ro|no)_[a-z]+|raced)"', source))
    assert given and given <= set(REASONS)
    assert all(REASONS[reason] for reason in REASONS)


def test_warm_up_on_another_thread_books_and_counts_nothing() -> None:
    cluster, blocks = cluster_and_blocks()
    allocator = ServerAllocator(cluster, blocks=blocks)  # the shipped RO, native
    before = cluster.snapshot()
    worker = threading.Thread(target=allocator.warm_up)
    worker.start()
    worker.join()
    ServerAllocator(cluster, False).warm_up()  # greedy only: nothing to warm
    assert cluster.snapshot() == before
    assert allocator.stats().decisions == 0 and allocator.feedback() == []
