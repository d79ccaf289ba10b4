"""BlockIndex rejects bad arguments and damaged snapshots with ValueError naming the
argument (and index), and leaves its state exactly as it was."""

from __future__ import annotations

import struct
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from child_process import child_env
from fastplace import BlockIndex, ClusterInvariantError, CorruptSnapshot


def fnv1a(data: bytes) -> int:
    """The checksum the snapshot format documents: 64-bit FNV-1a of all earlier bytes."""
    value = 0xCBF29CE484222325
    for byte in data:
        value = ((value ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return value


def signed(body: bytes) -> bytes:
    """``body`` (a snapshot without its last 8 bytes) with a valid checksum appended."""
    return body + fnv1a(body).to_bytes(8, "little")


def busy_index() -> BlockIndex:
    """Three servers with cached, evicted and refreshed blocks."""
    index = BlockIndex(3, [100, 60, 0])
    v1 = index.intern([11, 22, 33], [40, 30, 20])
    v2 = index.intern([11, 44], [40, 50])
    index.fetch(0, v1)
    index.fetch(1, v1)
    index.fetch(0, v2)
    index.fetch(2, v2)
    return index


BAD_CALLS: list[tuple[str, Callable[[BlockIndex], Any], str]] = [
    ("negative size", lambda i: i.intern([5], [-1]), r"sizes\[0\] = -1 must be > 0"),
    ("zero size", lambda i: i.intern([5, 6], [3, 0]), r"sizes\[1\] = 0 must be > 0"),
    (
        "hash with a new size",
        lambda i: i.intern([99, 11], [1, 41]),
        r"sizes\[1\] = 41 .*interned size 40",
    ),
    (
        "same hash, two sizes in one call",
        lambda i: i.intern([7, 8, 7], [1, 2, 3]),
        r"sizes\[2\] = 3 .*sizes\[0\] = 1",
    ),
    ("negative hash", lambda i: i.intern([3, -2], [1, 1]), r"hashes\[1\] = -2 must be >= 0"),
    ("float hash", lambda i: i.intern([1.5], [1]), r"hashes\[0\] = 1.5 is not an integer"),
    ("length mismatch", lambda i: i.intern([1, 2], [1]), "same length"),
    ("float ids", lambda i: i.fetch(0, [0, 1.0]), r"block_ids\[1\] = 1.0 is not an integer"),
    (
        "float id array",
        lambda i: i.cached_bytes(np.array([0.0, 1.0])),
        r"block_ids\[0\] = 0.0 is not an integer .*float64",
    ),
    ("bool ids", lambda i: i.fetch(0, [True]), r"block_ids\[0\] = True is not an integer"),
    ("negative id", lambda i: i.fetch(0, [0, -1]), r"block_ids\[1\] = -1 is not a block id"),
    ("unknown id", lambda i: i.fetch(1, [0, 1, 4]), r"block_ids\[2\] = 4 is not a block id"),
    (
        "id beyond int32",
        lambda i: i.cached_bytes(np.array([2**40])),
        r"block_ids\[0\] = 1099511627776 is out of range",
    ),
    (
        "unknown id, uint64 array",
        lambda i: i.missing_bytes(0, np.array([2**64 - 1], dtype=np.uint64)),
        r"block_ids\[0\] = 18446744073709551615 is out of range",
    ),
    ("2-D ids", lambda i: i.cached_bytes(np.zeros((2, 2), dtype=int)), "must be 1-D"),
    ("server out of range", lambda i: i.fetch(3, [0]), r"server = 3 is out of range \[0, 3\)"),
    ("negative server", lambda i: i.evict_server(-1), r"server = -1 is out of range"),
    ("float server", lambda i: i.missing_bytes(1.0, [0]), r"server = 1.0 is not an integer"),
    ("listed server", lambda i: i.cached_bytes_on([0, 7], [0]), r"servers\[1\] = 7 is out of"),
    ("unknown holder block", lambda i: i.holders(9), r"block = 9 is not a block id"),
    ("negative cache", lambda i: i.add_servers(2, [5, -5]), r"cache_bytes\[1\] = -5 must be"),
    ("cache shape", lambda i: i.add_servers(2, [5, 5, 5]), "one size or 2 sizes"),
    ("negative server count", lambda i: i.add_servers(-1, 5), "n_servers = -1 must be >= 0"),
    (
        "total bytes overflow",
        lambda i: i.intern([1000, 1001], [2**62, 2**62]),
        r"sizes\[1\] .* exceed 2\^63 - 1 bytes",
    ),
]


@pytest.mark.parametrize(
    "call,match", [(c, m) for _, c, m in BAD_CALLS], ids=[n for n, *_ in BAD_CALLS]
)
def test_bad_input_raises_value_error_and_changes_nothing(
    call: Callable[[BlockIndex], Any], match: str
) -> None:
    index = busy_index()
    before = index.snapshot()
    with pytest.raises(ValueError, match=match):
        call(index)
    assert index.snapshot() == before
    index.validate()


@pytest.mark.parametrize(
    "call",
    [
        lambda i: i.fetch(0, "abc"),
        lambda i: i.cached_bytes([0, "1"]),
        lambda i: i.fetch("0", [0]),
        lambda i: BlockIndex(2.5, 10),  # type: ignore[arg-type]
    ],
)
def test_non_numbers_raise_type_error(call: Callable[[BlockIndex], Any]) -> None:
    index = busy_index()
    before = index.snapshot()
    with pytest.raises(TypeError):
        call(index)
    assert index.snapshot() == before


def test_a_server_count_beyond_the_limit_is_refused_before_allocating() -> None:
    """BlockIndex(2**31, 0) used to build a 16 GiB array of cache sizes before the core
    refused the count: run it in a child whose address space is capped at 2 GiB (in
    this process, a regression would take the machine's memory)."""
    code = (
        "import resource\n"
        "from fastplace import BlockIndex\n"
        "index = BlockIndex(3, 5)\n"
        "before = index.snapshot()\n"
        "resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))\n"
        "for call in (lambda: BlockIndex(2**31, 0), lambda: BlockIndex(2**40, 0),\n"
        "             lambda: index.add_servers(2**31 - 3, 0)):\n"
        "    try:\n"
        "        call()\n"
        "    except ValueError as error:\n"
        "        print(error)\n"
        "assert index.snapshot() == before\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=child_env(OPENBLAS_NUM_THREADS="1"),
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines() == [
        "n_servers = 2147483648 exceeds the index's limit of 2147483647 servers",
        "n_servers = 1099511627776 exceeds the index's limit of 2147483647 servers",
        "n_servers = 2147483645 exceeds the index's limit of 2147483647 servers (3 already)",
    ]


def test_a_bool_server_count_is_refused() -> None:
    with pytest.raises(TypeError, match="n_servers = True must be an integer, got bool"):
        BlockIndex(True, 10)


def test_integer_arrays_of_any_width_are_accepted() -> None:
    index = busy_index()
    expected = index.cached_bytes([0, 1, 3]).tolist()
    for dtype in (np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint32, np.uint64):
        assert index.cached_bytes(np.array([0, 1, 3], dtype=dtype)).tolist() == expected
    assert (
        index.cached_bytes(np.array([0, 1, 1, 3])[::2]).tolist()
        == index.cached_bytes([0, 1]).tolist()
    )  # strided views
    assert index.cached_bytes((np.int64(0), np.int16(1), 3)).tolist() == expected
    assert index.cached_bytes([]).tolist() == [0, 0, 0]
    assert index.cached_bytes(np.array([])).tolist() == [0, 0, 0]


# ---- snapshots ------------------------------------------------------------------------


def test_every_truncation_is_rejected() -> None:
    good = busy_index().snapshot()
    for size in range(len(good)):
        with pytest.raises(CorruptSnapshot):
            BlockIndex.restore(good[:size])


def test_every_bit_flip_is_rejected_or_valid() -> None:
    good = busy_index().snapshot()
    for i in range(len(good)):
        for bit in range(8):
            bad = bytearray(good)
            bad[i] ^= 1 << bit
            try:
                restored = BlockIndex.restore(bytes(bad))
            except CorruptSnapshot:
                continue
            restored.validate()  # pragma: no cover - FNV-1a catches every single-bit flip


def header() -> bytes:
    return b"FPBI" + struct.pack("<I", 1)


def body(blocks: list[tuple[int, int]], servers: list[tuple[int, list[int]]]) -> bytes:
    out = header() + struct.pack("<QQ", len(servers), len(blocks))
    for hash_, size in blocks:
        out += struct.pack("<Qq", hash_, size)
    for cache, cached in servers:
        out += struct.pack("<qQ", cache, len(cached)) + struct.pack(f"<{len(cached)}i", *cached)
    return out


def test_hand_built_snapshot_restores() -> None:
    index = BlockIndex.restore(signed(body([(7, 10), (8, 20)], [(50, [1, 0]), (5, [])])))
    assert index.server_blocks(0).tolist() == [1, 0]
    assert index.holders(0).tolist() == [0]
    assert index.used_bytes().tolist() == [30, 0]
    index.validate()


@pytest.mark.parametrize(
    "data,match",
    [
        (body([(7, 0)], []), "size <= 0"),
        (body([(7, 1), (7, 2)], []), "repeats the hash of block 0"),
        (body([(7, 1)], [(5, [1])]), "caches unknown block 1"),
        (body([(7, 1)], [(5, [-1])]), "caches unknown block -1"),
        (body([(7, 1)], [(5, [0, 0])]), "lists block 0 twice"),
        (body([(7, 4), (8, 4)], [(5, [0, 1])]), "caches more than its 5 bytes"),
        (body([(7, 1)], [(-1, [])]), "negative cache"),
        (body([], []) + b"\0", "trailing bytes"),
        (body([(7, 2**62), (8, 2**62)], []), "sum to more than"),
        (header() + struct.pack("<QQ", 0, 2**30), "n_blocks count"),
        (header() + struct.pack("<QQ", 2**30, 0), "n_servers count"),
        (header() + struct.pack("<QQ", 0, 2**33), "exceeds the block id range"),
        (header() + struct.pack("<QQ", 2**33, 0), "exceeds the server id range"),
        (b"FPLC" + body([], [])[4:], "bad magic"),
        (b"FPBI" + struct.pack("<I", 9) + body([], [])[8:], "version 9 is not supported"),
    ],
)
def test_inconsistent_snapshots_are_rejected(data: bytes, match: str) -> None:
    with pytest.raises(CorruptSnapshot, match=match):
        BlockIndex.restore(signed(data))


def test_cluster_snapshot_is_not_a_block_index() -> None:
    from fastplace import Cluster

    with pytest.raises(CorruptSnapshot, match="bad magic"):
        BlockIndex.restore(Cluster([[1, 1]]).snapshot())


def test_restore_rejects_non_bytes() -> None:
    with pytest.raises(TypeError, match="must be bytes"):
        BlockIndex.restore("FPBI")  # type: ignore[arg-type]


def test_validate_raises_cluster_invariant_error() -> None:
    """validate() turns a reason into ClusterInvariantError; forge one via a subclass."""

    class Broken(BlockIndex):
        def validate_reason(self) -> str:
            return "server 0 caches block 1 twice"

    with pytest.raises(ClusterInvariantError, match="block index: server 0 caches block 1"):
        Broken(1, 10).validate()


NEAR_TOP = [1, 2, 2**62 - 1, 2**62, 2**62 + 1, 2**63 - 2, 2**63 - 1]


@settings(max_examples=200)
@given(st.data())
def test_sealed_snapshots_with_near_top_sizes_are_refused_or_exact(data: Any) -> None:
    """Block sizes and cache sizes near 2^63 under a correct checksum: restore refuses
    the image, or every server's cached bytes are exactly the sum of its blocks' sizes
    (Python ints), within its cache, and the sizes of all blocks fit in int64."""
    sizes = data.draw(st.lists(st.sampled_from(NEAR_TOP), min_size=1, max_size=4))
    blocks = [(hash_, size) for hash_, size in enumerate(sizes)]
    servers = []
    for _ in range(data.draw(st.integers(1, 3))):
        cache = data.draw(st.sampled_from([0, *NEAR_TOP]))
        cached = data.draw(st.lists(st.integers(0, len(blocks) - 1), unique=True, max_size=4))
        servers.append((cache, cached))
    try:
        index = BlockIndex.restore(signed(body(blocks, servers)))
    except CorruptSnapshot:
        over = [sum(sizes[b] for b in cached) > cache for cache, cached in servers]
        assert sum(sizes) > 2**63 - 1 or any(over)
        return
    index.validate()
    expected = [sum(sizes[b] for b in cached) for _cache, cached in servers]
    assert index.used_bytes().tolist() == expected
    assert all(used <= cache for used, (cache, _) in zip(expected, servers, strict=True))
    assert sum(sizes) <= 2**63 - 1


def test_repr_sums_cached_bytes_exactly() -> None:
    # Each server caches 2^62 bytes; numpy's int64 sum of the three wrapped negative.
    index = BlockIndex(3, 2**62)
    ids = index.intern([1], [2**62])
    for server in range(3):
        index.fetch(server, ids)
    assert f"cached_bytes={3 * 2**62}" in repr(index)
