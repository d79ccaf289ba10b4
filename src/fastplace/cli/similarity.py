"""``fastplace similarity``: how much of a new model version's file an old version holds."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from fastplace.cli.common import regular_file, writable_file

__all__ = ["DEFAULT_BLOCK_SIZES", "add_parser", "run"]

DEFAULT_BLOCK_SIZES = "32K,64K,128K,256K,512K,1M"


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "similarity",
        help="block-level similarity of two model versions (the paper's Fig. 3)",
        description=(
            "Cuts OLD and NEW into blocks of each size, hashes every block (xxh3-64) and "
            "prints, per block size, the share of NEW's blocks and bytes already present "
            "in OLD. Blocks are fixed-size, or content-defined chunks of that average "
            "size with --cdc."
        ),
    )
    parser.add_argument("old", metavar="OLD", help="the version a server already holds")
    parser.add_argument("new", metavar="NEW", help="the version to deploy")
    parser.add_argument(
        "--block-sizes",
        default=DEFAULT_BLOCK_SIZES,
        metavar="SIZES",
        help=f"comma-separated block sizes, K/M/G = 1024-based ({DEFAULT_BLOCK_SIZES})",
    )
    parser.add_argument(
        "--cdc",
        action="store_true",
        help="content-defined chunks (FastCDC) of that average size instead of fixed blocks",
    )
    parser.add_argument("--plot", metavar="FILE.png", help="draw the curve into this file")
    parser.add_argument(
        "--json",
        action="store_true",
        help="print only a JSON list of {block_size, similar_blocks, similar_bytes}",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from fastplace.blocks import (
        EmptySourceError,
        Similarity,
        download_bytes,
        fingerprint,
        format_size,
        parse_sizes,
        similarity,
    )
    from fastplace.cli import CommandError
    from fastplace.cli.output import note, progress

    try:
        sizes = parse_sizes(args.block_sizes, field="--block-sizes")
    except ValueError as error:
        raise CommandError(str(error)) from None
    file_sizes = [
        _readable_size(label, path) for label, path in (("OLD", args.old), ("NEW", args.new))
    ]
    if args.plot:
        writable_file(args.plot, "--plot")

    if args.cdc:
        from fastplace.blocks import warm_up

        seconds = warm_up()
        note(
            f"numba CDC kernel ready in {seconds:.2f} s (compiled, or loaded from its "
            "on-disk cache)"
        )

    def mebibytes(done: float, total: float) -> str:
        return f"{done / 2**20:,.1f}/{total / 2**20:,.1f} MiB"

    results: list[tuple[int, Similarity]] = []
    downloads: list[int] = []
    with progress(mebibytes) as add_task:
        advance = add_task("fingerprinting", len(sizes) * sum(file_sizes)).advance
        for size in sizes:
            try:
                old = fingerprint(args.old, block_size=size, cdc=args.cdc, progress=advance)
                new = fingerprint(args.new, block_size=size, cdc=args.cdc, progress=advance)
            except EmptySourceError as error:
                raise CommandError(str(error)) from None
            except OSError as error:
                raise CommandError(f"cannot read {error.filename}: {error.strerror}") from None
            except ValueError as error:
                raise CommandError(f"block size {format_size(size)}: {error}") from None
            results.append((size, similarity(old, new)))
            downloads.append(download_bytes(new, old))

    if args.plot:
        _plot(results, args)
    if args.json:
        rows = [
            {
                "block_size": size,
                "similar_blocks": result.similar_blocks,
                "similar_bytes": result.similar_bytes,
            }
            for size, result in results
        ]
        print(json.dumps(rows, indent=2))
        return 0
    _print_table(results, downloads, args)
    return 0


def _readable_size(label: str, path: str) -> int:
    """The file's size, or CommandError naming it if it is missing, unreadable or empty."""
    from fastplace.cli import CommandError

    regular_file(path, label)  # before open(): opening a FIFO would wait for a writer
    try:
        with open(path, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            file.read(1)
    except OSError as error:
        raise CommandError(f"cannot read {label} {path}: {error.strerror}") from None
    if size == 0:
        raise CommandError(f"{label} {path} is empty (0 bytes)")
    return size


def _print_table(
    results: list[tuple[int, Any]], downloads: list[int], args: argparse.Namespace
) -> None:
    from fastplace.blocks import format_size
    from fastplace.cli.output import Table, print_table

    kind = "content-defined chunks (average size)" if args.cdc else "fixed-size blocks"
    table = Table(
        f"{args.new} vs {args.old}: {kind}",
        # "to download": the distinct blocks of NEW that OLD lacks
        ["block size", "blocks", "similar blocks", "similar bytes", "to download"],
        "rrrrr",
    )
    for (size, result), download in zip(results, downloads, strict=True):
        table.add_row(
            format_size(size),
            f"{result.blocks:,}",
            f"{100 * result.similar_blocks:.1f} %",
            f"{100 * result.similar_bytes:.1f} %",
            f"{download / 2**20:,.1f} MiB",
        )
    print_table(table)


def _plot(results: list[tuple[int, Any]], args: argparse.Namespace) -> None:
    from fastplace.blocks.plot import plot_similarity
    from fastplace.cli import CommandError
    from fastplace.cli.output import can_plot, wrote

    if not can_plot([args.plot]):
        return

    kind = "content-defined" if args.cdc else "fixed"
    curves = {
        f"blocks ({kind})": [(size, result.similar_blocks) for size, result in results],
        f"bytes ({kind})": [(size, result.similar_bytes) for size, result in results],
    }
    title = f"{os.path.basename(args.new)} vs {os.path.basename(args.old)}"
    try:
        plot_similarity(curves, args.plot, title=title, ylabel="similar (%)")
    except OSError as error:
        raise CommandError(f"cannot write --plot {args.plot}: {error.strerror}") from None
    except ValueError as error:  # e.g. a suffix matplotlib has no writer for
        raise CommandError(f"cannot write --plot {args.plot}: {error}") from None
    wrote(args.plot)
