"""``fastplace simulate``: every placement policy on the same serverless DI workload."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastplace.cli.argtypes import integer, number, seed

if TYPE_CHECKING:
    from fastplace.sim import SimConfig, Workload

__all__ = [
    "MAX_DURATION_S",
    "MAX_LOG_SPAN_S",
    "MAX_SERVERS",
    "MAX_TRACE_FILE_BYTES",
    "add_parser",
    "expand_policies",
    "run",
]

DEFAULT_POLICIES = "first_fit,best_fit,dot_product,l2_norm,similarity,locality,random,hybrid"


def expand_policies(spec: str) -> list[str]:
    """--policies as policy names, in order, each once: ``peers`` stands for the peer
    schedulers (:data:`fastplace.sim.peers.PEERS`), ``all`` for every policy."""
    from fastplace.sim import POLICIES
    from fastplace.sim.peers import PEERS

    names: list[str] = []
    for part in (p.strip() for p in spec.split(",")):
        if part == "peers":
            names.extend(PEERS)
        elif part == "all":
            names.extend(POLICIES)
        elif part:
            names.append(part)
    return list(dict.fromkeys(names))


#: The longest simulation --duration accepts: one day is about 5 million requests of
#: the synthetic workload, minutes per policy (longer runs: fastplace.sim directly).
MAX_DURATION_S = 86_400.0

#: The longest request log --workload replays (a year): --duration and
#: --rollout-interval are bounded by it before the log is read.
MAX_LOG_SPAN_S = 366 * 86_400.0

#: The most servers --servers accepts: a scoring policy (similarity, hybrid) looks at
#: every server per decision, so a million already takes minutes per simulated minute.
MAX_SERVERS = 1_000_000

#: The largest trace CSV --workload reads; the rows are held in memory as arrays (see
#: TRACE_BYTES_PER_FILE_BYTE).
MAX_TRACE_FILE_BYTES = 1 << 30

#: The workloads known by name; anything else must be a path to Azure-format CSVs.
WORKLOADS = ("synthetic", "azure2019")

# Memory estimate of a run, measured peaks (/usr/bin/time) rounded up:
#: per request of the workload (315 B at 864k requests, two policies) ...
BYTES_PER_REQUEST = 400
#: ... per server (~160 B at a million servers) ...
BYTES_PER_SERVER = 256
#: ... per block of a model file version the simulator cuts (hashes, ids, index) ...
BYTES_PER_BLOCK = 64
#: ... per byte of trace CSV read (an invocation count of >= 2 bytes, "0,", becomes
#: 8 bytes of int64; the rest is the rows' Python objects while they are parsed) ...
TRACE_BYTES_PER_FILE_BYTE = 6
#: ... and the interpreter, numpy, numba and matplotlib.
BASE_BYTES = 128 << 20


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
    parser.add_argument(
        "--policies",
        default=DEFAULT_POLICIES,
        help="comma-separated; 'peers' stands for the schedulers users run today "
        "(k8s_default, k8s_most_allocated, nomad_binpack, ray_hybrid, openwhisk, pasch), "
        f"'all' for every policy ({DEFAULT_POLICIES})",
    )
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
        type=number(0.0, MAX_LOG_SPAN_S),
        default=None,
        metavar="SECONDS",
        help="a new version of every model every SECONDS, 0 for none (synthetic 120, "
        "traces and request logs without a version column 300)",
    )
    parser.add_argument(
        "--servers",
        type=integer(1, MAX_SERVERS),
        default=None,
        help=f"servers, 1 to {MAX_SERVERS:,} (150)",
    )
    parser.add_argument(
        "--duration",
        type=number(0.0, MAX_LOG_SPAN_S + MAX_DURATION_S, low_open=True),
        default=None,
        help=f"simulated seconds, > 0 and <= {MAX_DURATION_S:,.0f} (one day); a request "
        "log: up to its span plus a day (600; a request log: its span)",
    )
    parser.add_argument("--seed", type=seed, default=0, help="random seed, >= 0 (0)")
    parser.add_argument("--out", type=Path, default=Path("out"), help="output directory (out)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from fastplace.cli import CommandError
    from fastplace.cli.files import writable_file
    from fastplace.cli.memory import require_memory
    from fastplace.cli.output import ProgressTask, Table, can_plot, print_table, progress, wrote
    from fastplace.optimizer.model import OptimizerLoadError
    from fastplace.sim import POLICIES, SimConfig, compare, is_request_log
    from fastplace.sim.report import plot, table_rows, write_json

    # Each policy once: "first_fit,first_fit,..." would run it again for the same column.
    names = expand_policies(args.policies)
    unknown = [p for p in names if p not in POLICIES]
    if not names or unknown:
        raise CommandError(
            f"--policies: unknown {', '.join(unknown) or '(empty)'}; "
            f"choose from {', '.join(POLICIES)}, peers, all"
        )
    log = is_request_log(args.workload)
    if args.columns is not None and not log:
        raise CommandError(
            f"--columns: --workload = {args.workload!r} is not a request log (only one has columns)"
        )
    if log:
        workload = _load_request_log(args)
        duration = args.duration or workload.span_s or 600.0
        # Longer than the log plus a day only adds scheduled rollouts to an idle cluster.
        longest = (workload.span_s or 0.0) + MAX_DURATION_S
        if duration > longest:
            raise CommandError(
                f"--duration = {duration} must be <= {longest:,.0f} s (the log's span plus a day)"
            )
    else:
        # A generated workload grows with --duration, so it is bounded before it is made.
        duration = 600.0 if args.duration is None else args.duration
        if duration > MAX_DURATION_S:
            raise CommandError(
                f"--duration = {duration} must be <= {MAX_DURATION_S:,.0f} (one day) for "
                f"--workload {args.workload} (a request log may run longer)"
            )
    config = SimConfig(
        seed=args.seed,
        duration_s=duration,
        **({"servers": args.servers} if args.servers else {}),
    )
    if not log:
        workload = _load_workload(args, config)
    blocks = _model_file_blocks(workload, config)
    require_memory(
        f"{workload.n_requests:,} requests on {config.servers:,} servers",
        BASE_BYTES
        + BYTES_PER_REQUEST * workload.n_requests
        + BYTES_PER_SERVER * config.servers
        + BYTES_PER_BLOCK * blocks,
        f"{BYTES_PER_REQUEST} B per request + {BYTES_PER_SERVER} B per server + "
        f"{BYTES_PER_BLOCK} B per model file block version ({blocks:,}) + "
        f"{BASE_BYTES >> 20} MiB",
    )
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CommandError(f"--out {args.out}: {error.strerror}") from None
    for name in ("metrics.json", "metrics.png"):
        writable_file(args.out / name, "--out")

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


def _load_workload(args: argparse.Namespace, config: SimConfig) -> Workload:
    """--workload, refused with the estimate if reading it or its requests would not fit
    in memory (a trace's size is known from its files and counts before the arrays of
    its requests are made)."""
    from fastplace.cli import CommandError
    from fastplace.cli.files import regular_file
    from fastplace.cli.memory import require_memory
    from fastplace.sim import azure2019 as trace
    from fastplace.sim import synthetic_workload

    interval = args.rollout_interval
    if args.workload == "synthetic":  # --duration bounds it: ~60 requests per second
        return synthetic_workload(
            duration_s=config.duration_s,
            seed=config.seed,
            **({} if interval is None else {"rollout_interval_s": interval}),
        )
    source = None if args.workload == "azure2019" else args.workload
    try:
        files = trace.trace_files(source)
    except trace.TraceFormatError as error:
        if _names_no_trace(args.workload):  # a typo of a name, or a wrong path
            raise CommandError(
                f"--workload = {args.workload!r} is not one of {', '.join(WORKLOADS)}, "
                f"nor a trace directory or PREFIX of PREFIX_inv.csv ... ({error})"
            ) from None
        raise CommandError(str(error)) from None
    size = sum(regular_file(file, "trace file", max_bytes=MAX_TRACE_FILE_BYTES) for file in files)
    require_memory(
        f"reading --workload {args.workload} ({size:,} bytes of CSV)",
        BASE_BYTES + TRACE_BYTES_PER_FILE_BYTE * size,
        f"{TRACE_BYTES_PER_FILE_BYTE} B per byte of CSV + {BASE_BYTES >> 20} MiB",
    )
    try:
        functions = trace.read_trace(source, max_file_bytes=MAX_TRACE_FILE_BYTES)
    except trace.TraceFormatError as error:
        raise CommandError(str(error)) from None
    requests = trace.trace_requests(functions, config.duration_s)
    require_memory(
        f"--workload {args.workload} ({requests:,} requests in {config.duration_s:g} s)",
        BASE_BYTES + BYTES_PER_REQUEST * requests,
        f"{BYTES_PER_REQUEST} B per request + {BASE_BYTES >> 20} MiB",
    )
    return trace.trace_workload(
        functions,
        name="azure2019" if source is None else str(source),
        duration_s=config.duration_s,
        seed=config.seed,
        **({} if interval is None else {"rollout_interval_s": interval}),
    )


def _load_request_log(args: argparse.Namespace) -> Workload:
    """--workload as a request log, refused with the estimate if reading it would not
    fit in memory (the rows are parsed in chunks into arrays: a few bytes per byte)."""
    from fastplace.cli import CommandError
    from fastplace.cli.files import regular_file
    from fastplace.cli.memory import require_memory
    from fastplace.sim import load_workload

    size = regular_file(args.workload, "--workload", max_bytes=MAX_TRACE_FILE_BYTES)
    require_memory(
        f"reading --workload {args.workload} ({size:,} bytes of CSV)",
        BASE_BYTES + TRACE_BYTES_PER_FILE_BYTE * size,
        f"{TRACE_BYTES_PER_FILE_BYTE} B per byte of CSV + {BASE_BYTES >> 20} MiB",
    )
    columns = None if args.columns is None else _columns(args.columns)
    try:
        return load_workload(
            args.workload,
            seed=args.seed,
            columns=columns,
            rollout_interval_s=args.rollout_interval,
        )
    except ValueError as error:  # RequestLogError names file, line and column
        raise CommandError(str(error)) from None


def _model_file_blocks(workload: Workload, config: SimConfig) -> int:
    """Blocks of every model file version the run may cut: each partition's file in
    blocks of config.block_bytes, once per version deployed within the duration."""
    total = 0
    for model in workload.models:
        versions = 1
        if model.rollout_interval_s > 0 and config.duration_s > model.rollout_offset_s:
            versions += 1 + int(
                (config.duration_s - model.rollout_offset_s) // model.rollout_interval_s
            )
        blocks = sum(-(-p.file_bytes // config.block_bytes) for p in model.partitions)
        total += versions * blocks
    return total


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
