"""Speed of offline packing per policy, on two Panigrahy instances and a synthetic one.

Run: PYTHONPATH=src python3 -m pytest bench/bench_packing.py --benchmark-enable \
        --benchmark-only --benchmark-json=build/bench-packing.json

Each benchmark checks that its result is a packing and no better than the known
optimum (or the lower bound). Quality over all instances is bench/packing_quality.py's
job; CI runs this file with --benchmark-disable.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

import packing_data
from fastplace.packing import pack, read_vbp, strong_lower_bound, verify_packing

POLICIES = ("first_fit_decreasing", "dot_product", "portfolio", "best")
REAL = ("class7_120_5_1", "class9_250_10_3")


@functools.cache
def instance(name: str) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], int]:
    """(capacity, items, a bound no packing beats) for a real or the synthetic instance."""
    if name == "synthetic":
        rng = np.random.default_rng(2024)
        capacity = np.array([10_240, 8_000, 4], dtype=np.int64)  # MB, millicores, GPUs
        items = np.column_stack(
            [rng.integers(128, 4_096, 400), rng.integers(100, 3_000, 400), rng.integers(0, 2, 400)]
        ).astype(np.int64)
        return capacity, items, strong_lower_bound(capacity, items)
    if not packing_data.available():
        pytest.skip(packing_data.MISSING_REASON)
    parsed = read_vbp(packing_data.instance_paths()[name])
    opt = packing_data.references()[name].opt
    assert opt is not None
    return parsed.capacity, parsed.items, opt


@pytest.mark.benchmark(group="packing")
@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("name", [*REAL, "synthetic"])
def test_pack(benchmark: Any, name: str, policy: str) -> None:
    capacity, items, floor = instance(name)
    benchmark.extra_info["items"] = int(items.shape[0])
    benchmark.extra_info["dims"] = int(items.shape[1])
    assignment = benchmark(pack, capacity, items, policy)
    bins = verify_packing(capacity, items, assignment)
    benchmark.extra_info["bins"] = bins
    assert bins >= floor
