"""Hand-worked examples of the Cluster contract: each expected value is derived in the
comment next to it from the definitions in the issue, not read off the implementation."""

from __future__ import annotations

import numpy as np
import pytest

import fastplace
from fastplace import Cluster, ReplayOp, cpu_for_memory


def test_default_resources_and_shapes():
    cluster = Cluster([[4096, 2000], [8192, 4000], [0, 0]])
    assert list(cluster.resources) == ["memory_mb", "cpu_millis"]
    assert cluster.n_servers == 3
    assert cluster.n_dims == 2
    assert cluster.capacity.tolist() == [[4096, 2000], [8192, 4000], [0, 0]]
    assert cluster.free.tolist() == [[4096, 2000], [8192, 4000], [0, 0]]
    assert cluster.free.dtype == np.int64
    assert cluster.n_containers == 0
    assert cluster.n_active_servers == 0
    assert cluster.container_counts().tolist() == [0, 0, 0]


@pytest.mark.parametrize("dims", [1, 3, 8])
def test_custom_resources(dims):
    names = [f"gpu{d}" for d in range(dims)]
    cluster = Cluster(np.full((2, dims), 5), resources=names)
    assert list(cluster.resources) == names
    assert cluster.first_fit([5] * dims) == 0
    assert cluster.first_fit([6] + [0] * (dims - 1)) == -1


def test_first_fit_is_the_lowest_index_that_fits():
    cluster = Cluster([[4096, 2000], [8192, 4000], [8192, 4000]])
    assert cluster.first_fit([5000, 1000]) == 1  # server 0 lacks memory
    assert cluster.first_fit([4096, 2000]) == 0  # exactly the capacity fits
    assert cluster.first_fit([4097, 0]) == 1
    assert cluster.first_fit([8193, 0]) == -1
    assert cluster.feasible([5000, 1000]).tolist() == [1, 2]
    assert cluster.feasible([0, 0]).tolist() == [0, 1, 2]
    assert cluster.feasible([9000, 0]).tolist() == []


def test_best_fit_minimises_normalised_leftover():
    cluster = Cluster([[100, 10], [50, 10], [100, 10]])
    # leftover shares for request (40, 5): s0 60/100 + 5/10 = 1.1, s1 10/50 + 5/10 = 0.7,
    # s2 = 1.1  ->  server 1
    assert cluster.best_fit([40, 5]) == 1
    # (60, 5) does not fit server 1: s0 and s2 tie at 0.4 + 0.5 -> lowest index 0
    assert cluster.best_fit([60, 5]) == 0
    assert cluster.best_fit([101, 0]) == -1


def test_best_fit_ignores_zero_capacity_dimensions():
    cluster = Cluster([[0, 10], [100, 10]])
    # s0: memory has capacity 0 and is skipped -> 5/10 = 0.5; s1: 100/100 + 5/10 = 1.5
    assert cluster.best_fit([0, 5]) == 0
    # an all-zero server hosts zero requests and scores 0, the minimum
    cluster = Cluster([[10, 10], [0, 0]])
    assert cluster.best_fit([0, 0]) == 1
    assert cluster.first_fit([0, 0]) == 0


def test_best_fit_ties_go_to_the_lowest_index():
    cluster = Cluster([[100, 10]] * 5)
    cluster.place(0, [50, 5])
    # s0 is fuller (0.1 + 0.0 after placing (40, 5)); s1..s4 tie at 0.6 + 0.5
    assert cluster.best_fit([40, 5]) == 0
    assert cluster.best_fit([60, 5]) == 1  # s0 cannot host it; s1..s4 tie


def test_best_fit_exact_ties_go_to_the_lowest_index():
    cluster = Cluster([[10, 10], [10, 10]])
    cluster.place(0, [9, 8])  # free (1, 2): score 1/10 + 2/10 = 3/10
    cluster.place(1, [7, 10])  # free (3, 0): score 3/10 + 0/10 = 3/10
    assert cluster.best_fit([0, 0]) == 0


def test_place_books_and_release_frees():
    cluster = Cluster([[4096, 2000], [8192, 4000]])
    a = cluster.place(1, [5000, 1000])
    assert cluster.free.tolist() == [[4096, 2000], [3192, 3000]]
    b = cluster.place(1, [3192, 0])
    assert a != b
    assert cluster.free.tolist() == [[4096, 2000], [0, 3000]]
    assert cluster.n_containers == 2
    assert cluster.n_active_servers == 1
    assert cluster.container_counts().tolist() == [0, 2]
    server, amounts = cluster.container(a)
    assert server == 1
    assert amounts.tolist() == [5000, 1000]
    cluster.release(a)
    assert cluster.free.tolist() == [[4096, 2000], [5000, 4000]]
    assert cluster.n_containers == 1
    cluster.release(b)
    assert cluster.free.tolist() == cluster.capacity.tolist()
    assert cluster.n_active_servers == 0
    cluster.validate()


