"""The locality rule (``fastplace.optimizer.demonstrator.locality``, the simulator's
``locality`` policy) straight from its definition, over the cluster and block index
themselves instead of the RO's feature rows.

Walk the feasible servers in index order. The first one (first fit's) is eligible;
so is every later one among the first ``window`` that already runs a container and
whose memory is at least ``min_load`` booked. Return the eligible server caching the
most bytes of the version's blocks (the first of equal ones), or first fit's server
when none caches anything; -1 when nothing fits.

One precision note, the only place this model is not plain arithmetic: the rule sees
a server's free memory share as the RO's features store it, a float32, so the load
threshold is compared at float32 precision (``free / capacity <= 1 - min_load``).

The windowless rule (``reach``, ``ReachFit``) looks at the RO's candidates instead of
a window: when more than ``k`` servers fit, the ``k // 2`` feasible servers caching the
most bytes (ties: lower index) and the first feasible servers up to ``k`` in all;
otherwise every feasible server. Among those, the same eligibility and choice.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def locality_choice(  # type: ignore[no-untyped-def]
    cluster, blocks, request: Sequence[int], block_ids: Sequence[int], window: int, min_load: float
) -> int:
    feasible = [int(s) for s in cluster.feasible(request)]
    if not feasible:
        return -1
    return _best_busy(cluster, blocks, feasible[:window], block_ids, min_load)


def reach_choice(  # type: ignore[no-untyped-def]
    cluster, blocks, request: Sequence[int], block_ids: Sequence[int], min_load: float, k: int = 64
) -> int:
    feasible = [int(s) for s in cluster.feasible(request)]
    if not feasible:
        return -1
    ids = np.asarray(block_ids, dtype=np.int64)
    candidates = feasible
    if len(feasible) > k:
        cached = {s: _cached(blocks, s, ids) for s in feasible}
        holders = sorted((s for s in feasible if cached[s] > 0), key=lambda s: (-cached[s], s))
        local = set(holders[: k // 2])
        rest = [s for s in feasible[:k] if s not in local][: k - len(local)]
        candidates = sorted(local | set(rest))
    # First fit's server is always a candidate (the first feasible one is in `rest`).
    return _best_busy(cluster, blocks, candidates, block_ids, min_load)


def _cached(blocks, server: int, ids: np.ndarray) -> int:  # type: ignore[no-untyped-def]
    return int(blocks.cached_bytes_on(np.asarray([server]), ids)[0]) if ids.size else 0


def _best_busy(  # type: ignore[no-untyped-def]
    cluster, blocks, servers: list[int], block_ids: Sequence[int], min_load: float
) -> int:
    """Among ``servers`` (ascending, the first is first fit's and always eligible) the
    eligible one caching the most bytes, the first of equal ones; the first when none
    caches anything."""
    free = cluster.free_copy()
    capacity = cluster.capacity_copy()
    counts = cluster.container_counts()
    ids = np.asarray(block_ids, dtype=np.int64)
    best_server, best_bytes = servers[0], 0
    for position, server in enumerate(servers):
        free_share = np.float32(free[server][0] / max(int(capacity[server][0]), 1))
        busy = counts[server] > 0 and free_share <= np.float32(1.0 - min_load)
        if position > 0 and not busy:
            continue
        cached = _cached(blocks, server, ids)
        if cached > best_bytes:
            best_server, best_bytes = server, cached
    return best_server
