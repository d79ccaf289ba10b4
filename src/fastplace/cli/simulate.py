"""``fastplace simulate``: every placement policy on the same serverless DI workload."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from fastplace.cli.common import positive_int

__all__ = ["add_parser", "run"]

DEFAULT_POLICIES = "first_fit,best_fit,dot_product,l2_norm,similarity,locality,random,hybrid"

#: The longest simulation --duration accepts: one day is about 5 million requests of
#: the synthetic workload, minutes per policy (longer runs: fastplace.sim directly).
MAX_DURATION_S = 86_400.0

#: The workloads known by name; anything else must be a path to Azure-format CSVs.
WORKLOADS = ("synthetic", "azure2019")


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
    from fastplace.cli import CommandError
    from fastplace.cli.output import ProgressTask, Table, can_plot, print_table, progress, wrote
    from fastplace.optimizer.model import OptimizerLoadError
    from fastplace.sim import POLICIES, SimConfig, compare, load_workload
    from fastplace.sim.azure2019 import TraceFormatError
    from fastplace.sim.report import plot, table_rows, write_json

    names = [p.strip() for p in args.policies.split(",") if p.strip()]
    unknown = [p for p in names if p not in POLICIES]
    if not names or unknown:
        raise CommandError(
            f"--policies: unknown {', '.join(unknown) or '(empty)'}; "
            f"choose from {', '.join(POLICIES)}"
        )
    if not 0 < args.duration <= MAX_DURATION_S:
        raise CommandError(
            f"--duration = {args.duration} must be a number of seconds > 0 and "
            f"<= {MAX_DURATION_S:,.0f} (one day)"
        )
    try:
        workload = load_workload(args.workload, duration_s=args.duration, seed=args.seed)
    except TraceFormatError as error:
        if _names_no_trace(args.workload):  # a typo of a name, or a wrong path
            raise CommandError(
                f"--workload = {args.workload!r} is not one of {', '.join(WORKLOADS)}, "
                f"nor a trace directory or PREFIX of PREFIX_inv.csv ... ({error})"
            ) from None
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

    def share(done: float, total: float) -> str:
        return f"{100 * done / total:5.1f}% of simulated time"

    # One line per policy when nobody watches a bar: a policy takes a second or two.
    with progress(share, reports=1) as add_task:
        tasks: dict[str, ProgressTask] = {}

        def report(name: str, simulated_s: float) -> None:
            if name not in tasks:  # created as the policy starts, to time it alone
                tasks[name] = add_task(name, config.duration_s)
            tasks[name].update(simulated_s)

        try:
            results = compare(config, workload, names, progress=report)
        except OptimizerLoadError as error:
            raise CommandError(f"--policies: {error}") from None
    title = (
        f"{workload.name} workload: {workload.n_requests:,} requests, "
        f"{len(workload.models)} models, {config.servers} servers, {config.duration_s:g} s"
    )
    table = Table(title, ["metric", *results], "l" + "r" * len(results))
    for row in table_rows(results):
        table.add_row(*row)
    print_table(table)
    metrics_json, metrics_png = args.out / "metrics.json", args.out / "metrics.png"
    try:
        write_json(results, metrics_json, config=config.to_dict(), workload=workload.name)
    except OSError as error:
        raise CommandError(f"cannot write {metrics_json}: {error.strerror}") from None
    wrote(metrics_json)
    if can_plot([metrics_png]):
        try:
            plot(results, metrics_png, title)
        except OSError as error:
            raise CommandError(f"cannot write {metrics_png}: {error.strerror}") from None
        wrote(metrics_png)
    return 0


def _names_no_trace(workload: str) -> bool:
    """Whether --workload is neither a directory nor the prefix of any trace file."""
    if os.path.isdir(workload):
        return False
    return not any(os.path.exists(f"{workload}_{kind}.csv") for kind in ("inv", "mem", "run"))
