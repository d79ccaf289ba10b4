"""One request validation: every Python entry point accepts exactly what Cluster.place does.

Issue 15, finding 6 and build point 5. The same odd inputs go to ``Cluster.place`` (the
reference: the core's conversion) and to each entry point that books or describes a
container: :func:`fastplace.resources.as_request`, the allocator's ``allocate`` and
``choose``, the simulator's policies (``place_gang``, native and Python pipelines) and
models (``Partition``), and the Ray engine's deployment requests and manifests. Each
must accept or refuse the same inputs, with the same exception class, book the same
amounts, and leave everything as it was when it refuses.
"""

from __future__ import annotations

import enum
import fractions
import json
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastplace import BlockIndex, Cluster, ServerAllocator
from fastplace.placement_policy import PlacementContext, Policy
from fastplace.resources import DEFAULT_RESOURCES, as_request, request_for_memory
from fastplace.sim.policies import DotProduct, FirstFit, Hybrid
from fastplace.sim.workload import Partition

INT64_MAX = 2**63 - 1
BIG = [[INT64_MAX, INT64_MAX]]  # one server any valid request fits: only validation refuses
MIB = 1 << 20


class Size(enum.IntEnum):
    SMALL = 3


class Ordered(Sequence[Any]):
    """A user-defined sequence (not a list, tuple or array)."""

    def __init__(self, values: list[Any]) -> None:
        self._values = values

    def __len__(self) -> int:
        return len(self._values)

    def __getitem__(self, index: Any) -> Any:
        return self._values[index]


@dataclass(frozen=True)
class Odd:
    """An input built fresh for every call (a generator is used up by the first one)."""

    label: str
    make: Callable[[], Any]

    def __repr__(self) -> str:
        return self.label


def _fixed(value: Any) -> Odd:
    return Odd(repr(value), lambda: value)


# Elements: every kind the core's conversion distinguishes, near its edges.
valid_scalars = st.one_of(
    st.integers(0, INT64_MAX),
    st.integers(0, 2**53).map(float),
    st.integers(0, 2**24).map(np.float32),
    st.integers(0, INT64_MAX).map(np.int64),
    st.integers(0, 2**64 - 1).map(np.uint64),
)
scalars = st.one_of(
    valid_scalars,
    st.integers(-(2**64), 2**64),
    st.sampled_from([0, 1, INT64_MAX, 2**63, -1, -(2**63), -(2**63) - 1]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1.0, 2.5, 9.1e18, 9.2e18, 2.0**63, -1.0]),
    st.booleans(),
    st.integers(-(2**63), INT64_MAX).map(np.int64),
    st.integers(0, 2**64 - 1).map(np.uint64),
    st.integers(0, 255).map(np.uint8),
    st.integers(-(2**31), 2**31 - 1).map(np.int32),
    st.floats(allow_nan=True, allow_infinity=True).map(np.float64),
    st.floats(width=32, allow_nan=True, allow_infinity=True).map(np.float32),
    st.floats(width=16, allow_nan=True, allow_infinity=True).map(np.float16),
    st.booleans().map(np.bool_),
    st.integers(-5, 5).map(np.array),  # 0-d integer arrays
    st.floats(-5, 5).map(np.array),  # 0-d float arrays
    st.booleans().map(np.array),
    st.just(Size.SMALL),
    st.sampled_from(["3", b"3", None, [3], (3,), 3j, fractions.Fraction(3), np.array([3])]),
)


