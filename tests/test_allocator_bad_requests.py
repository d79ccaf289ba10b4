"""ServerAllocator refuses what Cluster.place refuses, and changes nothing when it does.

Issue 15, finding 6: ``allocate("12")`` booked [1, 2], ``b"12"`` [49, 50],
``{1: 2, 3: 4}`` [1, 3], ``np.array([1.5, 2.9])`` [1, 2] and ``(True, 5)`` [1, 5]. The
differential property over many more inputs is in tests/test_request_validation.py.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from fastplace import Cluster, ServerAllocator

FIVE = ["12", b"12", {1: 2, 3: 4}, np.array([1.5, 2.9]), (True, 5)]


class Ones:
    """A Python-side RO, so that decisions write feedback records."""

    def scores(self, features: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        return np.ones(features.shape[0], dtype=np.float32)


def state(allocator: ServerAllocator) -> tuple[Any, ...]:
    feedback = [(r.request, r.greedy_server, r.ro_server, r.reason) for r in allocator.feedback()]
    return allocator.cluster.snapshot(), allocator.stats().as_dict(), feedback


@pytest.mark.parametrize("optimizer", [False, Ones()], ids=["greedy", "python-ro"])
@pytest.mark.parametrize("request_", FIVE, ids=repr)
def test_allocate_refuses_what_cluster_place_refuses(optimizer: Any, request_: Any) -> None:
    cluster = Cluster([[100, 100], [100, 100]])
    with pytest.raises((TypeError, ValueError)):
        cluster.place(0, request_)
    allocator = ServerAllocator(cluster, optimizer, budget_us=1e9)
    allocator.allocate([10, 10])  # history, so that "unchanged" is not "empty"
    before = state(allocator)
    with pytest.raises((TypeError, ValueError), match="request"):
        allocator.allocate(request_)
    with pytest.raises((TypeError, ValueError), match="request"):
        allocator.choose(request_)
    assert state(allocator) == before


def test_the_error_names_the_field_and_the_value() -> None:
    allocator = ServerAllocator(Cluster([[100, 100]]), False)
    with pytest.raises(ValueError, match=r"request\[0\] \(memory_mb\) = .*1\.5\)? is not a whole"):
        allocator.allocate(np.array([1.5, 2.9]))
    with pytest.raises(TypeError, match=r"request\[0\] \(memory_mb\) must be an integer, got bool"):
        allocator.allocate((True, 5))
    with pytest.raises(TypeError, match="request must be a sequence of numbers, got str"):
        allocator.allocate("12")


@pytest.mark.parametrize(
    ("request_", "booked"),
    [((3, 4), [3, 4]), (np.array([3, 4], dtype=np.uint8), [3, 4]), ([3.0, 4.0], [3, 4])],
    ids=repr,
)
def test_what_cluster_place_accepts_is_booked_as_ints(request_: Any, booked: list[int]) -> None:
    cluster = Cluster([[100, 100]])
    allocator = ServerAllocator(cluster, Ones(), budget_us=1e9)
    decision = allocator.allocate(request_)
    assert cluster.used[decision.server].tolist() == booked
    (record,) = allocator.feedback()
    assert record.request == tuple(booked)
    assert all(type(amount) is int for amount in record.request)
