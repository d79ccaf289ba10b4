"""The RO training environment: determinism, the reward formula, episode bookkeeping."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from fastplace.optimizer import N_FEATURES
from fastplace.optimizer.env import EnvConfig, PlacementEnv

TINY = EnvConfig(servers=12, duration_s=20.0, n_models=4, total_rate=12.0, rollout_interval_s=8.0)


def rollout(env: PlacementEnv, seed: int, actions: int = 10_000) -> list[tuple[object, ...]]:
    """(features, servers, reward, terminated, truncated) per step, actions from a seeded RNG."""
    rng = np.random.default_rng(seed)
    observation = env.reset(seed=seed)
    trace: list[tuple[object, ...]] = []
    for _ in range(actions):
        action = int(rng.integers(observation.servers.shape[0]))
        observation, reward, terminated, truncated, _ = env.step(action)
        trace.append(
            (observation.features.tobytes(), observation.servers.tolist(), reward, terminated)
        )
        if terminated or truncated:
            break
    return trace


def test_an_episode_is_deterministic_for_its_seed() -> None:
    with PlacementEnv(TINY) as env:
        first = rollout(env, 3)
        second = rollout(env, 3)
        other = rollout(env, 4)
    assert len(first) > 20
    assert first[-1][3] is True  # ran to the end of simulated time
    assert first == second
    assert first != other


def test_observations_and_reward_formula() -> None:
    config = EnvConfig(**{**TINY.to_dict(), "w_servers": 2.0, "w_bytes": 3.0})
    with PlacementEnv(config) as env:
        observation = env.reset(seed=1)
        assert env.simulation is not None
        blocks = env.simulation.blocks
        for _ in range(30):
            features, servers = observation
            assert features.shape == (servers.shape[0], N_FEATURES) and features.dtype == np.float32
            assert 0 < servers.shape[0] <= config.k
            assert (np.diff(servers) > 0).all()
            pending = env._current
            assert pending is not None
            file_bytes = int(blocks.missing_bytes(int(servers[-1]), pending.block_ids)) + int(
                blocks.cached_bytes_on(servers[-1:], pending.block_ids)[0]
            )
            observation, reward, terminated, _, info = env.step(servers.shape[0] - 1)
            assert info["server"] == servers[-1]
            expected = -2.0 * info["active_delta"] - 3.0 * info["downloaded_bytes"] / file_bytes
            assert reward == pytest.approx(expected)
            if terminated:
                break


def test_server_time_credits_add_up_to_the_active_server_time() -> None:
    config = EnvConfig(**{**TINY.to_dict(), "credit": "server_time", "w_servers": 2.0})
    rng = np.random.default_rng(0)
    with PlacementEnv(config) as env:
        observation = env.reset(seed=5)
        credited: dict[int, float] = {}
        steps, done = 0, False
        while not done:
            action = int(rng.integers(observation.servers.shape[0]))
            observation, reward, terminated, truncated, info = env.step(action)
            # The step reward is the bytes term alone: in [-w_bytes, 0].
            assert -config.w_bytes - 1e-12 <= reward <= 0.0
            for decision, seconds in info["server_time"]:
                assert 0 <= decision <= steps and decision not in credited
                assert seconds >= 0
                credited[decision] = seconds
            steps += 1
            done = terminated or truncated
    metrics = info["metrics"]
    # Every decision's container is charged once (no gang failed half-way in this
    # episode: such containers are never booked), and the shares sum to the
    # simulator's integral of active servers over time.
    assert sorted(credited) == list(range(steps))
    assert sum(credited.values()) == pytest.approx(
        metrics["servers_used_mean"] * config.duration_s, rel=1e-9
    )
    assert env.credit(60.0) == -2.0


def test_step_checks_its_action_and_needs_a_reset() -> None:
    with PlacementEnv(TINY) as env:
        with pytest.raises(RuntimeError, match="reset"):
            env.step(0)
        observation = env.reset(seed=0)
        with pytest.raises(ValueError, match="not a candidate index"):
            env.step(observation.servers.shape[0])


def test_truncation_and_abandoned_episodes_leave_no_thread() -> None:
    before = threading.active_count()
    env = PlacementEnv(EnvConfig(**{**TINY.to_dict(), "max_steps": 5}))
    env.reset(seed=2)
    for i in range(5):
        observation, _, terminated, truncated, _ = env.step(0)
        assert not terminated
        assert truncated == (i == 4)
    assert observation.servers.shape == (0,)
    env.reset(seed=2)
    env.step(0)
    env.reset(seed=3)  # abandons the running episode
    env.close()
    assert threading.active_count() == before


def test_per_episode_regimes_are_drawn_from_the_seed_within_the_ranges() -> None:
    config = EnvConfig(
        **{**TINY.to_dict(), "n_models_range": (2, 9), "total_rate_range": (3.0, 30.0)}
    )
    env = PlacementEnv(config)
    regimes = [env.regime(seed) for seed in range(200)]
    assert regimes == [env.regime(seed) for seed in range(200)]
    assert {n for n, _ in regimes} == set(range(2, 10))
    assert all(3.0 <= rate <= 30.0 for _, rate in regimes)
    assert PlacementEnv(TINY).regime(7) == (TINY.n_models, TINY.total_rate)
    observation = env.reset(seed=11)
    assert env.simulation is not None
    assert len(env.simulation.workload.models) == env.regime(11)[0]
    assert observation.servers.shape[0] > 0
    env.close()


def test_config_is_checked() -> None:
    with pytest.raises(ValueError, match="servers"):
        EnvConfig(servers=0)
    with pytest.raises(ValueError, match="max_steps"):
        EnvConfig(max_steps=-1)
    with pytest.raises(ValueError, match="credit"):
        EnvConfig(credit="bogus")
    with pytest.raises(ValueError, match="total_rate_range"):
        EnvConfig(total_rate_range=(5.0, 1.0))
