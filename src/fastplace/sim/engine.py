"""The discrete-event simulation of a serverless cluster serving DI models.

A request for model m arrives; every partition of the version it is routed to needs a
container. Idle (warm) containers of that (model, version, partition) are reused;
the missing partitions cold-start, placed as a gang by the policy. A cold start takes
``missing bytes / bandwidth + boot`` seconds, where the missing bytes are the blocks of
the partition's file the chosen server does not cache yet. Partition 0 answers once
every partition is ready and has served (``service_s``); then the containers go idle,
and an idle container is reclaimed after ``keep_alive_s``, or earlier when a cold
start finds no room (oldest idle first, as serverless platforms do under pressure).

Rollouts: every ``rollout_interval_s`` a model gets a new version (or at the times
the workload names, ``Workload.rollout_s``: a request log's new versions). For
``switch_window_s`` both versions serve, requests moving linearly from old to new;
then the old version's idle containers are reclaimed and its busy ones are released
as they finish (a window of 0 switches at once, as the Ray front end does).

Two options make the simulation behave as the Ray serverless front end
(:mod:`fastplace.engines.ray.serverless`) where it differs: ``SimConfig.max_gangs``
caps the gangs (container sets, counted by partition 0) of a model's current version,
and a request that finds all of them busy waits for one; ``SimConfig.wait_for_room``
makes a request whose cold start fits nowhere wait for containers to be released
instead of being rejected. Waiting requests are served in arrival order as soon as
anything is released; their latency includes the wait.
"""

from __future__ import annotations

import heapq
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from fastplace.block_index import BlockIndex
from fastplace.cluster import Cluster
from fastplace.sim.config import SimConfig
from fastplace.sim.metrics import MetricsRecorder
from fastplace.sim.policies import PlacementContext, Policy
from fastplace.sim.versions import BlockSource, VersionBlocks
from fastplace.sim.workload import Workload
from fastplace.synthetic import synthetic_capacity

__all__ = ["Simulation"]

# Event kinds, in tie-break order at equal times: finishes free containers before
# expiries look at them, and both before a rollout changes versions.
_FINISH, _EXPIRE, _ROLLOUT, _RETIRE = 0, 1, 2, 3


@dataclass(slots=True)
class _Container:
    model: int
    version: int
    partition: int
    server: int
    request: list[int]
    idle: bool = False
    token: int = 0  # bumped whenever the container changes state; stale expiries no-op
    alive: bool = True


