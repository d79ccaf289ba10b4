"""fastplace vs the schedulers you run today: the peers (fastplace.sim.peers) and
fastplace's policies on the same simulated runs, as one markdown table.

Each (workload, seed) run is ``fastplace.sim.compare`` on the default cluster (150
servers unless --servers), every policy on the same workload and seed, exactly what
``fastplace simulate --policies ... --seed S`` runs. Decision time per placement is the
simulator's own measure for every policy alike: the wall time of each ``place_gang``
(booking included) divided by the containers it placed, median over the run. The table
shows each metric's mean over the runs; --json keeps every run's row.

    PYTHONPATH=src nice -n 10 python3 bench/peers_table.py --out build/peers.md
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

GIB = 1 << 30
DEFAULT_POLICIES = "first_fit,locality,similarity,hybrid,peers"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="100,101,102", help="workload/cluster seeds")
    parser.add_argument("--workloads", default="synthetic,azure2019")
    parser.add_argument("--policies", default=DEFAULT_POLICIES, help="'peers' = every peer")
    parser.add_argument("--duration", type=float, default=600.0, help="simulated seconds")
    parser.add_argument("--servers", type=int, default=150)
    parser.add_argument("--out", type=Path, default=None, help="markdown table to write")
    parser.add_argument("--json", type=Path, default=None, help="every run's rows to write")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    from fastplace.cli.simulate import expand_policies
    from fastplace.sim import SimConfig, compare, load_workload

    names = expand_policies(args.policies)
    rows: list[dict[str, Any]] = []
    for workload_name in args.workloads.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            workload = load_workload(workload_name, duration_s=args.duration, seed=seed)
            config = SimConfig(servers=args.servers, duration_s=args.duration, seed=seed)
            started = time.perf_counter()
            results = compare(config, workload, names)
            print(
                f"{workload_name} seed {seed}: {workload.n_requests:,} requests, "
                f"{time.perf_counter() - started:.0f} s",
                file=sys.stderr,
                flush=True,
            )
            for name, metrics in results.items():
                rows.append({"workload": workload_name, "seed": seed, "policy": name, **metrics})
    return rows


def table(rows: list[dict[str, Any]]) -> list[str]:
    """One row per (workload, policy): each metric's mean over the seeds."""
    lines = [
        "| workload | policy | mean active servers | cold-start GiB | cold start p50 s "
        "| cold start p99 s | request p99 s | rejected | decision p50 us |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for workload in dict.fromkeys(r["workload"] for r in rows):
        for policy in dict.fromkeys(r["policy"] for r in rows):
            runs = [r for r in rows if r["workload"] == workload and r["policy"] == policy]
            if not runs:
                continue

            def mean(key: str, runs: list[dict[str, Any]] = runs) -> float:
                return sum(float(r[key]) for r in runs) / len(runs)

            lines.append(
                f"| {workload} | {policy} | {mean('servers_used_mean'):.1f} "
                f"| {mean('bytes_downloaded') / GIB:,.0f} | {mean('cold_start_p50_s'):.2f} "
                f"| {mean('cold_start_p99_s'):.2f} | {mean('request_p99_s'):.2f} "
                f"| {mean('rejected'):.0f} | {mean('decision_p50_ns') / 1000:.1f} |"
            )
    return lines


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    rows = run(args)
    command = "PYTHONPATH=src python3 bench/peers_table.py " + shlex.join(sys.argv[1:])
    text = "\n".join(
        [
            f"Command: `{command.strip()}` ({(time.perf_counter() - started) / 60:.1f} min); "
            f"{args.servers} servers, {args.duration:g} s, seeds {args.seeds}, means over seeds.",
            "",
            *table(rows),
        ]
    )
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
