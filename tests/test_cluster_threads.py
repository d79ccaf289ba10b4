"""Concurrent use of one Cluster from several threads.

Every operation locks the native state, so whatever the interleaving: validate()
passes, nothing is ever over-booked, and the free matrix is exactly the capacity
minus the containers the threads still hold. Long native calls (replay, validate,
feasible on large clusters, snapshot) release the GIL, so other threads keep running
Python meanwhile.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable

import numpy as np
import pytest

from fastplace import Cluster, ReplayOp
from run_threads import run_threads

N_THREADS = 4
JOIN_TIMEOUT = 60.0


@pytest.fixture(autouse=True)
def fast_thread_switching():
    """Switch threads every 10 us (instead of 5 ms) to get many more interleavings."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(old)


def check_holdings(cluster: Cluster, held: list[dict[int, tuple[int, list[int]]]]) -> None:
    """free == capacity - sum of all containers the threads hold, never negative."""
    cluster.validate()
    expected = cluster.capacity.copy()
    counts = np.zeros(cluster.n_servers, dtype=np.int64)
    total = 0
    for holding in held:
        for container, (server, amounts) in holding.items():
            expected[server] -= amounts
            counts[server] += 1
            total += 1
            got_server, got_amounts = cluster.container(container)
            assert got_server == server
            assert got_amounts.tolist() == amounts
    free = cluster.free
    assert (free >= 0).all()
    assert free.tolist() == expected.tolist()
    assert cluster.n_containers == total
    assert cluster.container_counts().tolist() == counts.tolist()
    assert cluster.n_active_servers == int((counts > 0).sum())


@pytest.mark.parametrize("n_servers", [64, 4097])
def test_concurrent_placements_and_releases(n_servers):
    """4 threads: place_with, place_gang, release, and first_fit + place races (which may
    lose to another thread: place then raises ValueError and books nothing)."""
    rng = np.random.default_rng(n_servers)
    cluster = Cluster(rng.integers(500, 4000, size=(n_servers, 2)))
    held: list[dict[int, tuple[int, list[int]]]] = [{} for _ in range(N_THREADS)]
    lost_races = [0] * N_THREADS
    iterations = 1500

    def worker(k: int) -> Callable[[], None]:
        local = np.random.default_rng(1000 + k)
        mine = held[k]

        def body():
            for _ in range(iterations):
                request = local.integers(0, 1500, size=2).tolist()
                roll = local.random()
                if roll < 0.3:
                    policy = "first_fit" if local.random() < 0.5 else "best_fit"
                    container, server = cluster.place_with(request, policy)
                    if container >= 0:
                        mine[container] = (server, request)
                elif roll < 0.45:
                    gang = local.integers(0, 1500, size=(int(local.integers(1, 4)), 2)).tolist()
                    try:
                        placed = cluster.place_gang(gang, "best_fit")
                    except ValueError:
                        continue  # did not fit as a whole: nothing was booked
                    for (container, server), part in zip(placed, gang, strict=True):
                        mine[container] = (server, part)
                elif roll < 0.7:
                    server = cluster.first_fit(request)
                    if server < 0:
                        continue
                    if local.random() < 0.5:
                        time.sleep(0)  # yields the GIL: invites another thread in
                    try:
                        mine[cluster.place(server, request)] = (server, request)
                    except ValueError:
                        lost_races[k] += 1  # another thread took the capacity first
                elif mine:
                    container = list(mine)[int(local.integers(len(mine)))]
                    cluster.release(container)
                    del mine[container]

        return body

    run_threads([worker(k) for k in range(N_THREADS)])
    check_holdings(cluster, held)
    # and everything can still be released
    for holding in held:
        for container in holding:
            cluster.release(container)
    assert cluster.free.tolist() == cluster.capacity.tolist()
    cluster.validate()


