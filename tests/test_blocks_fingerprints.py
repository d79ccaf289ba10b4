"""Fingerprints: sources, errors, saving, and the similarity properties the README uses."""

from __future__ import annotations

import io
import mmap
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from child_process import child_env
from fastplace.blocks import (
    CorruptFingerprints,
    EmptySourceError,
    Fingerprints,
    download_bytes,
    fingerprint,
    parse_size,
    parse_sizes,
    similarity,
    warm_up,
)
from fastplace.blocks.sizes import format_size

MiB = 1 << 20


def _random(seed: int, size: int) -> bytes:
    return np.random.default_rng(seed).bytes(size)


@pytest.fixture(scope="module")
def model() -> bytes:
    return _random(1, 6 * MiB + 12345)


@pytest.mark.parametrize("cdc", [False, True])
def test_identical_files_are_fully_similar(model: bytes, cdc: bool) -> None:
    old = fingerprint(model, block_size=32 << 10, cdc=cdc)
    new = fingerprint(bytes(model), block_size=32 << 10, cdc=cdc)
    result = similarity(old, new)
    assert result.similar_blocks == 1.0
    assert result.similar_bytes == 1.0
    assert download_bytes(new, old) == 0


@pytest.mark.parametrize("cdc", [False, True])
def test_independent_random_files_share_nothing(model: bytes, cdc: bool) -> None:
    old = fingerprint(model, cdc=cdc)
    new = fingerprint(_random(2, len(model)), cdc=cdc)
    result = similarity(old, new)
    assert result.similar_blocks < 0.01
    assert result.similar_bytes < 0.01
    assert download_bytes(new, old) == new.total_size


def test_insertion_near_start_moves_few_chunks_but_most_fixed_blocks(model: bytes) -> None:
    edited = model[:1000] + b"seven!!" + model[1000:]
    fixed = similarity(fingerprint(model), fingerprint(edited))
    chunked = similarity(fingerprint(model, cdc=True), fingerprint(edited, cdc=True))
    assert fixed.similar_blocks < 0.05
    assert chunked.similar_blocks > 0.95
    assert chunked.similar_bytes > 0.95


