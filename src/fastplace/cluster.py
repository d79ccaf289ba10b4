"""The public cluster state: servers, their free resources and the containers on them.

``Cluster`` subclasses the native ``ClusterCore`` so that hot calls (``first_fit``,
``place``, ``release`` ...) go straight to C++ with no Python frame in between; this
module adds what is cheap to do in Python: input normalisation for whole matrices,
read-only numpy views, ``restore``/pickling and error types.

Threading: every operation locks the native state, so concurrent calls from several
threads are safe and each is atomic. ``first_fit`` followed by ``place`` is two
operations; use ``place_with`` or ``place_gang`` to find and book atomically.
"""

from __future__ import annotations

import enum
import itertools
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from fastplace._atomic import write_atomic
from fastplace._native import _core
from fastplace.resources import _FLOAT_LIMIT, DEFAULT_RESOURCES

__all__ = [
    "Cluster",
    "ClusterInvariantError",
    "CorruptSnapshot",
    "ReplayOp",
    "ReplayResult",
    "as_amount_matrix",
]

#: Raised (as a ValueError) when snapshot bytes are truncated, corrupted or inconsistent.
CorruptSnapshot = _core.CorruptSnapshot


class ClusterInvariantError(AssertionError):
    """``Cluster.validate`` found the state inconsistent; the message names the invariant."""


class ReplayOp(enum.IntEnum):
    """Event codes for :meth:`Cluster.replay`."""

    PLACE_FIRST_FIT = 0
    RELEASE_EVENT = 1  # release the container placed by event refs[i]
    PLACE_BEST_FIT = 2
    RELEASE_CONTAINER = 3  # release the live container whose id is refs[i]


@dataclass(frozen=True)
class ReplayResult:
    """Outcome of :meth:`Cluster.replay`, one entry per event."""

    servers: npt.NDArray[np.int64]
    containers: npt.NDArray[np.int64]
    placed: int
    unplaced: int
    released: int


def as_amount_matrix(
    values: npt.ArrayLike,
    name: str,
    dims: int,
    *,
    resources: Sequence[str] = (),
    suggest_resources: bool = False,
) -> npt.NDArray[np.int64]:
    """``values`` as a C-contiguous int64 (n, dims) matrix; errors name ``name``.

    Floats are accepted when they are finite whole numbers; negatives are left for the
    core to reject with the server and resource named. ``resources`` names the dims
    columns in errors; ``suggest_resources`` (for a constructor) adds, when the column
    count is wrong, that ``resources=`` can name other resources.
    """
    try:
        array = np.asarray(values)
    except ValueError as error:  # numpy: "inhomogeneous shape"; say which row is off
        raise ValueError(_ragged_row(values, name, dims) or f"{name}: {error}") from None
    if array.ndim == 2 and array.shape[1] != dims and array.shape[0] > 0:
        message = f"{name} has shape {array.shape}, expected (n, {dims})"
        if resources:
            message += f": one column per resource ({', '.join(resources)})"
        if suggest_resources:
            message += (
                f"; pass resources=(...) naming {_count(array.shape[1], 'resource')}, "
                "one per column"
            )
        raise ValueError(message)
    if array.ndim != 2 or array.shape[1] != dims:
        one_row = " (one row is [[...]])" if array.ndim == 1 and array.shape[0] == dims else ""
        raise ValueError(
            f"{name} must have shape (n, {dims}), one row of {dims} amounts each, "
            f"got shape {array.shape}{one_row}"
        )
    if array.dtype.kind == "f":
        bad = ~np.isfinite(array)
        if bad.any():
            row, col = np.argwhere(bad)[0]
            raise ValueError(f"{name}[{row}][{col}] = {array[row, col]} is not finite")
        fractional = array != np.floor(array)
        if fractional.any():
            row, col = np.argwhere(fractional)[0]
            raise ValueError(f"{name}[{row}][{col}] = {array[row, col]} is not a whole number")
        # The cast below would wrap these; the limit is the core's (and as_request's).
        huge = np.abs(array) >= _FLOAT_LIMIT
        if huge.any():
            row, col = np.argwhere(huge)[0]
            raise ValueError(f"{name}[{row}][{col}] = {array[row, col]} is too large for int64")
    elif array.dtype.kind == "O":  # numpy keeps ints beyond int64/uint64 as objects
        for (row, col), value in np.ndenumerate(array):
            if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**63:
                raise ValueError(f"{name}[{row}][{col}] = {value} is outside the int64 range")
        raise TypeError(f"{name} must hold integers, got dtype {array.dtype}")
    elif array.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integers, got dtype {array.dtype}")
    if array.dtype.kind == "u" and array.size and array.max() > np.iinfo(np.int64).max:
        raise ValueError(f"{name} holds values too large for int64")
    if not isinstance(values, np.ndarray) and array.size:
        _refuse_bools(values, name)
    return np.ascontiguousarray(array, dtype=np.int64)


