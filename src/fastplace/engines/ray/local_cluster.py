"""A multi-node Ray cluster on one machine, for the demo and the tests.

Every node is a separate raylet with its own loopback address (127.0.0.2, .3, ...) and
declares its fastplace capacity as custom resources. Traffic stays on loopback: the head
gets ``node_ip_address="127.0.0.2"`` and the driver ``_node_ip_address`` to match;
otherwise Ray binds to the external interface (and a head on 127.0.0.1 hangs the
driver). No dashboard, one CPU and a small object store per node, no usage stats.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastplace._checks import integer
from fastplace.engines.ray import require_ray
from fastplace.resources import as_amount

__all__ = ["LocalCluster", "start_local_cluster"]

HEAD_IP = "127.0.0.2"
OBJECT_STORE_BYTES = 80 << 20
# Nodes that stop answering are declared dead after ~1.5 s instead of Ray's default
# ~15 s, so tests and the demo see a node leave quickly.
SYSTEM_CONFIG = {"health_check_period_ms": 500, "health_check_failure_threshold": 3}


@dataclass
class LocalCluster:
    """A started local cluster with the driver connected to it."""

    cluster: Any = field(repr=False)
    """``ray.cluster_utils.Cluster``."""
    nodes: list[Any] = field(default_factory=list, repr=False)
    ips: list[str] = field(default_factory=list)
    saved_env: dict[str, str | None] = field(default_factory=dict, repr=False)
    """Environment variables changed for the workers, restored by :meth:`shutdown`."""

    def add_node(self, *, memory_mb: int, cpu_millis: int, cache_mb: int | None = None) -> Any:
        """Starts one more node on the next loopback address; returns Ray's node object."""
        ip = f"127.0.0.{2 + len(self.ips)}"
        node = self.cluster.add_node(
            wait=True,
            node_ip_address=ip,
            num_cpus=1,
            object_store_memory=OBJECT_STORE_BYTES,
            resources=_resources(memory_mb, cpu_millis, cache_mb),
        )
        self.nodes.append(node)
        self.ips.append(ip)
        return node

    def node_id(self, node: Any) -> str:
        node_id: str = node.node_id
        return node_id

    def remove_node(self, node: Any) -> None:
        """Stops a node as if its machine went away."""
        self.cluster.remove_node(node, allow_graceful=False)
        self.nodes.remove(node)

    def shutdown(self) -> None:
        ray = require_ray()
        try:
            ray.shutdown()
            self.cluster.shutdown()
        finally:
            for name, value in self.saved_env.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def _resources(memory_mb: int, cpu_millis: int, cache_mb: int | None) -> dict[str, float]:
    # A node's capacities, checked as Cluster takes them (ClusterView reads them back).
    memory = as_amount(memory_mb, "memory_mb")
    cpu = as_amount(cpu_millis, "cpu_millis")
    resources = {"fastplace_memory_mb": float(memory), "fastplace_cpu_millis": float(cpu)}
    if cache_mb is not None:
        resources["fastplace_cache_mb"] = float(integer(cache_mb, "cache_mb", minimum=0))
    return resources


def start_local_cluster(
    n_nodes: int = 4,
    *,
    memory_mb: int = 2048,
    cpu_millis: int = 4000,
    cache_mb: int | None = None,
) -> LocalCluster:
    """Starts ``n_nodes`` nodes (the first is the head) and connects the driver.

    Worker processes must import fastplace: the directory this fastplace was imported
    from is put first on their PYTHONPATH (harmless when fastplace is installed).
    """
    n_nodes = integer(n_nodes, "n_nodes", minimum=1)
    _resources(memory_mb, cpu_millis, cache_mb)  # bad sizes fail before anything starts
    saved = {name: os.environ.get(name) for name in ("RAY_USAGE_STATS_ENABLED", "PYTHONPATH")}
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    import fastplace

    source = str(Path(fastplace.__file__).resolve().parents[1])
    paths = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    if source not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([source, *filter(None, paths)])

    ray = require_ray()
    from ray.cluster_utils import Cluster

    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "node_ip_address": HEAD_IP,
            "num_cpus": 1,
            "object_store_memory": OBJECT_STORE_BYTES,
            "include_dashboard": False,
            "resources": _resources(memory_mb, cpu_millis, cache_mb),
            "_system_config": SYSTEM_CONFIG,
        },
    )
    local = LocalCluster(cluster, [cluster.head_node], [HEAD_IP], saved)
    try:
        for _ in range(n_nodes - 1):
            local.add_node(memory_mb=memory_mb, cpu_millis=cpu_millis, cache_mb=cache_mb)
        ray.init(address=cluster.address, _node_ip_address=HEAD_IP, log_to_driver=False)
        cluster.wait_for_nodes()
    except BaseException:
        local.shutdown()
        raise
    return local
