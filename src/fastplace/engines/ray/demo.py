"""The Ray demo: two models, rolling versions, fastplace policies side by side.

Scenario (the same for every policy, on the same local Ray cluster):

1. train ``versions`` versions of ``models`` small MTML models (recurrent retraining:
   version ``v`` continues from ``v - 1`` on day ``v``'s traffic) and store each as
   content-addressed blocks, cut into ``partitions`` partitions;
2. per policy, with fresh (empty) node caches: deploy version 1 of every model, then
   roll every model out to version 2, 3 ... in turn (the new version starts while the
   old one serves, then the old one retires), serving ``requests`` batches after each
   step;
3. report bytes fetched by the rollouts (version 1's deployments fetch everything
   under any policy and are left out), cold-start seconds, fastplace's plan time next
   to Ray's actor start time, fan-out and request latency.

:func:`plan_only` runs the same scenario through fastplace alone (no Ray): the bytes a
rollout fetches are then the block index's prediction, which the Ray runs confirm
(each cold start reports what it actually fetched).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fastplace._checks import integer
from fastplace.engines.ray.model_store import ModelStore
from fastplace.engines.ray.partitioned_model import (
    MTMLConfig,
    make_batch,
    split_weights,
    train_versions,
)
from fastplace.engines.ray.ray_placement import RAY_DEFAULT, RayPlacement
from fastplace.resources import as_amount, request_for_memory
from fastplace.sim.policies import PlacementContext, Policy, Similarity, make_policy

__all__ = [
    "DemoConfig",
    "PolicyResult",
    "build_store",
    "parse_policy",
    "plan_only",
    "run_demo",
    "run_policy",
]

Progress = Callable[[str], None]


@dataclass(frozen=True)
class DemoConfig:
    nodes: int = 4
    node_memory_mb: int = 3072
    node_cpu_millis: int = 8000
    models: int = 2
    versions: int = 3
    partitions: int = 3
    partition_mb: int = 512
    block_size: int = 4096
    bandwidth_mb_s: float = 50.0
    """Throughput of a fetch from the model store (MB/s), standing for remote storage."""
    requests: int = 40
    """Batches served per model after each deployment step."""
    batch: int = 64
    steps_per_day: int = 30
    seed: int = 0
    model: MTMLConfig = field(default_factory=MTMLConfig)

    def __post_init__(self) -> None:
        # Counts and sizes are integers >= 1 (the seed >= 0): no bools, no floats. The
        # capacities and the partitions' memory are amounts, checked as requests are.
        for name in (
            "nodes",
            "models",
            "versions",
            "partitions",
            "block_size",
            "requests",
            "batch",
            "steps_per_day",
        ):
            checked = integer(getattr(self, name), f"DemoConfig.{name}", minimum=1)
            object.__setattr__(self, name, checked)
        for name in ("node_memory_mb", "node_cpu_millis", "partition_mb"):
            amount = as_amount(getattr(self, name), f"DemoConfig.{name}")
            if amount == 0:
                raise ValueError(f"DemoConfig.{name} = 0 must be > 0")
            object.__setattr__(self, name, amount)
        object.__setattr__(self, "seed", integer(self.seed, "DemoConfig.seed", minimum=0))

    def model_names(self) -> list[str]:
        return [f"mtml-{chr(ord('a') + i)}" for i in range(self.models)]


@dataclass
class PolicyResult:
    policy: str
    rollout_bytes: list[int] = field(default_factory=list)
    """Bytes fetched by each rollout (versions >= 2), in order."""
    first_bytes: int = 0
    """Bytes fetched by the version-1 deployments."""
    placements: list[tuple[str, int, list[int]]] = field(default_factory=list)
    cold_start_s: list[float] = field(default_factory=list)
    """Every partition's cold start (fetch + load), rollouts only."""
    plan_s: list[float] = field(default_factory=list)
    actor_start_s: list[float] = field(default_factory=list)
    fanout_s: list[float] = field(default_factory=list)
    request_s: list[float] = field(default_factory=list)
    index_agrees: bool = True
    """Every cold start fetched exactly what fastplace's block index expected."""

    def summary(self) -> dict[str, Any]:
        def pct(values: list[float], q: float) -> float:
            return float(np.percentile(values, q)) if values else float("nan")

        return {
            "policy": self.policy,
            "rollout_bytes": int(sum(self.rollout_bytes)),
            "rollout_bytes_each": self.rollout_bytes,
            "first_deploy_bytes": self.first_bytes,
            "cold_start_mean_s": float(np.mean(self.cold_start_s)) if self.cold_start_s else 0.0,
            "cold_start_max_s": max(self.cold_start_s, default=0.0),
            # Ray places ray_default's actors when they start: no plan to time.
            "plan_p50_us": None if self.policy == RAY_DEFAULT else pct(self.plan_s, 50) * 1e6,
            "actor_start_p50_s": pct(self.actor_start_s, 50),
            "fanout_p50_ms": pct(self.fanout_s, 50) * 1e3,
            "request_p50_ms": pct(self.request_s, 50) * 1e3,
            "request_p99_ms": pct(self.request_s, 99) * 1e3,
            "requests": len(self.request_s),
            "index_agrees": self.index_agrees,
            "placements": [{"model": m, "version": v, "servers": s} for m, v, s in self.placements],
        }


