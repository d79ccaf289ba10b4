"""Item-centric heuristics: take the items one by one and choose a bin for each.

The pipeline per item: the core's level bitsets give the open bins with room for the
item (feasibility), a score ranks them, the lowest score wins (choice); when no open
bin has room a new one is opened. First fit needs no score, so it stays inside the
core (``Cluster.first_fit``); best fit scores by normalised free space left, also
inside the core (``Cluster.best_fit``). Ties go to the lowest bin index.

``*_decreasing`` variants first sort the items by a scalar size (see
:mod:`fastplace.packing.sizes`), largest first, ties in input order.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from fastplace.packing._bins import OpenBins
from fastplace.packing.sizes import FloatArray, Measure, Weight, measure, normalised

__all__ = [
    "BinScore",
    "best_fit_decreasing",
    "decreasing_order",
    "first_fit",
    "first_fit_decreasing",
    "fit",
    "scored_fit_decreasing",
]

Int64Array = npt.NDArray[np.int64]
#: (normalised free space of the feasible bins (k, d), normalised item (d,)) -> k scores,
#: lowest wins.
BinScore = Callable[[FloatArray, FloatArray], FloatArray]
#: Chooses an open bin for an item, or returns -1 to open a new one.
Chooser = Callable[[OpenBins, int], int]


def decreasing_order(
    items: Int64Array, capacity: Int64Array, by: Measure = "sum", weight: Weight = "unit"
) -> Int64Array:
    """Item indices by decreasing ``by`` measure of the normalised sizes, ties in input order."""
    sizes = measure(normalised(items, capacity), by, weight)
    return np.argsort(-sizes, kind="stable").astype(np.int64)


def fit(items: Int64Array, capacity: Int64Array, order: Int64Array, choose: Chooser) -> Int64Array:
    """Places ``items[order[0]]``, ``items[order[1]]`` ... each in the bin ``choose`` picks."""
    bins = OpenBins(capacity, expected_bins=max(16, items.shape[0] // 2))
    assignment = np.full(items.shape[0], -1, dtype=np.int64)
    for index in order.tolist():
        chosen = choose(bins, index)
        if chosen < 0:
            chosen = bins.open()
        bins.place(chosen, items[index])
        assignment[index] = chosen
    return assignment


def first_fit(items: Int64Array, capacity: Int64Array) -> Int64Array:
    """Items in input order, each in the lowest-index bin with room."""
    order = np.arange(items.shape[0], dtype=np.int64)
    return fit(items, capacity, order, lambda bins, i: bins.first_fit(items[i]))


def first_fit_decreasing(
    items: Int64Array, capacity: Int64Array, by: Measure = "sum", weight: Weight = "unit"
) -> Int64Array:
    """First fit over the items sorted by decreasing size."""
    order = decreasing_order(items, capacity, by, weight)
    return fit(items, capacity, order, lambda bins, i: bins.first_fit(items[i]))


def best_fit_decreasing(
    items: Int64Array, capacity: Int64Array, by: Measure = "sum", weight: Weight = "unit"
) -> Int64Array:
    """Items by decreasing size, each in the bin it leaves with the least normalised room."""
    order = decreasing_order(items, capacity, by, weight)
    return fit(items, capacity, order, lambda bins, i: bins.best_fit(items[i]))


def scored_fit_decreasing(
    items: Int64Array,
    capacity: Int64Array,
    score: BinScore,
    by: Measure = "sum",
    weight: Weight = "unit",
) -> Int64Array:
    """Items by decreasing size, each in the feasible open bin with the lowest ``score``."""
    order = decreasing_order(items, capacity, by, weight)
    sizes = normalised(items, capacity)
    scale = normalised(np.ones_like(capacity), capacity)

    def choose(bins: OpenBins, index: int) -> int:
        feasible = bins.feasible(items[index])
        if feasible.size == 0:
            return -1
        scores = score(bins.free[feasible] * scale, sizes[index])
        return int(feasible[np.argmin(scores)])

    return fit(items, capacity, order, choose)
