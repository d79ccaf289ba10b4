"""The partition actor: one Ray actor per DI partition, pinned to the node fastplace chose.

Lifecycle, as the :class:`~fastplace.engines.ray.deployment.Deployer` drives it:

1. created with a hard node affinity; :meth:`PartitionActor.node_id` answers once its
   process runs (Ray's own start time) and says where it actually runs;
2. :meth:`PartitionActor.start` is the cold start: delete the blocks fastplace's index
   evicted from this node, fetch the blocks the node's cache lacks from the store, then
   assemble the weights from the cache, checking every block against its address
   (a bad one is fetched again, never served); it returns the measured
   :class:`~fastplace.engines.ray.model_store.ColdStart`;
3. partition 0 gets the other partitions' handles (:meth:`PartitionActor.set_peers`) and
   serves :meth:`PartitionActor.infer`: route ids to their partitions, call their
   :meth:`PartitionActor.lookup` (the fan-out, all at once), look up its own shard
   meanwhile, gather, run the dense part.

This module does not import Ray at the top: the class is a plain class that the
deployer wraps with ``ray.remote`` when it first needs it, so importing fastplace never
requires Ray. Inside the actor process Ray is of course present.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from fastplace.engines.ray.model_store import ColdStart, ModelStore, NodeCache
from fastplace.engines.ray.partitioned_model import MTMLConfig, Partition

__all__ = ["PartitionActor"]


class PartitionActor:
    """Serves one partition of one model version (run it as a Ray actor)."""

    def __init__(
        self,
        store_root: str,
        model: str,
        version: int,
        index: int,
        cache_dir: str,
        bandwidth: float | None = None,
        *,
        cache_per_node: bool = False,
    ) -> None:
        """Partition ``index`` of ``model`` version ``version`` from the store at
        ``store_root``, cached in ``cache_dir`` on this node; :meth:`start` loads it.
        ``cache_per_node``: ``cache_dir`` is the root of every node's cache and this
        node's is ``<cache_dir>/<node id>`` (for an actor Ray placed, whose node the
        deployer learns only now)."""
        self.store = ModelStore(store_root, bandwidth=bandwidth)
        self.manifest = self.store.manifest(model, version)
        self.index = index
        self.cache = NodeCache(f"{cache_dir}/{self.node_id()}" if cache_per_node else cache_dir)
        self.partition: Partition | None = None
        self.peers: list[Any] = []

    def node_id(self) -> str:
        """The Ray node this actor runs on (hex id)."""
        import ray

        node: str = ray.get_runtime_context().get_node_id()
        return node

    def start(self, evict: Sequence[str] = ()) -> ColdStart:
        """Cold start: evict (block addresses), fetch the missing blocks, load the
        weights; measured."""
        manifest = self.manifest
        part = manifest.partitions[self.index]
        evicted = self.cache.evict(evict)
        repaired = (self.cache.repairs.blocks, self.cache.repairs.bytes)
        fetched, fetched_bytes, cached_bytes, fetch_s = self.cache.fetch(
            self.store, part.distinct_blocks()
        )
        began = time.perf_counter()
        weights = self.cache.load(part, self.store)  # checks every block; refetches bad ones
        self.partition = Partition(
            weights,
            MTMLConfig.from_dict(manifest.config),
            self.index,
            len(manifest.partitions),
        )
        return ColdStart(
            node_id=self.node_id(),
            fetched_bytes=fetched_bytes,
            fetched_blocks=tuple(fetched),
            cached_bytes=cached_bytes,
            fetch_s=fetch_s,
            load_s=time.perf_counter() - began,
            evicted_bytes=evicted,
            repaired_blocks=self.cache.repairs.blocks - repaired[0],
            repaired_bytes=self.cache.repairs.bytes - repaired[1],
        )

    def set_peers(self, peers: Sequence[Any]) -> None:
        """Partition 0: the actor handle of every partition (its own entry is ignored)."""
        self.peers = list(peers)

    def _ready(self) -> Partition:
        if self.partition is None:
            raise RuntimeError(f"partition {self.index} has not started")
        return self.partition

    def lookup(self, local_ids: Mapping[str, npt.NDArray[np.int64]]) -> dict[str, Any]:
        """Rows of this partition's embedding shards (ids relative to each shard)."""
        return self._ready().lookup(local_ids)

    def infer(
        self,
        ids: Mapping[str, npt.NDArray[np.int64]],
        dense: npt.NDArray[np.float32],
        hold_s: float = 0.0,
    ) -> tuple[dict[str, npt.NDArray[np.float32]], float]:
        """Partition 0: the model's answer for a batch, and the fan-out's seconds.

        ``hold_s``: seconds to keep the request before answering, so that a replayed
        request log's service times (real models are slower than the tiny ones)
        occupy the gang as long as the log says."""
        import ray

        head = self._ready()
        if self.index != 0:
            raise RuntimeError(f"requests go to partition 0, not {self.index}")
        if len(self.peers) != head.n_partitions:
            raise RuntimeError(f"partition 0 knows {len(self.peers)} of {head.n_partitions} peers")
        requests, owners = head.route(ids)
        began = time.perf_counter()
        pending = {
            p: self.peers[p].lookup.remote(request)
            for p, request in enumerate(requests)
            if p != 0 and request
        }
        answers: list[Mapping[str, Any]] = [{} for _ in requests]
        answers[0] = head.lookup(requests[0])
        if pending:
            for p, answer in zip(pending, ray.get(list(pending.values())), strict=True):
                answers[p] = answer
        fanout_s = time.perf_counter() - began
        outputs = head.dense_forward(head.gather(owners, answers), np.asarray(dense, np.float32))
        if hold_s > 0:
            time.sleep(hold_s)
        return outputs, fanout_s

    def ping(self) -> int:
        """The partition index: a cheap call that shows the actor is alive."""
        return self.index
