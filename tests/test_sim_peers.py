"""The peer schedulers' rules (fastplace.sim.peers), each against a small example worked
out by hand, and the properties every policy owes the simulator: seeded determinism,
never an infeasible server, gangs all or nothing, and the peers' scale limits
(kube-scheduler scores only numFeasibleNodesToFind nodes, Nomad max(2, ceil(log2 n)))."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastplace import BlockIndex, Cluster
from fastplace.placement_policy import PlacementContext, Policy
from fastplace.sim import POLICIES, SimConfig, make_policy, simulate, synthetic_workload
from fastplace.sim.peers import PEERS, KubeDefault, NomadBinPack, PASch
from fastplace.sim.peers.kube_scheduler import (
    balanced_allocation,
    least_allocated,
    most_allocated,
    num_feasible_nodes_to_find,
)
from fastplace.sim.peers.nomad import _limit_iterator, nomad_limit, score_fit_binpack
from fastplace.sim.peers.openwhisk import (
    action_hash,
    java_string_hash,
    pairwise_coprime_numbers_until,
)
from fastplace.sim.peers.ray_hybrid import top_k

MB = 1 << 20
NO_BLOCKS = np.zeros(0, dtype=np.int64)


def _context(
    capacity: list[list[int]],
    used: list[list[int]],
    seed: int = 0,
    blocks: BlockIndex | None = None,
    model: str | None = None,
) -> PlacementContext:
    """A cluster with ``used[i]`` booked on server i (zeros: nothing booked)."""
    cluster = Cluster(capacity)
    for server, amounts in enumerate(used):
        if any(amounts):
            cluster.place(server, amounts)
    index = blocks if blocks is not None else BlockIndex(len(capacity), 1 << 32)
    return PlacementContext(cluster, index, np.random.default_rng(seed), model=model)


def test_every_peer_is_a_policy_by_name() -> None:
    for name in PEERS:
        policy = make_policy(name)
        assert isinstance(policy, Policy) and policy.name == name and name in POLICIES


# ---- kube-scheduler ---------------------------------------------------------------


def test_k8s_scores_by_hand() -> None:
    # Three servers of (1000, 1000); booked (500,500), (100,100), (100,600); the pod asks
    # (150, 150), so requested after placing is (650,650), (250,250), (250,750):
    #   LeastAllocated:      35, 75, (75 + 25) / 2 = 50
    #   MostAllocated:       65, 25, (25 + 75) / 2 = 50
    #   BalancedAllocation: 100, 100, std |0.25 - 0.75| / 2 = 0.25 -> 75
    requested = np.array([[650, 650], [250, 250], [250, 750]])
    capacity = np.full((3, 2), 1000)
    assert least_allocated(requested, capacity).tolist() == [35, 75, 50]
    assert most_allocated(requested, capacity).tolist() == [65, 25, 50]
    assert balanced_allocation(requested, capacity).tolist() == [100, 100, 75]
    used = [[500, 500], [100, 100], [100, 600]]
    # Totals (no images cached): default 135, 175, 125 -> server 1;
    # most allocated 165, 125, 125 -> server 0.
    context = _context([[1000, 1000]] * 3, used)
    assert make_policy("k8s_default").choose(context, [150, 150], NO_BLOCKS) == 1
    assert make_policy("k8s_most_allocated").choose(context, [150, 150], NO_BLOCKS) == 0


def test_k8s_image_locality_by_hand() -> None:
    # The container's file: three 600 MB blocks, cached on servers 0 and 2 of 3. Each
    # holder scores 3 * 600 MB * 2/3 = 1200 MB, clamped to 1000 MB -> ImageLocality 100;
    # server 1 holds none -> 0. Totals with the fits above: 235, 175, 225 -> server 0.
    index = BlockIndex(3, 4 << 30)
    version = index.intern([11, 12, 13], [600 * MB] * 3)
    index.fetch(0, version)
    index.fetch(2, version)
    context = _context([[1000, 1000]] * 3, [[500, 500], [100, 100], [100, 600]], blocks=index)
    policy = KubeDefault()
    assert policy.scores(context, np.array([0, 1, 2]), [150, 150], version).tolist() == [
        235,
        175,
        225,
    ]
    assert policy.choose(context, [150, 150], version) == 0
    # One holder of 3 only: 1800 MB * 1/3 = 600 MB -> 100 * (600 - 23) / 977 = 59.
    index.evict_server(2)
    assert policy.scores(context, np.array([0]), [150, 150], version).tolist() == [35 + 100 + 59]


def test_holder_spread_bytes_by_hand_and_its_overflow() -> None:
    # Blocks of 10, 20, 30 bytes: the first on servers 0 and 1, the others on 0 only.
    # Server 0: 10 * 2 + 20 + 30 = 70; server 1: 10 * 2 = 20.
    index = BlockIndex(3, 1000)
    version = index.intern([1, 2, 3], [10, 20, 30])
    index.fetch(0, version)
    index.fetch(1, version[:1])
    servers, spread, total = index.holder_spread_bytes(version)
    assert servers.tolist() == [0, 1] and spread.tolist() == [70, 20] and total == 60
    # A sum that could pass int64 is refused rather than wrapped.
    huge = BlockIndex(2, 2**63 - 1)
    block = huge.intern([5], [2**62])
    huge.fetch(0, block)
    huge.fetch(1, block)
    with pytest.raises(ValueError, match="overflow int64"):
        huge.holder_spread_bytes(block)


def test_k8s_breaks_ties_at_random_with_the_seed() -> None:
    # Two empty, equal servers tie on every plugin: each is picked under some seed, and
    # the same seed picks the same one.
    chosen = {
        make_policy("k8s_default").choose(_context([[100, 100]] * 2, [], seed), [10, 10], NO_BLOCKS)
        for seed in range(40)
    }
    assert chosen == {0, 1}
    again = [
        make_policy("k8s_default").choose(_context([[100, 100]] * 2, [], 7), [10, 10], NO_BLOCKS)
        for _ in range(3)
    ]
    assert len(set(again)) == 1


def test_k8s_num_feasible_nodes_to_find() -> None:
    # Below 100 nodes: all; then 50 - n/125 percent, at least 5%, at least 100 nodes.
    assert num_feasible_nodes_to_find(99) == 99
    assert num_feasible_nodes_to_find(150) == 100  # 49% = 73, raised to 100
    assert num_feasible_nodes_to_find(1000) == 420  # 42%
    assert num_feasible_nodes_to_find(5000) == 500  # 10%
    assert num_feasible_nodes_to_find(20000) == 1000  # 50 - 160 < 5: 5%
    assert num_feasible_nodes_to_find(1000, 10) == 100


def test_k8s_scores_only_the_nodes_found_from_a_round_robin_start() -> None:
    cluster = Cluster([[100, 100]] * 1000)
    policy = KubeDefault()
    first = policy.nodes_to_score(cluster, [1, 1])
    second = policy.nodes_to_score(cluster, [1, 1])
    third = policy.nodes_to_score(cluster, [1, 1])
    assert first.tolist() == list(range(420))
    assert second.tolist() == list(range(420, 840))
    assert third.tolist() == [*range(840, 1000), *range(260)]  # wraps round


def test_k8s_start_moves_past_the_infeasible_nodes_it_visited() -> None:
    # 200 nodes, only the even ones fit: 100 must be found (min 100), the last is node
    # 198, so 199 nodes were processed and the next search starts at node 199.
    cluster = Cluster([[100, 100]] * 200)
    for server in range(1, 200, 2):
        cluster.place(server, [95, 95])
    policy = KubeDefault()
    found = policy.nodes_to_score(cluster, [10, 10])
    assert found.tolist() == list(range(0, 200, 2))
    assert policy.nodes_to_score(cluster, [10, 10]).tolist() == [*range(0, 200, 2)]
    context = PlacementContext(cluster, BlockIndex(200, 1 << 30), np.random.default_rng(0))
    policy.choose(context, [10, 10], NO_BLOCKS)
    assert policy.last_scored == 100


def test_k8s_start_after_a_partial_search() -> None:
    # 300 nodes, 48% = 144 to find; nodes 0-49 are full: the first search finds 50..193
    # and processed 194 nodes, so the next starts at 194: 194..299, then past the full
    # 0..49 (wrapping round) 50..87.
    cluster = Cluster([[100, 100]] * 300)
    for server in range(50):
        cluster.place(server, [100, 100])
    policy = KubeDefault()
    assert num_feasible_nodes_to_find(300) == 144
    assert policy.nodes_to_score(cluster, [1, 1]).tolist() == list(range(50, 194))
    assert policy.nodes_to_score(cluster, [1, 1]).tolist() == [*range(194, 300), *range(50, 88)]


# ---- Nomad ------------------------------------------------------------------------


def test_nomad_score_fit_binpack_by_hand() -> None:
    # After placing, (800, 800) of (1000, 1000) used: free 0.2 each, 20 - 2 * 10^0.2
    # = 16.83; (300, 300): 20 - 2 * 10^0.7 = 9.98; empty after: 20 - 20 = 0; over-full
    # is clamped to 18.
    requested = np.array([[800, 800], [300, 300], [0, 0], [1000, 1000]])
    scores = score_fit_binpack(requested, np.full((4, 2), 1000), 1, 0)
    assert scores[0] == pytest.approx(20 - 2 * 10**0.2)
    assert scores[1] == pytest.approx(20 - 2 * 10**0.7)
    assert scores[2] == 0.0 and scores[3] == 18.0


def test_nomad_packs_onto_the_fuller_server() -> None:
    # Two servers: limit 2 scores both whatever the shuffle. Booked (100,100) and
    # (600,600), the allocation (200,200): 9.98 vs 16.83 -> server 1.
    for seed in range(5):
        context = _context([[1000, 1000]] * 2, [[100, 100], [600, 600]], seed)
        assert make_policy("nomad_binpack").choose(context, [200, 200], NO_BLOCKS) == 1


def test_nomad_limit_and_shuffled_round_robin() -> None:
    assert [nomad_limit(n) for n in (1, 2, 3, 4, 5, 150, 1000, 1024, 1025)] == [
        2,
        2,
        2,
        2,
        3,
        8,
        10,
        10,
        11,
    ]
    context = _context([[100, 100]] * 1000, [], seed=3)
    policy = NomadBinPack()
    policy.set_nodes(context)
    order = np.random.default_rng(3).permutation(1000)
    policy.choose(context, [1, 1], NO_BLOCKS)
    assert policy.last_scored.tolist() == order[:10].tolist()
    policy.choose(context, [1, 1], NO_BLOCKS)  # the next Select carries on
    assert policy.last_scored.tolist() == order[10:20].tolist()


def test_nomad_scores_only_the_limit_of_fitting_nodes() -> None:
    # 64 servers (limit 6), all but 6 full: the 6 that fit are all scored and the
    # fullest of them (server 5 at 50% booked) wins, wherever the shuffle puts it.
    used = [[100, 100]] * 58 + [[0, 0], [10, 10], [20, 20], [30, 30], [40, 40], [50, 50]]
    for seed in range(4):
        context = _context([[100, 100]] * 64, used, seed)
        policy = NomadBinPack()
        assert policy.choose(context, [5, 5], NO_BLOCKS) == 63
        assert sorted(policy.last_scored.tolist()) == list(range(58, 64))


def test_nomad_limit_iterator_skips_low_scores() -> None:
    # Scores at most 0 are held back (up to 3) while the source has others.
    assert _limit_iterator(np.array([0.0, 0.5, 0.0, 0.7, 0.1]), 2) == ([1, 3], 4, False)
    assert _limit_iterator(np.array([0.0, 0.0, 0.0, 0.0, 0.5]), 2) == ([3, 4], 5, False)
    # The source runs dry: the skipped option is handed out after all.
    returned, pulled, dry = _limit_iterator(np.array([0.0, 0.3]), 3)
    assert returned[:2] == [1, 0] and pulled == 2 and dry


# ---- Ray --------------------------------------------------------------------------


def test_ray_hybrid_by_hand() -> None:
    # 10 servers: top-k = max(1, int(0.2 * 10)) = 2. Servers 4-9 are full. Critical
    # utilisation before placing: 0.55, 0.45, 0.3, 0.1 -> scores 0.55, 0, 0, 0 (below
    # 0.5 counts as 0). Sorted by id, then stably by score: 1, 2, 3, 0 -> a random pick
    # of 1 or 2. (Without the threshold it would be 3 or 2; at 0.6, 0 or 1.)
    assert top_k(10) == 2 and top_k(3) == 1 and top_k(150) == 30
    used = [[55, 10], [45, 45], [30, 0], [10, 10]] + [[100, 100]] * 6
    chosen = {
        make_policy("ray_hybrid").choose(_context([[100, 100]] * 10, used, seed), [5, 5], NO_BLOCKS)
        for seed in range(40)
    }
    assert chosen == {1, 2}


# ---- OpenWhisk --------------------------------------------------------------------


def test_openwhisk_hash_and_step_sizes_by_hand() -> None:
    assert java_string_hash("") == 0
    assert java_string_hash("hello") == 99162322  # "hello".hashCode() in Java
    assert java_string_hash("Aa") == java_string_hash("BB") == 2112
    # A negative hash (the 32-bit wrap-around) and its absolute value after the xor.
    assert java_string_hash("polygenelubricants") == -(2**31)
    assert action_hash("guest", "guest/a") == abs(
        java_string_hash("guest") ^ java_string_hash("guest/a")
    )
    # 1..10 coprime to 10 and to each other: 1, 3, 7 (9 shares 3 with 3).
    assert pairwise_coprime_numbers_until(10) == (1, 3, 7)
    assert pairwise_coprime_numbers_until(9) == (1, 2, 5, 7)


def test_openwhisk_home_then_steps() -> None:
    # 10 servers: the managed invokers are the first ceil(0.9 * 10) = 9. The action
    # guest/m/0 goes home if it fits, else to home + step, and never to server 9.
    digest = action_hash("guest", "guest/m/0")
    steps = pairwise_coprime_numbers_until(9)
    home, step = digest % 9, steps[digest % len(steps)]
    policy = make_policy("openwhisk")
    context = _context([[100, 100]] * 10, [], model="m")
    assert policy.choose(context, [50, 50], NO_BLOCKS) == home
    context.cluster.place(home, [60, 60])
    assert policy.choose(context, [50, 50], NO_BLOCKS) == (home + step) % 9
    for server in range(9):
        if server != home:
            context.cluster.place(server, [60, 60])
    assert policy.choose(context, [50, 50], NO_BLOCKS) == -1  # server 9 is not managed


# ---- PASch ------------------------------------------------------------------------


def _split_key(policy: PASch, n: int) -> tuple[str, int, int]:
    """A model name whose two affinity servers differ."""
    for i in range(100):
        first, second = policy.affinity_servers(n, f"model-{i}")
        if first != second:
            return f"model-{i}", first, second
    raise AssertionError("no key with two distinct affinity servers")


def test_pasch_by_hand() -> None:
    policy = PASch(max_load=0.8)
    key, first, second = _split_key(policy, 8)
    # The less loaded of the two affinity servers: second (30% booked) over first (50%).
    used = [[0, 0]] * 8
    used[first], used[second] = [50, 50], [30, 30]
    context = _context([[100, 100]] * 8, used, model=key)
    assert policy.choose(context, [10, 10], NO_BLOCKS) == second
    # Both past 80% booked: the least loaded server of the cluster (the first empty one).
    used[first], used[second] = [85, 85], [90, 90]
    context = _context([[100, 100]] * 8, used, model=key)
    empty = min(s for s in range(8) if s not in (first, second))
    assert policy.choose(context, [5, 5], NO_BLOCKS) == empty
    # The less loaded affinity server cannot take it: the other one does.
    used[first], used[second] = [40, 40], [10, 95]
    context = _context([[100, 100]] * 8, used, model=key)
    assert policy.choose(context, [10, 10], NO_BLOCKS) == first


def test_pasch_sends_every_partition_of_a_model_to_its_servers() -> None:
    policy = PASch()
    key, first, second = _split_key(policy, 16)
    context = _context([[1000, 1000]] * 16, [], model=key)
    placed = policy.place_gang(context, [[10, 10]] * 4, [NO_BLOCKS] * 4)
    assert placed is not None and {server for _, server in placed} <= {first, second}


# ---- every peer ---------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    n=st.integers(1, 40),
    name=st.sampled_from(PEERS),
)
def test_never_picks_an_infeasible_server(data: st.DataObject, n: int, name: str) -> None:
    capacity = [[data.draw(st.integers(1, 64)), data.draw(st.integers(1, 64))] for _ in range(n)]
    used = [[data.draw(st.integers(0, c[0])), data.draw(st.integers(0, c[1]))] for c in capacity]
    context = _context(capacity, used, seed=data.draw(st.integers(0, 9)), model="m")
    for server in data.draw(st.lists(st.integers(0, n - 1), max_size=3)):
        context.cluster.cordon(server)
    request = [data.draw(st.integers(0, 64)), data.draw(st.integers(0, 64))]
    feasible = set(context.cluster.feasible(request).tolist())
    server = make_policy(name).choose(context, request, NO_BLOCKS)
    if server == -1:
        # OpenWhisk only uses the managed invokers, the first ceil(0.9 n).
        managed = math.ceil(0.9 * n) if name == "openwhisk" else n
        assert not {s for s in feasible if s < managed}
    else:
        assert server in feasible


@pytest.mark.parametrize("name", PEERS)
def test_gang_is_all_or_nothing(name: str) -> None:
    context = _context([[100, 100]] * 3, [], model="m")
    before = context.cluster.free.copy()
    policy = make_policy(name)
    # The third partition fits nowhere: nothing stays booked.
    assert policy.place_gang(context, [[60, 60], [60, 60], [200, 10]], [NO_BLOCKS] * 3) is None
    assert np.array_equal(context.cluster.free, before)
    placed = policy.place_gang(context, [[60, 60], [60, 60], [30, 30]], [NO_BLOCKS] * 3)
    assert placed is not None and len(placed) == 3
    used = (before - context.cluster.free).sum(axis=0).tolist()
    assert used == [150, 150]


@pytest.mark.parametrize("name", PEERS)
def test_seeded_runs_repeat(name: str) -> None:
    config = SimConfig(servers=24, duration_s=40, seed=3)
    workload = synthetic_workload(duration_s=40, n_models=5, total_rate=15, seed=3)
    runs = [simulate(config, workload, name) for _ in range(2)]
    timing = {"wall_s", "decision_p50_ns", "decision_p99_ns"}
    first, second = ({k: v for k, v in run.items() if k not in timing} for run in runs)
    assert first == second and first["placements"] > 0
