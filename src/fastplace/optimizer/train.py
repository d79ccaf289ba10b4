"""Training the resource optimizer: DQN over placement decisions in the simulator.

Q(s, a) is the score the shared per-candidate network gives candidate a's feature row,
so the greedy policy is exactly what the RO does at run time (argmax of scores). The
learner is a standard DQN with the usual stabilisers:

* a replay buffer of (decision, action, reward, next decision, done), decisions padded
  to K candidates with a mask;
* a target network, copied from the online one every ``target_sync`` steps, and the
  double-DQN target over ``n_step`` decisions,
  ``r_0 + ... + gamma^(n-1) r_(n-1) + gamma^n * Q_target(s_n, argmax_a Q(s_n, a))``
  (several steps, because a placement's effect on when servers empty shows up many
  decisions later);
* epsilon-greedy exploration (uniform over the candidates), epsilon decaying linearly;
* optionally, a demonstrator (as in DQfD, Hester et al. 2018): a large-margin loss
  ``max_a [Q(s, a) + margin * (a != d)] - Q(s, d)``, weighted by ``demo_weight``,
  where d is the candidate a hand-written rule over the same features would choose
  (``fastplace.optimizer.demonstrator``: first fit, or locality-aware first fit). The
  RO then follows the rule unless its learned values say another candidate is better
  by more than the margin — consolidation is a long-term effect a short-horizon TD
  target hardly sees;
* features standardised with the mean/std of the first ``learn_start`` decisions,
  frozen into the network (and so into the exported model).

Every source of randomness has an explicit seed derived from ``TrainConfig.seed``:
torch, the exploration RNG and the episodes' workloads and clusters. Training episodes
use workload seeds ``1000 * (seed + 1) + episode`` and validation seeds 900-999, so
they never overlap the seeds the quality benchmark evaluates on (100-102).

The best network by validation return (greedy, on fixed validation seeds) is exported
to TorchScript with its metadata, and as plain arrays (.npz); checkpoints, the
training curve (PNG) and a JSON log go next to it.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import json
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from fastplace._atomic import atomic_file, write_atomic
from fastplace._checks import amount_tuples, integer_fields, integer_tuples
from fastplace.extras import MissingExtra
from fastplace.optimizer.demonstrator import DEMONSTRATORS
from fastplace.optimizer.env import EnvConfig, Observation, PlacementEnv
from fastplace.optimizer.features import DEFAULT_K, N_FEATURES
from fastplace.optimizer.model import _JIT_DEPRECATION, save_model
from fastplace.optimizer.network import ScoreNet
from fastplace.optimizer.training_plot import curve_title, plot_curve

__all__ = ["REFERENCE_SERVERS", "EpisodeStats", "TrainConfig", "TrainResult", "train"]


#: The cluster size the workload ranges of TrainConfig describe (the simulator's
#: default cluster); ``scale_workload`` grows them from here.
REFERENCE_SERVERS = 150


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on (recorded in the model's metadata)."""

    episodes: int = 30
    seed: int = 0
    k: int = DEFAULT_K
    gamma: float = 0.9
    #: Rewards summed per transition before bootstrapping (n-step DQN).
    n_step: int = 1
    #: Weight and margin of the large-margin loss towards the demonstrator's
    #: candidate (0: off), and the demonstrator (fastplace.optimizer.demonstrator).
    #: The shipped model learned from the windowless rule "reach" with weight 20
    #: (docs/optimizer.md, "Training"); the defaults are the 150-server recipe before it.
    demo_weight: float = 5.0
    demo_margin: float = 0.1
    demonstrator: str = "locality"
    lr: float = 1e-3
    batch: int = 64
    buffer: int = 20_000
    #: Decisions collected (with epsilon = epsilon_start) before learning starts.
    learn_start: int = 1_000
    #: One gradient step every this many decisions.
    train_every: int = 2
    #: Copy the online network into the target network every this many decisions.
    target_sync: int = 1_000
    epsilon_start: float = 1.0
    epsilon_end: float = 0.05
    #: Decisions over which epsilon decays linearly to epsilon_end.
    epsilon_steps: int = 20_000
    hidden: tuple[int, ...] = (32, 32)
    #: Reward weights (see fastplace.optimizer.env).
    w_servers: float = 6.0
    w_bytes: float = 0.0625
    #: "server_time" or "delta" (see fastplace.optimizer.env and docs/optimizer.md:
    #: with "delta", the DQN never learned to consolidate).
    credit: str = "server_time"
    server_time_scale_s: float = 60.0
    # The simulated cluster and workload of each episode.
    servers: int = 150
    duration_s: float = 300.0
    n_models: int = 24
    total_rate: float = 60.0
    #: Per-episode draws of the workload's models and request rate (None: fixed).
    n_models_range: tuple[int, int] | None = (8, 120)
    total_rate_range: tuple[float, float] | None = (5.0, 80.0)
    #: True: the models and request rates above are per REFERENCE_SERVERS servers and
    #: grow with ``servers`` (1,500 servers: 80-1,200 models at 50-800 requests/s), so
    #: a large cluster is as busy as the reference one. False: taken as they are.
    scale_workload: bool = False
    rollout_interval_s: float = 120.0
    keep_alive_s: float = 30.0
    #: Partition memory mix of the episodes' workloads (None: the synthetic default).
    memory_mb: tuple[int, ...] | None = None
    memory_weights: tuple[float, ...] | None = None
    #: Stop each episode after this many decisions (0: run the simulated duration).
    max_steps: int = 0
    #: Greedy validation on validation_seeds every this many episodes (0: never).
    validate_every: int = 5
    validation_seeds: tuple[int, ...] = (900, 901, 902)
    #: Simulated seconds per validation episode: longer than training episodes, so
    #: that the steady state, not the first minutes of an empty cluster, decides
    #: which network is kept.
    validation_duration_s: float = 600.0
    checkpoint_every: int = 10
    #: How the run was started (recorded in the model file).
    command: str = ""

    def __post_init__(self) -> None:
        names = ("episodes", "k", "batch", "buffer", "train_every", "target_sync", "n_step")
        counts = ("seed", "learn_start", "epsilon_steps", "max_steps", "validate_every")
        integer_fields(self, {**dict.fromkeys(names, 1), **dict.fromkeys(counts, 0)})
        integer_fields(self, {"servers": 1, "n_models": 1, "checkpoint_every": 0})
        integer_tuples(self, ("hidden", "n_models_range"), minimum=1)
        integer_tuples(self, ("validation_seeds",), minimum=0)
        amount_tuples(self, ("memory_mb",))
        for name in names:
            if not getattr(self, name) > 0:
                raise ValueError(f"TrainConfig.{name} = {getattr(self, name)!r} must be > 0")
        if not 0.0 <= self.gamma < 1.0:
            raise ValueError(f"TrainConfig.gamma = {self.gamma} must be in [0, 1)")
        if self.demo_weight < 0 or self.demo_margin < 0:
            raise ValueError(
                f"TrainConfig: demo_weight = {self.demo_weight} and demo_margin = "
                f"{self.demo_margin} must be >= 0"
            )
        if self.demonstrator not in DEMONSTRATORS:
            raise ValueError(
                f"TrainConfig.demonstrator = {self.demonstrator!r}: choose one of "
                f"{', '.join(DEMONSTRATORS)}"
            )
        if not self.lr > 0:
            raise ValueError(f"TrainConfig.lr = {self.lr} must be > 0")
        if not isinstance(self.scale_workload, bool):
            raise TypeError(f"TrainConfig.scale_workload = {self.scale_workload!r} must be a bool")
        if not 0.0 <= self.epsilon_end <= self.epsilon_start <= 1.0:
            raise ValueError("TrainConfig: need 0 <= epsilon_end <= epsilon_start <= 1")
        if self.seed < 0:
            raise ValueError(f"TrainConfig.seed = {self.seed} must be >= 0")
        first = self.episode_seed(0)
        if any(first <= s < first + self.episodes for s in self.validation_seeds):
            raise ValueError("TrainConfig.validation_seeds overlap the training seeds")

    def env_config(self) -> EnvConfig:
        scale = self.servers / REFERENCE_SERVERS if self.scale_workload else 1.0

        def models(n: int) -> int:
            return max(1, int(n * scale))

        models_range = self.n_models_range
        rate_range = self.total_rate_range
        return EnvConfig(
            servers=self.servers,
            duration_s=self.duration_s,
            n_models=models(self.n_models),
            total_rate=self.total_rate * scale,
            n_models_range=None
            if models_range is None
            else (
                models(models_range[0]),
                models(models_range[1]),
            ),
            total_rate_range=None
            if rate_range is None
            else (
                rate_range[0] * scale,
                rate_range[1] * scale,
            ),
            rollout_interval_s=self.rollout_interval_s,
            keep_alive_s=self.keep_alive_s,
            memory_mb=self.memory_mb,
            memory_weights=self.memory_weights,
            k=self.k,
            w_servers=self.w_servers,
            w_bytes=self.w_bytes,
            credit=self.credit,
            server_time_scale_s=self.server_time_scale_s,
            max_steps=self.max_steps,
        )

    def episode_seed(self, episode: int) -> int:
        return 1000 * (self.seed + 1) + episode

    def epsilon(self, step: int) -> float:
        if step < self.learn_start:
            return self.epsilon_start
        share = min(1.0, (step - self.learn_start) / max(self.epsilon_steps, 1))
        return self.epsilon_start + share * (self.epsilon_end - self.epsilon_start)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class EpisodeStats:
    """One training episode, as the progress callback and the log see it."""

    episode: int
    steps: int  # decisions in this episode
    total_steps: int
    episode_return: float
    epsilon: float
    loss: float  # mean TD loss over the episode's updates (nan before learning starts)
    servers_used_mean: float
    bytes_downloaded: int
    validation_return: float | None  # mean greedy return per validation episode, if run
    wall_s: float


