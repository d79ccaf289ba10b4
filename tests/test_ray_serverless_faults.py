"""Faults under the serverless front end on the loopback cluster: a partition actor
killed, and a whole node removed, while requests stream in: every request is answered
(retried after fastplace re-places the gang), and the retries are counted; a request
that meets a fault on every attempt fails with a clear error after the limit."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
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
from fastplace.engines.ray.serverless import (  # noqa: E402
    Answer,
    RetriesExhausted,
    Serverless,
)
from fastplace.resources import request_for_memory  # noqa: E402
from ray_cluster import (  # noqa: E402
    N_PARTITIONS,
    NODE_CPU_MILLIS,
    NODE_MEMORY_MB,
    PARTITION_MB,
    TinyModel,
    deployer,  # noqa: F401  (the fixture)
    ray_cluster,  # noqa: F401  (the fixture)
    tiny_model,  # noqa: F401  (the fixture)
)

WAIT_S = 90.0  # a generous bound on any one answer (never a timing assertion)


def stream_with_fault(
    front: Serverless, model: TinyModel, fault: Callable[[], None], *, after_s: float = 0.2
) -> list[Answer]:
    """8 requests answered before ``fault()``, then 8 more submitted over ``after_s``
    seconds; every answer checked against the unpartitioned model."""
    batch = make_batch(model.config, 32, np.random.default_rng(7))
    reference = model.reference(1, *batch)
    before = [front.submit("mtml", batch) for _ in range(8)]
    answers = [f.result(timeout=WAIT_S) for f in before]
    fault()
    after: list[Future[Answer]] = []
    for _ in range(8):
        after.append(front.submit("mtml", batch))
        time.sleep(after_s / 8)
    answers += [f.result(timeout=WAIT_S) for f in after]
    for answer in answers:
        for task, logits in reference.items():
            assert torch.allclose(
                torch.from_numpy(np.array(answer.outputs[task])), logits, atol=1e-5
            )
    return answers


def test_killed_actor_mid_stream_every_request_answered_gang_replaced(
    deployer: Deployer,  # noqa: F811
    tiny_model: TinyModel,  # noqa: F811
) -> None:
    import ray

    front = Serverless(deployer, {"mtml": 1}, keep_alive_s=600, concurrency_target=2, max_gangs=1)
    killed: list[Any] = []

    def kill_partition() -> None:
        (gang,) = front.gangs("mtml")
        assert gang.deployment is not None
        victim = gang.deployment.partitions[N_PARTITIONS - 1]
        killed.append(victim)
        ray.kill(victim.actor, no_restart=True)

    try:
        answers = stream_with_fault(front, tiny_model, kill_partition)
        stats = front.stats()
        assert (stats.answered, stats.lost, stats.requests) == (16, 0, 16)
        assert stats.retries > 0 and sum(a.record.retries for a in answers) == stats.retries
        assert (stats.gangs_broken, stats.gangs_replaced, stats.partitions_replaced) == (1, 1, 1)
        assert stats.cold_starts == 1  # healed in place, not started again
        (gang,) = front.gangs("mtml")
        assert gang.deployment is not None
        replaced = gang.deployment.partitions[N_PARTITIONS - 1]
        assert replaced.restarts == 1 and replaced.container != killed[0].container
        assert deployer.cluster.n_containers == N_PARTITIONS  # the dead one released
        for record in stats.records:
            parts = record.queue_s + record.route_s + record.wait_s + record.compute_s
            assert record.latency_s == pytest.approx(parts + record.retry_s)
    finally:
        front.close()


def test_node_removed_mid_stream_gang_replaced_elsewhere_node_cordoned(
    ray_cluster: Any,  # noqa: F811
    tiny_model: TinyModel,  # noqa: F811
    tmp_path: Path,
) -> None:
    node = ray_cluster.add_node(memory_mb=NODE_MEMORY_MB, cpu_millis=NODE_CPU_MILLIS)
    deployer = Deployer(tiny_model.store, tmp_path / "cache", policy="first_fit")  # noqa: F811
    doomed = deployer.view.server_of(ray_cluster.node_id(node))
    others = [s for s in range(deployer.cluster.n_servers) if s != doomed]
    front = Serverless(deployer, {"mtml": 1}, keep_alive_s=600, concurrency_target=2, max_gangs=1)
    try:
        for server in others:  # the gang's first start lands on the doomed node
            deployer.cluster.cordon(server)
        front.call("mtml", make_batch(tiny_model.config, 4, np.random.default_rng(0)))
        for server in others:
            deployer.cluster.uncordon(server)
        (gang,) = front.gangs("mtml")
        assert gang.deployment is not None and gang.deployment.servers == [doomed] * 3

        # Ray declares the node dead ~1.5 s after it stops (local_cluster.SYSTEM_CONFIG);
        # its actors' processes may answer until then: stream past that.
        stream_with_fault(front, tiny_model, lambda: ray_cluster.remove_node(node), after_s=5.0)

        stats = front.stats()
        assert (stats.answered, stats.lost) == (17, 0)
        assert stats.retries > 0
        assert stats.gangs_replaced + stats.gangs_lost >= 1
        assert deployer.cluster.is_cordoned(doomed)  # fastplace places nothing there
        assert deployer.cluster.container_counts()[doomed] == 0
        assert doomed not in deployer.cluster.feasible(request_for_memory(PARTITION_MB)).tolist()
        for gang in front.gangs("mtml"):
            assert gang.deployment is not None and doomed not in gang.deployment.servers
        assert deployer.cluster.n_containers == N_PARTITIONS * len(front.gangs("mtml"))
    finally:
        front.close()
        deployer.shutdown()


def test_a_request_failing_on_every_attempt_is_lost_after_the_limit(
    deployer: Deployer,  # noqa: F811
    tiny_model: TinyModel,  # noqa: F811
) -> None:
    import ray

    front = Serverless(deployer, {"mtml": 1}, keep_alive_s=600, max_retries=2)
    batch = make_batch(tiny_model.config, 32, np.random.default_rng(8))
    front.call("mtml", batch)
    (gang,) = front.gangs("mtml")
    assert gang.deployment is not None
    heal = deployer.heal_deployment
    heals = threading.Semaphore(0)

    def heal_then_fail_again(deployment: Any, **options: Any) -> Any:
        events = heal(deployment, **options)
        ray.kill(deployment.partitions[0].actor, no_restart=True)  # the fault recurs
        heals.release()
        return events

    deployer.heal_deployment = heal_then_fail_again  # type: ignore[method-assign]
    ray.kill(gang.deployment.partitions[0].actor, no_restart=True)
    try:
        with pytest.raises(RetriesExhausted, match=r"mtml: no answer after 3 attempts.*ActorDied"):
            front.call("mtml", batch)
        stats = front.stats()
        assert (stats.retries, stats.lost, stats.answered) == (2, 1, 1)
        assert stats.errors == {"RetriesExhausted": 1}
        assert stats.gangs_broken == 3 and stats.partitions_replaced == 3
        with pytest.raises(ValueError, match="max_retries"):
            Serverless(deployer, {"mtml": 1}, max_retries=-1)
    finally:
        deployer.heal_deployment = heal  # type: ignore[method-assign]
        front.close()
