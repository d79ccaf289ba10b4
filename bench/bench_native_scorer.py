"""RO scoring of one decision (K = 64 candidates x F = 17 features): the TorchScript
model vs the same weights in the native C++ scorer (fastplace.optimizer.native).

Run: PYTHONPATH=src python3 -m pytest bench/bench_native_scorer.py --benchmark-enable \
        --benchmark-only --benchmark-json=build/bench-native.json
     python3 bench/summarise.py build/bench-native.json

Each benchmark round scores the same features CALLS times from Python (the call
overhead included: that is what the allocator pays); summarise.py divides the median
by CALLS. extra_info records the per-call p50/p99 over individually timed calls too.

Two groups: random rows (uniform in [0, 1): dense, every hidden unit works), and the
64 candidate rows of a real decision (``_core.ro_decide`` on 10,000 servers at 85%
load with cached blocks), where the decision path (``NativeScorer.decision_scores``,
what ``ro_decide`` runs) folds the cluster-wide columns once and skips hidden units that
are zero on whole blocks of rows.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from fastplace import BlockIndex, Cluster
from fastplace._native import _core
from fastplace.optimizer import N_FEATURES
from fastplace.optimizer.native import NativeScorer
from fastplace.synthetic import churn_stream, synthetic_capacity

CALLS = 1_000
K = 64
GROUP = "RO scoring, 64 candidates"

Scorer = Callable[[npt.NDArray[np.float32]], npt.NDArray[np.float32]]


def features() -> npt.NDArray[np.float32]:
    return np.random.default_rng(0).uniform(0, 1, (K, N_FEATURES)).astype(np.float32)


@functools.cache
def decision_features() -> npt.NDArray[np.float32]:
    """The K candidate rows of one decision on a loaded 10,000-server cluster."""
    capacity = synthetic_capacity(10_000, seed=4)
    stream = churn_stream(capacity, int(10_000 * 0.85 * 65536 / 1600) + 20_000, seed=4)
    cluster = Cluster(capacity)
    cluster.replay(stream.ops, stream.requests, stream.refs)
    blocks = BlockIndex(10_000, 1 << 34)
    ids = np.asarray(blocks.intern(np.arange(1, 601), [1 << 22] * 600), dtype=np.int64)
    rng = np.random.default_rng(4)
    for server in rng.choice(10_000, size=300, replace=False):
        blocks.fetch(int(server), ids[: int(rng.integers(100, 601))])
    _, servers, rows, _ = _core.ro_decide(cluster, blocks, None, [2048, 1158], ids, K)
    assert servers.shape[0] == K
    return rows


def per_call_ns(scores: Scorer, x: npt.NDArray[np.float32]) -> npt.NDArray[np.int64]:
    out = np.empty(CALLS, dtype=np.int64)
    for i in range(CALLS):
        start = time.perf_counter_ns()
        scores(x)
        out[i] = time.perf_counter_ns() - start
    return out


def run(
    benchmark: Any, scores: Scorer, baseline: bool, x: npt.NDArray[np.float32] | None = None
) -> npt.NDArray[np.float32]:
    x = features() if x is None else x

    def calls() -> npt.NDArray[np.float32]:
        result = scores(x)
        for _ in range(CALLS - 1):
            scores(x)
        return result

    result: npt.NDArray[np.float32] = benchmark(calls)
    latencies = per_call_ns(scores, x)
    benchmark.extra_info.update(
        calls=CALLS,
        baseline=baseline,
        p50_ns=float(np.percentile(latencies, 50)),
        p99_ns=float(np.percentile(latencies, 99)),
    )
    return result


def assert_scores_close(actual: npt.NDArray[np.float32], expected: npt.NDArray[np.float32]) -> None:
    """Within the native scorer's tolerance of TorchScript: 1e-5 times max(1, |score|)."""
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-5 * scale)


@pytest.fixture(scope="module")
def torchscript() -> Any:
    pytest.importorskip("torch", reason="torch is not installed: no TorchScript baseline")
    from fastplace.optimizer import ResourceOptimizer

    return ResourceOptimizer.default()


@pytest.fixture(scope="module")
def native() -> NativeScorer:
    return NativeScorer.from_npz()


@pytest.mark.benchmark(group=GROUP)
def test_torchscript(benchmark: Any, torchscript: Any, native: NativeScorer) -> None:
    result = run(benchmark, torchscript.scores, baseline=True)
    assert_scores_close(native.scores(features()), result)


@pytest.mark.benchmark(group=GROUP)
def test_native(benchmark: Any, torchscript: Any, native: NativeScorer) -> None:
    result = run(benchmark, native.scores, baseline=False)
    assert_scores_close(result, torchscript.scores(features()))


DECISION_GROUP = "RO scoring, the 64 candidates of a real decision (10,000 servers)"


@pytest.mark.benchmark(group=DECISION_GROUP)
def test_torchscript_decision(benchmark: Any, torchscript: Any, native: NativeScorer) -> None:
    x = decision_features()
    result = run(benchmark, torchscript.scores, baseline=True, x=x)
    assert_scores_close(native.scores(x), result)


@pytest.mark.benchmark(group=DECISION_GROUP)
@pytest.mark.parametrize("path", ["dense", "decision"])
def test_native_decision_rows(
    benchmark: Any, torchscript: Any, native: NativeScorer, path: str
) -> None:
    x = decision_features()
    scores = native.scores if path == "dense" else native.decision_scores
    result = run(benchmark, scores, baseline=False, x=x)
    assert_scores_close(result, torchscript.scores(x))
