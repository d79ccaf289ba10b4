"""Integer parameters of the public Python API refuse bools and floats; amounts follow requests.

Issue 15, finding 7 (the Python half): ``cpu_for_memory(1.5)`` returned 1, and counts,
sizes and seeds took ``True`` as 1 and ``1.5`` as whatever the code did with it. Every
integer parameter goes through :func:`fastplace._checks.integer` (numpy integers
accepted, TypeError naming the parameter and the value otherwise); resource amounts go
through :func:`fastplace.resources.as_amount`, which takes what ``Cluster.place`` takes.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import fastplace
from child_process import child_env
from fastplace import BlockIndex, Cluster, ServerAllocator, cpu_for_memory, pack, synthetic
from fastplace.sim import SimConfig, load_workload, synthetic_workload
from fastplace.sim.policies import LocalityFit, Similarity
from fastplace.sim.workload import Partition


@dataclass(frozen=True)
class Param:
    """One integer parameter: ``call(value)`` passes value to it, all else valid."""

    where: str
    param: str
    call: Callable[[Any], object]
    valid: int = 1
    #: Whether call(valid) is cheap and self-contained (no Ray cluster, no training).
    accepts: bool = True

    def __repr__(self) -> str:
        return f"{self.where}({self.param})"


def _blocks() -> Any:
    return pytest.importorskip("fastplace.blocks", reason="needs fastplace[blocks]")


def _fingerprint(**kwargs: Any) -> object:
    return _blocks().fingerprint(bytes(range(256)) * 1024, **kwargs)


def _ray_engine(name: str) -> Any:
    pytest.importorskip("xxhash")
    import importlib

    return importlib.import_module(f"fastplace.engines.ray.{name}")


def _optimizer(name: str) -> Any:
    import importlib

    return importlib.import_module(f"fastplace.optimizer.{name}")


def _train_config(**kwargs: Any) -> object:
    pytest.importorskip("torch")
    return _optimizer("train").TrainConfig(**kwargs)


def _improve(**kwargs: Any) -> object:
    pytest.importorskip("numba")
    from fastplace.packing.local_search import improve

    items = np.array([[5], [5]])
    return improve(items, np.array([10]), np.array([0, 1]), **kwargs)


def _candidates(k: Any) -> object:
    cluster = Cluster([[10, 10]])
    return _optimizer("features").candidates(cluster, None, [1, 1], [], k=k)


def _decision(k: Any) -> object:
    cluster = Cluster([[10, 10]])
    return _optimizer("features").decision(cluster, None, [1, 1], [], k=k)


CAPACITY = np.array([[16384, 8000]] * 4)

PARAMS = [
    # fastplace.__all__
    Param("ServerAllocator", "k", lambda v: ServerAllocator(Cluster([[10, 10]]), False, k=v)),
    Param(
        "ServerAllocator",
        "feedback_size",
        lambda v: ServerAllocator(Cluster([[10, 10]]), False, feedback_size=v),
    ),
    Param("BlockIndex", "n_servers", lambda v: BlockIndex(v, 1)),
    Param("BlockIndex", "cache_bytes", lambda v: BlockIndex(2, v)),
    Param("BlockIndex.add_servers", "n_servers", lambda v: BlockIndex(1, 1).add_servers(v, 1)),
    Param("pack", "seed", lambda v: pack([10], [[1]], "first_fit", seed=v)),
    # sim config, models, workloads, policies
    Param("SimConfig", "servers", lambda v: SimConfig(servers=v)),
    Param("SimConfig", "block_bytes", lambda v: SimConfig(block_bytes=v)),
    Param("SimConfig", "cache_bytes", lambda v: SimConfig(cache_bytes=v)),
    Param("SimConfig", "seed", lambda v: SimConfig(seed=v)),
    Param("Partition", "file_bytes", lambda v: Partition(512, 289, v)),
    Param("synthetic_workload", "n_models", lambda v: synthetic_workload(n_models=v, duration_s=1)),
    Param("synthetic_workload", "seed", lambda v: synthetic_workload(seed=v, duration_s=1)),
    Param("load_workload", "seed", lambda v: load_workload("synthetic", duration_s=1, seed=v)),
    Param("Similarity", "max_per_server", lambda v: Similarity(max_per_server=v)),
    Param("LocalityFit", "window", lambda v: LocalityFit(window=v)),
    # fastplace.synthetic
    Param("synthetic_capacity", "n_servers", lambda v: synthetic.synthetic_capacity(v)),
    Param("synthetic_capacity", "seed", lambda v: synthetic.synthetic_capacity(2, seed=v)),
    Param("container_requests", "n", lambda v: synthetic.container_requests(v)),
    Param("container_requests", "seed", lambda v: synthetic.container_requests(2, seed=v)),
    Param("churn_stream", "n_places", lambda v: synthetic.churn_stream(CAPACITY, v)),
    Param("churn_stream", "seed", lambda v: synthetic.churn_stream(CAPACITY, 4, seed=v)),
    Param("cluster_in_state", "n_servers", lambda v: synthetic.cluster_in_state("churned", v)),
    Param("cluster_in_state", "seed", lambda v: synthetic.cluster_in_state("churned", 4, seed=v)),
    # fastplace.blocks sizes
    Param("fingerprint", "block_size", lambda v: _fingerprint(block_size=v), valid=4096),
    Param("fingerprint", "window", lambda v: _fingerprint(window=v), valid=8192),
    Param("fingerprint", "threads", lambda v: _fingerprint(threads=v)),
    Param(
        "fingerprint",
        "min_size",
        lambda v: _fingerprint(cdc=True, block_size=4096, min_size=v),
        valid=64,
    ),
    Param(
        "fingerprint",
        "max_size",
        lambda v: _fingerprint(cdc=True, block_size=4096, max_size=v),
        valid=8192,
    ),
    Param("fingerprint", "hash_bits", lambda v: _fingerprint(hash_bits=v), valid=64),
    Param("CDCParams", "avg_size", lambda v: _blocks().CDCParams(64, v, 8192), valid=1024),
    Param(
        "CDCParams.from_average", "avg_size", lambda v: _blocks().CDCParams.from_average(v), 1024
    ),
    Param("Chunking.fixed", "block_size", lambda v: _blocks().Chunking.fixed(v)),
    # packing options
    Param("improve", "seed", lambda v: _improve(seed=v)),
    Param("improve", "max_iterations", lambda v: _improve(max_iterations=v)),
    Param("improve", "attempts", lambda v: _improve(attempts=v)),
    # optimizer options
    Param("candidates", "k", _candidates),
    Param("decision", "k", _decision),
    Param("RO", "k", lambda v: _optimizer("policy").RO(k=v)),
    Param("EnvConfig", "servers", lambda v: _optimizer("env").EnvConfig(servers=v)),
    Param("EnvConfig", "k", lambda v: _optimizer("env").EnvConfig(k=v)),
    Param("EnvConfig", "max_steps", lambda v: _optimizer("env").EnvConfig(max_steps=v)),
    Param("TrainConfig", "episodes", lambda v: _train_config(episodes=v)),
    Param("TrainConfig", "batch", lambda v: _train_config(batch=v)),
    Param("TrainConfig", "seed", lambda v: _train_config(seed=v)),
    Param("TrainConfig", "hidden[0]", lambda v: _train_config(hidden=(v, 8))),
    Param(
        "FeedbackTrainer",
        "min_records",
        lambda v: _optimizer("retrain").FeedbackTrainer(min_records=v),
        accepts=False,  # loads and checks the shipped model: covered elsewhere
    ),
    # the Ray engine (what needs no running Ray cluster)
    Param(
        "ModelStore",
        "block_size",
        lambda v: _ray_engine("model_store").ModelStore(
            Path("/nonexistent/never-created"), block_size=v
        ),
        accepts=False,
    ),
    Param("DemoConfig", "nodes", lambda v: _ray_engine("demo").DemoConfig(nodes=v)),
    Param("DemoConfig", "seed", lambda v: _ray_engine("demo").DemoConfig(seed=v)),
    Param(
        "ClusterView.from_nodes",
        "cache_bytes",
        lambda v: _ray_engine("cluster_view").ClusterView.from_nodes(
            [{"NodeID": "a", "Alive": True, "Resources": {"fastplace_memory_mb": 64, "CPU": 1}}],
            cache_bytes=v,
        ),
    ),
    Param(
        "Deployer",
        "seed",
        lambda v: _ray_engine("deployment").Deployer(None, "/nonexistent", seed=v),  # type: ignore[arg-type]
        accepts=False,  # needs a running Ray cluster
    ),
    Param(
        "start_local_cluster",
        "n_nodes",
        lambda v: _ray_engine("local_cluster").start_local_cluster(v),
        accepts=False,  # starts Ray
    ),
]


# (None is no bad value: it means "the default" for the optional ones.)
@pytest.mark.parametrize("bad", [True, False, 1.5, 2.0, np.float64(3.0), "3", b"3"], ids=repr)
@pytest.mark.parametrize("param", PARAMS, ids=repr)
def test_integer_parameters_refuse_bools_floats_and_text(param: Param, bad: Any) -> None:
    message = re.escape(f"{param.param} = {bad!r} must be an integer")
    with pytest.raises(TypeError, match=message):
        param.call(bad)


@pytest.mark.parametrize("param", [p for p in PARAMS if p.accepts], ids=repr)
def test_integer_parameters_take_python_and_numpy_integers(param: Param) -> None:
    param.call(param.valid)
    param.call(np.int64(param.valid))
    param.call(np.uint16(param.valid))


def test_a_refused_add_servers_changes_nothing() -> None:
    index = BlockIndex(2, 100)
    before = index.snapshot()
    for bad in (True, 1.5, [1, True]):
        with pytest.raises(TypeError):
            index.add_servers(
                1 if isinstance(bad, list) else bad, bad if isinstance(bad, list) else 5
            )  # type: ignore[arg-type]
    assert index.snapshot() == before


def test_block_index_refuses_more_servers_than_the_core_before_allocating() -> None:
    # 2**31 cache sizes were 16 GiB of int64 before the core's range check: run in a
    # child capped at 4 GiB of address space, so that a regression fails, not the machine.
    code = (
        "import resource\n"
        "resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))\n"
        "from fastplace import BlockIndex\n"
        "try:\n"
        "    BlockIndex(2**31, 0)\n"
        "except ValueError as error:\n"
        "    print(error)\n"
    )
    env = child_env(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert (
        result.stdout.strip()
        == "n_servers = 2147483648 exceeds the index's limit of 2147483647 servers"
    )


# ---- amounts: what a request may hold ----------------------------------------------

AMOUNTS: list[tuple[str, Callable[[Any], object]]] = [
    ("memory_mb", cpu_for_memory),
    ("memory_mb", lambda v: Partition.of_memory(v)),
    ("SimConfig.server_memory_mb", lambda v: SimConfig(server_memory_mb=v)),
    ("SimConfig.server_cpu_millis", lambda v: SimConfig(server_cpu_millis=v)),
    ("memory_mb", lambda v: synthetic.synthetic_capacity(2, memory_mb=v)),
    ("memory_mb[0]", lambda v: synthetic_workload(duration_s=1, memory_mb=[v])),
]


@pytest.mark.parametrize(
    ("name", "call"), AMOUNTS, ids=[f"{i}-{a[0]}" for i, a in enumerate(AMOUNTS)]
)
def test_amounts_follow_the_request_rules(name: str, call: Callable[[Any], object]) -> None:
    with pytest.raises(ValueError, match=re.escape(f"{name} = 1.5 is not a whole number")):
        call(1.5)
    with pytest.raises(TypeError, match=re.escape(f"{name} must be an integer, got bool")):
        call(True)
    with pytest.raises(TypeError, match=re.escape(f"{name} must be a number, got str")):
        call("2048")
    call(2048)
    call(2048.0)  # a whole float, as Cluster.place takes it
    call(np.int32(2048))


def test_cpu_for_memory_of_a_fractional_megabyte_is_refused() -> None:
    with pytest.raises(ValueError, match=r"memory_mb = 1\.5 is not a whole number"):
        cpu_for_memory(1.5)
    with pytest.raises(ValueError, match=r"memory_mb\[1\] = 2\.5 is not a whole number"):
        cpu_for_memory(np.array([1769.0, 2.5]))
    with pytest.raises(TypeError, match="memory_mb must hold integers, got dtype bool"):
        cpu_for_memory(np.array([True]))
    assert cpu_for_memory(1769) == cpu_for_memory(1769.0) == 1000
    assert cpu_for_memory(np.array([1769, 3538])).tolist() == [1000, 2000]


def test_cluster_matrices_refuse_a_bool_among_integers() -> None:
    # numpy turns [[True, 5]] into [[1, 5]]; place refuses True, so these do too.
    with pytest.raises(TypeError, match=r"capacity\[0\]\[0\] = True must be an integer"):
        Cluster([[True, 5]])
    cluster = Cluster([[100, 100]])
    before = cluster.snapshot()
    with pytest.raises(TypeError, match=r"requests\[1\]\[0\] = True must be an integer"):
        cluster.replay([0, 0], [[1, 1], [True, 5]])
    with pytest.raises(TypeError, match=r"items\[1\]\[0\] = True must be an integer"):
        pack([10], [[1], [True]])
    assert cluster.snapshot() == before


def test_a_float_capacity_past_int64_is_refused_not_wrapped() -> None:
    with pytest.raises(ValueError, match=r"capacity\[0\]\[0\] = 1e\+19 is too large for int64"):
        Cluster([[1e19, 1]])


def test_the_public_names_checked_here_exist() -> None:
    assert {"ServerAllocator", "BlockIndex", "pack", "cpu_for_memory"} <= set(fastplace.__all__)
