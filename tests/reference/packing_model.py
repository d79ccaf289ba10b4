"""Plainly correct packing references in pure Python, to check the fast ones against."""

from __future__ import annotations

from collections.abc import Sequence

Vector = Sequence[int]


def fits(free: Vector, item: Vector) -> bool:
    return all(f >= w for f, w in zip(free, item, strict=True))


def first_fit(items: Sequence[Vector], capacity: Vector, order: Sequence[int]) -> list[int]:
    """Items in ``order``, each in the lowest-index bin with room (a new bin if none)."""
    free: list[list[int]] = []
    assignment = [-1] * len(items)
    for index in order:
        item = items[index]
        bin_index = next((b for b, room in enumerate(free) if fits(room, item)), len(free))
        if bin_index == len(free):
            free.append(list(capacity))
        free[bin_index] = [f - w for f, w in zip(free[bin_index], item, strict=True)]
        assignment[index] = bin_index
    return assignment


def is_packing(items: Sequence[Vector], capacity: Vector, assignment: Sequence[int]) -> bool:
    """Every item in a bin 0..k-1, every bin used, no bin over capacity anywhere."""
    if len(assignment) != len(items):
        return False
    if not items:
        return True
    if min(assignment) < 0:
        return False
    n_bins = max(assignment) + 1
    loads = [[0] * len(capacity) for _ in range(n_bins)]
    for item, bin_index in zip(items, assignment, strict=True):
        loads[bin_index] = [load + w for load, w in zip(loads[bin_index], item, strict=True)]
    used = set(assignment)
    return len(used) == n_bins and all(fits(capacity, load) for load in loads)


def volume_bound(items: Sequence[Vector], capacity: Vector) -> int:
    if not items:
        return 0
    bound = 1
    for dim, cap in enumerate(capacity):
        total = sum(item[dim] for item in items)
        if cap > 0:
            bound = max(bound, -(-total // cap))
    return bound


def optimum(items: Sequence[Vector], capacity: Vector) -> int:
    """The fewest bins, by exhaustive search (for a handful of items only)."""
    best = len(items)
    loads: list[list[int]] = []

    def place(index: int) -> None:
        nonlocal best
        if len(loads) >= best:
            return
        if index == len(items):
            best = len(loads)
            return
        item = items[index]
        for load in loads:
            if all(load[d] + item[d] <= capacity[d] for d in range(len(capacity))):
                for d in range(len(capacity)):
                    load[d] += item[d]
                place(index + 1)
                for d in range(len(capacity)):
                    load[d] -= item[d]
        loads.append(list(item))
        place(index + 1)
        loads.pop()

    place(0)
    return best
