"""Improvement step: empty one bin at a time by tabu search on the overflow.

Starting from a feasible packing with k bins, take the lightest bin out and put each
of its items where it adds the least overflow. Then search for a state without
overflow (k - 1 feasible bins) with two moves, both taking an item out of one
overflowing bin (picked at random each iteration): move it to another bin, or swap
it with an item of another bin. The search minimises the total overflow, each
dimension as a share of the capacity; a move undoing a recent one is tabu for a few
iterations unless it reaches a new best (the TabuCol scheme of Hertz and de Werra for
graph colouring, applied to bins as Masson et al. 2013 do for multi-capacity bin
packing). When it succeeds, repeat with k - 1 bins; stop at the lower bound or when
the ``attempts`` lightest bins cannot be emptied.

The kernel :func:`eliminate_bin` is plain Python over numpy arrays. :func:`improve`
runs it compiled by numba (imported on first use); the plain function is the
reference the tests compare the compiled one against. Its pseudo-random choices come
from a linear congruential generator seeded explicitly, so a run is reproducible
from its seed and gives the same answer compiled or not.

Bin loads are int64 in the kernel. A load never exceeds its dimension's total size,
so :func:`improve` runs the search only when every dimension's total fits in int64;
otherwise a load could wrap to a small number and an overfull bin pass as feasible,
and the packing is returned as given (it is already feasible).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from fastplace._checks import integer
from fastplace.extras import require
from fastplace.packing._sums import INT64_MAX, totals
from fastplace.packing.problem import strong_lower_bound
from fastplace.packing.sizes import normalised

__all__ = ["eliminate_bin", "improve"]

Int64Array = npt.NDArray[np.int64]

_LCG_MULTIPLIER = 1103515245
_LCG_INCREMENT = 12345
_TABU_SLOTS = 4
_LCG_MODULUS = 2147483648  # 2**31: state * multiplier stays below 2**62, no int64 overflow


def eliminate_bin(
    items: Int64Array,
    capacity: Int64Array,
    assignment: Int64Array,
    n_bins: int,
    target: int,
    max_iterations: int,
    seed: int,
) -> bool:
    """Repacks bin ``target``'s items into the other ``n_bins - 1`` bins.

    On success rewrites ``assignment`` in place with bins ``0 .. n_bins - 2`` (the last
    bin takes the emptied bin's index) and returns True; otherwise leaves it as it was
    and returns False. Every dimension's total size must fit in int64 (see the module
    docstring): loads are int64.
    """
    n, d = items.shape
    k = n_bins
    if k < 2 or not 0 <= target < k:
        return False
    inverse = np.empty(d)
    for h in range(d):
        inverse[h] = 1.0 / max(capacity[h], 1)
    load = np.zeros((k, d), dtype=np.int64)
    where = assignment.copy()
    for i in range(n):
        if where[i] != target:
            for h in range(d):
                load[where[i], h] += items[i, h]

    # Start: every item of the target bin where it adds the least overflow.
    for i in range(n):
        if where[i] != target:
            continue
        best = -1
        best_delta = np.inf
        for c in range(k):
            if c == target:
                continue
            delta = 0.0
            for h in range(d):
                delta += (
                    max(load[c, h] + items[i, h] - capacity[h], 0)
                    - max(load[c, h] - capacity[h], 0)
                ) * inverse[h]
            if delta < best_delta:
                best_delta = delta
                best = c
        where[i] = best
        for h in range(d):
            load[best, h] += items[i, h]

    # overflowing counts (bin, dimension) pairs over capacity: exact, unlike the float cost.
    overflowing = 0
    cost = 0.0
    for c in range(k):
        for h in range(d):
            if load[c, h] > capacity[h]:
                overflowing += 1
                cost += (load[c, h] - capacity[h]) * inverse[h]
    best_cost = cost
    # Item i may not go back to bin tabu_bin[i, r] before iteration tabu_until[i, r]: the
    # last _TABU_SLOTS bins it left, so memory stays O(n) however many bins there are.
    tabu_bin = np.full((n, _TABU_SLOTS), -1, dtype=np.int64)
    tabu_until = np.zeros((n, _TABU_SLOTS), dtype=np.int64)
    tabu_next = np.zeros(n, dtype=np.int64)
    state = seed % _LCG_MODULUS
    iteration = 0
    while overflowing > 0 and iteration < max_iterations:
        iteration += 1
        conflicting = 0
        move_delta = np.inf
        ties = 0
        move_item = -1
        move_other = -1  # -1: shift move_item; else swap it with this item
        move_bin = -1
        # Moves take an item out of one overflowing bin, picked at random: looking at
        # all of them costs more per iteration than it gains in direction.
        overflowing_bins = 0
        for c in range(k):
            for h in range(d):
                if load[c, h] > capacity[h]:
                    overflowing_bins += 1
                    break
        state = (state * _LCG_MULTIPLIER + _LCG_INCREMENT) % _LCG_MODULUS
        pick = state % overflowing_bins
        source = -1
        for c in range(k):
            for h in range(d):
                if load[c, h] > capacity[h]:
                    if pick == 0:
                        source = c
                    pick -= 1
                    break
        for i in range(n):
            b = where[i]
            if b != source:
                continue
            conflicting += 1
            leave = 0.0
            for h in range(d):
                leave += (
                    max(load[b, h] - items[i, h] - capacity[h], 0)
                    - max(load[b, h] - capacity[h], 0)
                ) * inverse[h]
            for c in range(k):
                if c == b or c == target:
                    continue
                delta = leave
                for h in range(d):
                    delta += (
                        max(load[c, h] + items[i, h] - capacity[h], 0)
                        - max(load[c, h] - capacity[h], 0)
                    ) * inverse[h]
                if delta > move_delta + 1e-12:
                    continue
                if cost + delta >= best_cost - 1e-12:  # no new best: respect the tabu
                    forbidden = False
                    for r in range(_TABU_SLOTS):
                        if tabu_bin[i, r] == c and tabu_until[i, r] > iteration:
                            forbidden = True
                    if forbidden:
                        continue
                if delta < move_delta - 1e-12:
                    move_delta = delta
                    ties = 1
                else:
                    # Reservoir sampling among equal moves: each has the same chance.
                    ties += 1
                    state = (state * _LCG_MULTIPLIER + _LCG_INCREMENT) % _LCG_MODULUS
                    if state % ties != 0:
                        continue
                move_item = i
                move_other = -1
                move_bin = c
            for j in range(n):
                c = where[j]
                if c == b or c == target:
                    continue
                delta = 0.0
                for h in range(d):
                    change = items[j, h] - items[i, h]
                    delta += (
                        max(load[b, h] + change - capacity[h], 0)
                        - max(load[b, h] - capacity[h], 0)
                        + max(load[c, h] - change - capacity[h], 0)
                        - max(load[c, h] - capacity[h], 0)
                    ) * inverse[h]
                if delta > move_delta + 1e-12:
                    continue
                if cost + delta >= best_cost - 1e-12:
                    forbidden = False
                    for r in range(_TABU_SLOTS):
                        if (tabu_bin[i, r] == c and tabu_until[i, r] > iteration) or (
                            tabu_bin[j, r] == b and tabu_until[j, r] > iteration
                        ):
                            forbidden = True
                    if forbidden:
                        continue
                if delta < move_delta - 1e-12:
                    move_delta = delta
                    ties = 1
                else:
                    ties += 1
                    state = (state * _LCG_MULTIPLIER + _LCG_INCREMENT) % _LCG_MODULUS
                    if state % ties != 0:
                        continue
                move_item = i
                move_other = j
                move_bin = c
        if move_item < 0:
            break  # every move is tabu
        for h in range(d):
            for c in (source, move_bin):
                if load[c, h] > capacity[h]:
                    overflowing -= 1
                    cost -= (load[c, h] - capacity[h]) * inverse[h]
            load[source, h] -= items[move_item, h]
            load[move_bin, h] += items[move_item, h]
            if move_other >= 0:
                load[source, h] += items[move_other, h]
                load[move_bin, h] -= items[move_other, h]
            for c in (source, move_bin):
                if load[c, h] > capacity[h]:
                    overflowing += 1
                    cost += (load[c, h] - capacity[h]) * inverse[h]
        state = (state * _LCG_MULTIPLIER + _LCG_INCREMENT) % _LCG_MODULUS
        tenure = 3 + state % 10 + conflicting // 2
        where[move_item] = move_bin
        slot = tabu_next[move_item]
        tabu_bin[move_item, slot] = source
        tabu_until[move_item, slot] = iteration + tenure
        tabu_next[move_item] = (slot + 1) % _TABU_SLOTS
        if move_other >= 0:
            where[move_other] = source
            slot = tabu_next[move_other]
            tabu_bin[move_other, slot] = move_bin
            tabu_until[move_other, slot] = iteration + tenure
            tabu_next[move_other] = (slot + 1) % _TABU_SLOTS
        best_cost = min(best_cost, cost)

    if overflowing > 0:
        return False
    last = k - 1
    for i in range(n):
        assignment[i] = target if where[i] == last else where[i]
    return True


@functools.cache
def _compiled() -> Callable[..., Any]:
    numba = require("numba", "the 'best' packing policy (its tabu search)")
    compiled: Callable[..., Any] = numba.njit(cache=True, nogil=True)(eliminate_bin)
    return compiled


def improve(
    items: Int64Array,
    capacity: Int64Array,
    assignment: Int64Array,
    *,
    seed: int = 0,
    max_iterations: int = 1000,
    attempts: int = 2,
) -> Int64Array:
    """A packing with as few bins as the tabu search reaches from ``assignment``.

    Each round tries to empty the ``attempts`` lightest bins (sum of normalised
    sizes), one after the other, with ``max_iterations`` tabu moves each; the first
    success starts the next round. ``assignment`` must be a packing with bins
    ``0 .. k-1``; it is not modified. Returned unchanged (as a copy) when a
    dimension's total size exceeds 2**63 - 1, where int64 loads could wrap.
    """
    seed = integer(seed, "seed", minimum=0)
    max_iterations = integer(max_iterations, "max_iterations", minimum=0)
    attempts = integer(attempts, "attempts", minimum=1)
    kernel = _compiled()
    result = assignment.copy()
    if result.size == 0 or max(totals(items)) > INT64_MAX:
        return result
    n_bins = int(result.max()) + 1
    floor = strong_lower_bound(capacity, items)
    mass = normalised(items, capacity).sum(axis=1)
    while n_bins > floor:
        fill = np.bincount(result, weights=mass, minlength=n_bins)
        for attempt, target in enumerate(np.argsort(fill, kind="stable")[:attempts].tolist()):
            trial = result.copy()
            round_seed = (seed * 1_000_003 + n_bins * 97 + attempt) % _LCG_MODULUS
            if kernel(items, capacity, trial, n_bins, target, max_iterations, round_seed):
                result = trial
                n_bins -= 1
                break
        else:
            break
    return result
