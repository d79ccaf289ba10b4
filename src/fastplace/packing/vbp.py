"""Reading VPSolver ``.vbp`` vector bin packing instances.

The format, one record per line: the dimension ``d``; the ``d`` bin capacities; the
number ``m`` of item types; then ``m`` lines ``w_1 .. w_d demand`` (demand = how many
identical items of that type). Blank lines are skipped; line numbers in errors are
those of the file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

__all__ = ["VbpFormatError", "VbpInstance", "VbpTypes", "parse_vbp", "read_vbp"]

_INTEGER = re.compile(r"[+-]?[0-9]+")
_INT64_MAX = int(np.iinfo(np.int64).max)


class VbpFormatError(ValueError):
    """A malformed ``.vbp`` file; the message starts with ``path:line:``."""

    def __init__(self, path: str, line: int, message: str) -> None:
        """``message`` about ``line`` (1-based) of the file at ``path``."""
        super().__init__(f"{path}:{line}: {message}")
        self.path = path
        self.line = line


@dataclass(frozen=True)
class VbpInstance:
    """One instance: identical bins of ``capacity`` and one row of ``items`` per item.

    ``items`` is the (n, d) int64 matrix with every item type repeated ``demand``
    times, in file order; ``item_type[i]`` is the 0-based type (file record) of item
    ``i``; ``name`` is the file name without ``.vbp``.
    """

    name: str
    capacity: npt.NDArray[np.int64]
    items: npt.NDArray[np.int64]
    item_type: npt.NDArray[np.int64]

    @property
    def dims(self) -> int:
        """Number of resource dimensions of the bins and items."""
        return int(self.capacity.shape[0])

    @property
    def n_items(self) -> int:
        """Number of items, every item type counted ``demand`` times."""
        return int(self.items.shape[0])


@dataclass(frozen=True)
class VbpTypes:
    """An instance as the file lists it: item types and their demands, not yet expanded
    into one row per item (which takes ``n_items * dims`` int64s: check that first)."""

    name: str
    capacity: npt.NDArray[np.int64]
    types: npt.NDArray[np.int64]  # (m, d): the sizes of each item type
    demands: npt.NDArray[np.int64]  # (m,): how many items of each type

    @property
    def dims(self) -> int:
        """Number of resource dimensions of the bins and items."""
        return int(self.capacity.shape[0])

    @property
    def n_items(self) -> int:
        """Number of items the instance expands to (exact: a Python int, no overflow)."""
        return sum(self.demands.tolist())

    def expand(self) -> VbpInstance:
        """The instance with every item type repeated ``demand`` times."""
        item_type = np.repeat(np.arange(self.types.shape[0], dtype=np.int64), self.demands)
        return VbpInstance(
            name=self.name,
            capacity=self.capacity,
            items=np.ascontiguousarray(self.types[item_type]),
            item_type=item_type,
        )


def _records(text: str) -> Iterator[tuple[int, list[str]]]:
    for number, line in enumerate(text.splitlines(), start=1):
        tokens = line.split()
        if tokens:
            yield number, tokens


def read_vbp(path: str | os.PathLike[str]) -> VbpInstance:
    """Parses a ``.vbp`` file; raises VbpFormatError (a ValueError) naming the bad line."""
    with open(path, encoding="utf-8") as file:
        text = file.read()
    return parse_vbp(text, path).expand()


def parse_vbp(text: str, path: str | os.PathLike[str]) -> VbpTypes:
    """Parses the text of the ``.vbp`` file at ``path`` (which names it in errors and
    gives the instance its name); raises VbpFormatError naming the bad line."""
    where = os.fspath(path)
    records = _records(text)
    end_of_file = len(text.splitlines()) + 1

    def next_record(what: str) -> tuple[int, list[str]]:
        try:
            return next(records)
        except StopIteration:
            raise VbpFormatError(
                where, end_of_file, f"missing line: expected {what}, got end of file"
            ) from None

    def integers(number: int, tokens: list[str], count: int, what: str) -> list[int]:
        if len(tokens) != count:
            raise VbpFormatError(where, number, f"expected {count} {what}, got {len(tokens)}")
        values = []
        for position, token in enumerate(tokens, start=1):
            if not _INTEGER.fullmatch(token):
                raise VbpFormatError(
                    where, number, f"value {position} ({token!r}) is not an integer"
                )
            value = int(token)
            if value < 0:
                raise VbpFormatError(where, number, f"value {position} ({value}) is negative")
            if value > _INT64_MAX:
                raise VbpFormatError(where, number, f"value {position} ({value}) is too large")
            values.append(value)
        return values

    number, tokens = next_record("the dimension d")
    (dims,) = integers(number, tokens, 1, "value (the dimension d)")
    if dims < 1:
        raise VbpFormatError(where, number, "the dimension d must be at least 1")
    number, tokens = next_record(f"{dims} bin capacities")
    capacity = integers(number, tokens, dims, "bin capacities")
    number, tokens = next_record("the number of item types")
    (n_types,) = integers(number, tokens, 1, "value (the number of item types)")

    rows: list[list[int]] = []
    demands: list[int] = []
    for kind in range(n_types):
        number, tokens = next_record(f"item type {kind + 1} of {n_types}")
        *sizes, demand = integers(number, tokens, dims + 1, f"values ({dims} sizes and a demand)")
        for dim, (size, cap) in enumerate(zip(sizes, capacity, strict=True)):
            if size > cap:
                raise VbpFormatError(
                    where,
                    number,
                    f"size {size} in dimension {dim} exceeds the bin capacity {cap}",
                )
        rows.append(sizes)
        demands.append(demand)
    for number, _ in records:
        raise VbpFormatError(where, number, f"unexpected line after the {n_types} item types")

    return VbpTypes(
        name=Path(where).name.removesuffix(".vbp"),
        capacity=np.asarray(capacity, dtype=np.int64),
        types=np.asarray(rows, dtype=np.int64).reshape(n_types, dims),
        demands=np.asarray(demands, dtype=np.int64),
    )
