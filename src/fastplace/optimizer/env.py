"""A gymnasium-style environment: one container placement per step, in the simulator.

An episode is one run of :class:`fastplace.sim.engine.Simulation` — a serverless DI
cluster serving a synthetic workload, with warm reuse, keep-alive expiry (churn: idle
containers are released), version rollouts (a new version shares most blocks with the
last) and gang placement — in which every cold-start placement is a decision the agent
takes. The simulator runs in a helper thread that stops at each decision and waits for
the agent's action, so the dynamics are exactly those the RO is evaluated on; the two
threads strictly alternate, which keeps an episode deterministic for its seed.

Observation: the decision's candidate servers and their feature matrix
(``features.decision``). Action: an index into the candidates. Reward::

    -(w_servers * change in active servers) - (w_bytes * downloaded bytes / file bytes)

where the change in active servers runs from this decision to the next (so it counts
the server this placement opens and the servers that churn empties meanwhile), and the
downloaded bytes are the blocks of the container's file its server lacks.

``credit="server_time"`` replaces the first term by a hindsight credit: every moment a
server is active is split evenly among the containers on it, and each container is
charged its share, ``w_servers * share seconds / server_time_scale_s``. Over an
episode these charges add up to the cluster's active server-time (the simulator's
"mean active servers" times the duration), but each one lands on the decision that
caused it: a container alone on a server pays for all of that server's time, one on a
busy server almost nothing. A share is known when its container is released, so it
arrives later, in ``info["server_time"]`` as (decision index, seconds) pairs; the step
reward then holds the bytes term only. (The "delta" signal of a placement that keeps
a server from emptying shows up only hundreds of decisions later.)

The API follows gymnasium (reset/step/close) without depending on it; ``reset``
returns the observation only.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from fastplace._checks import amount_tuples, integer_fields, integer_tuples
from fastplace._native import _core
from fastplace.optimizer.features import DEFAULT_K, N_FEATURES
from fastplace.placement_policy import BlockIds, PlacementContext, Policy, Request
from fastplace.sim.config import GIB, SimConfig
from fastplace.sim.engine import Simulation
from fastplace.sim.workload import synthetic_workload

__all__ = ["CREDITS", "EnvConfig", "Observation", "PlacementEnv"]

CREDITS = ("delta", "server_time")


@dataclass(frozen=True)
class EnvConfig:
    """The simulated cluster and workload of every episode, and the reward weights."""

    servers: int = 60
    #: Simulated seconds per episode.
    duration_s: float = 150.0
    n_models: int = 12
    total_rate: float = 60.0
    #: When set, every episode draws its number of models and its request rate
    #: log-uniformly from these (inclusive) ranges, with the episode's seed, instead
    #: of using n_models and total_rate: one policy for light and heavy load.
    n_models_range: tuple[int, int] | None = None
    total_rate_range: tuple[float, float] | None = None
    rollout_interval_s: float = 60.0
    changed_fraction: float = 0.2
    #: Partition memory sizes (MB) and their weights (None: the synthetic default mix;
    #: see ``synthetic_workload``). Retraining sets them to the requests it observed.
    memory_mb: tuple[int, ...] | None = None
    memory_weights: tuple[float, ...] | None = None
    cache_bytes: int = 32 * GIB
    keep_alive_s: float = 30.0
    heterogeneous: bool = False
    #: Candidates per decision.
    k: int = DEFAULT_K
    #: Reward weights: per server opened (or closed: negative), per file downloaded.
    w_servers: float = 1.0
    w_bytes: float = 0.5
    #: "delta" (change in active servers per step) or "server_time" (see the module doc).
    credit: str = "delta"
    #: With credit="server_time", seconds of server time that cost w_servers.
    server_time_scale_s: float = 60.0
    #: Stop an episode after this many decisions (truncated); 0: at the end of time.
    max_steps: int = 0

    def __post_init__(self) -> None:
        integer_fields(self, {"servers": 1, "n_models": 1, "k": 1})
        integer_fields(self, {"cache_bytes": 0, "max_steps": 0})
        integer_tuples(self, ("n_models_range",), minimum=1)
        amount_tuples(self, ("memory_mb",))
        for name in ("servers", "duration_s", "n_models", "total_rate", "k"):
            if not getattr(self, name) > 0:
                raise ValueError(f"EnvConfig.{name} = {getattr(self, name)!r} must be > 0")
        for name in ("rollout_interval_s", "cache_bytes", "keep_alive_s", "max_steps"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"EnvConfig.{name} = {getattr(self, name)!r} must be >= 0")
        for name in ("n_models_range", "total_rate_range"):
            bounds = getattr(self, name)
            if bounds is not None and not 0 < bounds[0] <= bounds[1]:
                raise ValueError(
                    f"EnvConfig.{name} = {bounds!r} must be (low, high), 0 < low <= high"
                )
        if self.credit not in CREDITS:
            raise ValueError(f"EnvConfig.credit = {self.credit!r} is not one of {CREDITS}")
        if not self.server_time_scale_s > 0:
            raise ValueError(
                f"EnvConfig.server_time_scale_s = {self.server_time_scale_s} must be > 0"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Observation(NamedTuple):
    """One decision: ``features[i]`` describes candidate server ``servers[i]``."""

    features: npt.NDArray[np.float32]  # (n, N_FEATURES)
    servers: npt.NDArray[np.int64]  # (n,)


_EMPTY = Observation(np.zeros((0, N_FEATURES), dtype=np.float32), np.zeros(0, dtype=np.int64))


@dataclass
class _Decision:
    observation: Observation
    block_ids: npt.NDArray[np.int64]
    active_before: int


@dataclass
class _Finished:
    metrics: dict[str, Any]


@dataclass
class _Failed:
    error: BaseException


class _Stop(Exception):
    """Sent into the simulator thread to abandon an episode."""


class _ServerTime:
    """Splits each server's active time evenly among its containers, online: per server,
    ``potential`` is the integral of dt / (containers on it), so a container's share
    is the potential's growth between its placement and its release."""

    def __init__(self, n_servers: int) -> None:
        self.potential = [0.0] * n_servers
        self.since = [0.0] * n_servers
        self.count = [0] * n_servers
        self.live: dict[int, tuple[int, float, int]] = {}  # container -> server, start, decision
        self.finished: list[tuple[int, float]] = []  # (decision, seconds), not yet reported

    def _advance(self, server: int, t: float) -> None:
        if self.count[server]:
            self.potential[server] += (t - self.since[server]) / self.count[server]
        self.since[server] = t

    def place(self, container: int, server: int, t: float, decision: int) -> None:
        self._advance(server, t)
        self.count[server] += 1
        self.live[container] = (server, self.potential[server], decision)

    def release(self, container: int, t: float) -> None:
        entry = self.live.pop(container, None)
        if entry is None:
            return
        server, start, decision = entry
        self._advance(server, t)
        self.count[server] -= 1
        self.finished.append((decision, self.potential[server] - start))

    def release_all(self, t: float) -> None:
        for container in list(self.live):
            self.release(container, t)

    def take(self) -> list[tuple[int, float]]:
        finished, self.finished = self.finished, []
        return finished


