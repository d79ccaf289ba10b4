"""Simulator throughput: container placements per minute of wall time.

Run: PYTHONPATH=src python3 -m pytest bench/bench_sim.py --benchmark-enable \
        --benchmark-only --benchmark-json=build/bench-sim.json
     python3 bench/summarise.py build/bench-sim.json

With keep-alive 0 every request cold-starts all of its model's partitions, so the run
is all placements (plus block fetches, which every cold start does). The summary's
"per second" column x 60 is placements per minute.
"""

from __future__ import annotations

from typing import Any

import pytest

from fastplace.sim import SimConfig, simulate, synthetic_workload


@pytest.mark.parametrize("policy", ["first_fit", "similarity"])
def test_simulator_placements(benchmark: Any, policy: str) -> None:
    config = SimConfig(servers=1000, duration_s=10.0, keep_alive_s=0.0)
    workload = synthetic_workload(duration_s=10.0, total_rate=1000.0, n_models=50, seed=3)
    benchmark.group = "simulator, 1,000 servers, every request cold (keep-alive 0)"
    result = benchmark.pedantic(simulate, args=(config, workload, policy), rounds=1)
    benchmark.extra_info.update(calls=result["placements"], baseline=policy == "first_fit")
    assert result["placements"] == result["cold_starts"] > 10_000
    assert result["requests"] == workload.n_requests
