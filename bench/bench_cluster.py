"""Speed of the native cluster core, side by side with numpy and numba baselines.

Run: PYTHONPATH=src python3 -m pytest bench/bench_cluster.py --benchmark-enable \
        --benchmark-only --benchmark-json=build/bench-cluster.json
     python3 bench/summarise.py build/bench-cluster.json

Every benchmark also asserts its answers (CI runs this file with --benchmark-disable,
so the checks run there too). Per-call figures come from loops of CALLS calls: the
summary divides by ``extra_info["calls"]`` and reports ratios against the baseline of
the same group, measured in the same run.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from fastplace import Cluster
from fastplace.synthetic import churn_stream, container_requests, synthetic_capacity

CALLS = 1_000
SIZES = (1_000, 10_000, 100_000)
Matrix = npt.NDArray[np.int64]


@functools.cache
def churned(n_servers: int) -> tuple[bytes, Matrix]:
    """Snapshot of a cluster held at 85% memory load by first-fit churn, and its capacity."""
    capacity = synthetic_capacity(n_servers, seed=n_servers)
    fill = int(n_servers * 0.85 * 65536 / 1600)  # about the placements a fill takes
    stream = churn_stream(capacity, fill + max(20_000, fill // 5), seed=n_servers)
    cluster = Cluster(capacity)
    cluster.replay(stream.ops, stream.requests, stream.refs)
    return cluster.snapshot(), capacity


@functools.cache
def last_server_only(n_servers: int) -> tuple[bytes, list[int]]:
    """A cluster where every server but the last has 512 MB free, and a 1 GiB request."""
    capacity = synthetic_capacity(n_servers)
    cluster = Cluster(capacity)
    filler = np.zeros((n_servers - 1, 2), dtype=np.int64)
    filler[:, 0] = capacity[0, 0] - 512
    ops = np.zeros(n_servers - 1, dtype=np.uint8)
    result = cluster.replay(ops, filler, None)
    assert (result.servers == np.arange(n_servers - 1)).all()
    return cluster.snapshot(), [1024, 579]


def request_lists(n: int = CALLS, seed: int = 7) -> list[list[int]]:
    return container_requests(n, seed=seed).tolist()


# ---- baselines ----------------------------------------------------------------------


def numpy_first_fit(free: Matrix, request: list[int]) -> int:
    """The obvious vectorised first fit: a boolean mask and argmax."""
    mask = (free >= request).all(axis=1)
    index = int(mask.argmax())
    return index if mask[index] else -1


@functools.cache
def numba_first_fit() -> Callable[[Matrix, Matrix], int]:
    numba = pytest.importorskip("numba")

    @numba.njit(cache=True)  # type: ignore[misc]
    def first_fit(free: Matrix, request: Matrix) -> int:
        for server in range(free.shape[0]):
            fits = True
            for d in range(free.shape[1]):
                if free[server, d] < request[d]:
                    fits = False
                    break
            if fits:
                return server
        return -1

    return first_fit  # type: ignore[no-any-return]


def run_calls(function: Callable[[Any], int], requests: list[Any]) -> list[int]:
    return [function(request) for request in requests]


IMPLEMENTATIONS = ("core", "numpy", "numba")


def first_fit_function(impl: str, cluster: Cluster) -> tuple[Callable[[Any], int], list[Any]]:
    """The callable under test and the request objects to feed it."""
    requests = request_lists()
    if impl == "core":
        return cluster.first_fit, requests
    free = cluster.free_copy()
    if impl == "numpy":
        return functools.partial(numpy_first_fit, free), requests
    kernel = numba_first_fit()
    arrays = [np.asarray(r, dtype=np.int64) for r in requests]
    kernel(free, arrays[0])  # compile outside the timing
    return functools.partial(kernel, free), arrays


# ---- first_fit ----------------------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("n_servers", SIZES)
def test_first_fit_under_churn(benchmark: Any, n_servers: int, impl: str) -> None:
    snapshot, _ = churned(n_servers)
    cluster = Cluster.restore(snapshot)
    function, requests = first_fit_function(impl, cluster)
    benchmark.group = f"first_fit, {n_servers:,} servers at 85% load"
    benchmark.extra_info.update(calls=len(requests), baseline=impl == "numpy")
    answers = benchmark(run_calls, function, requests)
    expected = [numpy_first_fit(cluster.free_copy(), r) for r in request_lists()]
    assert answers == expected


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("n_servers", (10_000, 100_000))
def test_first_fit_worst_case(benchmark: Any, n_servers: int, impl: str) -> None:
    snapshot, request = last_server_only(n_servers)
    cluster = Cluster.restore(snapshot)
    function, _ = first_fit_function(impl, cluster)
    probe: Any = np.asarray(request, dtype=np.int64) if impl == "numba" else request
    requests = [probe] * 100
    benchmark.group = f"first_fit worst case (only the last of {n_servers:,} fits)"
    benchmark.extra_info.update(calls=len(requests), baseline=impl == "numpy")
    answers = benchmark(run_calls, function, requests)
    assert answers == [n_servers - 1] * len(requests)


# ---- mutation -----------------------------------------------------------------------


def test_place_release_pair(benchmark: Any) -> None:
    snapshot, _ = churned(10_000)
    cluster = Cluster.restore(snapshot)
    requests = request_lists()
    servers = [cluster.first_fit(r) for r in requests]
    place, release = cluster.place, cluster.release

    def pairs() -> None:
        for server, request in zip(servers, requests, strict=True):
            release(place(server, request))

    benchmark.group = "place + release pair, 10,000 servers"
    benchmark.extra_info.update(calls=len(requests), baseline=False)
    before = cluster.snapshot()
    benchmark(pairs)
    assert cluster.free_copy().tolist() == Cluster.restore(before).free_copy().tolist()
    cluster.validate()


def test_place_with_release_pair(benchmark: Any) -> None:
    snapshot, _ = churned(10_000)
    cluster = Cluster.restore(snapshot)
    requests = request_lists()
    place_with, release = cluster.place_with, cluster.release

    def pairs() -> int:
        placed = 0
        for request in requests:
            container, server = place_with(request)
            if server >= 0:
                release(container)
                placed += 1
        return placed

    benchmark.group = "place + release pair, 10,000 servers"
    benchmark.extra_info.update(calls=len(requests), baseline=False)
    before = cluster.free_copy()
    assert benchmark(pairs) == len(requests)
    assert (cluster.free_copy() == before).all()


# ---- feasible -----------------------------------------------------------------------


@pytest.mark.parametrize("impl", ("core", "numpy"))
def test_feasible(benchmark: Any, impl: str) -> None:
    snapshot, _ = churned(10_000)
    cluster = Cluster.restore(snapshot)
    requests = request_lists(100)
    free = cluster.free_copy()

    def numpy_feasible(request: list[int]) -> npt.NDArray[np.intp]:
        return np.flatnonzero((free >= request).all(axis=1))

    function = cluster.feasible if impl == "core" else numpy_feasible
    benchmark.group = "feasible (all servers that fit), 10,000 servers at 85% load"
    benchmark.extra_info.update(calls=len(requests), baseline=impl == "numpy")
    answers = benchmark(lambda: [function(r) for r in requests])
    for request, answer in zip(requests, answers, strict=True):
        assert answer.tolist() == numpy_feasible(request).tolist()


# ---- batch replay -------------------------------------------------------------------


@pytest.mark.parametrize("n_servers", (1_000, 10_000))
def test_replay_batch(benchmark: Any, n_servers: int) -> None:
    capacity = synthetic_capacity(n_servers)
    fill = int(n_servers * 0.85 * 65536 / 1600)
    stream = churn_stream(capacity, 2 * fill + 50_000, seed=1)

    def fresh() -> tuple[tuple[Cluster, Any, Any, Any], dict[str, Any]]:
        return (Cluster(capacity), stream.ops, stream.requests, stream.refs), {}

    def replay(cluster: Cluster, ops: Any, requests: Any, refs: Any) -> Any:
        return cluster.replay(ops, requests, refs)

    benchmark.group = f"replay (batch), {n_servers:,} servers, place/release churn"
    benchmark.extra_info.update(calls=stream.n_places, baseline=False, events=len(stream))
    result = benchmark.pedantic(replay, setup=fresh, rounds=3)
    assert result.placed + result.unplaced == stream.n_places
    assert result.released > 0