class _RecordingSimulation(Simulation):
    """The simulator, telling a _ServerTime when containers are released."""

    server_time: _ServerTime | None = None

    def _reclaim(self, container: int) -> None:
        if self.server_time is not None:
            # Every caller has advanced the clock to the release time first.
            self.server_time.release(container, self.metrics.last_t)
        super()._reclaim(container)


class _AgentPolicy(Policy):
    """The simulator's side of the bridge: hands each decision over and waits."""

    name = "ro-env"

    def __init__(
        self, k: int, to_agent: queue.SimpleQueue[Any], to_sim: queue.SimpleQueue[Any]
    ) -> None:
        self.k = k
        self.to_agent = to_agent
        self.to_sim = to_sim
        self.decisions = 0
        self.server_time: _ServerTime | None = None
        self.clock: Callable[[], float] = lambda: 0.0

    def place_gang(
        self, context: PlacementContext, requests: list[Request], blocks: list[BlockIds]
    ) -> list[tuple[int, int]] | None:
        first = self.decisions
        placed = super().place_gang(context, requests, blocks)
        if placed is not None and self.server_time is not None:
            # A gang that was placed took one decision per container, in order.
            now = self.clock()
            for i, (container, server) in enumerate(placed):
                self.server_time.place(container, server, now, first + i)
        return placed

    def choose(self, context: PlacementContext, request: Request, blocks: npt.NDArray[Any]) -> int:
        # The core's twin of features.decision (equal bit for bit, tests/test_ro_decision.py),
        # ~40x faster: training spends its time learning, not building feature rows.
        _, servers, features, _ = _core.ro_decide(
            context.cluster, context.blocks, None, request, blocks, self.k
        )
        if servers.shape[0] == 0:
            return -1
        ids = np.asarray(blocks, dtype=np.int64)
        active = context.cluster.n_active_servers
        self.to_agent.put(_Decision(Observation(features, servers), ids, active))
        self.decisions += 1
        action = self.to_sim.get()
        if action is None:
            raise _Stop
        return int(servers[action])


