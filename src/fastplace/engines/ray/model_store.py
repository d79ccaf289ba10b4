"""The model store (content-addressed blocks) and the per-node block caches.

The store is a directory standing for remote storage (S3, GCS ...)::

    <store>/FORMAT                           "fastplace-model-store 2": the layout below
    <store>/blocks/<hh>/<address>            one file per distinct block
    <store>/models/<model>/v<version>.json   the version's manifest

A block's address is the SHA-256 of its bytes (:mod:`.block_files` says why not xxh3).
A partition's weights are serialised as its tensors' raw bytes, concatenated in name
order (the layout is in the manifest), and cut into blocks of ``block_size`` bytes.
Versions of one architecture keep every tensor at the same offset, so a block a
retraining did not touch has the same address in both versions and is stored, fetched
and cached once.

Each node has a block cache, a directory (``<cache root>/<node id>/``) in front of the
store. A starting partition fetches only the blocks its node's cache lacks
(:meth:`NodeCache.fetch`), then assembles its weights from the cached blocks
(:meth:`NodeCache.load`).

Integrity: neither the store's disk nor a node's is trusted. Every block is checked
against its address whenever it is read: when fetched from the store, and again when
loaded from the cache for serving. A bad cached block is fetched again from the store
(and the cache file replaced); a bad block in the store is refused, and the next
:meth:`ModelStore.put` of a version holding it rewrites it. Both are counted
(:attr:`NodeCache.repairs`, :attr:`ModelStore.repairs`, :class:`ColdStart`) and logged.
Names that become paths (model names, versions, block addresses) are checked first and
never resolve outside the store or the cache. Every file is written atomically
(:mod:`fastplace._atomic`), so partitions starting on one node at once never see half a
block; the store's files durably too (the cache's need not be: every read is checked).

A store of the first layout (xxh3-64 addresses, no ``FORMAT`` file) is refused with
:class:`StoreFormatError`, not migrated: its blocks cannot be checked against an
address anybody could have collided, so re-putting the versions is the only safe way.

The store must be reachable from every node (here: a shared directory; the cache root
is per node). Only numpy is needed: partitions never import torch.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import operator
import os
import re
import shutil
import stat
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from fastplace._atomic import make_directories, open_real_folder, write_atomic, write_atomic_in
from fastplace._checks import integer
from fastplace.engines.ray.block_files import (
    NOT_A_BLOCK_FILE,
    BlockFolder,
    CorruptBlock,
    Repairs,
    block_address,
    check_address,
    index_key,
)
from fastplace.resources import as_amount

__all__ = [
    "DEFAULT_BLOCK_SIZE",
    "STORE_FORMAT",
    "ColdStart",
    "CorruptBlock",
    "ModelStore",
    "NodeCache",
    "PartitionManifest",
    "Repairs",
    "StoreFormatError",
    "TensorInfo",
    "VersionManifest",
    "pack_weights",
]

logger = logging.getLogger("fastplace.engines.ray")

DEFAULT_BLOCK_SIZE = 16 << 10
"""Small models (tests, the demo) need small blocks; production would use MiBs."""
FORMAT = "fastplace-ray-model-2"
"""The manifests' format (2: SHA-256 block addresses)."""
STORE_FORMAT = "fastplace-model-store 2"
"""The content of ``<store>/FORMAT``: the layout in the module docstring."""
_MODEL_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_MANIFEST_NAME = re.compile(r"v(0|[1-9][0-9]*)\.json")
_WRITERS = 8
FETCH_LOCK = ".fetch.lock"
"""A node cache's lock file (in its root): one fetch at a time per node."""
"""Threads storing one version's blocks."""
_CHECKERS = min(4, os.cpu_count() or 1)
"""Threads hashing the blocks a load reads."""
_CHECK_RUN_BYTES = 4 << 20


class StoreFormatError(ValueError):
    """The directory holds a model store of another layout (the first one, or newer)."""


def check_model_name(model: object) -> str:
    """``model`` if it is a plain name that stays one path component, else ValueError."""
    if not isinstance(model, str) or _MODEL_NAME.fullmatch(model) is None:
        raise ValueError(
            f"model = {model!r} must be 1 to 128 letters, digits, '_', '.' or '-', "
            "starting with a letter, digit or '_'"
        )
    return model


