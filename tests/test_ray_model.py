"""The Ray engine's parts that need no Ray: partitioned model, block store and caches,
cluster view parsing, and the lazy import of Ray."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fastplace.engines.ray.cluster_view import ClusterView, node_capacity
from fastplace.engines.ray.model_store import ModelStore, NodeCache, pack_weights, unpack_weights
from fastplace.engines.ray.partitioned_model import (
    MTMLConfig,
    Partition,
    forward_partitioned,
    make_batch,
    shard_bounds,
    split_weights,
)

CONFIG = MTMLConfig.tiny()


def random_weights(seed: int = 0) -> dict[str, np.ndarray]:
    """Weights of the right shapes without torch."""
    rng = np.random.default_rng(seed)
    c = CONFIG
    first, second = c.shared_hidden
    shapes = {f"embeddings.{n}.weight": (rows, c.dim) for n, rows in c.vocab.items()}
    layers = {
        "bottom.0": (c.bottom_hidden, c.dense_features),
        "bottom.2": (c.dim, c.bottom_hidden),
        "shared.0": (first, c.dim * (len(c.vocab) + 1)),
        "shared.2": (second, first),
    }
    for task, labels in c.tasks.items():
        layers[f"heads.{task}.0"] = (c.head_hidden, second)
        layers[f"heads.{task}.2"] = (labels, c.head_hidden)
    for layer, shape in layers.items():
        shapes[f"{layer}.weight"] = shape
        shapes[f"{layer}.bias"] = (shape[0],)
    return {k: rng.normal(0, 0.3, s).astype(np.float32) for k, s in shapes.items()}


def node(node_id: str, ip: str, alive: bool = True, **resources: float) -> dict[str, object]:
    return {"NodeID": node_id, "NodeManagerAddress": ip, "Alive": alive, "Resources": resources}


@pytest.mark.parametrize("n_partitions", [1, 2, 3, 5])
def test_partitioned_forward_equals_one_partition(n_partitions: int) -> None:
    weights = random_weights()
    whole = Partition(split_weights(weights, CONFIG, 1)[0], CONFIG, 0, 1)
    parts = [
        Partition(w, CONFIG, i, n_partitions)
        for i, w in enumerate(split_weights(weights, CONFIG, n_partitions))
    ]
    ids, dense = make_batch(CONFIG, 65, np.random.default_rng(1))
    expected = forward_partitioned([whole], ids, dense)
    got = forward_partitioned(parts, ids, dense)
    for task in CONFIG.tasks:
        np.testing.assert_array_equal(got[task], expected[task])


def test_numpy_forward_equals_the_torch_model() -> None:
    torch = pytest.importorskip("torch", reason="the reference model needs torch")
    from fastplace.engines.ray.partitioned_model import torch_model

    weights = random_weights(3)
    model = torch_model(CONFIG)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()})
    ids, dense = make_batch(CONFIG, 33, np.random.default_rng(2))
    with torch.no_grad():
        reference = model({k: torch.from_numpy(v) for k, v in ids.items()}, torch.from_numpy(dense))
    parts = [Partition(w, CONFIG, i, 3) for i, w in enumerate(split_weights(weights, CONFIG, 3))]
    got = forward_partitioned(parts, ids, dense)
    for task, logits in reference.items():
        assert torch.allclose(torch.from_numpy(got[task]), logits, atol=1e-5)


def test_shards_cover_every_row_once() -> None:
    bounds = shard_bounds(10, 3)
    assert bounds.tolist() == [0, 3, 7, 10]
    parts = split_weights(random_weights(), CONFIG, 3)
    user = np.concatenate([p["embeddings.user.weight"] for p in parts])
    np.testing.assert_array_equal(user, random_weights()["embeddings.user.weight"])
    assert "shared.0.weight" in parts[0] and "shared.0.weight" not in parts[1]


def test_out_of_range_id_is_refused() -> None:
    parts = [
        Partition(w, CONFIG, i, 2) for i, w in enumerate(split_weights(random_weights(), CONFIG, 2))
    ]
    ids, dense = make_batch(CONFIG, 4, np.random.default_rng(0))
    ids["user"][2] = CONFIG.vocab["user"]
    with pytest.raises(ValueError, match="user"):
        forward_partitioned(parts, ids, dense)


def test_store_dedups_blocks_and_cache_fetches_only_missing(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "store", block_size=4096)
    v1 = random_weights(0)
    v2 = {k: v.copy() for k, v in v1.items()}
    v2["embeddings.user.weight"][:10] += 1.0  # one block of the user table changes
    m1 = store.put("m", 1, split_weights(v1, CONFIG, 2), memory_mb=256, config=CONFIG.to_dict())
    m2 = store.put("m", 2, split_weights(v2, CONFIG, 2), memory_mb=[512, 256])
    assert store.versions("m") == [1, 2]
    assert store.manifest("m", 2) == m2
    assert [p.memory_mb for p in m2.partitions] == [512, 256]
    changed = set(m2.partitions[0].hashes) - set(m1.partitions[0].hashes)
    assert len(changed) == 1
    assert m2.partitions[1].hashes == m1.partitions[1].hashes

    cache = NodeCache(tmp_path / "cache")
    part1 = m1.partitions[0]
    fetched, fetched_bytes, cached, _ = cache.fetch(store, part1.distinct_blocks())
    assert fetched_bytes == sum(part1.distinct_blocks().values()) and cached == 0
    loaded = cache.load(part1)
    for key, value in split_weights(v1, CONFIG, 2)[0].items():
        np.testing.assert_array_equal(loaded[key], value)
    fetched, fetched_bytes, cached, _ = cache.fetch(store, m2.partitions[0].distinct_blocks())
    assert set(fetched) == changed
    assert fetched_bytes == sum(m2.partitions[0].distinct_blocks()[h] for h in changed)
    assert cache.evict(changed) == fetched_bytes
    assert not any(cache.has(h) for h in changed)
    with pytest.raises(KeyError, match="version 3"):
        store.manifest("m", 3)


def test_damaged_block_in_the_store_is_refused(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "store", block_size=4096)
    manifest = store.put("m", 1, split_weights(random_weights(), CONFIG, 1), memory_mb=128)
    path = store.blocks.path(manifest.partitions[0].hashes[0])
    path.write_bytes(b"x" * path.stat().st_size)
    with pytest.raises(OSError, match="damaged"):
        NodeCache(tmp_path / "cache").fetch(store, manifest.partitions[0].distinct_blocks())


def test_pack_round_trip_keeps_dtypes_and_shapes() -> None:
    weights = {"b": np.arange(6, dtype=np.int64).reshape(2, 3), "a": np.ones(5, np.float32)}
    data, tensors = pack_weights(weights)
    assert [t.name for t in tensors] == ["a", "b"]
    back = unpack_weights(data, tensors)
    for key, value in weights.items():
        np.testing.assert_array_equal(back[key], value)
        assert back[key].dtype == value.dtype


def test_cluster_view_reads_declared_capacity() -> None:
    nodes = [
        node("b", "127.0.0.3", fastplace_memory_mb=2048, CPU=2, memory=1e12),
        node("a", "127.0.0.2", fastplace_memory_mb=4096, fastplace_cpu_millis=8000),
        node("c", "127.0.0.4", CPU=8, memory=1e12),  # declares nothing: not ours
        node("d", "127.0.0.5", alive=False, fastplace_memory_mb=1024),
        node("e", "127.0.0.6", fastplace_memory_mb=1024, fastplace_cache_mb=3, CPU=0),
    ]
    view = ClusterView.from_nodes(nodes, cache_bytes=1 << 20)
    assert view.node_ids == ["a", "b", "e"]
    assert view.cluster.capacity.tolist() == [[4096, 8000], [2048, 2000], [1024, 0]]
    assert view.blocks.cache_bytes().tolist() == [1 << 20, 1 << 20, 3 << 20]
    assert view.server_of("b") == 1
    with pytest.raises(KeyError, match="c"):
        view.server_of("c")

    changes = view.refresh([nodes[0], node("f", "127.0.0.7", fastplace_memory_mb=512, CPU=1)])
    assert changes.left == [0, 2] and changes.added == [3]
    assert view.cluster.is_cordoned(0) and not view.cluster.is_cordoned(1)
    assert view.cluster.capacity.tolist()[3] == [512, 1000]
    assert view.blocks.n_servers == 4


def test_cluster_view_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match="fastplace_memory_mb"):
        ClusterView.from_nodes([node("a", "x", CPU=4)])
    with pytest.raises(ValueError, match="whole number"):
        node_capacity(node("a", "x", fastplace_memory_mb=1.5, CPU=1))


def test_importing_the_engine_does_not_need_ray() -> None:
    code = (
        "import sys; sys.modules['ray'] = None\n"
        "import fastplace.engines.ray as engine\n"
        "from fastplace.engines.ray import partitioned_model, model_store, cluster_view\n"
        "try:\n"
        "    engine.require_ray()\n"
        "except ImportError as error:\n"
        "    print(error)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=None
    )
    assert "pip install 'fastplace[ray]'" in out.stdout


def test_demo_plan_only_runs_without_ray(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("torch", reason="the demo trains its models with torch")
    from fastplace.cli import main

    report = tmp_path / "report.json"
    argv = ["ray-demo", "--plan-only", "--model", "tiny", "--versions", "2", "--nodes", "3"]
    argv += ["--workdir", str(tmp_path), "--json", str(report)]
    assert main(argv) == 0
    assert "similarity:1.0" in capsys.readouterr().out
    import json

    rows = json.loads(report.read_text())["policies"]
    assert [row["policy"] for row in rows] == ["first_fit", "similarity", "similarity:1.0"]
    for row in rows:
        assert len(row["rollout_bytes_each"]) == 2  # one rollout per model
        assert row["first_deploy_bytes"] > row["rollout_bytes"] / 2 > 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--policies", "nope"], "is not one of"),
        (["--policies", "first_fit:2"], "only similarity"),
        (["--policies", "similarity:1.5"], "max_load"),
        (["--bandwidth", "0"], "--bandwidth"),
        (["--partition-memory", "100000"], "do not fit"),
    ],
)
def test_demo_refuses_bad_arguments(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from fastplace.cli import main

    assert main(["ray-demo", *argv]) == 2
    assert message in capsys.readouterr().err


def test_demo_refuses_a_workdir_holding_a_first_layout_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fastplace.cli import main

    old = tmp_path / "store" / "blocks" / "ab"
    old.mkdir(parents=True)
    (old / "ab12cd34ef567890").write_bytes(b"an xxh3-addressed block")
    assert main(["ray-demo", "--plan-only", "--workdir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "first layout" in err and "Traceback" not in err
