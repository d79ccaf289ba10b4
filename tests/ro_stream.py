"""One seeded request stream through the shipped RO, for comparing decision paths
(imported by tests and, with torch blocked, by their subprocesses)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import numpy as np

#: Run first in a subprocess to make ``import torch`` (and torch.*) fail as if absent.
BLOCK_TORCH = (
    "import sys, importlib.abc\n"
    "class _NoTorch(importlib.abc.MetaPathFinder):\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name == 'torch' or name.startswith('torch.'):\n"
    "            raise ModuleNotFoundError(f'No module named {name!r} (blocked by the test)')\n"
    "        return None\n"
    "sys.meta_path.insert(0, _NoTorch())\n"
)


def decisions(seed: int = 7, n_servers: int = 120, steps: int = 600) -> dict[str, Any]:
    """Allocations and releases on a heterogeneous cluster with cached blocks, through
    ``ServerAllocator(cluster)`` (the shipped RO; unlimited budget, so that no decision
    depends on this machine's speed). Returns the decisions and the allocator's view."""
    from fastplace import BlockIndex, Cluster, ServerAllocator

    rng = np.random.default_rng(seed)
    cluster = Cluster(
        np.column_stack(
            [
                rng.choice([8192, 16384, 65536], n_servers),
                rng.choice([4000, 8000, 40000], n_servers),
            ]
        )
    )
    blocks = BlockIndex(n_servers, 1 << 14)
    versions = [
        np.asarray(
            blocks.intern(rng.integers(0, 2**63, 8, dtype=np.uint64), rng.integers(50, 900, 8))
        )
        for _ in range(5)
    ]
    for _ in range(300):
        blocks.fetch(int(rng.integers(0, n_servers)), versions[int(rng.integers(0, 5))])
    allocator = ServerAllocator(cluster, budget_us=float("inf"), blocks=blocks)
    live: list[int] = []
    out: list[list[Any]] = []
    for step in range(steps):
        if live and rng.random() < 0.35:
            allocator.release(live.pop(int(rng.integers(0, len(live)))))
            continue
        request = [int(rng.integers(64, 6000)), int(rng.integers(10, 3000))]
        version = versions[int(rng.integers(0, 5))] if step % 2 else None
        decision = allocator.allocate(request, version)
        out.append([decision.server, decision.source, decision.reason, decision.ro_server])
        if decision.container >= 0:
            live.append(decision.container)
    return {
        "decisions": out,
        "optimizer": type(allocator.optimizer).__name__,
        "native": allocator.native,
        "stats": allocator.stats().as_dict(),
        "torch_imported": "torch" in sys.modules,
    }


def run_without_torch(code: str) -> Any:
    """Runs ``code`` (which must print one JSON value last) in a fresh interpreter where
    torch cannot be imported, with this directory importable; returns that value."""
    here = os.path.dirname(os.path.abspath(__file__))
    program = BLOCK_TORCH + f"sys.path.insert(0, {here!r})\n" + code
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])
