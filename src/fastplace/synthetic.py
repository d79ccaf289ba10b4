"""Synthetic clusters and container request streams.

One description drives the CLI's default job, the tests (small sizes) and the
benchmarks (large sizes), so that all three exercise the same shapes of load.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from fastplace.cluster import ReplayOp
from fastplace.resources import cpu_for_memory

__all__ = [
    "LAMBDA_MEMORY_MB",
    "ChurnStream",
    "churn_stream",
    "container_requests",
    "synthetic_capacity",
]

#: Memory sizes (MB) users commonly pick for Lambda-style functions, and how often.
LAMBDA_MEMORY_MB = np.array([128, 256, 512, 1024, 1536, 2048, 3008, 4096, 6144, 10240])
_LAMBDA_WEIGHTS = np.array([0.16, 0.16, 0.16, 0.15, 0.09, 0.09, 0.07, 0.06, 0.04, 0.02])

#: A default server: 64 GiB of memory and 40 vCPUs (Lambda-style containers need
#: 37 vCPUs to use all 64 GiB, so memory, not CPU, is what runs out first).
SERVER_MEMORY_MB = 65536
SERVER_CPU_MILLIS = 40000


def synthetic_capacity(
    n_servers: int,
    *,
    memory_mb: int = SERVER_MEMORY_MB,
    cpu_millis: int = SERVER_CPU_MILLIS,
    heterogeneous: bool = False,
    seed: int = 0,
) -> npt.NDArray[np.int64]:
    """An (n_servers, 2) capacity matrix (memory_mb, cpu_millis).

    ``heterogeneous`` mixes half-, full- and double-size servers.
    """
    if n_servers < 0:
        raise ValueError(f"n_servers = {n_servers} must be >= 0")
    capacity = np.tile(np.array([memory_mb, cpu_millis], dtype=np.int64), (n_servers, 1))
    if heterogeneous:
        scale = np.random.default_rng(seed).choice([1, 2, 4], size=n_servers, p=[0.25, 0.5, 0.25])
        capacity = capacity * scale[:, None] // 2
    return capacity


def container_requests(n: int, *, seed: int = 0) -> npt.NDArray[np.int64]:
    """``n`` container requests (memory_mb, cpu_millis) with Lambda-style sizes."""
    rng = np.random.default_rng(seed)
    memory = rng.choice(LAMBDA_MEMORY_MB, size=n, p=_LAMBDA_WEIGHTS)
    return np.stack([memory, cpu_for_memory(memory)], axis=1).astype(np.int64)


@dataclass(frozen=True)
class ChurnStream:
    """A place/release event stream in :meth:`fastplace.Cluster.replay` form."""

    ops: npt.NDArray[np.uint8]
    requests: npt.NDArray[np.int64]
    refs: npt.NDArray[np.int64]

    @property
    def n_places(self) -> int:
        return int(np.count_nonzero(self.ops != ReplayOp.RELEASE_EVENT))

    def __len__(self) -> int:
        return int(self.ops.shape[0])


def churn_stream(
    capacity: npt.ArrayLike,
    n_places: int,
    *,
    load: float = 0.85,
    seed: int = 0,
    op: ReplayOp = ReplayOp.PLACE_FIRST_FIT,
) -> ChurnStream:
    """Fills the cluster to ``load`` of its memory, then keeps it there with churn.

    After the fill, every new placement follows the release of a uniformly chosen
    live one, so occupancy stays near ``load`` while servers fragment the way they do
    in a long-running cluster. ``n_places`` counts place events.
    """
    if not 0.0 < load <= 1.0:
        raise ValueError(f"load = {load} must be in (0, 1]")
    if n_places < 0:
        raise ValueError(f"n_places = {n_places} must be >= 0")
    total_memory = int(np.asarray(capacity)[:, 0].sum())
    rng = np.random.default_rng(seed)
    sizes = container_requests(n_places, seed=seed + 1)
    target = load * total_memory

    # Fill phase, vectorised: plain placements until the target is reached.
    memory = sizes[:, 0].tolist()
    n_fill = min(n_places, int(np.searchsorted(np.cumsum(sizes[:, 0]), target)) + 1)
    ops: list[int] = [int(op)] * n_fill
    refs: list[int] = [-1] * n_fill
    size_of_event: list[int] = list(range(n_fill))  # row of `sizes`, -1 for releases
    live: list[int] = list(range(n_fill))  # event indices of live placements
    held = sum(memory[:n_fill])
    for i in range(n_fill, n_places):
        if held >= target and live:
            # Swap-remove a random live placement: O(1), and uniform.
            k = int(rng.integers(len(live)))
            live[k], live[-1] = live[-1], live[k]
            victim = live.pop()
            held -= memory[size_of_event[victim]]
            ops.append(ReplayOp.RELEASE_EVENT)
            refs.append(victim)
            size_of_event.append(-1)
        live.append(len(ops))
        held += memory[i]
        ops.append(op)
        refs.append(-1)
        size_of_event.append(i)
    rows = np.asarray(size_of_event, dtype=np.int64)
    requests = np.where((rows >= 0)[:, None], sizes[np.maximum(rows, 0)], 0)
    return ChurnStream(
        ops=np.asarray(ops, dtype=np.uint8),
        requests=np.ascontiguousarray(requests, dtype=np.int64),
        refs=np.asarray(refs, dtype=np.int64),
    )
