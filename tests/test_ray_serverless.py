"""The serverless front end on the loopback Ray cluster: scale from zero, stay warm,
retire after the keep-alive, scale out up to the cap, roll out with a drain."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

pytest.importorskip(
    "ray", reason="Ray is not installed: pip install 'fastplace[ray]' to run the Ray engine tests"
)
torch = pytest.importorskip("torch", reason="the reference model needs torch")

from fastplace.engines.ray.deployment import Deployer  # noqa: E402
from fastplace.engines.ray.partitioned_model import make_batch  # noqa: E402
from fastplace.engines.ray.serverless import Serverless  # noqa: E402
from ray_cluster import (  # noqa: E402
    N_PARTITIONS,
    TinyModel,
    deployer,  # noqa: F401  (the fixture)
    ray_cluster,  # noqa: F401  (the fixture)
    tiny_model,  # noqa: F401  (the fixture)
)

WAIT_S = 60.0  # a generous bound on waiting for the background reaper (never asserted)


def assert_same(answer: dict[str, np.ndarray], reference: dict[str, Any]) -> None:
    assert sorted(answer) == sorted(reference)
    for task, logits in reference.items():
        assert torch.allclose(torch.from_numpy(np.array(answer[task])), logits, atol=1e-5), task


def wait_until(condition: Any) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.fixture
def serve(deployer: Deployer) -> Iterator[Any]:  # noqa: F811
    """Makes a Serverless front end on the test's deployer; closes them all after."""
    made: list[Serverless] = []

    def make(**options: Any) -> Serverless:
        front = Serverless(deployer, {"mtml": options.pop("version", 1)}, **options)
        made.append(front)
        return front

    yield make
    for front in made:
        front.close()


def test_scale_from_zero_then_warm_reuse(
    serve: Any,
    tiny_model: TinyModel,  # noqa: F811
    deployer: Deployer,  # noqa: F811
) -> None:
    front = serve(keep_alive_s=600)
    assert front.gangs("mtml") == [] and deployer.cluster.n_containers == 0
    batch = make_batch(tiny_model.config, 32, np.random.default_rng(1))
    reference = tiny_model.reference(1, *batch)

    first = front.call("mtml", batch)
    assert first.record.cold and first.record.version == 1
    assert_same(first.outputs, reference)
    stats = front.stats()
    every_block = sum(sum(p.distinct_blocks().values()) for p in tiny_model.manifests[1].partitions)
    assert (stats.cold_starts, stats.warm_hits, stats.bytes_fetched) == (1, 0, every_block)
    assert deployer.cluster.n_containers == N_PARTITIONS
    (gang,) = front.gangs("mtml")

    second = front.submit("mtml", batch).result(timeout=WAIT_S)
    assert not second.record.cold
    assert_same(second.outputs, reference)
    stats = front.stats()
    assert (stats.cold_starts, stats.warm_hits, stats.answered, stats.lost) == (1, 1, 2, 0)
    assert front.gangs("mtml") == [gang] and gang.served == 2
    for record in stats.records:  # the parts add up to the whole
        parts = record.queue_s + record.route_s + record.wait_s + record.compute_s
        assert record.latency_s == pytest.approx(parts)
        assert record.compute_s >= record.fanout_s > 0
    assert stats.records[0].wait_s > 0 and stats.records[1].wait_s == 0


def test_idle_gang_retires_after_keep_alive_and_restarts_from_the_cache(
    serve: Any,
    tiny_model: TinyModel,  # noqa: F811
    deployer: Deployer,  # noqa: F811
) -> None:
    front = serve(keep_alive_s=0.5)
    batch = make_batch(tiny_model.config, 8, np.random.default_rng(2))
    front.call("mtml", batch)
    # (Not checked here: the gang's containers are booked. Half a second later they
    # need not be, and a loaded machine can take that long to reach the next line.)
    assert front.stats().cold_starts == 1
    # A retire counts once the deployer has killed the actors and released the
    # containers (the gang leaves gangs() just before).
    wait_until(lambda: front.stats().retires == 1)
    assert front.gangs("mtml") == []
    assert deployer.cluster.n_containers == 0  # its containers are released in fastplace
    assert deployer.deployments() == []
    assert front.stats().retires == 1

    again = front.call("mtml", batch)
    assert again.record.cold
    stats = front.stats()
    assert stats.cold_starts == 2
    manifest = tiny_model.manifests[1]
    fetched_first = sum(sum(p.distinct_blocks().values()) for p in manifest.partitions)
    assert stats.bytes_fetched == fetched_first  # the second start found every block cached


def test_scale_out_under_concurrency_stops_at_the_cap(
    serve: Any,
    tiny_model: TinyModel,  # noqa: F811
    deployer: Deployer,  # noqa: F811
) -> None:
    front = serve(keep_alive_s=600, concurrency_target=1, max_gangs=2, workers=8)
    batch = make_batch(tiny_model.config, 8, np.random.default_rng(3))
    reference = tiny_model.reference(1, *batch)
    # Six requests at once, one per gang at a time: the first two start a gang each
    # (starting takes far longer than submitting), the rest queue at the cap.
    futures = [front.submit("mtml", batch) for _ in range(6)]
    answers = [f.result(timeout=WAIT_S) for f in futures]
    for answer in answers:
        assert_same(answer.outputs, reference)
    stats = front.stats()
    assert stats.cold_starts == 2
    assert len(front.gangs("mtml")) == 2
    assert deployer.cluster.n_containers == 2 * N_PARTITIONS
    assert stats.answered == 6 and stats.lost == 0
    assert sum(g.served for g in front.gangs("mtml")) == 6


