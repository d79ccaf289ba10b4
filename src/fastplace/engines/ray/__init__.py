"""Serve distributed-inference (DI) models on a Ray cluster, placed by fastplace.

fastplace decides the node of every partition of a model version as a gang; each
partition then runs as one Ray actor pinned to that node. A starting actor fetches the
content blocks its node's cache lacks from the model store and loads its weights (its
cold start, measured and fed back into fastplace's :class:`~fastplace.BlockIndex`).
Partition 0 receives a batch, fans the embedding lookups out to the other partitions,
gathers and answers.

    >>> from fastplace.engines.ray import Deployer, ModelStore     # doctest: +SKIP
    >>> store = ModelStore("/data/store")                          # doctest: +SKIP
    >>> deployer = Deployer(store, "/data/cache", policy="similarity")  # doctest: +SKIP
    >>> v1 = deployer.deploy("mtml", 1)                            # doctest: +SKIP
    >>> deployer.infer("mtml", ids, dense)                         # doctest: +SKIP
    >>> deployer.rollout("mtml", 2)  # v2 starts while v1 serves; v1 retires  # doctest: +SKIP

The pieces that do not need Ray (:mod:`.cluster_view`'s parsing, :mod:`.model_store`,
:mod:`.partitioned_model`) import without it; anything that talks to Ray raises an
ImportError naming ``pip install 'fastplace[ray]'`` when Ray is missing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the real imports are lazy (see __getattr__)
    from fastplace.engines.ray.actors import PartitionActor
    from fastplace.engines.ray.cluster_view import ClusterView
    from fastplace.engines.ray.deployment import Deployer, Deployment, DeploymentError
    from fastplace.engines.ray.model_store import ColdStart, ModelStore
    from fastplace.engines.ray.serverless import Serverless, ServerlessStats

__all__ = [
    "ClusterView",
    "ColdStart",
    "Deployer",
    "Deployment",
    "DeploymentError",
    "ModelStore",
    "PartitionActor",
    "Serverless",
    "ServerlessStats",
    "require_ray",
]

_LAZY = {
    "ClusterView": "fastplace.engines.ray.cluster_view",
    "ModelStore": "fastplace.engines.ray.model_store",
    "ColdStart": "fastplace.engines.ray.model_store",
    "PartitionActor": "fastplace.engines.ray.actors",
    "Deployer": "fastplace.engines.ray.deployment",
    "Deployment": "fastplace.engines.ray.deployment",
    "DeploymentError": "fastplace.engines.ray.deployment",
    "Serverless": "fastplace.engines.ray.serverless",
    "ServerlessStats": "fastplace.engines.ray.serverless",
}

INSTALL_HINT = "pip install 'fastplace[ray]'"


def require_ray() -> Any:
    """The ``ray`` module, or an ImportError saying how to install it."""
    try:
        import ray
    except ImportError as error:
        raise ImportError(
            f"fastplace.engines.ray needs Ray, which is not installed: {INSTALL_HINT} ({error})"
        ) from error
    return ray


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'fastplace.engines.ray' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
