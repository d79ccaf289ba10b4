"""Speed of block fingerprinting, side by side with its baselines on the same buffer.

Run: PYTHONPATH=src python3 -m pytest bench/bench_blocks.py --benchmark-enable \
        --benchmark-only --benchmark-json=build/bench-blocks.json
     python3 bench/summarise.py build/bench-blocks.json

Two groups, each with its baseline measured in the same run (extra_info["baseline"]):

* fixed-blocks: xxh3 fingerprints of fixed-size blocks vs numpy summing the same buffer
  viewed as uint64, i.e. the machine's memory-read speed (goal: >= 0.3x).
* content-defined: fastplace's FastCDC chunking *with* xxh3 fingerprints vs pyfastcdc
  (Cython FastCDC 2020) finding the boundaries only, same min / avg / max sizes
  (goal: >= 1.0x), on one thread and on two; and fastplace's boundaries alone.

The buffer (128 MiB) is four times the last-level cache, so memory is really read.
Every benchmark also checks its result; CI runs the file with --benchmark-disable.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pytest
import xxhash

from fastplace.blocks import CDCParams, fingerprint, warm_up
from fastplace.blocks.cdc import SpanCutter, chunk_boundaries

SIZE = 128 << 20
AVG = 64 << 10


@functools.cache
def buffer() -> bytes:
    return np.random.default_rng(2024).bytes(SIZE)


def _info(benchmark: Any, *, baseline: bool = False) -> None:
    benchmark.extra_info["bytes"] = SIZE
    benchmark.extra_info["baseline"] = baseline


@pytest.mark.benchmark(group="fixed-blocks")
def test_memory_read_numpy_sum(benchmark: Any) -> None:
    words = np.frombuffer(buffer(), dtype=np.uint64)
    _info(benchmark, baseline=True)
    total = benchmark(np.sum, words)
    assert total == words.sum()


@pytest.mark.benchmark(group="fixed-blocks")
@pytest.mark.parametrize("block_size", [32 << 10, 1 << 20])
def test_fixed_fingerprints(benchmark: Any, block_size: int) -> None:
    data = buffer()
    _info(benchmark)
    result = benchmark(fingerprint, data, block_size=block_size)
    assert len(result) == SIZE // block_size
    assert int(result.hashes[-1]) == xxhash.xxh3_64_intdigest(data[-block_size:])


@pytest.mark.benchmark(group="content-defined")
def test_pyfastcdc_boundaries(benchmark: Any) -> None:
    from pyfastcdc import FastCDC

    data = buffer()
    chunker = FastCDC(AVG, min_size=AVG // 4, max_size=AVG * 4)
    _info(benchmark, baseline=True)

    def boundaries() -> int:
        return sum(1 for _ in chunker.cut_buf(data))

    count = benchmark(boundaries)
    assert SIZE // (AVG * 4) < count < SIZE // (AVG // 4)


@pytest.mark.benchmark(group="content-defined")
@pytest.mark.parametrize("threads", [1, 2])
def test_fastplace_cdc_fingerprints(benchmark: Any, threads: int) -> None:
    data = buffer()
    warm_up()
    _info(benchmark)
    benchmark.extra_info["threads"] = threads
    result = benchmark(fingerprint, data, block_size=AVG, cdc=True, threads=threads)
    assert result.total_size == SIZE
    assert SIZE // (AVG * 4) < len(result) < SIZE // (AVG // 4)
    first = int(result.sizes[0])
    assert int(result.hashes[0]) == xxhash.xxh3_64_intdigest(data[:first])


@pytest.mark.benchmark(group="content-defined")
def test_fastplace_cdc_boundaries_only(benchmark: Any) -> None:
    array = np.frombuffer(buffer(), dtype=np.uint8)
    warm_up()
    _info(benchmark)
    with SpanCutter(CDCParams.from_average(AVG)) as cutter:
        ends, position = benchmark(cutter.cut, array, 0, SIZE, True)
    assert position == int(ends[-1]) == SIZE
    assert np.array_equal(ends, chunk_boundaries(array, CDCParams.from_average(AVG)))
