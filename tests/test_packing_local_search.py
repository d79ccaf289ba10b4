"""The tabu search: compiled kernel == plain-Python reference, and it only ever improves."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from fastplace.packing import pack, strong_lower_bound
from fastplace.packing.local_search import _compiled, eliminate_bin, improve
from reference import packing_model


@st.composite
def packed_instances(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A small instance and a first-fit packing of it (so often with bins to spare)."""
    dims = draw(st.integers(1, 4))
    capacity = np.array(draw(st.lists(st.integers(1, 30), min_size=dims, max_size=dims)))
    rows = draw(
        st.lists(st.tuples(*(st.integers(0, int(c)) for c in capacity)), min_size=2, max_size=14)
    )
    items = np.array(rows, dtype=np.int64).reshape(-1, dims)
    return items, capacity.astype(np.int64), pack(capacity, items, "first_fit")


@given(instance=packed_instances(), seed=st.integers(0, 2**31 - 1), iterations=st.integers(0, 60))
@settings(max_examples=60)
def test_compiled_kernel_matches_the_python_reference(
    instance: tuple[np.ndarray, np.ndarray, np.ndarray], seed: int, iterations: int
) -> None:
    items, capacity, assignment = instance
    n_bins = int(assignment.max()) + 1
    compiled = _compiled()
    for target in range(n_bins):
        fast, slow = assignment.copy(), assignment.copy()
        fast_ok = compiled(items, capacity, fast, n_bins, target, iterations, seed)
        slow_ok = eliminate_bin(items, capacity, slow, n_bins, target, iterations, seed)
        assert fast_ok == slow_ok
        assert fast.tolist() == slow.tolist()
        if fast_ok:
            assert packing_model.is_packing(items.tolist(), capacity.tolist(), fast.tolist())
            assert int(fast.max()) + 1 == n_bins - 1
        else:
            assert fast.tolist() == assignment.tolist()  # untouched on failure


@given(instance=packed_instances(), seed=st.integers(0, 1000))
@settings(max_examples=60)
def test_improve_returns_a_packing_no_larger(
    instance: tuple[np.ndarray, np.ndarray, np.ndarray], seed: int
) -> None:
    items, capacity, assignment = instance
    before = assignment.copy()
    improved = improve(items, capacity, assignment, seed=seed, max_iterations=50)
    assert np.array_equal(assignment, before)  # the input is not modified
    assert packing_model.is_packing(items.tolist(), capacity.tolist(), improved.tolist())
    bins = int(improved.max()) + 1
    assert strong_lower_bound(capacity, items) <= bins <= int(assignment.max()) + 1


def test_a_spare_bin_is_removed() -> None:
    # First fit in this order needs 3 bins; 2 suffice ([5, 5] + [5, 5] and [6, 4] + [4, 6]).
    capacity = np.array([10, 10])
    items = np.array([[5, 5], [6, 4], [5, 5], [4, 6]])
    start = np.array([0, 1, 0, 2])
    improved = improve(items, capacity, start)
    assert int(improved.max()) + 1 == 2
    assert packing_model.is_packing(items.tolist(), capacity.tolist(), improved.tolist())


def test_kernel_refuses_degenerate_targets() -> None:
    items = np.array([[1]], dtype=np.int64)
    capacity = np.array([5], dtype=np.int64)
    assignment = np.zeros(1, dtype=np.int64)
    assert not eliminate_bin(items, capacity, assignment, 1, 0, 10, 0)
    assert not eliminate_bin(items, capacity, assignment, 2, 5, 10, 0)
