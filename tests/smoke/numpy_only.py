"""Smoke test of fastplace with its core dependency (numpy) and nothing else.

``.ci/run`` installs the repaired wheel into a fresh venv that has numpy only and no
compiler or cmake on PATH, and runs ``python numpy_only.py --installed-wheel`` there.
``tests/test_extras.py`` runs it in the test suite too, with the optional modules
hidden, so it cannot rot between CI runs.

It checks that placement, the simulator and the greedy packing policies work, that no
optional dependency is importable (so nothing above used one), and that the parts that
need an extra say which one. It exits non-zero on the first failed check.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import shutil
import sys
from pathlib import Path

import numpy as np

import fastplace
from fastplace import BlockIndex, Cluster, ServerAllocator
from fastplace.extras import MissingExtra
from fastplace.packing import verify_packing
from fastplace.sim import SimConfig, compare, load_workload, synthetic_workload

OPTIONAL = (
    "numba",
    "llvmlite",
    "xxhash",
    "torch",
    "safetensors",
    "rich",
    "matplotlib",
    "ray",
    "prometheus_client",
)
"""Modules only fastplace's extras install."""
TOOLS = ("gcc", "g++", "cc", "c++", "clang", "clang++", "cmake", "ninja")
"""Build tools a portable wheel must not need at install or import time."""
GREEDY_PACKING = ("first_fit", "first_fit_decreasing", "best_fit_decreasing", "dot_product")


def check_optional_modules_absent() -> None:
    for name in OPTIONAL:
        try:
            importlib.import_module(name)
        except ImportError:
            continue
        raise AssertionError(f"{name} is importable: this must run with numpy alone")


def check_installed_wheel() -> None:
    """The venv holds the wheel, not a source tree, and cannot compile anything."""
    found = {tool: shutil.which(tool) for tool in TOOLS}
    assert not any(found.values()), f"build tools on PATH: {found}"
    location = Path(fastplace.__file__).resolve()
    assert "site-packages" in location.parts, f"fastplace imported from {location}"
    requires = importlib.metadata.requires("fastplace") or []
    core = sorted(r for r in requires if "extra ==" not in r)
    assert [r.split(">")[0].split("=")[0].strip() for r in core] == ["numpy"], core
    assert fastplace.__version__ == importlib.metadata.version("fastplace")


def check_cluster() -> None:
    cluster = Cluster([[65536, 40000], [65536, 40000], [32768, 20000]])
    request = [3008, fastplace.cpu_for_memory(3008)]
    server = cluster.first_fit(request)
    assert server == 0, server
    container = cluster.place(server, request)
    gang = cluster.place_gang([[10240, 5789], [4096, 2315], [4096, 2315]])
    assert len(gang) == 3, gang
    data = cluster.snapshot()
    restored = Cluster.restore(data)
    assert np.array_equal(restored.free, cluster.free)
    restored.validate()
    cluster.release(container)
    assert not np.array_equal(restored.free, cluster.free)
    try:
        cluster.place_gang([[65536, 40000]] * 4)
    except ValueError:
        pass
    else:
        raise AssertionError("a gang larger than the cluster was placed")
    cluster.validate()


def check_block_index() -> None:
    blocks = BlockIndex(4, 1 << 20)
    ids = blocks.intern([11, 12, 13], [1000, 2000, 3000])
    assert blocks.fetch(1, ids) == 6000
    assert blocks.fetch(1, ids) == 0  # cached now
    assert blocks.cached_bytes_on([0, 1], ids).tolist() == [0, 6000]
    BlockIndex.restore(blocks.snapshot()).validate()


def check_simulation() -> None:
    config = SimConfig(servers=30, duration_s=60)
    workload = synthetic_workload(duration_s=60, n_models=4, total_rate=20)
    results = compare(config, workload, ["first_fit", "best_fit"])
    assert sorted(results) == ["best_fit", "first_fit"], sorted(results)
    for name, metrics in results.items():
        assert metrics["requests"] > 0 and metrics["placements"] > 0, (name, metrics)
    trace = load_workload("azure2019", duration_s=60)
    assert compare(config, trace, ["first_fit"])["first_fit"]["requests"] > 0