@st.composite
def odd_requests(draw: st.DrawFn) -> Odd:
    """Requests of every shape: sequences, arrays, text, mappings, iterators, scalars."""
    # Mostly the right length (2), so that the elements decide; valid ones often.
    length = draw(st.sampled_from([2, 2, 2, 2, 0, 1, 3]))
    element = st.one_of(valid_scalars, scalars)
    values = draw(st.lists(element, min_size=length, max_size=length))
    integer = st.one_of(st.integers(0, INT64_MAX), st.integers(-3, 2**64 - 1))
    ints = draw(st.lists(integer, min_size=length, max_size=length))
    kind = draw(
        st.sampled_from(
            [
                "list",
                "tuple",
                "ordered",
                "generator",
                "dict",
                "set",
                "int_array",
                "uint_array",
                "float_array",
                "bool_array",
                "object_array",
                "text_array",
                "matrix",
                "range",
                "text",
                "scalar",
            ]
        )
    )
    small = [v % 2**63 for v in ints]
    makers: dict[str, Callable[[], Any]] = {
        "list": lambda: list(values),
        "tuple": lambda: tuple(values),
        "ordered": lambda: Ordered(list(values)),
        "generator": lambda: (v for v in values),
        "dict": lambda: {i: v for i, v in enumerate(small)},
        "set": lambda: set(small),
        "int_array": lambda: np.array(small, dtype=np.int64),
        "uint_array": lambda: np.array(ints, dtype=np.uint64) if min(ints, default=0) >= 0 else [],
        "float_array": lambda: np.array([float(v) for v in ints] + [0.5] * draw_half),
        "bool_array": lambda: np.array([v % 2 == 0 for v in ints], dtype=bool),
        "object_array": lambda: np.array(small, dtype=object),
        "text_array": lambda: np.array([str(v) for v in ints]),
        "matrix": lambda: np.array([small, small], dtype=np.int64),
        "range": lambda: range(small[0] if small else 0, (small[0] if small else 0) + 2),
        "text": lambda: draw_text,
        "scalar": lambda: values[0] if values else 0,
    }
    draw_half = draw(st.integers(0, 1))
    draw_text = draw(st.sampled_from(["12", b"12", "", b""]))
    label = (
        f"{kind}({values if kind in ('list', 'tuple', 'ordered', 'generator', 'scalar') else ints})"
    )
    return Odd(label, makers[kind])


FIVE_FROM_THE_ISSUE = [
    _fixed("12"),
    _fixed(b"12"),
    _fixed({1: 2, 3: 4}),
    Odd("np.array([1.5, 2.9])", lambda: np.array([1.5, 2.9])),
    _fixed((True, 5)),
]


def outcome(call: Callable[[], Any]) -> tuple[str, Any]:
    """("ok", result) or ("refused", exception class)."""
    try:
        return "ok", call()
    except (TypeError, ValueError) as error:
        return "refused", type(error)


def place_reference(request: Odd) -> tuple[str, Any]:
    """Cluster.place on a server with room for anything valid: the booked amounts."""
    cluster = Cluster(BIG)
    result = outcome(lambda: cluster.place(0, request.make()))
    return (result[0], cluster.used[0].tolist()) if result[0] == "ok" else result


class Ones:
    """A Python-side RO (not the native scorer): its path records feedback in Python."""

    def scores(self, features: Any) -> Any:
        return np.ones(features.shape[0], dtype=np.float32)


def allocator_state(allocator: ServerAllocator) -> tuple[Any, ...]:
    feedback = [(r.request, r.greedy_server, r.source) for r in allocator.feedback()]
    return allocator.cluster.snapshot(), allocator.stats().as_dict(), feedback


def allocate_entry(optimizer: Any) -> Callable[[Odd], tuple[str, Any]]:
    def run(request: Odd) -> tuple[str, Any]:
        cluster = Cluster(BIG)
        allocator = ServerAllocator(cluster, optimizer, budget_us=1e9, k=4)
        # Some history (stats, feedback), so that "unchanged" means something; released
        # again so that every valid request still fits (one server of 2^63 - 1 is all
        # a cluster may hold: its capacities sum to at most that).
        cluster.release(allocator.allocate([1, 1]).container)
        before, before_used = allocator_state(allocator), cluster.used
        result = outcome(lambda: allocator.allocate(request.make()))
        if result[0] == "refused":
            assert allocator_state(allocator) == before, request
            return result
        decision = result[1]
        assert decision.server >= 0, request  # valid requests always fit on BIG
        booked = cluster.used[decision.server] - before_used[decision.server]
        return "ok", booked.tolist()

    return run


