"""The model store (content-addressed blocks) and the per-node block caches.

The store is a directory standing for remote storage (S3, GCS ...)::

    <store>/blocks/<hh>/<hash:016x>      one file per distinct block (xxh3-64 of its bytes)
    <store>/models/<model>/v<version>.json   the version's manifest

A partition's weights are serialised as its tensors' raw bytes, concatenated in name
order (the layout is in the manifest), and cut into fixed-size blocks with
:func:`fastplace.blocks.fingerprint`. Versions of one architecture keep every tensor at
the same offset, so a block a retraining did not touch has the same hash in both
versions and is stored, fetched and cached once.

Each node has a block cache, a directory (``<cache root>/<node id>/``) in front of the
store. A starting partition fetches only the blocks its node's cache lacks
(:meth:`NodeCache.fetch`), then assembles its weights from the cached blocks
(:meth:`NodeCache.load`). Writes are atomic (temporary file, then rename), so two
partitions starting on one node at once never see half a block.

The store must be reachable from every node (here: a shared directory; the cache root
is per node). Only numpy and xxhash are needed: partitions never import torch.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import xxhash

from fastplace._checks import integer
from fastplace.blocks import fingerprint
from fastplace.resources import as_amount

__all__ = [
    "DEFAULT_BLOCK_SIZE",
    "ColdStart",
    "ModelStore",
    "NodeCache",
    "PartitionManifest",
    "TensorInfo",
    "VersionManifest",
    "pack_weights",
]

DEFAULT_BLOCK_SIZE = 16 << 10
"""Small models (tests, the demo) need small blocks; production would use MiBs."""
FORMAT = "fastplace-ray-model-1"


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
    hashes: tuple[int, ...]
    sizes: tuple[int, ...]

    @property
    def total_bytes(self) -> int:
        return sum(self.sizes)

    def distinct_blocks(self) -> dict[int, int]:
        """Hash -> size of each distinct block (what a cold start may need to fetch)."""
        return dict(zip(self.hashes, self.sizes, strict=True))


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
                        "hashes": [f"{h:016x}" for h in part.hashes],
                        "sizes": list(part.sizes),
                    }
                    for part in self.partitions
                ],
            },
            indent=1,
        )

    @classmethod
    def from_json(cls, text: str) -> VersionManifest:
        data = json.loads(text)
        if data.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} manifest (format = {data.get('format')!r})")
        return cls(
            model=data["model"],
            version=int(data["version"]),
            block_size=int(data["block_size"]),
            config=data["config"],
            partitions=tuple(
                PartitionManifest(
                    index=int(part["index"]),
                    memory_mb=as_amount(part["memory_mb"], "manifest memory_mb"),
                    tensors=tuple(
                        TensorInfo(
                            t["name"], t["dtype"], tuple(t["shape"]), t["offset"], t["nbytes"]
                        )
                        for t in part["tensors"]
                    ),
                    hashes=tuple(int(h, 16) for h in part["hashes"]),
                    sizes=tuple(int(s) for s in part["sizes"]),
                )
                for part in data["partitions"]
            ),
        )


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


def block_name(block_hash: int) -> str:
    return f"{block_hash:016x}"


def _block_path(root: Path, block_hash: int) -> Path:
    name = block_name(block_hash)
    return root / name[:2] / name


def _write_atomically(path: Path, data: bytes | memoryview) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(temporary, "wb") as file:
        file.write(data)
    os.replace(temporary, path)


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
        ``block_size`` bytes."""
        block_size = integer(block_size, "block_size", minimum=1)
        if bandwidth is not None and not bandwidth > 0:
            raise ValueError(f"bandwidth = {bandwidth} must be > 0 bytes/s")
        self.root = Path(root)
        self.block_size = block_size
        self.bandwidth = bandwidth
        (self.root / "blocks").mkdir(parents=True, exist_ok=True)
        (self.root / "models").mkdir(parents=True, exist_ok=True)

    @property
    def blocks_dir(self) -> Path:
        """Directory of the content-addressed blocks."""
        return self.root / "blocks"

    def _manifest_path(self, model: str, version: int) -> Path:
        if not model or "/" in model or model.startswith("."):
            raise ValueError(f"model = {model!r} must be a plain name")
        return self.root / "models" / model / f"v{int(version)}.json"

    def put(
        self,
        model: str,
        version: int,
        partitions: Sequence[Mapping[str, npt.NDArray[Any]]],
        *,
        memory_mb: int | Sequence[int],
        config: Mapping[str, Any] | None = None,
    ) -> VersionManifest:
        """Stores a version: every partition's blocks (those not stored yet) and its
        manifest. ``memory_mb`` is each partition container's memory (one for all, or
        one per partition). Returns the manifest."""
        if not partitions:
            raise ValueError("a version needs at least one partition")
        memories = _per_partition(memory_mb, len(partitions))
        if len(memories) != len(partitions):
            raise ValueError(
                f"memory_mb has {len(memories)} values for {len(partitions)} partitions"
            )
        # Checked before any block is written: memory_mb is what a deployment books.
        memories = [as_amount(m, f"memory_mb[{i}]") for i, m in enumerate(memories)]
        manifests = []
        for index, (weights, memory) in enumerate(zip(partitions, memories, strict=True)):
            data, tensors = pack_weights(weights)
            if not data:
                raise ValueError(f"partition {index} holds no bytes")
            prints = fingerprint(data, block_size=min(self.block_size, len(data)))
            view = memoryview(data)
            for block_hash, offset, size in zip(
                prints.hashes.tolist(), prints.offsets.tolist(), prints.sizes.tolist(), strict=True
            ):
                path = _block_path(self.blocks_dir, block_hash)
                if not path.exists():
                    _write_atomically(path, view[offset : offset + size])
            manifests.append(
                PartitionManifest(
                    index=index,
                    memory_mb=memory,
                    tensors=tensors,
                    hashes=tuple(prints.hashes.tolist()),
                    sizes=tuple(prints.sizes.tolist()),
                )
            )
        manifest = VersionManifest(
            model, int(version), self.block_size, tuple(manifests), dict(config or {})
        )
        path = self._manifest_path(model, version)
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_atomically(path, manifest.to_json().encode())
        return manifest

    def manifest(self, model: str, version: int) -> VersionManifest:
        """A stored version's manifest (KeyError if the store does not hold it)."""
        path = self._manifest_path(model, version)
        try:
            return VersionManifest.from_json(path.read_text())
        except FileNotFoundError:
            raise KeyError(f"the store holds no version {version} of model {model!r}") from None

    def versions(self, model: str) -> list[int]:
        """The versions of ``model`` the store holds, ascending ([] for an unknown model)."""
        directory = self.root / "models" / model
        if not directory.is_dir():
            return []
        return sorted(int(p.stem[1:]) for p in directory.glob("v*.json"))