@dataclass
class TrainResult:
    model_path: Path
    arrays_path: Path
    curve_path: Path | None  # None when matplotlib is not installed
    log_path: Path
    checkpoints: list[Path]
    episodes: list[EpisodeStats]
    #: Mean return per validation episode of reference policies (first_fit, random).
    baselines: dict[str, float]
    best_validation_return: float
    best_episode: int
    metadata: dict[str, Any]
    wall_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


class ReplayBuffer:
    """Fixed-size ring of transitions with decisions padded to K candidates."""

    def __init__(self, capacity: int, k: int, n_features: int) -> None:
        self.capacity = capacity
        self.k = k
        self.features = np.zeros((capacity, k, n_features), dtype=np.float32)
        self.mask = np.zeros((capacity, k), dtype=np.bool_)
        self.next_features = np.zeros((capacity, k, n_features), dtype=np.float32)
        self.next_mask = np.zeros((capacity, k), dtype=np.bool_)
        self.action = np.zeros(capacity, dtype=np.int64)
        self.demo = np.zeros(capacity, dtype=np.int64)  # the demonstrator's candidate
        self.reward = np.zeros(capacity, dtype=np.float32)
        self.done = np.zeros(capacity, dtype=np.float32)
        self.size = 0
        self.position = 0

    def add(
        self,
        features: npt.NDArray[np.float32],
        action: int,
        reward: float,
        next_features: npt.NDArray[np.float32],
        done: bool,
        demo: int = 0,
    ) -> None:
        i = self.position
        n, m = features.shape[0], next_features.shape[0]
        self.features[i, :n] = features
        self.features[i, n:] = 0.0
        self.mask[i] = False
        self.mask[i, :n] = True
        self.next_features[i, :m] = next_features
        self.next_features[i, m:] = 0.0
        self.next_mask[i] = False
        self.next_mask[i, :m] = True
        self.action[i] = action
        self.demo[i] = demo
        self.reward[i] = reward
        self.done[i] = float(done or m == 0)
        self.position = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        rows = rng.integers(0, self.size, size=batch)
        return {
            "features": torch.from_numpy(self.features[rows]),
            "mask": torch.from_numpy(self.mask[rows]),
            "next_features": torch.from_numpy(self.next_features[rows]),
            "next_mask": torch.from_numpy(self.next_mask[rows]),
            "action": torch.from_numpy(self.action[rows]),
            "demo": torch.from_numpy(self.demo[rows]),
            "reward": torch.from_numpy(self.reward[rows]),
            "done": torch.from_numpy(self.done[rows]),
        }


