"""``fastplace pack``: pack a VPSolver ``.vbp`` instance offline and report the bins used."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from fastplace.cli.argtypes import seed
from fastplace.cli.files import input_file, writable_file
from fastplace.packing import (
    POLICIES,
    lower_bound,
    pack,
    strong_lower_bound,
    verify_packing,
)
from fastplace.packing.vbp import VbpFormatError, parse_vbp

__all__ = ["MAX_FILE_BYTES", "MAX_ITEMS", "add_parser", "run"]

#: The largest .vbp file read (it is parsed whole): ~1M item types. Instances in the
#: literature are a few KB.
MAX_FILE_BYTES = 16 << 20
#: The most items (item types times demands) packed: first_fit takes about a minute for
#: 10M items, and the searching policies (best) far longer.
MAX_ITEMS = 10_000_000
# Memory estimate, measured peaks (/usr/bin/time, 20k items, every policy) rounded up:
#: per text byte while the file is parsed (24 B measured) ...
BYTES_PER_FILE_BYTE = 32
#: ... per item, for each dimension (the item matrix and the policies' working copies,
#: 47 B measured) ...
BYTES_PER_ITEM_DIM = 48
#: ... per item whatever the dimension (its type, bin, loads; the assignment as JSON) ...
BYTES_PER_ITEM = 256
#: ... and the interpreter, numpy and numba.
BASE_BYTES = 96 << 20


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
    parser.add_argument(
        "file",
        metavar="FILE.vbp",
        help=f"instance in VPSolver .vbp format (a regular file of at most "
        f"{MAX_FILE_BYTES >> 20} MiB, up to {MAX_ITEMS:,} items)",
    )
    parser.add_argument(
        "--policy", choices=tuple(POLICIES), default="best", metavar="P", help="(best)"
    )
    parser.add_argument("--seed", type=seed, default=0, help="tie-break seed for 'best', >= 0 (0)")
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
    from fastplace.cli.memory import require_memory
    from fastplace.cli.output import wrote

    if args.assignments not in (None, "-"):
        writable_file(args.assignments, "--assignments")
    with input_file(args.file, "FILE.vbp", max_bytes=MAX_FILE_BYTES) as file:
        require_memory(
            f"parsing FILE.vbp {args.file} ({file.size:,} bytes)",
            BASE_BYTES + BYTES_PER_FILE_BYTE * file.size,
            f"{BYTES_PER_FILE_BYTE} B per byte of the file + {BASE_BYTES >> 20} MiB",
        )
        text = file.read_text()
    try:
        types = parse_vbp(text, args.file)
    except VbpFormatError as error:
        raise CommandError(str(error)) from None
    del text
    if types.n_items > MAX_ITEMS:
        raise CommandError(
            f"{args.file}: the demands add up to {types.n_items:,} items, more than "
            f"the {MAX_ITEMS:,} fastplace pack takes"
        )
    per_item = BYTES_PER_ITEM_DIM * types.dims + BYTES_PER_ITEM
    require_memory(
        f"packing {args.file} ({types.n_items:,} items of {types.dims} dimensions)",
        BASE_BYTES + per_item * types.n_items,
        f"({BYTES_PER_ITEM_DIM} B x {types.dims} dimensions + {BYTES_PER_ITEM} B) per item "
        f"+ {BASE_BYTES >> 20} MiB",
    )
    instance = types.expand()
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
