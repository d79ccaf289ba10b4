"""``fastplace ray-replay``: a request log through the serverless front end on Ray."""

from __future__ import annotations

import argparse
import json
import math
import tempfile
from pathlib import Path
from typing import Any

from fastplace.cli.argtypes import integer, seed

__all__ = ["add_parser", "run"]

DEFAULT_POLICIES = "first_fit,similarity"

#: Rows of the printed table: (metric key, label, format).
ROWS = (
    ("servers_used_mean", "servers in use, mean", "{:.2f}"),
    ("servers_used_peak", "servers in use, peak", "{}"),
    ("gangs_mean", "gangs, mean", "{:.2f}"),
    ("gangs_peak", "gangs, peak", "{}"),
    ("requests", "requests", "{:,}"),
    ("warm_requests", "warm requests", "{:,}"),
    ("cold_starts", "cold starts", "{:,}"),
    ("bytes_downloaded", "bytes fetched", "{:,}"),
    ("cold_start_p50_s", "cold start p50 s", "{:.3f}"),
    ("cold_start_p99_s", "cold start p99 s", "{:.3f}"),
    ("request_p50_s", "request p50 s", "{:.3f}"),
    ("request_p99_s", "request p99 s", "{:.3f}"),
    ("route_p50_s", "routing p50 µs", "us"),
    ("route_p99_s", "routing p99 µs", "us"),
    ("retires", "gangs retired", "{:,}"),
    ("retries", "requests retried", "{:,}"),
    ("gangs_replaced", "gangs re-placed", "{:,}"),
    ("partitions_replaced", "partitions re-placed", "{:,}"),
    ("lost", "requests lost", "{:,}"),
    ("wall_s", "wall s", "{:.1f}"),
)


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "ray-replay",
        help="replay a request log on a local Ray cluster through the serverless front end",
        description=(
            "Starts a local multi-node Ray cluster (loopback only), stores a tiny "
            "partitioned model per model of the log (its partitions, memory and "
            "versions), and per policy, on fresh node caches, replays the log through "
            "fastplace's serverless front end: gangs cold-start on demand, stay warm for "
            "the keep-alive, scale out to the cap, roll out when the log's version "
            "changes. Time runs --compression times faster than the log (arrivals, "
            "service times, keep-alive); cold starts are real. Prints the simulator's "
            "metrics measured on Ray and writes ray-replay.json (and a plot of active "
            "gangs over time) to --out. Needs `pip install 'fastplace[ray]'` and torch."
        ),
    )
    parser.add_argument(
        "log",
        nargs="?",
        default=None,
        metavar="LOG.csv",
        help="a request log (timestamp,model[,version][,duration]...; default: the "
        "shipped requests_small.csv)",
    )
    parser.add_argument("--policies", default=DEFAULT_POLICIES, help=f"({DEFAULT_POLICIES})")
    parser.add_argument(
        "--compression",
        type=float,
        default=10.0,
        help="log seconds per real second (10)",
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=300.0,
        help="replay the first SECONDS of the log (300; 0: all of it)",
    )
    parser.add_argument(
        "--models",
        type=integer(1, 1_000),
        default=3,
        help="replay only the N most requested models of the log (3)",
    )
    parser.add_argument("--nodes", type=integer(1, 64), default=4, help="Ray nodes, 1 to 64 (4)")
    parser.add_argument(
        "--node-memory", type=integer(1, 1 << 40), default=65536, help="MB each node offers (65536)"
    )
    parser.add_argument(
        "--keep-alive", type=float, default=30.0, help="keep-alive, log seconds (30)"
    )
    parser.add_argument(
        "--concurrency", type=integer(1, 100_000), default=1, help="requests per gang at once (1)"
    )
    parser.add_argument(
        "--max-gangs", type=integer(1, 100_000), default=4, help="gangs per model (4)"
    )
    parser.add_argument(
        "--kill-actor-at",
        type=float,
        default=None,
        metavar="S",
        help="at log second S, kill one partition actor of the busiest gang (off)",
    )
    parser.add_argument(
        "--kill-node-at",
        type=float,
        default=None,
        metavar="S",
        help="at log second S, remove the non-head node with the most containers (off)",
    )
    parser.add_argument("--seed", type=seed, default=0, help="random seed, >= 0 (0)")
    parser.add_argument(
        "--simulate",
        action="store_true",
        help="also simulate each replay (fastplace.sim configured from the cluster, the "
        "store and the real run) and compare: prints the table and writes "
        "sim-to-real.md; the JSON gets it as sim_to_real",
    )
    parser.add_argument("--out", type=Path, default=Path("out"), help="output directory (out)")
    parser.set_defaults(run=run)


