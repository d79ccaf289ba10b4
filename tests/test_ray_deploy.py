"""fastplace.engines.ray on a real local Ray cluster: plan = actual nodes, answers equal
the unpartitioned model, cold starts fetch only missing blocks, rollouts lose nothing."""

from __future__ import annotations

import threading
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
    N_NODES,
    NODE_CPU_MILLIS,
    NODE_MEMORY_MB,
    TinyModel,
    deployer,  # noqa: F401  (the fixture)
    ray_cluster,  # noqa: F401  (the fixture)
    tiny_model,  # noqa: F401  (the fixture)
)


def assert_same(answer: dict[str, np.ndarray], reference: dict[str, Any]) -> None:
    assert sorted(answer) == sorted(reference)
    for task, logits in reference.items():
        assert torch.allclose(torch.from_numpy(np.array(answer[task])), logits, atol=1e-5), task


def test_cluster_view_comes_from_custom_resources(deployer: Deployer, ray_cluster: Any) -> None:  # noqa: F811
    import ray

    cluster = deployer.cluster
    assert cluster.n_servers == N_NODES
    assert cluster.capacity.tolist() == [[NODE_MEMORY_MB, NODE_CPU_MILLIS]] * N_NODES
    alive = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
    assert set(deployer.view.node_ids) == alive
    assert deployer.view.addresses == sorted(deployer.view.addresses)
    assert deployer.view.addresses[0] == "127.0.0.2"


def test_gang_plan_is_where_the_actors_run(deployer: Deployer, tiny_model: TinyModel) -> None:  # noqa: F811
    deployment = deployer.deploy("mtml", 1)
    planned = [deployer.view.node_ids[p.server] for p in deployment.partitions]
    actual = [p.node_id for p in deployment.partitions]
    assert actual == planned
    assert deployment.servers == [0, 0, 0]  # first fit packs the 3 x 512 MB gang
    assert deployer.cluster.n_containers == 3
    assert deployer.cluster.used[0].tolist()[0] == 3 * 512
    deployer.retire(deployment)
    assert deployer.cluster.n_containers == 0


def test_answer_equals_the_unpartitioned_model(deployer: Deployer, tiny_model: TinyModel) -> None:  # noqa: F811
    deployer.deploy("mtml", 2)
    ids, dense = make_batch(tiny_model.config, 64, np.random.default_rng(7))
    answer, fanout_s, version = deployer.infer_timed("mtml", ids, dense)
    assert version == 2
    assert fanout_s > 0
    assert_same(answer, tiny_model.reference(2, ids, dense))


def test_cold_start_fetches_only_missing_blocks(deployer: Deployer, tiny_model: TinyModel) -> None:  # noqa: F811
    manifests = tiny_model.manifests
    first = deployer.deploy("mtml", 1)
    every_block = sum(sum(p.distinct_blocks().values()) for p in manifests[1].partitions)
    assert first.fetched_bytes == every_block
    for part in first.partitions:
        assert part.cold_start is not None
        assert part.cold_start.fetched_bytes == part.index_missing_bytes  # the index is true
    deployer.retire(first)

    again = deployer.deploy("mtml", 1)
    assert again.servers == first.servers
    assert again.fetched_bytes == 0
    deployer.retire(again)

    newer = deployer.deploy("mtml", 2)
    assert newer.servers == first.servers  # all on server 0, which holds v1's blocks
    held = {h for p in manifests[1].partitions for h in p.hashes}
    changed = {
        h: s
        for p in manifests[2].partitions
        for h, s in p.distinct_blocks().items()
        if h not in held
    }
    assert newer.fetched_bytes == sum(changed.values())
    assert 0 < newer.fetched_bytes < every_block / 2
    assert sum(p.index_missing_bytes for p in newer.partitions) == newer.fetched_bytes


def test_a_damaged_cached_block_is_fetched_again_not_served(
    deployer: Deployer,  # noqa: F811
    tiny_model: TinyModel,  # noqa: F811
) -> None:
    from fastplace.engines.ray.model_store import NodeCache

    first = deployer.deploy("mtml", 2)
    deployer.retire(first)
    cache = NodeCache(deployer.cache_root / first.node_ids[0])
    victim = tiny_model.manifests[2].partitions[0].hashes[0]
    path = cache.files.path(victim)
    data = bytearray(path.read_bytes())
    data[0] ^= 0xFF  # the node's disk rotted (or another process wrote there)
    path.write_bytes(data)

    again = deployer.deploy("mtml", 2)
    assert again.servers == first.servers and again.fetched_bytes == 0
    starts = [p.cold_start for p in again.partitions]
    assert sum(s.repaired_blocks for s in starts if s) == 1
    ids, dense = make_batch(tiny_model.config, 32, np.random.default_rng(5))
    assert_same(deployer.infer("mtml", ids, dense), tiny_model.reference(2, ids, dense))


def test_rollout_under_requests_loses_none(deployer: Deployer, tiny_model: TinyModel) -> None:  # noqa: F811
    deployer.deploy("mtml", 1)
    ids, dense = make_batch(tiny_model.config, 16, np.random.default_rng(3))
    references = {v: tiny_model.reference(v, ids, dense) for v in (1, 2)}
    answered: list[int] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            try:
                answer, _, version = deployer.infer_timed("mtml", ids, dense)
                assert_same(answer, references[version])
                answered.append(version)
            except BaseException as error:
                errors.append(error)
                return

    threads = [threading.Thread(target=client) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        while len(answered) < 5 and not errors:
            threading.Event().wait(0.01)
        new = deployer.rollout("mtml", 2)
        seen = len(answered)
        while len(answered) < seen + 5 and not errors:
            threading.Event().wait(0.01)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert not errors, errors
    assert answered[0] == 1 and answered[-1] == 2
    assert deployer.active("mtml") is new
    assert [d.version for d in deployer.deployments()] == [2]
    assert deployer.cluster.n_containers == 3  # v1's capacity is released
