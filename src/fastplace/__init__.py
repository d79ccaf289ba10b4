"""fastplace: microsecond placement of distributed-inference containers on serverless clusters.

Importing fastplace loads only numpy and the native core; numba (blocks), torch
(optimizer) and matplotlib are imported by the submodules that need them, and a part
whose extra is not installed raises :class:`MissingExtra` naming it (see
:mod:`fastplace.extras`).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from fastplace.allocator import Decision, ServerAllocator
from fastplace.block_index import BlockIndex
from fastplace.cluster import (
    Cluster,
    ClusterInvariantError,
    CorruptSnapshot,
    ReplayOp,
    ReplayResult,
)
from fastplace.extras import MissingExtra
from fastplace.packing import pack, read_vbp
from fastplace.resources import DEFAULT_RESOURCES, MB_PER_VCPU, cpu_for_memory

try:
    __version__ = version("fastplace")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0+source"

__all__ = [
    "DEFAULT_RESOURCES",
    "MB_PER_VCPU",
    "BlockIndex",
    "Cluster",
    "ClusterInvariantError",
    "CorruptSnapshot",
    "Decision",
    "MissingExtra",
    "ReplayOp",
    "ReplayResult",
    "ServerAllocator",
    "__version__",
    "cpu_for_memory",
    "pack",
    "read_vbp",
]
