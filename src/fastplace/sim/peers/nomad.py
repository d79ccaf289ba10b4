"""Nomad's service-job placement as a simulator policy (``nomad_binpack``).

Nomad's generic stack (``scheduler/stack.go``, ``GenericStack``) for a service job:

1. ``SetNodes`` shuffles the ready nodes once per evaluation (``shuffleNodes``) and sets
   the limit to ``max(2, ceil(log2(n)))`` nodes; each ``Select`` (one per allocation)
   pulls nodes from a static iterator (``scheduler/feasible.go``, ``StaticIterator``)
   that carries on from where the previous ``Select`` of the evaluation stopped,
   wrapping round, and drops those that do not fit.
2. ``BinPackIterator`` (``scheduler/rank.go``) scores each fitting node with
   ``ScoreFitBinPack`` (``nomad/structs/funcs.go``): with free shares ``1 - used/capacity``
   of CPU and memory *after* the allocation, ``20 - (10^freeCpu + 10^freeMem)``, clamped to
   [0, 18], normalised by ``binPackingMaxFitScore`` = 18.
3. ``LimitIterator`` (``scheduler/select.go``) passes on the first ``limit`` scored
   nodes, skipping up to ``maxSkip`` = 3 whose score is at most ``skipScoreThreshold`` =
   0 while others remain (used only when the source runs dry); ``MaxScoreIterator`` takes
   the highest, the first one on ties.

Here one evaluation is one gang (a DI model's missing partitions, one job): the order is
shuffled with ``context.rng`` at the start of each ``place_gang``, and each partition's
``choose`` is one ``Select``. Simplifications (docs/peers.md): no job anti-affinity,
node affinity, spread or rescheduling penalties (their scores are absent for a job
without them, except job anti-affinity, which would penalise a second replica of the
same partition on a node); CPU shares and memory MB are the cluster's CPU and memory
columns; no reserved resources.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from fastplace.cluster import Cluster
from fastplace.placement_policy import BlockIds, PlacementContext, Policy, Request
from fastplace.sim.peers._common import cpu_memory_columns, utilisation_after

__all__ = ["NomadBinPack", "nomad_limit", "score_fit_binpack"]

#: ``binPackingMaxFitScore`` in scheduler/rank.go.
BIN_PACKING_MAX_FIT_SCORE = 18.0
#: ``skipScoreThreshold`` and ``maxSkip`` in scheduler/stack.go.
SKIP_SCORE_THRESHOLD = 0.0
MAX_SKIP = 3


def nomad_limit(n_nodes: int) -> int:
    """How many fitting nodes a service job's ``Select`` scores: max(2, ceil(log2 n))."""
    limit = 2
    if n_nodes > 0:
        limit = max(limit, math.ceil(math.log2(n_nodes)))
    return limit


def score_fit_binpack(
    requested: npt.NDArray[np.int64], capacity: npt.NDArray[np.int64], cpu: int, memory: int
) -> npt.NDArray[np.float64]:
    """``ScoreFitBinPack`` of each row, in [0, 18] (not yet normalised)."""
    free_cpu = 1 - requested[:, cpu] / np.maximum(capacity[:, cpu], 1)
    free_memory = 1 - requested[:, memory] / np.maximum(capacity[:, memory], 1)
    score = 20.0 - (np.power(10.0, free_cpu) + np.power(10.0, free_memory))
    return np.clip(score, 0.0, 18.0)


class NomadBinPack(Policy):
    """Nomad's service scheduler: shuffled nodes, the first max(2, ceil(log2 n)) that fit
    scored by ``ScoreFitBinPack``, the best taken. Sources and simplifications: this
    module's docstring and docs/peers.md."""

    name = "nomad_binpack"

    def __init__(self) -> None:
        self._cluster: Cluster | None = None
        self._order: npt.NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        self._offset = 0
        #: The nodes the last ``Select`` scored, in order (tests check the limit).
        self.last_scored: npt.NDArray[np.int64] = np.zeros(0, dtype=np.int64)

    def set_nodes(self, context: PlacementContext) -> None:
        """``SetNodes``: a fresh shuffle of every node, the iterator at its start."""
        self._cluster = context.cluster
        self._order = context.rng.permutation(context.cluster.n_servers).astype(np.int64)
        self._offset = 0

    def place_gang(
        self, context: PlacementContext, requests: list[Request], blocks: list[BlockIds]
    ) -> list[tuple[int, int]] | None:
        self.set_nodes(context)  # one evaluation per gang
        return super().place_gang(context, requests, blocks)

    def choose(self, context: PlacementContext, request: Request, blocks: BlockIds) -> int:
        cluster = context.cluster
        n = cluster.n_servers
        if self._cluster is not cluster or self._order.shape[0] != n:
            self.set_nodes(context)  # a Select outside place_gang: its own evaluation
        fits = np.zeros(n, dtype=np.bool_)
        fits[cluster.feasible(request)] = True
        visiting = np.concatenate((self._order[self._offset :], self._order[: self._offset]))
        positions = np.flatnonzero(fits[visiting])
        limit = nomad_limit(n)
        # The iterator consumes at most limit + MAX_SKIP fitting nodes: score just those.
        pulled = positions[: limit + MAX_SKIP]
        candidates = visiting[pulled]
        if candidates.shape[0] == 0:  # every node visited: the offset comes round again
            self.last_scored = candidates
            return -1
        requested, capacity = utilisation_after(cluster, candidates, request)
        cpu, memory = cpu_memory_columns(cluster)
        scores = score_fit_binpack(requested, capacity, cpu, memory) / BIN_PACKING_MAX_FIT_SCORE
        returned, consumed, dry = _limit_iterator(scores, limit)
        # The static iterator moves past every node it visits, fitting or not; one that
        # ran dry went round every node and stands where it started.
        visited = n if dry else int(pulled[consumed - 1]) + 1
        self._offset = (self._offset + visited) % n
        order = np.asarray(returned, dtype=np.int64)
        self.last_scored = candidates[order]
        best = order[int(np.argmax(scores[order]))]  # argmax: the first maximum
        return int(candidates[best])


def _limit_iterator(scores: npt.NDArray[np.float64], limit: int) -> tuple[list[int], int, bool]:
    """``LimitIterator.Next`` (scheduler/select.go) until it stops, over options in source
    order with these scores: (indices of the options it returns, in order; options pulled
    from the source; whether the source ran dry). An option scoring at most the
    threshold is held back, up to MAX_SKIP of them, and handed out only once the source
    runs dry."""
    total = scores.shape[0]
    pulled = 0
    skipped: list[int] = []
    next_skipped = 0
    returned: list[int] = []
    dry = False

    def source_next() -> int | None:
        nonlocal pulled, dry
        if pulled == total:
            dry = True
            return None
        pulled += 1
        return pulled - 1

    def next_option() -> int | None:
        nonlocal next_skipped
        option = source_next()
        if option is None and next_skipped < len(skipped):
            next_skipped += 1
            return skipped[next_skipped - 1]
        return option

    while len(returned) < limit:
        option = next_option()
        if option is None:
            break
        while (
            option is not None
            and scores[option] <= SKIP_SCORE_THRESHOLD
            and len(skipped) < MAX_SKIP
        ):
            skipped.append(option)
            option = source_next()
        if option is None:
            option = next_option()
            if option is None:
                break
        returned.append(option)
    return returned, pulled, dry