def choose_entry(request: Odd) -> tuple[str, Any]:
    cluster = Cluster(BIG)
    allocator = ServerAllocator(cluster, Ones(), budget_us=1e9, k=4)
    before = allocator_state(allocator)
    result = outcome(lambda: allocator.choose(request.make()))
    if result[0] == "refused":
        assert allocator_state(allocator) == before, request
        return result
    assert cluster.n_containers == 0  # choose books nothing
    # What choose accepted is what allocate books: the request as the feedback saw it.
    return "ok", list(allocator.feedback()[-1].request)


def gang_entry(policy: Callable[[], Policy]) -> Callable[[Odd], tuple[str, Any]]:
    def run(request: Odd) -> tuple[str, Any]:
        cluster = Cluster(BIG)
        context = PlacementContext(cluster, BlockIndex(1, 1 << 30), np.random.default_rng(0))
        before = cluster.snapshot()
        no_blocks = np.zeros(0, dtype=np.int64)
        result = outcome(lambda: policy().place_gang(context, [request.make()], [no_blocks]))
        if result[0] == "refused":
            assert cluster.snapshot() == before, request
            return result
        assert result[1] is not None, request  # valid requests always fit on BIG
        return "ok", cluster.used[0].tolist()

    return run


ENTRY_POINTS: dict[str, Callable[[Odd], tuple[str, Any]]] = {
    "as_request": lambda r: outcome(lambda: as_request(r.make(), DEFAULT_RESOURCES)),
    "ServerAllocator.allocate (greedy)": allocate_entry(False),
    "ServerAllocator.allocate (Python RO)": allocate_entry(Ones()),
    "ServerAllocator.choose": choose_entry,
    "sim FirstFit.place_gang (core gang)": gang_entry(FirstFit),
    "sim DotProduct.place_gang (Python pipeline)": gang_entry(DotProduct),
    "sim Hybrid.place_gang (allocator)": gang_entry(lambda: Hybrid(optimizer=False)),
}


def same(expected: tuple[str, Any], got: tuple[str, Any]) -> bool:
    if expected[0] != got[0]:
        return False
    if expected[0] == "refused":
        return bool(expected[1] is got[1])
    return bool(expected[1] == got[1])


@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
@pytest.mark.parametrize("request_", FIVE_FROM_THE_ISSUE, ids=repr)
def test_the_five_requests_the_allocator_booked_are_refused_everywhere(
    entry: str, request_: Odd
) -> None:
    assert place_reference(request_)[0] == "refused"
    assert same(place_reference(request_), ENTRY_POINTS[entry](request_))


@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
@given(request=odd_requests())
@settings(max_examples=150)
def test_every_entry_point_accepts_exactly_what_cluster_place_accepts(
    entry: str, request: Odd
) -> None:
    expected = place_reference(request)
    assert same(expected, ENTRY_POINTS[entry](request)), (expected, request)


# ---- scalar amounts: the simulator's models and the Ray engine's manifests ----------


def amount_reference(value: Any) -> tuple[str, Any]:
    """Cluster.place's verdict on ``value`` as a request's memory, and what it books."""
    result = place_reference(Odd(repr(value), lambda: [value, 0]))
    return (result[0], result[1][0]) if result[0] == "ok" else result


def partition_entry(value: Any) -> tuple[str, Any]:
    result = outcome(lambda: Partition(memory_mb=value, cpu_millis=0, file_bytes=MIB))
    return (result[0], result[1].request[0]) if result[0] == "ok" else result


def of_memory_entry(value: Any) -> tuple[str, Any]:
    result = outcome(lambda: Partition.of_memory(value))
    return (result[0], result[1].memory_mb) if result[0] == "ok" else result


def deployment_entry(value: Any) -> tuple[str, Any]:
    # Deployer._request: what a deployment (and a healed partition) books.
    result = outcome(lambda: request_for_memory(value))
    return (result[0], result[1][0]) if result[0] == "ok" else result


