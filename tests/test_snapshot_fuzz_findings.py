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

FUZZ = Path(__file__).resolve().parent.parent / "cpp" / "fuzz"
CORPUS = FUZZ / "corpus"
FINDINGS = FUZZ / "findings"
LAST_GENERATION = 2**31 - 1  # a slot released at this generation is retired
KEY_OFFSET = 4 + 4 + 4 + 8  # version 3: magic, version, n_dims, n_servers, then the id key


def fnv1a(data: bytes) -> int:
    value = 0xCBF29CE484222325
    for byte in data:
        value = ((value ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return value


def sealed(body: bytes) -> bytes:
    return body + fnv1a(body).to_bytes(8, "little")


def id_key(snapshot: bytes) -> int:
    """The key a version 3 snapshot's ids are XORed with."""
    (key,) = struct.unpack_from("<Q", snapshot, KEY_OFFSET)
    return int(key)


def one_server_with_free_slot(generation: int, listed: bool) -> bytes:
    """A 1-d, 1-server cluster snapshot whose only slot is free at ``generation``,
    on the free list or not (layout: cpp/src/cluster_snapshot.cpp)."""
    body = Cluster([[10]], ["mem"]).snapshot()[:-8]
    assert body[-16:] == bytes(16)  # n_slots = 0, n_free_slots = 0
    slot = struct.pack("<Iqq", generation, -1, 0)
    free = struct.pack("<QI", 1, 0) if listed else struct.pack("<Q", 0)
    return sealed(body[:-16] + struct.pack("<Q", 1) + slot + free)


def test_a_slot_at_its_last_generation_on_the_free_list_is_used_once_then_retired():
    """A slot released at the generation before the last goes back on the free list at
    the last one (release_slot), so such a snapshot is valid: it restores, hands out its
    last id once, then retires the slot. A check that refused it (added for a finding
    misread as a bug) made the core refuse its own snapshots: fuzz_cluster_snapshot
    found that in CI (cpp/fuzz/findings/cluster_snapshot-last-generation-resnapshot)."""
    data = one_server_with_free_slot(LAST_GENERATION, listed=True)
    cluster = Cluster.restore(data)
    cluster.validate()
    container = cluster.place(0, [1])
    assert container ^ id_key(data) == LAST_GENERATION << 32  # its last id, once
    again = Cluster.restore(cluster.snapshot())  # the core's own snapshot restores
    cluster.release(container)
    cluster.validate()
    assert (cluster.place(0, [1]) ^ id_key(data)) & 0xFFFFFFFF == 1  # retired: a new slot
    again.release(container)
    again.validate()


def test_a_retired_slot_off_the_free_list_restores_and_stays_unused():
    data = one_server_with_free_slot(LAST_GENERATION, listed=False)
    cluster = Cluster.restore(data)
    cluster.validate()
    # Ids are (generation << 32 | slot) XOR the cluster's key.
    container = cluster.place(0, [1]) ^ id_key(data)
    assert container & 0xFFFFFFFF == 1  # a new slot, not the retired one
    assert container >> 32 == 0


def test_a_free_slot_below_the_last_generation_is_reused():
    data = one_server_with_free_slot(LAST_GENERATION - 1, listed=True)
    cluster = Cluster.restore(data)
    assert cluster.place(0, [1]) ^ id_key(data) == (LAST_GENERATION - 1) << 32


def seeds(target: str) -> list[Path]:
    return sorted((CORPUS / target).iterdir())


def as_version_3(data: bytes) -> bytes:
    """A version 2 cluster snapshot as the core writes it back: version 3, key 0."""
    body = data[:-8]
    header = body[:4] + struct.pack("<I", 3) + body[8:KEY_OFFSET]
    return sealed(header + bytes(8) + body[KEY_OFFSET:])


@pytest.mark.parametrize("path", seeds("fuzz_cluster_snapshot"), ids=lambda p: p.name)
def test_cluster_snapshot_seeds_restore_unchanged(path):
    """Version 3 seeds round-trip byte for byte, version 2 ones as version 3 with
    key 0 (their ids were never keyed)."""
    data = path.read_bytes()
    cluster = Cluster.restore(data)
    cluster.validate()
    (version,) = struct.unpack_from("<I", data, 4)
    assert version in (2, 3)
    assert cluster.snapshot() == (data if version == 3 else as_version_3(data))


def test_the_corpus_keeps_both_cluster_snapshot_versions():
    paths = seeds("fuzz_cluster_snapshot")
    versions = {struct.unpack_from("<I", p.read_bytes(), 4)[0] for p in paths}
    assert versions == {2, 3}


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("cluster_snapshot-capacity-total-wraps", r"total mem capacity over 2\^63 - 1"),
        ("cluster_snapshot-slot-sum-wraps", "over capacity"),
    ],
)
def test_the_snapshot_findings_are_refused(name, message):
    """The fuzzers' snapshot findings (cpp/fuzz/findings, version 2 images): each is
    refused with a message naming what is wrong (run.sh replays them natively too)."""
    with pytest.raises(CorruptSnapshot, match=message):
        Cluster.restore((FINDINGS / name).read_bytes())


def test_every_finding_is_listed_as_fixed():
    readme = (FINDINGS / "README.md").read_text()
    files = sorted(p.name for p in FINDINGS.iterdir() if p.name != "README.md")
    assert files
    for name in files:
        (row,) = [line for line in readme.splitlines() if line.startswith(f"| {name} |")]
        assert row.rstrip(" |").split("|")[-1].strip().startswith("fixed"), row


@pytest.mark.parametrize("path", seeds("fuzz_block_index_snapshot"), ids=lambda p: p.name)
def test_block_index_snapshot_seeds_restore_unchanged(path):
    data = path.read_bytes()
    index = BlockIndex.restore(data)
    index.validate()
    assert index.snapshot() == data


def test_the_committed_corpus_stays_small():
    total = sum(p.stat().st_size for p in CORPUS.rglob("*") if p.is_file())
    assert total < 200 * 1024
