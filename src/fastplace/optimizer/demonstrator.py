"""Demonstrators: hand-written rules the DQN is taught to imitate before it improves on them.

DQfD (Hester et al. 2018) adds to the TD loss a large-margin loss that pushes the
demonstrator's action above every other by a margin. A demonstrator here is a rule
over one decision's feature rows (``fastplace.optimizer.features``), so the
demonstration is available for every transition, including the agent's own
exploration, and the rule can see nothing the network cannot.

* ``first_fit``: candidate 0 (candidates are sorted by server index, and the first
  feasible server is always among them).
* ``locality``: locality-aware first fit. Eligible are first fit's server and the
  active servers among the first ``window`` feasible ones that are at least
  ``min_load`` full; among them, the one caching the most of the container's blocks,
  ties to the lowest index; first fit when none caches anything. Limiting locality to
  busy servers near the front of first fit's order keeps first fit's consolidation
  (the servers at the back drain and go inactive) while a cold start still goes where
  the version's blocks are. :class:`fastplace.sim.policies.LocalityFit` is the same
  rule as a simulator policy.
* ``reach``: locality without the window: any active candidate at least ``min_load``
  full may take the container for its cached blocks, wherever it is in first fit's
  order. On 150 servers the window of 12 covers most active servers anyway; on 1,500
  it covers a few percent of them, and a version's blocks are rarely there
  (docs/optimizer.md, "At scale"). The candidates hold the K/2 feasible servers caching
  the most, so the best-caching active server is nearly always among them.

numpy only: no torch here.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from fastplace.optimizer.features import FEATURE_NAMES

__all__ = [
    "DEMONSTRATORS",
    "LOCALITY_MIN_LOAD",
    "LOCALITY_WINDOW",
    "REACH_WINDOW",
    "first_fit",
    "locality",
    "reach",
]

#: Defaults of the locality rule, chosen on the selection runs (docs/optimizer.md).
LOCALITY_WINDOW = 12
LOCALITY_MIN_LOAD = 0.2

_RANK = FEATURE_NAMES.index("first_fit_rank")
_IS_FIRST = FEATURE_NAMES.index("is_first_fit")
_FREE = FEATURE_NAMES.index("free_memory_before")
_CACHED = FEATURE_NAMES.index("cached_share")
_ACTIVE = FEATURE_NAMES.index("active")
#: first_fit_rank is the position among the feasible servers divided by this.
_RANK_SCALE = 64.0
#: The window of ``reach``: ranks stop at 64, so a window past 64 takes every candidate.
REACH_WINDOW = int(_RANK_SCALE) + 1

Demonstrator = Callable[[npt.NDArray[np.float32]], int]


def first_fit(features: npt.NDArray[np.float32]) -> int:
    """First fit's candidate: always row 0."""
    return 0


def locality(
    features: npt.NDArray[np.float32],
    window: int = LOCALITY_WINDOW,
    min_load: float = LOCALITY_MIN_LOAD,
) -> int:
    """The locality rule's row (module docstring) for one decision's (n, F) features."""
    if features.shape[0] == 0:
        raise ValueError("locality: a decision needs at least one candidate row")
    # Ranks are multiples of 1/64 stored in float32: compare positions, not fractions.
    position = np.rint(features[:, _RANK] * _RANK_SCALE)
    # At least min_load booked, compared at the features' own (float32) precision.
    busy = features[:, _FREE] <= np.float32(1.0 - min_load)
    eligible = (features[:, _IS_FIRST] > 0.5) | (
        (features[:, _ACTIVE] > 0.5) & (position < window) & busy
    )
    cached = np.where(eligible, features[:, _CACHED], -1.0)
    best = int(np.argmax(cached))  # the first maximum: the lowest server index
    return best if cached[best] > 0.0 else 0


def reach(features: npt.NDArray[np.float32], min_load: float = LOCALITY_MIN_LOAD) -> int:
    """The locality rule with no window (module docstring)."""
    return locality(features, window=REACH_WINDOW, min_load=min_load)


#: Demonstrator name -> rule (TrainConfig.demonstrator).
DEMONSTRATORS: dict[str, Demonstrator] = {
    "first_fit": first_fit,
    "locality": locality,
    "reach": reach,
}
