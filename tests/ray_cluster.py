"""One local Ray cluster for all tests/test_ray_*.py, and a tiny model in a block store.

Not a conftest (others own that): the Ray test modules import these fixtures. Both
fixtures are session-scoped; because each importing module registers its own copy,
the cluster itself is a module-level singleton, started by the first user and shut
down by the last.

The cluster: 4 nodes on 127.0.0.2-5, each declaring 2048 MB and 4000 millicores to
fastplace (custom resources), one CPU and an 80 MiB object store, no dashboard.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fastplace.engines.ray.model_store import ModelStore, VersionManifest
from fastplace.engines.ray.partitioned_model import MTMLConfig, split_weights, torch_model

N_NODES = 4
NODE_MEMORY_MB = 2048
NODE_CPU_MILLIS = 4000
N_PARTITIONS = 3
PARTITION_MB = 512
BLOCK_SIZE = 4096

_shared: dict[str, Any] = {"users": 0}


@dataclass
class TinyModel:
    """A stored tiny MTML model: versions 1 and 2 and their weights (numpy)."""

    store: ModelStore
    config: MTMLConfig
    weights: dict[int, dict[str, np.ndarray]]
    manifests: dict[int, VersionManifest]
    name: str = "mtml"

    def reference(self, version: int, ids: dict[str, np.ndarray], dense: np.ndarray) -> Any:
        """The unpartitioned torch model's output on a batch."""
        import torch

        model = torch_model(self.config)
        model.load_state_dict({k: torch.from_numpy(v) for k, v in self.weights[version].items()})
        with torch.no_grad():
            return model({k: torch.from_numpy(v) for k, v in ids.items()}, torch.from_numpy(dense))


def retrained(weights: dict[str, np.ndarray], seed: int) -> dict[str, np.ndarray]:
    """A next version as lazy retraining makes it: the dense layers and a few hundred
    embedding rows (a popular head and the newest ids) change, the rest stays."""
    rng = np.random.default_rng(seed)
    new = {k: v.copy() for k, v in weights.items()}
    for key, value in new.items():
        if key.startswith("embeddings."):
            rows = value.shape[0]
            touched = np.r_[0 : max(1, rows // 20), rows - max(1, rows // 20) : rows]
            value[touched] += rng.normal(0, 0.01, (touched.size, value.shape[1])).astype(np.float32)
        else:
            value += rng.normal(0, 0.01, value.shape).astype(np.float32)
    return new


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[Any]:
    """The started :class:`fastplace.engines.ray.local_cluster.LocalCluster`."""
    from fastplace.engines.ray.local_cluster import start_local_cluster

    if "cluster" not in _shared:
        _shared["cluster"] = start_local_cluster(
            N_NODES, memory_mb=NODE_MEMORY_MB, cpu_millis=NODE_CPU_MILLIS
        )
    _shared["users"] += 1
    yield _shared["cluster"]
    _shared["users"] -= 1
    if _shared["users"] == 0:
        _shared.pop("cluster").shutdown()


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    """Versions 1 and 2 of a ~0.2 MB MTML model, 3 partitions of 512 MB each."""
    if "model" not in _shared:
        import torch

        config = MTMLConfig.tiny()
        torch.manual_seed(0)
        v1 = {k: v.detach().numpy().copy() for k, v in torch_model(config).state_dict().items()}
        weights = {1: v1, 2: retrained(v1, seed=2)}
        store = ModelStore(Path(tmp_path_factory.mktemp("store")), block_size=BLOCK_SIZE)
        manifests = {
            version: store.put(
                "mtml",
                version,
                split_weights(w, config, N_PARTITIONS),
                memory_mb=PARTITION_MB,
                config=config.to_dict(),
            )
            for version, w in weights.items()
        }
        _shared["model"] = TinyModel(store, config, weights, manifests)
    model: TinyModel = _shared["model"]
    return model


@pytest.fixture
def deployer(ray_cluster: Any, tiny_model: TinyModel, tmp_path: Path) -> Iterator[Any]:
    """A first-fit Deployer over the tiny model's store, shut down after the test."""
    from fastplace.engines.ray.deployment import Deployer

    deployer = Deployer(tiny_model.store, tmp_path / "cache", policy="first_fit")
    yield deployer
    deployer.shutdown()
