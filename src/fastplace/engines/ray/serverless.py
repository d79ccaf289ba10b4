"""A serverless front end on Ray: gangs start on demand, stay warm, scale out, retire.

``Serverless.submit(model, batch)`` routes a request to a warm gang (all partitions of
the model's active version, running as Ray actors) that serves fewer requests than the
model's concurrency target. If there is none and the model has fewer gangs than its
cap, a new gang is placed by the deployer's fastplace policy and cold-started while
the request waits; at the cap, the request waits for a free slot. A gang idle for the
keep-alive is retired (its actors killed, its containers released in fastplace). A
rollout sends new requests to the new version; the old version's gangs take no new
requests and retire as soon as their requests in flight finish (the drain).

Locks: each model has its own condition (routing, counts); placement goes through
:meth:`Deployer.launch`, which holds the deployer's global plan lock only while
fastplace places and books. A cold start itself (actors starting, blocks fetched)
holds no lock, so a request for one model never waits on another model's cold start.
When a gang fits nowhere, the longest-idle gang of any model is retired to make room
and placement is tried again, as the simulator (``fastplace.sim``) does under pressure.

Faults: a request that meets a dead partition actor (killed, crashed, or on a node
that left) marks its gang broken; the gang is healed through
:meth:`Deployer.heal_deployment` (the dead partitions re-placed by fastplace on the
nodes alive now, a node that left cordoned first) and the request is sent again.
Requests that arrive meanwhile wait for the heal as for a cold start. A gang that
cannot be healed is retired and the retried request starts a new one. A request is
retried at most ``max_retries`` times, then fails with :class:`RetriesExhausted`
naming the last fault; ``stats()`` counts the retries and the re-placements.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from fastplace._checks import integer
from fastplace.engines.ray.deployment import (
    Deployer,
    Deployment,
    DeploymentError,
    NoCapacity,
    is_fault,
)
from fastplace.engines.ray.model_store import check_model_name, check_version

__all__ = [
    "Answer",
    "Gang",
    "GangBroken",
    "RequestRecord",
    "RetriesExhausted",
    "Serverless",
    "ServerlessStats",
]

logger = logging.getLogger("fastplace.engines.ray")

Batch = tuple[Mapping[str, npt.NDArray[np.int64]], npt.NDArray[np.float32]]


class GangBroken(DeploymentError):
    """A gang lost a partition and could not be healed; it is retired (requests that
    waited on it are sent again)."""


class RetriesExhausted(DeploymentError):
    """A request met a fault on every attempt (1 + ``max_retries``); it is lost."""


@dataclass
class Gang:
    """One running (or starting) gang of a model version and the requests it serves."""

    model: str
    version: int
    started_at: float
    """``time.monotonic()`` when its cold start began."""
    deployment: Deployment | None = None
    """None while it cold-starts."""
    in_flight: int = 0
    """Requests routed here and not answered yet (waiting for the start included)."""
    idle_since: float = 0.0
    draining: bool = False
    """Takes no new requests; retires once ``in_flight`` is 0 (rollout or reclaim)."""
    retired: bool = False
    error: BaseException | None = None
    """Why its cold start or its heal failed (the requests waiting for it fail with it,
    and are retried if it is a fault or :class:`GangBroken`)."""
    served: int = 0
    healing: bool = False
    """A partition died: the gang is being healed and takes requests only after."""
    generation: int = 0
    """Heals so far: a fault seen by a request of an older generation is healed already."""

    @property
    def ready(self) -> bool:
        return self.deployment is not None and not self.healing


@dataclass(frozen=True)
class RequestRecord:
    """One answered request.
    ``latency_s = queue_s + route_s + wait_s + compute_s + retry_s``."""

    model: str
    version: int
    cold: bool
    """It waited for a gang's cold start (it, or an earlier request, started it)."""
    latency_s: float
    """From ``submit`` until the answer."""
    queue_s: float
    """Waiting for a worker thread of :meth:`Serverless.submit`'s pool (0 for call)."""
    route_s: float
    """The front end's own work: locks, routing decisions, bookkeeping."""
    wait_s: float
    """Waiting for a cold start or, at the gang cap, for a free slot."""
    compute_s: float
    """The gang's inference call (Ray round trip, fan-out, dense part)."""
    fanout_s: float
    """The fan-out inside partition 0 (part of ``compute_s``)."""
    retries: int = 0
    """Attempts that met a fault before the one that answered."""
    retry_s: float = 0.0
    """Those attempts' time, the heals they waited for included."""


