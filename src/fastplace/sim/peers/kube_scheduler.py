"""kube-scheduler's default profile as a simulator policy (``k8s_default``), and its
bin-packing configuration (``k8s_most_allocated``).

One scheduling cycle per container, as kube-scheduler runs one per pod:

1. **Filter** (``pkg/scheduler/schedule_one.go``, ``findNodesThatPassFilters``): nodes
   are visited in order starting at ``nextStartNodeIndex``, wrapping round, and the
   search stops once ``numFeasibleNodesToFind`` nodes fit; the start then moves past
   every node visited (``nextStartNodeIndex = (start + processed) % len(nodes)``).
   ``numFeasibleNodesToFind``: every node below 100 nodes; else ``percentageOfNodesToScore``
   percent of them, whose adaptive default is ``50 - nodes/125`` (integer division), at
   least 5, and the count at least 100 (``minFeasibleNodesToFind``,
   ``minFeasibleNodesPercentageToFind``). Fit is ``cluster.feasible(request)``
   (NodeResourcesFit's filter, NodeUnschedulable for cordoned servers).
2. **Score** the nodes found, each plugin 0-100 (``MaxNodeScore``) in integer
   arithmetic, weight 1 each, summed:

   * NodeResourcesFit ``LeastAllocated``
     (``pkg/scheduler/framework/plugins/noderesources/least_allocated.go``): per
     resource ``(capacity - requested) * 100 / capacity``, requested counting the pod;
     the mean over resources (integer). ``k8s_most_allocated`` uses ``MostAllocated``
     (``most_allocated.go``): ``requested * 100 / capacity``.
   * NodeResourcesBalancedAllocation (``balanced_allocation.go``): the fractions
     requested/capacity (each at most 1), their standard deviation (``|f1 - f2| / 2``
     for two resources), score ``int((1 - std) * 100)``.
   * ImageLocality (``pkg/scheduler/framework/plugins/imagelocality/image_locality.go``):
     the sum over the container's "images" already on the node of
     ``size * nodes holding it / all nodes``, clamped to [23 MB, 1000 MB] (one
     container per pod) and mapped to 0-100. The images are the blocks of the
     container's model file: :meth:`BlockIndex.holder_spread_bytes` gives, per node,
     the sum of size times holders over the blocks it caches.
3. **Select** (``selectHost`` in ``schedule_one.go``): the highest total, ties broken
   uniformly at random (reservoir sampling there, ``context.rng`` here).

Simplifications (all listed in docs/peers.md): no taints, affinities or topology
spread (with none set, their plugins score every node alike); nodes in server index
order (kube-scheduler's node tree interleaves zones); the filter is sequential, so
``processed`` is exact where the parallel filter may check a few nodes more.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import numpy.typing as npt

from fastplace._checks import integer
from fastplace.cluster import Cluster
from fastplace.placement_policy import BlockIds, PlacementContext, Policy, Request
from fastplace.sim.peers._common import utilisation_after

__all__ = [
    "KubeDefault",
    "KubeMostAllocated",
    "balanced_allocation",
    "image_locality",
    "least_allocated",
    "most_allocated",
    "num_feasible_nodes_to_find",
]

MAX_NODE_SCORE = 100
MIN_FEASIBLE_NODES_TO_FIND = 100
MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND = 5
MB = 1024 * 1024
#: ImageLocality's bounds: 90% of Docker Hub images fall in this range.
IMAGE_MIN_THRESHOLD = 23 * MB
IMAGE_MAX_CONTAINER_THRESHOLD = 1000 * MB


def num_feasible_nodes_to_find(n_nodes: int, percentage_of_nodes_to_score: int = 0) -> int:
    """How many feasible nodes kube-scheduler looks for before it stops filtering
    (``numFeasibleNodesToFind``; percentage 0 = the adaptive default)."""
    if n_nodes < MIN_FEASIBLE_NODES_TO_FIND:
        return n_nodes
    percentage = percentage_of_nodes_to_score
    if percentage == 0:
        percentage = max(50 - n_nodes // 125, MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND)
    found = n_nodes * percentage // 100
    return max(found, MIN_FEASIBLE_NODES_TO_FIND)


def least_allocated(
    requested: npt.NDArray[np.int64], capacity: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """NodeResourcesFit LeastAllocated, one score per row (resources weighted 1)."""
    safe = np.maximum(capacity, 1)
    per_resource = np.where(
        requested > capacity, 0, (capacity - requested) * MAX_NODE_SCORE // safe
    )
    return _weighted_mean(per_resource, capacity)


def most_allocated(
    requested: npt.NDArray[np.int64], capacity: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """NodeResourcesFit MostAllocated: requested above capacity counts as capacity."""
    safe = np.maximum(capacity, 1)
    per_resource = np.minimum(requested, capacity) * MAX_NODE_SCORE // safe
    return _weighted_mean(per_resource, capacity)


def _weighted_mean(
    per_resource: npt.NDArray[np.int64], capacity: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    # A resource a node has none of is skipped, as resourceAllocationScorer does.
    counted = capacity > 0
    total = np.where(counted, per_resource, 0).sum(axis=1)
    weights = counted.sum(axis=1)
    return np.where(weights > 0, total // np.maximum(weights, 1), 0).astype(np.int64)


def balanced_allocation(
    requested: npt.NDArray[np.int64], capacity: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """NodeResourcesBalancedAllocation: ``int((1 - std of the fractions) * 100)``."""
    counted = capacity > 0
    fractions = np.minimum(requested / np.maximum(capacity, 1), 1.0)
    n = counted.sum(axis=1)
    if fractions.shape[1] == 2 and bool(counted.all()):
        std = np.abs(fractions[:, 0] - fractions[:, 1]) / 2
    else:  # the population standard deviation; 0 for a single resource
        mean = np.where(counted, fractions, 0.0).sum(axis=1) / np.maximum(n, 1)
        squares = np.where(counted, (fractions - mean[:, None]) ** 2, 0.0).sum(axis=1)
        std = np.where(n >= 2, np.sqrt(squares / np.maximum(n, 1)), 0.0)
    score: npt.NDArray[np.int64] = ((1 - std) * MAX_NODE_SCORE).astype(np.int64)
    return score


def image_locality(
    context: PlacementContext, nodes: npt.NDArray[np.int64], blocks: BlockIds
) -> npt.NDArray[np.int64]:
    """ImageLocality with the container's file blocks as its images, per node."""
    holders, spread, _ = context.blocks.holder_spread_bytes(blocks)
    total_nodes = max(context.cluster.n_servers, 1)
    summed = np.zeros(nodes.shape[0], dtype=np.int64)
    if holders.shape[0]:
        at = np.minimum(np.searchsorted(holders, nodes), holders.shape[0] - 1)
        held = holders[at] == nodes
        summed = np.where(held, spread[at] // total_nodes, 0)
    clamped = np.clip(summed, IMAGE_MIN_THRESHOLD, IMAGE_MAX_CONTAINER_THRESHOLD)
    span = IMAGE_MAX_CONTAINER_THRESHOLD - IMAGE_MIN_THRESHOLD
    return (MAX_NODE_SCORE * (clamped - IMAGE_MIN_THRESHOLD) // span).astype(np.int64)


class KubeDefault(Policy):
    """kube-scheduler's default profile: filter the first ``numFeasibleNodesToFind``
    fitting nodes from a round-robin start, score LeastAllocated + BalancedAllocation +
    ImageLocality, the best total with ties at random. Sources and simplifications:
    this module's docstring and docs/peers.md."""

    name = "k8s_default"
    most: ClassVar[bool] = False

    def __init__(self, percentage_of_nodes_to_score: int = 0) -> None:
        self.percentage = integer(
            percentage_of_nodes_to_score, "percentage_of_nodes_to_score", minimum=0, maximum=100
        )
        self._cluster: Cluster | None = None
        self._next_start = 0
        #: How many nodes the last cycle scored (tests check the filter's stop).
        self.last_scored = 0

    def _start(self, cluster: Cluster) -> int:
        if self._cluster is not cluster:  # a new run starts at node 0
            self._cluster = cluster
            self._next_start = 0
        return self._next_start

    def nodes_to_score(self, cluster: Cluster, request: Request) -> npt.NDArray[np.int64]:
        """The filter phase: the fitting nodes the cycle scores, in visiting order; moves
        the round-robin start past every node visited."""
        n = cluster.n_servers
        start = self._start(cluster)
        feasible = cluster.feasible(request)
        wanted = num_feasible_nodes_to_find(n, self.percentage)
        split = int(np.searchsorted(feasible, start))
        ordered = np.concatenate((feasible[split:], feasible[:split]))
        found = ordered[:wanted]
        if found.shape[0] == wanted and wanted > 0:
            processed = (int(found[-1]) - start) % n + 1  # through the last node found
        else:
            processed = n  # every node was visited
        self._next_start = (start + processed) % n if n else 0
        return found

    def choose(self, context: PlacementContext, request: Request, blocks: BlockIds) -> int:
        nodes = self.nodes_to_score(context.cluster, request)
        self.last_scored = int(nodes.shape[0])
        if nodes.shape[0] == 0:
            return -1
        scores = self.scores(context, nodes, request, blocks)
        best = np.flatnonzero(scores == scores.max())
        return int(nodes[best[int(context.rng.integers(best.shape[0]))]])

    def scores(
        self,
        context: PlacementContext,
        nodes: npt.NDArray[np.int64],
        request: Request,
        blocks: BlockIds,
    ) -> npt.NDArray[np.int64]:
        """The summed plugin scores of ``nodes`` (each plugin 0-100, weight 1)."""
        requested, capacity = utilisation_after(context.cluster, nodes, request)
        fit = most_allocated if self.most else least_allocated
        return (
            fit(requested, capacity)
            + balanced_allocation(requested, capacity)
            + image_locality(context, nodes, blocks)
        )


class KubeMostAllocated(KubeDefault):
    """kube-scheduler with NodeResourcesFit ``MostAllocated`` (the bin-packing
    configuration), everything else as ``k8s_default``."""

    name = "k8s_most_allocated"
    most = True
