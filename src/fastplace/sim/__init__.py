"""Discrete-event simulation of serverless DI serving, every policy side by side.

>>> from fastplace.sim import SimConfig, compare, synthetic_workload
>>> config = SimConfig(servers=40, duration_s=60)
>>> results = compare(config, synthetic_workload(duration_s=60, n_models=4, total_rate=20),
...                   ["first_fit", "similarity"])
>>> sorted(results)
['first_fit', 'similarity']
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fastplace.sim.config import SimConfig
from fastplace.sim.policies import POLICIES, Policy, make_policy
from fastplace.sim.request_log import RequestLogError, request_log_workload
from fastplace.sim.workload import DIModel, Partition, Workload, synthetic_workload

__all__ = [
    "POLICIES",
    "DIModel",
    "Partition",
    "Policy",
    "RequestLogError",
    "SimConfig",
    "Workload",
    "compare",
    "is_request_log",
    "load_workload",
    "make_policy",
    "request_log_workload",
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


def load_workload(
    name: str,
    *,
    duration_s: float | None = None,
    seed: int = 0,
    columns: Mapping[str, str] | None = None,
    rollout_interval_s: float | None = None,
) -> Workload:
    """A workload by name: ``synthetic``, ``azure2019`` (the shipped excerpt), a
    directory or ``PREFIX`` of Azure-2019-format CSVs (``PREFIX_inv.csv`` ...), or else a
    request-log CSV file (:func:`request_log_workload`, with ``columns``).

    ``duration_s`` is how much of a generated workload or Azure 2019 trace to make
    (None: 600 s); a request log is read whole, and its ``span_s`` is how long it lasts.
    ``rollout_interval_s`` None keeps each kind's default schedule (synthetic 120 s,
    the traces 300 s).
    """
    generated_s = 600.0 if duration_s is None else duration_s
    if is_request_log(name):
        interval = 300.0 if rollout_interval_s is None else rollout_interval_s
        return request_log_workload(name, columns=columns, rollout_interval_s=interval, seed=seed)
    if columns is not None:
        raise ValueError(f"columns = {dict(columns)!r}: only a request log has columns")
    if name == "synthetic":
        interval = 120.0 if rollout_interval_s is None else rollout_interval_s
        return synthetic_workload(duration_s=generated_s, rollout_interval_s=interval, seed=seed)
    from fastplace.sim.azure2019 import azure2019_workload

    interval = 300.0 if rollout_interval_s is None else rollout_interval_s
    source = None if name == "azure2019" else name
    return azure2019_workload(
        source, duration_s=generated_s, rollout_interval_s=interval, seed=seed
    )


def is_request_log(name: str) -> bool:
    """Whether :func:`load_workload` reads ``name`` as a request log: not a workload's
    name, an Azure trace directory nor the PREFIX of one's files, and either something
    at that path or a path ending in ``.csv``."""
    if name in ("synthetic", "azure2019") or os.path.isdir(name):
        return False
    if any(os.path.exists(f"{name}_{kind}.csv") for kind in ("inv", "mem", "run")):
        return False
    return os.path.lexists(name) or name.lower().endswith(".csv")
