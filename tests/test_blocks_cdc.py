"""The numba chunking kernel against its plain-Python twin, pyfastcdc, and itself streamed."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import numpy as np
import pytest
import xxhash
from hypothesis import given
from hypothesis import strategies as st

from child_process import child_env
from fastplace.blocks import CDCParams, fingerprint
from fastplace.blocks import cdc as cdc_module
from fastplace.blocks.cdc import GEAR, GEAR_LS, chunk_boundaries, spread_mask
from reference.cdc_reference import chunk_boundaries as reference_boundaries

# Small limits keep the pure-Python reference fast; sizes cross min / avg / max.
PARAMS = [
    CDCParams(64, 256, 1024),
    CDCParams(100, 256, 700, normalization=2),
    CDCParams(128, 512, 2048, normalization=0),
    CDCParams(64, 256, 257, normalization=3),
]


def _reference(data: bytes, params: CDCParams) -> list[int]:
    return reference_boundaries(
        data,
        min_size=params.min_size,
        avg_size=params.avg_size,
        max_size=params.max_size,
        mask_s=params.mask_s,
        mask_l=params.mask_l,
        gear=[int(value) for value in GEAR],
    )


def _sample(seed: int, length: int, period: int) -> bytes:
    """Random bytes, or with ``period`` > 0 a repeated random pattern (hits max_size)."""
    rng = np.random.default_rng(seed)
    if period == 0:
        return rng.bytes(length)
    return (rng.bytes(period) * (length // period + 1))[:length]


def _around(params: CDCParams) -> st.SearchStrategy[int]:
    points = [params.min_size, params.avg_size, params.max_size, 3 * params.max_size]
    return st.one_of(
        st.sampled_from(points).flatmap(lambda p: st.integers(max(1, p - 3), p + 3)),
        st.integers(1, 8 * params.max_size),
    )


@given(
    params=st.sampled_from(PARAMS),
    seed=st.integers(0, 2**32 - 1),
    period=st.sampled_from([0, 0, 0, 1, 7, 64, 300]),
    data=st.data(),
)
def test_kernel_matches_reference(
    params: CDCParams, seed: int, period: int, data: st.DataObject
) -> None:
    length = data.draw(_around(params), label="length")
    sample = _sample(seed, length, period)
    fast = chunk_boundaries(np.frombuffer(sample, dtype=np.uint8), params)
    assert fast.tolist() == _reference(sample, params)


@given(st.binary(min_size=1, max_size=5000), st.sampled_from(PARAMS))
def test_kernel_matches_reference_on_arbitrary_bytes(sample: bytes, params: CDCParams) -> None:
    fast = chunk_boundaries(np.frombuffer(sample, dtype=np.uint8), params)
    assert fast.tolist() == _reference(sample, params)


@given(
    params=st.sampled_from(PARAMS),
    seed=st.integers(0, 2**32 - 1),
    period=st.sampled_from([0, 0, 0, 1, 7, 300]),
    eof=st.booleans(),
    portable=st.booleans(),
    data=st.data(),
)
def test_three_chain_kernel_matches_reference(
    params: CDCParams, seed: int, period: int, eof: bool, portable: bool, data: st.DataObject
) -> None:
    """cut_span splits the span into three segments and stitches them: any split point
    (lane_min small, so even short inputs are split) must give the reference's cuts, with
    the assembly inner loop (x86-64) and with the portable numba one."""
    portable = portable or cdc_module._load().PORTABLE  # the assembly loop is x86-64 only
    length = data.draw(st.integers(1, 30 * params.max_size), label="length")
    sample = _sample(seed, length, period)
    start = data.draw(st.integers(0, length // 10), label="start")
    lane_min = data.draw(st.integers(1, 3 * params.max_size), label="lane_min")
    array = cdc_module.readonly(np.frombuffer(sample, dtype=np.uint8))
    out = np.empty(length // params.min_size + 2, dtype=np.int64)
    args = (
        array, start, length, eof, params.min_size, params.avg_size, params.max_size,
        np.uint64(params.mask_s), np.uint64(params.mask_l), GEAR, GEAR_LS,
    )  # fmt: skip
    no_hashes = np.empty((0, 2), dtype=np.uint64)
    count, position, _ = cdc_module._load().cut_and_hash_span(
        *args, out, lane_min, no_hashes, np.uint64(0), 0, portable
    )
    expected = [start + end for end in _reference(sample[start:], params)]
    if not eof:  # the last chunks are undecided: at most max_size bytes before the end
        decided, at = [], start
        for end in expected:
            if length - at < params.max_size:
                break
            decided.append(end)
            at = end
        expected = decided
    assert out[:count].tolist() == expected
    assert int(position) == (expected[-1] if expected else start)


def test_kernel_reproduces_pyfastcdc_with_its_table() -> None:
    """Same rule as FastCDC 2020: given pyfastcdc's Gear table and masks, same chunks."""
    pyfastcdc = pytest.importorskip("pyfastcdc")
    from pyfastcdc.py.constants import GEAR as THEIR_GEAR
    from pyfastcdc.py.constants import MASKS

    sample = np.random.default_rng(7).bytes(3 << 20)
    theirs = np.cumsum([chunk.length for chunk in pyfastcdc.FastCDC(16384).cut_buf(sample)])
    gear = np.array(THEIR_GEAR, dtype=np.uint64)
    out = np.empty(len(sample) // 4096 + 1, dtype=np.int64)
    data = cdc_module.readonly(np.frombuffer(sample, dtype=np.uint8))
    count, position, _ = cdc_module.kernel()(
        data, 0, len(sample), True, 4096, 16384, 65536,
        np.uint64(MASKS[15]), np.uint64(MASKS[13]), gear, gear << np.uint64(1), out,
    )  # fmt: skip
    assert int(position) == len(sample)
    assert out[:count].tolist() == theirs.tolist()


@pytest.mark.parametrize("window", [1, 3000, 1 << 16])
@pytest.mark.parametrize("length", [700, 2048, 2049, 50_000])
def test_streaming_equals_in_memory(window: int, length: int) -> None:
    """Windows with carry-over cut exactly where one pass over the whole buffer does."""
    sample = _sample(length, length, 0)
    whole = fingerprint(sample, block_size=512, cdc=True, min_size=128, max_size=1024)
    streamed = fingerprint(
        io.BytesIO(sample), block_size=512, cdc=True, min_size=128, max_size=1024, window=window
    )
    assert streamed.offsets.tolist() == whole.offsets.tolist()
    assert streamed.hashes.tolist() == whole.hashes.tolist()
    assert streamed.total_size == length


def _expected_hashes(data: bytes, ends: list[int], hash_bits: int) -> list[list[int]]:
    words = []
    start = 0
    for end in ends:
        if hash_bits == 64:
            words.append([xxhash.xxh3_64_intdigest(data[start:end]), 0])
        else:
            value = xxhash.xxh3_128_intdigest(data[start:end])
            words.append([value >> 64, value & (2**64 - 1)])
        start = end
    return words


@pytest.mark.parametrize("hash_bits", [64, 128])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("eof", [True, False])
def test_kernel_hashes_are_xxh3_of_each_chunk(hash_bits: int, threads: int, eof: bool) -> None:
    """Hashed inside the kernel (one chain, three chains, parts on two threads, stitched):
    the hash of every chunk, as python-xxhash gives it."""
    params = CDCParams(64, 256, 1024)
    sample = _sample(5, 200_000, 0)
    array = cdc_module.readonly(np.frombuffer(sample, dtype=np.uint8))
    with cdc_module.SpanCutter(params, threads, hash_bits) as cutter:
        assert cutter.hashing
        cutter.LANE_MIN = 10_000  # type: ignore[misc]
        cutter.PART_MIN = 20_000  # type: ignore[misc]
        for start in (0, 3000):
            ends, at = [], start
            for end in (start + end for end in _reference(sample[start:], params)):
                if not eof and len(sample) - at < params.max_size:
                    break  # undecided: at most max_size bytes before the end
                ends.append(end)
                at = end
            cuts, hashes, position = cutter.cut_and_hash(array, start, len(sample), eof)
            assert cuts.tolist() == ends
            assert position == at
            assert hashes is not None
            words = hashes.tolist() if hash_bits == 128 else [[w[0], 0] for w in hashes.tolist()]
            assert words == _expected_hashes(sample, [start, *ends], hash_bits)[1:]


def test_hashing_falls_back_to_python(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without xxhash's C function (another build of the extension), chunks are hashed
    from Python, with the same fingerprints."""
    sample = _sample(9, 300_000, 0)
    fast = fingerprint(sample, block_size=4096, cdc=True, hash_bits=128, threads=2)
    monkeypatch.setattr(cdc_module, "xxh3_function", lambda hash_bits: None)
    for threads in (1, 2):
        slow = fingerprint(sample, block_size=4096, cdc=True, hash_bits=128, threads=threads)
        assert slow.offsets.tolist() == fast.offsets.tolist()
        assert slow.hashes.tolist() == fast.hashes.tolist()
    with cdc_module.SpanCutter(CDCParams(64, 256, 1024), hash_bits=64) as cutter:
        assert not cutter.hashing


def test_xxh3_function_is_found_and_checked() -> None:
    assert cdc_module.xxh3_function(64) is not None
    assert cdc_module.xxh3_function(128) is not None
    assert cdc_module.xxh3_function(32) is None


def test_spread_mask_bits() -> None:
    for bits in range(1, 49):
        mask = spread_mask(bits)
        assert bin(mask).count("1") == bits
        assert mask >> 63 == 0
    with pytest.raises(ValueError, match="bits = 0"):
        spread_mask(0)


def test_chunk_sizes_bunch_around_the_average() -> None:
    params = CDCParams.from_average(64 << 10)
    ends = chunk_boundaries(np.frombuffer(_sample(1, 32 << 20, 0), dtype=np.uint8), params)
    sizes = np.diff(ends, prepend=0)
    assert np.all(sizes[:-1] >= params.min_size)
    assert np.all(sizes <= params.max_size)
    assert params.avg_size < sizes.mean() < params.min_size + 1.5 * params.avg_size


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_size": 32, "avg_size": 256, "max_size": 1024}, "min_size = 32 must be >= 64"),
        ({"min_size": 512, "avg_size": 256, "max_size": 1024}, "min_size <= avg_size"),
        ({"min_size": 64, "avg_size": 256, "max_size": 128}, "min_size <= avg_size <= max_size"),
        ({"min_size": 64, "avg_size": 128, "max_size": 1024}, "avg_size = 128 must be >= 256"),
        ({"min_size": 64, "avg_size": 256, "max_size": 2**31}, "max_size = 2147483648"),
        (
            {"min_size": 64, "avg_size": 256, "max_size": 1024, "normalization": 4},
            "normalization = 4",
        ),
        ({"min_size": 64, "avg_size": 0, "max_size": 1024}, "avg_size = 0 must be > 0"),
    ],
)
def test_params_are_checked(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CDCParams(**kwargs)


def test_generic_flag_turns_the_assembly_and_the_cache_off() -> None:
    """FASTPLACE_CDC_GENERIC=1 (read at import, hence a child process) keeps the numba
    loop other CPUs run, and compiles it afresh: the on-disk cache would otherwise hand
    back the kernels compiled with the assembly. .ci/run runs this file that way."""
    code = (
        "from fastplace.blocks import cdc\n"
        "k = cdc._load()\n"
        "print(k.GENERIC, k.PORTABLE, k._ASSEMBLY, k._CACHE)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=child_env(FASTPLACE_CDC_GENERIC="1"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True", "False", "False"]
    kernels = cdc_module._load()
    assert kernels.GENERIC == os.environ.get("FASTPLACE_CDC_GENERIC", "").startswith("1")
    assert kernels._CACHE is not kernels.GENERIC
