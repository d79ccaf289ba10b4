"""Faults on a real local Ray cluster: a killed partition actor is detected, its
capacity released in fastplace and the partition re-placed; a node that leaves is
cordoned and its partitions move."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip(
    "ray", reason="Ray is not installed: pip install 'fastplace[ray]' to run the Ray engine tests"
)
torch = pytest.importorskip("torch", reason="the reference model needs torch")

from fastplace.engines.ray.deployment import Deployer  # noqa: E402
from fastplace.engines.ray.partitioned_model import make_batch  # noqa: E402
from ray_cluster import (  # noqa: E402
    NODE_CPU_MILLIS,
    NODE_MEMORY_MB,
    TinyModel,
    deployer,  # noqa: F401  (the fixture)
    ray_cluster,  # noqa: F401  (the fixture)
    tiny_model,  # noqa: F401  (the fixture)
)


def assert_answers_like(deployer: Deployer, tiny_model: TinyModel, version: int) -> None:  # noqa: F811
    ids, dense = make_batch(tiny_model.config, 32, np.random.default_rng(version))
    answer = deployer.infer("mtml", ids, dense)
    for task, logits in tiny_model.reference(version, ids, dense).items():
        assert torch.allclose(torch.from_numpy(np.array(answer[task])), logits, atol=1e-5)


def test_killed_actor_is_detected_released_and_replaced(
    deployer: Deployer,  # noqa: F811
    tiny_model: TinyModel,  # noqa: F811
) -> None:
    import ray

    deployment = deployer.deploy("mtml", 1)
    victim = deployment.partitions[1]
    container = victim.container
    ray.kill(victim.actor, no_restart=True)

    events = deployer.heal()

    kinds = [(e.kind, e.partition) for e in events]
    assert kinds == [("actor_died", 1), ("replaced", 1)]
    with pytest.raises(KeyError):
        deployer.cluster.container(container)  # released in fastplace
    replaced = deployment.partitions[1]
    assert replaced.container != container
    assert replaced.restarts == 1
    assert replaced.node_id == deployer.view.node_ids[replaced.server]
    assert replaced.cold_start is not None
    assert replaced.cold_start.fetched_bytes == 0  # same node, blocks still cached
    assert deployer.cluster.n_containers == 3
    assert_answers_like(deployer, tiny_model, 1)


def test_request_meeting_a_dead_actor_heals_and_is_answered(
    deployer: Deployer,  # noqa: F811
    tiny_model: TinyModel,  # noqa: F811
) -> None:
    import ray

    deployment = deployer.deploy("mtml", 2)
    ray.kill(deployment.partitions[0].actor, no_restart=True)
    assert_answers_like(deployer, tiny_model, 2)  # detected on the request path
    assert [e.kind for e in deployer.events] == ["actor_died", "replaced"]
    assert deployer.cluster.n_containers == 3


def test_node_that_leaves_is_cordoned_and_its_partitions_move(
    ray_cluster: Any,  # noqa: F811
    tiny_model: TinyModel,  # noqa: F811
    tmp_path: Path,
) -> None:
    node = ray_cluster.add_node(memory_mb=NODE_MEMORY_MB, cpu_millis=NODE_CPU_MILLIS)
    deployer = Deployer(tiny_model.store, tmp_path / "cache", policy="first_fit")  # noqa: F811
    try:
        doomed = deployer.view.server_of(ray_cluster.node_id(node))
        others = [s for s in range(deployer.cluster.n_servers) if s != doomed]
        for server in others:  # make fastplace put the whole gang on the new node
            deployer.cluster.cordon(server)
        deployment = deployer.deploy("mtml", 1)
        for server in others:
            deployer.cluster.uncordon(server)
        assert deployment.servers == [doomed] * 3

        ray_cluster.remove_node(node)
        events = []
        deadline = time.monotonic() + 60
        while not any(e.kind == "node_left" for e in events) and time.monotonic() < deadline:
            time.sleep(0.5)
            events += deployer.heal()

        assert ("node_left", doomed) in [(e.kind, e.server) for e in events]
        assert deployer.cluster.is_cordoned(doomed)
        assert deployer.cluster.container_counts()[doomed] == 0
        assert doomed not in deployment.servers
        assert {e.partition for e in events if e.kind == "replaced"} == {0, 1, 2}
        assert deployer.cluster.n_containers == 3
        assert_answers_like(deployer, tiny_model, 1)
    finally:
        deployer.shutdown()
