"""Placement policies: feasibility from the core's bitsets, then a score, then a choice.

Every policy answers one question, ``choose(context, request, blocks)``: which server
gets this container (-1: none fits). The pipeline is the same for all of them:

1. feasibility: ``cluster.feasible(request)`` (level bitsets, exact check) — cheap,
   and it removes every server a score could wrongly pick;
2. score: a policy-specific number per feasible server (numpy, vectorised);
3. choice: the best score, ties to the lowest server index (first-fit order, which
   also consolidates load onto few servers).

``first_fit`` and ``best_fit`` skip the Python pipeline and run it inside C++.
A DI model's partitions are placed as a gang: all of them, or none.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

# The interface lives in fastplace.placement_policy (so that fastplace.optimizer need
# not import this module); re-exported here under its old names.
from fastplace._checks import integer
from fastplace.placement_policy import BlockIds, PlacementContext, Policy, Request, checked_gang
from fastplace.sim.peers import (
    KubeDefault,
    KubeMostAllocated,
    NomadBinPack,
    OpenWhisk,
    PASch,
    RayHybrid,
)

__all__ = [
    "POLICIES",
    "BestFit",
    "BlockIds",
    "DotProduct",
    "FirstFit",
    "Hybrid",
    "L2Norm",
    "LocalityFit",
    "PlacementContext",
    "Policy",
    "RandomFit",
    "Request",
    "Similarity",
    "make_policy",
]


class _NativeGang(Policy):
    """Policies the core runs itself, gang and all, under one lock."""

    native: ClassVar[str]

    def choose(self, context: PlacementContext, request: Request, blocks: BlockIds) -> int:
        cluster = context.cluster
        return (
            cluster.first_fit(request) if self.native == "first_fit" else cluster.best_fit(request)
        )

    def place_gang(
        self, context: PlacementContext, requests: list[Request], blocks: list[BlockIds]
    ) -> list[tuple[int, int]] | None:
        # Checked first: the core's ValueError below must mean "does not fit" only.
        checked = checked_gang(context.cluster, requests, blocks)
        try:
            return context.cluster.place_gang(checked, self.native)
        except ValueError:  # the gang does not fit; the core placed nothing
            return None


class FirstFit(_NativeGang):
    """The paper's greedy finder: the lowest-index server that fits."""

    name = "first_fit"
    native = "first_fit"


class BestFit(_NativeGang):
    """The server left with the least normalised free space."""

    name = "best_fit"
    native = "best_fit"


class _ScoredPolicy(Policy):
    """feasible -> score -> argmax, ties to the lowest index."""

    def choose(self, context: PlacementContext, request: Request, blocks: BlockIds) -> int:
        feasible = context.cluster.feasible(request)
        if feasible.shape[0] == 0:
            return -1
        scores = self.score(context, feasible, request, blocks)
        return int(feasible[int(np.argmax(scores))])

    @abstractmethod
    def score(
        self,
        context: PlacementContext,
        feasible: npt.NDArray[np.int64],
        request: Request,
        blocks: BlockIds,
    ) -> npt.NDArray[np.float64]:
        """Higher is better, one value per feasible server."""


