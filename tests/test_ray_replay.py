"""A short request log replayed through the serverless front end on the loopback
cluster: every request answered, cold starts where the log needs them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip(
    "ray", reason="Ray is not installed: pip install 'fastplace[ray]' to run the Ray engine tests"
)
pytest.importorskip("torch", reason="the replayed models' weights need torch")

from fastplace.engines.ray.replay import (
    ReplayConfig,
    build_log_store,
    busiest,
    replay,
    versions_per_model,
)
from fastplace.sim.request_log import request_log_workload
from ray_cluster import ray_cluster  # noqa: F401  (the fixture)


def write_log(path: Path) -> None:
    # Model a: 2 partitions, a rollout at t=2; model b: 1 partition; model c: 1 request.
    rows = ["timestamp,model,version,duration,partitions,memory_mb"]
    for i in range(12):
        rows.append(f"{i * 0.25:.2f},a,{'v1' if i < 8 else 'v2'},0.01,2,256")
        rows.append(f"{i * 0.25 + 0.1:.2f},b,v1,0.01,1,256")
    rows.append("1.0,c,v1,0.01,1,256")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")


def test_a_short_log_is_replayed_with_no_request_lost(ray_cluster: Any, tmp_path: Path) -> None:  # noqa: F811
    log = tmp_path / "log.csv"
    write_log(log)
    workload = busiest(request_log_workload(log), 2)
    assert [m.name for m in workload.models] == ["a", "b"]  # c, the least requested, left
    assert versions_per_model(workload) == [2, 1]
    store = build_log_store(tmp_path / "store", workload)
    assert store.versions("a") == [1, 2] and store.versions("b") == [1]
    config = ReplayConfig(compression=1.0, keep_alive_s=60.0)
    row = replay(workload, store, tmp_path / "cache", "first_fit", config)
    assert row["requests"] == 24 and row["lost"] == 0 and row["errors"] == {}
    # One gang per model version (a v1, a v2, b v1) at least; requests that come
    # while a gang starts may start more, never more than the cap (4) per version.
    assert 3 <= row["cold_starts"] <= 3 * config.max_gangs
    assert row["gangs_peak"] <= 3 * config.max_gangs
    assert row["bytes_downloaded"] > 0
    assert row["retires"] == row["cold_starts"]  # closing the replay retires every gang
    assert row["policy"] == "first_fit" and row["timeline"]


def test_a_replay_with_an_actor_and_a_node_killed_loses_no_request(
    ray_cluster: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    from fastplace.engines.ray.faults import FaultPlan

    log = tmp_path / "log.csv"
    rows = ["timestamp,model,version,duration,partitions,memory_mb"]
    for i in range(30):  # two models, a request every 0.1 s each, for 6 s
        rows.append(f"{i * 0.2:.2f},a,v1,0.05,2,256")
        rows.append(f"{i * 0.2 + 0.1:.2f},b,v1,0.05,2,256")
    log.write_text("\n".join(rows) + "\n", encoding="utf-8")
    workload = request_log_workload(log)
    store = build_log_store(tmp_path / "store", workload)
    nodes = len(ray_cluster.nodes)
    row = replay(
        workload,
        store,
        tmp_path / "cache",
        "first_fit",
        ReplayConfig(compression=1.0, keep_alive_s=60.0),
        faults=FaultPlan(kill_actor_at_s=1.5, kill_node_at_s=3.0),
        cluster=ray_cluster,
    )
    assert row["requests"] == 60 and row["lost"] == 0 and row["errors"] == {}
    actor, node = row["faults"]
    assert actor["kind"] == "kill_actor" and actor["partition"] == 0, actor
    assert node["kind"] == "kill_node" and "skipped" not in node, node
    assert node["placed_there_after"] == 0
    assert len(ray_cluster.nodes) == nodes  # the removed node was replaced after the replay
