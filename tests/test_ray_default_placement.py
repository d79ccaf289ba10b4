"""The ``ray_default`` baseline on a real local Ray cluster: Ray's own scheduler places
the partition actors (resource requests, no node affinity) and fastplace mirrors where
they went, so its books, block index and metrics mean the same as for its policies."""

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

from fastplace.engines.ray.deployment import Deployer, NoCapacity  # noqa: E402
from fastplace.engines.ray.partitioned_model import make_batch  # noqa: E402
from fastplace.engines.ray.ray_placement import RayPlacement  # noqa: E402
from ray_cluster import (  # noqa: E402
    N_PARTITIONS,
    NODE_MEMORY_MB,
    PARTITION_MB,
    TinyModel,
    ray_cluster,  # noqa: F401  (the fixture)
    tiny_model,  # noqa: F401  (the fixture)
)


@pytest.fixture
def ray_deployer(ray_cluster: Any, tiny_model: TinyModel, tmp_path: Path) -> Any:  # noqa: F811
    deployer = Deployer(tiny_model.store, tmp_path / "cache", policy="ray_default")
    yield deployer
    deployer.shutdown()


def ray_free_memory_mb() -> float:
    import ray

    return float(ray.available_resources().get("fastplace_memory_mb", 0.0))


def wait_for(condition: Any, timeout_s: float = 20.0) -> bool:
    """Ray reports freed resources asynchronously: poll until true or the timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return bool(condition())


def test_ray_places_and_fastplace_mirrors_it(ray_deployer: Deployer, tiny_model: TinyModel) -> None:  # noqa: F811
    assert ray_deployer.ray_places and ray_deployer.policy.name == "ray_default"
    total = ray_free_memory_mb()
    deployment = ray_deployer.deploy("mtml", 1)

    # Each container is booked in fastplace on the node where Ray started its actor.
    assert len(deployment.partitions) == N_PARTITIONS
    for part in deployment.partitions:
        assert part.node_id == ray_deployer.view.node_ids[part.server]
        assert ray_deployer.cluster.container(part.container)[0] == part.server
    used = ray_deployer.cluster.capacity_copy() - ray_deployer.cluster.free_copy()
    assert int(used[:, 0].sum()) == N_PARTITIONS * PARTITION_MB
    # Ray booked the same amounts in its own books (its scheduler decided).
    assert wait_for(lambda: ray_free_memory_mb() == total - N_PARTITIONS * PARTITION_MB)
    # The block index saw every fetch where it happened.
    for part in deployment.partitions:
        assert part.cold_start is not None
        assert part.cold_start.fetched_bytes == part.index_missing_bytes

    ids, dense = make_batch(tiny_model.config, 16, np.random.default_rng(1))
    answer = ray_deployer.infer("mtml", ids, dense)
    for task, logits in tiny_model.reference(1, ids, dense).items():
        assert torch.allclose(torch.from_numpy(np.array(answer[task])), logits, atol=1e-5)

    ray_deployer.retire(deployment)
    assert int((ray_deployer.cluster.capacity_copy() - ray_deployer.cluster.free_copy()).sum()) == 0
    assert wait_for(lambda: ray_free_memory_mb() == total)


def test_a_gang_that_fits_nowhere_is_refused_before_any_actor(
    ray_deployer: Deployer,
) -> None:
    cluster = ray_deployer.cluster
    # Leave every node less room than one partition in fastplace's mirror.
    filler = [
        cluster.place(server, [NODE_MEMORY_MB - PARTITION_MB + 1, 0])
        for server in range(cluster.n_servers)
    ]
    try:
        with pytest.raises(NoCapacity, match="do not fit together"):
            ray_deployer.launch("mtml", 1)
        assert ray_deployer.deployments() == []
    finally:
        for container in filler:
            cluster.release(container)


def test_a_killed_actor_is_restarted_where_ray_puts_it(
    ray_deployer: Deployer,
) -> None:
    import ray

    deployment = ray_deployer.deploy("mtml", 1)
    victim = deployment.partitions[2]
    ray.kill(victim.actor, no_restart=True)

    events = ray_deployer.heal()

    assert [(e.kind, e.partition) for e in events] == [("actor_died", 2), ("replaced", 2)]
    fresh = deployment.partitions[2]
    assert fresh.restarts == 1
    assert fresh.node_id == ray_deployer.view.node_ids[fresh.server]
    booked = [p.container for p in deployment.partitions]
    assert victim.container not in booked
    used = ray_deployer.cluster.capacity_copy() - ray_deployer.cluster.free_copy()
    assert int(used[:, 0].sum()) == N_PARTITIONS * PARTITION_MB  # the dead one released


def test_ray_default_has_no_plan_of_its_own() -> None:
    from fastplace.engines.ray.demo import DemoConfig, parse_policy, plan_only

    policy = parse_policy("ray_default")
    assert isinstance(policy, RayPlacement)
    with pytest.raises(NotImplementedError, match="Ray chooses the node"):
        policy.choose(None, [1, 1], np.zeros(0, np.int64))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no plan only"):
        plan_only(None, "ray_default", DemoConfig())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="only similarity takes an argument"):
        parse_policy("ray_default:2")


class FakeActor:
    def __init__(self, actor_id: str) -> None:
        self._actor_id = type("Id", (), {"hex": lambda _self: actor_id})()


class FakeRay:
    """A GCS actor table that answers from a script: per actor, the states it goes through."""

    def __init__(self, script: dict[str, list[dict[str, Any]]]) -> None:
        self.script = script
        state = type("State", (), {"actors": self.actors})
        self._private = type("Private", (), {"state": state})

    def actors(self, actor_id: str) -> dict[str, Any]:
        steps = self.script[actor_id]
        return steps.pop(0) if len(steps) > 1 else steps[0]


QUEUED = {"State": "PENDING_CREATION", "Address": {"NodeID": "raylet", "Port": 0}}


def leased(node: str) -> dict[str, Any]:
    return {"State": "PENDING_CREATION", "Address": {"NodeID": node, "Port": 4242}}


def test_wait_for_leases_reads_the_node_once_a_worker_is_leased() -> None:
    from fastplace.engines.ray.ray_placement import wait_for_leases

    ray = FakeRay({"a": [QUEUED, QUEUED, leased("n1")], "b": [leased("n2")]})
    assert wait_for_leases(ray, [FakeActor("a"), FakeActor("b")], timeout_s=5) == ["n1", "n2"]


def test_wait_for_leases_gives_up_on_a_queued_or_dead_actor() -> None:
    from fastplace.engines.ray.ray_placement import wait_for_leases

    with pytest.raises(TimeoutError, match="1 of 2 actors still wait in Ray's queue"):
        wait_for_leases(
            FakeRay({"a": [leased("n1")], "b": [QUEUED]}),
            [FakeActor("a"), FakeActor("b")],
            timeout_s=0.05,
        )
    dead = {"State": "DEAD", "Address": {}, "DeathCause": "killed"}
    with pytest.raises(RuntimeError, match="died before Ray placed it: killed"):
        wait_for_leases(FakeRay({"a": [dead]}), [FakeActor("a")], timeout_s=5)


def test_ray_resources_names_the_nodes_custom_resources() -> None:
    from fastplace.engines.ray.ray_placement import ray_resources

    assert ray_resources([512, 300], ("memory_mb", "cpu_millis")) == {
        "fastplace_memory_mb": 512.0,
        "fastplace_cpu_millis": 300.0,
    }
    assert ray_resources([512, 0], ("memory_mb", "cpu_millis")) == {"fastplace_memory_mb": 512.0}