@dataclass
class Store:
    """One model store for the whole run: a refused put must leave it as it was."""

    root: Path

    def files(self) -> list[tuple[str, bytes]]:
        return sorted((str(p), p.read_bytes()) for p in self.root.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def store() -> Iterator[Store]:
    pytest.importorskip("xxhash")
    with tempfile.TemporaryDirectory(prefix="fastplace-requests-") as root:
        yield Store(Path(root))


def put_entry(store: Store, memory_mb: Any) -> tuple[str, Any]:
    from fastplace.engines.ray.model_store import ModelStore

    models = ModelStore(store.root, block_size=64)
    before = store.files()
    weights = {"w": np.arange(16, dtype=np.int64)}
    result = outcome(lambda: models.put("m", 1, [weights], memory_mb=memory_mb))
    if result[0] == "refused":
        assert store.files() == before, memory_mb
        return result
    memory = result[1].partitions[0].memory_mb
    # Read back from disk as a deployer would, through the manifest's own check.
    assert models.manifest("m", 1).partitions[0].memory_mb == memory
    return "ok", memory


def manifest_entry(value: Any) -> tuple[str, Any]:
    from fastplace.engines.ray.model_store import FORMAT, VersionManifest

    try:
        text = json.dumps({"memory_mb": value})
    except (TypeError, ValueError):
        return amount_reference(value)  # JSON cannot carry it: nothing to compare
    part = {"index": 0, "tensors": [], "hashes": [], "sizes": [], **json.loads(text)}
    document = {"format": FORMAT, "model": "m", "version": 1, "block_size": 64}
    document |= {"config": {}, "partitions": [part]}
    result = outcome(lambda: VersionManifest.from_json(json.dumps(document)))
    if result[0] == "ok":
        return result[0], result[1].partitions[0].memory_mb
    # A manifest is a file: any field it gets wrong is a ValueError ("malformed
    # manifest"), whatever class the same value gives Cluster.place; accept/refuse and
    # the amount booked must still agree.
    assert result[1] is ValueError, result
    reference = amount_reference(value)
    return reference if reference[0] == "refused" else result


AMOUNT_ENTRY_POINTS: dict[str, Callable[[Any], tuple[str, Any]]] = {
    "sim Partition": partition_entry,
    "sim Partition.of_memory": of_memory_entry,
    "ray Deployer request": deployment_entry,
    "ray manifest from_json": manifest_entry,
}


@pytest.mark.parametrize("entry", list(AMOUNT_ENTRY_POINTS))
@given(value=scalars)
@settings(max_examples=150)
def test_memory_amounts_are_checked_as_cluster_place_checks_them(entry: str, value: Any) -> None:
    assert same(amount_reference(value), AMOUNT_ENTRY_POINTS[entry](value)), value


@given(value=scalars)
@settings(max_examples=60)
def test_model_store_put_checks_memory_as_cluster_place_does(store: Store, value: Any) -> None:
    expected = amount_reference(value)
    assert same(expected, put_entry(store, [value])), value  # one per partition
    if not isinstance(value, list | tuple | str | bytes) and np.ndim(value) == 0:
        assert same(expected, put_entry(store, value)), value  # one for all partitions


# ---- where as_request is deliberately stricter than today's core --------------------


@pytest.mark.parametrize(
    "request_",
    [bytearray(b"12"), memoryview(b"12"), [np.complex128(5 + 3j), 1], [np.void(b"1"), 1]],
    ids=repr,
)
def test_as_request_refuses_bytes_like_complex_and_void(request_: Any) -> None:
    # Cluster.place books these today ([49, 50], the real part 5, the byte 1); the core's
    # conversion is another part of issue 15 and should refuse them too.
    with pytest.raises(TypeError):
        as_request(request_, DEFAULT_RESOURCES)
    allocator = ServerAllocator(Cluster(BIG), False)
    with pytest.raises(TypeError):
        allocator.allocate(request_)
    assert allocator.cluster.n_containers == 0
