"""Calling conventions of the hot methods (bound with vectorcall, not pybind11)."""

import pytest

from fastplace import Cluster


def test_hot_methods_take_keywords() -> None:
    cluster = Cluster([[100, 10], [200, 20]])
    assert cluster.first_fit(request=[150, 5]) == 1
    assert cluster.fits(server=0, request=[100, 10])
    container = cluster.place(1, request=[150, 5])
    assert cluster.container(container)[0] == 1
    cluster.release(container=container)
    assert cluster.n_containers == 0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c: c.first_fit([1, 1], request=[1, 1]), "multiple values for argument 'request'"),
        (lambda c: c.place(0, req=[1, 1]), "unexpected keyword argument 'req'"),
        (lambda c: c.place(0), "missing required argument 'request'"),
        (lambda c: c.release(), "missing required argument 'container'"),
        (lambda c: c.fits(0, [1, 1], 3), "takes 2 arguments, got 3"),
    ],
)
def test_bad_calls_raise_type_errors(call, message: str) -> None:
    cluster = Cluster([[100, 10]])
    before = cluster.snapshot()
    with pytest.raises(TypeError, match=message):
        call(cluster)
    assert cluster.snapshot() == before


@pytest.mark.parametrize("request_", [{1, 2}, {"memory_mb": 1, "cpu_millis": 1}])
def test_unordered_containers_are_not_requests(request_: object) -> None:
    cluster = Cluster([[100, 10]])
    with pytest.raises(TypeError, match="must be a sequence"):
        cluster.first_fit(request_)


def test_server_rows_match_the_full_matrices() -> None:
    cluster = Cluster([[100, 10], [200, 20], [300, 30]])
    cluster.place(1, [50, 5])
    cluster.place(1, [10, 1])
    servers = [2, 1, 1]
    free, capacity, counts = cluster.server_rows(servers)
    assert free.tolist() == cluster.free[servers].tolist()
    assert capacity.tolist() == cluster.capacity[servers].tolist()
    assert counts.tolist() == cluster.container_counts()[servers].tolist()
    with pytest.raises(ValueError, match="server = 3"):
        cluster.server_rows([0, 3])


def test_feasible_with_a_limit_is_a_prefix() -> None:
    cluster = Cluster([[100, 10]] * 70)
    cluster.place(3, [100, 10])
    everything = cluster.feasible([50, 5]).tolist()
    assert len(everything) == 69
    for limit in (0, 1, 5, 64, 69, 100):
        assert cluster.feasible([50, 5], limit=limit).tolist() == everything[:limit]
    with pytest.raises(ValueError, match="limit = -1"):
        cluster.feasible([50, 5], limit=-1)
