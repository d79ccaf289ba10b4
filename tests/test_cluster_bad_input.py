"""Bad input: one case per test. Each checks the exception type, that the message names
the offending field and value, and that the cluster's snapshot is byte-identical
afterwards (and still valid)."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

from fastplace import Cluster, CorruptSnapshot
from fastplace._native import _core
from snapshot_format import ClusterImage

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
        (("x" * 1025, "b"), ValueError, ["resources[0]", "1025 bytes", "1024"]),
        (("a", "é" * 513), ValueError, ["resources[1]", "1026 bytes"]),  # 2 bytes each
        (("a", "\udc80"), ValueError, ["resources[1]", "Unicode"]),  # a lone surrogate
    ],
    ids=[
        "zero",
        "nine",
        "duplicate",
        "duplicate_later",
        "empty_name",
        "string",
        "non_string",
        "too_long",
        "too_long_in_utf8",
        "surrogate",
    ],
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


# ---- resource names: the same limits at construction and restore -----------------------


@pytest.mark.parametrize("name", ["x" * 1024, "é" * 512, "メモリ", "a b\tc"])
def test_names_the_constructor_accepts_restore_and_unpickle(name):
    # Issue 15: a 1,025-character name was accepted here, and its snapshot then could
    # be neither restored nor unpickled.
    cluster = Cluster([[1, 2]], [name, "cpu"])
    assert Cluster.restore(cluster.snapshot()).resources == [name, "cpu"]
    assert pickle.loads(pickle.dumps(cluster)).resources == [name, "cpu"]


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        (b"\xff\xfe", "not valid UTF-8"),
        (b"ab\xc3", "not valid UTF-8"),  # truncated two-byte sequence
        (b"\xed\xa0\x80", "not valid UTF-8"),  # an encoded surrogate
        (b"\xc0\xaf", "not valid UTF-8"),  # overlong "/"
        (b"\xf4\x90\x80\x80", "not valid UTF-8"),  # above U+10FFFF
        (b"x" * 1025, "outside 1..1024"),
    ],
)
def test_a_sealed_snapshot_with_a_bad_name_is_refused(name, fragment):
    # A resealed snapshot with a non-UTF-8 name used to restore, and .resources then
    # raised UnicodeDecodeError.
    image = ClusterImage.parse(Cluster([[1, 2]], ["mem", "cpu"]).snapshot())
    image.resources[0] = name
    with pytest.raises(CorruptSnapshot, match=fragment):
        Cluster.restore(image.to_bytes())


# ---- container ids of another cluster ---------------------------------------------------


def test_an_id_of_another_cluster_is_refused(cluster):
    # Issue 15: two clusters with the same history handed out the same ids, so an id of
    # one released an unrelated live container of the other.
    twin = Cluster(CAPACITY)
    twin.place(0, [1000, 100])
    released = twin.place(1, [2000, 200])
    foreign = [twin.place(1, [3000, 300]), twin.place(0, [1, 1])]
    twin.release(released)
    for container in foreign:
        rejected(cluster, KeyError, lambda c=container: cluster.release(c), str(container))
        rejected(cluster, KeyError, lambda c=container: cluster.container(c), "another cluster")
        rejected(cluster, KeyError, lambda c=container: cluster.replay([3], [[0, 0]], [c]))


def test_a_restored_or_unpickled_copy_keeps_the_ids():
    """Ids are per cluster, and a restored copy continues the same cluster."""
    cluster = Cluster(CAPACITY)
    container = cluster.place(0, [1, 1])
    for copy in (Cluster.restore(cluster.snapshot()), pickle.loads(pickle.dumps(cluster))):
        assert copy.container(container)[0] == 0
        copy.release(container)
        assert copy.n_containers == 0


def test_a_version_2_snapshot_restores_with_plain_ids():
    image = ClusterImage.parse(Cluster([[10, 10]]).snapshot())
    image.version = 2
    image.place(0, [3, 4])
    restored = Cluster.restore(image.to_bytes())
    assert restored.container(0)[1].tolist() == [3, 4]  # slot 0, generation 0, no key
    restored.release(0)
    restored.validate()


# ---- integer arguments: bool and fractional floats are refused, numpy ints accepted ----


@pytest.mark.parametrize(
    ("call", "error", "fragments"),
    [
        (lambda c: c.server_rows([0.5]), ValueError, ["servers[0] = 0.5", "not an integer"]),
        (lambda c: c.server_rows(np.array([0.0])), ValueError, ["servers[0]", "float64"]),
        (lambda c: c.server_rows([True]), ValueError, ["servers[0] = True"]),
        (lambda c: c.server_rows([0, 9]), ValueError, ["server = 9", "out of range"]),
        (lambda c: c.feasible([1, 1], limit=True), TypeError, ["limit", "bool"]),
        (lambda c: c.feasible([1, 1], limit=1.0), TypeError, ["limit", "float"]),
        (lambda c: c.feasible([1, 1], limit=-1), ValueError, ["limit = -1", ">= 0"]),
        (lambda c: c.largest_capacity(True), TypeError, ["dim", "bool"]),
        (lambda c: c.largest_capacity(0.0), TypeError, ["dim", "float"]),
        (lambda c: c.largest_capacity(-1), ValueError, ["dim = -1"]),
    ],
    ids=[
        "server_rows_float",
        "server_rows_float_array",
        "server_rows_bool",
        "server_rows_range",
        "feasible_limit_bool",
        "feasible_limit_float",
        "feasible_limit_negative",
        "largest_capacity_bool",
        "largest_capacity_float",
        "largest_capacity_negative",
    ],
)
def test_bad_integer_arguments(cluster, call, error, fragments):
    rejected(cluster, error, lambda: call(cluster), *fragments)


def test_numpy_integers_stay_accepted(cluster):
    assert cluster.feasible([1, 1], limit=np.int64(1)).tolist() == [0]
    assert cluster.feasible([1, 1], limit=np.uint8(5)).tolist() == [0, 1]
    assert cluster.largest_capacity(np.int32(1)) == 4000
    free, _capacity, _counts = cluster.server_rows(np.array([1, 0], dtype=np.int32))
    assert free.tolist() == [[5192, 3700], [3096, 1900]]
    assert cluster.server_rows((np.int16(1),))[0].tolist() == [[5192, 3700]]


@pytest.mark.parametrize(
    ("ops", "requests", "refs", "error", "fragment"),
    [
        (np.array([0.0]), [[1, 1]], [-1], ValueError, "ops[0] = 0.0"),
        ([True], [[1, 1]], [-1], ValueError, "ops[0] = True"),
        ([0, 1], [[1, 1], [0, 0]], [-1, 0.5], ValueError, "refs[1] = 0.5"),
        ([0, 1], [[1, 1], [0, 0]], np.array([-1.0, 0.0]), ValueError, "refs[0]"),
        ([0], np.array([[1.5, 1.0]]), [-1], ValueError, "requests[0][0] = 1.5"),
        ([0], np.array([[True, True]]), [-1], TypeError, "dtype bool"),
        ([300], [[1, 1]], [-1], ValueError, "ops[0] = 300 is out of range"),
    ],
)
def test_the_core_replay_checks_its_arrays(cluster, ops, requests, refs, error, fragment):
    """ClusterCore.replay itself (under Cluster.replay's checks) refuses what would be
    truncated: it is a public binding too."""
    core_replay = _core.ClusterCore.replay
    rejected(
        cluster, error, lambda: core_replay(cluster, ops, np.asarray(requests), refs), fragment
    )


@pytest.mark.parametrize(
    ("capacity", "fragment"),
    [
        (np.array([[1.5, 2.0]]), "capacity[0][0] = 1.5 is not a whole number"),
        (np.array([[1e19, 2.0]]), "capacity[0][0] = 1e+19 is outside the int64 range"),
        (np.array([[2**64 - 1, 1]], dtype=np.uint64), "capacity[0][0] = 18446744073709551615"),
        (np.array([[1.0, np.nan]]), "capacity[0][1] = nan is not finite"),
    ],
)
def test_the_core_constructor_refuses_inexact_capacities(capacity, fragment):
    with pytest.raises(ValueError) as info:
        _core.ClusterCore(capacity, ["a", "b"])
    assert fragment in str(info.value)