def parse_policy(spec: str) -> Policy:
    """A policy by name; ``similarity:0.95`` is Similarity with ``max_load=0.95``;
    ``ray_default`` is Ray's own scheduler (:mod:`fastplace.engines.ray.ray_placement`)."""
    name, _, argument = spec.partition(":")
    if name == RAY_DEFAULT and not argument:
        return RayPlacement()
    if name == "similarity" and argument:
        try:
            return Similarity(max_load=float(argument))
        except ValueError as error:
            raise ValueError(f"policy {spec!r}: {error}") from None
    if argument:
        raise ValueError(f"policy {spec!r}: only similarity takes an argument (max_load)")
    return make_policy(name)


def build_store(root: Path, config: DemoConfig, progress: Progress = print) -> float:
    """Trains every model's versions and stores them; returns the training seconds."""
    store = ModelStore(root, block_size=config.block_size)
    began = time.perf_counter()
    for i, name in enumerate(config.model_names()):
        if _stored(store, name, config):
            progress(f"{name}: {_versions(config.versions)} already in the store")
            continue
        progress(f"training {name}: {_versions(config.versions)}")
        versions = train_versions(
            config.model, config.versions, steps_per_day=config.steps_per_day, seed=config.seed + i
        )
        for version, weights in enumerate(versions, 1):
            store.put(
                name,
                version,
                split_weights(weights, config.model, config.partitions),
                memory_mb=config.partition_mb,
                config=config.model.to_dict(),
            )
    return time.perf_counter() - began


def _stored(store: ModelStore, name: str, config: DemoConfig) -> bool:
    """Whether the store already holds this model's versions as ``config`` would make them."""
    if store.versions(name)[: config.versions] != list(range(1, config.versions + 1)):
        return False
    first = store.manifest(name, 1)
    return (
        first.config == config.model.to_dict()
        and first.block_size == config.block_size
        and [p.memory_mb for p in first.partitions] == [config.partition_mb] * config.partitions
    )


def _steps(config: DemoConfig) -> list[tuple[str, int]]:
    steps = [(name, 1) for name in config.model_names()]
    for version in range(2, config.versions + 1):
        steps += [(name, version) for name in config.model_names()]
    return steps


def run_policy(
    store: ModelStore,
    cache_root: Path,
    spec: str,
    config: DemoConfig,
    progress: Progress = print,
) -> PolicyResult:
    """The scenario under one policy on the connected Ray cluster (fresh caches)."""
    from fastplace.engines.ray.deployment import Deployer

    deployer = Deployer(store, cache_root, policy=parse_policy(spec), seed=config.seed)
    result = PolicyResult(spec)
    rng = np.random.default_rng(config.seed)
    try:
        for name, version in _steps(config):
            began = time.perf_counter()
            deployment = (
                deployer.deploy(name, version) if version == 1 else deployer.rollout(name, version)
            )
            progress(
                f"{spec}: {name} v{version} on servers {deployment.servers}, fetched "
                f"{deployment.fetched_bytes / 2**20:.2f} MiB ({time.perf_counter() - began:.1f} s)"
            )
            result.placements.append((name, version, deployment.servers))
            result.plan_s.append(deployment.plan_s)
            result.actor_start_s.append(deployment.actor_start_s)
            for part in deployment.partitions:
                assert part.cold_start is not None
                if part.cold_start.fetched_bytes != part.index_missing_bytes:
                    result.index_agrees = False
                if version > 1:
                    result.cold_start_s.append(part.cold_start.seconds)
            if version == 1:
                result.first_bytes += deployment.fetched_bytes
            else:
                result.rollout_bytes.append(deployment.fetched_bytes)
            for model in config.model_names():
                if model not in {d.model for d in deployer.deployments()}:
                    continue
                for _ in range(config.requests):
                    ids, dense = make_batch(config.model, config.batch, rng)
                    sent = time.perf_counter()
                    _, fanout_s, _ = deployer.infer_timed(model, ids, dense)
                    result.request_s.append(time.perf_counter() - sent)
                    result.fanout_s.append(fanout_s)
    finally:
        deployer.shutdown()
    return result


