"""``fastplace pack``: pack a VPSolver ``.vbp`` instance offline and report the bins used."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from fastplace.cli.common import regular_file, writable_file
from fastplace.packing import (
    POLICIES,
    lower_bound,
    pack,
    read_vbp,
    strong_lower_bound,
    verify_packing,
)

__all__ = ["add_parser", "run"]


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 0")
    return value


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "pack",
        help="pack a .vbp vector bin packing instance into as few bins as possible",
        description=(
            "Reads a VPSolver .vbp file (dimension, bin capacities, item types with "
            "demands) and packs every item with --policy. Prints the bins used, the "
            "lower bounds and the time taken, and with --assignments the bin of each item."
        ),
        epilog="policies: "
        + "; ".join(f"{name}: {policy.summary}" for name, policy in POLICIES.items()),
    )
    parser.add_argument("file", metavar="FILE.vbp", help="instance in VPSolver .vbp format")
    parser.add_argument(
        "--policy", choices=tuple(POLICIES), default="best", metavar="P", help="(best)"
    )
    parser.add_argument("--seed", type=_seed, default=0, help="tie-break seed for 'best' (0)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument(
        "--assignments",
        nargs="?",
        const="-",
        metavar="FILE.json",
        help="the bin of every item (items in file order, each item type repeated "
        "demand times; type = the item's record in the file, from 0): printed, added "
        "to the --json summary, or written to FILE.json",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from fastplace._atomic import write_atomic
    from fastplace.cli import CommandError
    from fastplace.cli.output import wrote

    regular_file(args.file, "FILE.vbp")
    if args.assignments not in (None, "-"):
        writable_file(args.assignments, "--assignments")
    try:
        instance = read_vbp(args.file)
    except OSError as error:
        raise CommandError(f"cannot read {args.file}: {error.strerror or error}") from error
    except ValueError as error:  # VbpFormatError, or bytes that are not UTF-8
        raise CommandError(str(error)) from error
    start = time.perf_counter()
    assignment = pack(instance.capacity, instance.items, args.policy, seed=args.seed)
    seconds = time.perf_counter() - start
    summary: dict[str, Any] = {
        "instance": instance.name,
        "policy": args.policy,
        "seed": args.seed,
        "dims": instance.dims,
        "items": instance.n_items,
        "bins": verify_packing(instance.capacity, instance.items, assignment),
        "lower_bound": lower_bound(instance.capacity, instance.items),
        "strong_lower_bound": strong_lower_bound(instance.capacity, instance.items),
        "seconds": seconds,
    }
    bins = {"item_type": instance.item_type.tolist(), "bin": assignment.tolist()}
    if args.json:
        print(json.dumps({**summary, **bins} if args.assignments == "-" else summary, indent=2))
    else:
        _print_summary(summary)
        if args.assignments == "-":
            _print_assignments(instance.item_type.tolist(), assignment.tolist())
    if args.assignments not in (None, "-"):
        try:
            write_atomic(args.assignments, json.dumps({**summary, **bins}) + "\n")
        except OSError as error:
            raise CommandError(
                f"cannot write --assignments {args.assignments}: {error.strerror or error}"
            ) from None
        wrote(args.assignments)
    return 0


def _print_summary(summary: dict[str, Any]) -> None:
    from fastplace.cli.output import Table, print_table

    table = Table(
        f"fastplace pack {summary['instance']} ({summary['policy']})", ["metric", "value"], "lr"
    )
    table.add_row("items (dimensions)", f"{summary['items']:,} ({summary['dims']})")
    table.add_row("bins used", f"{summary['bins']:,}")
    table.add_row("lower bound (volume)", f"{summary['lower_bound']:,}")
    table.add_row("lower bound (strong)", f"{summary['strong_lower_bound']:,}")
    table.add_row("seconds", f"{summary['seconds']:.3f}")
    table.add_row("seed", str(summary["seed"]))
    print_table(table)


def _print_assignments(item_types: list[int], bins: list[int]) -> None:
    from fastplace.cli.output import Table, print_table

    # type: the item's record in the file (from 0); items of a type with demand k
    # are k consecutive items
    table = Table("bin of each item", ["item", "type", "bin"], "rrr")
    for item, (item_type, bin_) in enumerate(zip(item_types, bins, strict=True)):
        table.add_row(str(item), str(item_type), str(bin_))
    print_table(table)
