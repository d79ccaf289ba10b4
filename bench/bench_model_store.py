"""What checking every block against its SHA-256 address costs when a node loads a model.

Run: PYTHONPATH=src python3 -m pytest bench/bench_model_store.py --benchmark-enable \
        --benchmark-only --benchmark-json=build/bench-model-store.json
     python3 bench/summarise.py build/bench-model-store.json

One partition of MODEL_MIB (512 MiB; FASTPLACE_BENCH_STORE_MIB overrides it) of random
weights is put into a store and fetched into a node cache, once per block size: 16 KiB
(the store's default, many small files) and 4 MiB (what production would use). Then,
in the same run, from the same cache files (warm in the page cache, the check's worst
case relative to the read; from a cold disk the read costs more and the check the same):

- ``unchecked``: the blocks assembled as NodeCache.load did before the check (open, one
  ``readinto`` per block): the baseline;
- ``checked``: :meth:`NodeCache.load`, which also checks size and SHA-256 of every block;
- ``sha256 only``: hashlib over the same bytes in memory, block by block (the check's
  floor on this CPU).

Each returns the weights (or digests), asserted against the stored ones. With
``--benchmark-disable`` (CI) the model is 4 MiB, so the checks still run there.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from fastplace.engines.ray.model_store import (
    ModelStore,
    NodeCache,
    PartitionManifest,
    unpack_weights,
)

MiB = 1 << 20
BLOCK_SIZES = [16 << 10, 4 << 20]


def model_mib(config: pytest.Config) -> int:
    enabled = config.getoption("benchmark_enable", default=False)
    if not enabled and config.getoption("benchmark_disable", default=True):
        return 4
    return int(os.environ.get("FASTPLACE_BENCH_STORE_MIB", "512"))


class Loaded:
    def __init__(self, root: Path, block_size: int, mib: int) -> None:
        rng = np.random.default_rng(0)
        self.weights = {"w": rng.integers(0, 2**32, mib * MiB // 4, dtype=np.uint32)}
        store = ModelStore(root / "store", block_size=block_size)
        self.part = store.put("bench", 1, [self.weights], memory_mb=mib).partitions[0]
        self.cache = NodeCache(root / "cache")
        self.cache.fetch(store, self.part.distinct_blocks())
        self.bytes = self.part.total_bytes
        self.block_size = block_size


@pytest.fixture(scope="module", params=BLOCK_SIZES, ids=lambda s: f"{s >> 10}KiB")
def loaded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Loaded:
    return Loaded(tmp_path_factory.mktemp("store"), request.param, model_mib(request.config))


def unchecked_load(cache: NodeCache, part: PartitionManifest) -> dict[str, npt.NDArray[Any]]:
    """NodeCache.load as it was before blocks were checked: read, never verify."""
    buffer = bytearray(part.total_bytes)
    offset = 0
    for address, size in zip(part.hashes, part.sizes, strict=True):
        with open(cache.files.path(address), "rb") as file:
            if file.readinto(memoryview(buffer)[offset : offset + size]) != size:
                raise OSError(f"cached block {address} is truncated")
        offset += size
    return unpack_weights(buffer, part.tensors)


def _setup(benchmark: Any, loaded: Loaded, *, baseline: bool = False) -> None:
    block = loaded.part.sizes[0]
    benchmark.group = f"load {loaded.bytes // MiB} MiB in {block >> 10} KiB blocks"
    benchmark.extra_info["bytes"] = loaded.bytes
    benchmark.extra_info["baseline"] = baseline


def test_load_unchecked(benchmark: Any, loaded: Loaded) -> None:
    _setup(benchmark, loaded, baseline=True)
    got = benchmark.pedantic(unchecked_load, (loaded.cache, loaded.part), rounds=5)
    assert np.array_equal(got["w"], loaded.weights["w"])


def test_load_checked(benchmark: Any, loaded: Loaded) -> None:
    _setup(benchmark, loaded)
    got = benchmark.pedantic(loaded.cache.load, (loaded.part,), rounds=5)
    assert np.array_equal(got["w"], loaded.weights["w"])
    assert loaded.cache.repairs.blocks == 0


def test_sha256_only(benchmark: Any, loaded: Loaded) -> None:
    _setup(benchmark, loaded)
    data = memoryview(loaded.weights["w"]).cast("B")
    size = loaded.part.sizes[0]

    def digests() -> list[str]:
        return [hashlib.sha256(data[o : o + size]).hexdigest() for o in range(0, len(data), size)]

    assert benchmark.pedantic(digests, rounds=5) == list(loaded.part.hashes)


# ---- writes: a node cache's fetch, by folder descriptor against by path -------------
# NodeCache.fetch writes each block inside its <hh> folder held open
# (fastplace._atomic.write_atomic_in, so a symlink swapped in cannot redirect it). The
# baseline writes the same blocks by path (write_atomic after an lstat of the folder,
# as BlockFolder.write did before). Blocks of 16 KiB, where per-file costs show most.

WRITE_MIB = 8


def _blocks(loaded: Loaded) -> list[tuple[str, bytes]]:
    blocks = loaded.cache.files
    return [(a, blocks.read(a, s) or b"") for a, s in loaded.part.distinct_blocks().items()]


def _write_by_path(root: Path, blocks: list[tuple[str, bytes]]) -> None:
    from fastplace._atomic import make_directories, write_atomic

    for address, data in blocks:
        folder = root / address[:2]
        try:
            os.lstat(folder)
        except FileNotFoundError:
            make_directories(folder)
        write_atomic(folder / address, data, durable=False)


def _fetch(root: Path, blocks: list[tuple[str, bytes]]) -> None:
    from fastplace.engines.ray.block_files import BlockFolder

    folder = BlockFolder(root, durable=False)
    for address, data in blocks:
        folder.write(address, data)


@pytest.mark.parametrize("way", ["by path", "held open"])
def test_cache_block_writes(benchmark: Any, loaded: Loaded, tmp_path: Path, way: str) -> None:
    if loaded.block_size != BLOCK_SIZES[0]:
        pytest.skip("writes are measured in 16 KiB blocks")
    blocks = _blocks(loaded)[: WRITE_MIB * MiB // BLOCK_SIZES[0]]
    roots: list[Path] = []
    benchmark.group = f"cache writes: {len(blocks)} blocks of 16 KiB"
    benchmark.extra_info["baseline"] = way == "by path"
    write = _write_by_path if way == "by path" else _fetch

    def fresh() -> tuple[tuple[Path, list[tuple[str, bytes]]], dict[str, Any]]:
        roots.append(tmp_path / f"round-{len(roots)}")
        return (roots[-1], blocks), {}

    benchmark.pedantic(write, setup=fresh, rounds=5)
    assert all((roots[-1] / a[:2] / a).read_bytes() == d for a, d in blocks)
