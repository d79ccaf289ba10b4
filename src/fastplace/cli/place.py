"""``fastplace place``: replay a synthetic request stream and report placement speed."""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np

from fastplace.cli.common import positive_int
from fastplace.cluster import Cluster, ReplayOp
from fastplace.synthetic import churn_stream, synthetic_capacity

__all__ = ["add_parser", "run"]


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
    parser.add_argument("--servers", type=positive_int, default=10_000, help="servers (10000)")
    parser.add_argument(
        "--requests", type=positive_int, default=1_000_000, help="placements (1000000)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (0)")
    parser.add_argument("--load", type=float, default=0.85, help="memory load to hold (0.85)")
    parser.add_argument(
        "--policy", choices=("first_fit", "best_fit"), default="first_fit", help="(first_fit)"
    )
    parser.add_argument("--heterogeneous", action="store_true", help="mix server sizes")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from fastplace.cli import CommandError
    from fastplace.cli.chunked_replay import replay_in_chunks
    from fastplace.cli.output import progress, status

    if not 0.0 < args.load <= 1.0:
        raise CommandError(f"--load = {args.load} must be in (0, 1]")
    if args.seed < 0:
        raise CommandError(f"--seed = {args.seed} must be >= 0")
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