@dataclass(frozen=True)
class Answer:
    """A request's result: the model's outputs and how it was served."""

    outputs: dict[str, npt.NDArray[np.float32]]
    record: RequestRecord


@dataclass
class ServerlessStats:
    """Counters of a :class:`Serverless` front end (read :meth:`Serverless.stats`)."""

    requests: int = 0
    answered: int = 0
    lost: int = 0
    """Requests that got an exception instead of an answer."""
    errors: Counter[str] = field(default_factory=Counter)
    """The lost requests by exception type."""
    cold_starts: int = 0
    """Gangs started."""
    warm_hits: int = 0
    """Requests routed to a gang that was already running."""
    retires: int = 0
    """Gangs retired (keep-alive, rollout drain, reclaimed for room, close)."""
    reclaimed: int = 0
    """Of the retires: idle gangs retired early because a new gang did not fit."""
    bytes_fetched: int = 0
    """Bytes the cold starts fetched from the model store."""
    cold_start_s: list[float] = field(default_factory=list)
    """Each gang's cold start: from placement until it could serve."""
    records: list[RequestRecord] = field(default_factory=list)
    retries: int = 0
    """Attempts sent again after a fault (a request retried twice counts 2)."""
    gangs_broken: int = 0
    """Gangs found with a dead partition (each fault of a gang once)."""
    gangs_replaced: int = 0
    """Of those: gangs healed, their dead partitions re-placed by fastplace."""
    partitions_replaced: int = 0
    """Partitions those heals placed and started again."""
    gangs_lost: int = 0
    """Of the broken gangs: retired because healing failed (retried requests start
    a new gang, placed by fastplace)."""
    start_faults: int = 0
    """Cold starts that failed with a fault (a node left while its actors started);
    their requests are retried."""

    def summary(self) -> dict[str, Any]:
        """Counts and latency percentiles (seconds) as a flat dict."""

        def pct(values: list[float], q: float) -> float:
            return float(np.percentile(values, q)) if values else 0.0

        latency = [r.latency_s for r in self.records]
        route = [r.route_s for r in self.records]
        queue = [r.queue_s for r in self.records]
        return {
            "requests": self.requests,
            "answered": self.answered,
            "lost": self.lost,
            "errors": dict(self.errors),
            "cold_starts": self.cold_starts,
            "warm_hits": self.warm_hits,
            "retires": self.retires,
            "reclaimed": self.reclaimed,
            "bytes_fetched": self.bytes_fetched,
            "cold_start_p50_s": pct(self.cold_start_s, 50),
            "cold_start_p99_s": pct(self.cold_start_s, 99),
            "request_p50_s": pct(latency, 50),
            "request_p99_s": pct(latency, 99),
            "route_p50_s": pct(route, 50),
            "route_p99_s": pct(route, 99),
            "queue_p50_s": pct(queue, 50),
            "queue_p99_s": pct(queue, 99),
            "retries": self.retries,
            "gangs_broken": self.gangs_broken,
            "gangs_replaced": self.gangs_replaced,
            "partitions_replaced": self.partitions_replaced,
            "gangs_lost": self.gangs_lost,
            "start_faults": self.start_faults,
        }


@dataclass
class _Model:
    name: str
    version: int
    cond: threading.Condition = field(default_factory=threading.Condition)
    gangs: list[Gang] = field(default_factory=list)


