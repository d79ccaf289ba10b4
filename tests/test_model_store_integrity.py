"""The model store and node caches serve only bytes that match their SHA-256 address:
a damaged, truncated, extended, replaced or planted block is fetched again or repaired,
never served; names never resolve outside the store or the cache; a store of the first
layout is refused. All of it on plain files, without Ray."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastplace.engines.ray.block_files import CorruptBlock, index_key
from fastplace.engines.ray.model_store import (
    STORE_FORMAT,
    ModelStore,
    NodeCache,
    PartitionManifest,
    StoreFormatError,
)
from fifo_guard import fifo

BLOCK = 1024


def weights(seed: int = 0, n: int = 5 * BLOCK // 4 + 7) -> dict[str, np.ndarray]:
    """Two tensors over six blocks, the last one short."""
    rng = np.random.default_rng(seed)
    return {
        "a": rng.normal(size=n).astype(np.float32),
        "b": rng.integers(0, 9, size=(7, 3)).astype(np.int64),
    }


def stored(tmp_path: Path) -> tuple[ModelStore, PartitionManifest, dict[str, np.ndarray]]:
    store = ModelStore(tmp_path / "store", block_size=BLOCK)
    w = weights()
    return store, store.put("m", 1, [w], memory_mb=64).partitions[0], w


def cached(tmp_path: Path) -> tuple[ModelStore, NodeCache, PartitionManifest, dict]:
    store, part, w = stored(tmp_path)
    cache = NodeCache(tmp_path / "cache")
    cache.fetch(store, part.distinct_blocks())
    return store, cache, part, w


def assert_weights(got: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    assert set(got) == set(expected)
    for key, value in expected.items():
        np.testing.assert_array_equal(got[key], value)


def tree(root: Path) -> dict[str, bytes | str]:
    """Every entry under ``root``: file contents, link targets, folders."""
    out: dict[str, bytes | str] = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        if path.is_symlink():
            out[key] = f"-> {os.readlink(path)}"
        elif path.is_dir():
            out[key] = "/"
        else:
            out[key] = path.read_bytes()
    return out


# ---- addresses -------------------------------------------------------------------------


def test_addresses_are_sha256_of_each_block(tmp_path: Path) -> None:
    store, part, w = stored(tmp_path)
    data = w["a"].tobytes() + w["b"].tobytes()  # name order
    blocks = [data[i : i + BLOCK] for i in range(0, len(data), BLOCK)]
    assert list(part.hashes) == [hashlib.sha256(b).hexdigest() for b in blocks]
    assert list(part.sizes) == [len(b) for b in blocks]
    assert part.index_keys().tolist() == [int(a[:16], 16) for a in part.hashes]
    assert index_key(part.hashes[0]) == part.index_keys()[0]
    assert (store.root / "FORMAT").read_text().strip() == STORE_FORMAT
    for address in part.hashes:
        assert store.blocks.path(address).read_bytes() in blocks


# ---- node caches: a bad block is fetched again, never served -----------------------------


def flip(path: Path, at: int = 5) -> None:
    data = bytearray(path.read_bytes() or b"\0")
    data[at % len(data)] ^= 0x01
    path.write_bytes(data)


DAMAGE = {
    "flipped byte": flip,
    "trailing bytes": lambda p: p.write_bytes(p.read_bytes() + b"\0\0"),
    "truncated": lambda p: p.write_bytes(p.read_bytes()[:-1]),
    "emptied": lambda p: p.write_bytes(b""),
    "deleted": lambda p: p.unlink(),
    "replaced by a folder": lambda p: (p.unlink(), p.mkdir()),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_bad_cached_block_is_fetched_again_and_never_served(damage: str, tmp_path: Path) -> None:
    store, cache, part, w = cached(tmp_path)
    victim = part.hashes[2]
    DAMAGE[damage](cache.files.path(victim))
    fetched, *_ = cache.fetch(store, part.distinct_blocks())  # a start does this first
    assert_weights(cache.load(part, store), w)
    if damage == "deleted":  # simply missing: an ordinary fetch, not a repair
        assert fetched == [victim] and cache.repairs.blocks == 0
    else:
        assert cache.repairs.blocks == 1 and cache.repairs.bytes == BLOCK
    assert cache.files.read(victim, BLOCK) is not None  # the cache file is good again
    assert_weights(cache.load(part, store), w)
    assert cache.repairs.blocks == (damage != "deleted")  # a good block is not fetched again


def test_damage_after_the_fetch_is_caught_when_loading(tmp_path: Path) -> None:
    store, cache, part, w = cached(tmp_path)
    fetched, *_ = cache.fetch(store, part.distinct_blocks())
    assert fetched == []  # same size: fetch cannot tell, load must
    flip(cache.files.path(part.hashes[0]))
    assert_weights(cache.load(part, store), w)
    assert cache.repairs.blocks == 1


def test_without_a_store_a_bad_block_is_removed_and_refused(tmp_path: Path) -> None:
    store, cache, part, w = cached(tmp_path)
    victim = part.hashes[1]
    flip(cache.files.path(victim))
    with pytest.raises(CorruptBlock, match=victim):
        cache.load(part)
    assert not cache.has(victim)
    fetched, *_ = cache.fetch(store, part.distinct_blocks())
    assert fetched == [victim]
    assert_weights(cache.load(part), w)
    cache.evict([victim])
    with pytest.raises(FileNotFoundError):
        cache.load(part)


def test_a_symlink_planted_for_a_block_is_not_followed(tmp_path: Path) -> None:
    store, cache, part, w = cached(tmp_path)
    outside = tmp_path / "outside"
    outside.write_bytes(b"not a block")
    victim = cache.files.path(part.hashes[0])
    victim.unlink()
    victim.symlink_to(outside)
    cache.fetch(store, part.distinct_blocks())
    assert_weights(cache.load(part, store), w)
    assert not victim.is_symlink() and outside.read_bytes() == b"not a block"
    assert cache.repairs.blocks == 1


def test_a_symlinked_cache_subfolder_is_never_written_through(tmp_path: Path) -> None:
    store, part, w = stored(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("mine")
    cache = NodeCache(tmp_path / "cache")
    address = part.hashes[0]
    (cache.directory / address[:2]).symlink_to(outside, target_is_directory=True)
    (outside / address).write_bytes(store.blocks.path(address).read_bytes())  # a good copy
    assert not cache.has(address)  # not reached through the link
    assert address not in cache.held()
    assert cache.evict([address]) == 0
    cache.fetch(store, part.distinct_blocks())
    assert_weights(cache.load(part, store), w)
    assert sorted(p.name for p in outside.iterdir()) == sorted(["keep", address])
    assert (outside / "keep").read_text() == "mine"
    assert not (cache.directory / address[:2]).is_symlink()


def test_a_fifo_planted_for_a_block_does_not_hang_the_load(tmp_path: Path) -> None:
    store, cache, part, w = cached(tmp_path)
    victim = cache.files.path(part.hashes[3])
    victim.unlink()
    with fifo(victim):
        cache.fetch(store, part.distinct_blocks())
        assert_weights(cache.load(part, store), w)
    assert cache.repairs.blocks == 1


def test_partitions_loading_on_one_node_at_once_all_get_good_weights(tmp_path: Path) -> None:
    store, cache, part, w = cached(tmp_path)
    for address in part.hashes[::2]:
        flip(cache.files.path(address))
    caches = [NodeCache(cache.directory) for _ in range(4)]
    results: list[dict[str, np.ndarray]] = []
    errors: list[BaseException] = []

    def start(node: NodeCache) -> None:
        try:
            node.fetch(store, part.distinct_blocks())
            results.append(node.load(part, store))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=start, args=(c,)) for c in caches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == [] and len(results) == 4
    for got in results:
        assert_weights(got, w)
    assert cache.held() == set(part.hashes)


@settings(max_examples=25, deadline=None)
@given(
    damages=st.lists(
        st.tuples(st.integers(0, 5), st.sampled_from(sorted(DAMAGE))), min_size=1, max_size=6
    ),
    with_store=st.booleans(),
)
def test_whatever_the_damage_load_serves_the_stored_bytes_or_nothing(
    tmp_path_factory: pytest.TempPathFactory,
    damages: list[tuple[int, str]],
    with_store: bool,
) -> None:
    store, cache, part, w = cached(tmp_path_factory.mktemp("damage"))
    for block, damage in damages:
        path = cache.files.path(part.hashes[block])
        if os.path.isfile(path) and not path.is_symlink():
            DAMAGE[damage](path)
    try:
        got = cache.load(part, store if with_store else None)
    except (CorruptBlock, FileNotFoundError):
        assert not with_store
    else:
        assert_weights(got, w)


# ---- the store: damaged blocks are refused and repaired by put -----------------------------


@pytest.mark.parametrize("damage", ["flipped byte", "trailing bytes", "truncated"])
def test_put_repairs_a_damaged_store_block(damage: str, tmp_path: Path) -> None:
    store, part, w = stored(tmp_path)
    victim = part.hashes[4]
    DAMAGE[damage](store.blocks.path(victim))
    cache = NodeCache(tmp_path / "cache")
    with pytest.raises(CorruptBlock, match="damaged"):
        cache.fetch(store, part.distinct_blocks())
    store.put("m", 2, [w], memory_mb=64)  # any version holding the block
    assert store.repairs.blocks == 1
    cache.fetch(store, part.distinct_blocks())
    assert_weights(cache.load(part, store), w)
    store.put("m", 3, [w], memory_mb=64)
    assert store.repairs.blocks == 1  # good blocks are left alone


def test_a_block_missing_from_the_store_says_so(tmp_path: Path) -> None:
    store, part, _ = stored(tmp_path)
    store.blocks.path(part.hashes[0]).unlink()
    with pytest.raises(FileNotFoundError, match="not in the store"):
        NodeCache(tmp_path / "cache").fetch(store, part.distinct_blocks())


# ---- names never resolve outside the store ----------------------------------------------

BAD_MODELS = ["", ".", "..", "../x", "../../etc", "/abs", "a/b", "a\\b", "a\0b", ".hidden",
              "-flag", "x" * 129, "caf\u00e9", 5, None]  # fmt: skip


@pytest.mark.parametrize("model", BAD_MODELS, ids=repr)
def test_bad_model_names_are_refused_and_change_nothing(model: object, tmp_path: Path) -> None:
    store, _, w = stored(tmp_path)
    before = tree(tmp_path)
    for call in (
        lambda: store.put(model, 1, [w], memory_mb=1),  # type: ignore[arg-type]
        lambda: store.manifest(model, 1),  # type: ignore[arg-type]
        lambda: store.versions(model),  # type: ignore[arg-type]
    ):
        with pytest.raises(ValueError, match="model = "):
            call()
    assert tree(tmp_path) == before


@pytest.mark.parametrize(
    ("version", "error"),
    [(-1, ValueError), (True, TypeError), (1.5, TypeError), ("1", TypeError), (None, TypeError)],
    ids=repr,
)
def test_bad_versions_are_refused_and_change_nothing(
    version: object, error: type[Exception], tmp_path: Path
) -> None:
    store, _, w = stored(tmp_path)
    before = tree(tmp_path)
    with pytest.raises(error, match="version = "):
        store.put("m", version, [w], memory_mb=1)  # type: ignore[arg-type]
    with pytest.raises(error, match="version = "):
        store.manifest("m", version)  # type: ignore[arg-type]
    assert tree(tmp_path) == before


@pytest.mark.parametrize(
    "address", ["../../../outside", "/etc/passwd", "ab", "A" * 64, "0" * 63 + "\0", 17]
)
def test_a_manifest_naming_a_path_is_refused(address: object, tmp_path: Path) -> None:
    store, _, _ = stored(tmp_path)
    path = store.root / "models" / "m" / "v1.json"
    data = json.loads(path.read_text())
    data["partitions"][0]["hashes"][0] = address
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="not a SHA-256 address"):
        store.manifest("m", 1)
    cache = NodeCache(tmp_path / "cache")
    for call in (cache.has, lambda a: cache.evict([a]), lambda a: cache.fetch(store, {a: 1})):
        with pytest.raises(ValueError, match="not a SHA-256 address"):
            call(address)


def test_a_manifest_under_another_name_is_refused(tmp_path: Path) -> None:
    store, _, _ = stored(tmp_path)
    (store.root / "models" / "other").mkdir()
    (store.root / "models" / "m" / "v1.json").rename(store.root / "models" / "other" / "v1.json")
    with pytest.raises(ValueError, match="not 'other' v1"):
        store.manifest("other", 1)


def test_a_symlinked_model_folder_is_not_followed(tmp_path: Path) -> None:
    store, _, w = stored(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (store.root / "models" / "evil").symlink_to(outside, target_is_directory=True)
    with pytest.raises(OSError, match="not followed"):
        store.put("evil", 1, [w], memory_mb=1)
    with pytest.raises(OSError, match="not followed"):
        store.manifest("evil", 1)
    assert list(outside.iterdir()) == []


def test_versions_lists_only_manifests(tmp_path: Path) -> None:
    store, _, w = stored(tmp_path)
    store.put("m", 10, [w], memory_mb=1)
    folder = store.root / "models" / "m"
    for stray in ("vx.json", "v01.json", ".v2.json-0123456789ab-tmp.json", "v3.json.bak"):
        (folder / stray).write_text("{}")
    assert store.versions("m") == [1, 10]
    assert store.versions("unknown") == []


# ---- the store's format -------------------------------------------------------------------


def test_a_store_of_the_first_layout_is_refused_unchanged(tmp_path: Path) -> None:
    root = tmp_path / "old"
    (root / "blocks" / "ab").mkdir(parents=True)
    (root / "blocks" / "ab" / "ab12cd34ef567890").write_bytes(b"x" * 10)
    (root / "models" / "m").mkdir(parents=True)
    (root / "models" / "m" / "v1.json").write_text('{"format": "fastplace-ray-model-1"}')
    before = tree(root)
    with pytest.raises(StoreFormatError, match=r"first layout \(xxh3-64"):
        ModelStore(root)
    assert tree(root) == before


def test_a_store_of_an_unknown_format_is_refused(tmp_path: Path) -> None:
    ModelStore(tmp_path / "s")
    (tmp_path / "s" / "FORMAT").write_text("fastplace-model-store 9\n")
    with pytest.raises(StoreFormatError, match="store 9"):
        ModelStore(tmp_path / "s")


def test_an_empty_folder_becomes_a_store(tmp_path: Path) -> None:
    (tmp_path / "s").mkdir()
    ModelStore(tmp_path / "s")
    ModelStore(tmp_path / "s")  # and opens again
    assert (tmp_path / "s" / "FORMAT").read_text().strip() == STORE_FORMAT
