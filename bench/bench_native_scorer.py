"""RO scoring of one decision (K = 64 candidates x F = 17 features): the TorchScript
model vs the same weights in the native C++ scorer (fastplace.optimizer.native).

Run: PYTHONPATH=src python3 -m pytest bench/bench_native_scorer.py --benchmark-enable \
        --benchmark-only --benchmark-json=build/bench-native.json
     python3 bench/summarise.py build/bench-native.json

Each benchmark round scores the same features CALLS times from Python (the call
overhead included: that is what the allocator pays); summarise.py divides the median
by CALLS. extra_info records the per-call p50/p99 over individually timed calls too.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from fastplace.optimizer import N_FEATURES
from fastplace.optimizer.native import NativeScorer

CALLS = 1_000
K = 64
GROUP = "RO scoring, 64 candidates"

Scorer = Callable[[npt.NDArray[np.float32]], npt.NDArray[np.float32]]


def features() -> npt.NDArray[np.float32]:
    return np.random.default_rng(0).uniform(0, 1, (K, N_FEATURES)).astype(np.float32)


def per_call_ns(scores: Scorer, x: npt.NDArray[np.float32]) -> npt.NDArray[np.int64]:
    out = np.empty(CALLS, dtype=np.int64)
    for i in range(CALLS):
        start = time.perf_counter_ns()
        scores(x)
        out[i] = time.perf_counter_ns() - start
    return out


def run(benchmark: Any, scores: Scorer, baseline: bool) -> npt.NDArray[np.float32]:
    x = features()

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
    expected = native.scores(features())
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(result, expected, rtol=0, atol=1e-5 * scale)


@pytest.mark.benchmark(group=GROUP)
def test_native(benchmark: Any, torchscript: Any, native: NativeScorer) -> None:
    result = run(benchmark, native.scores, baseline=False)
    expected = torchscript.scores(features())
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(result, expected, rtol=0, atol=1e-5 * scale)