@pytest.mark.parametrize("cdc", [False, True])
@pytest.mark.parametrize("hash_bits", [64, 128])
def test_every_source_kind_gives_the_same_fingerprints(
    model: bytes, tmp_path: Path, cdc: bool, hash_bits: int
) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(model)
    expected = fingerprint(model, block_size=40_000, cdc=cdc, hash_bits=hash_bits)  # type: ignore[arg-type]
    array = np.frombuffer(model[: len(model) // 8 * 8], dtype=np.float64)
    with open(path, "rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        sources = [
            path,
            str(path),
            bytearray(model),
            memoryview(model),
            mapped,
            io.BytesIO(model),
        ]
        for source in sources:
            got = fingerprint(
                source,  # type: ignore[arg-type]
                block_size=40_000,
                cdc=cdc,
                hash_bits=hash_bits,  # type: ignore[arg-type]
                window=300_000,  # several windows, not a multiple of the block size
            )
            assert np.array_equal(got.hashes, expected.hashes), type(source)
            assert np.array_equal(got.offsets, expected.offsets)
            assert got.total_size == len(model)
    from_array = fingerprint(array, block_size=40_000, cdc=cdc, hash_bits=hash_bits)  # type: ignore[arg-type]
    assert from_array.total_size == array.nbytes
    assert np.array_equal(from_array.hashes[:-1], expected.hashes[: len(from_array) - 1])


@pytest.mark.parametrize("threads", [2, 3])
def test_threads_give_the_same_chunks(tmp_path: Path, threads: int) -> None:
    """Parts cut concurrently are stitched into exactly the one-thread sequence."""
    rng = np.random.default_rng(threads)
    pieces = [rng.bytes(int(rng.integers(1, 3 * MiB))) for _ in range(8)]
    pieces[2] = bytes(len(pieces[2]))  # a zero run: chunks of max_size, hard to meet
    data = b"".join(pieces)
    path = tmp_path / "model.bin"
    path.write_bytes(data)
    one = fingerprint(data, cdc=True, block_size=16 << 10)
    for source, window in ((data, 1 << 24), (path, 9 * MiB)):
        many = fingerprint(source, cdc=True, block_size=16 << 10, threads=threads, window=window)
        assert np.array_equal(many.offsets, one.offsets)
        assert np.array_equal(many.hashes, one.hashes)
    with pytest.raises(ValueError, match="threads = 0 must be > 0"):
        fingerprint(data, cdc=True, threads=0)


def test_fixed_blocks_layout(tmp_path: Path) -> None:
    data = _random(3, 10 * 4096 + 17)
    result = fingerprint(data, block_size=4096)
    assert len(result) == 11
    assert result.offsets.tolist() == [4096 * i for i in range(11)]
    assert result.sizes.tolist() == [4096] * 10 + [17]
    exact = tmp_path / "exact.bin"
    exact.write_bytes(data[: 8 * 4096])  # a file that ends exactly on a window edge
    streamed = fingerprint(exact, block_size=4096, window=4 * 4096)
    assert streamed.sizes.tolist() == [4096] * 8
    assert np.array_equal(streamed.hashes, result.hashes[:8])


def test_download_bytes_counts_each_missing_block_once() -> None:
    a, b, c = (_random(seed, 4096) for seed in (10, 11, 12))
    version = fingerprint(a + b + a + c, block_size=4096)
    assert download_bytes(version) == 3 * 4096
    assert download_bytes(version, fingerprint(a + a, block_size=4096)) == 2 * 4096
    held = [fingerprint(a, block_size=4096), fingerprint(c + b, block_size=4096)]
    assert download_bytes(version, held) == 0
    assert download_bytes(version, []) == 3 * 4096


def test_similarity_counts_repeated_blocks_of_the_new_version() -> None:
    a, b = _random(20, 4096), _random(21, 4096)
    result = similarity(
        fingerprint(a, block_size=4096), fingerprint(a + b + a + b[:96], block_size=4096)
    )
    assert (result.shared_blocks, result.blocks) == (2, 4)
    assert result.similar_bytes == pytest.approx(2 * 4096 / (3 * 4096 + 96))


def test_comparing_different_chunkings_is_refused(model: bytes) -> None:
    with pytest.raises(ValueError, match=r"fixed 32K .* vs fixed 64K"):
        similarity(fingerprint(model, block_size=32 << 10), fingerprint(model))
    with pytest.raises(ValueError, match="cdc 16K/64K/256K"):
        download_bytes(fingerprint(model, cdc=True), fingerprint(model))
    with pytest.raises(ValueError, match="64-bit with 128-bit"):
        similarity(fingerprint(model), fingerprint(model, hash_bits=128))


@pytest.mark.parametrize("hash_bits", [64, 128])
@pytest.mark.parametrize("cdc", [False, True])
def test_save_and_load_round_trip(model: bytes, tmp_path: Path, cdc: bool, hash_bits: int) -> None:
    original = fingerprint(model, cdc=cdc, hash_bits=hash_bits)  # type: ignore[arg-type]
    path = tmp_path / "fp.npz"
    original.save(path)
    loaded = Fingerprints.load(path)
    assert loaded.chunking == original.chunking
    assert loaded.hash_bits == hash_bits
    assert loaded.total_size == original.total_size
    assert np.array_equal(loaded.hashes, original.hashes)
    assert np.array_equal(loaded.offsets, original.offsets)
    assert similarity(original, loaded).similar_bytes == 1.0


def test_load_rejects_corrupt_files(model: bytes, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file at all")
    with pytest.raises(CorruptFingerprints, match="not a fingerprint file"):
        Fingerprints.load(garbage)
    good = fingerprint(model)
    tampered = tmp_path / "tampered.npz"
    with open(tampered, "wb") as file:
        np.savez(
            file,
            meta=np.load(_saved(good, tmp_path))["meta"],
            hashes=good.hashes,
            offsets=good.offsets,
            sizes=good.sizes[::-1].copy(),  # the short last block moved to the front
        )
    with pytest.raises(CorruptFingerprints, match=r"other than the last|do not tile"):
        Fingerprints.load(tampered)
    with pytest.raises(FileNotFoundError):
        Fingerprints.load(tmp_path / "missing.npz")


def _saved(fingerprints: Fingerprints, directory: Path) -> Path:
    path = directory / "saved.npz"
    fingerprints.save(path)
    return path


def test_constructor_validates_invariants(model: bytes) -> None:
    good = fingerprint(model)
    with pytest.raises(CorruptFingerprints, match="sizes add up to"):
        Fingerprints(good.hashes, good.offsets, good.sizes, good.total_size + 1, good.chunking)
    with pytest.raises(CorruptFingerprints, match="hashes is uint64"):
        Fingerprints(good.hashes[:-1], good.offsets, good.sizes, good.total_size, good.chunking)


@pytest.mark.parametrize("cdc", [False, True])
def test_empty_input_is_refused(tmp_path: Path, cdc: bool) -> None:
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    for source in (b"", empty, io.BytesIO(b""), np.zeros(0, dtype=np.uint8)):
        with pytest.raises(EmptySourceError, match="empty"):
            fingerprint(source, cdc=cdc)  # type: ignore[arg-type]


def test_input_smaller_than_one_block_is_refused() -> None:
    with pytest.raises(
        ValueError, match=r"has 1000 bytes, less than one block \(block_size = 4096\)"
    ):
        fingerprint(b"x" * 1000, block_size=4096)
    with pytest.raises(ValueError, match=r"less than one block \(min_size = 16384\)"):
        fingerprint(io.BytesIO(b"x" * 1000), cdc=True)
    assert len(fingerprint(b"x" * 4096, block_size=4096)) == 1


@pytest.mark.parametrize("bad", [0, -1, -65536])
def test_block_size_must_be_positive(bad: int) -> None:
    with pytest.raises(ValueError, match=f"block_size = {bad} must be > 0"):
        fingerprint(b"data", block_size=bad)
    with pytest.raises(ValueError, match=f"block_size = {bad} must be > 0"):
        fingerprint(b"data", block_size=bad, cdc=True)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(TypeError, match=r"block_size = 1\.5 must be an int"):
        fingerprint(b"data", block_size=1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="source must be a path, bytes-like"):
        fingerprint(12345)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="only with cdc=True"):
        fingerprint(b"data", min_size=64)
    with pytest.raises(ValueError, match="hash_bits = 32"):
        fingerprint(b"data", hash_bits=32)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="non-contiguous"):
        fingerprint(np.zeros((100, 100))[:, ::2])


def test_unreadable_paths_raise_os_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"missing\.bin"):
        fingerprint(tmp_path / "missing.bin")
    with pytest.raises(IsADirectoryError):
        fingerprint(tmp_path)
    locked = tmp_path / "locked.bin"
    locked.write_bytes(b"x" * 100_000)
    locked.chmod(0)
    if os.access(locked, os.R_OK):  # root reads anything: nothing more to check
        return
    with pytest.raises(PermissionError):
        fingerprint(locked)