class Serverless:
    """Serverless DI on Ray over a :class:`~fastplace.engines.ray.Deployer`.

    ``versions`` names each model's active version (more models: :meth:`rollout`).
    ``concurrency_target``: requests one gang serves at once; ``keep_alive_s``: how
    long an idle gang stays warm; ``max_gangs``: the cap on gangs per model (a model
    at its cap queues requests). ``workers`` threads run :meth:`submit`'s requests.
    ``max_retries``: how many times a request that met a fault is sent again.
    """

    def __init__(
        self,
        deployer: Deployer,
        versions: Mapping[str, int] | None = None,
        *,
        concurrency_target: int = 1,
        keep_alive_s: float = 30.0,
        max_gangs: int = 4,
        workers: int = 16,
        wait_timeout_s: float = 120.0,
        max_retries: int = 3,
    ) -> None:
        """A front end over ``deployer`` (see the class docstring). ``wait_timeout_s``
        bounds a request's wait for a cold start or a free slot. Raises TypeError or
        ValueError naming a bad option, KeyError for a version the store lacks."""
        self.concurrency_target = integer(concurrency_target, "concurrency_target", minimum=1)
        self.max_gangs = integer(max_gangs, "max_gangs", minimum=1)
        self.max_retries = integer(max_retries, "max_retries", minimum=0)
        workers = integer(workers, "workers", minimum=1)
        self.keep_alive_s = _seconds(keep_alive_s, "keep_alive_s", allow_zero=True)
        self.wait_timeout_s = _seconds(wait_timeout_s, "wait_timeout_s", allow_zero=False)
        checked = {}
        for model, version in (versions or {}).items():
            checked[check_model_name(model)] = check_version(version)
            deployer.store.manifest(model, checked[model])  # KeyError: not stored
        self.deployer = deployer
        self._models: dict[str, _Model] = {m: _Model(m, v) for m, v in checked.items()}
        self._models_lock = threading.Lock()
        self._stats = ServerlessStats()
        self._stats_lock = threading.Lock()
        self._capacity = threading.Condition()
        self._retired_count = 0
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="fastplace-serverless")
        # Drained gangs retire here, not in the thread of their last request (whose
        # caller would otherwise wait for the actors to be killed).
        self._retirer = ThreadPoolExecutor(1, thread_name_prefix="fastplace-serverless-retire")
        self._closed = threading.Event()
        self._reaper = threading.Thread(
            target=self._reap_loop, name="fastplace-serverless-reaper", daemon=True
        )
        self._reaper.start()

    # ---- public ---------------------------------------------------------------------

    def submit(self, model: str, batch: Batch, *, hold_s: float = 0.0) -> Future[Answer]:
        """Sends a batch (``(ids, dense)``) to ``model``; the future holds the Answer.
        ``hold_s``: the gang keeps the request that long after computing it (a
        replayed log's service time; counted in ``compute_s``)."""
        submitted = time.perf_counter()
        self._state(model)  # an unknown model fails here, in the caller's thread
        hold_s = _seconds(hold_s, "hold_s", allow_zero=True)
        return self._pool.submit(self._serve, model, batch, submitted, hold_s)

    def call(self, model: str, batch: Batch, *, hold_s: float = 0.0) -> Answer:
        """:meth:`submit` in the caller's thread: the Answer."""
        submitted = time.perf_counter()
        self._state(model)
        hold_s = _seconds(hold_s, "hold_s", allow_zero=True)
        return self._serve(model, batch, submitted, hold_s)

    def rollout(self, model: str, version: int) -> None:
        """New requests for ``model`` go to ``version`` (a new model becomes known);
        the old version's gangs drain, then retire."""
        model = check_model_name(model)
        version = check_version(version)
        self.deployer.store.manifest(model, version)  # a missing version fails now
        with self._models_lock:
            state = self._models.setdefault(model, _Model(model, version))
        done: list[Gang] = []
        with state.cond:
            state.version = version
            for gang in state.gangs:
                if gang.version != version:
                    gang.draining = True
                    if gang.ready and gang.in_flight == 0:
                        done.append(gang)
            for gang in done:
                state.gangs.remove(gang)
            state.cond.notify_all()
        with self._capacity:  # starts waiting for room for the old version give up
            self._capacity.notify_all()
        for gang in done:
            self._retire(gang)

    def models(self) -> list[str]:
        """The models served (each with an active version)."""
        return [state.name for state in self._states()]

    def version(self, model: str) -> int:
        """The version new requests for ``model`` go to."""
        state = self._state(model)
        with state.cond:
            return state.version

    def gangs(self, model: str) -> list[Gang]:
        """The model's gangs (starting, serving, draining), oldest first."""
        state = self._state(model)
        with state.cond:
            return list(state.gangs)

    def stats(self) -> ServerlessStats:
        """A copy of the counters."""
        with self._stats_lock:
            copy = ServerlessStats(**vars(self._stats))
            copy.cold_start_s = list(self._stats.cold_start_s)
            copy.errors = Counter(self._stats.errors)
            copy.records = list(self._stats.records)
        return copy

    def reap(self) -> int:
        """Retires every gang idle for the keep-alive now; returns how many.
        (A background thread does this a few times per keep-alive.)"""
        now = time.monotonic()
        expired: list[Gang] = []
        for state in self._states():
            with state.cond:
                for gang in list(state.gangs):
                    if (
                        gang.ready
                        and gang.in_flight == 0
                        and (gang.draining or now - gang.idle_since >= self.keep_alive_s)
                    ):
                        state.gangs.remove(gang)
                        expired.append(gang)
        for gang in expired:
            self._retire(gang)
        return len(expired)

    def close(self) -> None:
        """Stops taking requests, waits for those in flight, retires every gang."""
        self._closed.set()
        self._pool.shutdown(wait=True)
        self._reaper.join()
        self._retirer.shutdown(wait=True)
        for state in self._states():
            with state.cond:
                gangs = [g for g in state.gangs if g.ready]
                state.gangs.clear()
            for gang in gangs:
                self._retire(gang)

    def __enter__(self) -> Serverless:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # ---- serving --------------------------------------------------------------------

    def _serve(self, model: str, batch: Batch, submitted: float, hold_s: float) -> Answer:
        with self._stats_lock:
            self._stats.requests += 1
        queue_s = time.perf_counter() - submitted
        retry_s = 0.0
        fault: BaseException | None = None
        try:
            for attempt in range(self.max_retries + 1):
                began = time.perf_counter()
                try:
                    return self._serve_once(
                        model, batch, submitted, hold_s, queue_s, attempt, retry_s
                    )
                except BaseException as error:
                    if not (is_fault(error) or isinstance(error, GangBroken)):
                        raise
                    fault = error
                retry_s += time.perf_counter() - began
                if attempt < self.max_retries:
                    with self._stats_lock:
                        self._stats.retries += 1
                    logger.info("%s: retrying after %s", model, type(fault).__name__)
            raise RetriesExhausted(
                f"{model}: no answer after {self.max_retries + 1} attempts "
                f"(max_retries = {self.max_retries}); last fault: "
                f"{type(fault).__name__}: {_first_line(fault)}"
            ) from fault
        except BaseException as error:
            with self._stats_lock:
                self._stats.lost += 1
                self._stats.errors[type(error).__name__] += 1
            raise

    def _serve_once(
        self,
        model: str,
        batch: Batch,
        submitted: float,
        hold_s: float,
        queue_s: float,
        retries: int,
        retry_s: float,
    ) -> Answer:
        state = self._state(model)
        gang, new, waited_s = self._acquire(state)
        cold = new or not gang.ready
        began = time.perf_counter()
        while True:
            try:
                if new:
                    self._start(state, gang)
                elif not gang.ready:
                    self._await_start(state, gang)
                break
            except NoCapacity as error:
                # The cluster is full of busy gangs: route again (to a slot of this
                # model's other gangs, or a new start once room frees) until the wait
                # bound; only then is the request lost. A request whose version was
                # rolled past routes as a new one (it may scale the new version out).
                if not new:
                    self._release(state, gang)
                if time.perf_counter() - began > self.wait_timeout_s:
                    raise
                scale_out = isinstance(error, _RolledPast)
                gang, new, _ = self._acquire(state, scale_out=scale_out)
            except BaseException:
                if not new:  # a failed start already took its gang out
                    self._release(state, gang)
                raise
        if cold:  # a warm request does not wait: its wait_s stays exactly 0
            waited_s += time.perf_counter() - began
        try:
            with state.cond:
                deployment = gang.deployment
                generation = gang.generation
            assert deployment is not None  # set by the start, which succeeded
            ids, dense = batch
            computing = time.perf_counter()
            ray = self.deployer._ray
            try:
                outputs, fanout_s = ray.get(
                    deployment.partitions[0].actor.infer.remote(ids, dense, hold_s),
                    timeout=self.deployer.request_timeout_s,
                )
            except BaseException as error:
                if is_fault(error):
                    self._repair(state, gang, generation)
                raise
            done = time.perf_counter()
        finally:
            self._release(state, gang)
        compute_s = done - computing
        latency_s = done - submitted
        record = RequestRecord(
            model=model,
            version=gang.version,
            cold=cold,
            latency_s=latency_s,
            queue_s=queue_s,
            route_s=max(0.0, latency_s - queue_s - retry_s - waited_s - compute_s),
            wait_s=waited_s,
            compute_s=compute_s,
            fanout_s=float(fanout_s),
            retries=retries,
            retry_s=retry_s,
        )
        with self._stats_lock:
            self._stats.answered += 1
            if not cold:
                self._stats.warm_hits += 1
            self._stats.records.append(record)
        return Answer(outputs, record)

    def _repair(self, state: _Model, gang: Gang, generation: int) -> None:
        """A request of ``generation`` met a dead partition of ``gang``: heal the gang
        (fastplace re-places the dead partitions), unless another request already
        does or did. A draining gang, or one the heal cannot save, is retired instead:
        the retried requests then go to (or start) another gang."""
        with state.cond:
            if gang.generation != generation or gang.healing or gang not in state.gangs:
                return
            gang.healing = True
            deployment = gang.deployment
            draining = gang.draining
        assert deployment is not None
        with self._stats_lock:
            self._stats.gangs_broken += 1
        failure: BaseException | None = None
        replaced = 0
        if draining:
            failure = GangBroken(f"{gang.model} v{gang.version}: a draining gang lost a partition")
        else:
            try:
                events = self.deployer.heal_deployment(deployment)
                replaced = sum(e.kind == "replaced" for e in events)
            except Exception as error:
                logger.warning("%s v%s: heal failed: %s", gang.model, gang.version, error)
                failure = GangBroken(f"{gang.model} v{gang.version}: heal failed: {error}")
                failure.__cause__ = error
        with state.cond:
            gang.healing = False
            gang.generation += 1
            if failure is not None:
                gang.error = failure
                if gang in state.gangs:
                    state.gangs.remove(gang)
            else:
                gang.idle_since = time.monotonic()
            state.cond.notify_all()
        with self._stats_lock:
            if failure is None:
                self._stats.gangs_replaced += replaced > 0
                self._stats.partitions_replaced += replaced
            else:
                self._stats.gangs_lost += 1
        if failure is not None:
            self._retirer.submit(self._retire_logged, gang)

    def _acquire(self, state: _Model, *, scale_out: bool = True) -> tuple[Gang, bool, float]:
        """A slot in a gang of the active version: (gang, whether this request starts
        it, seconds waited at the cap). Without ``scale_out`` (the cluster was just
        found full) it starts a gang only if the model has none to queue on."""
        waited_s = 0.0
        with state.cond:
            while True:
                version = state.version
                current = [g for g in state.gangs if g.version == version and not g.draining]
                open_ = [g for g in current if g.in_flight < self.concurrency_target]
                if open_:
                    # Ready gangs first (no wait), then the least loaded.
                    gang = min(open_, key=lambda g: (not g.ready, g.in_flight))
                    gang.in_flight += 1
                    return gang, False, waited_s
                if len(current) < (self.max_gangs if scale_out else 1):
                    gang = Gang(state.name, version, time.monotonic())
                    gang.in_flight = 1
                    state.gangs.append(gang)
                    return gang, True, waited_s
                began = time.perf_counter()
                if not state.cond.wait(self.wait_timeout_s):
                    raise TimeoutError(
                        f"{state.name}: no free slot in {len(current)} gangs "
                        f"within {self.wait_timeout_s} s"
                    )
                waited_s += time.perf_counter() - began

    def _start(self, state: _Model, gang: Gang) -> None:
        """Cold-starts a gang (no lock held); on failure the gang leaves the model."""
        began = time.perf_counter()
        try:
            deployment = self._launch(state, gang.version)
        except BaseException as error:
            with state.cond:
                gang.error = error
                if gang in state.gangs:
                    state.gangs.remove(gang)
                state.cond.notify_all()
            if is_fault(error):
                with self._stats_lock:
                    self._stats.start_faults += 1
            raise
        seconds = time.perf_counter() - began
        with self._stats_lock:
            self._stats.cold_starts += 1
            self._stats.bytes_fetched += deployment.fetched_bytes
            self._stats.cold_start_s.append(seconds)
        with state.cond:
            gang.deployment = deployment
            gang.idle_since = time.monotonic()
            state.cond.notify_all()

    def _launch(self, state: _Model, version: int) -> Deployment:
        """Deployer.launch, retiring the longest-idle gangs while the gang does not fit.
        With nothing idle: NoCapacity if the model has other gangs to queue on, else
        wait (up to ``wait_timeout_s``) for a gang anywhere to retire and try again."""
        deadline = time.monotonic() + self.wait_timeout_s
        while True:
            seen = self._retired_count
            try:
                return self.deployer.launch(state.name, version)
            except NoCapacity:
                victim = self._take_longest_idle()
                if victim is not None:
                    self._retire(victim)
                    with self._stats_lock:
                        self._stats.reclaimed += 1
                    continue
                with state.cond:
                    others = any(
                        g.version == version and not g.draining and g.ready for g in state.gangs
                    )
                    # A version rolled past while waiting for room: starting it would be
                    # waste (it drains once up); the request routes again, to the new one.
                    rolled_past = state.version != version
                left = deadline - time.monotonic()
                if rolled_past:
                    raise _RolledPast(f"{state.name} v{version} was rolled past") from None
                if others or left <= 0:
                    raise
                with self._capacity:
                    if self._retired_count == seen:  # nothing freed since we tried
                        self._capacity.wait(min(left, 1.0))

    def _take_longest_idle(self) -> Gang | None:
        best: tuple[float, _Model, Gang] | None = None
        for state in self._states():
            with state.cond:
                for gang in state.gangs:
                    if gang.ready and gang.in_flight == 0:
                        if best is None or gang.idle_since < best[0]:
                            best = (gang.idle_since, state, gang)
        if best is None:
            return None
        _, state, gang = best
        with state.cond:  # it may have taken a request since: then look again
            if gang in state.gangs and gang.in_flight == 0:
                state.gangs.remove(gang)
                return gang
        return self._take_longest_idle()

    def _await_start(self, state: _Model, gang: Gang) -> None:
        with state.cond:
            while not gang.ready and gang.error is None:
                if not state.cond.wait(self.wait_timeout_s):
                    raise TimeoutError(
                        f"{gang.model} v{gang.version}: gang did not start within "
                        f"{self.wait_timeout_s} s"
                    )
            if gang.error is not None:
                raise gang.error

    def _release(self, state: _Model, gang: Gang) -> None:
        """A request left its gang: a drained gang retires now."""
        retire = False
        with state.cond:
            gang.in_flight -= 1
            if gang.ready:
                gang.served += 1
            if gang.in_flight == 0:
                gang.idle_since = time.monotonic()
                if gang.draining and gang.ready and gang in state.gangs:
                    state.gangs.remove(gang)
                    retire = True
            state.cond.notify_all()
        if retire:
            self._retirer.submit(self._retire_logged, gang)

    def _retire(self, gang: Gang) -> None:
        """Kills a gang taken out of its model (no requests left) and frees its capacity."""
        if gang.retired or gang.deployment is None:
            return
        gang.retired = True
        self.deployer.retire(gang.deployment, drain_timeout_s=0.0)
        with self._stats_lock:
            self._stats.retires += 1
        with self._capacity:  # cold starts waiting for room try again
            self._retired_count += 1
            self._capacity.notify_all()
        logger.debug("retired %s v%s", gang.model, gang.version)

    def _retire_logged(self, gang: Gang) -> None:
        try:
            self._retire(gang)
        except Exception:  # nobody waits for this future: say so in the log
            logger.exception("retiring %s v%s", gang.model, gang.version)

    # ---- internals ------------------------------------------------------------------

    def _state(self, model: str) -> _Model:
        with self._models_lock:
            state = self._models.get(model) if isinstance(model, str) else None
        if state is None:
            raise KeyError(f"model {model!r} is not served: rollout({model!r}, version) first")
        return state

    def _states(self) -> list[_Model]:
        with self._models_lock:
            return list(self._models.values())

    def _reap_loop(self) -> None:
        # A few checks per keep-alive (at most 4 a second, at least one per 5 s).
        period = min(5.0, max(0.25, self.keep_alive_s / 4))
        while not self._closed.wait(period):
            try:
                self.reap()
            except Exception:  # a failed retire must not stop the reaper
                logger.exception("serverless reaper")


class _RolledPast(NoCapacity):
    """A start waiting for room gave up: its version is no longer the model's."""


def _first_line(error: BaseException | None) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else ""


def _seconds(value: object, name: str, *, allow_zero: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} = {value!r} must be a number of seconds")
    seconds = float(value)
    if not math.isfinite(seconds) or seconds < 0 or (seconds == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} = {value!r} must be finite and {bound}")
    return seconds
