"""A Ray cluster as a fastplace :class:`~fastplace.Cluster`: ``ray.nodes()`` -> servers.

Ray reports the whole machine's memory on every node of a local cluster (and a
machine's memory is not what a serverless operator sells anyway), so a node's capacity
for fastplace is declared as Ray custom resources when the node starts::

    ray start --resources='{"fastplace_memory_mb": 16384, "fastplace_cpu_millis": 8000}'

One custom resource per fastplace dimension, named ``fastplace_<dimension>``. A node
without ``fastplace_cpu_millis`` gets ``1000 x`` its ``CPU`` resource. A node without
``fastplace_memory_mb`` is not a fastplace node and is left out (a head that only runs
the control plane, for example). ``fastplace_cache_mb`` optionally sets the size of the
node's block cache.

Server ids are stable: the first read numbers the nodes by IP address, then node id;
nodes that join later are appended (:meth:`ClusterView.refresh`), and a node that
leaves keeps its id, cordoned, so containers and block caches never change server.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fastplace._checks import integer
from fastplace.block_index import BlockIndex
from fastplace.cluster import Cluster
from fastplace.resources import DEFAULT_RESOURCES

__all__ = ["RESOURCE_PREFIX", "ClusterView", "NodeChanges", "node_capacity"]

RESOURCE_PREFIX = "fastplace_"
CACHE_RESOURCE = "fastplace_cache_mb"


def node_capacity(
    node: Mapping[str, Any], resources: Sequence[str] = DEFAULT_RESOURCES
) -> list[int] | None:
    """The fastplace capacity a ``ray.nodes()`` entry declares, or None (not a fastplace node).

    Raises ValueError naming the node when a declared amount is negative or fractional.
    """
    declared: Mapping[str, float] = node.get("Resources") or {}
    if f"{RESOURCE_PREFIX}{resources[0]}" not in declared:
        return None
    capacity = []
    for name in resources:
        key = f"{RESOURCE_PREFIX}{name}"
        if key in declared:
            amount = float(declared[key])
        elif name == "cpu_millis" and "CPU" in declared:
            amount = 1000.0 * float(declared["CPU"])
        else:
            raise ValueError(
                f"node {node.get('NodeID', '?')} ({node.get('NodeManagerAddress', '?')}) "
                f"declares {RESOURCE_PREFIX}{resources[0]} but not {key}"
            )
        if amount < 0 or amount != int(amount):
            raise ValueError(
                f"node {node.get('NodeID', '?')}: {key} = {amount} must be a whole number >= 0"
            )
        capacity.append(int(amount))
    return capacity


@dataclass
class NodeChanges:
    """What :meth:`ClusterView.refresh` found: servers added and servers whose node left."""

    added: list[int] = field(default_factory=list)
    left: list[int] = field(default_factory=list)


@dataclass
class ClusterView:
    """fastplace's cluster and block index for a Ray cluster, with the node id mapping."""

    cluster: Cluster
    blocks: BlockIndex
    node_ids: list[str]
    """Server index -> Ray node id (hex)."""
    addresses: list[str]
    resources: tuple[str, ...] = DEFAULT_RESOURCES
    default_cache_bytes: int = 1 << 30
    alive: list[bool] = field(default_factory=list)

    @classmethod
    def from_nodes(
        cls,
        nodes: Sequence[Mapping[str, Any]],
        *,
        resources: Sequence[str] = DEFAULT_RESOURCES,
        cache_bytes: int = 1 << 30,
    ) -> ClusterView:
        """A view of the alive fastplace nodes among ``nodes`` (the ``ray.nodes()`` list).

        ``cache_bytes`` is each node's block cache size unless the node declares
        ``fastplace_cache_mb``. ValueError if no node declares a capacity.
        """
        cache_bytes = integer(cache_bytes, "cache_bytes", minimum=0)
        rows = _fastplace_nodes(nodes, resources)
        if not rows:
            raise ValueError(
                f"no alive Ray node declares the custom resource {RESOURCE_PREFIX}{resources[0]}"
                " (start nodes with resources={'"
                f"{RESOURCE_PREFIX}{resources[0]}': ..., ...}})"
            )
        rows.sort(key=lambda row: (row[1], row[0]))
        cluster = Cluster([row[2] for row in rows], resources=tuple(resources))
        caches = [_cache_bytes(row[3], cache_bytes) for row in rows]
        return cls(
            cluster=cluster,
            blocks=BlockIndex(len(rows), np.asarray(caches, dtype=np.int64)),
            node_ids=[row[0] for row in rows],
            addresses=[row[1] for row in rows],
            resources=tuple(resources),
            default_cache_bytes=cache_bytes,
            alive=[True] * len(rows),
        )

    @classmethod
    def read(
        cls, *, resources: Sequence[str] = DEFAULT_RESOURCES, cache_bytes: int = 1 << 30
    ) -> ClusterView:
        """:meth:`from_nodes` on the connected Ray cluster's ``ray.nodes()``."""
        from fastplace.engines.ray import require_ray

        return cls.from_nodes(require_ray().nodes(), resources=resources, cache_bytes=cache_bytes)

    def server_of(self, node_id: str) -> int:
        """The server index of a Ray node id (KeyError if it is not a fastplace node)."""
        try:
            return self.node_ids.index(node_id)
        except ValueError:
            raise KeyError(f"Ray node {node_id} is not a fastplace server") from None

    def refresh(self, nodes: Sequence[Mapping[str, Any]]) -> NodeChanges:
        """Applies a newer ``ray.nodes()``: new nodes become servers, nodes that left
        (dead or gone) are cordoned and their block caches forgotten."""
        changes = NodeChanges()
        current = {row[0]: row for row in _fastplace_nodes(nodes, self.resources)}
        for server, node_id in enumerate(self.node_ids):
            if self.alive[server] and node_id not in current:
                self.alive[server] = False
                self.cluster.cordon(server)
                self.blocks.evict_server(server)
                changes.left.append(server)
        known = set(self.node_ids)
        for node_id, address, capacity, declared in sorted(
            (row for row in current.values() if row[0] not in known),
            key=lambda row: (row[1], row[0]),
        ):
            server = self.cluster.add_servers(np.asarray([capacity], dtype=np.int64))
            self.blocks.add_servers(1, _cache_bytes(declared, self.default_cache_bytes))
            self.node_ids.append(node_id)
            self.addresses.append(address)
            self.alive.append(True)
            changes.added.append(server)
        return changes


def _fastplace_nodes(
    nodes: Sequence[Mapping[str, Any]], resources: Sequence[str]
) -> list[tuple[str, str, list[int], Mapping[str, float]]]:
    """(node id, address, capacity, declared resources) of each alive fastplace node."""
    rows = []
    for node in nodes:
        if not node.get("Alive", False):
            continue
        capacity = node_capacity(node, resources)
        if capacity is not None:
            declared: Mapping[str, float] = node.get("Resources") or {}
            rows.append(
                (str(node["NodeID"]), str(node.get("NodeManagerAddress", "")), capacity, declared)
            )
    return rows


def _cache_bytes(declared: Mapping[str, float], default: int) -> int:
    if CACHE_RESOURCE in declared:
        return int(float(declared[CACHE_RESOURCE]) * (1 << 20))
    return default
