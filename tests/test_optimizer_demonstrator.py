"""The demonstrators the DQN imitates, and the locality policy built on the same rule:
checked against a plain model of the rule over the cluster itself, and the margin loss
that teaches it."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from tests.reference.locality_model import locality_choice, reach_choice

from fastplace import BlockIndex, Cluster
from fastplace.optimizer.demonstrator import DEMONSTRATORS, first_fit, locality, reach
from fastplace.optimizer.features import FEATURE_NAMES, N_FEATURES
from fastplace.sim.policies import LocalityFit, PlacementContext, ReachFit

MEMORY, CPU = 1000, 100


def churned(seed: int, n: int, churn: int):  # type: ignore[no-untyped-def]
    """A cluster and block index after random placements, releases and fetches."""
    rng = np.random.default_rng(seed)
    capacity = np.column_stack(
        (rng.choice([0, MEMORY, 2 * MEMORY], size=n, p=[0.05, 0.75, 0.2]), np.full(n, CPU))
    )
    cluster = Cluster(capacity, ["memory", "cpu"])
    blocks = BlockIndex(n, np.full(n, 40 * 4096))
    ids = np.asarray(
        blocks.intern(
            rng.integers(0, 2**63, size=12, dtype=np.uint64), 4096 * rng.integers(1, 9, size=12)
        ),
        dtype=np.int64,
    )
    live: list[int] = []
    for _ in range(churn):
        if live and rng.random() < 0.3:
            cluster.release(live.pop(int(rng.integers(0, len(live)))))
            continue
        request = [int(rng.choice([50, 100, 200, 400])), int(rng.integers(1, 30))]
        server = int(rng.integers(0, n))
        if not cluster.fits(server, request):
            server = cluster.first_fit(request)
        if server >= 0:
            live.append(cluster.place(server, request))
        if rng.random() < 0.5:
            blocks.fetch(int(rng.integers(0, n)), rng.choice(ids, size=int(rng.integers(1, 8))))
    return rng, cluster, blocks, ids


@settings(max_examples=200, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.sampled_from([1, 3, 10, 40, 80, 150]),
    churn=st.integers(0, 500),
    window=st.sampled_from([1, 2, 5, 12, 32]),
    min_load=st.sampled_from([0.0, 0.2, 0.5, 0.95]),
)
def test_locality_policy_equals_the_plain_model(
    seed: int, n: int, churn: int, window: int, min_load: float
) -> None:
    rng, cluster, blocks, ids = churned(seed, n, churn)
    policy = LocalityFit(window, min_load)
    context = PlacementContext(cluster, blocks, rng)
    for _ in range(5):
        request = [int(rng.choice([50, 100, 200, 400, 900])), int(rng.integers(1, 60))]
        version = rng.choice(ids, size=int(rng.integers(0, 8)))
        chosen = policy.choose(context, request, version)
        expected = locality_choice(cluster, blocks, request, version, window, min_load)
        assert chosen == expected
        first = cluster.first_fit(request)
        event("first fit" if chosen == first else "a cached server instead of first fit")


@settings(max_examples=150, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.sampled_from([1, 10, 70, 150, 300]),
    churn=st.integers(0, 600),
    min_load=st.sampled_from([0.0, 0.2, 0.5]),
)
def test_reach_policy_equals_the_plain_model(
    seed: int, n: int, churn: int, min_load: float
) -> None:
    rng, cluster, blocks, ids = churned(seed, n, churn)
    policy = ReachFit(min_load)
    context = PlacementContext(cluster, blocks, rng)
    for _ in range(5):
        request = [int(rng.choice([50, 100, 200, 400, 900])), int(rng.integers(1, 60))]
        version = rng.choice(ids, size=int(rng.integers(0, 8)))
        chosen = policy.choose(context, request, version)
        assert chosen == reach_choice(cluster, blocks, request, version, min_load)
        far = chosen >= 0 and chosen not in cluster.feasible(request)[:12]
        event("past the locality window" if far else "within the first 12 feasible")


def rows(n: int) -> np.ndarray:
    features = np.zeros((n, N_FEATURES), dtype=np.float32)
    features[:, FEATURE_NAMES.index("first_fit_rank")] = np.arange(n) / 64
    features[0, FEATURE_NAMES.index("is_first_fit")] = 1.0
    features[:, FEATURE_NAMES.index("free_memory_before")] = 0.5
    features[:, FEATURE_NAMES.index("active")] = 1.0
    return features


def test_locality_by_hand() -> None:
    cached = FEATURE_NAMES.index("cached_share")
    x = rows(20)
    assert locality(x) == 0  # nothing cached anywhere: first fit
    x[3, cached] = 0.4
    x[7, cached] = 0.9
    x[15, cached] = 1.0  # outside the default window of 12
    assert locality(x) == 7
    x[0, cached] = 0.9
    assert locality(x) == 0  # ties go to the lowest index
    x[0, cached] = 0.0
    x[7, FEATURE_NAMES.index("active")] = 0.0  # an idle server is not eligible
    assert locality(x) == 3
    x[3, FEATURE_NAMES.index("free_memory_before")] = 0.9  # nor a nearly empty one
    assert locality(x) == 0
    assert locality(x, window=16) == 15
    assert first_fit(x) == 0 and set(DEMONSTRATORS) == {"first_fit", "locality", "reach"}
    with pytest.raises(ValueError, match="at least one candidate"):
        locality(x[:0])


def test_reach_is_locality_without_the_window() -> None:
    cached = FEATURE_NAMES.index("cached_share")
    rank = FEATURE_NAMES.index("first_fit_rank")
    x = rows(40)
    assert reach(x) == 0  # nothing cached anywhere: first fit
    x[5, cached] = 0.3
    x[39, cached] = 0.8
    x[39, rank] = 1.0  # ranks stop at 64 / 64: a server anywhere past the 64th feasible
    assert locality(x) == 5 and reach(x) == 39
    x[39, FEATURE_NAMES.index("free_memory_before")] = 0.85  # not min_load full
    assert reach(x) == 5 and reach(x, min_load=0.1) == 39
    x[5, FEATURE_NAMES.index("active")] = 0.0
    assert reach(x) == 0


def test_locality_policy_checks_its_settings() -> None:
    with pytest.raises(ValueError, match="window = 33"):
        LocalityFit(window=33)
    with pytest.raises(ValueError, match=r"min_load = 1\.5"):
        LocalityFit(min_load=1.5)
