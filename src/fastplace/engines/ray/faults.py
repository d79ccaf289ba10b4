"""Faults injected into a replay: a partition actor killed, or a whole node removed.

:class:`FaultPlan` says when (log seconds); :class:`FaultInjector` runs beside a
replay (:func:`fastplace.engines.ray.replay.replay`) and, at those instants, kills one
partition actor of the busiest gang, or removes the non-head node of the local cluster
with the most containers booked (as if its machine went away). The serverless front end
must then heal the gangs (fastplace re-places their dead partitions) and retry the
requests that met the fault; :meth:`FaultInjector.report` says what was done and
whether fastplace placed anything on a removed node afterwards. A removed node is
replaced by a fresh one of the same capacity once the replay is over
(:meth:`FaultInjector.restore`), so the next policy gets the same cluster.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FaultInjector", "FaultPlan"]

logger = logging.getLogger("fastplace.engines.ray")

#: How long (real seconds) a fault waits for a target (a ready gang) before it is skipped
#: (cold starts take tens of seconds on a loaded 2-core machine).
TARGET_WAIT_S = 120.0


@dataclass(frozen=True)
class FaultPlan:
    """When to inject faults, in log seconds (None: not at all)."""

    kill_actor_at_s: float | None = None
    """Kill partition 0's actor of the ready gang with the most requests in flight
    (a gang of the active version first)."""
    kill_node_at_s: float | None = None
    """Remove the non-head node with the most containers booked (needs a LocalCluster)."""

    def __post_init__(self) -> None:
        for name in ("kill_actor_at_s", "kill_node_at_s"):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"FaultPlan.{name} = {value!r} must be a number of seconds")
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"FaultPlan.{name} = {value!r} must be finite and >= 0")

    @property
    def empty(self) -> bool:
        return self.kill_actor_at_s is None and self.kill_node_at_s is None


@dataclass
class _Removed:
    record: dict[str, Any]
    server: int
    resources: dict[str, float]
    before: set[int] = field(default_factory=set)
    """ids of the PartitionStates on the node when it was removed."""


class FaultInjector:
    """Runs a :class:`FaultPlan` against a replay's front end (a thread of its own).

    ``front``: the :class:`~fastplace.engines.ray.serverless.Serverless`;
    ``cluster``: the :class:`~fastplace.engines.ray.local_cluster.LocalCluster` (only
    for node faults); ``compression``: log seconds per real second.
    """

    def __init__(self, plan: FaultPlan, front: Any, cluster: Any, compression: float) -> None:
        if plan.kill_node_at_s is not None and cluster is None:
            raise ValueError("FaultPlan.kill_node_at_s needs the local cluster (cluster=None)")
        self.plan = plan
        self.front = front
        self.deployer = front.deployer
        self.cluster = cluster
        self.compression = compression
        self.records: list[dict[str, Any]] = []
        self._removed: list[_Removed] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, began: float) -> None:
        """Starts the thread; ``began`` is the replay's ``time.perf_counter()`` at log 0."""
        faults = []
        if self.plan.kill_actor_at_s is not None:
            faults.append((self.plan.kill_actor_at_s, self._kill_actor))
        if self.plan.kill_node_at_s is not None:
            faults.append((self.plan.kill_node_at_s, self._kill_node))
        faults.sort(key=lambda f: f[0])

        def run() -> None:
            for at_s, action in faults:
                delay = began + at_s / self.compression - time.perf_counter()
                if delay > 0 and self._stop.wait(delay):
                    return
                try:
                    action(at_s)
                except Exception as error:  # the report says so; the replay goes on
                    logger.exception("fault at %s s", at_s)
                    self.records.append({"kind": "failed", "at_s": at_s, "error": repr(error)})

        self._thread = threading.Thread(target=run, name="fastplace-fault-injector", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stops the thread (faults not yet due are not injected) and checks the
        removed nodes: still cordoned, nothing placed there since. Call before the
        front end closes."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        for removed in self._removed:
            on_node = [
                p
                for d in self.deployer.deployments()
                for p in d.partitions
                if p.server == removed.server and p.container >= 0
            ]
            removed.record["cordoned"] = bool(self.deployer.cluster.is_cordoned(removed.server))
            removed.record["placed_there_after"] = sum(id(p) not in removed.before for p in on_node)

    def restore(self) -> None:
        """Adds a fresh node in place of each removed one (same declared capacity)."""
        for removed in self._removed:
            resources = removed.resources
            cache = resources.get("fastplace_cache_mb")
            self.cluster.add_node(
                memory_mb=int(resources["fastplace_memory_mb"]),
                cpu_millis=int(resources["fastplace_cpu_millis"]),
                cache_mb=None if cache is None else int(cache),
            )
        self._removed.clear()

    def report(self) -> list[dict[str, Any]]:
        """One dict per fault: kind, log second, target."""
        return [dict(r) for r in self.records]

    # ---- faults ---------------------------------------------------------------------

    def _busiest_gang(self) -> Any:
        deadline = time.monotonic() + TARGET_WAIT_S
        while not self._stop.is_set():
            gangs = [
                g
                for name in self.front.models()
                for g in self.front.gangs(name)
                if g.ready and g.deployment is not None
            ]
            if gangs:
                # A serving gang before a draining one (which would retire, not heal).
                return max(gangs, key=lambda g: (not g.draining, g.in_flight))
            if time.monotonic() > deadline:
                return None
            self._stop.wait(0.05)
        return None

    def _kill_actor(self, at_s: float) -> None:
        gang = self._busiest_gang()
        if gang is None:
            self.records.append({"kind": "kill_actor", "at_s": at_s, "skipped": "no ready gang"})
            return
        deployment = gang.deployment
        # Partition 0 serves every request of the gang to its end (a peer's part is
        # over once its rows are gathered): its requests in flight meet the fault.
        part = deployment.partitions[0]
        self.deployer._ray.kill(part.actor, no_restart=True)
        self.records.append(
            {
                "kind": "kill_actor",
                "at_s": at_s,
                "model": gang.model,
                "version": gang.version,
                "partition": part.index,
                "server": part.server,
                "in_flight": gang.in_flight,
            }
        )
        logger.info("fault: killed %s v%s partition %s", gang.model, gang.version, part.index)

    def _kill_node(self, at_s: float) -> None:
        ray = self.deployer._ray
        view = self.deployer.view
        head = self.cluster.nodes[0]
        candidates = [n for n in self.cluster.nodes if n is not head]
        if not candidates:
            self.records.append({"kind": "kill_node", "at_s": at_s, "skipped": "no worker node"})
            return
        partitions = [p for d in self.deployer.deployments() for p in d.partitions]
        # Containers booked, not only running partitions: gangs still starting count.
        booked = self.deployer.cluster.container_counts()

        def hosted(node: Any) -> int:
            return int(booked[view.server_of(self.cluster.node_id(node))])

        node = max(candidates, key=hosted)
        node_id = self.cluster.node_id(node)
        server = view.server_of(node_id)
        containers = hosted(node)
        resources = next(
            dict(n.get("Resources") or {}) for n in ray.nodes() if n["NodeID"] == node_id
        )
        before = {id(p) for p in partitions if p.server == server}
        self.cluster.remove_node(node)
        record = {
            "kind": "kill_node",
            "at_s": at_s,
            "node_id": node_id,
            "server": server,
            "containers_there": containers,
            "running_partitions_there": len(before),
        }
        self.records.append(record)
        self._removed.append(_Removed(record, server, resources, before))
        logger.info(
            "fault: removed node %s (server %s, %s containers)", node_id, server, containers
        )
