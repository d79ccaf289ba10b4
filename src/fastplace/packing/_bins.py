"""Open bins during a packing, with feasibility answered by the native core.

Each bin is a server of a :class:`fastplace.Cluster`; its level bitsets give the bins
an item fits with a few word-wide ANDs. The core holds at most 8 dimensions, so wider
instances are split over several clusters (dimensions 0-7, 8-15, ...) and a bin is
feasible when it is feasible in every one of them. A numpy mirror of the free amounts
serves the scoring stage, which needs whole rows at once.

A cluster's capacities must sum to at most 2^63 - 1 per dimension (the core's limit on
amounts). Bins so large that the next one would pass it are served by the numpy
mirror alone: the same answers (first fit = lowest feasible index; best fit = least
normalised space left, as for wide instances), slower, and exact.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from fastplace.cluster import Cluster

__all__ = ["CORE_MAX_DIMS", "OpenBins"]

#: Dimensions one native cluster holds (kMaxDims in cpp/include/fastplace/cluster_state.hpp).
CORE_MAX_DIMS = 8

_INT64_MAX = 2**63 - 1


class OpenBins:
    """Identical bins of ``capacity``, opened one at a time and filled with items."""

    def __init__(self, capacity: npt.NDArray[np.int64], expected_bins: int = 16) -> None:
        self.capacity = capacity
        dims = capacity.shape[0]
        self._slices = [
            slice(start, min(start + CORE_MAX_DIMS, dims))
            for start in range(0, dims, CORE_MAX_DIMS)
        ]
        # One bin per cluster at construction: the core sizes its levels from the
        # capacities it sees first, and every later bin has the same capacity.
        self._clusters = [
            Cluster(capacity[part].reshape(1, -1), [f"d{d}" for d in range(part.start, part.stop)])
            for part in self._slices
        ]
        self._rows = [np.ascontiguousarray(capacity[part]).reshape(1, -1) for part in self._slices]
        self._free = np.empty((max(expected_bins, 1), dims), dtype=np.int64)
        self._free[0] = capacity
        self.count = 1  # bins opened so far (the first is open from the start)

    @property
    def free(self) -> npt.NDArray[np.int64]:
        """Free amounts of the open bins, (count, d); a view that later calls update."""
        return self._free[: self.count]

    def open(self) -> int:
        """Opens an empty bin and returns its index."""
        if self._clusters and (self.count + 1) * int(self.capacity.max()) > _INT64_MAX:
            # The core could not hold the next bin: the numpy mirror alone from here on.
            self._clusters, self._rows, self._slices = [], [], []
        for cluster, row in zip(self._clusters, self._rows, strict=True):
            cluster.add_servers(row)
        if self.count == self._free.shape[0]:
            self._free = np.concatenate([self._free, np.empty_like(self._free)])
        self._free[self.count] = self.capacity
        self.count += 1
        return self.count - 1

    def feasible(self, item: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """Open bins with room for ``item`` in every dimension, in increasing order."""
        if not self._clusters:
            return np.flatnonzero((self.free >= item).all(axis=1)).astype(np.int64)
        if len(self._clusters) == 1:
            return self._clusters[0].feasible(item)
        found = self._clusters[0].feasible(item[self._slices[0]])
        for cluster, part in zip(self._clusters[1:], self._slices[1:], strict=True):
            if found.size == 0:
                break
            found = np.intersect1d(found, cluster.feasible(item[part]), assume_unique=True)
        return found

    def first_fit(self, item: npt.NDArray[np.int64]) -> int:
        """The lowest-index open bin with room for ``item``, or -1."""
        if len(self._clusters) == 1:
            return self._clusters[0].first_fit(item)
        found = self.feasible(item)
        return int(found[0]) if found.size else -1

    def best_fit(self, item: npt.NDArray[np.int64]) -> int:
        """The open bin left with the least normalised free space by ``item``, or -1."""
        if len(self._clusters) == 1:
            return self._clusters[0].best_fit(item)
        found = self.feasible(item)
        if found.size == 0:
            return -1
        left = (self._free[found] - item) / np.where(self.capacity > 0, self.capacity, 1)
        return int(found[np.argmin(left.sum(axis=1))])

    def place(self, bin_index: int, item: npt.NDArray[np.int64]) -> None:
        """Books ``item`` in an open bin; the core raises ValueError if it does not fit."""
        if not self._clusters and not (self._free[bin_index] >= item).all():
            raise ValueError(f"item {item.tolist()} does not fit in bin {bin_index}")
        if len(self._clusters) > 1 and not all(
            cluster.fits(bin_index, item[part])
            for cluster, part in zip(self._clusters, self._slices, strict=True)
        ):
            # Checked first so that a refusal leaves every cluster unchanged.
            raise ValueError(f"item {item.tolist()} does not fit in bin {bin_index}")
        for cluster, part in zip(self._clusters, self._slices, strict=True):
            cluster.place(bin_index, item[part])
        self._free[bin_index] -= item