def _refuse_bools(rows: Any, name: str) -> None:
    """A TypeError naming the first bool among the rows' cells: numpy turns ``True``
    mixed with integers into 1, which a request (``Cluster.place``) would refuse."""
    # One pass over the cells' types (C loops) first; the slow search only on a hit.
    kinds = set(map(type, itertools.chain.from_iterable(rows)))
    if bool not in kinds and np.bool_ not in kinds:
        return
    for i, row in enumerate(rows):
        for j, cell in enumerate(row):
            if isinstance(cell, bool | np.bool_):
                raise TypeError(f"{name}[{i}][{j}] = {cell!r} must be an integer, got bool")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _ragged_row(values: Any, name: str, dims: int) -> str | None:
    """The first row of ``values`` that is not ``dims`` numbers, described; None if
    none is found (called only once numpy has refused the input)."""
    rows = _items(values)
    for i, row in enumerate(rows or ()):
        cells = _items(row)
        if cells is None:
            return f"{name}[{i}] = {row!r} is not a row of {dims} amounts"
        if len(cells) != dims:
            return f"{name}[{i}] has length {len(cells)}, expected {dims} (one per resource)"
        for j, cell in enumerate(cells):
            if _items(cell) is not None:
                return f"{name}[{i}][{j}] = {cell!r} is not a number"
    return None


def _items(value: Any) -> list[Any] | None:
    """``value``'s elements if it is a sequence (text counts as a scalar), else None."""
    if isinstance(value, str | bytes):
        return None
    try:
        return list(value)
    except TypeError:
        return None


def _check_resources(resources: Sequence[str]) -> list[str]:
    if isinstance(resources, str):
        raise TypeError(f"resources must be a sequence of names, got the string {resources!r}")
    names = list(resources)
    for i, name in enumerate(names):
        if not isinstance(name, str):
            raise TypeError(f"resources[{i}] = {name!r} must be a string")
        try:
            name.encode("utf-8")
        except UnicodeEncodeError as error:  # lone surrogates; the core takes UTF-8 bytes
            raise ValueError(f"resources[{i}] = {name!r} is not valid Unicode: {error}") from None
    return names


