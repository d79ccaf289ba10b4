"""Snapshots: round trips (bytes, files, pickle) and damaged snapshot bytes."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastplace import Cluster, CorruptSnapshot
from reference.cluster_model import ReferenceCluster, Twin


def fnv1a(data: bytes) -> int:
    """The checksum the snapshot format documents: 64-bit FNV-1a of all earlier bytes."""
    value = 0xCBF29CE484222325
    for byte in data:
        value = ((value ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return value


def resign(body: bytes) -> bytes:
    """``body`` (a snapshot without its last 8 bytes) with a valid checksum appended."""
    return body + fnv1a(body).to_bytes(8, "little")


def busy_cluster(n: int = 5, dims: int = 2, seed: int = 0) -> Cluster:
    """A cluster with live and released containers, reused slots and cordons."""
    rng = np.random.default_rng(seed)
    cluster = Cluster(rng.integers(50, 200, size=(n, dims)), [f"r{d}" for d in range(dims)])
    live = []
    for _ in range(4 * n):
        container, _server = cluster.place_with(rng.integers(0, 40, size=dims), "first_fit")
        if container >= 0:
            live.append(container)
        if live and rng.random() < 0.4:
            cluster.release(live.pop(int(rng.integers(len(live)))))
    cluster.cordon(n - 1)
    return cluster


def assert_same_cluster(a: Cluster, b: Cluster) -> None:
    assert a.snapshot() == b.snapshot()
    assert list(a.resources) == list(b.resources)
    assert a.free.tolist() == b.free.tolist()
    assert a.capacity.tolist() == b.capacity.tolist()
    assert a.container_counts().tolist() == b.container_counts().tolist()
    assert a.n_containers == b.n_containers
    assert a.n_active_servers == b.n_active_servers
    assert [a.is_cordoned(s) for s in range(a.n_servers)] == [
        b.is_cordoned(s) for s in range(b.n_servers)
    ]
    b.validate()


# ---- round trips ------------------------------------------------------------------------


@settings(max_examples=40)
@given(
    st.sampled_from([0, 1, 63, 64, 65, 129]),
    st.integers(1, 8),
    st.lists(st.tuples(st.integers(0, 4), st.integers(0, 2**16)), max_size=60),
)
def test_restore_reproduces_state_and_future(n, dims, script):
    """A restored cluster has the same snapshot bytes, the same containers under the
    same ids, and goes on to make the same choices and ids as the original."""
    names = [f"r{d}" for d in range(dims)]
    rng = np.random.default_rng(len(script))
    capacity = rng.integers(0, 100, size=(n, dims))
    twin = Twin(Cluster(capacity, names), ReferenceCluster(capacity.tolist(), names))
    for op, value in script:
        request = [(value >> d) % 40 for d in range(dims)]
        if op == 0 or (op == 1 and not twin.ids):
            twin.place_with(request, "best_fit" if value % 2 else "first_fit")
        elif op == 1:
            twin.release(sorted(twin.ids, key=twin.ids.__getitem__)[value % len(twin.ids)])
        elif op == 2 and twin.model.n_servers:
            (twin.cordon if value % 3 else twin.uncordon)(value % twin.model.n_servers)
        elif op == 3:
            twin.add_servers(np.full((value % 3, dims), value % 100))
        else:  # swap the core for its restored copy, and check both agree
            restored = Cluster.restore(twin.core.snapshot())
            assert_same_cluster(twin.core, restored)
            twin.core = restored
    original = twin.core
    restored = Cluster.restore(original.snapshot())
    assert_same_cluster(original, restored)
    for container in twin.ids:
        assert original.container(container)[0] == restored.container(container)[0]
        assert (
            original.container(container)[1].tolist() == restored.container(container)[1].tolist()
        )
    # the same operations on both give the same answers and ids from here on
    for container in list(twin.ids)[::2]:
        original.release(container)
        restored.release(container)
    for value in range(10):
        request = [(value * 7 + d) % 30 for d in range(dims)]
        assert original.place_with(request, "best_fit") == restored.place_with(request, "best_fit")
    assert_same_cluster(original, restored)


def test_restored_copy_is_independent():
    original = busy_cluster()
    before = original.snapshot()
    restored = Cluster.restore(before)
    restored.place_with([1, 1], "first_fit")
    restored.uncordon(4)
    assert original.snapshot() == before
    assert restored.snapshot() != before


@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview])
def test_restore_accepts_bytes_like(wrap):
    original = busy_cluster()
    assert_same_cluster(original, Cluster.restore(wrap(original.snapshot())))


def test_restore_returns_a_cluster():
    restored = Cluster.restore(busy_cluster().snapshot())
    assert type(restored) is Cluster
    restored.validate()


def test_large_round_trip():
    cluster = busy_cluster(n=4097, dims=3, seed=7)
    for server in range(0, 4097, 97):
        cluster.cordon(server)
    assert_same_cluster(cluster, Cluster.restore(cluster.snapshot()))


def test_save_and_load(tmp_path):
    cluster = busy_cluster()
    path = tmp_path / "cluster.fplc"
    cluster.save(path)
    assert path.read_bytes() == cluster.snapshot()
    assert_same_cluster(cluster, Cluster.load(path))
    assert_same_cluster(cluster, Cluster.load(str(path)))
    # saving again overwrites, leaving no temporary file behind
    cluster.place_with([1, 1], "first_fit")
    cluster.save(str(path))
    assert_same_cluster(cluster, Cluster.load(path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cluster.fplc"]


def test_load_of_a_damaged_file(tmp_path):
    path = tmp_path / "cluster.fplc"
    path.write_bytes(busy_cluster().snapshot()[:-1])
    with pytest.raises(ValueError):
        Cluster.load(path)


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_pickle(protocol):
    cluster = busy_cluster()
    clone = pickle.loads(pickle.dumps(cluster, protocol=protocol))
    assert type(clone) is Cluster
    assert_same_cluster(cluster, clone)


def test_copy_and_deepcopy_are_independent():
    cluster = busy_cluster()
    before = cluster.snapshot()
    for clone in (copy.copy(cluster), copy.deepcopy(cluster)):
        assert_same_cluster(cluster, clone)
        clone.place_with([1, 1], "first_fit")
        assert cluster.snapshot() == before


# ---- damaged bytes ------------------------------------------------------------------------


def small_snapshot() -> bytes:
    cluster = Cluster([[10, 20], [30, 40]], ["a", "b"])
    gone = cluster.place(0, [1, 2])
    cluster.place(1, [3, 4])
    cluster.place(0, [5, 6])
    cluster.release(gone)
    cluster.cordon(1)
    return cluster.snapshot()


def test_corrupt_snapshot_is_a_value_error():
    assert issubclass(CorruptSnapshot, ValueError)


def test_every_truncation_is_refused():
    data = small_snapshot()
    for length in range(len(data)):
        with pytest.raises(ValueError):
            Cluster.restore(data[:length])


@pytest.mark.parametrize("mask", [0x01, 0x80, 0xFF])
def test_every_flipped_byte_is_refused(mask):
    data = small_snapshot()
    for i in range(len(data)):
        damaged = bytearray(data)
        damaged[i] ^= mask
        with pytest.raises(ValueError):
            Cluster.restore(bytes(damaged))


def test_trailing_bytes_are_refused():
    data = small_snapshot()
    with pytest.raises(ValueError):
        Cluster.restore(data + b"\0")
    with pytest.raises(ValueError, match="trailing"):
        Cluster.restore(resign(data[:-8] + b"\0"))


def test_checksum_mismatch_is_named():
    data = bytearray(small_snapshot())
    data[-20] ^= 1
    with pytest.raises(ValueError, match="checksum"):
        Cluster.restore(bytes(data))


def test_bad_magic_and_version_are_named():
    body = small_snapshot()[:-8]
    with pytest.raises(ValueError, match="magic"):
        Cluster.restore(resign(b"XPLC" + body[4:]))
    version = int.from_bytes(body[4:8], "little")
    with pytest.raises(ValueError, match="version"):
        Cluster.restore(resign(body[:4] + (version + 1).to_bytes(4, "little") + body[8:]))


@settings(max_examples=300)
@given(st.data())
def test_resigned_corruption_never_restores_a_different_state(data):
    """Damage that keeps the checksum valid gets past the checksum: the parser and
    validation must then either refuse the bytes (ValueError) or restore a valid
    cluster whose own snapshot is exactly those bytes."""
    body = bytearray(small_snapshot()[:-8])
    for _ in range(data.draw(st.integers(1, 3))):
        i = data.draw(st.integers(0, len(body) - 1))
        body[i] = data.draw(st.integers(0, 255))
    damaged = resign(bytes(body))
    try:
        restored = Cluster.restore(damaged)
    except ValueError:
        return
    restored.validate()
    assert restored.snapshot() == damaged


def test_restore_of_empty_and_garbage_bytes():
    for data in (b"", b"FPLC", b"\0" * 64, b"FPLC" + b"\xff" * 100):
        with pytest.raises(ValueError):
            Cluster.restore(data)


# ---- consistent checksum, inconsistent content ------------------------------------------
#
# These edit single fields at the offsets of the documented layout (version 3):
#   "FPLC" | u32 version | u32 n_dims | u64 n_servers | u64 id key
#   per dimension: u32 name length, name, 64 i64 level thresholds
#   n_servers x n_dims i64 capacity | n_servers u8 cordoned
#   u64 n_slots, per slot: u32 generation, i64 server, n_dims i64 amounts
#   u64 n_free_slots, u32 each | u64 FNV-1a checksum


def two_server_body() -> tuple[bytes, int, int]:
    """Snapshot body (no checksum) of two 2-d servers with one live container, and the
    offsets of the cordoned flags and of the first slot."""
    cluster = Cluster([[10, 20], [30, 40]], ["alpha", "bravo"])
    cluster.place(0, [1, 2])
    body = cluster.snapshot()[:-8]
    cordoned = 28 + 2 * (4 + 5 + 64 * 8) + 2 * 2 * 8
    return body, cordoned, cordoned + 2 + 8


def id_key(body: bytes) -> int:
    """The key the snapshot's container ids are XORed with (after n_servers)."""
    return int.from_bytes(body[20:28], "little")