def check_version(version: object) -> int:
    """``version`` as an int if it is a whole number >= 0 (not a bool), else an error."""
    if isinstance(version, bool):
        raise TypeError(f"version = {version!r} must be an integer, not a bool")
    try:
        number = operator.index(version)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"version = {version!r} must be an integer") from None
    if number < 0:
        raise ValueError(f"version = {number} must be >= 0")
    return number


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dtype: str
    shape: tuple[int, ...]
    offset: int
    nbytes: int


@dataclass(frozen=True)
class PartitionManifest:
    """One partition of a version: its tensors' layout and its blocks, in file order."""

    index: int
    memory_mb: int
    """The container's memory, set by the model owner (what fastplace books)."""
    tensors: tuple[TensorInfo, ...]
    hashes: tuple[str, ...]
    """Each block's address (SHA-256, 64 hex digits), in file order."""
    sizes: tuple[int, ...]

    @property
    def total_bytes(self) -> int:
        return sum(self.sizes)

    def distinct_blocks(self) -> dict[str, int]:
        """Address -> size of each distinct block (what a cold start may need to fetch)."""
        return dict(zip(self.hashes, self.sizes, strict=True))

    def index_keys(self) -> npt.NDArray[np.uint64]:
        """The blocks' keys in fastplace's :class:`~fastplace.BlockIndex`, in file order
        (see :func:`~fastplace.engines.ray.block_files.index_key`)."""
        return np.array([index_key(a) for a in self.hashes], dtype=np.uint64)


@dataclass(frozen=True)
class VersionManifest:
    model: str
    version: int
    block_size: int
    partitions: tuple[PartitionManifest, ...]
    config: Mapping[str, Any] = field(default_factory=dict)
    """What the serving code needs to rebuild the model (the MTML config)."""

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": FORMAT,
                "model": self.model,
                "version": self.version,
                "block_size": self.block_size,
                "config": dict(self.config),
                "partitions": [
                    {
                        "index": part.index,
                        "memory_mb": part.memory_mb,
                        "tensors": [
                            {
                                "name": t.name,
                                "dtype": t.dtype,
                                "shape": list(t.shape),
                                "offset": t.offset,
                                "nbytes": t.nbytes,
                            }
                            for t in part.tensors
                        ],
                        "hashes": list(part.hashes),
                        "sizes": list(part.sizes),
                    }
                    for part in self.partitions
                ],
            },
            indent=1,
        )

    @classmethod
    def from_json(cls, text: str) -> VersionManifest:
        """The manifest in ``text``; ValueError if it is not one of this format (every
        block address is checked: it becomes a file name)."""
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            found = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise ValueError(f"not a {FORMAT} manifest (format = {found!r})")
        try:
            partitions = tuple(
                PartitionManifest(
                    index=int(part["index"]),
                    memory_mb=as_amount(part["memory_mb"], "manifest memory_mb"),
                    tensors=tuple(
                        TensorInfo(
                            t["name"], t["dtype"], tuple(t["shape"]), t["offset"], t["nbytes"]
                        )
                        for t in part["tensors"]
                    ),
                    hashes=tuple(check_address(a, "manifest block") for a in part["hashes"]),
                    sizes=tuple(int(s) for s in part["sizes"]),
                )
                for part in data["partitions"]
            )
            manifest = cls(
                model=check_model_name(data["model"]),
                version=check_version(data["version"]),
                block_size=int(data["block_size"]),
                config=data["config"],
                partitions=partitions,
            )
        except (KeyError, TypeError) as error:
            raise ValueError(f"malformed {FORMAT} manifest: {error!r}") from None
        for part in manifest.partitions:
            if len(part.hashes) != len(part.sizes) or any(s <= 0 for s in part.sizes):
                raise ValueError(f"manifest partition {part.index}: hashes and sizes disagree")
        return manifest


