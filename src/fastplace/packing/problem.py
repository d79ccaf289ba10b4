"""Input checks, the lower bound and the feasibility check shared by every policy."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from fastplace.cluster import as_amount_matrix
from fastplace.packing._sums import fits_int64, group_sums_exceed, totals

__all__ = [
    "InfeasiblePacking",
    "as_instance",
    "as_problem",
    "lower_bound",
    "strong_lower_bound",
    "verify_packing",
]

Int64Array = npt.NDArray[np.int64]


class InfeasiblePacking(AssertionError):
    """A policy returned an assignment that breaks a capacity or leaves an item out."""


def as_instance(capacity: npt.ArrayLike, items: npt.ArrayLike) -> tuple[Int64Array, Int64Array]:
    """``capacity`` as an int64 (d,) vector and ``items`` as an int64 (n, d) matrix.

    Raises ValueError (or TypeError for non-numeric data) naming the item and the
    dimension at fault: wrong shape, NaN or fractional sizes, negative sizes. Items
    larger than the bin are left to the caller (:func:`as_problem` refuses them).
    """
    capacity_array = np.asarray(capacity)
    if capacity_array.ndim != 1 or capacity_array.shape[0] < 1:
        raise ValueError(
            f"capacity must be a 1-D vector of d >= 1 amounts, got shape {capacity_array.shape}"
        )
    dims = capacity_array.shape[0]
    # A Python sequence goes to as_amount_matrix as it is, so that a bool among
    # integers is refused (numpy would quietly make True a 1).
    one_row: Any = capacity_array.reshape(1, dims) if capacity is capacity_array else [capacity]
    cap = as_amount_matrix(one_row, "capacity", dims)[0]
    if (cap < 0).any():
        dim = int(np.flatnonzero(cap < 0)[0])
        raise ValueError(f"capacity[{dim}] = {cap[dim]} must be >= 0")
    try:
        item_array = np.asarray(items)
    except ValueError:  # ragged rows: numpy's "inhomogeneous shape" names no row
        as_amount_matrix(items, "items", dims)  # raises naming the row at fault
        raise
    if item_array.size == 0 and item_array.ndim <= 2:
        item_array = item_array.reshape(0, dims)
    matrix = as_amount_matrix(items if item_array.size else item_array, "items", dims)
    negative = matrix < 0
    if negative.any():
        item, dim = (int(v) for v in np.argwhere(negative)[0])
        raise ValueError(f"item {item} has a negative size {matrix[item, dim]} in dimension {dim}")
    return cap, matrix


def as_problem(capacity: npt.ArrayLike, items: npt.ArrayLike) -> tuple[Int64Array, Int64Array]:
    """:func:`as_instance`, and also a ValueError for an item larger than the bin."""
    cap, matrix = as_instance(capacity, items)
    too_large = matrix > cap
    if too_large.any():
        item, dim = (int(v) for v in np.argwhere(too_large)[0])
        raise ValueError(
            f"item {item} needs {matrix[item, dim]} in dimension {dim}, "
            f"more than the bin capacity {cap[dim]}"
        )
    return cap, matrix


def lower_bound(capacity: Int64Array, items: Int64Array) -> int:
    """``max over dimensions of ceil(total size / capacity)``: no packing uses fewer bins.

    Exact for any int64 sizes: the totals are Python ints (see :mod:`._sums`).
    """
    if items.shape[0] == 0:
        return 0
    bound = 1
    for total, cap in zip(totals(items), capacity.tolist(), strict=True):
        if cap > 0:
            bound = max(bound, -(-total // cap))
    return bound


def _martello_toth(sizes: Int64Array, capacity: int) -> int:
    # Martello and Toth's L2 for one dimension (one-dimensional bin packing): for each
    # threshold a, items above capacity - a and items above half the capacity each need
    # a bin of their own, and items in [a, capacity / 2] can only use the room the
    # latter leave. a = 0 gives the volume bound; the best a is one of the sizes.
    w: npt.NDArray[Any] = np.sort(sizes)
    n = w.shape[0]
    if not fits_int64(n, capacity):
        # Prefix sums and n * capacity could wrap in int64: the same steps on Python
        # ints (an object array), slower but exact, for instances this large only.
        w = w.astype(object)
    prefix = np.concatenate([np.zeros(1, dtype=w.dtype), np.cumsum(w)])
    half = int(np.searchsorted(w, capacity // 2, side="right"))  # first w with 2w > capacity
    alphas = np.unique(np.concatenate([np.zeros(1, dtype=w.dtype), w[:half]]))
    big_end = np.searchsorted(w, capacity - alphas, side="right")  # w <= capacity - a
    n_j1 = n - big_end
    n_j2 = (big_end - half).astype(w.dtype)  # object too: n_j2 * capacity below is exact
    sum_j2 = prefix[big_end] - prefix[half]
    small_start = np.searchsorted(w, alphas, side="left")  # w >= a
    sum_j3 = prefix[half] - prefix[small_start]
    excess = sum_j3 - (n_j2 * capacity - sum_j2)
    extra = np.where(excess > 0, -(-excess // capacity), 0)
    return int((n_j1 + n_j2 + extra).max())


def _conflict_clique(capacity: Int64Array, items: Int64Array) -> int:
    # Items no two of which fit together need a bin each. Greedy clique, largest first.
    order = np.argsort(-(items / np.maximum(capacity, 1)).max(axis=1), kind="stable")
    clique: list[int] = []
    for item in order.tolist():
        if not clique:
            clique.append(item)
            continue
        # a + b > capacity as a > capacity - b: b <= capacity, so nothing wraps.
        if (items[clique] > capacity - items[item]).any(axis=1).all():
            clique.append(item)
    return len(clique)


def strong_lower_bound(capacity: Int64Array, items: Int64Array) -> int:
    """A lower bound at least :func:`lower_bound`: also Martello and Toth's L2 in each
    dimension and the size of a set of items no two of which share a bin."""
    if items.shape[0] == 0:
        return 0
    bounds = [lower_bound(capacity, items), _conflict_clique(capacity, items)]
    bounds.extend(
        _martello_toth(items[:, dim], int(capacity[dim]))
        for dim in range(capacity.shape[0])
        if capacity[dim] > 0
    )
    return max(bounds)


def verify_packing(capacity: npt.ArrayLike, items: npt.ArrayLike, assignment: npt.ArrayLike) -> int:
    """Bins used by ``assignment``; raises InfeasiblePacking if it is not a packing.

    A packing gives every item a bin in ``0 .. k-1``, uses each of the k bins, and
    keeps every bin within the capacity in every dimension. Exact for any sizes up to
    2**63 - 1 (loads are summed so that they cannot wrap, see :mod:`._sums`). Raises
    ValueError or TypeError, as :func:`pack` does, for an instance that is not one
    (wrong shape, negative or fractional sizes) or bin indices that are not integers.
    """
    cap, matrix = as_instance(capacity, items)
    bins = np.asarray(assignment)
    n = matrix.shape[0]
    if bins.shape != (n,):
        raise InfeasiblePacking(f"expected {n} bin indices, got shape {bins.shape}")
    if n == 0:
        return 0
    if bins.dtype.kind not in "iu":
        raise TypeError(f"assignment must hold integer bin indices, got dtype {bins.dtype}")
    if bins.dtype.kind == "i" and bins.min() < 0:
        item = int(np.flatnonzero(bins < 0)[0])
        raise InfeasiblePacking(f"item {item} has no bin ({bins[item]})")
    largest = int(bins.max())
    if largest >= n:  # k bins, each used, need k items; no count array of `largest` entries
        present = np.unique(bins)
        raise InfeasiblePacking(
            f"bin {int(np.argmax(present != np.arange(present.shape[0])))} is empty"
        )
    n_bins = largest + 1
    index = bins.astype(np.intp)
    used = np.bincount(index, minlength=n_bins)
    if (used == 0).any():
        raise InfeasiblePacking(f"bin {int(np.flatnonzero(used == 0)[0])} is empty")
    over = group_sums_exceed(matrix, index, n_bins, cap)
    if over.any():
        bin_index, dim = (int(v) for v in np.argwhere(over)[0])
        raise InfeasiblePacking(f"bin {bin_index} is over capacity in dimension {dim}")
    return n_bins
