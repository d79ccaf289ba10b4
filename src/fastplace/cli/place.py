"""``fastplace place``: replay a synthetic request stream and report placement speed."""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np

from fastplace.cli.argtypes import integer, number, seed
from fastplace.cluster import Cluster, ReplayOp
from fastplace.synthetic import churn_stream, synthetic_capacity

__all__ = ["MAX_REQUESTS", "MAX_SERVERS", "add_parser", "run"]

#: Bounds of --servers (ten times the largest cluster of bench/RESULTS.md) and
#: --requests (minutes of stream generation); within them, memory is checked (see run).
MAX_SERVERS = 10_000_000
MAX_REQUESTS = 100_000_000
#: Peak memory per server and per requested placement, measured (/usr/bin/time, 1M to
#: 3M servers; 3M to 10M placements: 177 B and 231 B) and rounded up.
BYTES_PER_SERVER = 256
BYTES_PER_REQUEST = 320
#: The interpreter, numpy and the core before any of it.
BASE_BYTES = 64 << 20


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "place",
        help="replay a synthetic place/release stream through the native core",
        description=(
            "Fills a synthetic cluster to --load of its memory with Lambda-sized containers, "
            "then keeps it there with churn (release one, place one), all inside C++. "
            "Prints placements per second, servers used and utilisation. Runs of slow "
            "events (best_fit on many servers) are cut into chunks to show progress."
        ),
    )
    parser.add_argument(
        "--servers",
        type=integer(1, MAX_SERVERS),
        default=10_000,
        help=f"servers, 1 to {MAX_SERVERS:,} (10000)",
    )
    parser.add_argument(
        "--requests",
        type=integer(1, MAX_REQUESTS),
        default=1_000_000,
        help=f"placements, 1 to {MAX_REQUESTS:,} (1000000)",
    )
    parser.add_argument("--seed", type=seed, default=0, help="random seed, >= 0 (0)")
    parser.add_argument(
        "--load",
        type=number(0.0, 1.0, low_open=True),
        default=0.85,
        help="memory load to hold, in (0, 1] (0.85)",
    )
    parser.add_argument(
        "--policy", choices=("first_fit", "best_fit"), default="first_fit", help="(first_fit)"
    )
    parser.add_argument("--heterogeneous", action="store_true", help="mix server sizes")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from fastplace.cli.chunked_replay import replay_in_chunks
    from fastplace.cli.memory import require_memory
    from fastplace.cli.output import progress, status

    require_memory(
        f"--servers {args.servers:,} with --requests {args.requests:,}",
        BASE_BYTES + BYTES_PER_SERVER * args.servers + BYTES_PER_REQUEST * args.requests,
        f"{BYTES_PER_SERVER} B per server + {BYTES_PER_REQUEST} B per placement + "
        f"{BASE_BYTES >> 20} MiB",
    )
    capacity = synthetic_capacity(args.servers, heterogeneous=args.heterogeneous, seed=args.seed)
    op = ReplayOp.PLACE_FIRST_FIT if args.policy == "first_fit" else ReplayOp.PLACE_BEST_FIT
    with status(f"generating the request stream ({args.requests:,} placements)"):
        stream = churn_stream(capacity, args.requests, load=args.load, seed=args.seed, op=op)
    cluster = Cluster(capacity)

    def events(done: float, total: float) -> str:
        return f"{done:,.0f}/{total:,.0f} events"

    with progress(events) as add_task:
        task = add_task("replaying", len(stream))
        result = replay_in_chunks(
            cluster, stream.ops, stream.requests, stream.refs, progress=task.update
        )
    seconds = result.seconds

    decisions = result.placed + result.unplaced
    lower_bound = int(np.ceil(cluster.used[:, 0].sum() / capacity[:, 0].max()))
    summary = {
        "servers": args.servers,
        "policy": args.policy,
        "events": len(stream),
        "placements": result.placed,
        "unplaced": result.unplaced,
        "releases": result.released,
        "seconds": seconds,
        "decisions_per_second": decisions / seconds if seconds > 0 else float("inf"),
        "ns_per_event": seconds * 1e9 / max(1, len(stream)),
        "servers_used": cluster.n_active_servers,
        "servers_lower_bound": lower_bound,
        "utilisation": cluster.utilisation(),
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    _print_summary(summary)
    return 0


def _print_summary(summary: dict[str, Any]) -> None:
    from fastplace.cli.output import Table, print_table

    table = Table(
        f"fastplace place ({summary['policy']}, {summary['servers']:,} servers)",
        ["metric", "value"],
        "lr",
    )
    table.add_row("events (place + release)", f"{summary['events']:,}")
    table.add_row("placed / unplaced", f"{summary['placements']:,} / {summary['unplaced']:,}")
    table.add_row("placements per second", f"{summary['decisions_per_second']:,.0f}")
    table.add_row("ns per event", f"{summary['ns_per_event']:.1f}")
    table.add_row(
        "servers used (lower bound)",
        f"{summary['servers_used']:,} ({summary['servers_lower_bound']:,})",
    )
    for name, share in summary["utilisation"].items():
        table.add_row(f"utilisation {name}", f"{share:.1%}")
    print_table(table)
