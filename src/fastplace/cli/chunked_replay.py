"""Replaying a long event stream in C++ chunks, so that progress shows between them.

A chunk is one :meth:`Cluster.replay` call. A release in a later chunk that names a
placement of an earlier chunk becomes a release of that placement's container id
(``RELEASE_CONTAINER``), which the core checks with a hash set and a slot lookup:
about 0.2 us more per release than a release by event index (measured before the
free tree). That is lost in the noise of a slow event (tens of us and more: best fit
on a large or mixed cluster) but would add a few percent to best fit on 10,000 equal
servers (~2 us) and a third to first fit (~0.2 us), so a stream is cut only when its
events are slow and it would run long. How slow is measured first on a copy of the
cluster (the first events, untimed); a fast stream then runs in one call, exactly as
without chunks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from fastplace.cluster import Cluster, ReplayOp

__all__ = ["TimedReplay", "replay_in_chunks"]

#: Events replayed on a copy of the cluster to measure how long an event takes.
PROBE_EVENTS = 10_000
#: Cut the rest into chunks only if an event takes at least this long ...
MIN_NS_PER_EVENT = 10_000.0
#: ... and the whole stream would take longer than this.
MIN_SECONDS = 2.0
#: Aim for one progress update about this often ...
SECONDS_PER_CHUNK = 1.0
#: ... but cut a stream into no more than this many chunks.
MAX_CHUNKS = 50


@dataclass(frozen=True)
class TimedReplay:
    """The merged outcome of the chunks, as one :meth:`Cluster.replay` would report it."""

    servers: npt.NDArray[np.int64]
    containers: npt.NDArray[np.int64]
    placed: int
    unplaced: int
    released: int
    seconds: float  # inside the replay calls only, not the chunk bookkeeping
    chunks: int


def replay_in_chunks(
    cluster: Cluster,
    ops: npt.NDArray[np.integer],
    requests: npt.NDArray[np.int64],
    refs: npt.NDArray[np.int64],
    progress: Callable[[int], None] | None = None,
    *,
    chunk_events: int | None = None,
) -> TimedReplay:
    """Runs the stream through ``cluster`` like one ``replay`` call would, calling
    ``progress(events_done)`` after each chunk. The stream must be valid: a bad event
    in a later chunk raises after the earlier chunks ran. ``chunk_events`` fixes the
    chunk size instead of choosing it from a measured sample."""
    if chunk_events is not None and chunk_events < 1:
        raise ValueError(f"chunk_events = {chunk_events} must be >= 1")
    m = int(ops.shape[0])
    servers = np.full(m, -1, dtype=np.int64)
    containers = np.full(m, -1, dtype=np.int64)
    totals = {"placed": 0, "unplaced": 0, "released": 0}
    seconds = 0.0
    chunks = 0

    def run(begin: int, end: int) -> None:
        nonlocal seconds, chunks
        chunk_ops, chunk_refs, rows = _rebase(ops, refs, containers, begin, end)
        started = time.perf_counter()
        result = cluster.replay(chunk_ops, requests[begin:end][rows], chunk_refs)
        elapsed = time.perf_counter() - started
        servers[begin:end][rows] = result.servers
        containers[begin:end][rows] = result.containers
        totals["placed"] += result.placed
        totals["unplaced"] += result.unplaced
        totals["released"] += result.released
        seconds += elapsed
        chunks += 1
        if progress is not None:
            progress(end)

    size = chunk_events if chunk_events is not None else _chunk_size(cluster, ops, requests, refs)
    for begin in range(0, m, size):
        run(begin, min(m, begin + size))
    return TimedReplay(servers, containers, **totals, seconds=seconds, chunks=chunks)


def _chunk_size(
    cluster: Cluster,
    ops: npt.NDArray[np.integer],
    requests: npt.NDArray[np.int64],
    refs: npt.NDArray[np.int64],
) -> int:
    """Events per chunk: all of them unless events are slow and the stream long."""
    m = int(ops.shape[0])
    probe = min(m, PROBE_EVENTS)
    scratch = Cluster.restore(cluster.snapshot())
    started = time.perf_counter()
    scratch.replay(ops[:probe], requests[:probe], refs[:probe])
    ns_per_event = (time.perf_counter() - started) * 1e9 / max(probe, 1)
    if ns_per_event >= MIN_NS_PER_EVENT and m * ns_per_event / 1e9 >= MIN_SECONDS:
        by_time = int(SECONDS_PER_CHUNK * 1e9 / ns_per_event)
        return max(PROBE_EVENTS, by_time, -(-m // MAX_CHUNKS))
    return max(m, 1)


def _rebase(
    ops: npt.NDArray[np.integer],
    refs: npt.NDArray[np.int64],
    containers: npt.NDArray[np.int64],
    begin: int,
    end: int,
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64], npt.NDArray[np.intp] | slice]:
    """Events begin..end as a stream of their own: (ops, refs, kept rows of the chunk).

    Releases of earlier chunks' placements name the container instead of the event;
    those whose placement found no server are no-ops and are left out (the core has
    no no-op event, and a release of container -1 is an error).
    """
    chunk_ops = ops[begin:end].astype(np.uint8)
    chunk_refs = refs[begin:end].astype(np.int64)
    if begin == 0:
        return chunk_ops, chunk_refs, slice(None)
    release = chunk_ops == ReplayOp.RELEASE_EVENT
    earlier = release & (chunk_refs < begin)
    inside = release & ~earlier
    chunk_refs[inside] -= begin
    chunk_refs[earlier] = containers[chunk_refs[earlier]]
    chunk_ops[earlier] = ReplayOp.RELEASE_CONTAINER
    keep = ~(earlier & (chunk_refs < 0))
    if keep.all():
        return chunk_ops, chunk_refs, slice(None)
    # Event indices within the chunk once the dropped releases are gone (a release
    # names a placement, and placements are never dropped).
    new_index = np.cumsum(keep) - 1
    chunk_refs[inside] = new_index[chunk_refs[inside]]
    return chunk_ops[keep], chunk_refs[keep], np.flatnonzero(keep)