def pack_weights(weights: Mapping[str, npt.NDArray[Any]]) -> tuple[bytes, tuple[TensorInfo, ...]]:
    """The tensors' raw bytes concatenated in name order, and where each one lies."""
    infos = []
    chunks = []
    offset = 0
    for name in sorted(weights):
        array = np.ascontiguousarray(weights[name])
        infos.append(TensorInfo(name, array.dtype.str, tuple(array.shape), offset, array.nbytes))
        chunks.append(array.tobytes())
        offset += array.nbytes
    return b"".join(chunks), tuple(infos)


def unpack_weights(
    data: bytes | bytearray | memoryview, tensors: Iterable[TensorInfo]
) -> dict[str, npt.NDArray[Any]]:
    """Arrays viewing ``data`` (no copy), as laid out by :func:`pack_weights`."""
    out = {}
    for t in tensors:
        array = np.frombuffer(
            data, dtype=np.dtype(t.dtype), count=int(np.prod(t.shape)), offset=t.offset
        )
        out[t.name] = array.reshape(t.shape)
    return out


def block_name(address: str) -> str:
    """A block's file name: its address, once checked (ValueError otherwise)."""
    return check_address(address)


def _real_folder(path: Path) -> bool:
    """Whether ``path`` is a folder itself, not a symlink to one."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


def _planted(directory: Path) -> OSError:
    return OSError(
        errno.ENOTDIR,
        "not a folder of the store (a symbolic link or a file): not followed",
        str(directory),
    )


def _per_partition(memory_mb: object, n: int) -> list[Any]:
    """``memory_mb`` as one value per partition: a sequence (or 1-D array) as it is,
    anything else (a scalar, or text, which as_amount then refuses) repeated n times."""
    if isinstance(memory_mb, np.ndarray) and memory_mb.ndim == 1:
        return list(memory_mb)
    if isinstance(memory_mb, Sequence) and not isinstance(memory_mb, str | bytes | bytearray):
        return list(memory_mb)
    return [memory_mb] * n


class ModelStore:
    """Model versions as content-addressed blocks in a directory (the "remote" store).

    ``bandwidth`` (bytes/s, optional) is the throughput of a fetch from the store:
    a local directory copies at memory speed, which would hide what a cold start costs
    when the store is remote. None copies as fast as the disk allows.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        block_size: int = DEFAULT_BLOCK_SIZE,
        bandwidth: float | None = None,
    ) -> None:
        """The store under ``root`` (created if missing), cutting versions into blocks of
        ``block_size`` bytes. StoreFormatError if ``root`` holds a store of another
        layout."""
        block_size = integer(block_size, "block_size", minimum=1)
        if bandwidth is not None and not bandwidth > 0:
            raise ValueError(f"bandwidth = {bandwidth} must be > 0 bytes/s")
        self.root = make_directories(root).resolve()
        self.block_size = block_size
        self.bandwidth = bandwidth
        self._check_format()
        self.blocks = BlockFolder(self.root / "blocks")
        make_directories(self.root / "models")
        self.repairs = Repairs()
        """Damaged store blocks that :meth:`put` rewrote."""

    def _check_format(self) -> None:
        marker = self.root / "FORMAT"
        for attempt in range(2):
            try:
                found = marker.read_text(errors="replace").strip()
            except FileNotFoundError:
                pass
            else:
                if found != STORE_FORMAT:
                    raise StoreFormatError(
                        f"{self.root} is a model store of format {found[:80]!r}; this "
                        f"fastplace reads {STORE_FORMAT!r}"
                    )
                return
            used = [self.root / "blocks", self.root / "models"]
            if not any(p.is_dir() and any(p.iterdir()) for p in used):
                write_atomic(marker, STORE_FORMAT + "\n")
                return
            if attempt == 0:
                continue  # a new store's creator writes FORMAT first: look once more
        raise StoreFormatError(
            f"{self.root} holds a model store of the first layout (xxh3-64 block "
            "addresses, no FORMAT file), whose blocks cannot be verified: put the "
            "versions into a new store (or delete this one and put them again)"
        )

    @property
    def blocks_dir(self) -> Path:
        """Directory of the content-addressed blocks."""
        return self.blocks.root

    def _model_dir(self, model: str, *, create: bool = False) -> Path:
        directory = self.root / "models" / check_model_name(model)
        if os.path.lexists(directory) and not _real_folder(directory):
            raise _planted(directory)
        if create:
            make_directories(directory)
        return directory

    @contextlib.contextmanager
    def _model_folder(self, model: str, *, create: bool = False) -> Iterator[int | None]:
        """The model's folder held open (None if it is missing and not ``create``): what
        is read or written there stays in that folder even if its name is swapped for a
        symlink meanwhile. OSError (ENOTDIR) if a symlink or file is there already."""
        directory = self._model_dir(model, create=create)
        try:
            handle = open_real_folder(directory)
        except FileNotFoundError:
            if create:
                raise
            yield None
            return
        except OSError as error:
            if error.errno in (errno.ELOOP, errno.ENOTDIR):
                raise _planted(directory) from None
            raise
        try:
            yield handle
        finally:
            os.close(handle)

    def read_block(self, address: str, size: int) -> bytes:
        """The block's bytes, checked against its address: FileNotFoundError if the
        store lacks it, CorruptBlock if its file is damaged."""
        data = self.blocks.read(address, size)
        if data is not None:
            return data
        if self.blocks.size(address) is None:
            raise FileNotFoundError(
                errno.ENOENT, "block is not in the store", str(self.blocks.path(address))
            )
        raise CorruptBlock(
            f"block {address} in the store is damaged (not {size} bytes with that "
            "SHA-256); put a version holding it again to repair it"
        )

    def _store_block(self, address: str, chunk: memoryview) -> None:
        """Writes a block unless a good copy is there; a bad copy is rewritten."""
        present = self.blocks.size(address)
        if present == len(chunk) and self.blocks.read(address, len(chunk)) is not None:
            return
        if present is not None:
            self.repairs.add(len(chunk))
            logger.warning("model store %s: block %s was damaged; rewrote it", self.root, address)
        self.blocks.write(address, chunk)

    def put(
        self,
        model: str,
        version: int,
        partitions: Sequence[Mapping[str, npt.NDArray[Any]]],
        *,
        memory_mb: int | Sequence[int],
        config: Mapping[str, Any] | None = None,
    ) -> VersionManifest:
        """Stores a version: every partition's blocks (those the store lacks, and good
        copies of any that are damaged there) and its manifest. ``memory_mb`` is each
        partition container's memory (one for all, or one per partition). Returns the
        manifest."""
        model = check_model_name(model)
        version = check_version(version)
        if not partitions:
            raise ValueError("a version needs at least one partition")
        memories = _per_partition(memory_mb, len(partitions))
        if len(memories) != len(partitions):
            raise ValueError(
                f"memory_mb has {len(memories)} values for {len(partitions)} partitions"
            )
        # Checked before any block is written: memory_mb is what a deployment books.
        memories = [as_amount(m, f"memory_mb[{i}]") for i, m in enumerate(memories)]
        manifest_dir = self._model_dir(model)  # refuses a planted link before any write
        manifests = []
        stored: set[str] = set()
        for index, (weights, memory) in enumerate(zip(partitions, memories, strict=True)):
            data, tensors = pack_weights(weights)
            if not data:
                raise ValueError(f"partition {index} holds no bytes")
            view = memoryview(data)
            chunks = [view[o : o + self.block_size] for o in range(0, len(data), self.block_size)]
            # Threads: hashing and fsync release the GIL, and concurrent fsyncs share
            # one journal commit (4 writers: ~0.5 ms a block here instead of ~3.6 ms).
            with ThreadPoolExecutor(_WRITERS) as pool:
                addresses = list(pool.map(block_address, chunks))
                new = {a: c for a, c in zip(addresses, chunks, strict=True) if a not in stored}
                for _ in pool.map(self._store_block, new, new.values()):
                    pass
            stored |= new.keys()
            sizes = [len(chunk) for chunk in chunks]
            manifests.append(
                PartitionManifest(
                    index=index,
                    memory_mb=memory,
                    tensors=tensors,
                    hashes=tuple(addresses),
                    sizes=tuple(sizes),
                )
            )
        manifest = VersionManifest(
            model, version, self.block_size, tuple(manifests), dict(config or {})
        )
        with self._model_folder(model, create=True) as folder:
            assert folder is not None
            write_atomic_in(folder, f"v{version}.json", manifest.to_json(), key=str(manifest_dir))
        return manifest

    def manifest(self, model: str, version: int) -> VersionManifest:
        """A stored version's manifest (KeyError if the store does not hold it,
        ValueError if the file there is not that version's manifest)."""
        name = f"v{check_version(version)}.json"
        path = self._model_dir(model) / name
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        missing = KeyError(f"the store holds no version {version} of model {model!r}")
        with self._model_folder(model) as folder:
            if folder is None:
                raise missing
            try:
                handle = os.open(name, flags, dir_fd=folder)
            except FileNotFoundError:
                raise missing from None
        with open(handle, encoding="utf-8") as file:
            if not stat.S_ISREG(os.fstat(handle).st_mode):
                raise OSError(errno.EINVAL, "not a regular file: not read", str(path))
            text = file.read()
        try:
            manifest = VersionManifest.from_json(text)
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from None
        if (manifest.model, manifest.version) != (model, version):
            raise ValueError(
                f"{path} holds the manifest of {manifest.model!r} v{manifest.version}, "
                f"not {model!r} v{version}"
            )
        return manifest

    def versions(self, model: str) -> list[int]:
        """The versions of ``model`` the store holds, ascending ([] for an unknown model)."""
        with self._model_folder(model) as folder:
            if folder is None:
                return []
            with os.scandir(folder) as entries:
                found = [_MANIFEST_NAME.fullmatch(entry.name) for entry in entries]
        return sorted(int(match.group(1)) for match in found if match)