def test_container_ids_are_not_reused_after_release():
    cluster = Cluster([[10, 10]])
    seen = set()
    for _ in range(50):
        container = cluster.place(0, [10, 10])
        assert container not in seen
        seen.add(container)
        cluster.release(container)
        with pytest.raises(KeyError):
            cluster.release(container)
        with pytest.raises(KeyError):
            cluster.container(container)


def test_zero_requests_fit_full_and_zero_capacity_servers():
    cluster = Cluster([[0, 0], [5, 5]])
    cluster.place(1, [5, 5])
    assert cluster.feasible([0, 0]).tolist() == [0, 1]
    container = cluster.place(0, [0, 0])
    assert cluster.container_counts().tolist() == [1, 1]
    assert cluster.n_active_servers == 2
    cluster.release(container)
    assert cluster.n_active_servers == 1


def test_place_with_returns_container_and_server():
    cluster = Cluster([[10, 10], [20, 20]])
    container, server = cluster.place_with([15, 1], "first_fit")
    assert server == 1
    assert cluster.container(container)[0] == 1
    container, server = cluster.place_with([5, 9], "best_fit")
    # s0: 5/10 + 1/10 = 0.6; s1: 0/20 + 10/20 = 0.5 -> server 1
    assert server == 1
    before = cluster.snapshot()
    assert cluster.place_with([100, 0], "first_fit") == (-1, -1)
    assert cluster.place_with([100, 0], "best_fit") == (-1, -1)
    assert cluster.snapshot() == before


def test_place_gang_places_in_order_or_not_at_all():
    cluster = Cluster([[100, 100], [100, 100]])
    placed = cluster.place_gang([[60, 1], [60, 1]], policy="first_fit")
    # the second partition no longer fits server 0 once the first is booked there
    assert [server for _, server in placed] == [0, 1]
    assert cluster.free.tolist() == [[40, 99], [40, 99]]
    before = cluster.snapshot()
    with pytest.raises(ValueError, match="partition 2"):
        cluster.place_gang([[40, 0], [40, 0], [1, 0]])
    assert cluster.snapshot() == before
    assert cluster.place_gang([]) == []
    assert cluster.snapshot() == before


def test_place_gang_best_fit_packs_tightly():
    cluster = Cluster([[100, 10], [50, 10]])
    placed = cluster.place_gang([[40, 5], [40, 5]], policy="best_fit")
    # first: s0 0.6+0.5=1.1, s1 0.2+0.5=0.7 -> s1; second: only s0 fits
    assert [server for _, server in placed] == [1, 0]


def test_cordon_keeps_containers_but_takes_no_new_ones():
    cluster = Cluster([[10, 10], [10, 10], [10, 10]])
    kept = cluster.place(1, [4, 4])
    cluster.cordon(1)
    assert cluster.is_cordoned(1)
    assert not cluster.is_cordoned(0)
    assert cluster.feasible([1, 1]).tolist() == [0, 2]
    cluster.place(0, [10, 10])
    assert cluster.first_fit([1, 1]) == 2
    assert cluster.best_fit([6, 6]) == 2  # s1 would be the exact fit, but it is cordoned
    assert not cluster.fits(1, [1, 1])
    assert cluster.fits(2, [1, 1])
    with pytest.raises(ValueError, match="cordoned"):
        cluster.place(1, [1, 1])
    assert cluster.place_with([6, 6], "best_fit")[1] == 2
    assert cluster.place_with([5, 5], "first_fit") == (-1, -1)
    with pytest.raises(ValueError):  # s0 is full, s2 has (4, 4) left, s1 is cordoned
        cluster.place_gang([[5, 5]])
    # existing containers stay and can be released
    assert cluster.container(kept)[0] == 1
    assert cluster.free[1].tolist() == [6, 6]
    cluster.release(kept)
    assert cluster.free[1].tolist() == [10, 10]
    cluster.cordon(1)  # idempotent
    cluster.uncordon(1)
    assert not cluster.is_cordoned(1)
    assert cluster.first_fit([10, 10]) == 1
    cluster.uncordon(1)  # idempotent
    assert cluster.first_fit([10, 10]) == 1
    cluster.validate()


