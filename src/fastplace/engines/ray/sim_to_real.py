"""The simulator against the Ray runtime: the same replay, simulated, side by side.

``fastplace ray-replay --simulate`` replays a request log on a local Ray cluster
(:func:`fastplace.engines.ray.replay.replay`) and then, per policy, simulates exactly
that replay with :mod:`fastplace.sim`:

- blocks: the store's manifests (:class:`StoreBlocks`: each model, partition and
  version's real block hashes and sizes, keyed in the BlockIndex as the deployer keys
  them), not the simulator's synthetic :class:`~fastplace.sim.versions.VersionBlocks`;
- models: the partitions' memory (and CPU, ``cpu_for_memory``) as the manifests book
  them (:func:`replay_workload`);
- cluster (:func:`sim_config_for_replay`): the Ray nodes' declared capacities
  (``ray.nodes()`` as :class:`~fastplace.engines.ray.cluster_view.ClusterView` reads
  them) as servers, the nodes' block cache size, the store's block size, the fetch
  bandwidth and boot time measured in the real run (:func:`measured_start`), the
  front end's keep-alive and gang cap (``SimConfig.max_gangs``), and waiting for room
  instead of rejecting (``SimConfig.wait_for_room``), as the front end does;
- rollouts switch at once (``switch_window_s = 0``), as the front end does.

One time base: real seconds. The replay compresses the log (arrivals, service times
and keep-alive divided by ``compression``) while its cold starts are real, so the
simulated workload is the compressed one and every latency on both sides is in real
seconds. The simulated time covers the real replay's wall time (the tail where the
last requests finish and gangs idle counts in the mean servers on both sides).

What the simulator cannot reproduce from one number is the real cold start's spread:
on a small machine a gang's start is mostly Ray starting worker processes, whose cost
grows with the starts running at once; the simulator gives every start the measured
median (plus its fetch). See docs/serverless.md for what agrees and what does not.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from fastplace._checks import integer
from fastplace.block_index import BlockIndex
from fastplace.engines.ray.cluster_view import _cache_bytes, _fastplace_nodes
from fastplace.engines.ray.model_store import ModelStore
from fastplace.resources import DEFAULT_RESOURCES, cpu_for_memory
from fastplace.sim.config import SimConfig
from fastplace.sim.workload import DIModel, Partition, Workload

__all__ = [
    "COMPARED",
    "StoreBlocks",
    "TraceBoots",
    "compare",
    "markdown",
    "markdown_summary",
    "measured_start",
    "replay_workload",
    "sim_config_for_replay",
    "simulate_replay",
    "simulated_policy",
    "start_record",
]


def simulated_policy(spec: str) -> str:
    """The simulator policy that stands for a replayed one: itself, except
    ``ray_default`` (Ray's own scheduler placed the actors, which the simulator cannot
    ask), whose stand-in is ``ray_hybrid``, the simulator's model of Ray's rule."""
    from fastplace.engines.ray.ray_placement import RAY_DEFAULT

    return "ray_hybrid" if spec == RAY_DEFAULT else spec


#: (label, real row key, simulated row key, target relative error or None).
COMPARED: tuple[tuple[str, str, str, float | None], ...] = (
    ("cold starts (gangs)", "cold_starts", "gang_starts", 0.10),
    ("bytes fetched", "bytes_downloaded", "bytes_downloaded", 0.10),
    ("cold start p50 s", "cold_start_p50_s", "gang_cold_start_p50_s", None),
    ("cold start p99 s", "cold_start_p99_s", "gang_cold_start_p99_s", None),
    ("request p50 s", "request_p50_s", "request_p50_s", 0.25),
    ("request p99 s", "request_p99_s", "request_p99_s", None),
    ("servers in use, mean", "servers_used_mean", "servers_used_mean", None),
    ("servers in use, peak", "servers_used_peak", "servers_used_peak", None),
    ("warm requests", "warm_requests", "warm_requests", None),
    ("requests lost / rejected", "lost", "rejected", None),
)

#: Metrics on which the policies must rank the same in the simulation as on Ray.
RANKED = (("bytes fetched", "bytes_downloaded"), ("servers in use, mean", "servers_used_mean"))


class StoreBlocks:
    """The simulator's block source (:class:`~fastplace.sim.versions.BlockSource`) read
    from a model store: simulated version ``v`` of model ``models[m]`` is stored version
    ``v + 1`` (the simulator counts from 0, the store from 1). Block keys and sizes are
    the manifests', interned in ``index`` as the Ray deployer interns them, so the same
    block is the same id across versions and models."""

    def __init__(self, store: ModelStore, models: Sequence[str], index: BlockIndex) -> None:
        self._store = store
        self._models = list(models)
        self._index = index
        self._ids: dict[tuple[int, int, int], npt.NDArray[np.int64]] = {}

    def ids(self, model: int, partition: int, version: int) -> npt.NDArray[np.int64]:
        """BlockIndex ids of the partition's file in stored version ``version + 1``.
        KeyError if the store lacks that version; ValueError if it has fewer
        partitions than asked for."""
        key = (model, partition, version)
        found = self._ids.get(key)
        if found is not None:
            return found
        name = self._models[model]
        manifest = self._store.manifest(name, version + 1)
        if not 0 <= partition < len(manifest.partitions):
            raise ValueError(
                f"{name} v{version + 1}: partition {partition} asked for, the store has "
                f"{len(manifest.partitions)}"
            )
        part = manifest.partitions[partition]
        sizes = np.asarray(part.sizes, dtype=np.int64)
        found = np.asarray(self._index.intern(part.index_keys(), sizes), dtype=np.int64)
        self._ids[key] = found
        return found


def replay_workload(
    workload: Workload, store: ModelStore, *, compression: float, span_s: float
) -> Workload:
    """The workload as the replay runs it, in real seconds: requests and rollouts up to
    ``span_s`` log seconds, times and service times divided by ``compression``, the
    partitions' memory (and CPU) and file sizes from the store's version 1, rollouts
    switching at once."""
    if isinstance(compression, bool) or not (np.isfinite(compression) and compression > 0):
        raise ValueError(f"compression = {compression!r} must be finite and > 0")
    if isinstance(span_s, bool) or not (np.isfinite(span_s) and span_s > 0):
        raise ValueError(f"span_s = {span_s!r} must be finite and > 0")
    models = []
    for model in workload.models:
        manifest = store.manifest(model.name, 1)
        if len(manifest.partitions) != len(model.partitions):
            raise ValueError(
                f"{model.name}: the log gives {len(model.partitions)} partitions, the "
                f"store {len(manifest.partitions)}"
            )
        partitions = tuple(
            Partition(p.memory_mb, cpu_for_memory(p.memory_mb), max(1, p.total_bytes))
            for p in manifest.partitions
        )
        models.append(DIModel(model.name, partitions, changed_fraction=model.changed_fraction))
    n = int(np.searchsorted(workload.arrival_s, span_s, side="right"))
    k = int(np.searchsorted(workload.rollout_s, span_s, side="right"))
    return dataclasses.replace(
        workload,
        models=tuple(models),
        arrival_s=workload.arrival_s[:n] / compression,
        arrival_model=workload.arrival_model[:n],
        service_s=workload.service_s[:n] / compression,
        rollout_s=workload.rollout_s[:k] / compression,
        rollout_model=workload.rollout_model[:k],
        switch_window_s=0.0,
        span_s=span_s / compression,
    )


def start_record(deployment: Any, launch_s: float, began_s: float = 0.0) -> dict[str, Any]:
    """What one gang's start cost (a Deployment from ``Deployer.launch``, the seconds
    the launch took and when it began): bytes and seconds per partition's fetch."""
    parts = [p.cold_start for p in deployment.partitions if p.cold_start is not None]
    return {
        "model": deployment.model,
        "version": deployment.version,
        "began_s": began_s,
        "launch_s": launch_s,
        "actor_start_s": deployment.actor_start_s,
        "fetched_bytes": [c.fetched_bytes for c in parts],
        "fetch_s": [c.fetch_s for c in parts],
        "load_s": [c.load_s for c in parts],
    }


