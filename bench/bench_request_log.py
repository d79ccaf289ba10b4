"""Request logs: loading a million rows, and simulating two days of requests.

Run: PYTHONPATH=src python3 -m pytest bench/bench_request_log.py --benchmark-enable \
        --benchmark-only --benchmark-json=build/bench-request-log.json
     python3 bench/summarise.py build/bench-request-log.json

- ``load``: ``request_log_workload`` on a log of 1,000,000 rows (timestamp as seconds,
  200 models, version and duration columns; written once from the synthetic workload),
  and on the same requests with ISO 8601 date-time timestamps.
- ``simulate``: one policy on a request log of two days and about 50,000 requests to
  24 models (0.29 requests/s, a version every 5 minutes per model: ~13,800 rollouts),
  150 servers, for the log's span: what a user's log of days costs per policy.

With ``--benchmark-disable`` (CI) the logs are 20,000 rows and two simulated hours, so
the answer checks still run there.
"""

from __future__ import annotations

import csv
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fastplace.sim import SimConfig, Workload, simulate, synthetic_workload
from fastplace.sim.request_log import request_log_workload, write_request_log

DAY = 86_400.0


def full_size(config: pytest.Config) -> bool:
    enabled = config.getoption("benchmark_enable", default=False)
    return bool(enabled or not config.getoption("benchmark_disable", default=True))


def synthetic_log(path: Path, *, rows: int, duration_s: float, models: int) -> Workload:
    workload = synthetic_workload(
        duration_s=duration_s,
        n_models=models,
        total_rate=rows / duration_s,
        rollout_interval_s=300.0,
        seed=11,
    )
    write_request_log(workload, path, digits=3)
    return workload


def with_date_times(source: Path, target: Path) -> None:
    start = datetime(2021, 1, 31, tzinfo=timezone.utc)
    with open(source, newline="") as inp, open(target, "w", newline="") as out:
        reader, writer = csv.reader(inp), csv.writer(out, lineterminator="\n")
        writer.writerow(next(reader))
        for t, *rest in reader:
            writer.writerow([(start + timedelta(seconds=float(t))).isoformat(), *rest])


@pytest.fixture(scope="module")
def million(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, int]:
    rows = 1_000_000 if full_size(request.config) else 20_000
    path = tmp_path_factory.mktemp("logs") / "million.csv"
    workload = synthetic_log(path, rows=rows, duration_s=2 * DAY, models=200)
    return path, workload.n_requests


@pytest.mark.parametrize("form", ["seconds", "date-times"])
def test_load_request_log(benchmark: Any, million: tuple[Path, int], form: str) -> None:
    path, rows = million
    if form == "date-times":
        path = path.with_name("million-iso.csv")
        if not path.exists():
            with_date_times(million[0], path)
    benchmark.group = f"request_log_workload, {rows:,} rows"
    workload = benchmark.pedantic(request_log_workload, args=(path,), rounds=1)
    benchmark.extra_info.update(calls=rows, baseline=form == "seconds")
    assert workload.n_requests == rows
    assert (np.diff(workload.arrival_s) >= 0).all() and workload.arrival_s[0] == 0.0
    assert workload.rollout_s.shape[0] > 0


@pytest.fixture(scope="module")
def two_days(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Workload:
    duration = 2 * DAY if full_size(request.config) else 7_200.0
    path = tmp_path_factory.mktemp("logs") / "two-days.csv"
    synthetic_log(path, rows=int(0.29 * duration), duration_s=duration, models=24)
    return request_log_workload(path)


@pytest.mark.parametrize("policy", ["first_fit", "similarity", "hybrid"])
def test_simulate_request_log(benchmark: Any, two_days: Workload, policy: str) -> None:
    config = SimConfig(duration_s=two_days.span_s or 1.0)
    benchmark.group = (
        f"simulate a request log: {two_days.n_requests:,} requests over "
        f"{config.duration_s / 3600:.0f} h, {config.servers} servers"
    )
    result = benchmark.pedantic(simulate, args=(config, two_days, policy), rounds=1)
    benchmark.extra_info.update(calls=two_days.n_requests, baseline=policy == "first_fit")
    assert result["requests"] == two_days.n_requests
    assert result["cold_starts"] > 0 and result["rejected"] == 0
