"""VersionBlocks: the blocks of every version, whatever order versions are asked in.

A plain reference builds each version from version 0 step by step and interns whole
files into its own BlockIndex; VersionBlocks (versions built from the nearest kept one,
only changed blocks interned, a few versions kept) must give the same hashes and ids.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from fastplace.block_index import BlockIndex
from fastplace.sim.versions import VersionBlocks
from fastplace.sim.workload import DIModel, Partition, Workload

MIB = 1 << 20
BLOCK = MIB


def two_partition_workload(changed: float) -> Workload:
    model = DIModel(
        name="m",
        partitions=(
            Partition(memory_mb=256, cpu_millis=145, file_bytes=65 * MIB + 7),
            Partition(memory_mb=128, cpu_millis=73, file_bytes=9 * MIB),
        ),
        changed_fraction=changed,
    )
    return Workload(
        name="versions",
        models=(model,),
        arrival_s=np.zeros(1),
        arrival_model=np.zeros(1, dtype=np.int32),
        service_s=np.zeros(1),
    )


def reference_hashes(
    blocks: VersionBlocks, workload: Workload, partition: int, version: int
) -> np.ndarray:
    spec = workload.models[0]
    n = -(-spec.partitions[partition].file_bytes // BLOCK)
    hashes = np.zeros(0, dtype=np.uint64)
    for v in range(version + 1):
        rng = blocks._rng(0, partition, v)
        if v == 0:
            hashes = rng.integers(0, 2**63, size=n, dtype=np.uint64)
        else:
            hashes = hashes.copy()
            changed = blocks._changed_runs(n, spec.changed_fraction, rng)
            hashes[changed] = rng.integers(0, 2**63, size=int(changed.sum()), dtype=np.uint64)
    return hashes


@settings(max_examples=40)
@given(
    asks=st.lists(st.tuples(st.integers(0, 1), st.integers(0, 40)), min_size=1, max_size=25),
    changed=st.sampled_from([0.0, 0.2, 0.65, 1.0]),
)
def test_versions_in_any_order_match_the_reference(
    asks: list[tuple[int, int]], changed: float
) -> None:
    workload = two_partition_workload(changed)
    index, reference_index = BlockIndex(2, 1 << 30), BlockIndex(2, 1 << 30)
    blocks = VersionBlocks(workload, index, block_bytes=BLOCK)
    for partition, version in asks:
        expected = reference_hashes(blocks, workload, partition, version)
        assert np.array_equal(blocks.hashes(0, partition, version), expected)
        sizes = blocks._sizes(workload.models[0].partitions[partition].file_bytes)
        expected_ids = reference_index.intern(expected, sizes)
        assert blocks.ids(0, partition, version).tolist() == expected_ids.tolist()
    assert index.n_blocks == reference_index.n_blocks
