"""Replays a request log through the serverless front end on a real Ray cluster.

The log (the simulator's request-log format, :mod:`fastplace.sim.request_log`) is read
as the simulator reads it: the same models, partition counts and memory, rollouts and
service times. Each model becomes a tiny MTML model with that many partitions (its
versions: version 1 plus a lightly retrained copy per rollout), stored as blocks.
Time runs ``compression`` times faster than the log: arrivals, service times (the
gang holds each request for ``duration / compression``) and the keep-alive are
divided by it; cold starts are real.

The result row has the simulator's metric names (``servers_used_mean``,
``cold_starts``, ``bytes_downloaded``, ``request_p50_s`` ...), measured on Ray, plus
``lost`` requests and a timeline of active gangs and servers in use.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from fastplace._checks import integer
from fastplace.engines.ray.faults import FaultPlan
from fastplace.engines.ray.model_store import ModelStore
from fastplace.engines.ray.partitioned_model import MTMLConfig, make_batch, split_weights
from fastplace.sim.workload import Workload

__all__ = ["ReplayConfig", "build_log_store", "busiest", "replay", "versions_per_model"]

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ReplayConfig:
    compression: float = 20.0
    """Log seconds per real second."""
    keep_alive_s: float = 30.0
    """Keep-alive in log seconds (the front end gets ``keep_alive_s / compression``)."""
    concurrency_target: int = 1
    max_gangs: int = 4
    batch: int = 16
    sample_s: float = 0.02
    """How often (real seconds) the timeline samples servers in use and gangs."""
    workers: int = 2048
    """Threads serving requests: requests waiting for a cold start each hold one, so
    too few would make warm requests queue behind other models' cold starts (at 256,
    the default run's requests queued 27 s for a thread at p50; the simulator, like a
    serverless platform, has no such queue)."""

    def __post_init__(self) -> None:
        for name in ("compression", "sample_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not (np.isfinite(value) and value > 0):
                raise ValueError(f"ReplayConfig.{name} = {value!r} must be finite and > 0")
        if isinstance(self.keep_alive_s, bool) or not (
            np.isfinite(self.keep_alive_s) and self.keep_alive_s >= 0
        ):
            raise ValueError(
                f"ReplayConfig.keep_alive_s = {self.keep_alive_s!r} must be finite and >= 0"
            )
        for name in ("concurrency_target", "max_gangs", "batch", "workers"):
            integer(getattr(self, name), f"ReplayConfig.{name}", minimum=1)


def busiest(workload: Workload, n: int) -> Workload:
    """The workload restricted to its ``n`` most requested models (ties: first in
    the log first), their requests and rollouts; the models keep their order."""
    n = integer(n, "models", minimum=1)
    counts = np.bincount(workload.arrival_model, minlength=len(workload.models))
    order = sorted(range(len(counts)), key=lambda m: (-int(counts[m]), m))
    keep = sorted(order[:n])
    if len(keep) == len(workload.models):
        return workload
    new_index = np.full(len(workload.models), -1, dtype=np.int32)
    new_index[keep] = np.arange(len(keep), dtype=np.int32)
    requests = new_index[workload.arrival_model] >= 0
    rollouts = new_index[workload.rollout_model] >= 0
    return dataclasses.replace(
        workload,
        models=tuple(workload.models[m] for m in keep),
        arrival_s=workload.arrival_s[requests],
        arrival_model=new_index[workload.arrival_model[requests]],
        service_s=workload.service_s[requests],
        rollout_s=workload.rollout_s[rollouts],
        rollout_model=new_index[workload.rollout_model[rollouts]],
    )


def versions_per_model(workload: Workload) -> list[int]:
    """How many versions each model has over the log (1 + its rollouts)."""
    counts = np.bincount(workload.rollout_model, minlength=len(workload.models))
    return [1 + int(c) for c in counts.tolist()]


def build_log_store(
    root: Path, workload: Workload, *, block_size: int = 4096, seed: int = 0
) -> ModelStore:
    """A store with every version of every model of the workload (tiny MTML models,
    the workload's partition count and memory). Needs torch (the initial weights)."""
    import torch

    from fastplace.engines.ray.partitioned_model import torch_model

    store = ModelStore(root, block_size=block_size)
    config = MTMLConfig.tiny()
    for m, (model, n_versions) in enumerate(
        zip(workload.models, versions_per_model(workload), strict=True)
    ):
        if store.versions(model.name) == list(range(1, n_versions + 1)):
            continue  # kept from an earlier run
        torch.manual_seed(seed * 1_000_003 + m)
        weights = {
            k: v.detach().numpy().copy() for k, v in torch_model(config).state_dict().items()
        }
        rng = np.random.default_rng([seed, m])
        memory = [p.memory_mb for p in model.partitions]
        for version in range(1, n_versions + 1):
            if version > 1:
                weights = _retrained(weights, rng)
            store.put(
                model.name,
                version,
                split_weights(weights, config, len(model.partitions)),
                memory_mb=memory,
                config=config.to_dict(),
            )
    return store


def _retrained(
    weights: dict[str, npt.NDArray[Any]], rng: np.random.Generator
) -> dict[str, npt.NDArray[Any]]:
    """A next version as lazy retraining makes one: the dense layers and the head and
    tail rows of each embedding table change; the rest (most blocks) stays."""
    new = {k: v.copy() for k, v in weights.items()}
    for key, value in new.items():
        if key.startswith("embeddings."):
            rows = value.shape[0]
            cut = max(1, rows // 20)
            touched = np.r_[0:cut, rows - cut : rows]
            value[touched] += rng.normal(0, 0.01, (touched.size, value.shape[1])).astype(
                value.dtype
            )
        else:
            value += rng.normal(0, 0.01, value.shape).astype(value.dtype)
    return new


def replay(
    workload: Workload,
    store: ModelStore,
    cache_root: Path,
    policy: Any,
    config: ReplayConfig,
    *,
    duration_s: float | None = None,
    progress: Progress | None = None,
    faults: FaultPlan | None = None,
    cluster: Any = None,
) -> dict[str, Any]:
    """Replays the workload (its first ``duration_s`` log seconds; None: all of it)
    with one policy on fresh node caches under ``cache_root``; the metrics row.
    ``faults``: actor/node faults to inject (:mod:`fastplace.engines.ray.faults`; a
    node fault needs ``cluster``, the LocalCluster), reported in the row's ``faults``.

    Call with Ray initialised (a local cluster, for example)."""
    from fastplace.engines.ray.deployment import Deployer
    from fastplace.engines.ray.faults import FaultInjector
    from fastplace.engines.ray.serverless import Serverless

    whole = workload.span_s if workload.span_s is not None else float(workload.arrival_s[-1])
    span = whole if duration_s is None else min(duration_s, whole)
    from fastplace.engines.ray.sim_to_real import recording_launch

    deployer = Deployer(store, cache_root, policy=policy)
    starts: list[dict[str, Any]] = []  # each gang's start, for the sim-to-real check
    deployer.launch = recording_launch(deployer, starts)  # type: ignore[method-assign,assignment]
    names = [m.name for m in workload.models]
    front = Serverless(
        deployer,
        dict.fromkeys(names, 1),
        concurrency_target=config.concurrency_target,
        keep_alive_s=config.keep_alive_s / config.compression,
        max_gangs=config.max_gangs,
        workers=config.workers,
    )
    model_config = MTMLConfig.tiny()
    rng = np.random.default_rng(0)
    batches = [make_batch(model_config, config.batch, rng) for _ in names]
    events = _events(workload, span)
    timeline: list[tuple[float, int, int]] = []  # (real s, servers in use, gangs)
    stop = threading.Event()
    began = time.perf_counter()

    def sample() -> None:
        while not stop.wait(config.sample_s):
            gangs = sum(len(front.gangs(name)) for name in names)
            timeline.append((time.perf_counter() - began, deployer.cluster.n_active_servers, gangs))

    sampler = threading.Thread(target=sample, name="fastplace-replay-sampler", daemon=True)
    injector = None
    if faults is not None and not faults.empty:
        injector = FaultInjector(faults, front, cluster, config.compression)
    futures: list[Future[Any]] = []
    version = [1] * len(names)
    sampler.start()
    if injector is not None:
        injector.start(began)
    try:
        for i, (t, kind, m, service_s) in enumerate(events):
            delay = began + t / config.compression - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            if kind == "rollout":
                version[m] += 1
                front.rollout(names[m], version[m])
            else:
                hold = service_s / config.compression
                futures.append(front.submit(names[m], batches[m], hold_s=hold))
            if progress is not None and i % 500 == 0:
                progress(f"{policy if isinstance(policy, str) else policy.name}: {t:.0f} s")
        lost = 0
        for future in futures:
            try:
                future.result()
            except Exception:
                lost += 1
        wall = time.perf_counter() - began
    finally:
        stop.set()
        sampler.join()
        if injector is not None:
            injector.stop()
        front.close()
        deployer.shutdown()
        if injector is not None:
            injector.restore()
    stats = front.stats()
    summary = stats.summary()
    return _row(summary, lost, len(futures), timeline, wall, config) | {
        "policy": deployer.policy.name,
        "timeline": timeline,
        "starts": starts,
        "faults": injector.report() if injector is not None else [],
    }


def _events(workload: Workload, span: float) -> list[tuple[float, str, int, float]]:
    """Requests and rollouts up to ``span``, in time order (a rollout before a request
    at the same instant, as the simulator orders them)."""
    n = int(np.searchsorted(workload.arrival_s, span, side="right"))
    events = [
        (t, "request", m, s)
        for t, m, s in zip(
            workload.arrival_s[:n].tolist(),
            workload.arrival_model[:n].tolist(),
            workload.service_s[:n].tolist(),
            strict=True,
        )
    ]
    k = int(np.searchsorted(workload.rollout_s, span, side="right"))
    events += [
        (t, "rollout", m, 0.0)
        for t, m in zip(
            workload.rollout_s[:k].tolist(), workload.rollout_model[:k].tolist(), strict=True
        )
    ]
    events.sort(key=lambda e: (e[0], e[1] != "rollout"))
    return events


def _row(
    summary: dict[str, Any],
    lost: int,
    requests: int,
    timeline: list[tuple[float, int, int]],
    wall: float,
    config: ReplayConfig,
) -> dict[str, Any]:
    servers = [s for _, s, _ in timeline]
    gangs = [g for _, _, g in timeline]
    return {
        "servers_used_mean": float(np.mean(servers)) if servers else 0.0,
        "servers_used_peak": max(servers, default=0),
        "gangs_mean": float(np.mean(gangs)) if gangs else 0.0,
        "gangs_peak": max(gangs, default=0),
        "requests": requests,
        "warm_requests": summary["warm_hits"],
        "cold_starts": summary["cold_starts"],
        "cold_start_p50_s": summary["cold_start_p50_s"],
        "cold_start_p99_s": summary["cold_start_p99_s"],
        "bytes_downloaded": summary["bytes_fetched"],
        "request_p50_s": summary["request_p50_s"],
        "request_p99_s": summary["request_p99_s"],
        "route_p50_s": summary["route_p50_s"],
        "route_p99_s": summary["route_p99_s"],
        "retires": summary["retires"],
        "reclaimed": summary["reclaimed"],
        "lost": lost,
        "errors": summary["errors"],
        "retries": summary["retries"],
        "gangs_broken": summary["gangs_broken"],
        "gangs_replaced": summary["gangs_replaced"],
        "partitions_replaced": summary["partitions_replaced"],
        "gangs_lost": summary["gangs_lost"],
        "start_faults": summary["start_faults"],
        "queue_p50_s": summary["queue_p50_s"],
        "queue_p99_s": summary["queue_p99_s"],
        "compression": config.compression,
        "wall_s": wall,
    }
