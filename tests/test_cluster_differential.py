"""Core vs reference model: queries and operation sequences on random clusters.

Server counts straddle the 64-server words and the 4096-server summary words of the
core's bitsets; dimensions run from 1 to 8; capacities mix zeros, tiny values (many
ties), level-boundary values and huge values; requests and free amounts are aimed at
the core's level edges (t - 1, t, t + 1 for every level threshold t of a dimension:
the k * ceil(max capacity / 64) of the issue and the core's geometric thresholds,
both derived from the largest capacity the cluster was built with).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastplace import Cluster
from reference.cluster_model import ReferenceCluster, Twin, boundary_amounts, level_thresholds
from snapshot_format import ClusterImage

WORD_COUNTS = [1, 2, 63, 64, 65, 127, 128, 129, 191, 192, 193]
SUMMARY_COUNTS = [4095, 4096, 4097, 4161]
STYLES = ["tiny", "levels", "wide", "uniform", "sparse"]


def names(dims: int) -> tuple[str, ...]:
    return tuple(f"r{d}" for d in range(dims))


def make_capacity(rng: np.random.Generator, n: int, dims: int, style: str) -> list[list[int]]:
    if style == "tiny":  # many equal rows, zeros and ties
        matrix = rng.integers(0, 13, size=(n, dims))
    elif style == "wide":
        matrix = rng.integers(0, 2**40, size=(n, dims))
        matrix[rng.random((n, dims)) < 0.1] = 0
    elif style == "uniform":
        matrix = np.tile(rng.integers(0, 10**6, size=dims), (n, 1))
    elif style == "sparse":  # mostly zero-capacity servers, a few real ones
        matrix = rng.integers(1, 5000, size=(n, dims))
        matrix[rng.random(n) < 0.8] = 0
    else:  # "levels": values on and next to level boundaries of a random top
        top = rng.integers(1, 10**6, size=dims)
        matrix = np.zeros((n, dims), dtype=np.int64)
        for d in range(dims):
            choices = boundary_amounts(int(top[d]), int(top[d]))
            matrix[:, d] = rng.choice(choices, size=n)
            if n:  # one server at the top itself (an empty cluster has none)
                matrix[rng.integers(n), d] = top[d]
    return matrix.astype(np.int64).tolist()


def query_requests(rng: np.random.Generator, twin: Twin, count: int):
    """Zeros, boundary amounts, exact free rows (and one unit more), random, too big."""
    model = twin.model
    levels_from = twin.construction_tops
    dims = model.n_dims
    tops = [max((row[d] for row in model.capacity), default=0) for d in range(dims)]
    edges = [boundary_amounts(levels_from[d], tops[d] + 1) for d in range(dims)]
    requests = [[0] * dims, [t + 1 for t in tops]]
    for _ in range(count):
        kind = rng.integers(5)
        if kind == 0 or model.n_servers == 0:
            requests.append([int(rng.choice(edges[d])) for d in range(dims)])
        elif kind == 1:
            row = list(model.free[rng.integers(model.n_servers)])
            requests.append(row)
            bumped = list(row)
            bumped[rng.integers(dims)] += 1
            requests.append(bumped)
        elif kind == 2:  # one dimension at a boundary, the rest zero
            request = [0] * dims
            d = int(rng.integers(dims))
            request[d] = int(rng.choice(edges[d]))
            requests.append(request)
        else:
            requests.append([int(rng.integers(0, t + 2)) // int(rng.integers(1, 4)) for t in tops])
    return requests


def shape_free(twin: Twin, rng: np.random.Generator, operations: int) -> None:
    """Books containers that leave free amounts on level boundaries, releases some."""
    model = twin.model
    levels_from = twin.construction_tops
    for _ in range(operations):
        server = int(rng.integers(model.n_servers))
        if rng.random() < 0.15 and twin.ids:
            twin.release(int(rng.choice(list(twin.ids))))
            continue
        request = []
        for d in range(model.n_dims):
            free = model.free[server][d]
            targets = boundary_amounts(levels_from[d], free)
            target = int(rng.choice(targets)) if rng.random() < 0.8 else int(rng.integers(free + 1))
            request.append(free - target)
        if rng.random() < 0.1:  # sometimes over capacity: must be refused
            request[int(rng.integers(model.n_dims))] += 1
        twin.place(server, request)
    for server in range(model.n_servers):
        if rng.random() < 0.2:
            twin.cordon(server)


@st.composite
def scenarios(draw, counts=tuple(WORD_COUNTS)):
    n = draw(st.sampled_from(counts))
    dims = draw(st.integers(1, 8))
    style = draw(st.sampled_from(STYLES))
    seed = draw(st.integers(0, 2**32 - 1))
    return n, dims, style, seed


def build(n: int, dims: int, style: str, seed: int, operations: int) -> tuple[Twin, object]:
    rng = np.random.default_rng(seed)
    capacity = make_capacity(rng, n, dims, style)
    twin = Twin(
        Cluster(np.array(capacity, dtype=np.int64).reshape(n, dims), names(dims)),
        ReferenceCluster(capacity, names(dims)),
    )
    shape_free(twin, rng, operations)
    return twin, rng


@settings(max_examples=60)
@given(scenarios())
def test_queries_match_model(scenario):
    n, dims, style, seed = scenario
    twin, rng = build(n, dims, style, seed, operations=min(3 * n, 60))
    twin.check_state()
    twin.check_containers()
    servers = rng.integers(0, n, size=min(n, 8)).tolist()
    for request in query_requests(rng, twin, 12):
        twin.check_queries(request, servers)


@pytest.mark.slow
@settings(max_examples=6)
@given(scenarios(counts=tuple(SUMMARY_COUNTS)))
def test_queries_match_model_across_summary_words(scenario):
    n, dims, style, seed = scenario
    twin, rng = build(n, dims, style, seed, operations=80)
    twin.check_state()
    # Cordon whole 64-server words, and servers at the far end, so that the summary
    # words and the last partial word get exercised.
    for server in list(range(64, 128)) + list(range(n - 3, n)):
        twin.cordon(server)
    servers = [0, 63, 64, 4094, n - 1]
    for request in query_requests(rng, twin, 4):
        twin.check_queries(request, servers)
    twin.check_state()


@settings(max_examples=60)
@given(scenarios(), st.lists(st.integers(0, 7), min_size=1, max_size=40))
def test_operation_sequences_match_model(scenario, script):
    """Random mixes of every mutation, with the whole state compared after each one."""
    n, dims, style, seed = scenario
    twin, rng = build(n, dims, style, seed, operations=min(n, 10))
    model = twin.model
    for step in script:
        request = query_requests(rng, twin, 1)[-1]
        if step == 0:
            twin.place_with(request, "first_fit")
        elif step == 1:
            twin.place_with(request, "best_fit")
        elif step == 2 and twin.ids:
            twin.release(int(rng.choice(list(twin.ids))))
        elif step == 3:
            size = int(rng.integers(0, 5))
            gang = [query_requests(rng, twin, 1)[-1] for _ in range(size)]
            twin.place_gang(gang, "first_fit" if rng.random() < 0.5 else "best_fit")
        elif step == 4:
            twin.cordon(int(rng.integers(model.n_servers)))
        elif step == 5:
            twin.uncordon(int(rng.integers(model.n_servers)))
        elif step == 6:
            extra = make_capacity(rng, int(rng.integers(0, 70)), dims, style)
            twin.add_servers(np.array(extra, dtype=np.int64).reshape(-1, dims))
        else:
            twin.place(int(rng.integers(model.n_servers)), request)
        twin.check_state()
        twin.check_queries(request)
    twin.check_containers()


@settings(max_examples=40)
@given(
    st.sampled_from([0, 1, 62, 63, 64, 65, 127, 128]),
    st.sampled_from([1, 2, 63, 64, 65, 66, 130]),
    st.integers(1, 8),
    st.integers(0, 2**32 - 1),
)
def test_add_servers_across_word_boundaries(start, extra, dims, seed):
    """New servers are found by every query, and capacities above the original
    largest (so above the top level) are still handled exactly."""
    rng = np.random.default_rng(seed)
    capacity = rng.integers(0, 1000, size=(start, dims))
    twin = Twin(Cluster(capacity, names(dims)), ReferenceCluster(capacity.tolist(), names(dims)))
    added = rng.integers(0, 5000, size=(extra, dims))
    twin.add_servers(added)
    twin.check_state()
    # Fill the new servers close to their capacity so that free amounts above the
    # old top level sit next to each other.
    for server in range(start, start + extra):
        row = twin.model.free[server]
        twin.place(server, [max(0, f - int(rng.integers(0, 3))) for f in row])
    for request in [[0] * dims, [1] * dims, *added[:5].tolist(), *(added[:5] // 2).tolist()]:
        twin.check_queries(request, [0, start, start + extra - 1] if start else [extra - 1])
    twin.check_state()


@settings(max_examples=60)
@given(scenarios(), st.integers(0, 6), st.sampled_from(["first_fit", "best_fit"]))
def test_gangs_match_model(scenario, size, policy):
    n, dims, style, seed = scenario
    twin, rng = build(n, dims, style, seed, operations=min(n, 20))
    for _ in range(6):
        gang = [query_requests(rng, twin, 1)[-1] for _ in range(size)]
        twin.place_gang(gang, policy)
        twin.check_state()


@pytest.mark.parametrize("n", [1, 63, 64, 65, 128, 129])
@pytest.mark.parametrize("dims", [1, 8])
def test_level_boundaries_exhaustively(n, dims):
    """Every server's free amount and every request sweep all boundary amounts."""
    top = 6400 + 37
    capacity = [[top] * dims for _ in range(n)]
    twin = Twin(Cluster(capacity, names(dims)), ReferenceCluster(capacity, names(dims)))
    amounts = boundary_amounts(top, top)
    for server in range(n):
        target = amounts[(server * 7) % len(amounts)]
        twin.place(server, [top - target] * dims)
    twin.check_state()
    for amount in amounts:
        request = [0] * dims
        request[-1] = amount
        twin.check_queries(request)
        twin.check_queries([amount] * dims)


@pytest.mark.parametrize("largest", [0, 1, 63, 64, 100, 6437, 10**6, 2**40 + 3])
def test_edge_targets_cover_the_core_thresholds(largest):
    """The tests above aim at level edges computed by ``level_thresholds``: check that
    those include every threshold the core really uses (read from its snapshot, where
    tests/snapshot_format.py)."""
    cluster = Cluster([[largest]], ["m"])
    core = ClusterImage.parse(cluster.snapshot()).thresholds[0]
    assert core[0] == 0
    assert set(core) <= set(level_thresholds(largest))
