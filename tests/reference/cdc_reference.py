"""Plain-Python twin of the numba chunking kernel: one byte at a time, no tricks.

FastCDC 2020 with normalised chunking, as in ``fastplace.blocks._cdc_kernels``: hashing
starts ``min_size`` bytes into a chunk from hash 0, ``h = (h << 1) + gear[byte]`` modulo
2**64; the first byte whose hash has all ``mask_s`` bits zero (before the average size)
or all ``mask_l`` bits zero (from it on) starts the next chunk. Only whole byte pairs are
examined (the region ends are rounded down to even offsets), as in the FastCDC 2020
reference code. Slow and obvious on purpose: tests compare the fast kernel with it.
"""

from __future__ import annotations

from collections.abc import Sequence

_MASK64 = (1 << 64) - 1


def chunk_length(
    data: bytes,
    start: int,
    *,
    min_size: int,
    avg_size: int,
    max_size: int,
    mask_s: int,
    mask_l: int,
    gear: Sequence[int],
) -> int:
    """Length of the chunk that starts at ``data[start]`` (data ends where the input ends)."""
    remaining = len(data) - start
    if remaining <= min_size:
        return remaining
    center = avg_size
    if remaining > max_size:
        remaining = max_size
    elif remaining < center:
        center = remaining
    h = 0
    for offset in range(min_size // 2 * 2, remaining // 2 * 2):
        h = ((h << 1) + gear[data[start + offset]]) & _MASK64
        mask = mask_s if offset < center // 2 * 2 else mask_l
        if h & mask == 0:
            return offset
    return remaining


def chunk_boundaries(
    data: bytes,
    *,
    min_size: int,
    avg_size: int,
    max_size: int,
    mask_s: int,
    mask_l: int,
    gear: Sequence[int],
) -> list[int]:
    """End offsets of all chunks of ``data``; the last one is ``len(data)``."""
    ends = []
    position = 0
    while position < len(data):
        position += chunk_length(
            data,
            position,
            min_size=min_size,
            avg_size=avg_size,
            max_size=max_size,
            mask_s=mask_s,
            mask_l=mask_l,
            gear=gear,
        )
        ends.append(position)
    return ends
