"""Synthetic clusters and container request streams.

One description drives the CLI's default job, the tests (small sizes) and the
benchmarks (large sizes), so that all three exercise the same shapes of load.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from fastplace._checks import integer
from fastplace.cluster import Cluster, ReplayOp
from fastplace.resources import as_amount, cpu_for_memory

__all__ = [
    "CLUSTER_STATES",
    "LAMBDA_MEMORY_MB",
    "ChurnStream",
    "churn_stream",
    "cluster_in_state",
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
    n_servers = integer(n_servers, "n_servers", minimum=0)
    memory_mb = as_amount(memory_mb, "memory_mb")
    cpu_millis = as_amount(cpu_millis, "cpu_millis")
    seed = integer(seed, "seed", minimum=0)
    capacity = np.tile(np.array([memory_mb, cpu_millis], dtype=np.int64), (n_servers, 1))
    if heterogeneous:
        scale = np.random.default_rng(seed).choice([1, 2, 4], size=n_servers, p=[0.25, 0.5, 0.25])
        capacity = capacity * scale[:, None] // 2
    return capacity


def container_requests(n: int, *, seed: int = 0) -> npt.NDArray[np.int64]:
    """``n`` container requests (memory_mb, cpu_millis) with Lambda-style sizes."""
    n = integer(n, "n", minimum=0)
    rng = np.random.default_rng(integer(seed, "seed", minimum=0))
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
    n_places = integer(n_places, "n_places", minimum=0)
    seed = integer(seed, "seed", minimum=0)
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


#: The cluster states the scale benchmarks and tests measure every query in.
CLUSTER_STATES = (
    "fill_front",
    "fill_front_mixed",
    "churned",
    "full_but_last",
    "third_cordoned",
)

#: The small Lambda sizes a filling cluster is probed with (and filled with).
FILL_MEMORY_MB = np.array([512, 1024, 2048, 3008, 4096])
_SMALL_SERVER = (16384, 8000)  # 16 GiB, 8 vCPUs: CPU runs out before memory


def _lambda_requests(memory: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    return np.stack([memory, cpu_for_memory(memory)], axis=1).astype(np.int64)


def _fill(cluster: Cluster, load: float, rng: np.random.Generator) -> npt.NDArray[np.int64]:
    """First-fit placements of FILL_MEMORY_MB sizes, no releases, until ``load`` of the
    memory is booked; returns the container ids placed."""
    target = load * float(cluster.capacity[:, 0].sum())
    memory = rng.choice(FILL_MEMORY_MB, size=int(target / FILL_MEMORY_MB.min()) + 1)
    n = int(np.searchsorted(np.cumsum(memory), target))
    result = cluster.replay(np.zeros(n, dtype=np.uint8), _lambda_requests(memory[:n]), None)
    return result.containers[result.containers >= 0]


def cluster_in_state(state: str, n_servers: int, *, seed: int = 0) -> Cluster:
    """A cluster of ``n_servers`` in one of :data:`CLUSTER_STATES`.

    * ``fill_front``: identical servers (16 GiB, 8 vCPUs) filled by first fit, with no
      releases, to 60% of memory: every server before the fill front keeps a sliver
      just below the small sizes.
    * ``fill_front_mixed``: the same with two server sizes (half are twice as big).
    * ``churned``: filled to 85%, then a fifth of the containers replaced by new ones
      of other sizes, released and placed in turns (fragmented, as a long-running
      cluster is).
    * ``full_but_last``: every server but the last has 512 MB free (the small server);
      only the last fits 1 GiB.
    * ``third_cordoned``: ``churned``, with a random third of the servers cordoned.
    """
    if state not in CLUSTER_STATES:
        raise ValueError(f"state = {state!r} is not one of {', '.join(CLUSTER_STATES)}")
    n_servers = integer(n_servers, "n_servers", minimum=1)
    rng = np.random.default_rng(integer(seed, "seed", minimum=0))
    capacity = np.tile(np.array(_SMALL_SERVER, dtype=np.int64), (n_servers, 1))
    if state == "fill_front_mixed":
        capacity[rng.random(n_servers) < 0.5] *= 2
    cluster = Cluster(capacity)
    if state in ("fill_front", "fill_front_mixed"):
        _fill(cluster, 0.6, rng)
    elif state == "full_but_last":
        filler = np.zeros((n_servers - 1, 2), dtype=np.int64)
        filler[:, 0] = _SMALL_SERVER[0] - 512
        filler[:, 1] = _SMALL_SERVER[1] - 300
        cluster.replay(np.zeros(n_servers - 1, dtype=np.uint8), filler, None)
    else:
        live = _fill(cluster, 0.85, rng)
        victims = rng.choice(live, size=len(live) // 5, replace=False)
        ops = np.empty(2 * len(victims), dtype=np.uint8)
        ops[0::2] = ReplayOp.RELEASE_CONTAINER
        ops[1::2] = ReplayOp.PLACE_FIRST_FIT
        refs = np.full(len(ops), -1, dtype=np.int64)
        refs[0::2] = victims
        requests = np.zeros((len(ops), 2), dtype=np.int64)
        memory = rng.choice(LAMBDA_MEMORY_MB[:8], size=len(victims))
        requests[1::2] = _lambda_requests(memory)
        cluster.replay(ops, requests, refs)
        if state == "third_cordoned":
            for server in np.flatnonzero(rng.random(n_servers) < 1 / 3).tolist():
                cluster.cordon(server)
    return cluster
