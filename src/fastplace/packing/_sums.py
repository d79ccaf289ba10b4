"""Exact sums of non-negative int64 sizes, where an int64 sum could wrap.

Item sizes go up to 2**63 - 1, so a bin's load or a dimension's total can pass the
int64 range and wrap to a small (or negative) number that then looks feasible. Where a
plain int64 sum is provably safe (``n * largest <= 2**63 - 1``) the plain sum is used;
otherwise each size is split into three 21-bit limbs, which are summed separately: a
limb sum stays below ``n * 2**21``, exact in int64 for fewer than 2**42 items (32 TiB of
int64 sizes, far past any memory), and the limbs are carried into place afterwards.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["INT64_MAX", "fits_int64", "group_sums_exceed", "totals"]

Int64Array = npt.NDArray[np.int64]

INT64_MAX = int(np.iinfo(np.int64).max)
_LIMB_BITS = 21
_LIMB_MASK = (1 << _LIMB_BITS) - 1
_LIMBS = 3  # 3 * 21 = 63 bits: every non-negative int64


def fits_int64(n: int, largest: int) -> bool:
    """Whether any sum of at most ``n`` sizes of at most ``largest`` fits in int64."""
    return n * largest <= INT64_MAX


def _limbs(values: Int64Array) -> list[Int64Array]:
    return [(values >> (_LIMB_BITS * k)) & _LIMB_MASK for k in range(_LIMBS)]


def totals(items: Int64Array) -> list[int]:
    """Exact per-column totals of the (n, d) non-negative ``items``, as Python ints."""
    n = items.shape[0]
    if n == 0:
        return [0] * items.shape[1]
    if fits_int64(n, int(items.max())):
        return [int(v) for v in items.sum(axis=0)]
    sums = [limb.sum(axis=0) for limb in _limbs(items)]
    return [
        sum(int(sums[k][dim]) << (_LIMB_BITS * k) for k in range(_LIMBS))
        for dim in range(items.shape[1])
    ]


def group_sums_exceed(
    items: Int64Array, groups: npt.NDArray[np.intp], n_groups: int, limit: Int64Array
) -> npt.NDArray[np.bool_]:
    """(n_groups, d): whether the sizes of the items in each group add up to more than
    ``limit`` (d,), exactly. ``groups[i]`` in ``0 .. n_groups-1`` is item i's group."""
    n, dims = items.shape
    if n == 0 or fits_int64(n, int(items.max())):
        sums = np.zeros((n_groups, dims), dtype=np.int64)
        np.add.at(sums, groups, items)
        exceeded: npt.NDArray[np.bool_] = sums > limit
        return exceeded
    limbs = []
    for limb in _limbs(items):
        part = np.zeros((n_groups, dims), dtype=np.int64)
        np.add.at(part, groups, limb)
        limbs.append(part)
    # Carry each limb's overflow into the next; the top one keeps whatever is left.
    for k in range(_LIMBS - 1):
        limbs[k + 1] += limbs[k] >> _LIMB_BITS
        limbs[k] &= _LIMB_MASK
    bounds = _limbs(np.asarray(limit, dtype=np.int64))
    # Compare as numbers written in base 2**21, most significant limb first.
    greater = np.zeros((n_groups, dims), dtype=bool)
    equal = np.ones((n_groups, dims), dtype=bool)
    for k in reversed(range(_LIMBS)):
        greater |= equal & (limbs[k] > bounds[k])
        equal &= limbs[k] == bounds[k]
    return greater
