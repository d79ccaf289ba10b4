"""The placement policy interface: what every policy is given and what it answers.

The simulator's policies (:mod:`fastplace.sim.policies`), the resource optimizer's
(:mod:`fastplace.optimizer.policy`), the training environment and the Ray engine all
build on these names. They live here, beside the cluster and apart from both
``sim`` and ``optimizer``, so that neither package imports the other to get them
(``fastplace.sim.policies`` still re-exports them under their old names).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import numpy.typing as npt

from fastplace.cluster import Cluster
from fastplace.resources import as_request

if TYPE_CHECKING:
    from fastplace.block_index import BlockIndex

__all__ = ["BlockIds", "PlacementContext", "Policy", "Request", "checked_gang"]

#: One container's resource request, one amount per cluster dimension.
Request = list[int]
#: The ids of the blocks of the file a container loads (its model version's blocks).
BlockIds = npt.NDArray[np.int64]


@dataclass
class PlacementContext:
    """What a policy may look at: the cluster, the block caches, a seeded RNG."""

    cluster: Cluster
    blocks: BlockIndex
    rng: np.random.Generator
    #: The gang being placed, when the caller knows it (the simulator sets both before
    #: each ``place_gang``): its model's name and each request's partition. Policies
    #: that hash a function's name (the ``openwhisk`` and ``pasch`` peers) use them.
    model: str | None = None
    partitions: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        # Normalisers for scores: each dimension as a share of the largest server.
        self.scale = 1.0 / np.maximum(self.cluster.capacity_copy().max(axis=0), 1)


class Policy(ABC):
    """Chooses a server for one container; ``place_gang`` books a whole model."""

    name: ClassVar[str]
    #: Servers already chosen for earlier partitions of the gang being placed.
    gang: list[int] = []  # noqa: RUF012 - replaced per instance in place_gang

    @abstractmethod
    def choose(self, context: PlacementContext, request: Request, blocks: BlockIds) -> int:
        """The server for ``request`` (-1 if none fits). Must not change any state."""

    def place_gang(
        self, context: PlacementContext, requests: list[Request], blocks: list[BlockIds]
    ) -> list[tuple[int, int]] | None:
        """Books every request or none: (container, server) pairs, or None when the gang
        does not fit. A malformed request (anything :meth:`Cluster.place` refuses)
        raises TypeError or ValueError before anything is booked."""
        cluster = context.cluster
        checked = checked_gang(cluster, requests, blocks)
        placed: list[tuple[int, int]] = []
        self.gang = []
        try:
            for request, ids in zip(checked, blocks, strict=True):
                server = self.choose(context, request, ids)
                if server < 0:
                    for container, _ in placed:
                        cluster.release(container)
                    return None
                placed.append((cluster.place(server, request), server))
                self.gang.append(server)
        finally:
            self.gang = []
        return placed


def checked_gang(
    cluster: Cluster, requests: list[Request], blocks: list[BlockIds]
) -> list[Request]:
    """Every request of a gang checked as :meth:`Cluster.place` checks one
    (:func:`fastplace.resources.as_request`), and one block list per request; raises
    before a policy books anything, so that bad input is never taken for "no room"."""
    if len(requests) != len(blocks):
        raise ValueError(f"{len(requests)} requests but {len(blocks)} block lists")
    resources = cluster.resources
    return [
        as_request(request, resources, name=f"requests[{i}]") for i, request in enumerate(requests)
    ]