def test_add_servers_appends_and_returns_the_first_new_id():
    cluster = Cluster([[10, 10]])
    assert cluster.add_servers([[20, 20], [30, 30]]) == 1
    assert cluster.n_servers == 3
    assert cluster.add_servers(np.zeros((0, 2), dtype=np.int64)) == 3
    assert cluster.first_fit([25, 0]) == 2
    # far above the capacity the cluster was built with
    assert cluster.add_servers([[10**12, 10**12]]) == 3
    assert cluster.first_fit([10**12, 1]) == 3
    assert cluster.first_fit([10**12 + 1, 1]) == -1
    cluster.place(3, [10**12 - 1, 0])
    assert cluster.first_fit([11, 0]) == 1
    assert cluster.first_fit([2, 10**12]) == -1
    assert cluster.first_fit([1, 10**12]) == 3
    assert cluster.feasible([1, 0]).tolist() == [0, 1, 2, 3]
    cluster.validate()


def test_empty_cluster():
    cluster = Cluster(np.zeros((0, 2), dtype=np.int64))
    assert cluster.n_servers == 0
    assert cluster.first_fit([0, 0]) == -1
    assert cluster.best_fit([0, 0]) == -1
    assert cluster.feasible([0, 0]).tolist() == []
    assert cluster.place_with([0, 0], "first_fit") == (-1, -1)
    assert cluster.free.shape == (0, 2)
    cluster.validate()
    assert cluster.add_servers([[1, 1]]) == 0
    assert cluster.first_fit([1, 1]) == 0


def test_free_and_capacity_are_read_only_copies():
    cluster = Cluster([[10, 10]])
    free = cluster.free
    with pytest.raises(ValueError):
        free[0, 0] = 1
    cluster.place(0, [3, 3])
    assert free.tolist() == [[10, 10]]  # a copy, not a live view
    capacity = cluster.capacity
    with pytest.raises(ValueError):
        capacity[0, 0] = 1


def test_accepted_request_forms_agree():
    cluster = Cluster([[4096, 2000], [8192, 4000]])
    forms = [
        [5000, 1000],
        (5000, 1000),
        [5000.0, 1000.0],
        np.array([5000, 1000]),
        np.array([5000, 1000], dtype=np.int32),
        np.array([5000, 1000], dtype=np.uint16),
        np.array([5000.0, 1000.0]),
        [np.int64(5000), np.float32(1000)],
        np.array([[5000, 1000]])[0],
        np.array([1000, 5000])[::-1],  # strided view
    ]
    for request in forms:
        assert cluster.first_fit(request) == 1
        assert cluster.best_fit(request) == 1
        assert cluster.feasible(request).tolist() == [1]
        assert cluster.fits(1, request)
        assert not cluster.fits(0, request)


def test_huge_amounts():
    # Capacities may sum to 2^63 - 1 per resource, no more (test_cluster_overflow.py).
    top = 2**63 - 1
    half = 2**62
    cluster = Cluster([[half, 1], [half - 1, 1]])
    assert cluster.first_fit([half, 1]) == 0
    assert cluster.feasible([half - 1, 0]).tolist() == [0, 1]
    assert cluster.first_fit([top, 0]) == -1
    cluster.place(0, [half, 1])
    assert cluster.first_fit([1, 0]) == 1
    cluster.validate()
    single = Cluster([[top, 1]])
    single.place(0, [top, 1])
    assert single.free.tolist() == [[0, 0]]
    single.validate()


def test_replay_op_codes():
    assert [int(op) for op in ReplayOp] == [0, 1, 2, 3]
    assert ReplayOp.PLACE_FIRST_FIT == 0
    assert ReplayOp.RELEASE_EVENT == 1
    assert ReplayOp.PLACE_BEST_FIT == 2
    assert ReplayOp.RELEASE_CONTAINER == 3


def test_cpu_for_memory():
    # Lambda: 1,769 MB is one vCPU (1,000 millicores), proportional around it,
    # rounded to the nearest millicore.
    assert fastplace.cpu_for_memory is cpu_for_memory
    assert cpu_for_memory(1769) == 1000
    assert cpu_for_memory(3538) == 2000
    assert cpu_for_memory(0) == 0
    assert cpu_for_memory(128) == 72  # 128000 / 1769 = 72.36
    assert cpu_for_memory(10240) == 5789  # 10240000 / 1769 = 5788.58
    assert cpu_for_memory(1000, mb_per_vcpu=1000) == 1000
    out = cpu_for_memory(np.array([0, 1769, 3538]))
    assert out.dtype == np.int64
    assert out.tolist() == [0, 1000, 2000]
    with pytest.raises(ValueError, match="-1"):
        cpu_for_memory(-1)
    with pytest.raises(ValueError, match="mb_per_vcpu"):
        cpu_for_memory(1, mb_per_vcpu=0)