def test_readers_see_consistent_states_while_writers_work():
    """Snapshots, validate() and large feasible() scans (GIL released) run while other
    threads mutate; every snapshot restores to a valid cluster."""
    rng = np.random.default_rng(5)
    n = 4200  # large enough for feasible() to release the GIL
    cluster = Cluster(rng.integers(100, 1000, size=(n, 2)))
    held: list[dict[int, tuple[int, list[int]]]] = [{} for _ in range(N_THREADS - 1)]
    stop = threading.Event()

    def writer(k: int) -> Callable[[], None]:
        local = np.random.default_rng(k)
        mine = held[k]

        def body():
            for _ in range(800):
                request = local.integers(0, 600, size=2).tolist()
                container, server = cluster.place_with(request, "first_fit")
                if container >= 0:
                    mine[container] = (server, request)
                if len(mine) > 50:
                    container = next(iter(mine))
                    cluster.release(container)
                    del mine[container]
                if local.random() < 0.05:
                    server = int(local.integers(n))
                    cluster.cordon(server)
                    cluster.uncordon(server)

        return body

    snapshots = []

    def reader():
        while not stop.is_set():
            snapshots.append(cluster.snapshot())
            cluster.validate()
            found = cluster.feasible([500, 500])
            assert (np.diff(found) > 0).all()
            assert found.size == 0 or (0 <= found[0] and found[-1] < n)

    def writers_then_stop():
        try:
            run_threads([writer(k) for k in range(N_THREADS - 1)])
        finally:
            stop.set()

    run_threads([writers_then_stop, reader])
    check_holdings(cluster, held)
    assert snapshots
    for data in snapshots[:: max(1, len(snapshots) // 10)]:
        Cluster.restore(data).validate()


def make_stream(m: int, dims: int, seed: int):
    """Placements, each released about 500 events later (so the cluster stays busy)."""
    rng = np.random.default_rng(seed)
    ops = np.empty(m, dtype=np.uint8)
    refs = np.full(m, -1, dtype=np.int64)
    pending: list[int] = []
    for i in range(m):
        if len(pending) > 500 and i % 2:
            ops[i] = ReplayOp.RELEASE_EVENT
            refs[i] = pending.pop(0)
        else:
            ops[i] = ReplayOp.PLACE_BEST_FIT if i % 3 == 0 else ReplayOp.PLACE_FIRST_FIT
            pending.append(i)
    requests = rng.integers(0, 300, size=(m, dims))
    return ops, requests, refs


def test_large_replay_while_other_threads_query():
    """A long replay in one thread while others call first_fit / feasible / free: the
    replay's outcome is the same as on an untouched copy (the readers change nothing)."""
    rng = np.random.default_rng(11)
    cluster = Cluster(rng.integers(500, 2000, size=(5000, 2)))
    copy = Cluster.restore(cluster.snapshot())
    ops, requests, refs = make_stream(30_000, 2, 12)
    results = []
    done = threading.Event()
    answers = [0] * (N_THREADS - 1)

    def replayer():
        try:
            results.append(cluster.replay(ops, requests, refs))
        finally:
            done.set()

    def querier(k: int) -> Callable[[], None]:
        local = np.random.default_rng(k)

        def body():
            while not done.is_set():
                request = local.integers(0, 2000, size=2).tolist()
                server = cluster.first_fit(request)
                assert -1 <= server < 5000
                found = cluster.feasible(request)
                assert (np.diff(found) > 0).all()
                assert (cluster.free >= 0).all()
                answers[k] += 1

        return body

    run_threads([replayer] + [querier(k) for k in range(N_THREADS - 1)])
    expected = copy.replay(ops, requests, refs)
    assert results[0].servers.tolist() == expected.servers.tolist()
    assert results[0].containers.tolist() == expected.containers.tolist()
    assert cluster.snapshot() == copy.snapshot()
    cluster.validate()
    assert sum(answers) > 0


def progress_during(call: Callable[[], object]) -> tuple[float, float, list[float]]:
    """Runs call in a thread while this thread spins in Python, noting the time every
    1000 iterations; returns the call's start and end times and the noted times."""
    ticks: list[float] = []
    window: list[float] = []
    done = threading.Event()
    started = threading.Event()

    def target():
        started.set()
        window.append(time.perf_counter())
        call()
        window.append(time.perf_counter())
        done.set()

    thread = threading.Thread(target=target)
    thread.start()
    started.wait()
    count = 0
    while not done.is_set():
        count += 1
        if count % 1000 == 0:
            ticks.append(time.perf_counter())
    thread.join(JOIN_TIMEOUT)
    return window[0], window[1], ticks


@pytest.mark.parametrize("what", ["replay", "validate"])
def test_long_native_calls_release_the_gil(what):
    rng = np.random.default_rng(3)
    if what == "replay":
        cluster = Cluster(rng.integers(500, 2000, size=(5000, 2)))
        # The free tree made replay fast; several calls keep the window measurable.
        ops, requests, refs = make_stream(30_000, 2, 4)

        def call():
            for _ in range(5):
                cluster.replay(ops, requests, refs)
    else:
        cluster = Cluster(rng.integers(500, 2000, size=(400_000, 2)))

        def call():
            for _ in range(3):
                cluster.validate()

    start, end, ticks = progress_during(call)
    duration = end - start
    assert duration > 0.02, "the call was too quick to tell; make it bigger"
    # While the call runs in C++, this thread must keep running Python: it must have
    # noted times all through the middle of the call, not just around its ends.
    middle = [t for t in ticks if start + 0.2 * duration < t < end - 0.2 * duration]
    assert len(middle) >= 3, f"{len(middle)} ticks during a {duration:.3f} s {what}"
