"""Writes into folders other processes can write to hold the folder open
(fastplace._atomic.open_real_folder / write_atomic_in): a symlink swapped in for the
folder between the check and the write does not redirect the write. The model store's
blocks and manifests go through them."""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from fastplace import _atomic as atomic


def swap_for_a_link(folder: Path, outside: Path) -> Path:
    """What an attacker does between a writer's check and its write: the real folder
    moves away and a symlink to ``outside`` takes its name. Returns where it moved."""
    moved = folder.with_name(folder.name + "-moved")
    folder.rename(moved)
    folder.symlink_to(outside, target_is_directory=True)
    return moved


@pytest.fixture
def outside(tmp_path: Path) -> Iterator[Path]:
    where = tmp_path / "outside"
    where.mkdir()
    yield where
    assert sorted(os.listdir(where)) == [], "a write went through the planted link"


def test_a_write_stays_in_the_folder_held_open(tmp_path: Path, outside: Path) -> None:
    folder = tmp_path / "f"
    folder.mkdir()
    handle = atomic.open_real_folder(folder)
    try:
        moved = swap_for_a_link(folder, outside)
        atomic.write_atomic_in(handle, "x.json", "{}")
        atomic.write_atomic_in(handle, "x.json", b"[1]")  # replaces its own file
    finally:
        os.close(handle)
    assert (moved / "x.json").read_bytes() == b"[1]"
    assert [n for n in os.listdir(moved) if atomic.is_temporary(n)] == []


def test_open_real_folder_refuses_links_files_and_missing(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real", target_is_directory=True)
    (tmp_path / "file").write_text("x")
    for name, expected in (("link", (errno.ELOOP, errno.ENOTDIR)), ("file", (errno.ENOTDIR,))):
        with pytest.raises(OSError) as caught:
            atomic.open_real_folder(tmp_path / name)
        assert caught.value.errno in expected
    with pytest.raises(FileNotFoundError):
        atomic.open_real_folder(tmp_path / "missing")


def test_write_atomic_in_replaces_a_link_and_refuses_names_and_folders(
    tmp_path: Path, outside: Path
) -> None:
    folder = tmp_path / "f"
    folder.mkdir()
    (folder / "x").symlink_to(outside / "victim")
    (folder / "sub").mkdir()
    handle = atomic.open_real_folder(folder)
    try:
        atomic.write_atomic_in(handle, "x", b"data")  # the link is replaced, not followed
        for bad in ("a/b", "..", ".", ""):
            with pytest.raises(ValueError, match="plain file name"):
                atomic.write_atomic_in(handle, bad, b"data")
        with pytest.raises(IsADirectoryError):
            atomic.write_atomic_in(handle, "sub", b"data")
    finally:
        os.close(handle)
    assert not (folder / "x").is_symlink() and (folder / "x").read_bytes() == b"data"
    assert sorted(n for n in os.listdir(folder) if atomic.is_temporary(n)) == []


def test_write_atomic_in_cleans_stale_temporaries_when_given_the_folder(tmp_path: Path) -> None:
    folder = tmp_path / "f"
    folder.mkdir()
    stale = folder / ".x-0123456789ab-tmp"
    stale.write_bytes(b"half")
    old = time.time() - 2 * atomic.STALE_AFTER_S
    os.utime(stale, (old, old))
    handle = atomic.open_real_folder(folder)
    try:
        atomic.write_atomic_in(handle, "y", b"1")  # no key: nothing cleaned
        assert stale.exists()
        atomic.write_atomic_in(handle, "y", b"2", key=str(folder))
    finally:
        os.close(handle)
    assert not stale.exists() and (folder / "y").read_bytes() == b"2"


def test_store_blocks_and_manifests_land_in_the_real_folders(
    tmp_path: Path, outside: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastplace.engines.ray import block_files, model_store
    from fastplace.engines.ray.model_store import ModelStore

    store = ModelStore(tmp_path / "store", block_size=1024)
    real_open = atomic.open_real_folder
    moved: list[Path] = []

    def open_then_swap(path: str | os.PathLike[str]) -> int:
        handle = real_open(path)  # checked and held: now the attacker swaps the name
        moved.append(swap_for_a_link(Path(path), outside))
        return handle

    monkeypatch.setattr(block_files, "open_real_folder", open_then_swap)
    monkeypatch.setattr(model_store, "open_real_folder", open_then_swap)
    weights = {"w": np.arange(300, dtype=np.float32)}
    manifest = store.put("m", 1, [weights], memory_mb=1)
    blocks = manifest.partitions[0].distinct_blocks()
    # One <hh> folder per block (written by a thread pool, in any order), then the model's.
    by_name = {folder.name: folder for folder in moved}
    assert len(by_name) == len(moved) == len(blocks) + 1
    for address, size in blocks.items():
        assert (by_name[address[:2] + "-moved"] / address).stat().st_size == size
    assert (by_name["m-moved"] / "v1.json").is_file()
    # Reads do not follow the planted model folder either: it is refused by name.
    monkeypatch.setattr(model_store, "open_real_folder", real_open)
    with pytest.raises(OSError, match="not followed"):
        store.manifest("m", 1)


def test_a_block_folder_made_by_another_writer_meanwhile_is_not_damage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """size() looked at a block's folder twice (missing, then existing once another
    writer had made it) and called the block "not a block file", so a fresh store's
    put reported it damaged and rewrote it (seen ~2 times in 15 puts of 1,000 blocks)."""
    from fastplace.engines.ray.block_files import BlockFolder, block_address

    blocks = BlockFolder(tmp_path / "blocks")
    address = block_address(b"x")
    folder = blocks.path(address).parent
    real_lstat = os.lstat

    def lstat_then_another_writer(path: str | os.PathLike[str], *args: object) -> os.stat_result:
        try:
            return real_lstat(path, *args)  # type: ignore[arg-type]
        except FileNotFoundError:
            if Path(path) == folder:
                folder.mkdir()  # the other writer, right after this look
            raise

    monkeypatch.setattr(os, "lstat", lstat_then_another_writer)
    assert blocks.size(address) is None
    assert folder.is_dir()
