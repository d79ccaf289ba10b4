"""The sim-to-real pieces without Ray: the store's manifests as the simulator's blocks,
the Ray nodes as a SimConfig, the replay's time base, what is measured from the real
run's starts, the front end's semantics in the simulator (gang cap, waiting for room),
and the side-by-side comparison."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fastplace.block_index import BlockIndex
from fastplace.engines.ray.model_store import ModelStore
from fastplace.engines.ray.sim_to_real import (
    StoreBlocks,
    TraceBoots,
    compare,
    markdown,
    markdown_summary,
    measured_start,
    replay_workload,
    sim_config_for_replay,
)
from fastplace.sim import SimConfig, Workload
from fastplace.sim.engine import Simulation
from fastplace.sim.policies import make_policy
from fastplace.sim.workload import DIModel, Partition

BLOCK = 4096


def weights(seed: int, changed: slice | None = None) -> dict[str, np.ndarray]:
    """Two tensors of 10 blocks each (random from ``seed``); ``changed`` rows of the
    second one (a block each) differ from the same seed's."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(10, BLOCK // 4)).astype(np.float32)
    b = rng.normal(size=(10, BLOCK // 4)).astype(np.float32)
    if changed is not None:
        b[changed] += np.float32(1.0)
    return {"a": a, "b": b}


@pytest.fixture
def store(tmp_path: Path) -> ModelStore:
    store = ModelStore(tmp_path / "store", block_size=BLOCK)
    # m: 2 partitions; version 2 changes 3 blocks of partition 1 only.
    store.put("m", 1, [weights(1), weights(5)], memory_mb=[1024, 2048])
    store.put("m", 2, [weights(1), weights(5, slice(0, 3))], memory_mb=[1024, 2048])
    store.put("n", 1, [weights(9)], memory_mb=512)
    return store


def test_store_blocks_are_the_manifests_blocks(store: ModelStore) -> None:
    index = BlockIndex(2, np.full(2, 1 << 30))
    blocks = StoreBlocks(store, ["m", "n"], index)
    v1 = store.manifest("m", 1)
    ids = blocks.ids(0, 1, 0)  # simulated version 0 = stored version 1
    assert ids.shape == (len(v1.partitions[1].hashes),)
    assert blocks.ids(0, 1, 0) is ids  # made once
    # Fetching a partition onto an empty server costs its distinct bytes, as NodeCache.
    distinct = sum(v1.partitions[1].distinct_blocks().values())
    assert index.fetch(0, ids) == distinct
    # Version 2 (simulated 1) shares all but the 3 changed blocks with version 1.
    v2_ids = blocks.ids(0, 1, 1)
    v2 = store.manifest("m", 2).partitions[1]
    changed = {h: s for h, s in v2.distinct_blocks().items() if h not in v1.partitions[1].hashes}
    assert len(changed) == 3
    assert index.fetch(0, v2_ids) == sum(changed.values())
    # Partition 0 did not change: the same ids; and nothing to fetch on that server.
    assert blocks.ids(0, 0, 1).tolist() == blocks.ids(0, 0, 0).tolist()
    # Model n's blocks are ids of their own (n's weights differ from m's).
    assert not set(blocks.ids(1, 0, 0).tolist()) & set(ids.tolist())


def test_store_blocks_refuse_what_the_store_lacks(store: ModelStore) -> None:
    blocks = StoreBlocks(store, ["m"], BlockIndex(1, 1 << 30))
    with pytest.raises(KeyError):
        blocks.ids(0, 0, 2)  # stored version 3
    with pytest.raises(ValueError, match="partition 2 asked for, the store has 2"):
        blocks.ids(0, 2, 0)


def node(i: int, memory: int = 65536, cpu: int = 40000, **extra: Any) -> dict[str, Any]:
    resources = {"fastplace_memory_mb": memory, "fastplace_cpu_millis": cpu, "CPU": 1.0}
    resources.update(extra)
    return {
        "NodeID": f"{i:02x}" * 4,
        "NodeManagerAddress": f"127.0.0.{i + 2}",
        "Alive": True,
        "Resources": resources,
    }


def config_for(nodes: list[dict[str, Any]], **changes: Any) -> SimConfig:
    settings: dict[str, Any] = {
        "cache_bytes": 1 << 30,
        "block_bytes": BLOCK,
        "bandwidth_bytes_per_s": 5e8,
        "boot_s": 2.0,
        "keep_alive_s": 3.0,
        "duration_s": 40.0,
        "max_gangs": 4,
    }
    settings.update(changes)
    return sim_config_for_replay(nodes, **settings)


def test_sim_config_is_the_clusters_fastplace_nodes() -> None:
    dead = node(7) | {"Alive": False}
    head = {"NodeID": "ff", "Alive": True, "Resources": {"CPU": 2.0}}  # not fastplace's
    config = config_for([node(0), node(1), dead, head, node(2)])
    assert config.servers == 3
    assert (config.server_memory_mb, config.server_cpu_millis) == (65536, 40000)
    assert config.cache_bytes == 1 << 30  # the deployer's default: no node declares one
    assert config.block_bytes == BLOCK and config.bandwidth_bytes_per_s == 5e8
    assert (config.boot_s, config.keep_alive_s, config.duration_s) == (2.0, 3.0, 40.0)
    assert config.max_gangs == 4 and config.wait_for_room  # the front end's semantics
    declared = config_for([node(0, fastplace_cache_mb=256), node(1, fastplace_cache_mb=256)])
    assert declared.cache_bytes == 256 << 20


def test_sim_config_refuses_what_the_simulator_cannot_model() -> None:
    with pytest.raises(ValueError, match="different capacities"):
        config_for([node(0), node(1, memory=2048)])
    with pytest.raises(ValueError, match="different block caches"):
        config_for([node(0, fastplace_cache_mb=256), node(1)])
    with pytest.raises(ValueError, match="concurrency_target = 2"):
        config_for([node(0)], concurrency_target=2)
    with pytest.raises(ValueError, match="no alive Ray node"):
        config_for([node(0) | {"Alive": False}])
    with pytest.raises(ValueError, match=r"SimConfig\.boot_s"):
        config_for([node(0)], boot_s=-1.0)


def test_measured_start_bandwidth_and_boot() -> None:
    starts = [
        # 1 MB in 0.5 s and 1 MB in 1.5 s: 1 MB/s; an empty fetch's time is not counted.
        {"launch_s": 10.0, "fetched_bytes": [1_000_000, 0], "fetch_s": [0.5, 0.25]},
        {"launch_s": 21.0, "fetched_bytes": [1_000_000], "fetch_s": [1.5]},
        {"launch_s": 4.0, "fetched_bytes": [0], "fetch_s": [0.0]},
    ]
    bandwidth, boot = measured_start(starts)
    assert bandwidth == pytest.approx(1e6)
    assert boot == pytest.approx(9.0)  # median of 10-1, 21-1, 4-0
    with pytest.raises(ValueError, match="no gang"):
        measured_start([])


def test_trace_boots_replay_each_versions_real_boots_in_start_order() -> None:
    def start(model: str, version: int, began: float, launch: float) -> dict[str, Any]:
        return {
            "model": model,
            "version": version,
            "began_s": began,
            "launch_s": launch,
            "fetched_bytes": [2_000_000],  # 2 s at 1 MB/s, taken off the launch
            "fetch_s": [2.0],
        }

    starts = [start("a", 1, 1.0, 5.0), start("a", 1, 0.0, 7.0), start("b", 1, 0.5, 12.0)]
    starts.append(start("a", 2, 3.0, 10.0))
    boots = TraceBoots(starts, ["a", "b"], 1e6)
    # a v1 (simulated version 0): began at 0 then 1; then that version's median.
    assert [boots(0, 0), boots(0, 0), boots(0, 0)] == [5.0, 3.0, 4.0]
    assert boots(0, 1) == 8.0 and boots(1, 0) == 10.0
    assert boots(0, 2) == 6.5  # a version the real run never started: all starts' median


def test_replay_workload_is_in_real_seconds_with_the_stores_models(store: ModelStore) -> None:
    log = Workload(
        name="log",
        models=(
            DIModel("m", (Partition.of_memory(8192), Partition.of_memory(8192))),
            DIModel("n", (Partition.of_memory(4096),)),
        ),
        arrival_s=np.array([0.0, 10.0, 20.0, 30.0]),
        arrival_model=np.array([0, 1, 0, 0], dtype=np.int32),
        service_s=np.array([1.0, 2.0, 3.0, 4.0]),
        rollout_s=np.array([15.0, 25.0]),
        rollout_model=np.array([0, 0], dtype=np.int32),
        span_s=40.0,
    )
    timed = replay_workload(log, store, compression=10.0, span_s=20.0)
    assert timed.arrival_s.tolist() == [0.0, 1.0, 2.0]  # up to the span, divided
    assert timed.service_s.tolist() == [0.1, 0.2, 0.3]
    assert timed.rollout_s.tolist() == [1.5] and timed.span_s == 2.0
    assert timed.switch_window_s == 0.0  # the front end switches at once
    # Memory as the store's manifests book it (not the log's), CPU as the deployer's.
    assert [p.request for p in timed.models[0].partitions] == [[1024, 579], [2048, 1158]]
    stored = store.manifest("m", 1).partitions[0].total_bytes
    assert timed.models[0].partitions[0].file_bytes == stored
    with pytest.raises(ValueError, match="compression = 0"):
        replay_workload(log, store, compression=0, span_s=20.0)
    one = Workload(
        name="one",
        models=(DIModel("n", (Partition.of_memory(512), Partition.of_memory(512))),),
        arrival_s=np.zeros(1),
        arrival_model=np.zeros(1, dtype=np.int32),
        service_s=np.ones(1),
    )
    with pytest.raises(ValueError, match="n: the log gives 2 partitions, the store 1"):
        replay_workload(one, store, compression=1.0, span_s=1.0)


def burst(n: int, models: int = 1, memory_mb: int = 1024) -> Workload:
    """n requests at t=0 to each of ``models`` one-partition models, 1 s of service."""
    return Workload(
        name="burst",
        models=tuple(DIModel(f"m{i}", (Partition.of_memory(memory_mb),)) for i in range(models)),
        arrival_s=np.zeros(n * models),
        arrival_model=np.repeat(np.arange(models, dtype=np.int32), n),
        service_s=np.ones(n * models),
    )


def run(workload: Workload, **changes: Any) -> tuple[dict[str, Any], Simulation]:
    settings: dict[str, Any] = {
        "servers": 1,
        "server_memory_mb": 4096,
        "server_cpu_millis": 4000,
        "boot_s": 10.0,
        "keep_alive_s": 100.0,
        "duration_s": 100.0,
        "bandwidth_bytes_per_s": 1e15,
    }
    settings.update(changes)
    simulation = Simulation(SimConfig(**settings), workload, make_policy("first_fit"))
    return simulation.run(), simulation


def test_gang_cap_makes_requests_wait_for_a_gang() -> None:
    uncapped, _ = run(burst(3))
    assert uncapped["gang_starts"] == 3 and uncapped["waited_requests"] == 0
    capped, simulation = run(burst(3), max_gangs=1)
    # One gang: the first request starts it (10 s + 1 s), the others take it in turn.
    assert capped["gang_starts"] == 1 and capped["cold_starts"] == 1
    assert capped["waited_requests"] == 2 and capped["warm_requests"] == 2
    assert capped["request_p99_s"] == pytest.approx(12.98)  # 13 s, interpolated
    assert sorted(simulation.metrics.request_s) == pytest.approx([11.0, 12.0, 13.0])
    assert simulation.last_answer_s == pytest.approx(13.0)
    assert capped["rejected"] == 0


def test_wait_for_room_instead_of_rejecting() -> None:
    # The server holds one 3008 MB container: the second model's request finds no room.
    rejected, _ = run(burst(1, models=2, memory_mb=3008), keep_alive_s=0.5)
    assert rejected["rejected_reasons"] == {"no_capacity": 1}
    waited, simulation = run(burst(1, models=2, memory_mb=3008), wait_for_room=True)
    # It waits until the first container is idle (t = 11), reclaims it, starts (11 + 11).
    assert waited["rejected"] == 0 and waited["gang_starts"] == 2
    assert sorted(simulation.metrics.request_s) == pytest.approx([11.0, 22.0])
    # Never served within the simulated time: counted, not lost silently.
    short, _ = run(burst(1, models=2, memory_mb=3008), wait_for_room=True, duration_s=5.0)
    assert short["rejected_reasons"] == {"still_waiting": 1}


def test_sim_config_refuses_bad_front_end_options() -> None:
    with pytest.raises(ValueError, match=r"SimConfig\.max_gangs"):
        SimConfig(max_gangs=-1)
    with pytest.raises(TypeError, match=r"SimConfig\.wait_for_room"):
        SimConfig(wait_for_room=1)  # type: ignore[arg-type]


def row(**values: float) -> dict[str, float]:
    keys = (
        "cold_starts gang_starts bytes_downloaded cold_start_p50_s cold_start_p99_s "
        "gang_cold_start_p50_s gang_cold_start_p99_s request_p50_s request_p99_s "
        "servers_used_mean servers_used_peak warm_requests lost rejected"
    ).split()
    return {k: 1.0 for k in keys} | values


def test_compare_errors_targets_and_ranking() -> None:
    real = [
        row(cold_starts=40, bytes_downloaded=1000, request_p50_s=2.0, servers_used_mean=3.0),
        row(cold_starts=50, bytes_downloaded=900, request_p50_s=2.0, servers_used_mean=3.5),
    ]
    sim = [
        row(gang_starts=43, bytes_downloaded=1200, request_p50_s=2.4, servers_used_mean=3.2),
        row(gang_starts=50, bytes_downloaded=800, request_p50_s=1.0, servers_used_mean=3.1),
    ]
    report = compare(["a", "b"], real, sim)
    a = {r["metric"]: r for r in report["policies"]["a"]}
    assert a["cold starts (gangs)"]["error"] == pytest.approx(0.075)
    assert a["cold starts (gangs)"]["met"] is True
    assert a["bytes fetched"]["met"] is False  # +20% > 10%
    assert a["request p50 s"]["met"] is True  # +20% <= 25%
    assert a["request p99 s"]["met"] is None  # no target
    b = {r["metric"]: r for r in report["policies"]["b"]}
    assert b["request p50 s"]["error"] == pytest.approx(-0.5) and b["request p50 s"]["met"] is False
    assert report["ranking"]["bytes fetched"] == {
        "real": [["b"], ["a"]],
        "sim": [["b"], ["a"]],
        "met": True,
    }
    assert report["ranking"]["servers in use, mean"]["met"] is False  # a < b, then b < a
    text = markdown(report, "title")
    assert "| cold starts (gangs) | 40 | 43 | +7.5% | ±10% | yes |" in text
    assert "| bytes fetched | 1,000 | 1,200 | +20.0% | ±10% | **no** |" in text
    assert "servers in use, mean: Ray a < b; simulator b < a (**different**)" in text
    summary = markdown_summary(report, "short")
    assert "| a | +7.5% | **+20.0%** | +20.0% |" in summary
    assert "- servers in use, mean: **different** ranking" in summary
    # A real zero: no relative error unless the simulator says zero too.
    zero = compare(["a"], [row(lost=0, rejected=0)], [row(lost=0, rejected=3)])
    lost = {r["metric"]: r for r in zero["policies"]["a"]}["requests lost / rejected"]
    assert lost["error"] is None
    with pytest.raises(ValueError, match="same length"):
        compare(["a"], real, sim)


def test_ray_replay_simulate_refuses_a_concurrency_target_it_cannot_model(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from fastplace.cli import main

    argv = ["ray-replay", "--simulate", "--concurrency", "2", "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("fastplace ray-replay: error: --simulate needs --concurrency 1"), err
    assert not (tmp_path / "out").exists()  # refused before Ray starts or anything is written


def test_ray_default_is_simulated_by_the_model_of_rays_rule() -> None:
    from fastplace.engines.ray.demo import parse_policy
    from fastplace.engines.ray.sim_to_real import simulated_policy
    from fastplace.sim import simulate, synthetic_workload

    assert simulated_policy("first_fit") == "first_fit"
    assert simulated_policy("similarity:0.9") == "similarity:0.9"
    # Ray placed ray_default's actors; the simulator cannot ask Ray (the policy raises
    # there), so the replay is simulated with its model of Ray's rule instead.
    stand_in = parse_policy(simulated_policy("ray_default"))
    assert stand_in.name == "ray_hybrid"
    workload = synthetic_workload(duration_s=20.0, n_models=3, total_rate=4.0, seed=2)
    metrics = simulate(SimConfig(servers=6, duration_s=20.0, seed=2), workload, stand_in)
    assert metrics["placements"] > 0