class Cluster(_core.ClusterCore):
    """N servers x D integer resources, and the containers placed on them.

    >>> cluster = Cluster([[4096, 2000], [8192, 4000]])
    >>> cluster.first_fit([5000, 1000])
    1
    >>> container = cluster.place(1, [5000, 1000])
    >>> cluster.free.tolist()
    [[4096, 2000], [3192, 3000]]
    """

    def __init__(
        self, capacity: npt.ArrayLike, resources: Sequence[str] = DEFAULT_RESOURCES
    ) -> None:
        """A cluster of ``len(capacity)`` empty servers.

        ``capacity`` is an (n_servers, n_dims) matrix of integers (or whole floats), one
        row per server; ``resources`` names the n_dims columns (1 to 8), in the order
        every request lists its amounts (default memory in MB, CPU in millicores).
        """
        names = _check_resources(resources)
        matrix = as_amount_matrix(
            capacity, "capacity", len(names), resources=names, suggest_resources=True
        )
        super().__init__(matrix, names)

    @classmethod
    def restore(cls, data: bytes) -> Cluster:
        """A cluster rebuilt from :meth:`snapshot` bytes (raises CorruptSnapshot if damaged)."""
        cluster = cls.__new__(cls)
        _core.ClusterCore.__init__(cluster, snapshot_bytes(data))
        return cluster

    def save(self, path: str | os.PathLike[str]) -> None:
        """Writes :meth:`snapshot` to ``path`` atomically and durably: concurrent saves
        to one path never fail, and a reader sees a whole old or new snapshot
        (:mod:`fastplace._atomic`)."""
        write_atomic(path, self.snapshot())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Cluster:
        """A cluster restored from a file written by :meth:`save`."""
        with open(path, "rb") as file:
            return cls.restore(file.read())

    def __reduce__(self) -> tuple[Any, ...]:
        return (restore_snapshot, (type(self), self.snapshot()))

    def add_servers(self, capacity: npt.ArrayLike) -> int:
        """Appends servers (an (n, n_dims) capacity matrix); returns the first new id."""
        matrix = as_amount_matrix(capacity, "capacity", self.n_dims, resources=self.resources)
        return super().add_servers(matrix)

    @property
    def free(self) -> npt.NDArray[np.int64]:
        """Free amounts, a read-only (n_servers, n_dims) int64 copy."""
        free = self.free_copy()
        free.setflags(write=False)
        return free

    @property
    def capacity(self) -> npt.NDArray[np.int64]:
        """Capacities, a read-only (n_servers, n_dims) int64 copy."""
        capacity = self.capacity_copy()
        capacity.setflags(write=False)
        return capacity

    @property
    def used(self) -> npt.NDArray[np.int64]:
        """Amounts booked per server, a (n_servers, n_dims) int64 array."""
        return self.capacity_copy() - self.free_copy()

    def utilisation(self) -> dict[str, float]:
        """Booked share of the total capacity, per resource (from the exact totals)."""
        free, capacity = self.totals()
        return {
            name: (int(capacity[d]) - int(free[d])) / int(capacity[d]) if capacity[d] else 0.0
            for d, name in enumerate(self.resources)
        }

    def validate(self) -> None:
        """Recomputes every invariant; raises ClusterInvariantError naming the first broken one."""
        reason = self.validate_reason()
        if reason:
            raise ClusterInvariantError(reason)

    def replay(  # type: ignore[override]
        self,
        ops: npt.ArrayLike,
        requests: npt.ArrayLike,
        refs: npt.ArrayLike | None = None,
    ) -> ReplayResult:
        """Runs a stream of place/release events in C++ (see :class:`ReplayOp`).

        ``requests`` is (m, n_dims); rows of release events are ignored. ``refs`` (m,)
        names, for release events, the earlier event (or the container) to release.
        The whole stream is checked first: a bad event raises and changes nothing.
        """
        op_array = np.asarray(ops)
        if op_array.ndim != 1:
            raise ValueError(f"ops must be 1-D, got shape {op_array.shape}")
        if op_array.dtype.kind not in "iu":
            raise TypeError(f"ops must hold integer event codes, got dtype {op_array.dtype}")
        if op_array.size and (op_array.min() < 0 or op_array.max() > max(ReplayOp)):
            bad = int(np.flatnonzero((op_array < 0) | (op_array > max(ReplayOp)))[0])
            raise ValueError(f"ops[{bad}] = {op_array[bad]} is not an event code (0-3)")
        matrix = as_amount_matrix(requests, "requests", self.n_dims, resources=self.resources)
        if refs is None:
            ref_array = np.full(op_array.shape[0], -1, dtype=np.int64)
        else:
            ref_array = np.asarray(refs)
            if ref_array.dtype.kind not in "iu" and ref_array.size:
                raise TypeError(f"refs must hold integers, got dtype {ref_array.dtype}")
            ref_array = np.ascontiguousarray(ref_array, dtype=np.int64)
        servers, containers, stats = super().replay(op_array.astype(np.uint8), matrix, ref_array)
        return ReplayResult(servers, containers, **stats)

    def __repr__(self) -> str:
        return (
            f"Cluster(n_servers={self.n_servers}, resources={tuple(self.resources)}, "
            f"containers={self.n_containers}, active_servers={self.n_active_servers})"
        )


def snapshot_bytes(data: object) -> bytes:
    """``data`` as bytes for a native restore, or a TypeError naming its type."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"snapshot data must be bytes, got {type(data).__name__}")
    return bytes(data)


def restore_snapshot(cls: Any, data: bytes) -> Any:
    """Unpickling entry point shared by the snapshot-backed classes: ``cls.restore(data)``."""
    return cls.restore(data)