def _greedy(net: ScoreNet, features: npt.NDArray[np.float32]) -> int:
    with torch.inference_mode():
        scores = net(torch.from_numpy(features))
    return int(torch.argmax(scores).item())


def run_episode(
    env: PlacementEnv, seed: int, choose: Callable[[Observation], int]
) -> tuple[float, dict[str, Any]]:
    """Return and final simulator metrics of one episode under a fixed policy."""
    observation = env.reset(seed=seed)
    total = 0.0
    info: dict[str, Any] = {}
    done = observation.servers.shape[0] == 0
    while not done:
        observation, reward, terminated, truncated, info = env.step(choose(observation))
        total += reward + sum(env.credit(seconds) for _, seconds in info.get("server_time", ()))
        done = terminated or truncated
    return total, info.get("metrics", {})


def _store_episode(
    buffer: ReplayBuffer,
    features: list[npt.NDArray[np.float32]],
    actions: list[int],
    rewards: list[float],
    config: TrainConfig,
) -> None:
    """Adds an episode's n-step transitions to the buffer. Episodes are stored when they
    end, because server-time credits arrive after their decisions. The last decisions
    of a truncated episode are stored as terminal (their next state is unknown)."""
    n, gamma = config.n_step, config.gamma
    empty = np.zeros((0, N_FEATURES), dtype=np.float32)
    demonstrate = DEMONSTRATORS[config.demonstrator]
    for t in range(len(actions)):
        window = rewards[t : t + n]
        value = sum(gamma**i * r for i, r in enumerate(window))
        demo = demonstrate(features[t]) if config.demo_weight > 0 else 0
        if t + n < len(actions):
            buffer.add(features[t], actions[t], value, features[t + n], False, demo)
        else:
            buffer.add(features[t], actions[t], value, empty, True, demo)


