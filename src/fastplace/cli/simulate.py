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
        help="synthetic (default), azure2019 (shipped excerpt), a path to Azure-2019-format "
        "CSVs, or a request-log CSV file (one row per request: timestamp,model[,version]"
        "[,duration]; the Azure Functions 2021 trace as it is)",
    )
    parser.add_argument(
        "--columns",
        default=None,
        metavar="ROLE=COLUMN,...",
        help="a request log's column names, e.g. timestamp=ts,model=function "
        "(roles: timestamp, model, version, duration, partitions, memory_mb)",
    )
    parser.add_argument(
        "--rollout-interval",
        type=float,
        default=None,
        metavar="SECONDS",
        help="a new version of every model every SECONDS, 0 for none (synthetic 120, "
        "traces and request logs without a version column 300)",
    )
    parser.add_argument("--servers", type=positive_int, default=None, help="servers (150)")
    parser.add_argument(
        "--duration",
        type=float,
        default=None,
        help="simulated seconds (600; a request log: its span)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (0)")
    parser.add_argument("--out", type=Path, default=Path("out"), help="output directory (out)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from fastplace.cli import CommandError
    from fastplace.cli.output import ProgressTask, Table, can_plot, print_table, progress, wrote
    from fastplace.optimizer.model import OptimizerLoadError
    from fastplace.sim import POLICIES, SimConfig, compare, is_request_log, load_workload
    from fastplace.sim.azure2019 import TraceFormatError
    from fastplace.sim.report import plot, table_rows, write_json

    names = [p.strip() for p in args.policies.split(",") if p.strip()]
    unknown = [p for p in names if p not in POLICIES]
    if not names or unknown:
        raise CommandError(
            f"--policies: unknown {', '.join(unknown) or '(empty)'}; "
            f"choose from {', '.join(POLICIES)}"
        )
    log = is_request_log(args.workload)
    # A generated workload grows with --duration, so it is bounded before it is made;
    # a request log is as long as it is.
    if args.duration is not None and not (
        0 < args.duration <= MAX_DURATION_S or (log and 0 < args.duration < float("inf"))
    ):
        raise CommandError(
            f"--duration = {args.duration} must be a number of seconds > 0 and "
            f"<= {MAX_DURATION_S:,.0f} (one day)"
        )
    if args.columns is not None and not log:
        raise CommandError(
            f"--columns: --workload = {args.workload!r} is not a request log (only one has columns)"
        )
    if args.rollout_interval is not None and not 0 <= args.rollout_interval < float("inf"):
        raise CommandError(
            f"--rollout-interval = {args.rollout_interval} must be a number of seconds >= 0"
        )
    columns = None if args.columns is None else _columns(args.columns)
    try:
        workload = load_workload(
            args.workload,
            duration_s=args.duration,
            seed=args.seed,
            columns=columns,
            rollout_interval_s=args.rollout_interval,
        )
    except TraceFormatError as error:
        if _names_no_trace(args.workload) and not os.path.lexists(args.workload):
            # A typo of a name, or a wrong path.
            raise CommandError(
                f"--workload = {args.workload!r} is not one of {', '.join(WORKLOADS)}, "
                "nor a trace directory or PREFIX of PREFIX_inv.csv ..., nor a request-log "
                f"CSV file ({error})"
            ) from None
        raise CommandError(str(error)) from None
    except ValueError as error:  # an argument the loader refuses (columns, seed)
        raise CommandError(str(error)) from None
    duration = args.duration or workload.span_s or 600.0
    # Longer than the log plus a day only adds scheduled rollouts to an idle cluster.
    longest = (workload.span_s or 0.0) + MAX_DURATION_S
    if log and duration > longest:
        raise CommandError(
            f"--duration = {duration} must be <= {longest:,.0f} s (the log's span plus a day)"
        )
    config = SimConfig(
        seed=args.seed,
        duration_s=duration,
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


def _columns(text: str) -> dict[str, str]:
    """--columns timestamp=ts,model=fn as {"timestamp": "ts", "model": "fn"}."""
    from fastplace.cli import CommandError
    from fastplace.sim.request_log import COLUMNS

    columns: dict[str, str] = {}
    for item in text.split(","):
        role, equals, name = item.partition("=")
        role = role.strip()
        if not equals or not role or not name.strip():
            raise CommandError(f"--columns: {item!r} is not ROLE=COLUMN")
        if role not in COLUMNS:
            raise CommandError(f"--columns: {role!r} is not one of {', '.join(COLUMNS)}")
        if role in columns:
            raise CommandError(f"--columns: {role} is given twice")
        columns[role] = name
    return columns


def _names_no_trace(workload: str) -> bool:
    """Whether --workload is neither a directory nor the prefix of any trace file."""
    if os.path.isdir(workload):
        return False
    return not any(os.path.exists(f"{workload}_{kind}.csv") for kind in ("inv", "mem", "run"))