def _seconds(value: float, flag: str, *, zero: bool) -> None:
    from fastplace.cli import CommandError

    if not math.isfinite(value) or value < 0 or (value == 0 and not zero):
        raise CommandError(
            f"{flag} = {value} must be a number of seconds {'>=' if zero else '>'} 0"
        )


def run(args: argparse.Namespace) -> int:
    from fastplace.cli import CommandError
    from fastplace.engines.ray.demo import parse_policy
    from fastplace.sim.request_log import request_log_workload, small_request_log

    policies = [p.strip() for p in args.policies.split(",") if p.strip()]
    if not policies:
        raise CommandError("--policies is empty")
    for spec in policies:
        try:
            parse_policy(spec)
        except ValueError as error:
            raise CommandError(f"--policies: {error}") from None
    if not math.isfinite(args.compression) or args.compression <= 0:
        raise CommandError(f"--compression = {args.compression} must be > 0 and finite")
    if args.simulate and args.concurrency != 1:
        raise CommandError(
            f"--simulate needs --concurrency 1 (got {args.concurrency}): a simulated "
            "container set serves one request at a time"
        )
    _seconds(args.duration, "--duration", zero=True)
    _seconds(args.keep_alive, "--keep-alive", zero=True)
    log = Path(args.log) if args.log is not None else small_request_log()
    from fastplace.cli.files import regular_file

    regular_file(log, "request log")
    try:
        workload = request_log_workload(log, seed=args.seed)
    except ValueError as error:  # RequestLogError names the file, line and column
        raise CommandError(str(error)) from None
    from fastplace.engines.ray.replay import busiest

    workload = busiest(workload, args.models)
    span = float(workload.arrival_s[-1]) if len(workload.arrival_s) else 0.0
    span = min(span, args.duration) if args.duration else span
    for flag, at in (
        ("--kill-actor-at", args.kill_actor_at),
        ("--kill-node-at", args.kill_node_at),
    ):
        if at is not None:
            _seconds(at, flag, zero=True)
            if at > span:
                raise CommandError(f"{flag} = {at} is after the replayed span ({span:g} log s)")
    if args.kill_node_at is not None and args.nodes < 2:
        raise CommandError("--kill-node-at needs --nodes >= 2 (the head node is never removed)")
    biggest = max(p.memory_mb for m in workload.models for p in m.partitions)
    if biggest > args.node_memory:
        raise CommandError(
            f"--node-memory = {args.node_memory} MB: a partition of the log needs {biggest} MB"
        )
    try:  # after every check of the input: a refused command leaves nothing behind
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CommandError(f"--out {args.out}: {error.strerror}") from None
    from fastplace.engines.ray import require_ray

    try:
        require_ray()
        import torch  # noqa: F401  (the replayed models' weights)
    except ImportError as error:
        raise CommandError(str(error)) from None
    nodes: list[Any] = []
    comparison = None
    with tempfile.TemporaryDirectory(prefix="fastplace-ray-replay-") as workdir:
        rows = _replay(args, workload, policies, Path(workdir), nodes)
        if args.simulate:  # the store is needed: inside the work directory's life
            from fastplace.cli.ray_sim_to_real import simulate_replays

            comparison = simulate_replays(args, workload, policies, rows, nodes, Path(workdir))
    _print(rows, workload, args)
    _write(rows, args, log, comparison)
    if comparison is not None:
        from fastplace.cli.ray_sim_to_real import print_and_write

        print_and_write(comparison, args)
    return 0


