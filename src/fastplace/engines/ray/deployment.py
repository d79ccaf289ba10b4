"""The deployer: fastplace plans, Ray runs, and the two are kept in agreement.

Planning: a version's partitions are placed as a gang with a fastplace placement
policy (:func:`fastplace.sim.policies.make_policy`: ``first_fit``, ``similarity``,
``hybrid`` ...; ``hybrid`` decides through a :class:`fastplace.ServerAllocator`).
We use the policies rather than a ServerAllocator per partition with hand-written
rollback because ``Policy.place_gang`` already books all partitions or none, and
every policy (block-aware ones included) plugs in the same way.

Running: one :class:`~fastplace.engines.ray.actors.PartitionActor` per partition,
pinned with ``NodeAffinitySchedulingStrategy(node_id, soft=False)`` and asking Ray for
no CPU: fastplace books the capacity, Ray only executes. Each actor's real node is
checked against the plan, then it cold-starts (fetches the blocks its node lacks) and
the measured fetch is applied to fastplace's block index, so the next plan sees what
each node really caches.

Serving: :meth:`Deployer.infer` sends the batch to partition 0 of the model's active
version. A rollout starts the new version while the old one serves, switches the
active version (one reference store), drains the old version's requests in flight and
retires it. A request that still meets a dead actor (retired, killed, or on a node
that left) is sent again to the version then active, after healing, so none is lost.

Faults: :meth:`Deployer.heal` (every deployment) and :meth:`Deployer.heal_deployment`
(one gang) ping the actors, re-read ``ray.nodes()`` (nodes that left are cordoned),
release a dead partition's container in fastplace and place and start that partition
again with the same policy. :func:`is_fault` tells such faults from other errors.

Locks: ``_plan_lock`` serialises deployments and retirements (each is a few
placements plus Ray round trips, so a single lane keeps the bookkeeping obvious);
requests never take it. :meth:`Deployer.launch` and healing are the exceptions, for
callers that start many gangs at once (the serverless front end): they hold the lock
only while fastplace places and books, never while actors start, so one model's cold
start or heal does not hold up another's placement (one heal per deployment at a time,
under its ``heal_lock``).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from fastplace._checks import integer
from fastplace.block_index import BlockIndex
from fastplace.cluster import Cluster
from fastplace.engines.ray import require_ray
from fastplace.engines.ray.actors import PartitionActor
from fastplace.engines.ray.cluster_view import ClusterView
from fastplace.engines.ray.model_store import ColdStart, ModelStore, VersionManifest
from fastplace.engines.ray.ray_placement import (
    RAY_DEFAULT,
    RayPlacement,
    ray_resources,
    wait_for_leases,
)
from fastplace.resources import DEFAULT_RESOURCES, request_for_memory
from fastplace.sim.policies import FirstFit, PlacementContext, Policy, make_policy

__all__ = [
    "Deployer",
    "Deployment",
    "DeploymentError",
    "Event",
    "NoCapacity",
    "PartitionState",
    "is_fault",
]

logger = logging.getLogger("fastplace.engines.ray")


class DeploymentError(RuntimeError):
    """A version could not be placed, started or served; fastplace's books are unchanged."""


class NoCapacity(DeploymentError):
    """A version's gang fits nowhere on the cluster as it is booked now."""


@dataclass
class PartitionState:
    """One running partition: where fastplace put it and what its start cost."""

    index: int
    server: int
    node_id: str
    container: int
    actor: Any = field(repr=False)
    cold_start: ColdStart | None = None
    index_missing_bytes: int = 0
    """Bytes fastplace's block index expected this start to fetch."""
    restarts: int = 0


@dataclass
class Deployment:
    """A model version running on the cluster."""

    model: str
    version: int
    manifest: VersionManifest = field(repr=False)
    partitions: list[PartitionState]
    policy: str
    plan_s: float
    """fastplace's gang placement (policy decisions and bookings); under ``ray_default``
    only the check that the gang fits somewhere (Ray places when the actors start)."""
    actor_start_s: float
    """Ray: from creating the pinned actors until every one answers (process start)."""
    cold_start_s: float
    """Slowest partition's fetch + load."""
    retired: bool = False
    in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    heal_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    """Held by :meth:`Deployer.heal_deployment`: one heal of a deployment at a time."""

    @property
    def fetched_bytes(self) -> int:
        """Bytes all partitions fetched from the store at their cold starts."""
        return sum(p.cold_start.fetched_bytes for p in self.partitions if p.cold_start)

    @property
    def servers(self) -> list[int]:
        """fastplace server id of each partition, in partition order."""
        return [p.server for p in self.partitions]

    @property
    def node_ids(self) -> list[str]:
        """Ray node id of each partition, in partition order."""
        return [p.node_id for p in self.partitions]