class PlacementEnv:
    """Placement decisions of a simulated serverless DI cluster (see the module doc).

    >>> env = PlacementEnv(EnvConfig(servers=20, duration_s=20, n_models=4, total_rate=10))
    >>> obs = env.reset(seed=1)
    >>> obs, reward, terminated, truncated, info = env.step(0)  # first candidate
    >>> env.close()
    """

    def __init__(self, config: EnvConfig | None = None) -> None:
        self.config = config or EnvConfig()
        self._thread: threading.Thread | None = None
        self._to_agent: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._to_sim: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._current: _Decision | None = None
        self.simulation: Simulation | None = None
        self._server_time: _ServerTime | None = None
        self.steps = 0
        self.seed: int | None = None

    def reset(self, seed: int | None = None) -> Observation:
        """Starts an episode (workload and cluster drawn from ``seed``; default: the
        previous seed + 1, or 0); returns the first decision."""
        self._stop()
        self.seed = seed if seed is not None else (0 if self.seed is None else self.seed + 1)
        c = self.config
        n_models, total_rate = self.regime(self.seed)
        workload = synthetic_workload(
            duration_s=c.duration_s,
            n_models=n_models,
            total_rate=total_rate,
            rollout_interval_s=c.rollout_interval_s,
            changed_fraction=c.changed_fraction,
            seed=self.seed,
            memory_mb=c.memory_mb,
            memory_weights=c.memory_weights,
        )
        sim_config = SimConfig(
            servers=c.servers,
            duration_s=c.duration_s,
            cache_bytes=c.cache_bytes,
            keep_alive_s=c.keep_alive_s,
            heterogeneous=c.heterogeneous,
            seed=self.seed,
        )
        self._to_agent = queue.SimpleQueue()
        self._to_sim = queue.SimpleQueue()
        policy = _AgentPolicy(c.k, self._to_agent, self._to_sim)
        simulation = _RecordingSimulation(sim_config, workload, policy)
        self.simulation = simulation
        self._server_time = None
        if c.credit == "server_time":
            self._server_time = _ServerTime(c.servers)
            simulation.server_time = policy.server_time = self._server_time
            policy.clock = lambda: simulation.metrics.last_t
        self.steps = 0
        self._thread = threading.Thread(
            target=self._run, args=(self.simulation, self._to_agent), daemon=True
        )
        self._thread.start()
        message = self._receive()
        if isinstance(message, _Decision):
            self._current = message
            return message.observation
        self._current = None
        return _EMPTY

    def regime(self, seed: int) -> tuple[int, float]:
        """(number of models, total request rate) of the episode with this seed."""
        c = self.config
        rng = np.random.default_rng([seed, 3])
        n_models, total_rate = c.n_models, c.total_rate
        if c.n_models_range is not None:
            low, high = np.log(c.n_models_range[0]), np.log(c.n_models_range[1] + 1)
            n_models = min(int(np.exp(rng.uniform(low, high))), c.n_models_range[1])
        if c.total_rate_range is not None:
            low, high = np.log(c.total_rate_range[0]), np.log(c.total_rate_range[1])
            total_rate = float(np.exp(rng.uniform(low, high)))
        return n_models, total_rate

    @staticmethod
    def _run(simulation: Simulation, to_agent: queue.SimpleQueue[Any]) -> None:
        try:
            to_agent.put(_Finished(simulation.run()))
        except _Stop:
            pass
        except BaseException as error:  # handed to the agent's thread, raised there
            to_agent.put(_Failed(error))

    def _receive(self) -> _Decision | _Finished:
        message = self._to_agent.get()
        if isinstance(message, _Failed):
            self._join()
            raise RuntimeError(f"the simulator failed: {message.error!r}") from message.error
        if isinstance(message, _Finished):
            self._join()
        return message  # type: ignore[no-any-return]

    def step(self, action: int) -> tuple[Observation, float, bool, bool, dict[str, Any]]:
        """Places the current container on candidate ``action``; returns
        (observation, reward, terminated, truncated, info)."""
        current = self._current
        if current is None or self.simulation is None:
            raise RuntimeError("no decision pending: call reset() first")
        servers = current.observation.servers
        index = int(action)
        if not 0 <= index < servers.shape[0]:
            raise ValueError(
                f"action = {action} is not a candidate index (0..{servers.shape[0] - 1})"
            )
        server = int(servers[index])
        blocks = self.simulation.blocks
        downloaded = int(blocks.missing_bytes(server, current.block_ids))
        cached = int(blocks.cached_bytes_on(np.array([server]), current.block_ids)[0])
        file_bytes = downloaded + cached
        self.steps += 1
        self._to_sim.put(index)
        message = self._receive()
        info: dict[str, Any] = {"server": server, "downloaded_bytes": downloaded}
        if isinstance(message, _Decision):
            active_after = message.active_before
            self._current = message
            observation = message.observation
            terminated = False
        else:
            active_after = self.simulation.cluster.n_active_servers
            self._current = None
            observation = _EMPTY
            terminated = True
            info["metrics"] = message.metrics
        delta = active_after - current.active_before
        info["active_delta"] = delta
        reward = 0.0 if self._server_time is not None else -self.config.w_servers * delta
        if file_bytes > 0:
            reward -= self.config.w_bytes * downloaded / file_bytes
        truncated = (
            not terminated and self.config.max_steps > 0 and self.steps >= self.config.max_steps
        )
        if self._server_time is not None:
            if terminated or truncated:  # containers still running are charged until now
                self._server_time.release_all(self.simulation.metrics.last_t)
            info["server_time"] = self._server_time.take()
        if truncated:
            self._stop()
            observation = _EMPTY
        return observation, float(reward), terminated, truncated, info

    def credit(self, seconds: float) -> float:
        """The reward for a container's share of server time (credit="server_time")."""
        return -self.config.w_servers * seconds / self.config.server_time_scale_s

    def _stop(self) -> None:
        """Abandons a running episode: the simulator thread raises _Stop and ends."""
        if self._thread is not None and self._thread.is_alive() and self._current is not None:
            self._to_sim.put(None)
        self._current = None
        self._join()

    def _join(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def close(self) -> None:
        self._stop()

    def __enter__(self) -> PlacementEnv:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
