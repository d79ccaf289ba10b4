"""ServerAllocator's native path: the shipped/TorchScript model decides in the core
(_core.ro_decide) with the same candidates, features and choices as the Python path,
and the same failure handling."""

from __future__ import annotations

import logging
import threading

import numpy as np
import numpy.typing as npt
import pytest

from fastplace import BlockIndex, Cluster
from fastplace.allocator import ServerAllocator
from fastplace.optimizer.native import NativeScorer

torch = pytest.importorskip("torch")
from fastplace.optimizer.model import ResourceOptimizer  # noqa: E402


class PythonPath:
    """The same model behind a plain ``scores`` method: forces the Python path."""

    def __init__(self, model: ResourceOptimizer) -> None:
        self.model = model

    def scores(self, features: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        return self.model.scores(features)


def world(seed: int, n: int = 300) -> tuple[Cluster, BlockIndex, list[npt.NDArray[np.int64]]]:
    rng = np.random.default_rng(seed)
    cluster = Cluster(
        np.column_stack([rng.choice([4096, 8192, 16384], n), rng.choice([2000, 4000], n)])
    )
    blocks = BlockIndex(n, 1 << 12)
    versions = [
        np.asarray(
            blocks.intern(rng.integers(0, 2**63, 6, dtype=np.uint64), rng.integers(50, 900, 6))
        )
        for _ in range(4)
    ]
    for _ in range(200):
        blocks.fetch(int(rng.integers(0, n)), versions[int(rng.integers(0, 4))])
    for server in rng.choice(n, 10, replace=False):
        cluster.cordon(int(server))
    return cluster, blocks, versions


@pytest.fixture(scope="module")
def model() -> ResourceOptimizer:
    return ResourceOptimizer.default()


def test_shipped_model_runs_natively(model: ResourceOptimizer) -> None:
    cluster, blocks, _ = world(0)
    assert ServerAllocator(cluster, model, blocks=blocks).native
    assert ServerAllocator(cluster, NativeScorer.from_npz(), blocks=blocks).native
    assert not ServerAllocator(cluster, PythonPath(model), blocks=blocks).native  # type: ignore[arg-type]
    assert not ServerAllocator(cluster, False).native


def test_native_and_python_paths_decide_alike(model: ResourceOptimizer) -> None:
    rng = np.random.default_rng(1)
    native_cluster, native_blocks, versions = world(2)
    python_cluster, python_blocks, _ = world(2)
    native = ServerAllocator(native_cluster, model, budget_us=1e9, blocks=native_blocks)
    python = ServerAllocator(python_cluster, PythonPath(model), budget_us=1e9, blocks=python_blocks)  # type: ignore[arg-type]
    live: list[tuple[int, int]] = []
    for step in range(400):
        if live and rng.random() < 0.3:
            a, b = live.pop(int(rng.integers(0, len(live))))
            native.release(a)
            python.release(b)
            continue
        request = [int(rng.integers(64, 3000)), int(rng.integers(10, 1500))]
        version = versions[int(rng.integers(0, 4))] if step % 3 else None
        got = native.allocate(request, version)
        expected = python.allocate(request, version)
        assert (got.server, got.source, got.reason) == (
            expected.server,
            expected.source,
            expected.reason,
        )
        if got.container >= 0:
            live.append((got.container, expected.container))
    assert native.counts == python.counts and native.counts["ro"] > 0
    for a, b in zip(native.feedback(), python.feedback(), strict=True):
        np.testing.assert_array_equal(a.candidates, b.candidates)
        assert a.features is not None and b.features is not None
        np.testing.assert_array_equal(a.features, b.features)
    native_cluster.validate()


def test_native_nan_scores_fall_back_to_greedy_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    arrays = np.load(NativeScorer.from_npz().path)
    weights = [arrays[f"weight_{i}"] for i in range(3)]
    biases = [arrays[f"bias_{i}"].copy() for i in range(3)]
    biases[2][:] = np.nan
    broken = NativeScorer(weights, biases, arrays["mean"], arrays["std"])
    cluster, blocks, _ = world(3)
    allocator = ServerAllocator(cluster, broken, budget_us=1e9, blocks=blocks)
    assert allocator.native
    with caplog.at_level(logging.WARNING, logger="fastplace.allocator"):
        decisions = [allocator.allocate([512, 100]) for _ in range(3)]
    assert all(d.source == "greedy" and d.reason == "ro_nan" for d in decisions)
    assert len([r for r in caplog.records if "resource optimizer" in r.getMessage()]) == 1
    records = allocator.feedback()
    assert all(r.candidates.shape[0] > 0 and r.features is not None for r in records)


def test_native_errors_fall_back_to_greedy(
    model: ResourceOptimizer, caplog: pytest.LogCaptureFixture
) -> None:
    cluster, blocks, _ = world(4)
    allocator = ServerAllocator(cluster, model, budget_us=1e9, blocks=blocks)
    with caplog.at_level(logging.WARNING, logger="fastplace.allocator"):
        decision = allocator.allocate([100, 10], np.array([10**6]))  # not a block id
    assert (decision.source, decision.reason) == ("greedy", "ro_error")
    assert decision.server == cluster.container(decision.container)[0]
    late = ServerAllocator(cluster, model, budget_us=0, blocks=blocks)
    assert late.allocate([100, 10]).reason == "ro_late"


def test_native_decisions_from_many_threads(model: ResourceOptimizer) -> None:
    cluster, blocks, versions = world(5, n=500)
    allocator = ServerAllocator(cluster, model, budget_us=1e9, blocks=blocks)
    errors: list[BaseException] = []

    def worker(seed: int) -> None:
        rng = np.random.default_rng(seed)
        try:
            for _ in range(300):
                version = versions[int(rng.integers(0, 4))]
                decision = allocator.allocate(
                    [int(rng.integers(64, 2000)), int(rng.integers(10, 900))], version
                )
                if decision.server >= 0:
                    blocks.fetch(decision.server, version)
                    allocator.release(decision.container)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert cluster.n_containers == 0
    cluster.validate()
    blocks.validate()