def patched(body: bytes, offset: int, value: int, size: int, signed: bool = False) -> bytes:
    return resign(
        body[:offset] + value.to_bytes(size, "little", signed=signed) + body[offset + size :]
    )


def test_layout_offsets_are_right():
    body, cordoned, slot = two_server_body()
    assert body[cordoned : cordoned + 2] == b"\0\0"
    assert int.from_bytes(body[slot : slot + 4], "little") == 0  # generation
    assert int.from_bytes(body[slot + 4 : slot + 12], "little") == 0  # server
    assert int.from_bytes(body[slot + 12 : slot + 20], "little") == 1  # alpha amount
    assert Cluster.restore(resign(body)).snapshot() == resign(body)


def test_duplicate_resource_names_are_refused():
    body, _, _ = two_server_body()
    with pytest.raises(ValueError, match="alpha"):
        Cluster.restore(resign(body.replace(b"bravo", b"alpha")))


def test_container_over_capacity_is_refused():
    body, _, slot = two_server_body()
    with pytest.raises(ValueError, match="over capacity"):
        Cluster.restore(patched(body, slot + 12, 11, 8))


def test_container_on_a_missing_server_is_refused():
    body, _, slot = two_server_body()
    for server in (2, -2):
        with pytest.raises(ValueError, match="server"):
            Cluster.restore(patched(body, slot + 4, server, 8, signed=True))