def _free_and_active(
    context: PlacementContext, feasible: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """Free amounts of the feasible servers and whether each already runs a container,
    read in O(len(feasible)) from the core."""
    free, _, counts = context.cluster.server_rows(feasible)
    return free, counts > 0


class DotProduct(_ScoredPolicy):
    """Panigrahy et al.'s dot-product alignment (as in Tetris): among servers already
    in use, the one whose free vector best aligns with the request; an empty server
    is opened (first fit) only when no active server fits."""

    name = "dot_product"

    def score(
        self,
        context: PlacementContext,
        feasible: npt.NDArray[np.int64],
        request: Request,
        blocks: BlockIds,
    ) -> npt.NDArray[np.float64]:
        free, active = _free_and_active(context, feasible)
        alignment = (free * context.scale) @ (np.asarray(request) * context.scale)
        return np.where(active, alignment, -1.0 - feasible * 1e-12)


class L2Norm(_ScoredPolicy):
    """Panigrahy et al.'s norm-based greedy: among servers in use, the one whose free
    vector is closest (L2, normalised) to the request, i.e. the tightest fit."""

    name = "l2_norm"

    def score(
        self,
        context: PlacementContext,
        feasible: npt.NDArray[np.int64],
        request: Request,
        blocks: BlockIds,
    ) -> npt.NDArray[np.float64]:
        free, active = _free_and_active(context, feasible)
        left = (free - np.asarray(request)) * context.scale
        distance = (left * left).sum(axis=1)
        return np.where(active, -distance, -10.0 - feasible * 1e-12)


class Similarity(_ScoredPolicy):
    """Block locality: the server already caching the most bytes of the container's
    blocks, so a cold start downloads least.

    Order of preference (lexicographic): servers already in use before empty ones (so
    locality does not cost extra servers); then the guard against piling up: servers
    that already got ``max_per_server`` partitions of the same gang, or whose memory
    would pass ``max_load``, come last (one server holding a version's blocks would
    otherwise attract every partition of every version, one failure taking them all);
    then the most cached bytes; then first-fit order."""

    name = "similarity"

    def __init__(self, max_load: float = 1.0, max_per_server: int = 2) -> None:
        if not 0.0 < max_load <= 1.0:
            raise ValueError(f"max_load = {max_load} must be in (0, 1]")
        self.max_load = max_load
        self.max_per_server = integer(max_per_server, "max_per_server", minimum=1)

    def score(
        self,
        context: PlacementContext,
        feasible: npt.NDArray[np.int64],
        request: Request,
        blocks: BlockIds,
    ) -> npt.NDArray[np.float64]:
        cached = np.asarray(context.blocks.cached_bytes_on(feasible, blocks), dtype=np.float64)
        free, capacity, counts = context.cluster.server_rows(feasible)
        load_after = 1.0 - (free[:, 0] - request[0]) / np.maximum(capacity[:, 0], 1)
        piled = load_after > self.max_load
        if self.gang:
            same_gang = np.bincount(self.gang, minlength=int(feasible.max()) + 1)[feasible]
            piled |= same_gang >= self.max_per_server
        # Cached bytes stay far below 1e15, so the penalties keep the order strict;
        # argmax returns the first maximum and feasible is sorted by server index.
        empty = np.where(counts > 0, 0.0, 1e16)
        return cached - np.where(piled, 1e15, 0.0) - empty


class LocalityFit(Policy):
    """Locality-aware first fit: first fit's server, unless an active server among the
    first ``window`` feasible ones, at least ``min_load`` full, caches more of the
    container's blocks (then the one caching most, ties to the lowest index).

    Unlike ``similarity``, locality never pulls a container to the back of first fit's
    order or onto a nearly idle server, so the servers first fit would let drain still
    drain: fewer bytes than first fit at about its server count. It is the rule the
    resource optimizer is taught to imitate (``fastplace.optimizer.demonstrator``), and
    it decides on the same candidate features the RO sees, so both are the same rule by
    construction."""

    name = "locality"

    def __init__(self, window: int | None = None, min_load: float | None = None) -> None:
        from fastplace.optimizer.demonstrator import LOCALITY_MIN_LOAD, LOCALITY_WINDOW, locality
        from fastplace.optimizer.features import DEFAULT_K
        from fastplace.optimizer.native import native_decision

        # The RO's candidates and features from the core (equal to features.decision's,
        # tests/test_ro_decision.py, ~10x faster than that numpy reference), then the rule.
        self._decide = native_decision
        self._rule = locality
        self._k = DEFAULT_K
        # The candidates always hold the first DEFAULT_K // 2 feasible servers.
        self.window = (
            LOCALITY_WINDOW
            if window is None
            else integer(window, "window", minimum=1, maximum=DEFAULT_K // 2)
        )
        self.min_load = LOCALITY_MIN_LOAD if min_load is None else min_load
        if not 0.0 <= self.min_load <= 1.0:
            raise ValueError(f"min_load = {self.min_load} must be in [0, 1]")

    def choose(self, context: PlacementContext, request: Request, blocks: BlockIds) -> int:
        _, servers, features, _ = self._decide(
            context.cluster, context.blocks, None, request, blocks, self._k
        )
        if servers.shape[0] == 0:
            return -1
        return int(servers[self._rule(features, self.window, self.min_load)])


class ReachFit(LocalityFit):
    """The locality rule without its window (``fastplace.optimizer.demonstrator.reach``):
    first fit's server, unless an active candidate at least ``min_load`` full caches
    more of the container's blocks, wherever it is in first fit's order. The candidates
    are the RO's: the first feasible servers plus the K/2 feasible ones caching the
    most. At 150 servers it is close to ``locality``; at 1,500 and more, where the
    first 12 feasible servers are a tenth of the active ones, it is the rule the
    shipped RO was taught (docs/optimizer.md, "At scale"), here so that benchmarks can
    set the RO beside its teacher."""

    name = "reach"

    def __init__(self, min_load: float | None = None) -> None:
        from fastplace.optimizer.demonstrator import REACH_WINDOW

        super().__init__(min_load=min_load)
        # Past LocalityFit's own window bound (K/2) on purpose: demonstrator.reach.
        self.window = REACH_WINDOW


class RandomFit(Policy):
    """A uniformly random feasible server (seeded): the floor any policy should beat."""

    name = "random"

    def choose(self, context: PlacementContext, request: Request, blocks: BlockIds) -> int:
        feasible = context.cluster.feasible(request)
        if feasible.shape[0] == 0:
            return -1
        return int(feasible[int(context.rng.integers(feasible.shape[0]))])


class Hybrid(Policy):
    """The paper's hybrid scheduler: the resource optimizer's server when it is valid
    (and in time), else the greedy finder's. Decisions go through a
    :class:`fastplace.ServerAllocator` bound to the simulated cluster. The budget is
    unlimited by default so that simulated results do not depend on this machine's
    speed; decision latency is measured either way."""

    name = "hybrid"

    def __init__(self, optimizer: Any = None, budget_us: float = float("inf")) -> None:
        self._optimizer = optimizer
        self._budget_us = budget_us
        self._allocators: dict[int, Any] = {}

    def choose(self, context: PlacementContext, request: Request, blocks: BlockIds) -> int:
        allocator = self._allocators.get(id(context))
        if allocator is None:
            from fastplace.allocator import ServerAllocator

            allocator = ServerAllocator(
                context.cluster, self._optimizer, self._budget_us, blocks=context.blocks
            )
            self._allocators = {id(context): allocator}
        server: int = allocator.choose(request, blocks)[0]
        return server

    def feedback(self) -> list[Any]:
        """The allocator's feedback log of the last simulation this policy ran (its
        :class:`fastplace.optimizer.retrain.FeedbackTrainer` input); [] before any."""
        return [record for a in self._allocators.values() for record in a.feedback()]


def _resource_optimizer_alone() -> Policy:
    from fastplace.optimizer.policy import RO

    policy: Policy = RO()
    return policy


#: Policy name -> factory. ``ro`` is the resource optimizer alone (no greedy finder
#: unless it fails); it and ``hybrid`` use the shipped model, with or without torch.
POLICIES: dict[str, Callable[[], Policy]] = {
    "first_fit": FirstFit,
    "best_fit": BestFit,
    "dot_product": DotProduct,
    "l2_norm": L2Norm,
    "similarity": Similarity,
    "locality": LocalityFit,
    "reach": ReachFit,
    "random": RandomFit,
    "hybrid": Hybrid,
    "ro": _resource_optimizer_alone,
    # The schedulers users run today (fastplace.sim.peers, docs/peers.md).
    "k8s_default": KubeDefault,
    "k8s_most_allocated": KubeMostAllocated,
    "nomad_binpack": NomadBinPack,
    "ray_hybrid": RayHybrid,
    "openwhisk": OpenWhisk,
    "pasch": PASch,
}


def make_policy(name: str) -> Policy:
    """A policy by name (see ``POLICIES``); ValueError listing the names otherwise."""
    try:
        factory = POLICIES[name]
    except KeyError:
        raise ValueError(f"policy = {name!r} is not one of {', '.join(sorted(POLICIES))}") from None
    return factory()
