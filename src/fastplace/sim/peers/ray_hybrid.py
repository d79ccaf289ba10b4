"""Ray's default (hybrid) scheduling policy as a simulator policy (``ray_hybrid``).

``src/ray/raylet/scheduling/policy/hybrid_scheduling_policy.cc`` (``ScheduleImpl``,
``GetBestNode``, ``ComputeNodeScoreImpl``), with the defaults of
``src/ray/common/ray_config_def.h``:

1. every feasible node that has the resources available now is a candidate;
2. its score is its critical resource utilisation *before* placing
   (``NodeResources::CalculateCriticalResourceUtilization``: the largest of
   ``1 - available/total`` over CPU, memory and object store memory), set to 0 below
   ``scheduler_spread_threshold`` = 0.5 (lower is better: spread while nodes are below
   half full, then pack);
3. candidates are sorted by node id, then stably by score, and one of the first
   ``max(scheduler_top_k_absolute = 1, int(scheduler_top_k_fraction = 0.2 * nodes))``
   is taken uniformly at random (``nodes`` counts every node of the cluster).

Simplifications (docs/peers.md): no preferred (local) node, as for an actor created
from a driver outside the cluster; node ids are server indices; CPU and memory only (no
object store, no GPU filter); a container that fits nowhere now is refused (-1, so the
simulator frees idle containers and retries) where Ray would queue it on a feasible but
busy node; each partition is its own actor, placed one by one (no placement group).
"""

from __future__ import annotations

import numpy as np

from fastplace.placement_policy import BlockIds, PlacementContext, Policy, Request
from fastplace.sim.peers._common import cpu_memory_columns

__all__ = ["RayHybrid", "top_k"]

#: RAY_CONFIG defaults: scheduler_spread_threshold, scheduler_top_k_fraction,
#: scheduler_top_k_absolute.
SPREAD_THRESHOLD = 0.5
TOP_K_FRACTION = 0.2
TOP_K_ABSOLUTE = 1


def top_k(n_nodes: int) -> int:
    """How many of the best nodes Ray picks among: max(1, int(0.2 * n))."""
    return max(TOP_K_ABSOLUTE, int(n_nodes * TOP_K_FRACTION))


class RayHybrid(Policy):
    """Ray's hybrid policy: critical-resource utilisation, 0 below 0.5, a random pick
    among the best top-k. Sources and simplifications: this module's docstring and
    docs/peers.md."""

    name = "ray_hybrid"

    def choose(self, context: PlacementContext, request: Request, blocks: BlockIds) -> int:
        cluster = context.cluster
        available = cluster.feasible(request)  # in node-id order
        if available.shape[0] == 0:
            return -1
        free, capacity, _ = cluster.server_rows(available)
        columns = list(dict.fromkeys(cpu_memory_columns(cluster)))
        # float32, as Ray computes utilisation, so that ties fall where Ray's fall.
        used = 1 - free[:, columns].astype(np.float32) / np.maximum(capacity[:, columns], 1).astype(
            np.float32
        )
        utilisation = used.max(axis=1)
        score = np.where(utilisation < np.float32(SPREAD_THRESHOLD), np.float32(0), utilisation)
        ranked = np.argsort(score, kind="stable")
        pick = int(context.rng.integers(min(top_k(cluster.n_servers), available.shape[0])))
        return int(available[ranked[pick]])