def plan_only(store: ModelStore, spec: str, config: DemoConfig) -> PolicyResult:
    """The scenario through fastplace alone: placements and the block index's bytes."""
    from fastplace.engines.ray.cluster_view import ClusterView

    nodes = [
        {
            "NodeID": f"node-{i}",
            "NodeManagerAddress": f"127.0.0.{2 + i}",
            "Alive": True,
            "Resources": {
                "fastplace_memory_mb": config.node_memory_mb,
                "fastplace_cpu_millis": config.node_cpu_millis,
            },
        }
        for i in range(config.nodes)
    ]
    view = ClusterView.from_nodes(nodes)
    context = PlacementContext(view.cluster, view.blocks, np.random.default_rng(config.seed))
    policy = parse_policy(spec)
    if isinstance(policy, RayPlacement):
        raise ValueError(f"{spec}: Ray chooses the nodes when actors start; it has no plan only")
    result = PolicyResult(spec)
    live: dict[str, list[tuple[int, int]]] = {}
    for name, version in _steps(config):
        manifest = store.manifest(name, version)
        ids = [
            view.blocks.intern(p.index_keys(), np.asarray(p.sizes, np.int64)).astype(np.int64)
            for p in manifest.partitions
        ]
        requests = [request_for_memory(p.memory_mb) for p in manifest.partitions]
        began = time.perf_counter()
        placed = policy.place_gang(context, requests, ids)
        result.plan_s.append(time.perf_counter() - began)
        if placed is None:
            raise ValueError(f"{spec}: {name} v{version} does not fit")
        fetched = sum(
            int(view.blocks.fetch(server, block_ids))
            for (_, server), block_ids in zip(placed, ids, strict=True)
        )
        for container, _ in live.pop(name, []):
            view.cluster.release(container)
        live[name] = placed
        result.placements.append((name, version, [server for _, server in placed]))
        if version == 1:
            result.first_bytes += fetched
        else:
            result.rollout_bytes.append(fetched)
    return result


def run_demo(
    config: DemoConfig,
    workdir: Path,
    policies: Sequence[str],
    progress: Progress = print,
) -> dict[str, Any]:
    """Starts a local cluster, builds the store, runs every policy; returns the report."""
    from fastplace.engines.ray.local_cluster import start_local_cluster

    store_root = workdir / "store"
    train_s = build_store(store_root, config, progress)
    store = ModelStore(
        store_root, block_size=config.block_size, bandwidth=config.bandwidth_mb_s * 1e6
    )
    progress(f"starting a {config.nodes}-node local Ray cluster")
    began = time.perf_counter()
    cluster = start_local_cluster(
        config.nodes, memory_mb=config.node_memory_mb, cpu_millis=config.node_cpu_millis
    )
    cluster_s = time.perf_counter() - began
    try:
        results = [
            run_policy(store, workdir / "cache" / spec.replace(":", "-"), spec, config, progress)
            for spec in policies
        ]
    finally:
        cluster.shutdown()
    return {
        "train_s": train_s,
        "cluster_start_s": cluster_s,
        "config": {key: value for key, value in vars(config).items() if key != "model"}
        | {"model": config.model.to_dict()},
        "policies": [result.summary() for result in results],
    }


def _versions(n: int) -> str:
    return f"{n} version" if n == 1 else f"{n} versions"
