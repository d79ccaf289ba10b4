"""``fastplace simulate``: every placement policy on the same serverless DI workload."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from fastplace.cli.common import positive_int

__all__ = ["add_parser", "run"]

DEFAULT_POLICIES = "first_fit,best_fit,dot_product,l2_norm,similarity,locality,random,hybrid"


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "simulate",
        help="compare placement policies on a simulated serverless DI cluster",
        description=(
            "Replays a serverless DI workload (requests, cold and warm starts, version "
            "rollouts) once per policy on the same cluster and seed, then prints the "
            "metrics side by side and writes metrics.json and metrics.png to --out."
        ),
    )
    parser.add_argument("--policies", default=DEFAULT_POLICIES, help=f"({DEFAULT_POLICIES})")
    parser.add_argument(
        "--workload",
        default="synthetic",
        help="synthetic (default), azure2019 (shipped excerpt) or a path to Azure-format CSVs",
    )
    parser.add_argument("--servers", type=positive_int, default=None, help="servers (150)")
    parser.add_argument("--duration", type=float, default=600.0, help="simulated seconds (600)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (0)")
    parser.add_argument("--out", type=Path, default=Path("out"), help="output directory (out)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from fastplace.cli import CommandError
    from fastplace.sim import POLICIES, SimConfig, compare, load_workload
    from fastplace.sim.azure2019 import TraceFormatError
    from fastplace.sim.report import plot, print_table, write_json

    names = [p.strip() for p in args.policies.split(",") if p.strip()]
    unknown = [p for p in names if p not in POLICIES]
    if not names or unknown:
        raise CommandError(
            f"--policies: unknown {', '.join(unknown) or '(empty)'}; "
            f"choose from {', '.join(POLICIES)}"
        )
    if not args.duration > 0:
        raise CommandError(f"--duration = {args.duration} must be > 0")
    try:
        workload = load_workload(args.workload, duration_s=args.duration, seed=args.seed)
    except TraceFormatError as error:
        raise CommandError(str(error)) from None
    config = SimConfig(
        seed=args.seed,
        duration_s=args.duration,
        **({"servers": args.servers} if args.servers else {}),
    )
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CommandError(f"--out {args.out}: {error.strerror}") from None

    with Progress(
        TextColumn("{task.description:<12}"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}% of simulated time"),
        TimeElapsedColumn(),
        transient=True,
    ) as bar:
        tasks = {name: bar.add_task(name, total=config.duration_s) for name in names}
        results = compare(
            config,
            workload,
            names,
            progress=lambda name, t: bar.update(tasks[name], completed=t),
        )
    title = (
        f"{workload.name} workload: {workload.n_requests:,} requests, "
        f"{len(workload.models)} models, {config.servers} servers, {config.duration_s:g} s"
    )
    print_table(results, title)
    write_json(results, args.out / "metrics.json", config=config.to_dict(), workload=workload.name)
    plot(results, args.out / "metrics.png", title)
    print(f"wrote {args.out / 'metrics.json'} and {args.out / 'metrics.png'}")
    return 0
