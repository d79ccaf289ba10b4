"""The free tree and the remembered feasible counts, against the reference model.

The core skips groups of servers whose largest free amount falls short (the free
tree, cpp/include/fastplace/free_tree.hpp) and remembers feasible counts of recent
request sizes (feasible_counts.hpp). These tests build the cluster states where
that matters (a fill front, two server sizes, churn, all full but the last, a third
cordoned; synthetic.cluster_in_state) and servers whose free amounts trade off across
dimensions (a group passes on one server's memory and another's CPU and holds no
fit), at sizes that give the tree one to five levels, and compare every query with
the reference model; the state machine and the differential tests cover mutations.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastplace import Cluster, cpu_for_memory
from fastplace.synthetic import CLUSTER_STATES, FILL_MEMORY_MB, cluster_in_state
from reference.cluster_model import ReferenceCluster, Twin

PROBES = [[int(m), cpu_for_memory(int(m))] for m in FILL_MEMORY_MB] + [
    [0, 0],
    [128, 72],
    [16384, 8000],
]


def model_of(core: Cluster) -> ReferenceCluster:
    """A reference cluster with the core's capacities, free amounts and cordons."""
    capacity = core.capacity.tolist()
    model = ReferenceCluster(capacity, core.resources)
    used = core.capacity - core.free
    for server in np.flatnonzero(used.any(axis=1)).tolist():
        model.place(server, used[server].tolist())
    for server in range(core.n_servers):
        if core.is_cordoned(server):
            model.cordon(server)
    return model


@pytest.mark.parametrize("state", CLUSTER_STATES)
@pytest.mark.parametrize("n_servers", [7, 65, 700, 4_200])
def test_cluster_states_match_model(state: str, n_servers: int) -> None:
    core = cluster_in_state(state, n_servers, seed=n_servers)
    core.validate()
    twin = Twin(core, model_of(core))
    for request in PROBES:
        twin.check_queries(request, [0, n_servers // 2, n_servers - 1])
    # Mutations with the counts remembered: every place, release and cordon adjusts them.
    rng = np.random.default_rng(n_servers)
    for step in range(60):
        request = PROBES[step % len(PROBES)]
        if step % 3 == 0:
            twin.cordon(int(rng.integers(n_servers)))
        elif step % 3 == 1:
            twin.uncordon(int(rng.integers(n_servers)))
        else:
            twin.place_with(request, "first_fit" if step % 2 else "best_fit")
        twin.check_queries(request)
    core.validate()


@settings(max_examples=40, deadline=None)
@given(
    n=st.sampled_from([8, 64, 65, 512, 513, 4_100]),
    seed=st.integers(0, 2**32 - 1),
)
def test_servers_trading_off_dimensions(n: int, seed: int) -> None:
    """Memory-rich, CPU-poor servers next to CPU-rich, memory-poor ones: every group's
    maxima cover a request that no server of the group fits, except a few real fits."""
    rng = np.random.default_rng(seed)
    capacity = np.tile([1000, 1000], (n, 1))
    twin = Twin(Cluster(capacity), ReferenceCluster(capacity.tolist()))
    for server in range(n):
        rich, poor = int(rng.integers(500, 1000)), int(rng.integers(0, 500))
        left = [rich, poor] if server % 2 else [poor, rich]
        if rng.random() < 0.02:  # a rare server that fits everything up to 500
            left = [int(rng.integers(500, 1000)), int(rng.integers(500, 1000))]
        twin.place(server, [1000 - left[0], 1000 - left[1]])
    for request in ([500, 500], [499, 499], [700, 10], [10, 700], [501, 501], [0, 0]):
        twin.check_queries(request, [0, n - 1])
    twin.check_state()


def test_remembered_counts_survive_eviction_and_growth() -> None:
    """More request sizes than are remembered, then mutations of every kind."""
    capacity = np.tile([4096, 2048], (300, 1))
    twin = Twin(Cluster(capacity), ReferenceCluster(capacity.tolist()))
    sizes = [[64 * k, 32 * k] for k in range(1, 40)]  # 39 sizes: evicts and re-counts
    for round_ in range(3):
        for request in sizes:
            twin.check_queries(request)
            twin.place_with(request, "first_fit")
        for container in list(twin.ids)[::3]:
            twin.release(container)
        twin.place_gang(sizes[:5], "best_fit")
        twin.add_servers([[4096, 2048]] * (round_ + 1))
        twin.check_state()
    restored = Cluster.restore(twin.core.snapshot())
    for request in sizes:
        assert restored.count_feasible(request) == len(twin.model.feasible(request))
    restored.validate()
