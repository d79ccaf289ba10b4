"""Offline vector bin packing: all items known up front, identical bins, fewest bins.

>>> small, large = [3, 3], [7, 7]
>>> pack([10, 10], [small, small, small, large, large, large], policy="first_fit").tolist()
[0, 0, 0, 1, 2, 3]
>>> pack([10, 10], [small, small, small, large, large, large], policy="best").tolist()
[0, 1, 2, 0, 1, 2]

Policies (see :data:`POLICIES` for the full list with one-line summaries):

* item-centric (:mod:`.item_centric`): ``first_fit``, ``first_fit_decreasing`` and its
  orderings ``_max``, ``_product``, ``_l2``, and ``best_fit_decreasing``; feasibility
  and the choice of bin come from the native core's bitsets;
* bin-centric (:mod:`.bin_centric`, Panigrahy et al. 2011): ``dot_product``, ``l2_norm``;
* ``portfolio`` (every greedy one, fewest bins) and ``best`` (portfolio plus the tabu
  search of :mod:`.local_search`, which imports numba on first use).

:func:`read_vbp` reads VPSolver ``.vbp`` instances.
"""

from __future__ import annotations

from fastplace.packing.policies import POLICIES, Policy, pack
from fastplace.packing.problem import (
    InfeasiblePacking,
    lower_bound,
    strong_lower_bound,
    verify_packing,
)
from fastplace.packing.vbp import VbpFormatError, VbpInstance, read_vbp

__all__ = [
    "POLICIES",
    "InfeasiblePacking",
    "Policy",
    "VbpFormatError",
    "VbpInstance",
    "lower_bound",
    "pack",
    "read_vbp",
    "strong_lower_bound",
    "verify_packing",
]
