"""The baseline in which Ray, not fastplace, places the partition actors.

A user who runs DI models on Ray today creates one actor per partition with resource
requests and lets Ray's default scheduler (the hybrid policy: pack onto nodes below
half utilisation, then spread; src/ray/raylet/scheduling/policy/
hybrid_scheduling_policy.cc) choose the node. ``ray_default`` reproduces that on the
same model store and node caches as fastplace's policies, so the bytes each start
fetches and its cold-start time stand side by side with fastplace's placement.

How the deployer runs it (see :class:`~fastplace.engines.ray.deployment.Deployer`):

- each actor asks Ray for its partition's amounts as the nodes' custom resources
  (``fastplace_memory_mb``, ``fastplace_cpu_millis``), with no node affinity, so Ray
  keeps its own books and never over-commits a node;
- fastplace's cluster mirrors Ray's choices: a container is booked on the node Ray
  leased the actor's worker on, as soon as it has (:func:`wait_for_leases`, ~0.1 s
  after creation, long before the worker process runs), so ``servers in use``, the
  capacity check below and the block index (which nodes cache which blocks) mean the
  same as for fastplace's policies, which book when they plan;
- before creating the actors, the deployer checks on that mirror that the gang fits
  somewhere (first fit, booked and released at once); when it does not, it raises
  :class:`~fastplace.engines.ray.deployment.NoCapacity` as fastplace's policies do,
  instead of leaving actors pending in Ray's queue. Gangs that start at the same time
  can pass that check together and then wait in Ray's queue for room (up to the start
  timeout), as a Ray user's actors would.

The simulator's model of the same rule is ``fastplace.sim`` policy ``ray_hybrid``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, ClassVar

from fastplace.engines.ray.cluster_view import RESOURCE_PREFIX
from fastplace.placement_policy import BlockIds, PlacementContext, Policy, Request

__all__ = ["RAY_DEFAULT", "RayPlacement", "ray_resources", "wait_for_leases"]

RAY_DEFAULT = "ray_default"


class RayPlacement(Policy):
    """Marks a deployer whose actors Ray places. Only the deployer can run it: Ray
    decides when an actor starts, so there is no server to return beforehand."""

    name: ClassVar[str] = RAY_DEFAULT

    def choose(self, context: PlacementContext, request: Request, blocks: BlockIds) -> int:
        raise NotImplementedError(
            f"{RAY_DEFAULT}: Ray chooses the node when the actor starts; run it through "
            "fastplace.engines.ray.Deployer (not on a plan or a simulation)"
        )


def wait_for_leases(ray: Any, actors: Sequence[Any], timeout_s: float) -> list[str]:
    """The node each actor's worker is leased on, once Ray has leased them all.

    Ray decides an actor's node when it leases it a worker, but its public calls only
    say so once the actor's process runs (seconds later). The GCS actor table knows at
    lease time: a leased actor has its node's address and a port, a queued one (no
    node has room yet) has neither. Read through ``ray._private.state.actors`` because
    the public state API needs the dashboard, which the local cluster does not run.
    Raises TimeoutError when an actor is still queued after ``timeout_s``,
    RuntimeError when one died first.
    """
    deadline = time.monotonic() + timeout_s
    nodes: list[str | None] = [None] * len(actors)
    while True:
        for i, actor in enumerate(actors):
            if nodes[i] is None:
                info = ray._private.state.actors(actor._actor_id.hex())
                address = info.get("Address") or {}
                if info.get("State") == "DEAD":
                    raise RuntimeError(
                        f"actor {i} of {len(actors)} died before Ray placed it: "
                        f"{info.get('DeathCause') or 'no cause given'}"
                    )
                if address.get("Port"):
                    nodes[i] = str(address["NodeID"])
        if all(node is not None for node in nodes):
            return [str(node) for node in nodes]
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"{sum(node is None for node in nodes)} of {len(actors)} actors still wait in "
                f"Ray's queue for a node with room after {timeout_s} s"
            )
        time.sleep(0.01)


def ray_resources(request: Sequence[int], resources: Sequence[str]) -> dict[str, float]:
    """The Ray resource request of one partition: its amount of each fastplace
    dimension, as the custom resource the nodes declare for it (cluster_view.py)."""
    return {
        f"{RESOURCE_PREFIX}{name}": float(amount)
        for name, amount in zip(resources, request, strict=True)
        if amount > 0  # Ray refuses a zero resource request
    }