def _loss(
    net: ScoreNet, target: ScoreNet, batch: dict[str, torch.Tensor], config: TrainConfig
) -> torch.Tensor:
    """Huber TD loss (double DQN, n-step) plus the optional margin loss towards
    the demonstrator's candidate."""
    gamma = config.gamma**config.n_step
    q = net(batch["features"])  # (B, K)
    q_taken = q.gather(1, batch["action"].unsqueeze(1)).squeeze(1)
    with torch.no_grad():
        next_mask = batch["next_mask"]
        online_next = net(batch["next_features"]).masked_fill(~next_mask, -torch.inf)
        best = online_next.argmax(dim=1, keepdim=True)
        target_next = target(batch["next_features"]).gather(1, best).squeeze(1)
        target_next = torch.where(next_mask.any(dim=1), target_next, torch.zeros_like(target_next))
        y = batch["reward"] + gamma * (1.0 - batch["done"]) * target_next
    loss = torch.nn.functional.smooth_l1_loss(q_taken, y)
    if config.demo_weight > 0:
        demo = batch["demo"].unsqueeze(1)
        margins = torch.full_like(q, config.demo_margin).scatter(1, demo, 0.0)
        best = (q + margins).masked_fill(~batch["mask"], -torch.inf).max(dim=1).values
        loss = loss + config.demo_weight * (best - q.gather(1, demo).squeeze(1)).mean()
    return loss