@dataclass(frozen=True)
class ColdStart:
    """What one partition's start cost on its node."""

    node_id: str
    fetched_bytes: int
    """Bytes copied from the store (distinct blocks the node's cache lacked)."""
    fetched_blocks: tuple[int, ...]
    cached_bytes: int
    """Bytes of distinct blocks the node's cache already held."""
    fetch_s: float
    load_s: float
    """Assembling the weights from cached blocks and building the partition."""
    evicted_bytes: int = 0

    @property
    def seconds(self) -> float:
        """The whole cold start: fetch plus load."""
        return self.fetch_s + self.load_s


class NodeCache:
    """One node's block cache directory in front of the store."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    def has(self, block_hash: int) -> bool:
        return _block_path(self.directory, block_hash).exists()

    def held(self) -> set[int]:
        """Hashes of every block in the cache."""
        return {
            int(path.name, 16)
            for path in self.directory.glob("*/*")
            if not path.name.endswith(".tmp")
        }

    def evict(self, hashes: Iterable[int]) -> int:
        """Deletes these blocks (those present); returns the bytes freed."""
        freed = 0
        for block_hash in hashes:
            path = _block_path(self.directory, block_hash)
            try:
                freed += path.stat().st_size
                path.unlink()
            except FileNotFoundError:
                pass
        return freed

    def fetch(
        self,
        store: ModelStore | str | os.PathLike[str],
        blocks: Mapping[int, int],
        *,
        bandwidth: float | None = None,
    ) -> tuple[list[int], int, int, float]:
        """Copies the blocks (hash -> size) the cache lacks from the store, checking
        each one's hash. Returns (fetched hashes, fetched bytes, bytes already cached,
        seconds). ``bandwidth`` (bytes/s) paces the copy like a remote store would."""
        source = store.blocks_dir if isinstance(store, ModelStore) else Path(store) / "blocks"
        if isinstance(store, ModelStore) and bandwidth is None:
            bandwidth = store.bandwidth
        began = time.perf_counter()
        fetched: list[int] = []
        fetched_bytes = cached_bytes = 0
        for block_hash, size in blocks.items():
            target = _block_path(self.directory, block_hash)
            if target.exists():
                cached_bytes += size
                continue
            data = _block_path(source, block_hash).read_bytes()
            if len(data) != size or xxhash.xxh3_64_intdigest(data) != block_hash:
                raise OSError(f"block {block_name(block_hash)} in the store is damaged")
            _write_atomically(target, data)
            fetched.append(block_hash)
            fetched_bytes += size
        if bandwidth is not None:
            remaining = fetched_bytes / bandwidth - (time.perf_counter() - began)
            if remaining > 0:
                time.sleep(remaining)
        return fetched, fetched_bytes, cached_bytes, time.perf_counter() - began

    def load(self, partition: PartitionManifest) -> dict[str, npt.NDArray[Any]]:
        """The partition's weights, assembled from cached blocks (FileNotFoundError if
        one is missing)."""
        buffer = bytearray(partition.total_bytes)
        offset = 0
        for block_hash, size in zip(partition.hashes, partition.sizes, strict=True):
            with open(_block_path(self.directory, block_hash), "rb") as file:
                if file.readinto(memoryview(buffer)[offset : offset + size]) != size:
                    raise OSError(f"cached block {block_name(block_hash)} is truncated")
            offset += size
        return unpack_weights(buffer, partition.tensors)

    def clear(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)
        self.directory.mkdir(parents=True, exist_ok=True)
