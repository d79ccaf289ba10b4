"""The placement rules of the schedulers users run today, as simulator policies.

Each reproduces its scheduler's published default rule as closely as the simulator
allows; the module of each cites its source, and docs/peers.md lists every
simplification. They are in :data:`fastplace.sim.POLICIES` under these names:

* ``k8s_default``, ``k8s_most_allocated``: kube-scheduler (:mod:`.kube_scheduler`);
* ``nomad_binpack``: Nomad's service scheduler (:mod:`.nomad`);
* ``ray_hybrid``: Ray's default hybrid policy (:mod:`.ray_hybrid`);
* ``openwhisk``: OpenWhisk's sharding load balancer (:mod:`.openwhisk`);
* ``pasch``: package-aware scheduling, Aumala et al. 2019 (:mod:`.pasch`).
"""

from __future__ import annotations

from fastplace.sim.peers.kube_scheduler import KubeDefault, KubeMostAllocated
from fastplace.sim.peers.nomad import NomadBinPack
from fastplace.sim.peers.openwhisk import OpenWhisk
from fastplace.sim.peers.pasch import PASch
from fastplace.sim.peers.ray_hybrid import RayHybrid

__all__ = [
    "PEERS",
    "KubeDefault",
    "KubeMostAllocated",
    "NomadBinPack",
    "OpenWhisk",
    "PASch",
    "RayHybrid",
]

#: The peers' policy names, in the order tables show them.
PEERS: tuple[str, ...] = (
    "k8s_default",
    "k8s_most_allocated",
    "nomad_binpack",
    "ray_hybrid",
    "openwhisk",
    "pasch",
)
