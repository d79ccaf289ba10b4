"""Portfolio policies: run several heuristics and keep the packing with the fewest bins.

No single greedy rule wins on every instance class (Panigrahy et al. 2011; Mommessin,
Erlebach and Shakhlevich 2025), and each takes milliseconds, so running them all and
keeping the best is cheap insurance. ``best`` then hands the winner to the tabu
search of :mod:`fastplace.packing.local_search`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from fastplace.packing.local_search import improve

__all__ = ["best", "portfolio"]

Int64Array = npt.NDArray[np.int64]
Heuristic = Callable[[Int64Array, Int64Array], Int64Array]


def portfolio(items: Int64Array, capacity: Int64Array, members: Sequence[Heuristic]) -> Int64Array:
    """The packing with the fewest bins among ``members``' (ties: the earlier member)."""
    if not members:
        raise ValueError("a portfolio needs at least one heuristic")
    best_assignment: Int64Array | None = None
    best_bins = 0
    for heuristic in members:
        assignment = heuristic(items, capacity)
        bins = int(assignment.max()) + 1 if assignment.size else 0
        if best_assignment is None or bins < best_bins:
            best_assignment, best_bins = assignment, bins
    assert best_assignment is not None
    return best_assignment


def best(
    items: Int64Array, capacity: Int64Array, members: Sequence[Heuristic], seed: int = 0
) -> Int64Array:
    """:func:`portfolio`, then bins emptied by tabu search while it can."""
    return improve(items, capacity, portfolio(items, capacity, members), seed=seed)
