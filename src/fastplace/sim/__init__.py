"""Discrete-event simulation of serverless DI serving, every policy side by side.

>>> from fastplace.sim import SimConfig, compare, synthetic_workload
>>> config = SimConfig(servers=40, duration_s=60)
>>> results = compare(config, synthetic_workload(duration_s=60, n_models=4, total_rate=20),
...                   ["first_fit", "similarity"])
>>> sorted(results)
['first_fit', 'similarity']
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from fastplace.sim.config import SimConfig
from fastplace.sim.policies import POLICIES, Policy, make_policy
from fastplace.sim.workload import DIModel, Partition, Workload, synthetic_workload

__all__ = [
    "POLICIES",
    "DIModel",
    "Partition",
    "Policy",
    "SimConfig",
    "Workload",
    "compare",
    "load_workload",
    "make_policy",
    "simulate",
    "synthetic_workload",
]


def simulate(
    config: SimConfig,
    workload: Workload,
    policy: str | Policy,
    *,
    progress: Callable[[float], None] | None = None,
) -> dict[str, Any]:
    """Runs one policy on a fresh cluster; returns its metrics (see metrics.py)."""
    from fastplace.sim.engine import Simulation

    chosen = make_policy(policy) if isinstance(policy, str) else policy
    return Simulation(config, workload, chosen).run(progress)


def compare(
    config: SimConfig,
    workload: Workload,
    policies: Sequence[str | Policy],
    *,
    progress: Callable[[str, float], None] | None = None,
) -> dict[str, dict[str, Any]]:
    """Every policy on the same workload, cluster and seed: {policy name: metrics}."""
    chosen = [make_policy(p) if isinstance(p, str) else p for p in policies]
    results: dict[str, dict[str, Any]] = {}
    for policy in chosen:
        report = None if progress is None else (lambda t, name=policy.name: progress(name, t))
        results[policy.name] = simulate(config, workload, policy, progress=report)
    return results


def load_workload(name: str, *, duration_s: float, seed: int = 0) -> Workload:
    """``synthetic``, ``azure2019`` (the shipped excerpt) or a path to Azure-format CSVs."""
    if name == "synthetic":
        return synthetic_workload(duration_s=duration_s, seed=seed)
    from fastplace.sim.azure2019 import azure2019_workload

    if name == "azure2019":
        return azure2019_workload(None, duration_s=duration_s, seed=seed)
    return azure2019_workload(name, duration_s=duration_s, seed=seed)
