"""ServerAllocator: the RO's server when valid and in time, else greedy; never fails."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from fastplace import Cluster
from fastplace.allocator import FeedbackRecord, ServerAllocator
from fastplace.block_index import BlockIndex

Scores = npt.NDArray[np.float32]


def cluster_and_blocks(n: int = 70) -> tuple[Cluster, BlockIndex]:
    capacity = np.tile([8192, 4000], (n, 1))
    return Cluster(capacity), BlockIndex(n, np.full(n, 1 << 30))


class PreferLast:
    """Scores candidates by position: always picks the last (highest) candidate."""

    def scores(self, features: Scores) -> Scores:
        return np.arange(features.shape[0], dtype=np.float32)


class Slow(PreferLast):
    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s

    def scores(self, features: Scores) -> Scores:
        time.sleep(self.delay_s)
        return super().scores(features)


class NaNScores:
    def scores(self, features: Scores) -> Scores:
        return np.full(features.shape[0], np.nan, dtype=np.float32)


class Raising:
    def scores(self, features: Scores) -> Scores:
        raise RuntimeError("model exploded")


class WrongShape:
    def scores(self, features: Scores) -> Scores:
        return np.zeros(features.shape[0] + 1, dtype=np.float32)


def test_ro_answer_used_when_valid_and_in_time() -> None:
    cluster, blocks = cluster_and_blocks()
    allocator = ServerAllocator(cluster, PreferLast(), budget_us=1e9, blocks=blocks)
    decision = allocator.allocate([1024, 579])
    assert decision.source == "ro"
    assert decision.reason == ""
    assert decision.server == decision.ro_server
    assert decision.server > 0  # the last candidate, not first fit's server 0
    assert cluster.container(decision.container)[0] == decision.server
    assert decision.latency_ns > 0
    allocator.release(decision.container)
    assert cluster.n_containers == 0
    cluster.validate()


def test_late_ro_answer_is_never_used() -> None:
    cluster, blocks = cluster_and_blocks()
    allocator = ServerAllocator(cluster, Slow(0.002), budget_us=100, blocks=blocks)
    for _ in range(5):
        decision = allocator.allocate([1024, 579])
        assert decision.source == "greedy"
        assert decision.reason == "ro_late"
        assert decision.server == 0  # first fit
        assert decision.ro_server > 0  # the RO did answer, too late
    assert allocator.counts["ro"] == 0


@pytest.mark.parametrize(
    ("optimizer", "reason"),
    [(NaNScores(), "ro_nan"), (Raising(), "ro_error"), (WrongShape(), "ro_error")],
)
def test_broken_ro_falls_back_to_greedy_and_warns_once(
    optimizer: object, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    cluster, blocks = cluster_and_blocks()
    allocator = ServerAllocator(cluster, optimizer, budget_us=1e9, blocks=blocks)  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="fastplace.allocator"):
        decisions = [allocator.allocate([512, 289]) for _ in range(4)]
    assert all(d.source == "greedy" and d.reason == reason for d in decisions)
    assert [d.server for d in decisions] == [cluster.container(d.container)[0] for d in decisions]
    assert len([r for r in caplog.records if "resource optimizer" in r.getMessage()]) == 1
    cluster.validate()


@pytest.mark.parametrize("content", [None, b"", b"not a torchscript file at all"])
def test_missing_or_corrupt_model_file_means_greedy_with_a_warning(
    tmp_path: Path, content: bytes | None, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "model.pt"
    if content is not None:
        path.write_bytes(content)
    cluster, blocks = cluster_and_blocks(3)
    with caplog.at_level(logging.WARNING, logger="fastplace.allocator"):
        allocator = ServerAllocator(cluster, path, blocks=blocks)
    assert allocator.optimizer is None
    assert any("greedy" in r.getMessage() for r in caplog.records)
    decision = allocator.allocate([100, 10])
    assert (decision.server, decision.source, decision.reason) == (0, "greedy", "no_ro")


def test_nothing_fits_books_nothing() -> None:
    cluster, blocks = cluster_and_blocks(2)
    allocator = ServerAllocator(cluster, PreferLast(), blocks=blocks)
    before = cluster.snapshot()
    decision = allocator.allocate([10**6, 1])
    assert (decision.server, decision.container, decision.reason) == (-1, -1, "no_fit")
    assert cluster.snapshot() == before


def test_bad_request_raises_and_changes_nothing() -> None:
    cluster, blocks = cluster_and_blocks(2)
    allocator = ServerAllocator(cluster, PreferLast(), blocks=blocks)
    before = cluster.snapshot()
    with pytest.raises(ValueError, match="memory_mb"):
        allocator.allocate([-5, 1])
    assert cluster.snapshot() == before


def test_greedy_only_allocator() -> None:
    cluster, _ = cluster_and_blocks(3)
    allocator = ServerAllocator(cluster, False)
    decisions = [allocator.allocate(np.array([4096, 10])) for _ in range(3)]
    assert [d.server for d in decisions] == [0, 0, 1]
    assert {d.source for d in decisions} == {"greedy"}


def test_feedback_records_every_decision_and_retraining_swaps_the_model() -> None:
    cluster, blocks = cluster_and_blocks()
    # Budget 20 ms: the slow RO (50 ms) is late, the retrained one is not.
    allocator = ServerAllocator(cluster, Slow(0.05), budget_us=20_000, blocks=blocks)
    for _ in range(3):
        allocator.allocate([256, 145])
    seen: list[list[FeedbackRecord]] = []

    def trainer(records: list[FeedbackRecord]) -> PreferLast:
        seen.append(records)
        return PreferLast()

    assert allocator.retrain(trainer)
    assert [r.reason for r in seen[0]] == ["ro_late"] * 3
    assert all(r.candidates.shape[0] > 0 and r.features is not None for r in seen[0])
    assert allocator.feedback() == []
    assert allocator.allocate([256, 145]).source == "ro"


def test_swapping_the_model_while_deciding_never_breaks_a_decision() -> None:
    cluster, blocks = cluster_and_blocks()
    allocator = ServerAllocator(cluster, PreferLast(), budget_us=1e9, blocks=blocks)
    stop = threading.Event()
    errors: list[BaseException] = []

    def swapper() -> None:
        models = [PreferLast(), NaNScores()]
        i = 0
        while not stop.is_set():
            allocator.swap_optimizer(models[i % 2])  # type: ignore[arg-type]
            i += 1

    thread = threading.Thread(target=swapper)
    thread.start()
    try:
        for _ in range(300):
            decision = allocator.allocate([64, 36])
            assert decision.source in ("ro", "greedy")
            assert decision.reason in ("", "ro_nan")
            allocator.release(decision.container)
    except BaseException as error:  # pragma: no cover - reported below
        errors.append(error)
    finally:
        stop.set()
        thread.join()
    assert not errors
    assert cluster.n_containers == 0
    cluster.validate()


def test_background_retraining_thread_swaps_in_new_models() -> None:
    cluster, blocks = cluster_and_blocks()
    allocator = ServerAllocator(cluster, NaNScores(), budget_us=1e9, blocks=blocks)
    stop = allocator.start_retraining(lambda records: PreferLast(), every_s=0.01)
    try:
        deadline = time.monotonic() + 5
        while allocator.allocate([64, 36]).source != "ro":
            assert time.monotonic() < deadline, "the retrained model was never swapped in"
            time.sleep(0.005)
    finally:
        stop.set()