def _checkpoint(
    path: Path,
    net: ScoreNet,
    target: ScoreNet,
    optimiser: torch.optim.Optimizer,
    config: TrainConfig,
    episode: int,
    step: int,
) -> None:
    with atomic_file(path) as file:
        torch.save(
            {
                "net": net.state_dict(),
                "target": target.state_dict(),
                "optimiser": optimiser.state_dict(),
                "config": config.to_dict(),
                "episode": episode,
                "step": step,
            },
            file,
        )


def train(
    config: TrainConfig,
    out: str | os.PathLike[str] = "out/optimizer",
    progress: Callable[[EpisodeStats], None] | None = None,
    *,
    initial: ScoreNet | None = None,
    initial_record: dict[str, Any] | None = None,
) -> TrainResult:
    """Trains a resource optimizer; writes model.pt, model.npz, training_curve.png,
    training_log.json and checkpoints/ under ``out``; returns what it wrote.

    With ``initial`` (fine-tuning, e.g. retraining from the allocator's feedback), the
    network starts from a copy of it and keeps its feature normalisation; validation
    then also scores ``initial`` (baseline "initial"), and the result is the initial
    network itself (``best_episode == -1``) unless an episode's network validates
    strictly better. ``initial_record`` (say, the initial model's path, command and
    weights digest) is stored in the model's metadata as ``initial_model``, so that a
    fine-tuned model says what it was tuned from.
    """
    started = time.perf_counter()
    out_dir = Path(out)
    (out_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng([config.seed, 7])

    env = PlacementEnv(config.env_config())
    validation_env = PlacementEnv(
        dataclasses.replace(config.env_config(), duration_s=config.validation_duration_s)
    )
    net = ScoreNet(N_FEATURES, config.hidden) if initial is None else copy.deepcopy(initial)
    target = copy.deepcopy(net)
    optimiser = torch.optim.Adam(net.parameters(), lr=config.lr)
    buffer = ReplayBuffer(config.buffer, config.k, N_FEATURES)

    def validate(choose: Callable[[Observation], int]) -> float:
        values = []
        for seed in config.validation_seeds:
            total, _ = run_episode(validation_env, seed, choose)
            validation_env.close()
            values.append(total)
        return float(np.mean(values))

    baselines: dict[str, float] = {}
    if config.validate_every:
        baselines["first_fit"] = validate(lambda observation: 0)
        baseline_rng = np.random.default_rng([config.seed, 8])
        baselines["random"] = validate(
            lambda observation: int(baseline_rng.integers(observation.servers.shape[0]))
        )

    step = 0
    normalised = config.learn_start == 0 or initial is not None
    history: list[EpisodeStats] = []
    checkpoints: list[Path] = []
    best_return = -np.inf
    best_state = copy.deepcopy(net.state_dict())
    best_episode = -1
    if initial is not None and config.validate_every:
        baselines["initial"] = best_return = validate(lambda o: _greedy(initial, o.features))
    warm_rows: list[npt.NDArray[np.float32]] = []
    try:
        for episode in range(config.episodes):
            episode_started = time.perf_counter()
            observation = env.reset(seed=config.episode_seed(episode))
            total, steps, losses = 0.0, 0, []
            seen: list[npt.NDArray[np.float32]] = []
            actions: list[int] = []
            rewards: list[float] = []
            info: dict[str, Any] = {}
            done = observation.servers.shape[0] == 0
            while not done:
                features = observation.features
                epsilon = config.epsilon(step)
                if rng.random() < epsilon or not normalised:
                    action = int(rng.integers(features.shape[0]))
                else:
                    action = _greedy(net, features)
                observation, reward, terminated, truncated, info = env.step(action)
                done = terminated or truncated
                seen.append(features)
                actions.append(action)
                rewards.append(reward)
                for decision, seconds in info.get("server_time", ()):
                    rewards[decision] += env.credit(seconds)
                    total += env.credit(seconds)
                total += reward
                steps += 1
                step += 1
                if not normalised:
                    warm_rows.append(features)
                    if step >= config.learn_start:
                        rows = np.concatenate(warm_rows)
                        for model in (net, target):
                            model.set_normalisation(rows.mean(axis=0), rows.std(axis=0))
                        warm_rows.clear()
                        normalised = True
                if normalised and buffer.size >= config.batch and step % config.train_every == 0:
                    batch = buffer.sample(config.batch, rng)
                    loss = _loss(net, target, batch, config)
                    optimiser.zero_grad()
                    loss.backward()  # type: ignore[no-untyped-call]
                    torch.nn.utils.clip_grad_norm_(net.parameters(), 10.0)
                    optimiser.step()
                    losses.append(float(loss.item()))
                if step % config.target_sync == 0:
                    target.load_state_dict(net.state_dict())
            env.close()
            _store_episode(buffer, seen, actions, rewards, config)

            validation_return = None
            last = episode == config.episodes - 1
            if config.validate_every and ((episode + 1) % config.validate_every == 0 or last):
                validation_return = validate(lambda o: _greedy(net, o.features))
                if validation_return > best_return:
                    best_return = validation_return
                    best_state = copy.deepcopy(net.state_dict())
                    best_episode = episode
            elif not config.validate_every:
                best_state, best_episode = copy.deepcopy(net.state_dict()), episode
            metrics = info.get("metrics", {})
            stats = EpisodeStats(
                episode=episode,
                steps=steps,
                total_steps=step,
                episode_return=total,
                epsilon=config.epsilon(step),
                loss=float(np.mean(losses)) if losses else float("nan"),
                servers_used_mean=float(metrics.get("servers_used_mean", float("nan"))),
                bytes_downloaded=int(metrics.get("bytes_downloaded", 0)),
                validation_return=validation_return,
                wall_s=time.perf_counter() - episode_started,
            )
            history.append(stats)
            if progress is not None:
                progress(stats)
            if (episode + 1) % config.checkpoint_every == 0 or last:
                path = out_dir / "checkpoints" / f"episode_{episode + 1:04d}.pt"
                _checkpoint(path, net, target, optimiser, config, episode, step)
                checkpoints.append(path)
    finally:
        env.close()
        validation_env.close()

    net.load_state_dict(best_state)
    metadata = {
        "training_command": config.command or f"fastplace.optimizer.train.train({config!r})",
        "seed": config.seed,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "train_config": config.to_dict(),
        "hidden": [int(m.out_features) for m in net.layers if isinstance(m, torch.nn.Linear)][:-1],
        "best_episode": best_episode,
        "best_validation_return": None if best_episode < 0 else best_return,
        "baselines_validation_return": baselines,
        "decisions": step,
    }
    if initial_record is not None:
        metadata["initial_model"] = initial_record
    model_path = out_dir / "model.pt"
    arrays_path = out_dir / "model.npz"
    with warnings.catch_warnings():
        # torch 2.13 deprecates TorchScript; not something a `fastplace train` user can act on.
        warnings.filterwarnings("ignore", _JIT_DEPRECATION, DeprecationWarning)
        record = save_model(net, model_path, metadata, arrays_path=arrays_path)
    curve_file = out_dir / "training_curve.png"
    title = curve_title(config.episodes, step, config.seed)
    curve_path: Path | None = curve_file
    try:
        plot_curve(history, baselines, curve_file, title, learn_start=config.learn_start)
    except MissingExtra:  # no matplotlib (extra fastplace[cli]): the model matters, not the plot
        curve_path = None
    log_path = out_dir / "training_log.json"
    wall = time.perf_counter() - started
    log = {
        "metadata": record,
        "wall_s": wall,
        "episodes": [asdict(e) for e in history],
    }
    write_atomic(log_path, json.dumps(log, indent=2, default=float) + "\n")
    return TrainResult(
        model_path=model_path,
        arrays_path=arrays_path,
        curve_path=curve_path,
        log_path=log_path,
        checkpoints=checkpoints,
        episodes=history,
        baselines=baselines,
        best_validation_return=float(best_return),
        best_episode=best_episode,
        metadata=record,
        wall_s=wall,
    )