def recording_launch(deployer: Any, starts: list[dict[str, Any]]) -> Callable[[str, int], Any]:
    """``deployer.launch`` that appends a :func:`start_record` of each gang to ``starts``."""
    launch = deployer.launch
    origin = time.perf_counter()

    def launch_recorded(model: str, version: int) -> Any:
        began = time.perf_counter()
        deployment = launch(model, version)
        starts.append(start_record(deployment, time.perf_counter() - began, began - origin))
        return deployment

    return launch_recorded


def measured_start(starts: Sequence[Mapping[str, Any]]) -> tuple[float, float]:
    """(fetch bandwidth bytes/s, boot s) from the real run's gang starts.

    Bandwidth: bytes fetched over the seconds spent fetching them, all partitions that
    fetched anything. Boot: the median over gangs of the launch's seconds less its
    slowest partition's fetch at that bandwidth (the simulator's cold start is
    ``fetched / bandwidth + boot``). ValueError without a start."""
    if not starts:
        raise ValueError("the real run started no gang: nothing to measure a cold start on")
    fetched = sum(b for s in starts for b in s["fetched_bytes"])
    seconds = sum(
        t for s in starts for b, t in zip(s["fetched_bytes"], s["fetch_s"], strict=True) if b > 0
    )
    bandwidth = fetched / seconds if fetched > 0 and seconds > 0 else 1e12
    return bandwidth, statistics.median(_boot(s, bandwidth) for s in starts)


