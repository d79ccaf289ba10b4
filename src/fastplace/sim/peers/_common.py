"""What the peer schedulers share: which columns are CPU and memory, and per-run state.

The peers read a server's amounts the way their schedulers do (requested = capacity
minus free, plus the container being placed, where the rule scores the node *with* the
pod), so each needs the CPU and memory columns of the cluster by name.
"""

from __future__ import annotations

import hashlib

import numpy as np
import numpy.typing as npt

from fastplace.cluster import Cluster
from fastplace.placement_policy import BlockIds, PlacementContext, Request

__all__ = ["cpu_memory_columns", "file_key", "stable_hash", "utilisation_after"]


def cpu_memory_columns(cluster: Cluster) -> tuple[int, int]:
    """(cpu column, memory column): the resources named ``cpu*`` and ``mem*``, else the
    second and first columns (fastplace's default order: memory_mb, cpu_millis); a
    one-resource cluster uses its only column for both."""
    names = [name.lower() for name in cluster.resources]
    cpu = next((i for i, name in enumerate(names) if name.startswith("cpu")), None)
    memory = next((i for i, name in enumerate(names) if name.startswith("mem")), None)
    last = len(names) - 1
    return (min(1, last) if cpu is None else cpu), (0 if memory is None else memory)


def utilisation_after(
    cluster: Cluster, servers: npt.NDArray[np.int64], request: Request
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(requested, capacity) per server and resource once ``request`` is placed there:
    what kube-scheduler's and Nomad's scorers divide."""
    free, capacity, _ = cluster.server_rows(servers)
    return capacity - free + np.asarray(request, dtype=np.int64), capacity


def stable_hash(text: str) -> int:
    """A 63-bit hash of ``text`` that is the same in every process (Python's ``hash``
    of a str is salted per process, which would make runs irreproducible)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big") >> 1


def file_key(context: PlacementContext, blocks: BlockIds, index: int) -> str:
    """The name of the file of the gang's ``index``-th container: ``model/partition``
    when the caller named the model (the simulator does; the partition is ``index``
    where the caller names none), else the content hash of the file's first block
    (stable while that block is)."""
    if context.model is not None:
        partitions = context.partitions
        partition = partitions[index] if partitions and index < len(partitions) else index
        return f"{context.model}/{partition}"
    if blocks.shape[0] == 0:
        return "empty"
    return f"block:{int(context.blocks.block_hashes()[int(blocks[0])]):x}"
