"""The simulator: conservation, determinism, and a hand-checked cold start."""

from __future__ import annotations

import numpy as np
import pytest

from fastplace.sim import POLICIES, SimConfig, Workload, simulate, synthetic_workload
from fastplace.sim.engine import Simulation
from fastplace.sim.policies import make_policy
from fastplace.sim.workload import DIModel, Partition

MIB = 1 << 20
SMALL = SimConfig(servers=30, duration_s=60.0, cache_bytes=8 << 30, keep_alive_s=5.0)


def small_workload(seed: int = 0) -> Workload:
    return synthetic_workload(
        duration_s=60.0, n_models=6, total_rate=40.0, rollout_interval_s=20.0, seed=seed
    )


def check_consistent(sim: Simulation) -> None:
    """The simulator's view of containers matches the core's, and the core is valid."""
    sim.cluster.validate()
    used = np.zeros(sim.cluster.n_dims, dtype=np.int64)
    for container, state in sim.containers.items():
        server, amounts = sim.cluster.container(container)
        assert server == state.server
        assert amounts.tolist() == state.request
        used += amounts
    assert used.tolist() == sim.used
    assert sim.cluster.n_containers == len(sim.containers)
    assert (sim.cluster.used.sum(axis=0) == used).all()
    assert (sim.cluster.free >= 0).all()


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_every_request_answered_or_rejected_and_state_consistent(policy: str) -> None:
    workload = small_workload()
    sim = Simulation(SMALL, workload, make_policy(policy))
    metrics = sim.run()
    check_consistent(sim)
    answered = len(sim.metrics.request_s)
    assert metrics["requests"] == workload.n_requests
    assert answered + metrics["rejected"] == metrics["requests"]
    assert sum(metrics["rejected_reasons"].values()) == metrics["rejected"]
    assert metrics["cold_starts"] == metrics["placements"] > 0
    assert 0 < metrics["servers_used_mean"] <= SMALL.servers
    assert metrics["bytes_downloaded"] > 0


def test_overloaded_cluster_rejects_with_a_reason() -> None:
    config = SimConfig(servers=2, duration_s=30.0, keep_alive_s=5.0)
    workload = synthetic_workload(duration_s=30.0, n_models=8, total_rate=200.0, seed=3)
    sim = Simulation(config, workload, make_policy("first_fit"))
    metrics = sim.run()
    check_consistent(sim)
    assert metrics["rejected"] > 0
    assert set(metrics["rejected_reasons"]) == {"no_capacity"}


def deterministic_part(metrics: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in metrics.items() if k not in ("wall_s",) and "decision" not in k}


@pytest.mark.parametrize("policy", ["first_fit", "similarity", "random"])
def test_same_seed_same_metrics(policy: str) -> None:
    first = simulate(SMALL, small_workload(seed=5), policy)
    again = simulate(SMALL, small_workload(seed=5), policy)
    assert deterministic_part(first) == deterministic_part(again)
    other = simulate(SMALL, small_workload(seed=6), policy)
    assert deterministic_part(first) != deterministic_part(other)


def one_model_workload(times: list[float], service: float, changed: float = 0.0) -> Workload:
    model = DIModel(
        name="m",
        partitions=(Partition(memory_mb=1024, cpu_millis=579, file_bytes=10 * MIB + 123),),
        changed_fraction=changed,
    )
    n = len(times)
    return Workload(
        name="hand",
        models=(model,),
        arrival_s=np.asarray(times, dtype=np.float64),
        arrival_model=np.zeros(n, dtype=np.int32),
        service_s=np.full(n, service),
    )


def test_cold_start_is_missing_bytes_over_bandwidth_plus_boot() -> None:
    config = SimConfig(
        servers=2, duration_s=100.0, bandwidth_bytes_per_s=4 * MIB, boot_s=0.5, keep_alive_s=10.0
    )
    # t=0: cold (nothing cached), busy until ~3.3 then idle until ~13.3; t=10: warm;
    # t=50: cold again (expired at ~20.3), but the server still caches every block.
    workload = one_model_workload([0.0, 10.0, 50.0], service=0.25)
    sim = Simulation(config, workload, make_policy("first_fit"))
    metrics = sim.run()
    first = (10 * MIB + 123) / (4 * MIB) + 0.5
    assert sim.metrics.cold_start_s == [first, 0.5]
    assert sim.metrics.request_s == [first + 0.25, 0.25, 0.5 + 0.25]
    assert metrics["bytes_downloaded"] == 10 * MIB + 123
    assert metrics["warm_requests"] == 1
    check_consistent(sim)