def check_request_log() -> None:
    """The shipped request log is in the package, and `fastplace simulate` replays it."""
    import contextlib
    import io
    import json
    import tempfile

    from fastplace.cli import main as cli
    from fastplace.sim.request_log import small_request_log

    log = small_request_log()
    assert log.is_file(), f"{log} is not in the package"
    with tempfile.TemporaryDirectory() as out:
        argv = ["simulate", "--workload", str(log), "--policies", "first_fit", "--servers", "40"]
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            status = cli([*argv, "--duration", "60", "--out", out])
        assert status == 0, status
        metrics = json.loads((Path(out) / "metrics.json").read_text())
    assert metrics["policies"]["first_fit"]["requests"] > 100, metrics


def check_packing() -> None:
    rng = np.random.default_rng(0)
    capacity = np.array([100, 100, 100])
    items = rng.integers(5, 60, size=(40, 3))
    for policy in GREEDY_PACKING:
        assignment = fastplace.pack(capacity, items, policy=policy)
        assert verify_packing(capacity, items, assignment) >= 1, policy


def check_allocator() -> None:
    cluster = Cluster(np.tile([65536, 40000], (10, 1)))
    allocator = ServerAllocator(cluster, optimizer=False)
    decision = allocator.allocate([3008, 1700])
    assert decision.source == "greedy" and decision.server == 0, decision
    allocator.release(decision.container)
    assert np.array_equal(cluster.free, cluster.capacity)

    # The shipped RO without torch: its native twin (default.npz) decides in the core.
    allocator = ServerAllocator(Cluster(np.tile([65536, 40000], (10, 1))), budget_us=10**6)
    decisions = [allocator.allocate([3008, 1700]) for _ in range(5)]
    assert all(d.source == "ro" for d in decisions), decisions
    assert allocator.stats().as_dict()["by_source"]["ro"] == 5


def expect_missing_extra(call: object, extra: str) -> None:
    assert callable(call)
    try:
        call()
    except MissingExtra as error:
        message = str(error)
        assert f"pip install 'fastplace[{extra}]'" in message, message
        assert isinstance(error, ModuleNotFoundError)
        return
    raise AssertionError(f"{call} ran without the [{extra}] extra")


def check_saved_fingerprints_compare() -> None:
    """Fingerprints made elsewhere (with the extra) load and compare with numpy alone."""
    from fastplace.blocks import Chunking, Fingerprints, similarity

    offsets, sizes = np.array([0, 10, 20]), np.array([10, 10, 10])
    old = Fingerprints(np.array([1, 2, 3], dtype=np.uint64), offsets, sizes, 30, Chunking.fixed(10))
    new = Fingerprints(np.array([1, 5, 3], dtype=np.uint64), offsets, sizes, 30, Chunking.fixed(10))
    assert similarity(old, new).shared_bytes == 20


def check_extras_named() -> None:
    from fastplace.blocks import fingerprint

    data = bytes(range(256)) * 1024
    expect_missing_extra(lambda: fingerprint(data), "blocks")
    expect_missing_extra(lambda: fingerprint(data, cdc=True), "blocks")
    items = [[3, 3], [7, 7]]
    expect_missing_extra(lambda: fastplace.pack([10, 10], items, policy="best"), "blocks")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--installed-wheel",
        action="store_true",
        help="also check that fastplace comes from an installed wheel and no compiler is on PATH",
    )
    args = parser.parse_args()
    checks = [check_optional_modules_absent]
    if args.installed_wheel:
        checks.append(check_installed_wheel)
    checks += [
        check_cluster,
        check_block_index,
        check_simulation,
        check_request_log,
        check_packing,
        check_allocator,
        check_saved_fingerprints_compare,
        check_extras_named,
        check_optional_modules_absent,  # again: nothing above imported one after all
    ]
    for check in checks:
        check()
        print(f"ok  {check.__name__}")
    where = Path(fastplace.__file__).parent
    print(f"fastplace {fastplace.__version__} from {where}: smoke test passed")


if __name__ == "__main__":
    sys.exit(main())