def test_rollout_sends_new_requests_to_the_new_version_and_drains_the_old(
    serve: Any,
    tiny_model: TinyModel,  # noqa: F811
    deployer: Deployer,  # noqa: F811
) -> None:
    front = serve(keep_alive_s=600, concurrency_target=1, max_gangs=2)
    batch = make_batch(tiny_model.config, 16, np.random.default_rng(4))
    references = {v: tiny_model.reference(v, *batch) for v in (1, 2)}
    rolled = threading.Event()
    seen: list[tuple[bool, int]] = []  # (submitted after the rollout, version)
    errors: list[BaseException] = []
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            after = rolled.is_set()
            try:
                answer = front.call("mtml", batch)
                assert_same(answer.outputs, references[answer.record.version])
            except BaseException as error:
                errors.append(error)
                return
            seen.append((after, answer.record.version))

    threads = [threading.Thread(target=client) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        wait_until(lambda: len(seen) >= 4 or bool(errors))
        front.rollout("mtml", 2)
        rolled.set()
        count = len(seen)
        wait_until(lambda: len(seen) >= count + 4 or bool(errors))
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=WAIT_S)
    assert not errors, errors
    assert seen[0] == (False, 1)
    assert all(version == 2 for after, version in seen if after)
    assert any(after for after, _ in seen)
    # The old version's gangs drained and retired; only version 2 holds containers.
    # (deployments() drops a version once its containers are released.)
    wait_until(
        lambda: (
            all(g.version == 2 for g in front.gangs("mtml"))
            and {d.version for d in deployer.deployments()} == {2}
        )
    )
    gangs = front.gangs("mtml")
    assert gangs and all(g.version == 2 and not g.draining for g in gangs)
    assert {d.version for d in deployer.deployments()} == {2}
    assert deployer.cluster.n_containers == N_PARTITIONS * len(gangs)
    assert front.stats().lost == 0


def test_bad_options_and_unknown_models_are_refused(
    serve: Any,
    deployer: Deployer,  # noqa: F811
) -> None:
    for options, field in [
        ({"concurrency_target": 0}, "concurrency_target"),
        ({"max_gangs": 1.5}, "max_gangs"),
        ({"keep_alive_s": -1.0}, "keep_alive_s"),
        ({"keep_alive_s": float("nan")}, "keep_alive_s"),
        ({"wait_timeout_s": 0}, "wait_timeout_s"),
        ({"workers": True}, "workers"),
    ]:
        with pytest.raises((TypeError, ValueError), match=field):
            Serverless(deployer, {"mtml": 1}, **options)
    with pytest.raises(ValueError, match="model"):
        Serverless(deployer, {"../x": 1})
    front = serve()
    batch = make_batch(tiny_model_config(), 4, np.random.default_rng(0))
    with pytest.raises(KeyError, match="'nope'"):
        front.submit("nope", batch)
    with pytest.raises(KeyError, match="version 99"):
        front.rollout("mtml", 99)  # no such stored version: the active one stays
    with pytest.raises(KeyError, match="'other'"):
        front.rollout("other", 1)  # a model the store does not hold is not added
    with pytest.raises(KeyError, match="'other'"):
        front.version("other")
    assert front.version("mtml") == 1 and front.gangs("mtml") == []
    with pytest.raises(KeyError, match="version 7"):
        Serverless(deployer, {"mtml": 7})
    assert front.stats().requests == 0 and deployer.cluster.n_containers == 0


def tiny_model_config() -> Any:
    from fastplace.engines.ray.partitioned_model import MTMLConfig

    return MTMLConfig.tiny()


def test_a_cold_start_holds_up_no_other_model(
    ray_cluster: Any,  # noqa: F811
    tiny_model: TinyModel,  # noqa: F811
    tmp_path: Any,
) -> None:
    from fastplace.engines.ray.model_store import ModelStore
    from fastplace.engines.ray.partitioned_model import split_weights

    store = ModelStore(tmp_path / "store", block_size=4096)
    for name in ("a", "b"):
        parts = split_weights(tiny_model.weights[1], tiny_model.config, N_PARTITIONS)
        store.put(name, 1, parts, memory_mb=256, config=tiny_model.config.to_dict())
    two = Deployer(store, tmp_path / "cache")
    # Model b's cold start stops inside (actors being started, blocks fetched) until
    # the test lets it go: meanwhile model a must start cold and answer warm.
    entered, release = threading.Event(), threading.Event()
    start = two._start

    def held_start(manifest: Any, *args: Any) -> Any:
        if manifest.model == "b":
            entered.set()
            release.wait(WAIT_S)
        return start(manifest, *args)

    two._start = held_start  # type: ignore[method-assign]
    front = Serverless(two, {"a": 1, "b": 1}, keep_alive_s=600)
    batch = make_batch(tiny_model.config, 8, np.random.default_rng(6))
    try:
        slow = front.submit("b", batch)
        assert entered.wait(WAIT_S)
        cold = front.submit("a", batch).result(timeout=WAIT_S)  # TimeoutError if blocked
        warm = front.submit("a", batch).result(timeout=WAIT_S)
        assert cold.record.cold and not warm.record.cold
        assert not slow.done()
        release.set()
        assert slow.result(timeout=WAIT_S).record.cold
        assert front.stats().cold_starts == 2
    finally:
        release.set()
        front.close()
        two.shutdown()