def test_sizes_parse_and_format() -> None:
    assert parse_sizes("32K,64K,128K,256K,512K,1M") == [32 << 10 << i for i in range(6)]
    assert parse_size("1.5MiB") == 3 << 19
    assert parse_size(" 4096 ") == 4096
    assert parse_size("2g") == 2 << 30
    assert [format_size(n) for n in (32768, 1 << 20, 1000, 3 << 19)] == [
        "32K",
        "1M",
        "1000",
        "1536K",
    ]
    for bad, message in [
        ("3X", "is not a size"),
        ("", "is not a size"),
        ("0K", "must be > 0"),
        ("-1K", "is not a size"),
        ("0.3", "whole number"),
    ]:
        with pytest.raises(ValueError, match=message):
            parse_size(bad, field="block size")
    with pytest.raises(ValueError, match="lists no sizes"):
        parse_sizes(" , ")


def test_warm_up_reports_the_first_call_time() -> None:
    first = warm_up()
    assert first > 0
    assert warm_up() == first


def test_importing_fastplace_loads_neither_numba_nor_torch() -> None:
    code = (
        "import sys, fastplace, fastplace.blocks, fastplace.cli.similarity\n"
        "heavy = [m for m in ('numba', 'torch', 'matplotlib') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "fastplace.blocks.fingerprint(b'x' * 100_000)\n"
        "assert 'numba' not in sys.modules, 'fixed-size blocks need no numba'\n"
        "fastplace.blocks.fingerprint(b'x' * 100_000, cdc=True)\n"
        "assert 'numba' in sys.modules\n"
    )

    subprocess.run([sys.executable, "-c", code], check=True, env=child_env(), timeout=120)