class TraceBoots:
    """Boot seconds replayed from the real run (the simulator's ``boot``): the k-th gang
    the simulation starts of a model version boots as long as the k-th the real run
    started of it (launch less its slowest fetch at ``bandwidth``), in the order they
    began; beyond those, the median of that version's, else of all. On a small shared
    machine a real boot is mostly Ray starting worker processes, whose cost grows with
    the starts running at once: one constant would make every start alike."""

    def __init__(
        self,
        starts: Sequence[Mapping[str, Any]],
        models: Sequence[str],
        bandwidth: float,
    ) -> None:
        self._boots: dict[tuple[int, int], list[float]] = {}
        position = {name: m for m, name in enumerate(models)}
        for start in sorted(starts, key=lambda s: float(s.get("began_s", 0.0))):
            key = (position[start["model"]], int(start["version"]) - 1)
            self._boots.setdefault(key, []).append(_boot(start, bandwidth))
        self._median = {k: statistics.median(v) for k, v in self._boots.items()}
        every = [b for v in self._boots.values() for b in v]
        self._all = statistics.median(every) if every else 0.0
        self._used: dict[tuple[int, int], int] = {}

    def __call__(self, model: int, version: int) -> float:
        key = (model, version)
        k = self._used.get(key, 0)
        self._used[key] = k + 1
        boots = self._boots.get(key, [])
        return boots[k] if k < len(boots) else self._median.get(key, self._all)


def _boot(start: Mapping[str, Any], bandwidth: float) -> float:
    return max(0.0, float(start["launch_s"]) - max(start["fetched_bytes"], default=0) / bandwidth)


