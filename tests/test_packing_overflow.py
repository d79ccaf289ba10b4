"""Packing with sizes near 2**62 .. 2**63 - 1: no sum may wrap into a feasible-looking bin.

Every result is checked by the pure-Python verifier (tests/reference/packing_model.py),
whose integers cannot overflow. Issue 15, finding 2.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastplace.packing import (
    POLICIES,
    InfeasiblePacking,
    lower_bound,
    pack,
    strong_lower_bound,
    verify_packing,
)
from fastplace.packing.local_search import improve
from reference import packing_model

INT64_MAX = 2**63 - 1


@pytest.mark.parametrize("policy", list(POLICIES))
def test_four_items_of_2_62_need_four_bins_of_2_62(policy: str) -> None:
    # Four loads of 2**62 add up to 2**64, which wraps to 0 in int64.
    items = [[2**62]] * 4
    assignment = pack([2**62], items, policy)
    assert sorted(assignment.tolist()) == [0, 1, 2, 3]


@pytest.mark.parametrize("policy", list(POLICIES))
def test_three_items_of_2_62_need_three_bins_of_one_and_a_half_times_2_62(policy: str) -> None:
    # Three loads of 2**62 wrap to -2**62, which is below the capacity.
    assignment = pack([3 * 2**61], [[2**62]] * 3, policy)
    assert sorted(assignment.tolist()) == [0, 1, 2]


@pytest.mark.parametrize(
    ("capacity", "items", "assignment"),
    [
        ([2**62], [[2**62]] * 4, [0, 0, 0, 0]),
        ([3 * 2**61], [[2**62]] * 3, [0, 0, 0]),
        ([INT64_MAX], [[2**62], [2**62]], [0, 0]),  # exactly 2**63: one over
        ([INT64_MAX, 1], [[INT64_MAX, 0]] * 3, [0, 0, 0]),
    ],
)
def test_verify_packing_refuses_loads_that_wrap(
    capacity: list[int], items: list[list[int]], assignment: list[int]
) -> None:
    assert not packing_model.is_packing(items, capacity, assignment)
    with pytest.raises(InfeasiblePacking, match="bin 0 is over capacity in dimension 0"):
        verify_packing(np.array(capacity), np.array(items), np.array(assignment))
    with pytest.raises(InfeasiblePacking):  # Python lists, as well as checked arrays
        verify_packing(capacity, items, assignment)


def test_verify_packing_accepts_a_bin_filled_to_exactly_2_63_minus_1() -> None:
    items = [[2**62, 5], [2**62 - 1, 0]]
    assert verify_packing([INT64_MAX, 5], items, [0, 0]) == 1


def test_verify_packing_checks_the_instance_and_the_indices() -> None:
    with pytest.raises(ValueError, match="item 1 has a negative size -1"):
        verify_packing([10], [[1], [-1]], [0, 0])
    with pytest.raises(TypeError, match="assignment must hold integer bin indices"):
        verify_packing([10], [[1], [1]], [0.0, 0.0])
    with pytest.raises(InfeasiblePacking, match="bin 1 is empty"):
        verify_packing([10], [[1], [1]], [0, 5])
    with pytest.raises(InfeasiblePacking, match="bin 1 is empty"):  # no 10**18-entry count
        verify_packing([10], [[1], [1]], np.array([0, 10**18], dtype=np.uint64))


def test_lower_bounds_do_not_wrap() -> None:
    capacity, items = np.array([2**62]), np.array([[2**62]] * 4)
    assert lower_bound(capacity, items) == 4
    assert strong_lower_bound(capacity, items) == 4
    capacity, items = np.array([INT64_MAX]), np.array([[INT64_MAX // 2 + 1]] * 5 + [[3]] * 2)
    assert lower_bound(capacity, items) == packing_model.volume_bound(items.tolist(), [INT64_MAX])
    assert strong_lower_bound(capacity, items) == 5  # five items above half: a bin each


def test_the_tabu_search_still_empties_a_bin_with_sizes_near_2_60() -> None:
    # test_packing_local_search's spare bin, scaled by 2**57: the totals still fit int64.
    unit = 2**57
    capacity = np.array([10, 10]) * unit
    items = np.array([[5, 5], [6, 4], [5, 5], [4, 6]]) * unit
    improved = improve(items, capacity, np.array([0, 1, 0, 2]))
    assert int(improved.max()) + 1 == 2
    assert packing_model.is_packing(items.tolist(), capacity.tolist(), improved.tolist())


def _near(cap: int) -> st.SearchStrategy[int]:
    """Sizes that sit at the edges sums wrap around: the capacity, its half, a third."""
    edges = [cap, cap - 1, cap // 2, cap // 2 + 1, cap // 3, cap // 3 + 1, 1, 0]
    return st.one_of(st.sampled_from([e for e in edges if 0 <= e <= cap]), st.integers(0, cap))


@st.composite
def huge_instances(
    draw: st.DrawFn, max_items: int = 12, max_dims: int = 3
) -> tuple[list[int], list[list[int]]]:
    """Capacities from 2**62 to 2**63 - 1 (and a small one now and then), items near them."""
    dims = draw(st.integers(1, max_dims))
    capacity = draw(
        st.lists(
            st.one_of(st.integers(2**62, INT64_MAX), st.just(INT64_MAX), st.integers(0, 3)),
            min_size=dims,
            max_size=dims,
        )
    )
    item = st.tuples(*(_near(cap) for cap in capacity)).map(list)
    return capacity, draw(st.lists(item, max_size=max_items))


@pytest.mark.parametrize("policy", list(POLICIES))
@given(instance=huge_instances())
@settings(max_examples=40)
def test_every_policy_packs_huge_sizes_exactly(
    policy: str, instance: tuple[list[int], list[list[int]]]
) -> None:
    capacity, items = instance
    assignment = pack(capacity, np.array(items, dtype=np.int64).reshape(-1, len(capacity)), policy)
    assert packing_model.is_packing(items, capacity, assignment.tolist())
    bins = int(assignment.max()) + 1 if items else 0
    assert bins >= packing_model.volume_bound(items, capacity)


@given(instance=huge_instances(max_items=7))
@settings(max_examples=60)
def test_lower_bounds_of_huge_sizes_are_exact(
    instance: tuple[list[int], list[list[int]]],
) -> None:
    capacity, items = instance
    if not items:
        return
    cap, matrix = np.array(capacity, dtype=np.int64), np.array(items, dtype=np.int64)
    volume = lower_bound(cap, matrix)
    assert volume == packing_model.volume_bound(items, capacity)
    assert volume <= strong_lower_bound(cap, matrix) <= packing_model.optimum(items, capacity)


@given(instance=huge_instances(), data=st.data())
@settings(max_examples=100)
def test_verify_packing_agrees_with_the_reference(
    instance: tuple[list[int], list[list[int]]], data: st.DataObject
) -> None:
    capacity, items = instance
    # Any bin indices, mostly few bins so that loads pile up past 2**63.
    assignment = data.draw(st.lists(st.integers(0, 3), min_size=len(items), max_size=len(items)))
    matrix = np.array(items, dtype=np.int64).reshape(-1, len(capacity))
    expected = packing_model.is_packing(items, capacity, assignment)
    try:
        bins = verify_packing(np.array(capacity), matrix, np.array(assignment, dtype=np.int64))
    except InfeasiblePacking:
        assert not expected
    else:
        assert expected
        assert bins == (max(assignment) + 1 if assignment else 0)