@dataclass(frozen=True)
class Event:
    """Something :meth:`Deployer.heal` found and did."""

    kind: str  # "node_left", "node_joined", "actor_died", "replaced"
    server: int
    model: str = ""
    version: int = -1
    partition: int = -1
    detail: str = ""


class Deployer:
    """Places DI model versions with a fastplace policy and runs them as Ray actors.

    Call after ``ray.init``. ``store`` holds the versions; ``cache_root`` is where each
    node keeps its block cache (``<cache_root>/<node id>``, which must be local to that
    node or, on one machine, simply distinct). ``policy`` is a name from
    ``fastplace.sim.policies.POLICIES`` or a Policy, or ``"ray_default"``: Ray's own
    scheduler places the actors and fastplace only mirrors its choices (the baseline of
    :mod:`fastplace.engines.ray.ray_placement`). ``cache_bytes``: each node's block
    cache size unless the node declares ``fastplace_cache_mb``. ``seed`` seeds the
    policies' randomness.
    """

    def __init__(
        self,
        store: ModelStore,
        cache_root: str | os.PathLike[str],
        *,
        policy: str | Policy = "first_fit",
        cache_bytes: int = 1 << 30,
        seed: int = 0,
        start_timeout_s: float = 120.0,
        request_timeout_s: float = 60.0,
        max_concurrency: int = 8,
    ) -> None:
        """A deployer over the nodes of the running Ray cluster (see the class docstring).

        ``start_timeout_s`` bounds a partition's cold start, ``request_timeout_s`` one
        inference; ``max_concurrency`` is the calls each partition actor serves at once.
        Raises DeploymentError when Ray is not initialised.
        """
        cache_bytes = integer(cache_bytes, "cache_bytes", minimum=0)
        seed = integer(seed, "seed", minimum=0)
        max_concurrency = integer(max_concurrency, "max_concurrency", minimum=1)
        self._ray = require_ray()
        if not self._ray.is_initialized():
            raise DeploymentError("Ray is not initialised: call ray.init(...) first")
        self.store = store
        self.cache_root = Path(cache_root)
        if policy == RAY_DEFAULT:
            policy = RayPlacement()
        self.policy = make_policy(policy) if isinstance(policy, str) else policy
        self.view = ClusterView.read(resources=DEFAULT_RESOURCES, cache_bytes=cache_bytes)
        self.seed = seed
        self.context = PlacementContext(
            self.view.cluster, self.view.blocks, np.random.default_rng(seed)
        )
        self.start_timeout_s = start_timeout_s
        self.request_timeout_s = request_timeout_s
        self.max_concurrency = max_concurrency
        self._plan_lock = threading.RLock()
        self._active: dict[str, Deployment] = {}
        self._live: list[Deployment] = []
        self._block_ids: dict[tuple[str, int], list[npt.NDArray[np.int64]]] = {}
        self._pending_evictions: dict[int, set[int]] = {}
        """Per server: index keys of blocks the index evicted that its cache still holds."""
        self._addresses: dict[int, str] = {}
        """Index key -> block address, for every block interned."""
        self._remote: Any = None
        self.events: list[Event] = []

    # ---- what the deployer knows ----------------------------------------------------

    @property
    def ray_places(self) -> bool:
        """Whether Ray's scheduler places the actors (``policy="ray_default"``)."""
        return isinstance(self.policy, RayPlacement)

    @property
    def cluster(self) -> Cluster:
        """fastplace's :class:`~fastplace.Cluster` of the Ray nodes."""
        return self.view.cluster

    @property
    def blocks(self) -> BlockIndex:
        """fastplace's :class:`~fastplace.BlockIndex` of the nodes' block caches."""
        return self.view.blocks

    def active(self, model: str) -> Deployment:
        """The version of ``model`` that requests go to (KeyError if none)."""
        try:
            return self._active[model]
        except KeyError:
            raise KeyError(f"model {model!r} has no active version") from None

    def deployments(self) -> list[Deployment]:
        """Every live (not retired) deployment, oldest first."""
        return list(self._live)

    # ---- deploying ------------------------------------------------------------------

    def deploy(self, model: str, version: int, *, activate: bool = True) -> Deployment:
        """Places and starts every partition of a stored version (all or none).

        Raises DeploymentError when the gang does not fit or an actor does not start
        where planned; then nothing stays booked or running.
        """
        with self._plan_lock:
            deployment = self._launch(model, version)
            if activate:
                self._active[model] = deployment  # one store: requests see old or new
        return deployment

    def launch(self, model: str, version: int) -> Deployment:
        """Places and starts a gang of a stored version without making it active (the
        caller routes to it), holding the plan lock only while placing and booking:
        several gangs may cold-start at once. Raises NoCapacity when the gang does not
        fit, DeploymentError when an actor does not start; then nothing stays booked."""
        return self._launch(model, version)

    def _launch(self, model: str, version: int) -> Deployment:
        manifest = self.store.manifest(model, version)
        requests = [self._request(part.memory_mb) for part in manifest.partitions]
        with self._plan_lock:
            self.events += self._refresh_nodes()  # partitions there move at the next heal()
            ids = self._ids(manifest)
            began = time.perf_counter()
            if self.ray_places:
                # Ray places at start time; its mirror here only says whether the gang
                # fits anywhere (ray_placement.py), so nothing stays booked yet.
                placed = FirstFit().place_gang(self.context, requests, list(ids))
                for container, _ in placed or ():
                    self.cluster.release(container)
            else:
                placed = self.policy.place_gang(self.context, requests, list(ids))
            plan_s = time.perf_counter() - began
            if placed is None:
                raise NoCapacity(
                    f"{model} v{version}: the {len(requests)} partitions "
                    f"({', '.join(str(r[0]) for r in requests)} MB) do not fit together"
                )
        # Ray placing: the trial is released; _start books where Ray puts the actors.
        plan = None if self.ray_places else placed
        placed = [] if self.ray_places else placed
        try:
            partitions, actor_s = self._start(manifest, list(range(len(requests))), plan, requests)
            placed = [(part.container, part.server) for part in partitions]
            deployment = Deployment(
                model=model,
                version=int(version),
                manifest=manifest,
                partitions=partitions,
                policy=self.policy.name,
                plan_s=plan_s,
                actor_start_s=actor_s,
                cold_start_s=max(p.cold_start.seconds for p in partitions if p.cold_start),
            )
            self._connect(deployment)
        except BaseException:
            with self._plan_lock:
                for container, _ in placed:
                    self.cluster.release(container)
            raise
        with self._plan_lock:
            self._live.append(deployment)
        return deployment

    def rollout(self, model: str, version: int) -> Deployment:
        """Deploys ``version`` while the active version serves, switches requests to
        it, then retires the old one. Returns the new deployment."""
        with self._plan_lock:
            old = self._active.get(model)
            new = self.deploy(model, version, activate=True)
            if old is not None:
                self.retire(old)
        return new

    def retire(self, deployment: Deployment, *, drain_timeout_s: float = 30.0) -> None:
        """Stops a version: no new requests, waits for those in flight (up to the
        timeout), kills its actors and releases its capacity in fastplace."""
        with self._plan_lock:
            if deployment.retired:
                return
            deployment.retired = True
            if self._active.get(deployment.model) is deployment:
                del self._active[deployment.model]
            deadline = time.monotonic() + drain_timeout_s
            while deployment.in_flight and time.monotonic() < deadline:
                time.sleep(0.005)
            for part in deployment.partitions:
                self._kill(part.actor)
                self._release(part)
            self._live.remove(deployment)

    def shutdown(self) -> None:
        """Retires every live deployment."""
        with self._plan_lock:
            for deployment in list(self._live):
                self.retire(deployment, drain_timeout_s=5.0)

    # ---- serving --------------------------------------------------------------------

    def infer(
        self,
        model: str,
        ids: Mapping[str, npt.NDArray[np.int64]],
        dense: npt.NDArray[np.float32],
        *,
        attempts: int = 3,
    ) -> dict[str, npt.NDArray[np.float32]]:
        """The active version's answer for a batch (``{task: logits}``)."""
        return self.infer_timed(model, ids, dense, attempts=attempts)[0]

    def infer_timed(
        self,
        model: str,
        ids: Mapping[str, npt.NDArray[np.int64]],
        dense: npt.NDArray[np.float32],
        *,
        attempts: int = 3,
    ) -> tuple[dict[str, npt.NDArray[np.float32]], float, int]:
        """(answer, fan-out seconds inside partition 0, version that answered).

        A request that meets a dead actor is retried on the then active version (after
        :meth:`heal` if its own version is not retired); DeploymentError after
        ``attempts`` failures.
        """
        ray = self._ray
        failure: BaseException | None = None
        for _ in range(attempts):
            deployment = self.active(model)
            with deployment.lock:
                deployment.in_flight += 1
            try:
                head = deployment.partitions[0].actor
                outputs, fanout_s = ray.get(
                    head.infer.remote(ids, dense), timeout=self.request_timeout_s
                )
                return outputs, fanout_s, deployment.version
            except ray.exceptions.RayError as error:
                if not _actor_gone(ray, error):
                    raise
                failure = error
            finally:
                with deployment.lock:
                    deployment.in_flight -= 1
            if not deployment.retired:
                self.heal()
        raise DeploymentError(f"{model}: no answer after {attempts} attempts ({failure})")

    # ---- faults ---------------------------------------------------------------------

    def heal(self, *, rounds: int = 5) -> list[Event]:
        """Finds nodes that left and actors that died; re-places and restarts those
        partitions. Returns what it found and did (also appended to ``events``).

        A node may die while its partitions are being moved (Ray notices a dead node
        seconds after its actors stop answering), so healing repeats, up to ``rounds``
        times, until a round finds nothing dead; DeploymentError if it never settles or
        a partition fits nowhere. Each deployment heals as :meth:`heal_deployment`
        does: the plan lock is held while placing and booking, not while actors start.
        """
        events: list[Event] = []
        try:
            for _ in range(rounds):
                with self._plan_lock:
                    found = self._refresh_nodes()
                    live = list(self._live)
                for deployment in live:
                    with deployment.heal_lock:
                        found += self._heal_round(deployment)
                events += found
                if not any(e.kind == "actor_died" for e in found):
                    break
            else:
                raise DeploymentError(f"partitions still dying after {rounds} rounds")
        finally:
            self._log_events(events)
        return events

    def heal_deployment(self, deployment: Deployment, *, rounds: int = 5) -> list[Event]:
        """Heals one deployment (a gang): its dead partitions (actor gone, or on a node
        that left) are released in fastplace, placed again by the deployer's policy on
        the nodes alive now and started; the others keep running. The plan lock is
        held only while the nodes are re-read and the partitions placed and booked, so
        other gangs start and heal meanwhile; concurrent heals of one deployment run
        one after the other (the second finds nothing dead). Returns the events (also
        appended to ``events``); DeploymentError when a partition fits nowhere or
        partitions still die after ``rounds`` rounds, then the deployment holds dead
        partitions (whose containers are released) and should be retired."""
        rounds = integer(rounds, "rounds", minimum=1)
        events: list[Event] = []
        try:
            with deployment.heal_lock:
                for _ in range(rounds):
                    found = self._heal_round(deployment)
                    events += found
                    if not any(e.kind == "actor_died" for e in found):
                        break
                else:
                    raise DeploymentError(
                        f"{deployment.model} v{deployment.version}: partitions still dying "
                        f"after {rounds} rounds"
                    )
        finally:
            self._log_events(events)
        return events

    def _log_events(self, events: list[Event]) -> None:
        with self._plan_lock:
            self.events += events
        for event in events:
            logger.info("%s", event)

    def _heal_round(self, deployment: Deployment) -> list[Event]:
        """One round for one deployment (its heal lock held): ping, release the dead,
        place and start them again. A partition that dies meanwhile is the next
        round's (its handle stays in the deployment until then)."""
        ray = self._ray
        dead = self._dead_partitions(deployment)  # Ray round trips: no plan lock
        with self._plan_lock:
            # After the pings: a node whose actors stopped answering has had time to
            # be declared dead, and is then cordoned before anything is placed again.
            events = self._refresh_nodes()
            if deployment.retired:
                return events
            found = {p.index for p in dead}
            dead += [
                p
                for p in deployment.partitions
                if p.index not in found and not self.view.alive[p.server]
            ]
            dead.sort(key=lambda p: p.index)
            for part in dead:
                self._kill(part.actor)
                self._release(part)
                events.append(
                    Event(
                        "actor_died",
                        part.server,
                        deployment.model,
                        deployment.version,
                        part.index,
                        "its container is released in fastplace",
                    )
                )
            placed = self._place_again(deployment, dead) if dead else []
        try:
            if dead:
                events += self._replace(deployment, dead, placed)
            self._connect(deployment)
        except ray.exceptions.RayError as error:
            if not is_fault(error):
                raise
            # Another actor (or a target node) died meanwhile: the next round sees it.
            # Until then the deployment holds dead handles, which the next ping finds.
        return events

    def _place_again(
        self, deployment: Deployment, dead: list[PartitionState]
    ) -> list[tuple[int, int]] | None:
        """Places the dead partitions with the deployer's policy (plan lock held):
        (container, server) each, all or none. None under ``ray_default``: Ray places
        them when they start, and :meth:`_start` books where it put them."""
        if self.ray_places:
            return None
        ids = self._ids(deployment.manifest)
        placed: list[tuple[int, int]] = []
        for part in dead:
            request = self._request(deployment.manifest.partitions[part.index].memory_mb)
            server = self.policy.choose(self.context, request, ids[part.index])
            if server < 0:
                for container, _ in placed:
                    self.cluster.release(container)
                raise DeploymentError(
                    f"{deployment.model} v{deployment.version}: partition "
                    f"{part.index} fits on no server"
                )
            placed.append((self.cluster.place(server, request), server))
        return placed

    def _replace(
        self,
        deployment: Deployment,
        dead: list[PartitionState],
        placed: list[tuple[int, int]] | None,
    ) -> list[Event]:
        """Starts the dead partitions where :meth:`_place_again` put them (no plan
        lock while actors start) and swaps them into the deployment."""
        requests = [
            self._request(deployment.manifest.partitions[part.index].memory_mb) for part in dead
        ]
        try:
            fresh, _ = self._start(deployment.manifest, [p.index for p in dead], placed, requests)
        except BaseException:
            with self._plan_lock:
                for container, _ in placed or []:
                    self.cluster.release(container)
            raise
        with self._plan_lock:
            if deployment.retired:  # retired while they started: nothing to swap into
                for part in fresh:
                    self._kill(part.actor)
                    self._release(part)
                return []
            return self._swap_in(deployment, dead, fresh)

    def _swap_in(
        self, deployment: Deployment, dead: list[PartitionState], fresh: list[PartitionState]
    ) -> list[Event]:
        """Puts restarted partitions in place of the dead ones; the events saying so."""
        events = []
        for old, new in zip(dead, fresh, strict=True):
            new.restarts = old.restarts + 1
            deployment.partitions[old.index] = new
            events.append(
                Event(
                    "replaced",
                    new.server,
                    deployment.model,
                    deployment.version,
                    new.index,
                    f"was on server {old.server}",
                )
            )
        return events

    def _dead_partitions(self, deployment: Deployment) -> list[PartitionState]:
        ray = self._ray
        pings = [p.actor.ping.remote() for p in deployment.partitions]
        dead = []
        for part, ping in zip(deployment.partitions, pings, strict=True):
            if not self.view.alive[part.server]:
                dead.append(part)
                continue
            try:
                ray.get(ping, timeout=self.start_timeout_s)
            except ray.exceptions.RayError as error:
                if not is_fault(error):
                    raise
                dead.append(part)
        return dead

    # ---- internals ------------------------------------------------------------------

    def _request(self, memory_mb: int) -> list[int]:
        # A manifest may come from anyone's store: its memory is checked as a request.
        return request_for_memory(memory_mb, name="partition memory_mb")

    def _ids(self, manifest: VersionManifest) -> list[npt.NDArray[np.int64]]:
        key = (manifest.model, manifest.version)
        if key not in self._block_ids:
            self._block_ids[key] = [
                self.blocks.intern(
                    part.index_keys(), np.asarray(part.sizes, dtype=np.int64)
                ).astype(np.int64)
                for part in manifest.partitions
            ]
            for part in manifest.partitions:
                self._addresses.update(zip(part.index_keys().tolist(), part.hashes, strict=True))
        return self._block_ids[key]

    def _refresh_nodes(self) -> list[Event]:
        changes = self.view.refresh(self._ray.nodes())
        events = [
            Event("node_left", s, detail=f"Ray node {self.view.node_ids[s]} left; cordoned")
            for s in changes.left
        ]
        events += [
            Event("node_joined", s, detail=f"Ray node {self.view.node_ids[s]}")
            for s in changes.added
        ]
        for server in changes.left:
            self._pending_evictions.pop(server, None)
        if changes.added:  # the policies' normalisers depend on the servers
            self.context = PlacementContext(self.view.cluster, self.view.blocks, self.context.rng)
        return events

    def _actor_class(self) -> Any:
        if self._remote is None:
            self._remote = self._ray.remote(PartitionActor)
        return self._remote

    def _start(
        self,
        manifest: VersionManifest,
        indices: Sequence[int],
        placed: Sequence[tuple[int, int]] | None,
        requests: Sequence[list[int]],
    ) -> tuple[list[PartitionState], float]:
        """Starts the partitions ``indices`` on their planned servers; returns them and
        Ray's actor start seconds. Kills what it started if anything fails.

        ``placed`` None: Ray places the actors (``ray_default``), each asking for its
        ``requests`` entry as custom resources; their containers are booked here, on
        the nodes Ray chose, and released again if anything fails."""
        ray = self._ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        actor_class = self._actor_class()
        with self._plan_lock:  # interning touches the block index
            ids = self._ids(manifest)
        actors = []
        booked: list[tuple[int, int]] = []
        began = time.perf_counter()
        try:
            for i, index in enumerate(indices):
                if placed is None:  # Ray places it; the actor finds its node's cache
                    where: dict[str, Any] = {
                        "resources": ray_resources(requests[i], self.view.resources)
                    }
                    cache = {"cache_dir": str(self.cache_root), "cache_per_node": True}
                else:
                    node_id = self.view.node_ids[placed[i][1]]
                    where = {
                        "scheduling_strategy": NodeAffinitySchedulingStrategy(node_id, soft=False)
                    }
                    cache = {"cache_dir": str(self.cache_root / node_id)}
                actors.append(
                    actor_class.options(
                        num_cpus=0, max_restarts=0, max_concurrency=self.max_concurrency, **where
                    ).remote(
                        str(self.store.root),
                        manifest.model,
                        manifest.version,
                        index,
                        bandwidth=self.store.bandwidth,
                        **cache,
                    )
                )
            if placed is None:
                try:
                    leased = wait_for_leases(ray, actors, self.start_timeout_s)
                except (TimeoutError, RuntimeError) as error:
                    raise DeploymentError(
                        f"{manifest.model} v{manifest.version}: {error}"
                    ) from None
                placed = booked = self._book_where_ray_put(manifest, indices, requests, leased)
            nodes = ray.get([a.node_id.remote() for a in actors], timeout=self.start_timeout_s)
            actor_s = time.perf_counter() - began
            for index, (_, server), node in zip(indices, placed, nodes, strict=True):
                if node != self.view.node_ids[server]:
                    raise DeploymentError(
                        f"{manifest.model} v{manifest.version} partition {index}: planned on "
                        f"node {self.view.node_ids[server]}, Ray started it on {node}"
                    )
            with self._plan_lock:  # re-entrant: deploy() and heal() already hold it
                evictions = self._take_evictions(manifest, [server for _, server in placed])
            starts = ray.get(
                [
                    actor.start.remote(sorted(evictions.get(server, ())))
                    for actor, (_, server) in zip(actors, placed, strict=True)
                ],
                timeout=self.start_timeout_s,
            )
        except BaseException as error:
            for actor in actors:
                self._kill(actor)
            with self._plan_lock:
                for container, _ in booked:
                    self.cluster.release(container)
            if isinstance(error, ray.exceptions.GetTimeoutError):
                raise DeploymentError(
                    f"{manifest.model} v{manifest.version}: actors did not start within "
                    f"{self.start_timeout_s} s"
                ) from error
            raise
        states = []
        with self._plan_lock:
            for index, actor, (container, server), cold in zip(
                indices, actors, placed, starts, strict=True
            ):
                expected = self._record_fetch(server, ids[index])
                states.append(
                    PartitionState(index, server, cold.node_id, container, actor, cold, expected)
                )
        return states, actor_s

    def _book_where_ray_put(
        self,
        manifest: VersionManifest,
        indices: Sequence[int],
        requests: Sequence[list[int]],
        nodes: Sequence[str],
    ) -> list[tuple[int, int]]:
        """Books each partition's container on the node Ray leased its actor on."""
        booked: list[tuple[int, int]] = []
        with self._plan_lock:
            self.events += self._refresh_nodes()  # Ray may have used a node that just joined
            try:
                for request, node in zip(requests, nodes, strict=True):
                    server = self.view.server_of(node)
                    booked.append((self.cluster.place(server, request), server))
            except (KeyError, ValueError) as error:
                # Ray's books and fastplace's mirror disagree: a dead actor Ray already
                # freed whose container the next heal() releases, or a node fastplace
                # has cordoned. The start fails like any other; nothing stays booked.
                for container, _ in booked:
                    self.cluster.release(container)
                failed = len(booked)
                raise DeploymentError(
                    f"{manifest.model} v{manifest.version} partition {indices[failed]}: Ray "
                    f"placed it on node {nodes[failed]}, where fastplace cannot book it ({error})"
                ) from error
        return booked

    def _take_evictions(
        self, manifest: VersionManifest, servers: Sequence[int]
    ) -> dict[int, set[str]]:
        """Blocks (addresses) each server's cache must drop (the index evicted them),
        handed to one starting actor per server, never a block this version needs."""
        needed = {h for part in manifest.partitions for h in part.hashes}
        out = {}
        for server in set(servers):
            keys = self._pending_evictions.pop(server, set())
            pending = {self._addresses[k] for k in keys if k in self._addresses}
            if pending - needed:
                out[server] = pending - needed
        return out

    def _record_fetch(self, server: int, ids: npt.NDArray[np.int64]) -> int:
        """Applies a cold start to the block index; returns the bytes it expected fetched.
        Blocks the index evicts to make room are queued for deletion on that node."""
        blocks = self.blocks
        before = set(blocks.server_blocks(server).tolist())
        expected = int(blocks.fetch(server, ids))
        after = set(blocks.server_blocks(server).tolist())
        hashes = blocks.block_hashes()
        pending = self._pending_evictions.setdefault(server, set())
        pending |= {int(hashes[b]) for b in before - after}
        pending -= {int(hashes[b]) for b in after}
        return expected

    def _connect(self, deployment: Deployment) -> None:
        """Gives partition 0 the handles of all partitions (after a start or a restart)."""
        handles = [p.actor for p in deployment.partitions]
        self._ray.get(handles[0].set_peers.remote(handles), timeout=self.start_timeout_s)

    def _release(self, part: PartitionState) -> None:
        """Frees a partition's container in fastplace, once."""
        if part.container >= 0:
            self.cluster.release(part.container)
            part.container = -1

    def _kill(self, actor: Any) -> None:
        try:
            self._ray.kill(actor, no_restart=True)
        except Exception as error:  # already gone: nothing to stop
            logger.debug("kill %s: %s", actor, error)


def _actor_gone(ray: Any, error: BaseException) -> bool:
    """Whether a Ray error means an actor died or became unreachable (vs a user error)."""
    gone = (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError)
    if isinstance(error, gone):
        return True
    cause = getattr(error, "cause", None)
    return isinstance(error, ray.exceptions.RayTaskError) and isinstance(cause, gone)


def is_fault(error: BaseException) -> bool:
    """Whether an error is a fault of the cluster that healing cures (an actor died or
    is unreachable, its node died, an actor could not be put on a node that just
    left), rather than a bad request or a bug. False when Ray is not installed."""
    try:
        import ray
    except ImportError:
        return False
    faults = (
        ray.exceptions.RayActorError,
        ray.exceptions.ActorUnavailableError,
        ray.exceptions.ActorUnschedulableError,
        ray.exceptions.NodeDiedError,
        ray.exceptions.ObjectLostError,
        ray.exceptions.WorkerCrashedError,
    )
    if isinstance(error, faults):
        return True
    cause = getattr(error, "cause", None)
    return isinstance(error, ray.exceptions.RayTaskError) and isinstance(cause, faults)
