"""Bin-centric heuristics (Panigrahy et al. 2011): fill one bin at a time.

Open a bin; among the items still unpacked that fit in what is left of it
(feasibility: an integer comparison over all of them at once), score each against
the bin's normalised residual capacity and take the best (choice); when nothing
fits, close the bin and open the next. The native core answers "which bins fit this
item", the reverse question, so this family runs on numpy alone.

Scores, higher is better (``w`` are per-dimension weights, ``x`` the normalised item,
``r`` the normalised residual capacity of the bin):

* ``dot_product``: ``sum(w * x * r)`` -- large items aligned with what is free;
* ``l2_norm``: ``-sum(w * (r - x) ** 2)`` -- the item that leaves the bin closest to full.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
import numpy.typing as npt

from fastplace.packing.sizes import FloatArray, Weight, normalised, weights

__all__ = ["ItemScore", "Score", "bin_centric", "dot_product", "l2_norm"]

Int64Array = npt.NDArray[np.int64]
Score = Literal["dot_product", "l2_norm"]
#: (normalised feasible items (k, d), normalised residual (d,), weights (d,)) -> k
#: scores, highest wins.
ItemScore = Callable[[FloatArray, FloatArray, FloatArray], FloatArray]


def _dot_product(sizes: FloatArray, residual: FloatArray, weight: FloatArray) -> FloatArray:
    return sizes @ (weight * residual)


def _l2_norm(sizes: FloatArray, residual: FloatArray, weight: FloatArray) -> FloatArray:
    return -(np.square(residual - sizes) @ weight)


_SCORES: dict[str, ItemScore] = {"dot_product": _dot_product, "l2_norm": _l2_norm}


def bin_centric(
    items: Int64Array,
    capacity: Int64Array,
    score: Score | ItemScore,
    weight: Weight = "unit",
    dynamic: bool = False,
) -> Int64Array:
    """Fills bins one after the other with the best-scoring item that still fits.

    ``dynamic`` recomputes the weights from the unpacked items after every choice.
    """
    function = _SCORES[score] if isinstance(score, str) else score
    n = items.shape[0]
    sizes = normalised(items, capacity)
    scale = normalised(np.ones_like(capacity), capacity)
    assignment = np.full(n, -1, dtype=np.int64)
    unpacked = np.ones(n, dtype=bool)
    current = weights(sizes, weight)
    residual = capacity.copy()
    bin_index = 0
    left = n
    while left:
        candidates = np.flatnonzero(unpacked & (items <= residual).all(axis=1))
        if candidates.size == 0:
            bin_index += 1
            residual = capacity.copy()
            continue
        scores = function(sizes[candidates], residual * scale, current)
        chosen = int(candidates[np.argmax(scores)])
        assignment[chosen] = bin_index
        unpacked[chosen] = False
        residual -= items[chosen]
        left -= 1
        if dynamic and left:
            current = weights(sizes[unpacked], weight)
    return assignment


def dot_product(items: Int64Array, capacity: Int64Array, weight: Weight = "unit") -> Int64Array:
    """Bin-centric packing by the dot product of item and residual capacity."""
    return bin_centric(items, capacity, "dot_product", weight)


def l2_norm(items: Int64Array, capacity: Int64Array, weight: Weight = "unit") -> Int64Array:
    """Bin-centric packing by the L2 distance between residual capacity and item."""
    return bin_centric(items, capacity, "l2_norm", weight)
