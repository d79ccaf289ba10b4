"""What the snapshot fuzzers (cpp/fuzz) found in the parsers, and their seed corpus.

Each finding fixed in a snapshot parser keeps a test here; the seeds must stay valid
snapshots of the current format, or the fuzzers would start from inputs that the
first check already refuses.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from fastplace import BlockIndex, Cluster, CorruptSnapshot

CORPUS = Path(__file__).resolve().parent.parent / "cpp" / "fuzz" / "corpus"
LAST_GENERATION = 2**31 - 1  # a slot released at this generation is retired


def fnv1a(data: bytes) -> int:
    value = 0xCBF29CE484222325
    for byte in data:
        value = ((value ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return value


def sealed(body: bytes) -> bytes:
    return body + fnv1a(body).to_bytes(8, "little")


def one_server_with_free_slot(generation: int, listed: bool) -> bytes:
    """A 1-d, 1-server cluster snapshot whose only slot is free at ``generation``,
    on the free list or not (layout: cpp/src/cluster_snapshot.cpp)."""
    body = Cluster([[10]], ["mem"]).snapshot()[:-8]
    assert body[-16:] == bytes(16)  # n_slots = 0, n_free_slots = 0
    slot = struct.pack("<Iqq", generation, -1, 0)
    free = struct.pack("<QI", 1, 0) if listed else struct.pack("<Q", 0)
    return sealed(body[:-16] + struct.pack("<Q", 1) + slot + free)


def test_a_retired_slot_on_the_free_list_is_refused():
    """fuzz_cluster_snapshot: a slot at its last generation on the free list restored,
    and the next placement reused it, handing out an id that was handed out before."""
    with pytest.raises(CorruptSnapshot, match=f"slot 0 .*retired.*{LAST_GENERATION}"):
        Cluster.restore(one_server_with_free_slot(LAST_GENERATION, listed=True))


def test_a_retired_slot_off_the_free_list_restores_and_stays_unused():
    cluster = Cluster.restore(one_server_with_free_slot(LAST_GENERATION, listed=False))
    cluster.validate()
    container = cluster.place(0, [1])
    assert container & 0xFFFFFFFF == 1  # a new slot, not the retired one
    assert container >> 32 == 0


def test_a_free_slot_below_the_last_generation_is_reused():
    cluster = Cluster.restore(one_server_with_free_slot(LAST_GENERATION - 1, listed=True))
    assert cluster.place(0, [1]) == (LAST_GENERATION - 1) << 32


def seeds(target: str) -> list[Path]:
    return sorted((CORPUS / target).iterdir())


@pytest.mark.parametrize("path", seeds("fuzz_cluster_snapshot"), ids=lambda p: p.name)
def test_cluster_snapshot_seeds_restore_unchanged(path):
    data = path.read_bytes()
    cluster = Cluster.restore(data)
    cluster.validate()
    assert cluster.snapshot() == data


@pytest.mark.parametrize("path", seeds("fuzz_block_index_snapshot"), ids=lambda p: p.name)
def test_block_index_snapshot_seeds_restore_unchanged(path):
    data = path.read_bytes()
    index = BlockIndex.restore(data)
    index.validate()
    assert index.snapshot() == data


def test_the_committed_corpus_stays_small():
    total = sum(p.stat().st_size for p in CORPUS.rglob("*") if p.is_file())
    assert total < 200 * 1024