def sim_config_for_replay(
    nodes: Sequence[Mapping[str, Any]],
    *,
    cache_bytes: int,
    block_bytes: int,
    bandwidth_bytes_per_s: float,
    boot_s: float,
    keep_alive_s: float,
    duration_s: float,
    max_gangs: int,
    concurrency_target: int = 1,
    seed: int = 0,
) -> SimConfig:
    """A SimConfig of the Ray cluster ``nodes`` (``ray.nodes()``): one server per alive
    node that declares a fastplace capacity, with that capacity; the nodes' block cache
    (``fastplace_cache_mb``, else ``cache_bytes``, the deployer's default); the other
    settings as given, in real seconds. The front end's semantics: ``max_gangs`` per
    model, requests wait for room. ValueError for nodes of different capacities or
    caches (the simulator's servers are all alike) and for a concurrency target other
    than 1 (a simulated container set serves one request at a time)."""
    integer(concurrency_target, "concurrency_target", minimum=1)
    if concurrency_target != 1:
        raise ValueError(
            f"concurrency_target = {concurrency_target}: the simulator serves one request "
            "per container set (target 1)"
        )
    rows = _fastplace_nodes(nodes, DEFAULT_RESOURCES)
    if not rows:
        raise ValueError("no alive Ray node declares a fastplace capacity")
    capacities = {tuple(row[2]) for row in rows}
    if len(capacities) != 1:
        raise ValueError(
            f"the nodes declare different capacities {sorted(capacities)}: the simulator's "
            "servers are all alike"
        )
    caches = {_cache_bytes(row[3], integer(cache_bytes, "cache_bytes", minimum=0)) for row in rows}
    if len(caches) != 1:
        raise ValueError(f"the nodes declare different block caches {sorted(caches)} bytes")
    memory, cpu = capacities.pop()
    return SimConfig(
        servers=len(rows),
        server_memory_mb=memory,
        server_cpu_millis=cpu,
        block_bytes=block_bytes,
        cache_bytes=caches.pop(),
        bandwidth_bytes_per_s=bandwidth_bytes_per_s,
        boot_s=boot_s,
        keep_alive_s=keep_alive_s,
        duration_s=duration_s,
        max_gangs=max_gangs,
        wait_for_room=True,
        sla_s=1e9,  # no SLA in the replay
        seed=seed,
    )


def simulate_replay(
    workload: Workload,
    store: ModelStore,
    policy_factory: Callable[[], Any],
    real: Mapping[str, Any],
    nodes: Sequence[Mapping[str, Any]],
    *,
    compression: float,
    span_s: float,
    keep_alive_s: float,
    max_gangs: int,
    concurrency_target: int = 1,
    cache_bytes: int = 1 << 30,
    seed: int = 0,
    trace_boots: bool = True,
) -> dict[str, Any]:
    """The simulator's row for the replay that produced ``real`` (a row of
    :func:`~fastplace.engines.ray.replay.replay` with its ``starts``): ``workload`` in
    log seconds, ``keep_alive_s`` too; ``policy_factory()`` makes a fresh Policy. The
    simulation runs until its last request is answered, as the replay does. Boots are
    the real run's (:class:`TraceBoots`), or with ``trace_boots=False`` all the
    measured median (``config.boot_s``). The row
    gets the settings measured from the real run (``sim_bandwidth_bytes_per_s``,
    ``sim_boot_s``) and ``sim_duration_s``."""
    from fastplace.sim.engine import Simulation

    timed = replay_workload(workload, store, compression=compression, span_s=span_s)
    bandwidth, boot_s = measured_start(real["starts"])
    assert timed.span_s is not None
    names = [m.name for m in timed.models]

    def run(duration_s: float) -> tuple[dict[str, Any], float]:
        config = sim_config_for_replay(
            nodes,
            cache_bytes=cache_bytes,
            block_bytes=store.manifest(names[0], 1).block_size,
            bandwidth_bytes_per_s=bandwidth,
            boot_s=boot_s,
            keep_alive_s=keep_alive_s / compression,
            duration_s=duration_s,
            max_gangs=max_gangs,
            concurrency_target=concurrency_target,
            seed=seed,
        )
        simulation = Simulation(
            config,
            timed,
            policy_factory(),
            blocks=lambda index: StoreBlocks(store, names, index),
            boot=TraceBoots(real["starts"], names, bandwidth) if trace_boots else None,
        )
        row = simulation.run()
        return row, simulation.last_answer_s

    # The real replay runs until its last request is answered (its wall time): so does
    # the simulation, whose time-averaged servers then cover the same kind of window.
    # A first run long enough for every request finds when that is (waiting requests
    # are bounded by the cold starts before them); the second stops there.
    longest = timed.span_s + 4 * (boot_s + 1.0) * max(1, len(timed.rollout_s) + 1)
    row, last = run(max(float(real["wall_s"]), longest))
    row, _ = run(max(timed.span_s, last))
    row["sim_duration_s"] = max(timed.span_s, last)
    return row | {
        "sim_bandwidth_bytes_per_s": bandwidth,
        "sim_boot_s": boot_s,
        "sim_boots": "real run's, per model version" if trace_boots else "median",
    }


