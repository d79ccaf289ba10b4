"""Speed of block fingerprinting, side by side with its baselines on the same buffer.

Run: PYTHONPATH=src python3 -m pytest bench/bench_blocks.py --benchmark-enable \
        --benchmark-only --benchmark-json=build/bench-blocks.json
     python3 bench/summarise.py build/bench-blocks.json

Two groups, each with its baseline measured in the same run (extra_info["baseline"]):

* fixed-blocks: xxh3 fingerprints of fixed-size blocks vs numpy summing the same buffer
  viewed as uint64, i.e. the machine's memory-read speed (goal: >= 0.3x).
* content-defined (one group per buffer size and average chunk size): fastplace's
  FastCDC chunking *with* xxh3 fingerprints vs pyfastcdc (Cython FastCDC 2020) finding
  the boundaries only, same min / avg / max sizes (goal: >= 1.0x), on one thread and on
  two; and fastplace's boundaries alone.

The 128 MiB buffer is four times the last-level cache, so memory is really read; the
16 MiB one fits in it. ``-k 128M-avg64K`` runs the main case only.
Every benchmark also checks its result; CI runs the file with --benchmark-disable.

pytest-benchmark runs each benchmark's rounds back to back, so on a shared machine a
burst of load can land on one entry of a group. ``PYTHONPATH=src python3
bench/bench_blocks.py [rounds]`` instead interleaves pyfastcdc and fastplace round by
round and prints, per content-defined case, the ratio of the best times and the median
and lowest of the per-round ratios.
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


CDC_CASES = [
    pytest.param(SIZE, AVG, id="128M-avg64K"),
    pytest.param(SIZE, 16 << 10, id="128M-avg16K"),
    pytest.param(SIZE, 256 << 10, id="128M-avg256K"),
    pytest.param(16 << 20, AVG, id="16M-avg64K"),
]
"""(buffer size, average chunk size): one group each, pyfastcdc its baseline."""


def _cdc_case(benchmark: Any, size: int, avg: int, *, baseline: bool = False) -> bytes:
    benchmark.group = f"content-defined {size >> 20} MiB, avg {avg >> 10} KiB"
    benchmark.extra_info["bytes"] = size
    benchmark.extra_info["baseline"] = baseline
    return buffer()[:size]


@pytest.mark.parametrize(("size", "avg"), CDC_CASES)
def test_pyfastcdc_boundaries(benchmark: Any, size: int, avg: int) -> None:
    from pyfastcdc import FastCDC

    data = _cdc_case(benchmark, size, avg, baseline=True)
    chunker = FastCDC(avg, min_size=avg // 4, max_size=avg * 4)  # the Cython one

    def boundaries() -> int:
        return sum(1 for _ in chunker.cut_buf(data))

    count = benchmark(boundaries)
    assert size // (avg * 4) < count < size // (avg // 4)


@pytest.mark.parametrize(("size", "avg"), CDC_CASES)
@pytest.mark.parametrize("threads", [1, 2])
def test_fastplace_cdc_fingerprints(benchmark: Any, threads: int, size: int, avg: int) -> None:
    data = _cdc_case(benchmark, size, avg)
    warm_up()
    benchmark.extra_info["threads"] = threads
    result = benchmark(fingerprint, data, block_size=avg, cdc=True, threads=threads)
    assert result.total_size == size
    assert size // (avg * 4) < len(result) < size // (avg // 4)
    first = int(result.sizes[0])
    assert int(result.hashes[0]) == xxhash.xxh3_64_intdigest(data[:first])
    last = int(result.offsets[-1])
    assert int(result.hashes[-1]) == xxhash.xxh3_64_intdigest(data[last:])


@pytest.mark.parametrize(("size", "avg"), CDC_CASES)
def test_fastplace_cdc_boundaries_only(benchmark: Any, size: int, avg: int) -> None:
    array = np.frombuffer(_cdc_case(benchmark, size, avg), dtype=np.uint8)
    warm_up()
    params = CDCParams.from_average(avg)
    with SpanCutter(params) as cutter:
        ends, position = benchmark(cutter.cut, array, 0, size, True)
    assert position == int(ends[-1]) == size
    assert np.array_equal(ends, chunk_boundaries(array, params))


def _count_chunks(chunker: Any, data: bytes) -> int:
    return sum(1 for _ in chunker.cut_buf(data))


def _interleaved(rounds: int) -> None:
    import time

    from pyfastcdc import FastCDC

    warm_up()
    for case in CDC_CASES:
        size, avg = case.values
        assert isinstance(size, int) and isinstance(avg, int)
        data = buffer()[:size]
        chunker = FastCDC(avg, min_size=avg // 4, max_size=avg * 4)
        cutter = SpanCutter(CDCParams.from_average(avg))
        array = np.frombuffer(data, dtype=np.uint8)
        runs: dict[str, Any] = {
            "pyfastcdc": functools.partial(_count_chunks, chunker, data),
            "fingerprints": functools.partial(fingerprint, data, block_size=avg, cdc=True),
            "fingerprints, 2 threads": functools.partial(
                fingerprint, data, block_size=avg, cdc=True, threads=2
            ),
            "boundaries": functools.partial(cutter.cut, array, 0, size, True),
        }
        times: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(rounds):
            for name, run in runs.items():
                began = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - began)
        base = times.pop("pyfastcdc")
        line = [f"{case.id}: pyfastcdc {size / min(base) / 1e9:.2f} GB/s"]
        for name, values in times.items():
            ratios = [b / v for b, v in zip(base, values, strict=True)]
            line.append(
                f"{name} {min(base) / min(values):.2f}x (rounds: median "
                f"{float(np.median(ratios)):.2f}x, lowest {min(ratios):.2f}x)"
            )
        print("; ".join(line), flush=True)


if __name__ == "__main__":
    import sys

    _interleaved(int(sys.argv[1]) if len(sys.argv) > 1 else 9)