def test_negative_container_amount_is_refused():
    body, _, slot = two_server_body()
    with pytest.raises(ValueError, match="negative"):
        Cluster.restore(patched(body, slot + 20, -1, 8, signed=True))


def test_cordoned_flag_other_than_0_or_1_is_refused():
    body, cordoned, _ = two_server_body()
    with pytest.raises(ValueError, match="cordoned"):
        Cluster.restore(patched(body, cordoned + 1, 2, 1))
    restored = Cluster.restore(patched(body, cordoned + 1, 1, 1))
    assert restored.is_cordoned(1)
    assert not restored.is_cordoned(0)


def test_generation_that_would_make_a_negative_id_is_refused():
    body, _, slot = two_server_body()
    with pytest.raises(ValueError, match="generation"):
        Cluster.restore(patched(body, slot, 2**31, 4))
    restored = Cluster.restore(patched(body, slot, 2**31 - 1, 4))
    container = ((2**31 - 1) << 32) ^ id_key(body)
    assert restored.container(container)[0] == 0
    restored.release(container)
    restored.validate()


def test_ids_are_not_reused_after_the_generation_wraps():
    cluster = Cluster([[10, 20], [30, 40]], ["alpha", "bravo"])
    first = cluster.place(0, [1, 2])  # slot 0, generation 0
    # Fast-forward slot 0 to its last generation, as if it had been reused 2**31 - 1
    # times (the snapshot is the only way to get there in reasonable time).
    body, _, slot = two_server_body()
    cluster = Cluster.restore(patched(body, slot, 2**31 - 1, 4))
    last = ((2**31 - 1) << 32) ^ id_key(body)
    cluster.release(last)
    again = cluster.place(0, [1, 2])
    assert again != first