def test_rollout_downloads_only_changed_blocks_under_first_fit() -> None:
    model = DIModel(
        name="m",
        partitions=(Partition(memory_mb=1024, cpu_millis=579, file_bytes=256 * MIB),),
        rollout_interval_s=30.0,
        rollout_offset_s=30.0,
        changed_fraction=0.25,
    )
    workload = Workload(
        name="rollout",
        models=(model,),
        arrival_s=np.array([0.0, 45.0]),
        arrival_model=np.zeros(2, dtype=np.int32),
        service_s=np.array([0.1, 0.1]),
        switch_window_s=1.0,
    )
    config = SimConfig(servers=1, duration_s=50.0, keep_alive_s=1.0)
    sim = Simulation(config, workload, make_policy("first_fit"))
    metrics = sim.run()
    old = sim.versions.hashes(0, 0, 0)
    new = sim.versions.hashes(0, 0, 1)
    changed = int((old != new).sum())
    assert 0 < changed < old.shape[0]
    assert metrics["bytes_downloaded"] == 256 * MIB + changed * config.block_bytes


def test_bad_config_names_the_field() -> None:
    with pytest.raises(ValueError, match="servers"):
        SimConfig(servers=0)
    with pytest.raises(ValueError, match="keep_alive_s"):
        SimConfig(keep_alive_s=-1)
    with pytest.raises(ValueError, match="policy = 'nope'"):
        make_policy("nope")


def test_named_rollouts_happen_once_at_their_times() -> None:
    # A request log's versions: one rollout at t=30, none on a schedule. The request at
    # t=45 cold-starts (keep-alive 1 s) the new version on the server that caches the old.
    model = DIModel(
        name="m",
        partitions=(Partition(memory_mb=1024, cpu_millis=579, file_bytes=256 * MIB),),
        changed_fraction=0.25,
    )
    workload = Workload(
        name="named",
        models=(model,),
        arrival_s=np.array([0.0, 45.0, 90.0]),
        arrival_model=np.zeros(3, dtype=np.int32),
        service_s=np.array([0.1, 0.1, 0.1]),
        switch_window_s=1.0,
        rollout_s=np.array([30.0]),
        rollout_model=np.zeros(1, dtype=np.int32),
    )
    config = SimConfig(servers=1, duration_s=100.0, keep_alive_s=1.0)
    sim = Simulation(config, workload, make_policy("first_fit"))
    metrics = sim.run()
    assert sim.version == [1]  # once: a named rollout does not repeat
    changed = int((sim.versions.hashes(0, 0, 0) != sim.versions.hashes(0, 0, 1)).sum())
    assert 0 < changed
    # t=0 the whole file, t=45 the changed blocks, t=90 the same version: nothing.
    assert metrics["bytes_downloaded"] == 256 * MIB + changed * config.block_bytes
    assert metrics["cold_starts"] == 3


def test_a_request_at_the_end_of_the_run_is_served() -> None:
    # A request log's default duration is its span, which may end at its last arrival.
    workload = one_model_workload([0.0, 10.0], service=0.0)
    metrics = simulate(SimConfig(servers=2, duration_s=10.0), workload, "first_fit")
    assert metrics["requests"] == 2


def test_named_rollouts_and_a_schedule_for_one_model_are_refused() -> None:
    model = DIModel(
        name="m",
        partitions=(Partition.of_memory(1024),),
        rollout_interval_s=30.0,
    )
    with pytest.raises(ValueError, match="'m' has rollouts of its own and rollout_interval_s"):
        Workload(
            name="both",
            models=(model,),
            arrival_s=np.zeros(1),
            arrival_model=np.zeros(1, dtype=np.int32),
            service_s=np.zeros(1),
            rollout_s=np.array([5.0]),
            rollout_model=np.zeros(1, dtype=np.int32),
        )


def test_a_version_thousands_of_rollouts_later_is_made() -> None:
    # A model asked for once a day in a week-long log with a rollout every two minutes
    # is at version ~5,000 (it was a RecursionError beyond ~1,000); the result is the
    # version built step by step, and only a few versions stay cached.
    from fastplace.block_index import BlockIndex
    from fastplace.sim.versions import VersionBlocks

    workload = one_model_workload([0.0], service=0.1, changed=0.2)
    jump = VersionBlocks(workload, BlockIndex(1, 1 << 30))
    far = jump.hashes(0, 0, 5000)
    steps = VersionBlocks(workload, BlockIndex(1, 1 << 30))
    for version in range(5001):
        step = steps.hashes(0, 0, version)
    assert np.array_equal(far, step)
    assert np.array_equal(jump.hashes(0, 0, 3), steps.hashes(0, 0, 3))  # made again
    from fastplace.sim.versions import KEEP_VERSIONS

    assert len(steps._hashes[(0, 0)]) == KEEP_VERSIONS
