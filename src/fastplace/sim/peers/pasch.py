"""PASch, package-aware scheduling for serverless platforms, as a simulator policy
(``pasch``).

Aumala, Boza, Ortiz-Avilés, Totoy and Abad, "Beyond load balancing: package-aware
scheduling for serverless platforms", CCGrid 2019 (doi 10.1109/CCGRID.2019.00042): a
function is sent towards the workers that already hold its largest package, so their
package caches are reused. The largest package is mapped by consistent hashing to two
affinity workers (two hash functions: the power of two choices), the request goes to
the less loaded of the two, and when that one is loaded beyond a threshold it goes to
the least loaded worker of the cluster instead.

Here a DI model's largest file plays the package (every partition of a model shares
it, as the functions importing one package do), so the key is the model's name; a
server's load is its largest used share of a resource before placing; the threshold
is ``max_load`` (0.8 by default: a choice made here, not the paper's number; see
docs/peers.md). Consistent hashing: ``replicas`` points per server on a 63-bit ring
(blake2b), a key's worker the first point clockwise. An affinity worker the container
does not fit on is passed over; with neither fitting, the least loaded fitting server
is taken.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from fastplace._checks import integer
from fastplace.placement_policy import BlockIds, PlacementContext, Policy, Request
from fastplace.sim.peers._common import file_key, stable_hash

__all__ = ["PASch", "consistent_hash_ring"]


def consistent_hash_ring(
    n_servers: int, replicas: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(sorted ring points, the server at each point): ``replicas`` points a server."""
    points = np.array(
        [stable_hash(f"server-{s}#{r}") for s in range(n_servers) for r in range(replicas)],
        dtype=np.int64,
    )
    owners = np.repeat(np.arange(n_servers, dtype=np.int64), replicas)
    order = np.argsort(points, kind="stable")
    return points[order], owners[order]


class PASch(Policy):
    """Package-aware scheduling: two consistent-hashing affinity servers for the model's
    largest file, the less loaded, unless past ``max_load`` (then the least loaded
    server). Sources and simplifications: this module's docstring and docs/peers.md."""

    name = "pasch"

    def __init__(self, max_load: float = 0.8, replicas: int = 32) -> None:
        if not 0.0 < max_load <= 1.0:
            raise ValueError(f"max_load = {max_load} must be in (0, 1]")
        self.max_load = max_load
        self.replicas = integer(replicas, "replicas", minimum=1)
        self._ring: tuple[int, npt.NDArray[np.int64], npt.NDArray[np.int64]] | None = None

    def affinity_servers(self, n_servers: int, key: str) -> tuple[int, int]:
        """The two servers the key hashes to (they may be the same one)."""
        if self._ring is None or self._ring[0] != n_servers:
            self._ring = (n_servers, *consistent_hash_ring(n_servers, self.replicas))
        _, points, owners = self._ring
        chosen = []
        for salt in ("#1", "#2"):
            at = int(np.searchsorted(points, stable_hash(key + salt))) % points.shape[0]
            chosen.append(int(owners[at]))
        return chosen[0], chosen[1]

    def choose(self, context: PlacementContext, request: Request, blocks: BlockIds) -> int:
        cluster = context.cluster
        feasible = cluster.feasible(request)
        if feasible.shape[0] == 0:
            return -1
        key = context.model if context.model is not None else file_key(context, blocks, 0)
        first, second = self.affinity_servers(cluster.n_servers, key)
        candidates = np.array(sorted({first, second}, key=[first, second].index), dtype=np.int64)
        fits = candidates[np.isin(candidates, feasible)]
        if fits.shape[0]:
            load = _load(context, fits)
            best = int(np.argmin(load))  # the first of equals: the first hash's server
            if load[best] <= self.max_load:
                return int(fits[best])
        return int(feasible[int(np.argmin(_load(context, feasible)))])


def _load(context: PlacementContext, servers: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """Each server's largest used share of a resource, before placing."""
    free, capacity, _ = context.cluster.server_rows(servers)
    used: npt.NDArray[np.float64] = (1 - free / np.maximum(capacity, 1)).max(axis=1)
    return used
