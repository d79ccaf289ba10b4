"""The named packing policies and :func:`pack`, the one entry point that runs them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from fastplace._checks import integer
from fastplace.packing import bin_centric, item_centric, portfolio
from fastplace.packing.problem import InfeasiblePacking, as_problem, verify_packing

__all__ = ["POLICIES", "Policy", "pack"]

Int64Array = npt.NDArray[np.int64]
Heuristic = Callable[[Int64Array, Int64Array], Int64Array]


@dataclass(frozen=True)
class Policy:
    """A named packing rule: ``run(items, capacity, seed)`` returns a bin index per item."""

    name: str
    summary: str
    run: Callable[[Int64Array, Int64Array, int], Int64Array]


def _deterministic(heuristic: Heuristic) -> Callable[[Int64Array, Int64Array, int], Int64Array]:
    return lambda items, capacity, seed: heuristic(items, capacity)


# The greedy heuristics, in the order the portfolio tries them (ties keep the earlier).
_HEURISTICS: dict[str, tuple[str, Heuristic]] = {
    "first_fit_decreasing": (
        "first fit, items by decreasing sum of normalised sizes weighted by mean demand",
        lambda items, cap: item_centric.first_fit_decreasing(items, cap, "sum", "average"),
    ),
    "first_fit_decreasing_max": (
        "first fit, items by decreasing largest normalised size",
        lambda items, cap: item_centric.first_fit_decreasing(items, cap, "max"),
    ),
    "first_fit_decreasing_product": (
        "first fit, items by decreasing product of normalised sizes",
        lambda items, cap: item_centric.first_fit_decreasing(items, cap, "product"),
    ),
    "first_fit_decreasing_l2": (
        "first fit, items by decreasing L2 norm of normalised sizes weighted by mean demand",
        lambda items, cap: item_centric.first_fit_decreasing(items, cap, "l2", "average"),
    ),
    "best_fit_decreasing": (
        "items as first_fit_decreasing, each in the bin it leaves with the least room",
        lambda items, cap: item_centric.best_fit_decreasing(items, cap, "sum", "average"),
    ),
    "dot_product": (
        "bin-centric (Panigrahy): fill each bin with the item of largest weighted dot "
        "product with its residual capacity",
        lambda items, cap: bin_centric.bin_centric(
            items, cap, "dot_product", "average", dynamic=True
        ),
    ),
    "l2_norm": (
        "bin-centric (Panigrahy): fill each bin with the item leaving the smallest "
        "weighted L2 norm of residual capacity",
        lambda items, cap: bin_centric.bin_centric(items, cap, "l2_norm", "average", dynamic=True),
    ),
}
_MEMBERS = tuple(heuristic for _, heuristic in _HEURISTICS.values())

#: Every policy :func:`pack` accepts, by name.
POLICIES: dict[str, Policy] = {
    "first_fit": Policy(
        "first_fit",
        "items in input order, each in the lowest-index bin with room",
        _deterministic(item_centric.first_fit),
    ),
    **{
        name: Policy(name, summary, _deterministic(heuristic))
        for name, (summary, heuristic) in _HEURISTICS.items()
    },
    "portfolio": Policy(
        "portfolio",
        "every greedy policy above except first_fit; keeps the fewest bins",
        _deterministic(lambda items, cap: portfolio.portfolio(items, cap, _MEMBERS)),
    ),
    "best": Policy(
        "best",
        "portfolio, then tabu search empties bins while it can (needs numba)",
        lambda items, cap, seed: portfolio.best(items, cap, _MEMBERS, seed),
    ),
}


def pack(
    capacity: npt.ArrayLike, items: npt.ArrayLike, policy: str = "best", *, seed: int = 0
) -> Int64Array:
    """Packs ``items`` into as few bins of ``capacity`` as ``policy`` manages.

    ``capacity`` is the (d,) vector of one bin, ``items`` the (n, d) sizes, integers
    (or whole floats) >= 0. Returns an int64 (n,) array: the bin, ``0 .. k-1``, of each
    item; every bin is used and none is over capacity in any dimension. ``seed`` fixes
    the tie-breaks of the randomised policies (only ``best``).

    Raises ValueError for a malformed instance (naming the item and dimension at
    fault) or an unknown policy (listing the valid ones), TypeError for a ``seed``
    that is not an integer (a bool or a float).
    """
    try:
        chosen = POLICIES[policy]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown packing policy {policy!r}; expected one of {', '.join(POLICIES)}"
        ) from None
    seed = integer(seed, "seed", minimum=0)
    cap, matrix = as_problem(capacity, items)
    if matrix.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    assignment = chosen.run(matrix, cap, seed)
    try:
        verify_packing(cap, matrix, assignment)
    except InfeasiblePacking as error:  # a bug in the policy, never the caller's fault
        raise InfeasiblePacking(f"policy {policy!r} returned a bad packing: {error}") from error
    return assignment