def _mismatched(blocks: list[tuple[str, memoryview]]) -> list[tuple[str, memoryview]]:
    """The blocks whose bytes do not hash to their address."""
    return [(address, view) for address, view in blocks if block_address(view) != address]


def _as_store(store: ModelStore | str | os.PathLike[str]) -> ModelStore:
    return store if isinstance(store, ModelStore) else ModelStore(store)


@dataclass(frozen=True)
class ColdStart:
    """What one partition's start cost on its node."""

    node_id: str
    fetched_bytes: int
    """Bytes copied from the store (distinct blocks the node's cache lacked)."""
    fetched_blocks: tuple[str, ...]
    cached_bytes: int
    """Bytes of distinct blocks the node's cache already held."""
    fetch_s: float
    load_s: float
    """Assembling the weights from cached blocks and building the partition."""
    evicted_bytes: int = 0
    repaired_blocks: int = 0
    """Cached blocks found bad (damaged, truncated, replaced) and fetched again."""
    repaired_bytes: int = 0

    @property
    def seconds(self) -> float:
        """The whole cold start: fetch plus load."""
        return self.fetch_s + self.load_s


class NodeCache:
    """One node's block cache directory in front of the store.

    Nothing read from it is trusted: :meth:`load` checks every block against its
    address, and a bad one is fetched again (counted in :attr:`repairs`), never served.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.files = BlockFolder(directory, durable=False)  # every read is checked
        self.directory = self.files.root
        self.repairs = Repairs()
        """Bad cached blocks found (by fetch or load) and replaced from the store."""

    def has(self, block_hash: str) -> bool:
        """Whether the cache has a file for this block (not read, so not checked)."""
        size = self.files.size(block_hash)
        return size is not None and size != NOT_A_BLOCK_FILE

    def held(self) -> set[str]:
        """Addresses of every block file in the cache."""
        return self.files.addresses()

    def evict(self, hashes: Iterable[str]) -> int:
        """Deletes these blocks (those present); returns the bytes freed."""
        return sum(self.files.remove(address) for address in hashes)

    def _repair(self, address: str, size: int, why: str) -> None:
        self.repairs.add(size)
        logger.warning(
            "node cache %s: block %s was %s; fetched it again", self.directory, address, why
        )

    def fetch(
        self,
        store: ModelStore | str | os.PathLike[str],
        blocks: Mapping[str, int],
        *,
        bandwidth: float | None = None,
    ) -> tuple[list[str], int, int, float]:
        """Copies the blocks (address -> size) the cache lacks from the store, checking
        each one against its address; a cached file of the wrong size or kind is replaced
        (a repair). Returns (fetched addresses, fetched bytes, bytes already cached,
        seconds). ``bandwidth`` (bytes/s) paces the copy like a remote store would."""
        source = _as_store(store)
        if bandwidth is None:
            bandwidth = source.bandwidth
        with self._fetch_lock():  # the seconds count from here: copying, not waiting
            return self._fetch(source, blocks, bandwidth, time.perf_counter())

    @contextlib.contextmanager
    def _fetch_lock(self) -> Iterator[None]:
        """One fetch at a time per node cache, across processes (the partition actors of
        a node are processes): gangs of one version cold-starting together on a node
        would otherwise each copy the blocks none has yet, and every copy would count.
        Their node shares one link to the store anyway. Where ``fcntl`` is missing
        (not POSIX) fetches run unlocked, as before."""
        try:
            import fcntl
        except ImportError:  # pragma: no cover - POSIX only
            yield
            return
        fd = os.open(self.directory / FETCH_LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _fetch(
        self,
        source: ModelStore,
        blocks: Mapping[str, int],
        bandwidth: float | None,
        began: float,
    ) -> tuple[list[str], int, int, float]:
        fetched: list[str] = []
        fetched_bytes = cached_bytes = 0
        for address, size in blocks.items():
            present = self.files.size(address)
            if present == size:
                cached_bytes += size
                continue
            data = source.read_block(address, size)
            if present is not None:
                self._repair(address, size, "the wrong size or not a regular file")
            self.files.write(address, data)
            fetched.append(address)
            fetched_bytes += size
        if bandwidth is not None:
            remaining = fetched_bytes / bandwidth - (time.perf_counter() - began)
            if remaining > 0:
                time.sleep(remaining)
        return fetched, fetched_bytes, cached_bytes, time.perf_counter() - began

    def load(
        self,
        partition: PartitionManifest,
        store: ModelStore | str | os.PathLike[str] | None = None,
    ) -> dict[str, npt.NDArray[Any]]:
        """The partition's weights, assembled from cached blocks, each checked against
        its address. A missing or bad block is fetched again from ``store`` (and the
        cache file replaced); without a store, a bad block is removed from the cache and
        CorruptBlock raised (a missing one: FileNotFoundError)."""
        source = None if store is None else _as_store(store)
        buffer = bytearray(partition.total_bytes)
        bad: list[tuple[str, memoryview]] = []
        # This thread reads the block files into the buffer while the pool hashes what
        # it has read (readinto and hashlib release the GIL), in runs of >= 4 MiB so
        # that small blocks do not cost a task each.
        with ThreadPoolExecutor(_CHECKERS) as pool:
            checks = []
            run: list[tuple[str, memoryview]] = []
            run_bytes = offset = 0
            for address, size in zip(partition.hashes, partition.sizes, strict=True):
                view = memoryview(buffer)[offset : offset + size]
                offset += size
                if not self.files.fill(address, view):
                    bad.append((address, view))
                    continue
                run.append((address, view))
                run_bytes += size
                if run_bytes >= _CHECK_RUN_BYTES:
                    checks.append(pool.submit(_mismatched, run))
                    run, run_bytes = [], 0
            checks.append(pool.submit(_mismatched, run))
            for check in checks:
                bad += check.result()
        for address, view in bad:
            size = len(view)
            present = self.files.size(address)
            if source is None:
                if present is None:
                    raise FileNotFoundError(
                        errno.ENOENT, "block is not cached", str(self.files.path(address))
                    )
                self.files.remove(address)
                raise CorruptBlock(
                    f"cached block {address} is damaged (removed from the cache: fetch it again)"
                )
            data = source.read_block(address, size)
            view[:] = data
            self.files.write(address, data)
            self._repair(address, size, "missing" if present is None else "damaged")
        return unpack_weights(buffer, partition.tensors)

    def clear(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)
        make_directories(self.directory)
