"""ServerAllocator latency at 10,000 servers, and why "in parallel" is sequential.

Run: PYTHONPATH=src python3 -m pytest bench/bench_allocator.py --benchmark-enable \
        --benchmark-only --benchmark-json=build/bench-allocator.json
     python3 bench/summarise.py build/bench-allocator.json

Each benchmark allocates and releases CALLS containers on a cluster held at 85% load
and records the allocator's own per-decision latency (Decision.latency_ns) percentiles
in extra_info (p50_ns, p99_ns), which bench/RESULTS.md quotes. The hybrid allocator
runs the shipped model in the core (_core.ro_decide); test_native_decision times that
call alone, with and without the scores.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from fastplace import BlockIndex, Cluster
from fastplace.allocator import ServerAllocator
from fastplace.synthetic import churn_stream, container_requests, synthetic_capacity

CALLS = 2_000
N_SERVERS = 10_000


def loaded_cluster() -> Cluster:
    capacity = synthetic_capacity(N_SERVERS, seed=4)
    fill = int(N_SERVERS * 0.85 * 65536 / 1600)
    stream = churn_stream(capacity, fill + 20_000, seed=4)
    cluster = Cluster(capacity)
    cluster.replay(stream.ops, stream.requests, stream.refs)
    return cluster


def run(allocator: ServerAllocator, requests: list[list[int]]) -> npt.NDArray[np.int64]:
    latencies = np.empty(len(requests), dtype=np.int64)
    for i, request in enumerate(requests):
        decision = allocator.allocate(request)
        latencies[i] = decision.latency_ns
        if decision.container >= 0:
            allocator.release(decision.container)
    return latencies


def record(benchmark: Any, latencies: npt.NDArray[np.int64], baseline: bool) -> None:
    benchmark.extra_info.update(
        calls=CALLS,
        baseline=baseline,
        p50_ns=float(np.percentile(latencies, 50)),
        p99_ns=float(np.percentile(latencies, 99)),
    )


def test_greedy_only(benchmark: Any) -> None:
    cluster = loaded_cluster()
    allocator = ServerAllocator(cluster, False)
    requests = container_requests(CALLS, seed=9).tolist()
    benchmark.group = "allocate + release, 10,000 servers at 85% load"
    latencies = benchmark.pedantic(run, args=(allocator, requests), rounds=3)
    record(benchmark, latencies, baseline=True)
    assert allocator.counts["ro"] == 0
    assert allocator.counts["greedy"] > 0 and allocator.counts["greedy"] % CALLS == 0
    cluster.validate()


def test_hybrid_with_the_shipped_model(benchmark: Any) -> None:
    pytest.importorskip("torch")
    from fastplace.optimizer.model import ResourceOptimizer

    cluster = loaded_cluster()
    blocks = BlockIndex(N_SERVERS, np.full(N_SERVERS, 1 << 34))
    allocator = ServerAllocator(cluster, ResourceOptimizer.default(), budget_us=1e9, blocks=blocks)
    requests = container_requests(CALLS, seed=9).tolist()
    benchmark.group = "allocate + release, 10,000 servers at 85% load"
    latencies = benchmark.pedantic(run, args=(allocator, requests), rounds=3)
    record(benchmark, latencies, baseline=False)
    assert allocator.counts["ro"] > 0
    cluster.validate()


# ---- the native decision alone (what the hybrid allocator pays for the RO) -------------


@pytest.mark.parametrize("scored", [False, True], ids=["features", "features+scores"])
def test_native_decision(benchmark: Any, scored: bool) -> None:
    """_core.ro_decide at 10,000 servers, K = 64: candidates and features (baseline),
    then with the shipped model's scores; the difference is the scoring per decision."""
    from fastplace._core import ro_decide
    from fastplace.optimizer.native import NativeScorer

    cluster = loaded_cluster()
    core = NativeScorer.from_npz().core if scored else None
    requests = container_requests(CALLS, seed=9).tolist()
    no_blocks = np.zeros(0, dtype=np.int64)

    def decide_all() -> npt.NDArray[np.int64]:
        latencies = np.empty(len(requests), dtype=np.int64)
        for i, request in enumerate(requests):
            began = time.perf_counter_ns()
            ro_decide(cluster, None, core, request, no_blocks, 64)
            latencies[i] = time.perf_counter_ns() - began
        return latencies

    benchmark.group = "RO decision in C++ (ro_decide), 10,000 servers, K = 64"
    latencies = benchmark.pedantic(decide_all, rounds=3)
    record(benchmark, latencies, baseline=not scored)


# ---- a thread for the RO versus sequential-with-deadline ------------------------------


class ThreadedRO:
    """The RO answering on its own thread: the handoff the sequential design avoids."""

    def __init__(self, answer: Callable[[list[int]], int]) -> None:
        self.requests: queue.SimpleQueue[list[int] | None] = queue.SimpleQueue()
        self.answers: queue.SimpleQueue[int] = queue.SimpleQueue()
        self.answer = answer
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self) -> None:
        while (request := self.requests.get()) is not None:
            self.answers.put(self.answer(request))

    def ask(self, request: list[int], budget_s: float) -> int:
        self.requests.put(request)
        try:
            return self.answers.get(timeout=budget_s)
        except queue.Empty:
            return -1

    def close(self) -> None:
        self.requests.put(None)
        self.thread.join()


@pytest.mark.parametrize("mode", ["sequential", "thread"])
def test_ro_handoff(benchmark: Any, mode: str) -> None:
    cluster = loaded_cluster()
    requests = container_requests(CALLS, seed=9).tolist()

    def ro_answer(request: list[int]) -> int:
        # A stand-in that answers in ~0.1 us, so the figures isolate the handoff.
        server: int = cluster.first_fit(request)
        return server

    threaded = ThreadedRO(ro_answer) if mode == "thread" else None

    def decide_all() -> npt.NDArray[np.int64]:
        latencies = np.empty(len(requests), dtype=np.int64)
        for i, request in enumerate(requests):
            began = time.perf_counter_ns()
            greedy = cluster.first_fit(request)
            if threaded is None:
                server = ro_answer(request)
            else:
                server = threaded.ask(request, budget_s=1.0)
            latencies[i] = time.perf_counter_ns() - began
            assert server >= 0 and greedy >= 0
        return latencies

    benchmark.group = "asking the RO: same thread vs a worker thread"
    latencies = benchmark.pedantic(decide_all, rounds=3)
    record(benchmark, latencies, baseline=mode == "sequential")
    if threaded is not None:
        threaded.close()
