"""What the resource optimizer sees of one placement decision: candidates and features.

The RO does not score every server: the core proposes a bounded set of K candidates
(the first feasible servers in index order, which contain first fit's choice, plus the
feasible servers caching the most bytes of the container's blocks, which contain the
similarity policy's choice), and the RO scores each one from a row of features.

Every row describes one candidate and ends with the same global features, so one
small network, shared across candidates, scores them all. Features are fractions in
[0, 1] (shares of the candidate's capacity, of the model file, of the cluster).

This module is the readable reference. The allocator computes the same candidates and
features in C++ (``_core.ro_decide``, cpp/src/ro_decision.cpp, via
:func:`fastplace.optimizer.native.native_decision`) from the blocks' holder sets, a
popcount of feasible servers and running totals, ~4 us at 10,000 servers;
tests/test_ro_decision.py checks that both give identical rows.

Cost per decision here (``decision``): ``cluster.feasible`` (native bitset scan), one
``blocks.cached_bytes_on`` (over the feasible servers when more than K fit, else over
the candidates), one ``blocks.missing_bytes`` (for the file's size), the candidates'
rows from ``cluster.server_rows`` (O(K)), and two O(n_servers) copies — ``free_copy``
and ``capacity_copy`` — for the global features (cluster load, largest server), about
10 us each at 10,000 servers (the native twin reads running totals instead).
numpy only: no torch here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from fastplace._checks import integer

if TYPE_CHECKING:
    from fastplace.block_index import BlockIndex
    from fastplace.cluster import Cluster

__all__ = [
    "DEFAULT_K",
    "FEATURE_NAMES",
    "N_FEATURES",
    "N_GLOBAL_FEATURES",
    "SCHEMA_VERSION",
    "candidate_features",
    "candidates",
    "decision",
]

#: Bumped whenever FEATURE_NAMES or the meaning of a feature changes; model files
#: record it, and a mismatch refuses to load.
SCHEMA_VERSION = 1

#: Candidates per decision unless told otherwise.
DEFAULT_K = 64

#: One column per name, in this order. "cpu" is resource 1 (the tightest of resources
#: 1..D-1 when there are more; resource 0 again when the cluster has only one).
FEATURE_NAMES: tuple[str, ...] = (
    # the candidate
    "first_fit_rank",  # position among the feasible servers in index order, / 64, at most 1
    "is_first_fit",  # 1 for the server first fit would choose
    "free_memory_before",  # free / capacity of this server
    "free_cpu_before",
    "free_memory_after",  # after placing the container
    "free_cpu_after",
    "fragmentation",  # |free_memory_after - free_cpu_after|: capacity stranded by imbalance
    "request_share",  # the request's memory / this server's memory capacity
    "cached_share",  # bytes of the container's blocks cached here / file bytes
    "cached_vs_best",  # cached bytes / the most any candidate caches (0 when none does)
    "active",  # 1 when the server already runs a container
    "containers",  # containers on the server / 32, at most 1
    "server_size",  # memory capacity / the largest server's
    # the cluster (same on every row)
    "cluster_memory_load",  # booked memory / total memory
    "cluster_cpu_load",
    "active_share",  # active servers / servers
    "feasible_share",  # servers that fit the request / servers
)
N_FEATURES = len(FEATURE_NAMES)
#: The cluster's features: the last columns, equal on every row of one decision.
N_GLOBAL_FEATURES = len(FEATURE_NAMES) - FEATURE_NAMES.index("cluster_memory_load")

_MAX_CONTAINERS = 32.0
_RANK_SCALE = 64.0

Request = Sequence[int] | npt.NDArray[np.integer[Any]]


def _ids(block_ids: npt.ArrayLike) -> npt.NDArray[np.int64]:
    return np.ascontiguousarray(block_ids, dtype=np.int64).reshape(-1)


def _select(
    blocks: BlockIndex | None,
    feasible: npt.NDArray[np.int64],
    block_ids: npt.NDArray[np.int64],
    k: int,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64] | None]:
    """Positions (into ``feasible``) of the candidates, ascending, and the cached bytes
    of every feasible server when they had to be computed (None otherwise)."""
    n = feasible.shape[0]
    if n <= k:
        return np.arange(n, dtype=np.int64), None
    n_local = k // 2
    local = np.empty(0, dtype=np.int64)
    cached = None
    if n_local and block_ids.shape[0] and blocks is not None:
        cached = np.asarray(blocks.cached_bytes_on(feasible, block_ids), dtype=np.int64)
        holders = np.flatnonzero(cached > 0)
        # Most cached bytes first, ties to the lower server index (stable sort).
        order = np.argsort(-cached[holders], kind="stable")[:n_local]
        local = holders[order].astype(np.int64)
    first = np.arange(k, dtype=np.int64)
    rest = first[~np.isin(first, local)][: k - local.shape[0]]
    return np.sort(np.concatenate((local, rest))), cached


def candidates(
    cluster: Cluster,
    blocks: BlockIndex | None,
    request: Request,
    block_ids: npt.ArrayLike,
    k: int = DEFAULT_K,
) -> npt.NDArray[np.int64]:
    """Up to ``k`` distinct feasible servers, ascending: the first feasible ones in index
    order plus (when more than ``k`` fit) up to ``k // 2`` caching the most bytes of
    ``block_ids``. Empty when no server fits. ``blocks=None`` (no block index): the
    first ``k`` feasible servers."""
    k = integer(k, "k", minimum=1)
    feasible = np.asarray(cluster.feasible(request), dtype=np.int64)
    return feasible[_select(blocks, feasible, _ids(block_ids), k)[0]]


def candidate_features(
    cluster: Cluster,
    blocks: BlockIndex | None,
    request: Request,
    block_ids: npt.ArrayLike,
    candidates: npt.ArrayLike,
) -> npt.NDArray[np.float32]:
    """A (len(candidates), N_FEATURES) float32 matrix, columns as in FEATURE_NAMES.

    ``candidates`` must be feasible servers for ``request`` (as :func:`candidates`
    returns); first-fit ranks count the feasible servers below each one. With
    ``blocks=None`` the cached-bytes features are 0.
    """
    servers = np.ascontiguousarray(candidates, dtype=np.int64).reshape(-1)
    feasible = np.asarray(cluster.feasible(request), dtype=np.int64)
    return _features(cluster, blocks, request, _ids(block_ids), servers, feasible)


def decision(
    cluster: Cluster,
    blocks: BlockIndex | None,
    request: Request,
    block_ids: npt.ArrayLike,
    k: int = DEFAULT_K,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """``candidates(...)`` and their ``candidate_features(...)`` with one feasibility scan."""
    k = integer(k, "k", minimum=1)
    ids = _ids(block_ids)
    feasible = np.asarray(cluster.feasible(request), dtype=np.int64)
    positions, cached = _select(blocks, feasible, ids, k)
    servers = feasible[positions]
    known = None if cached is None else cached[positions]
    return servers, _features(cluster, blocks, request, ids, servers, feasible, known)


def _features(
    cluster: Cluster,
    blocks: BlockIndex | None,
    request: Request,
    block_ids: npt.NDArray[np.int64],
    servers: npt.NDArray[np.int64],
    feasible: npt.NDArray[np.int64],
    known_cached: npt.NDArray[np.int64] | None = None,
) -> npt.NDArray[np.float32]:
    n = servers.shape[0]
    out = np.zeros((n, N_FEATURES), dtype=np.float32)
    if n == 0:
        return out
    amounts = np.asarray(request, dtype=np.float64).reshape(-1)
    free_rows, capacity_rows, count_rows = cluster.server_rows(servers)  # O(K)
    # The cluster's load and largest server need every row: two O(n_servers) copies.
    free_all = cluster.free_copy()
    capacity_all = cluster.capacity_copy()
    cpu = 1 if amounts.shape[0] > 1 else 0

    free = free_rows.astype(np.float64)
    capacity = np.maximum(capacity_rows, 1).astype(np.float64)
    before = free / capacity
    after = (free - amounts) / capacity
    if amounts.shape[0] > 2:  # the tightest of the non-memory resources stands for "cpu"
        tight = 1 + np.argmin(after[:, 1:], axis=1)
        rows = np.arange(n)
        cpu_before, cpu_after = before[rows, tight], after[rows, tight]
    else:
        cpu_before, cpu_after = before[:, cpu], after[:, cpu]

    rank = np.searchsorted(feasible, servers).astype(np.float64)
    if blocks is not None and block_ids.shape[0]:
        if known_cached is None:
            known_cached = blocks.cached_bytes_on(servers, block_ids)
        cached = np.asarray(known_cached, dtype=np.float64)
        file_bytes = float(cached[0]) + float(blocks.missing_bytes(int(servers[0]), block_ids))
    else:
        cached = np.zeros(n, dtype=np.float64)
        file_bytes = 0.0
    best = float(cached.max())
    counts = count_rows.astype(np.float64)
    total_capacity = np.maximum(capacity_all.sum(axis=0), 1).astype(np.float64)
    load = 1.0 - free_all.sum(axis=0) / total_capacity
    n_servers = max(cluster.n_servers, 1)

    out[:, 0] = np.minimum(rank / _RANK_SCALE, 1.0)
    out[:, 1] = rank == 0
    out[:, 2] = before[:, 0]
    out[:, 3] = cpu_before
    out[:, 4] = after[:, 0]
    out[:, 5] = cpu_after
    out[:, 6] = np.abs(after[:, 0] - cpu_after)
    out[:, 7] = amounts[0] / capacity[:, 0]
    out[:, 8] = cached / file_bytes if file_bytes > 0 else 0.0
    out[:, 9] = cached / best if best > 0 else 0.0
    out[:, 10] = counts > 0
    out[:, 11] = np.minimum(counts / _MAX_CONTAINERS, 1.0)
    out[:, 12] = capacity[:, 0] / max(float(capacity_all[:, 0].max()), 1.0)
    out[:, 13] = load[0]
    out[:, 14] = load[cpu]
    out[:, 15] = cluster.n_active_servers / n_servers
    out[:, 16] = feasible.shape[0] / n_servers
    return out
