"""argparse type functions: every flag value is checked while the command line is parsed.

Each function takes the flag's text and returns the value, or raises
ArgumentTypeError saying what is wrong with that text; the parser then prints
``fastplace CMD: error: argument --flag: 'TEXT' must be ...`` and exits with status 2,
before any work starts. Bounds are stated in each flag's help.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

__all__ = [
    "MAX_BLOCK_SIZE",
    "MAX_SEED",
    "block_sizes",
    "integer",
    "number",
    "seed",
]

#: Seeds go to numpy, torch and the packing search; all take any int64 >= 0.
MAX_SEED = 2**63 - 1
#: The largest block any block-cutting command takes: the CDC chunker's largest chunk
#: (fastplace.blocks.cdc.MAX_SIZE_CEILING), and a read buffer of that size.
MAX_BLOCK_SIZE = 1 << 30


def _integer_text(text: str) -> int:
    try:
        return int(text.replace("_", ""))  # underscores allowed, as in 10_000
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


def integer(low: int, high: int) -> Callable[[str], int]:
    """An integer in [low, high]."""

    def parse(text: str) -> int:
        value = _integer_text(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"{text!r} must be >= {low:,}")
        if value > high:
            raise argparse.ArgumentTypeError(f"{text!r} must be <= {high:,}")
        return value

    parse.__name__ = f"integer in [{low}, {high}]"
    return parse


#: A random seed: 0 .. 2**63 - 1.
seed = integer(0, MAX_SEED)


def number(
    low: float, high: float, *, low_open: bool = False, high_open: bool = False
) -> Callable[[str], float]:
    """A finite float in the interval from ``low`` to ``high`` (each end closed unless
    ``*_open``); ``inf`` and ``nan`` are refused (an endless run, or no order at all)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        if value < low or (low_open and value == low):
            raise argparse.ArgumentTypeError(
                f"{text!r} must be {'>' if low_open else '>='} {_bound(low)}"
            )
        if value > high or (high_open and value == high):
            relation = "<" if high_open else "<="
            raise argparse.ArgumentTypeError(f"{text!r} must be {relation} {_bound(high)}")
        return value

    parse.__name__ = "number"
    return parse


def block_sizes(text: str) -> list[int]:
    """A comma-separated list of byte sizes (32K, 1M, ...), each 1 .. MAX_BLOCK_SIZE."""
    from fastplace.blocks.sizes import format_size, parse_sizes

    try:
        sizes = parse_sizes(text, field="size")
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    for size in sizes:
        if size > MAX_BLOCK_SIZE:
            raise argparse.ArgumentTypeError(
                f"{text!r}: {format_size(size)} is larger than the largest block, "
                f"{format_size(MAX_BLOCK_SIZE)}"
            )
    return list(dict.fromkeys(sizes))  # each size once: a repeat is the same pass again


def _bound(value: float) -> str:
    """A bound as people write it: 86,400 and 31,708,800, not 3.17088e+07."""
    return f"{int(value):,}" if value.is_integer() and abs(value) < 1e15 else f"{value:,g}"
