"""Writes a request log (timestamp,model,version,duration) from the synthetic workload.

The shipped example, ``src/fastplace/sim/data/requests_small.csv``, is this script's
output on its defaults:

    python examples/make_request_log.py src/fastplace/sim/data/requests_small.csv

One row per request: its arrival (seconds, to the millisecond), its model, the version
its model was at by the synthetic workload's rollout schedule (``v1``, ``v2``, ...) and
its service time (seconds, to the millisecond); see ``fastplace.sim.request_log``.
Bigger logs: ``--duration 172800 --rate 0.29 --models 24`` is two days of about 50,000
requests.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from fastplace.sim import synthetic_workload
from fastplace.sim.request_log import write_request_log


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
    write_request_log(workload, args.out, digits=3)
    print(f"wrote {args.out}: {workload.n_requests:,} requests to {len(workload.models)} models")


if __name__ == "__main__":
    main()