class Simulation:
    """One policy on one workload. ``run()`` returns the metrics row.

    ``blocks``: makes the source of the partition files' blocks from the simulation's
    BlockIndex (default: synthetic :class:`VersionBlocks`). ``boot``: the boot seconds
    of each gang started, ``boot(model, version)`` (default: ``config.boot_s``), for
    replaying boot times measured on a real cluster."""

    def __init__(
        self,
        config: SimConfig,
        workload: Workload,
        policy: Policy,
        *,
        blocks: Callable[[BlockIndex], BlockSource] | None = None,
        boot: Callable[[int, int], float] | None = None,
    ) -> None:
        self.config = config
        self.workload = workload
        self.policy = policy
        capacity = synthetic_capacity(
            config.servers,
            memory_mb=config.server_memory_mb,
            cpu_millis=config.server_cpu_millis,
            heterogeneous=config.heterogeneous,
            seed=config.seed,
        )
        self.cluster = Cluster(capacity)
        self.blocks = BlockIndex(config.servers, np.full(config.servers, config.cache_bytes))
        self.versions: BlockSource = (
            VersionBlocks(workload, self.blocks, block_bytes=config.block_bytes, seed=config.seed)
            if blocks is None
            else blocks(self.blocks)
        )
        self.context = PlacementContext(
            self.cluster, self.blocks, np.random.default_rng([config.seed, 1])
        )
        self.rng = np.random.default_rng([config.seed, 2])
        self.boot = boot
        self.metrics = MetricsRecorder(
            resources=tuple(self.cluster.resources),
            capacity_total=capacity.sum(axis=0),
            sla_s=config.sla_s,
        )
        n_models = len(workload.models)
        self.version = [0] * n_models
        self.previous = [0] * n_models
        self.switch_start = [-np.inf] * n_models
        self.retired: set[tuple[int, int]] = set()
        self.containers: dict[int, _Container] = {}
        self.idle: dict[tuple[int, int, int], list[int]] = {}
        self.idle_order: OrderedDict[int, None] = OrderedDict()  # oldest idle first
        # Plain ints, not numpy: updated on every placement and release, read on every event.
        self.used = [0] * self.cluster.n_dims
        self.events: list[tuple[float, int, int, Any]] = []
        self.sequence = 0
        # Gangs alive per (model, version), counted by their partition-0 containers.
        self.gangs: dict[tuple[int, int], int] = {}
        # Requests waiting (max_gangs / wait_for_room): (arrival, model, service).
        self.waiting: deque[tuple[float, int, float]] = deque()
        self.released = False  # containers freed or versions changed since the last retry
        self.last_answer_s = 0.0
        """When the last request served so far is answered (its finish event)."""

    # ---- event queue --------------------------------------------------------------

    def _push(self, t: float, kind: int, payload: Any) -> None:
        self.sequence += 1
        heapq.heappush(self.events, (t, kind, self.sequence, payload))

    def run(self, progress: Callable[[float], None] | None = None) -> dict[str, Any]:
        """Simulates ``config.duration_s`` seconds; ``progress(t)`` is called now and then."""
        start = time.perf_counter()
        for m, model in enumerate(self.workload.models):
            if model.rollout_interval_s > 0:
                self._push(model.rollout_offset_s or model.rollout_interval_s, _ROLLOUT, (m, True))
        duration = self.config.duration_s
        named = int(np.searchsorted(self.workload.rollout_s, duration, side="right"))
        for t, m in zip(
            self.workload.rollout_s[:named].tolist(),
            self.workload.rollout_model[:named].tolist(),
            strict=True,
        ):
            self._push(t, _ROLLOUT, (m, False))  # once: the workload names the next one
        # side="right": a request log's last request may arrive at exactly its span.
        n = int(np.searchsorted(self.workload.arrival_s, duration, side="right"))
        # Python floats and ints up front: the loop runs millions of times at 6,000
        # servers, and a numpy scalar per access cost more than the event it led to.
        arrivals = self.workload.arrival_s[:n].tolist()
        models = self.workload.arrival_model[:n].tolist()
        services = self.workload.service_s[:n].tolist()
        events = self.events
        step = self._step
        advance = self._advance
        request = self._request
        for i in range(n):
            t = arrivals[i]
            while events and events[0][0] <= t:
                step()
            advance(t)
            request(t, models[i], services[i])
            if progress is not None and i % 2048 == 0:
                progress(t)
        while self.events and self.events[0][0] <= duration:
            self._step()
        self._advance(duration)
        if self.waiting:  # never served within the simulated time
            self.metrics.rejected["still_waiting"] += len(self.waiting)
        if progress is not None:
            progress(duration)
        return self.metrics.summary(duration, time.perf_counter() - start)

    def _step(self) -> None:
        """The next event, then the waiting requests it may let in."""
        event = heapq.heappop(self.events)
        self._dispatch(*event)
        self._serve_waiting(event[0])

    def _dispatch(self, t: float, kind: int, _sequence: int, payload: Any) -> None:
        self._advance(t)
        if kind == _FINISH:
            self._finish(t, payload)
        elif kind == _EXPIRE:
            self._expire(*payload)
        elif kind == _ROLLOUT:
            self._rollout(t, *payload)
        else:
            self._retire(*payload)

    def _advance(self, t: float) -> None:
        self.metrics.advance(t, self.cluster.n_active_servers, self.used)

    # ---- requests -----------------------------------------------------------------

    def _route(self, t: float, model: int) -> int:
        """The version serving a request at t (old and new side by side during a switch)."""
        since = t - self.switch_start[model]
        window = self.workload.switch_window_s
        if since < window and self.rng.random() > since / window:
            return self.previous[model]
        return self.version[model]

    def _request(self, t: float, model: int, service_s: float) -> None:
        self.metrics.requests += 1
        outcome = self._serve(t, t, model, service_s)
        if outcome == "cap" or (outcome == "room" and self.config.wait_for_room):
            self.waiting.append((t, model, service_s))
        elif outcome == "room":
            self.metrics.rejected["no_capacity"] += 1

    def _serve_waiting(self, t: float) -> None:
        """Retries the waiting requests, oldest first, once something was released."""
        if not (self.waiting and self.released):
            return
        self.released = False
        still: deque[tuple[float, int, float]] = deque()
        for arrival, model, service_s in self.waiting:
            if self._serve(t, arrival, model, service_s) != "ok":
                still.append((arrival, model, service_s))
        self.waiting = still

    def _serve(self, t: float, arrival: float, model: int, service_s: float) -> str:
        """Serves a request at t that arrived at ``arrival``: "ok", or why it cannot be
        now ("cap": every gang of its version is busy at the cap; "room": its cold
        start fits nowhere). A request that cannot be served takes no container (idle
        ones it reclaimed looking for room stay reclaimed, as before these options)."""
        version = self._route(t, model)
        spec = self.workload.models[model]
        warm: list[int] = []
        cold: list[int] = []  # partitions that need a new container
        idle, states, idle_order = self.idle, self.containers, self.idle_order
        for p in range(len(spec.partitions)):
            # self._take_idle, inlined: it runs for every partition of every request.
            pool = idle.get((model, version, p))
            while pool:
                container = pool.pop()
                state = states.get(container)
                if state is not None and state.alive and state.idle:
                    state.idle = False
                    del idle_order[container]
                    warm.append(container)
                    break
            else:
                cold.append(p)
        cap = self.config.max_gangs
        if cold and cold[0] == 0 and cap and self.gangs.get((model, version), 0) >= cap:
            for container in warm:  # they stay idle, as if never touched
                self._make_idle_again(container)
            return "cap"
        ready_s = 0.0
        started: list[int] = []
        if cold:
            requests = [spec.partitions[p].request for p in cold]
            blocks = [self.versions.ids(model, p, version) for p in cold]
            self.context.model = spec.name
            self.context.partitions = tuple(cold)
            began = time.perf_counter_ns()
            placed = self.policy.place_gang(self.context, requests, blocks)
            elapsed = time.perf_counter_ns() - began
            while placed is None and self.idle_order:
                # Make room: reclaim the longest-idle containers, then try again.
                for _ in range(min(len(cold), len(self.idle_order))):
                    self._reclaim(next(iter(self.idle_order)))
                began = time.perf_counter_ns()
                placed = self.policy.place_gang(self.context, requests, blocks)
                elapsed += time.perf_counter_ns() - began
            if placed is None:
                for container in warm:  # they stay idle, as if never touched
                    self._make_idle_again(container)
                return "room"
            per_container = elapsed // len(cold)
            boot_s = self.config.boot_s if self.boot is None else self.boot(model, version)
            for (container, server), p, request, ids in zip(
                placed, cold, requests, blocks, strict=True
            ):
                self.metrics.decision_ns.append(per_container)
                downloaded = int(self.blocks.fetch(server, ids))
                cold_s = downloaded / self.config.bandwidth_bytes_per_s + boot_s
                self.metrics.cold_start_s.append(cold_s)
                self.metrics.bytes_downloaded += downloaded
                self.metrics.placements += 1
                ready_s = max(ready_s, cold_s)
                self.containers[container] = _Container(model, version, p, server, request)
                if p == 0:
                    self.gangs[(model, version)] = self.gangs.get((model, version), 0) + 1
                used = self.used
                for d, amount in enumerate(request):
                    used[d] += amount
                started.append(container)
            self.metrics.gang_cold_start_s.append(ready_s)
        else:
            self.metrics.warm_requests += 1
        waited = t - arrival
        if waited > 0:
            self.metrics.wait_s.append(waited)
        latency = waited + ready_s + service_s
        self.metrics.request_s.append(latency)
        busy = warm + started
        for container in busy:
            state = self.containers[container]
            state.idle = False
            state.token += 1
        self._push(t + ready_s + service_s, _FINISH, busy)
        self.last_answer_s = max(self.last_answer_s, t + ready_s + service_s)
        return "ok"

    def _take_idle(self, key: tuple[int, int, int]) -> int | None:
        pool = self.idle.get(key)
        while pool:
            container = pool.pop()
            state = self.containers.get(container)
            if state is not None and state.alive and state.idle:
                state.idle = False
                del self.idle_order[container]
                return container
        return None

    def _make_idle_again(self, container: int) -> None:
        state = self.containers[container]
        state.idle = True
        self.idle_order[container] = None
        self.idle.setdefault((state.model, state.version, state.partition), []).append(container)

    # ---- container lifecycle ------------------------------------------------------

    def _finish(self, t: float, containers: list[int]) -> None:
        self.released = True
        expires = t + self.config.keep_alive_s
        states, retired, idle, idle_order = (
            self.containers,
            self.retired,
            self.idle,
            self.idle_order,
        )
        events = self.events
        for container in containers:
            state = states[container]
            if retired and (state.model, state.version) in retired:
                self._reclaim(container)
                continue
            state.idle = True
            state.token += 1
            idle_order[container] = None
            key = (state.model, state.version, state.partition)
            pool = idle.get(key)
            if pool is None:
                idle[key] = [container]
            else:
                pool.append(container)
            # self._push, inlined: one per container finished.
            self.sequence += 1
            heapq.heappush(events, (expires, _EXPIRE, self.sequence, (container, state.token)))

    def _expire(self, container: int, token: int) -> None:
        state = self.containers.get(container)
        if state is not None and state.alive and state.idle and state.token == token:
            self._reclaim(container)

    def _reclaim(self, container: int) -> None:
        state = self.containers.pop(container)
        state.alive = False
        self.released = True
        if state.partition == 0:
            self.gangs[(state.model, state.version)] -= 1
        self.idle_order.pop(container, None)
        self.cluster.release(container)
        used = self.used
        for d, amount in enumerate(state.request):
            used[d] -= amount

    def _rollout(self, t: float, model: int, scheduled: bool) -> None:
        self.previous[model] = self.version[model]
        self.version[model] += 1
        self.released = True  # requests waiting at the old version's cap route anew
        self.switch_start[model] = t
        self._push(t + self.workload.switch_window_s, _RETIRE, (model, self.previous[model]))
        if scheduled:
            self._push(t + self.workload.models[model].rollout_interval_s, _ROLLOUT, (model, True))

    def _retire(self, model: int, version: int) -> None:
        if version == self.version[model]:
            return
        self.retired.add((model, version))
        for p in range(len(self.workload.models[model].partitions)):
            for container in self.idle.pop((model, version, p), []):
                state = self.containers.get(container)
                if state is not None and state.alive and state.idle:
                    self._reclaim(container)
