"""Writes a request log (timestamp,model,version,duration) from the synthetic workload.

The shipped example, ``src/fastplace/sim/data/requests_small.csv``, is this script's
output on its defaults:

    python examples/make_request_log.py src/fastplace/sim/data/requests_small.csv

One row per request: its arrival (seconds from the start, to the millisecond), its
model, the version its model was at by the synthetic workload's rollout schedule
(``v1``, ``v2``, ...), and its service time (seconds, to the millisecond). Reading the
log back with ``fastplace.sim.request_log_workload`` gives the same requests, with each
rollout at the first request after it (bigger logs: ``--duration 172800 --rate 0.29``
is two days of about 50,000 requests).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from fastplace.sim import Workload, synthetic_workload


def scheduled_versions(workload: Workload) -> list[int]:
    """The version of each request's model at its arrival, by the rollout schedule
    (the simulator's first rollout of a model is at its offset, or its interval)."""
    versions = []
    for t, m in zip(workload.arrival_s.tolist(), workload.arrival_model.tolist(), strict=True):
        model = workload.models[m]
        interval = model.rollout_interval_s
        first = model.rollout_offset_s or interval
        versions.append(0 if interval == 0 or t < first else 1 + int((t - first) // interval))
    return versions


def write_log(workload: Workload, path: Path, digits: int = 3) -> None:
    versions = scheduled_versions(workload)
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(["timestamp", "model", "version", "duration"])
        for t, m, v, s in zip(
            np.round(workload.arrival_s, digits).tolist(),
            workload.arrival_model.tolist(),
            versions,
            np.round(workload.service_s, digits).tolist(),
            strict=True,
        ):
            writer.writerow(
                [f"{t:.{digits}f}", workload.models[m].name, f"v{v + 1}", f"{s:.{digits}f}"]
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the CSV file to write")
    parser.add_argument("--duration", type=float, default=600.0, help="seconds (600)")
    parser.add_argument("--models", type=int, default=12, help="models (12)")
    parser.add_argument("--rate", type=float, default=5.0, help="requests per second (5)")
    parser.add_argument("--rollout-interval", type=float, default=120.0, help="seconds (120)")
    parser.add_argument("--seed", type=int, default=13, help="random seed (13)")
    args = parser.parse_args()
    workload = synthetic_workload(
        duration_s=args.duration,
        n_models=args.models,
        total_rate=args.rate,
        rollout_interval_s=args.rollout_interval,
        seed=args.seed,
    )
    write_log(workload, args.out)
    print(f"wrote {args.out}: {workload.n_requests:,} requests to {len(workload.models)} models")


if __name__ == "__main__":
    main()
