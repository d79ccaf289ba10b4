"""``fastplace similarity``: how much of a new model version's file an old version holds."""

from __future__ import annotations

import argparse
import json
import os
from contextlib import ExitStack
from typing import Any

from fastplace.cli.argtypes import MAX_BLOCK_SIZE, block_sizes
from fastplace.cli.files import InputFile, input_file, writable_file

__all__ = ["DEFAULT_BLOCK_SIZES", "add_parser", "run"]

DEFAULT_BLOCK_SIZES = "32K,64K,128K,256K,512K,1M"

#: Average chunk sizes --cdc takes: the chunker's smallest average, and the largest
#: whose largest chunk (4x the average) stays within MAX_BLOCK_SIZE.
CDC_SIZES = (256, MAX_BLOCK_SIZE // 4)
# Memory estimate per block size, measured peaks (/usr/bin/time; fingerprints of both
# files and their comparison: 68 B per block at 1-byte blocks, 95 B at 16, 117 B for
# CDC at 256) rounded up ...
#: ... per block of OLD and of NEW (a CDC file has at most size / min_size chunks) ...
BYTES_PER_BLOCK = 128
#: ... plus the read buffer (the larger of the 16 MiB window, a fixed block, or two
#: largest chunks) and the interpreter, numpy and numba.
BASE_BYTES = 96 << 20


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
        type=block_sizes,
        default=DEFAULT_BLOCK_SIZES,
        metavar="SIZES",
        help="comma-separated block sizes, K/M/G = 1024-based, 1 B to 1G; with --cdc "
        f"average sizes, 256 B to 256M ({DEFAULT_BLOCK_SIZES})",
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
        similarity,
    )
    from fastplace.cli import CommandError
    from fastplace.cli.output import note, progress

    # argparse converts the default through the type function too.
    sizes: list[int] = args.block_sizes
    if args.cdc:
        for size in sizes:
            if not CDC_SIZES[0] <= size <= CDC_SIZES[1]:
                raise CommandError(
                    f"--block-sizes {format_size(size)}: with --cdc an average chunk size "
                    f"is {format_size(CDC_SIZES[0])} to {format_size(CDC_SIZES[1])}"
                )
    with ExitStack() as stack:
        old_file, new_file = (
            stack.enter_context(input_file(path, label))
            for label, path in (("OLD", args.old), ("NEW", args.new))
        )
        for file in (old_file, new_file):
            if file.size == 0:
                raise CommandError(f"{file.what} {file.path} is empty (0 bytes)")
            _check_not_smaller_than_blocks(file, sizes, args.cdc)
        if args.plot:
            writable_file(args.plot, "--plot")
        _check_memory(old_file, new_file, sizes, args.cdc)
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
            advance = add_task("fingerprinting", len(sizes) * (old_file.size + new_file.size))
            for size in sizes:
                try:
                    # Streams over the files opened (and checked) above, not their
                    # paths: a path swapped for a FIFO meanwhile is never opened.
                    old, new = (
                        fingerprint(
                            file.stream(), block_size=size, cdc=args.cdc, progress=advance.advance
                        )
                        for file in (old_file, new_file)
                    )
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


def _check_not_smaller_than_blocks(file: InputFile, sizes: list[int], cdc: bool) -> None:
    """CommandError if the file holds less than one block of some size (or for --cdc,
    one smallest chunk): said before any work rather than after the other sizes ran."""
    from fastplace.blocks import format_size
    from fastplace.blocks.cdc import CDCParams
    from fastplace.cli import CommandError

    for size in sizes:
        smallest = CDCParams.from_average(size).min_size if cdc else size
        if file.size < smallest:
            what = "min_size" if cdc else "block_size"
            raise CommandError(
                f"block size {format_size(size)}: {file.what} {file.path} has {file.size:,} "
                f"bytes, less than one block ({what} = {smallest:,})"
            )


def _check_memory(old: InputFile, new: InputFile, sizes: list[int], cdc: bool) -> None:
    """CommandError with the estimate if fingerprinting both files at some block size
    would not fit in memory (one block size at a time: each one's fingerprints are
    dropped before the next). Blocks are counted as the file's size over the block
    size, or for --cdc over the smallest chunk (a quarter of the average, >= 64 B)."""
    from fastplace.blocks import format_size
    from fastplace.blocks.cdc import CDCParams
    from fastplace.blocks.sources import DEFAULT_WINDOW
    from fastplace.cli.memory import require_memory

    def estimate(size: int) -> tuple[int, int]:
        if cdc:
            params = CDCParams.from_average(size)
            smallest, buffer = params.min_size, max(DEFAULT_WINDOW, 2 * params.max_size)
        else:
            smallest, buffer = size, max(DEFAULT_WINDOW, size)
        blocks = sum(-(-file.size // smallest) for file in (old, new))
        return blocks, BYTES_PER_BLOCK * blocks + buffer + BASE_BYTES

    size = max(sizes, key=lambda s: estimate(s)[1])
    blocks, needed = estimate(size)
    require_memory(
        f"--block-sizes {format_size(size)} on OLD and NEW ({old.size + new.size:,} bytes)",
        needed,
        f"{BYTES_PER_BLOCK} B per block x {blocks:,} blocks + the read buffer + "
        f"{BASE_BYTES >> 20} MiB",
    )


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
