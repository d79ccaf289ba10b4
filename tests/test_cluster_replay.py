"""Cluster.replay against the same events applied one by one (to a byte-identical copy
of the core, and to the reference model)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastplace import Cluster, ReplayOp, ReplayResult
from reference.cluster_model import ReferenceCluster, Twin

PLACE_FF, RELEASE_EVENT, PLACE_BF, RELEASE_CONTAINER = (int(op) for op in ReplayOp)


def random_stream(rng: np.random.Generator, m: int, dims: int, top: int, live: list[int]):
    """m events: placements, releases of earlier placement events and of the containers
    in ``live`` (each released at most once)."""
    ops, refs = [], []
    requests = rng.integers(0, top + 2, size=(m, dims)) // rng.integers(1, 6, size=(m, 1))
    placed_events: list[int] = []
    to_release = list(live)
    rng.shuffle(to_release)
    for i in range(m):
        roll = rng.random()
        if roll < 0.25 and placed_events:
            ops.append(RELEASE_EVENT)
            refs.append(placed_events.pop(int(rng.integers(len(placed_events)))))
        elif roll < 0.35 and to_release:
            ops.append(RELEASE_CONTAINER)
            refs.append(to_release.pop())
        else:
            ops.append(PLACE_FF if rng.random() < 0.5 else PLACE_BF)
            refs.append(int(rng.integers(-5, 5)))  # ignored for placements
            placed_events.append(i)
    return np.array(ops, dtype=np.uint8), requests.astype(np.int64), np.array(refs, dtype=np.int64)


def one_by_one(cluster: Cluster, ops, requests, refs):
    """The events as individual place_with / release calls; returns what replay would."""
    servers, containers = [], []
    stats = {"placed": 0, "unplaced": 0, "released": 0}
    for i, op in enumerate(ops.tolist()):
        if op in (PLACE_FF, PLACE_BF):
            policy = "first_fit" if op == PLACE_FF else "best_fit"
            container, server = cluster.place_with(requests[i], policy)
            stats["placed" if server >= 0 else "unplaced"] += 1
        else:
            container = containers[refs[i]] if op == RELEASE_EVENT else int(refs[i])
            server = -1
            if container >= 0:
                server = cluster.container(container)[0]
                cluster.release(container)
                stats["released"] += 1
        servers.append(server)
        containers.append(container)
    return servers, containers, stats


def setup(n: int, dims: int, seed: int, top: int = 100):
    rng = np.random.default_rng(seed)
    names = [f"r{d}" for d in range(dims)]
    capacity = rng.integers(0, top, size=(n, dims))
    twin = Twin(Cluster(capacity, names), ReferenceCluster(capacity.tolist(), names))
    for _ in range(n // 2 + 3):
        twin.place_with(rng.integers(0, top // 3, size=dims).tolist(), "first_fit")
    for server in rng.choice(n, size=n // 10, replace=False):
        twin.cordon(int(server))
    return twin, rng


def check_replay(core: Cluster, ops, requests, refs, twin: Twin | None = None) -> ReplayResult:
    copy = Cluster.restore(core.snapshot())
    result = core.replay(ops, requests, refs)
    assert isinstance(result, ReplayResult)
    servers, containers, stats = one_by_one(copy, ops, requests, refs)
    assert result.servers.tolist() == servers
    assert result.containers.tolist() == containers
    assert (result.placed, result.unplaced, result.released) == (
        stats["placed"],
        stats["unplaced"],
        stats["released"],
    )
    assert core.snapshot() == copy.snapshot()
    core.validate()
    if twin is None:
        return result
    # The model follows the same events: each placement must be the one the policy
    # allows, each release must free the container the event names.
    model_ids = {}
    for i, op in enumerate(ops.tolist()):
        if op in (PLACE_FF, PLACE_BF):
            policy = "first_fit" if op == PLACE_FF else "best_fit"
            request = requests[i].tolist()
            assert twin.model.accepts(servers[i], request, policy), f"event {i}"
            if servers[i] >= 0:
                model_ids[i] = twin.model.place(servers[i], request)
        elif op == RELEASE_EVENT:
            if refs[i] in model_ids:
                twin.model.release(model_ids.pop(refs[i]))
        else:
            twin.model.release(twin.ids.pop(int(refs[i])))
    twin.ids.update({containers[i]: model_id for i, model_id in model_ids.items()})
    twin.check_state()
    twin.check_containers()
    return result


@settings(max_examples=60)
@given(
    st.sampled_from([1, 2, 63, 64, 65, 128, 129]),
    st.integers(1, 8),
    st.integers(0, 120),
    st.integers(0, 2**32 - 1),
)
def test_replay_matches_one_by_one(n, dims, m, seed):
    twin, rng = setup(n, dims, seed)
    ops, requests, refs = random_stream(rng, m, dims, 100, list(twin.ids))
    check_replay(twin.core, ops, requests, refs, twin)
    # a second stream continues from the state the first one left
    ops, requests, refs = random_stream(rng, m, dims, 100, list(twin.ids))
    check_replay(twin.core, ops, requests, refs, twin)


@pytest.mark.slow
@pytest.mark.parametrize("n", [4095, 4097])
def test_large_replay_matches_one_by_one(n):
    # one by one on a copy of the core only: the model's best_fit is too slow at this size
    rng = np.random.default_rng(n)
    core = Cluster(rng.integers(0, 1000, size=(n, 2)))
    live = [core.place_with(rng.integers(0, 300, size=2), "first_fit")[0] for _ in range(n // 2)]
    for server in rng.choice(n, size=n // 10, replace=False):
        core.cordon(int(server))
    ops, requests, refs = random_stream(rng, 6000, 2, 1000, [c for c in live if c >= 0])
    result = check_replay(core, ops, requests, refs)
    assert result.placed > 0
    assert result.released > 0


def test_replay_of_no_events():
    cluster = Cluster([[10, 10]])
    before = cluster.snapshot()
    result = cluster.replay(np.zeros(0, dtype=np.uint8), np.zeros((0, 2), dtype=np.int64))
    assert result.servers.tolist() == []
    assert result.containers.tolist() == []
    assert (result.placed, result.unplaced, result.released) == (0, 0, 0)
    assert cluster.snapshot() == before


def test_release_event_of_an_unplaced_event_is_a_no_op():
    cluster = Cluster([[10, 10]])
    ops = [PLACE_FF, PLACE_BF, RELEASE_EVENT, RELEASE_EVENT]
    requests = [[6, 6], [6, 6], [0, 0], [0, 0]]
    result = cluster.replay(ops, requests, [-1, -1, 1, 0])
    # event 1 found no server (event 0 holds 6 of 10), so releasing it does nothing
    assert result.servers.tolist() == [0, -1, -1, 0]
    assert result.containers[1] == -1
    assert result.containers[2] == -1
    assert result.containers[3] == result.containers[0]
    assert (result.placed, result.unplaced, result.released) == (1, 1, 1)
    assert cluster.free.tolist() == [[10, 10]]
    assert cluster.n_containers == 0


def test_release_container_frees_a_live_container():
    cluster = Cluster([[10, 10], [10, 10]])
    first = cluster.place(1, [4, 4])
    result = cluster.replay([RELEASE_CONTAINER, PLACE_BF], [[0, 0], [10, 10]], [first, -1])
    assert result.servers.tolist() == [1, 0]  # both servers are empty again: tie -> 0
    assert result.containers[0] == first
    with pytest.raises(KeyError):
        cluster.release(first)
    assert cluster.container_counts().tolist() == [1, 0]


def test_replay_accepts_lists_and_enum_codes():
    cluster = Cluster([[10, 10]])
    result = cluster.replay(
        [ReplayOp.PLACE_FIRST_FIT, ReplayOp.RELEASE_EVENT], [[1, 1], [0, 0]], [-1, 0]
    )
    assert result.servers.tolist() == [0, 0]
    assert cluster.n_containers == 0