def _relative(real: float, sim: float) -> float | None:
    if real == 0:
        return 0.0 if sim == 0 else None
    return (sim - real) / abs(real)


def compare(
    policies: Sequence[str],
    real_rows: Sequence[Mapping[str, Any]],
    sim_rows: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """Side by side per policy: real, simulated, relative error ((sim - real) / real,
    None when real is 0 and sim is not) and, for the targeted metrics, whether it is
    within the target; and whether the policies rank the same on bytes and servers
    (ties, equal values, must be ties on both sides)."""
    if not len(policies) == len(real_rows) == len(sim_rows):
        raise ValueError("policies, real_rows and sim_rows must have the same length")
    table: dict[str, list[dict[str, Any]]] = {}
    for policy, real, sim in zip(policies, real_rows, sim_rows, strict=True):
        rows = []
        for label, real_key, sim_key, target in COMPARED:
            r, s = float(real[real_key]), float(sim[sim_key])
            error = _relative(r, s)
            met = None if target is None else (error is not None and abs(error) <= target)
            rows.append(
                {"metric": label, "real": r, "sim": s, "error": error, "target": target, "met": met}
            )
        table[policy] = rows
    ranking = {}
    for label, key in RANKED:
        real_order = _order([float(r[key]) for r in real_rows])
        sim_order = _order([float(r[key]) for r in sim_rows])
        ranking[label] = {
            "real": [list(map(policies.__getitem__, tier)) for tier in real_order],
            "sim": [list(map(policies.__getitem__, tier)) for tier in sim_order],
            "met": real_order == sim_order,
        }
    return {"policies": table, "ranking": ranking}


def _order(values: list[float]) -> list[list[int]]:
    """Indices from smallest to largest value, equal values in one tier."""
    tiers: dict[float, list[int]] = {}
    for i, value in enumerate(values):
        tiers.setdefault(value, []).append(i)
    return [tiers[v] for v in sorted(tiers)]


def _cell(value: float) -> str:
    if value == int(value) and abs(value) >= 10:
        return f"{int(value):,}"
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def markdown(report: Mapping[str, Any], title: str) -> str:
    """The comparison as a markdown table per policy and the rankings."""
    lines = [f"# {title}", ""]
    for policy, rows in report["policies"].items():
        lines += [
            f"## {policy}",
            "",
            "| metric | Ray | simulator | error | target | met |",
            "|---|--:|--:|--:|--:|:-:|",
        ]
        for row in rows:
            error = "n/a" if row["error"] is None else f"{row['error']:+.1%}"
            target = "" if row["target"] is None else f"±{row['target']:.0%}"
            met = "" if row["met"] is None else ("yes" if row["met"] else "**no**")
            lines.append(
                f"| {row['metric']} | {_cell(row['real'])} | {_cell(row['sim'])} | "
                f"{error} | {target} | {met} |"
            )
        lines.append("")
    lines += ["## Ranking (smallest first)", ""]
    for label, rank in report["ranking"].items():

        def text(order: list[list[str]]) -> str:
            return " < ".join(" = ".join(tier) for tier in order)

        met = "same" if rank["met"] else "**different**"
        lines.append(f"- {label}: Ray {text(rank['real'])}; simulator {text(rank['sim'])} ({met})")
    return "\n".join(lines) + "\n"


def markdown_summary(report: Mapping[str, Any], title: str) -> str:
    """The targeted metrics' errors only, one row per policy, and the rankings."""
    targeted = [label for label, _, _, target in COMPARED if target is not None]
    lines = [
        f"## {title}",
        "",
        "| policy | " + " | ".join(targeted) + " |",
        "|---|" + "--:|" * len(targeted),
    ]
    for policy, rows in report["policies"].items():
        cells = []
        for row in rows:
            if row["metric"] in targeted:
                error = "n/a" if row["error"] is None else f"{row['error']:+.1%}"
                cells.append(error if row["met"] else f"**{error}**")
        lines.append(f"| {policy} | " + " | ".join(cells) + " |")
    lines.append("")
    for label, rank in report["ranking"].items():
        lines.append(f"- {label}: {'same' if rank['met'] else '**different**'} ranking")
    return "\n".join(lines) + "\n"
