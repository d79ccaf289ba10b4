"""pack(): every policy returns a packing, input errors name the culprit, fast == reference."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastplace.packing import (
    POLICIES,
    lower_bound,
    pack,
    strong_lower_bound,
    verify_packing,
)
from fastplace.packing.problem import InfeasiblePacking
from reference import packing_model

GREEDY_BIN_ORDER = (
    "first_fit",
    "first_fit_decreasing",
    "first_fit_decreasing_max",
    "first_fit_decreasing_product",
    "first_fit_decreasing_l2",
    "dot_product",
    "l2_norm",
)


@st.composite
def instances(
    draw: st.DrawFn, max_items: int = 40, max_dims: int = 10
) -> tuple[list[int], list[list[int]]]:
    """Capacities 0-60 (a 0 now and then), d up to 10 so wide instances split the core."""
    dims = draw(st.integers(1, max_dims))
    capacity = draw(
        st.lists(st.one_of(st.just(0), st.integers(1, 60)), min_size=dims, max_size=dims)
    )
    item = st.tuples(*(st.integers(0, cap) for cap in capacity)).map(list)
    items = draw(st.lists(item, max_size=max_items))
    return capacity, items


@pytest.mark.parametrize("policy", list(POLICIES))
@given(instance=instances())
@settings(max_examples=60)
def test_every_policy_returns_a_packing(
    policy: str, instance: tuple[list[int], list[list[int]]]
) -> None:
    capacity, items = instance
    assignment = pack(capacity, np.array(items, dtype=np.int64).reshape(-1, len(capacity)), policy)
    assert assignment.dtype == np.int64
    assert assignment.shape == (len(items),)
    assert packing_model.is_packing(items, capacity, assignment.tolist())
    bins = int(assignment.max()) + 1 if items else 0
    assert bins >= packing_model.volume_bound(items, capacity)
    cap, matrix = np.array(capacity, dtype=np.int64), np.array(items, dtype=np.int64)
    if items:
        assert bins >= strong_lower_bound(cap, matrix) >= lower_bound(cap, matrix)


@given(instance=instances())
def test_first_fit_matches_the_reference(instance: tuple[list[int], list[list[int]]]) -> None:
    capacity, items = instance
    matrix = np.array(items, dtype=np.int64).reshape(-1, len(capacity))
    expected = packing_model.first_fit(items, capacity, range(len(items)))
    assert pack(capacity, matrix, "first_fit").tolist() == expected


@given(instance=instances())
def test_first_fit_decreasing_max_matches_the_reference(
    instance: tuple[list[int], list[list[int]]],
) -> None:
    capacity, items = instance
    matrix = np.array(items, dtype=np.int64).reshape(-1, len(capacity))

    def largest_share(index: int) -> float:
        return max((w / c if c else 0.0) for w, c in zip(items[index], capacity, strict=True))

    order = sorted(range(len(items)), key=lambda i: -largest_share(i))  # stable: ties in order
    expected = packing_model.first_fit(items, capacity, order)
    assert pack(capacity, matrix, "first_fit_decreasing_max").tolist() == expected


@pytest.mark.parametrize("policy", GREEDY_BIN_ORDER)
@given(instance=instances(max_items=30))
@settings(max_examples=40)
def test_no_item_fits_in_an_earlier_bin(
    policy: str, instance: tuple[list[int], list[list[int]]]
) -> None:
    # First fit and the bin-centric rules close bin b only when nothing left fits in it,
    # so no item of a later bin fits in what b has left at the end.
    capacity, items = instance
    matrix = np.array(items, dtype=np.int64).reshape(-1, len(capacity))
    assignment = pack(capacity, matrix, policy)
    if not items:
        return
    cap = np.array(capacity, dtype=np.int64)
    loads = np.zeros((int(assignment.max()) + 1, len(capacity)), dtype=np.int64)
    np.add.at(loads, assignment, matrix)
    for item, bin_index in enumerate(assignment.tolist()):
        room = cap - loads[:bin_index]
        assert not (matrix[item] <= room).all(axis=1).any(), (item, bin_index)


@given(instance=instances(max_items=25, max_dims=4))
@settings(max_examples=40)
def test_portfolio_and_best_are_no_worse_than_any_member(
    instance: tuple[list[int], list[list[int]]],
) -> None:
    capacity, items = instance
    matrix = np.array(items, dtype=np.int64).reshape(-1, len(capacity))
    if not items:
        return
    members = [p for p in POLICIES if p not in ("first_fit", "portfolio", "best")]
    fewest = min(int(pack(capacity, matrix, p).max()) + 1 for p in members)
    portfolio_bins = int(pack(capacity, matrix, "portfolio").max()) + 1
    best_bins = int(pack(capacity, matrix, "best").max()) + 1
    assert portfolio_bins == fewest
    assert best_bins <= portfolio_bins


@given(instance=instances(max_items=7, max_dims=3))
@settings(max_examples=80)
def test_bounds_and_best_against_the_exhaustive_optimum(
    instance: tuple[list[int], list[list[int]]],
) -> None:
    capacity, items = instance
    if not items:
        return
    cap, matrix = np.array(capacity, dtype=np.int64), np.array(items, dtype=np.int64)
    optimum = packing_model.optimum(items, capacity)
    assert lower_bound(cap, matrix) <= strong_lower_bound(cap, matrix) <= optimum
    assert int(pack(cap, matrix, "best").max()) + 1 >= optimum


SMALL, LARGE = [3, 3], [7, 7]
HAND_CHECKED = [SMALL, SMALL, SMALL, LARGE, LARGE, LARGE]


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        # 3+3+3 share the first bin, then each 7 needs its own: 4 bins.
        ("first_fit", [0, 0, 0, 1, 2, 3]),
        # The 7s go first, one bin each, and each 3 joins one of them: 3 bins.
        ("first_fit_decreasing", [0, 1, 2, 0, 1, 2]),
        ("best_fit_decreasing", [0, 1, 2, 0, 1, 2]),
        # Bin-centric: the biggest item first (7, index 3), then a 3 fills the rest.
        ("dot_product", [0, 1, 2, 0, 1, 2]),
        ("best", [0, 1, 2, 0, 1, 2]),
    ],
)
def test_hand_checked_instance(policy: str, expected: list[int]) -> None:
    assert pack([10, 10], HAND_CHECKED, policy).tolist() == expected


def test_vector_shapes_matter() -> None:
    # Volume says 2 bins, but [6, 1] and [5, 9] cannot share (11 > 10 in dimension 0)
    # and neither can [5, 9] and [1, 6]: [6, 1] + [1, 6] + [3, 3] share one bin.
    items = [[6, 1], [5, 9], [1, 6], [3, 3]]
    assignment = pack([10, 10], items, "best")
    assert verify_packing(np.array([10, 10]), np.array(items), assignment) == 2
    assert assignment[0] == assignment[2] == assignment[3] != assignment[1]


@pytest.mark.parametrize(
    ("capacity", "items", "message"),
    [
        ([[10, 10]], [[1, 1]], "capacity must be a 1-D vector"),
        ([], [[1]], "capacity must be a 1-D vector"),
        ([10, -1], [[1, 0]], r"capacity\[1\] = -1 must be >= 0"),
        ([10, 10], [[1, 1, 1]], r"items has shape \(1, 3\), expected \(n, 2\)$"),
        ([10, 10], [1, 1], r"items must have shape \(n, 2\)"),
        ([10, 10], [[1, 1], [2]], r"items\[1\] has length 1, expected 2"),
        ([10, 10], [[1.0, 1.0], [np.nan, 2.0]], r"items\[1\]\[0\] = nan is not finite"),
        ([10, 10], [[1.5, 1.0]], r"items\[0\]\[0\] = 1.5 is not a whole number"),
        ([10, 10], [[1, 1], [2, 2], [3, -4]], "item 2 has a negative size -4 in dimension 1"),
        (
            [10, 10],
            [[1, 1], [2, 11]],
            "item 1 needs 11 in dimension 1, more than the bin capacity 10",
        ),
    ],
)
def test_bad_input_names_the_culprit(capacity: object, items: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        pack(capacity, items, "first_fit")  # type: ignore[arg-type]


def test_non_numeric_items_are_a_type_error() -> None:
    with pytest.raises(TypeError, match="items must hold integers"):
        pack([10], [["a"]], "first_fit")


def test_unknown_policy_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="unknown packing policy 'worst'") as info:
        pack([10], [[1]], "worst")
    for name in POLICIES:
        assert name in str(info.value)


@pytest.mark.parametrize(
    ("seed", "error"), [(-1, ValueError), (1.5, TypeError), (True, TypeError), (2.0, TypeError)]
)
def test_bad_seed(seed: object, error: type[Exception]) -> None:
    # Wrong type: TypeError, as for every integer parameter (fastplace._checks).
    with pytest.raises(error, match="seed"):
        pack([10], [[1]], "best", seed=seed)  # type: ignore[arg-type]


def test_no_items_no_bins() -> None:
    for policy in POLICIES:
        result = pack([10, 5], np.zeros((0, 2), dtype=np.int64), policy)
        assert result.dtype == np.int64 and result.shape == (0,)
    assert pack([10, 5], [], "best").shape == (0,)


def test_best_is_reproducible_from_its_seed() -> None:
    rng = np.random.default_rng(7)
    items = rng.integers(1, 60, size=(80, 3))
    first = pack([100, 100, 100], items, "best", seed=3)
    assert np.array_equal(first, pack([100, 100, 100], items, "best", seed=3))


def test_verify_packing_rejects_bad_assignments() -> None:
    cap, items = np.array([10]), np.array([[6], [6]])
    assert verify_packing(cap, items, np.array([0, 1])) == 2
    with pytest.raises(InfeasiblePacking, match="over capacity"):
        verify_packing(cap, items, np.array([0, 0]))
    with pytest.raises(InfeasiblePacking, match="bin 1 is empty"):
        verify_packing(cap, items, np.array([0, 2]))
    with pytest.raises(InfeasiblePacking, match="no bin"):
        verify_packing(cap, items, np.array([0, -1]))


def test_importing_fastplace_does_not_import_numba() -> None:
    code = (
        "import sys, fastplace, fastplace.packing; "
        "assert fastplace.pack is fastplace.packing.pack; "
        "assert 'numba' not in sys.modules, 'numba imported'"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