def _replay(
    args: argparse.Namespace,
    workload: Any,
    policies: list[str],
    workdir: Path,
    nodes: list[Any],
) -> list[dict[str, Any]]:
    """The real replays' rows; ``nodes`` gets the cluster's ``ray.nodes()``."""
    from fastplace.cli import CommandError
    from fastplace.cli.output import note
    from fastplace.engines.ray.demo import parse_policy
    from fastplace.engines.ray.deployment import DeploymentError
    from fastplace.engines.ray.faults import FaultPlan
    from fastplace.engines.ray.local_cluster import start_local_cluster
    from fastplace.engines.ray.replay import ReplayConfig, build_log_store, replay
    from fastplace.synthetic import SERVER_CPU_MILLIS, SERVER_MEMORY_MB

    config = ReplayConfig(
        compression=args.compression,
        keep_alive_s=args.keep_alive,
        concurrency_target=args.concurrency,
        max_gangs=args.max_gangs,
    )
    note(f"storing {len(workload.models)} models")
    store = build_log_store(workdir / "store", workload, seed=args.seed)
    note(f"starting a local Ray cluster of {args.nodes} nodes")
    # CPU in the simulator's proportion to memory (65536 MB : 40000 millicores), so
    # that a simulation of the same cluster sees the same servers.
    cpu_millis = max(1, round(args.node_memory * SERVER_CPU_MILLIS / SERVER_MEMORY_MB))
    cluster = start_local_cluster(args.nodes, memory_mb=args.node_memory, cpu_millis=cpu_millis)
    rows = []
    try:
        for i, spec in enumerate(policies):
            note(f"replaying with {spec}")
            try:
                row = replay(
                    workload,
                    store,
                    workdir / f"cache-{i}",  # fresh node caches per policy
                    parse_policy(spec),
                    config,
                    duration_s=args.duration or None,
                    faults=FaultPlan(args.kill_actor_at, args.kill_node_at),
                    cluster=cluster,
                )
            except DeploymentError as error:
                raise CommandError(str(error)) from None
            row["policy"] = spec
            rows.append(row)
        from fastplace.engines.ray import require_ray

        nodes += require_ray().nodes()
    finally:
        cluster.shutdown()
    return rows


def _print(rows: list[dict[str, Any]], workload: Any, args: argparse.Namespace) -> None:
    from fastplace.cli.output import Table, print_table

    title = (
        f"ray-replay: {len(workload.models)} models, {args.nodes} nodes, "
        f"{args.compression:g}x time compression (latencies in real seconds)"
    )
    table = Table(title, ["metric", *(r["policy"] for r in rows)], "l" + "r" * len(rows))
    for key, label, form in ROWS:
        cells = [f"{row[key] * 1e6:.0f}" if form == "us" else form.format(row[key]) for row in rows]
        table.add_row(label, *cells)
    print_table(table)
    for row in rows:
        for fault in row.get("faults", []):
            detail = ", ".join(f"{k} {v}" for k, v in fault.items() if k not in ("kind", "at_s"))
            print(f"{row['policy']}: {fault['kind']} at log {fault['at_s']:g} s: {detail}")


def _write(
    rows: list[dict[str, Any]],
    args: argparse.Namespace,
    log: Path,
    comparison: dict[str, Any] | None = None,
) -> None:
    from fastplace._atomic import write_atomic
    from fastplace.cli import CommandError
    from fastplace.cli.output import can_plot, wrote

    path = args.out / "ray-replay.json"
    report = {
        "log": str(log),
        "settings": {k: v for k, v in vars(args).items() if k not in ("run", "out", "log")},
        "policies": rows,
    }
    if comparison is not None:
        report["sim_to_real"] = comparison
    try:
        write_atomic(path, json.dumps(report, indent=2, default=str) + "\n")
    except OSError as error:
        raise CommandError(f"cannot write {path}: {error.strerror}") from None
    wrote(path)
    png = args.out / "ray-replay.png"
    if can_plot([png]):
        from fastplace._plotting import pyplot

        plt = pyplot()
        figure, axis = plt.subplots(figsize=(8, 4))
        for row in rows:
            times = [t * args.compression for t, _, _ in row["timeline"]]
            axis.step(times, [g for _, _, g in row["timeline"]], where="post", label=row["policy"])
        axis.set_xlabel("log time, s")
        axis.set_ylabel("active gangs")
        axis.legend()
        try:
            figure.savefig(png, dpi=100, bbox_inches="tight")
        except OSError as error:
            raise CommandError(f"cannot write {png}: {error.strerror}") from None
        finally:
            plt.close(figure)
        wrote(png)
