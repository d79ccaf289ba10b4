"""Bad input: one case per test. Each checks the exception type, that the message names
the offending field and value, and that the cluster's snapshot is byte-identical
afterwards (and still valid)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fastplace import Cluster

CAPACITY = [[4096, 2000], [8192, 4000], [1024, 500]]


@pytest.fixture
def cluster() -> Cluster:
    cluster = Cluster(CAPACITY)
    cluster.place(0, [1000, 100])
    released = cluster.place(1, [2000, 200])
    cluster.place(1, [3000, 300])
    cluster.release(released)  # leaves a reusable slot behind
    cluster.cordon(2)
    return cluster


def rejected(cluster: Cluster, error: type[Exception], call, *fragments: str) -> str:
    """Runs call, which must raise error naming every fragment, leaving no trace."""
    before = cluster.snapshot()
    with pytest.raises(error) as info:
        call()
    message = str(info.value.args[0]) if info.value.args else ""
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    assert cluster.snapshot() == before
    cluster.validate()
    return message


# ---- requests -----------------------------------------------------------------------

# (case, request, exception, fragments); "{f}" stands for the request's field name.
BAD_REQUESTS = [
    ("negative", [-1, 10], ValueError, ["{f}[0]", "memory_mb", "-1"]),
    ("negative_second_dim", [10, -5], ValueError, ["{f}[1]", "cpu_millis", "-5"]),
    ("negative_float", [-2.0, 10], ValueError, ["{f}[0]", "-2"]),
    ("nan", [math.nan, 10], ValueError, ["{f}[0]", "nan"]),
    ("inf", [10, math.inf], ValueError, ["{f}[1]", "inf"]),
    ("minus_inf", [-math.inf, 10], ValueError, ["{f}[0]", "inf"]),
    ("nan_numpy", np.array([1.0, np.nan]), ValueError, ["{f}[1]", "nan"]),
    ("non_whole", [1.5, 10], ValueError, ["{f}[0]", "1.5"]),
    ("non_whole_float32", [np.float32(2.5), 10], ValueError, ["{f}[0]", "2.5"]),
    ("too_short", [1], ValueError, ["{f}", "1 values", "expected 2"]),
    ("too_long", [1, 2, 3], ValueError, ["{f}", "3 values", "expected 2"]),
    ("empty", [], ValueError, ["{f}", "0 values"]),
    ("array_wrong_shape", np.array([[1, 2]]), ValueError, ["{f}", "shape (1, 2)"]),
    ("array_wrong_length", np.array([1, 2, 3]), ValueError, ["{f}", "shape (3)"]),
    ("bool", [True, 10], TypeError, ["{f}[0]", "bool"]),
    ("numpy_bool", [np.True_, 10], TypeError, ["{f}[0]", "bool"]),
    ("bool_array", np.array([True, False]), TypeError, ["{f}", "bool"]),
    ("string", "ab", TypeError, ["{f}", "str"]),
    ("string_item", ["a", 10], TypeError, ["{f}[0]", "str"]),
    ("none", None, TypeError, ["{f}", "NoneType"]),
    ("scalar", 5, TypeError, ["{f}", "int"]),
    ("too_large", [2**63, 10], ValueError, ["{f}[0]", "int64"]),
    ("too_large_float", [1e19, 10], ValueError, ["{f}[0]", "int64"]),
    (
        "uint64_too_large",
        np.array([2**64 - 1, 1], dtype=np.uint64),
        ValueError,
        ["{f}[0]", "int64"],
    ),
]

REQUEST_METHODS = {
    "first_fit": lambda c, r: c.first_fit(r),
    "best_fit": lambda c, r: c.best_fit(r),
    "feasible": lambda c, r: c.feasible(r),
    "fits": lambda c, r: c.fits(0, r),
    "place": lambda c, r: c.place(0, r),
    "place_with_first_fit": lambda c, r: c.place_with(r, "first_fit"),
    "place_with_best_fit": lambda c, r: c.place_with(r, "best_fit"),
    "place_gang": lambda c, r: c.place_gang([[1, 1], r], "first_fit"),
}


@pytest.mark.parametrize("method", list(REQUEST_METHODS))
@pytest.mark.parametrize(
    ("request_value", "error", "fragments"),
    [case[1:] for case in BAD_REQUESTS],
    ids=[case[0] for case in BAD_REQUESTS],
)
def test_bad_request(cluster, method, request_value, error, fragments):
    field = "requests[1]" if method == "place_gang" else "request"
    expected = [fragment.replace("{f}", field) for fragment in fragments]
    rejected(cluster, error, lambda: REQUEST_METHODS[method](cluster, request_value), *expected)


def test_bad_gang_container(cluster):
    rejected(cluster, TypeError, lambda: cluster.place_gang(5), "requests", "int")
    rejected(cluster, TypeError, lambda: cluster.place_gang([5]), "requests[0]", "int")
    rejected(
        cluster, ValueError, lambda: cluster.place_gang(np.zeros((2, 3))), "requests", "(n, 2)"
    )


# ---- servers and containers ---------------------------------------------------------

SERVER_METHODS = {
    "fits": lambda c, s: c.fits(s, [1, 1]),
    "place": lambda c, s: c.place(s, [1, 1]),
    "cordon": lambda c, s: c.cordon(s),
    "uncordon": lambda c, s: c.uncordon(s),
    "is_cordoned": lambda c, s: c.is_cordoned(s),
}


@pytest.mark.parametrize("method", list(SERVER_METHODS))
@pytest.mark.parametrize("server", [-1, -4, 3, 4, 2**40])
def test_server_out_of_range(cluster, method, server):
    rejected(
        cluster,
        ValueError,
        lambda: SERVER_METHODS[method](cluster, server),
        f"server = {server}",
        "[0, 3)",
    )


@pytest.mark.parametrize("method", list(SERVER_METHODS))
@pytest.mark.parametrize(
    ("server", "name"), [(1.0, "float"), (True, "bool"), ("1", "str"), (None, "NoneType")]
)
def test_server_of_wrong_type(cluster, method, server, name):
    rejected(cluster, TypeError, lambda: SERVER_METHODS[method](cluster, server), "server", name)


def test_server_too_large_for_int64(cluster):
    rejected(cluster, ValueError, lambda: cluster.place(2**64, [1, 1]), "server", "int64")


@pytest.mark.parametrize("container", [123456789, -1, 5, 2**40 + 1, 2**32])
def test_unknown_container(cluster, container):
    rejected(cluster, KeyError, lambda: cluster.release(container), f"container {container}")
    rejected(cluster, KeyError, lambda: cluster.container(container), f"container {container}")


@pytest.mark.parametrize(("container", "name"), [(1.0, "float"), (True, "bool"), ("7", "str")])
def test_container_of_wrong_type(cluster, container, name):
    rejected(cluster, TypeError, lambda: cluster.release(container), "container", name)
    rejected(cluster, TypeError, lambda: cluster.container(container), "container", name)


def test_double_release(cluster):
    container = cluster.place(0, [1, 1])
    cluster.release(container)
    rejected(cluster, KeyError, lambda: cluster.release(container), f"container {container}")


def test_release_of_a_stale_id_after_its_slot_was_reused(cluster):
    stale = cluster.place(0, [1, 1])
    cluster.release(stale)
    fresh = cluster.place(0, [2, 2])  # takes the freed slot
    rejected(cluster, KeyError, lambda: cluster.release(stale), f"container {stale}")
    assert cluster.container(fresh)[1].tolist() == [2, 2]


def test_place_over_capacity(cluster):
    # server 0 has 4096 - 1000 = 3096 MB free
    rejected(cluster, ValueError, lambda: cluster.place(0, [3097, 1]), "memory_mb", "3097", "3096")
    rejected(cluster, ValueError, lambda: cluster.place(0, [1, 1901]), "cpu_millis", "1901", "1900")


def test_place_on_cordoned_server(cluster):
    rejected(cluster, ValueError, lambda: cluster.place(2, [1, 1]), "server 2", "cordoned")


def test_gang_that_cannot_fit(cluster):
    # free: s0 (3096, 1900), s1 (5192, 3700), s2 cordoned. The third 3000 MB partition
    # finds no server once the first two took s0 and s1.
    gang = [[3000, 10], [3000, 10], [3000, 10]]
    rejected(cluster, ValueError, lambda: cluster.place_gang(gang, "first_fit"), "partition 2")
    rejected(cluster, ValueError, lambda: cluster.place_gang(gang, "best_fit"), "partition 2")
    rejected(cluster, ValueError, lambda: cluster.place_gang([[9000, 0]]), "partition 0")


@pytest.mark.parametrize("policy", ["worst_fit", "", "First_Fit", "best-fit"])
def test_bad_policy_name(cluster, policy):
    rejected(cluster, ValueError, lambda: cluster.place_with([1, 1], policy), f"'{policy}'")
    rejected(cluster, ValueError, lambda: cluster.place_gang([[1, 1]], policy), f"'{policy}'")


def test_policy_of_wrong_type(cluster):
    rejected(cluster, TypeError, lambda: cluster.place_with([1, 1], None))
    rejected(cluster, TypeError, lambda: cluster.place_gang([[1, 1]], 1))


# ---- capacity and resources -----------------------------------------------------------

BAD_CAPACITIES = [
    ("negative", [[10, 10], [10, -5]], ValueError, ["capacity[1][cpu_millis]", "-5"]),
    ("nan", [[10, math.nan]], ValueError, ["capacity[0][1]", "nan"]),
    ("inf", [[math.inf, 10]], ValueError, ["capacity[0][0]", "inf"]),
    ("non_whole", [[10.5, 10]], ValueError, ["capacity[0][0]", "10.5"]),
    ("one_dimensional", [10, 10], ValueError, ["capacity", "shape"]),
    ("wrong_width", [[10, 10, 10]], ValueError, ["capacity", "shape", "(1, 3)"]),
    ("three_dimensional", np.zeros((1, 1, 2)), ValueError, ["capacity", "shape"]),
    ("ragged", [[10, 10], [10]], ValueError, ["capacity[1] has length 1, expected 2"]),
    ("ragged_cell", [[10, [10]], [10, 10]], ValueError, ["capacity[0][1] = [10] is not a number"]),
    ("row_not_a_row", [[10, 10], 10], ValueError, ["capacity[1] = 10 is not a row of 2"]),
    ("bool", np.array([[True, False]]), TypeError, ["capacity", "bool"]),
    ("string", [["10", "10"]], TypeError, ["capacity"]),
    ("uint64_too_large", np.array([[2**64 - 1, 1]], dtype=np.uint64), ValueError, ["capacity"]),
]


@pytest.mark.parametrize(
    ("capacity", "error", "fragments"),
    [case[1:] for case in BAD_CAPACITIES],
    ids=[case[0] for case in BAD_CAPACITIES],
)
def test_bad_capacity_in_constructor(capacity, error, fragments):
    with pytest.raises(error) as info:
        Cluster(capacity)
    for fragment in fragments:
        assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("capacity", "error", "fragments"),
    [case[1:] for case in BAD_CAPACITIES],
    ids=[case[0] for case in BAD_CAPACITIES],
)
def test_bad_capacity_in_add_servers(cluster, capacity, error, fragments):
    rejected(cluster, error, lambda: cluster.add_servers(capacity), *fragments)
    assert cluster.n_servers == 3


def test_a_capacity_of_other_width_says_how_to_name_its_resources():
    with pytest.raises(ValueError) as info:
        Cluster([[1, 2, 3]])
    assert str(info.value) == (
        "capacity has shape (1, 3), expected (n, 2): one column per resource "
        "(memory_mb, cpu_millis); pass resources=(...) naming 3 resources, one per column"
    )
    with pytest.raises(ValueError, match=r"expected \(n, 3\): .* \(a, b, c\); pass .* 1 resource,"):
        Cluster([[1]], resources=("a", "b", "c"))
    cluster = Cluster([[1, 2]])
    with pytest.raises(ValueError) as info:  # adding servers cannot rename resources
        cluster.add_servers([[1, 2, 3]])
    assert "resources=" not in str(info.value) and "(memory_mb, cpu_millis)" in str(info.value)


def test_ragged_replay_requests_name_the_row():
    cluster = Cluster([[10, 10]])
    with pytest.raises(ValueError, match=r"requests\[1\] has length 1, expected 2"):
        cluster.replay([0, 0], [[1, 1], [1]])
    assert cluster.n_containers == 0


@pytest.mark.parametrize(
    ("resources", "error", "fragments"),
    [
        ((), ValueError, ["resources", "got 0"]),
        (tuple(f"r{d}" for d in range(9)), ValueError, ["resources", "got 9"]),
        (("memory_mb", "memory_mb"), ValueError, ["'memory_mb'", "twice"]),
        (("a", "b", "a"), ValueError, ["'a'", "twice"]),
        (("memory_mb", ""), ValueError, ["resources[1]", "empty"]),
        ("memory_mb", TypeError, ["resources", "'memory_mb'"]),
        (("memory_mb", 5), TypeError, ["resources[1]", "5"]),
    ],
    ids=["zero", "nine", "duplicate", "duplicate_later", "empty_name", "string", "non_string"],
)
def test_bad_resources(resources, error, fragments):
    dims = len(resources) if not isinstance(resources, str) else 1
    with pytest.raises(error) as info:
        Cluster(np.ones((2, dims), dtype=np.int64), resources=resources)
    for fragment in fragments:
        assert fragment in str(info.value)


# ---- replay ---------------------------------------------------------------------------


def requests_for(ops) -> np.ndarray:
    return np.full((len(ops), 2), 10, dtype=np.int64)


@pytest.mark.parametrize(
    ("ops", "refs", "error", "fragments"),
    [
        ([0, 4], [-1, -1], ValueError, ["ops[1]", "4"]),
        ([0, -1], [-1, -1], ValueError, ["ops[1]", "-1"]),
        ([255], [-1], ValueError, ["ops[0]", "255"]),
        ([256], [-1], ValueError, ["ops[0]", "256"]),
        ([0, 1], [-1, 1], ValueError, ["events[1].ref = 1", "earlier"]),  # itself
        ([0, 1, 0], [-1, 2, -1], ValueError, ["events[1].ref = 2", "earlier"]),  # later
        ([0, 1], [-1, -1], ValueError, ["events[1].ref = -1"]),
        ([0, 1], [-1, 7], ValueError, ["events[1].ref = 7"]),
        ([0, 1, 1], [-1, 0, 1], ValueError, ["events[2].ref = 1", "places nothing"]),
        ([0, 1, 1], [-1, 0, 0], ValueError, ["events[2].ref = 0", "second time"]),
        ([0, 3], [-1, 987654321], KeyError, ["container 987654321"]),
        ([3], [-1], KeyError, ["container -1"]),
    ],
    ids=[
        "op_4",
        "op_negative",
        "op_255",
        "op_256",
        "ref_itself",
        "ref_later_event",
        "ref_negative",
        "ref_out_of_range",
        "ref_to_release_event",
        "event_released_twice",
        "unknown_container",
        "container_minus_one",
    ],
)
def test_replay_bad_events(cluster, ops, refs, error, fragments):
    rejected(
        cluster,
        error,
        lambda: cluster.replay(np.array(ops), requests_for(ops), np.array(refs)),
        *fragments,
    )


def test_replay_container_released_twice(cluster):
    live = cluster.place(0, [1, 1])
    ops = [0, 3, 3]
    refs = [-1, live, live]
    message = rejected(
        cluster, ValueError, lambda: cluster.replay(ops, requests_for(ops), refs), "events[2]"
    )
    assert str(live) in message


def test_replay_released_container_is_unknown(cluster):
    gone = cluster.place(0, [1, 1])
    cluster.release(gone)
    rejected(cluster, KeyError, lambda: cluster.replay([3], requests_for([3]), [gone]), str(gone))


def test_replay_release_without_refs(cluster):
    rejected(cluster, ValueError, lambda: cluster.replay([0, 1], requests_for([0, 1])), "ref = -1")


def test_replay_bad_request_row(cluster):
    ops = [0, 2, 0]
    requests = requests_for(ops)
    requests[1, 1] = -3
    rejected(
        cluster,
        ValueError,
        lambda: cluster.replay(ops, requests, [-1, -1, -1]),
        "events[1].request[1]",
        "-3",
    )


def test_replay_non_finite_request(cluster):
    requests = requests_for([0, 0]).astype(float)
    requests[1, 0] = np.nan
    rejected(cluster, ValueError, lambda: cluster.replay([0, 0], requests), "requests[1][0]", "nan")


def test_replay_length_mismatch(cluster):
    rejected(
        cluster,
        ValueError,
        lambda: cluster.replay([0, 0], requests_for([0, 0, 0]), [-1, -1]),
        "same length",
    )
    rejected(
        cluster,
        ValueError,
        lambda: cluster.replay([0, 0], requests_for([0, 0]), [-1]),
        "same length",
    )


def test_replay_float_op_codes(cluster):
    rejected(cluster, TypeError, lambda: cluster.replay([0.0], requests_for([0])), "ops", "float")


def test_replay_two_dimensional_ops(cluster):
    rejected(cluster, ValueError, lambda: cluster.replay([[0]], requests_for([0])), "ops")


def test_replay_float_refs(cluster):
    ops = [0, 1]
    rejected(cluster, TypeError, lambda: cluster.replay(ops, requests_for(ops), [0.0, 0.5]), "refs")


def test_replay_wrong_request_width(cluster):
    rejected(
        cluster,
        ValueError,
        lambda: cluster.replay([0], np.zeros((1, 3)), [-1]),
        "requests",
        "(n, 2)",
    )


def test_valid_prefix_of_a_bad_replay_is_not_applied(cluster):
    """A stream is checked before it runs: good events before a bad one change nothing."""
    ops = [0, 0, 2, 1, 5]
    rejected(
        cluster,
        ValueError,
        lambda: cluster.replay(ops, requests_for(ops), [-1, -1, -1, 0, -1]),
        "ops[4]",
    )
    ops = [0, 0, 2, 1, 1]
    rejected(
        cluster,
        ValueError,
        lambda: cluster.replay(ops, requests_for(ops), [-1, -1, -1, 0, 0]),
        "events[4]",
    )


# ---- snapshots ------------------------------------------------------------------------


@pytest.mark.parametrize("data", ["snapshot", 12, None, [1, 2]])
def test_restore_from_non_bytes(data):
    with pytest.raises(TypeError, match="bytes"):
        Cluster.restore(data)
